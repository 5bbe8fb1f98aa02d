//! A crash (SIGKILL) of `gridwork up` between accepting reports and queueing
//! their cases loses nothing: after a restart every accepted report has
//! exactly one case. And SIGTERM stops it cleanly.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use gridwork_domain::auth::{Actor, Role};
use gridwork_platform::auth::Issuer;
use serde_json::Value;
use uuid::Uuid;

struct Proc {
    child: Child,
    base: String,
}

impl Drop for Proc {
    /// A failing test must not leave `gridwork up` running behind it.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &Path) -> Proc {
    start_with(dir, &[])
}

fn start_with(dir: &Path, env: &[(&str, &str)]) -> Proc {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gridwork"))
        .args(["up", "--data-dir", dir.to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .envs(env.iter().copied())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = loop {
        let line = lines.next().expect("gridwork up printed its banner").unwrap();
        if let Some(url) = line.strip_prefix("gridwork is up: ") {
            break url.trim().to_owned();
        }
    };
    // Keep draining stdout so the process never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Proc { child, base }
}

fn token(dir: &Path, id: &str, role: Role, scope: &str) -> String {
    let issuer = Issuer::load_or_create(&dir.join("jwt-ed25519.key"), "gridwork", "gridwork", 3600).unwrap();
    issuer.issue(&Actor { id: id.into(), role, scope: scope.into(), channel: None }).unwrap().0
}

async fn cases_by_report(http: &reqwest::Client, base: &str, token: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{base}/v1/cases?limit=200");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: Value = http.get(url).bearer_auth(token).send().await.unwrap().json().await.unwrap();
        out.extend(page["items"].as_array().unwrap().iter().map(|c| c["report_id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

#[tokio::test]
async fn sigkill_mid_pipeline_loses_nothing_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let mut p = start(dir.path());
    let worker = token(dir.path(), "worker-1", Role::GridWorker, "371002");
    let county = token(dir.path(), "county-dispatcher-1", Role::Dispatcher, "371002");

    let (lat, lon) = (37.5095, 122.115);
    let mut ids = Vec::new();
    for i in 0..30 {
        let id = Uuid::new_v4().to_string();
        let body = serde_json::json!({
            "id": id,
            // Hours apart: thirty incidents, not one reported thirty times.
            "occurred_at": (chrono::Utc::now() - chrono::Duration::hours(4 * i)).to_rfc3339(),
            "location": {"lat": lat + (i as f64) * 0.0001, "lon": lon},
            "category": "dispute.neighbourhood",
            "description": format!("第{i}号事件"),
        });
        let r = http.post(format!("{}/v1/reports", p.base)).bearer_auth(&worker).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 201);
        ids.push(id);
    }
    // Crash right after the last 201: some reports are still in the pipeline.
    p.child.kill().unwrap();
    p.child.wait().unwrap();

    // Restart, and crash again while it is catching up.
    let mut p = start(dir.path());
    tokio::time::sleep(Duration::from_millis(150)).await;
    p.child.kill().unwrap();
    p.child.wait().unwrap();

    let mut p = start(dir.path());
    let mut found = Vec::new();
    for _ in 0..300 {
        found = cases_by_report(&http, &p.base, &county).await;
        if found.len() >= ids.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Give any duplicate a chance to appear before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let found = {
        let again = cases_by_report(&http, &p.base, &county).await;
        assert!(again.len() >= found.len());
        again
    };
    assert_eq!(found.len(), ids.len(), "exactly one case per accepted report");
    for id in &ids {
        assert_eq!(found.iter().filter(|r| *r == id).count(), 1, "report {id}");
    }
    let mine: Value = http
        .get(format!("{}/v1/me/reports?limit=200", p.base))
        .bearer_auth(token(dir.path(), "worker-1", Role::GridWorker, "371002"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = mine["items"].as_array().unwrap();
    assert_eq!(items.len(), ids.len());
    let mut all_queued = false;
    for _ in 0..100 {
        let mine: Value = http
            .get(format!("{}/v1/me/reports?limit=200", p.base))
            .bearer_auth(&worker)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if mine["items"].as_array().unwrap().iter().all(|r| r["status"] == "queued") {
            all_queued = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(all_queued, "every reporter sees their report queued after the restarts");

    // SIGTERM: a graceful stop that exits successfully.
    let status = Command::new("kill").args(["-TERM", &p.child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exit = p.child.wait().unwrap();
    assert!(exit.success(), "graceful shutdown exits 0, got {exit:?}");
}

/// Emergencies (应急) travel a lane of their own through the pipeline: with
/// the ordinary lane of the assigner, then of mediation, stuck on a report,
/// an emergency reported after it still becomes a case at once.
#[tokio::test]
async fn emergencies_overtake_a_stuck_ordinary_lane() {
    for stage in ["assigner", "mediation"] {
        let dir = tempfile::tempdir().unwrap();
        let failpoint = format!("{stage}.ordinary_lane");
        let dir_s = dir.path().display().to_string();
        let mut p = start_with(dir.path(), &[("GW_FAILPOINT", &failpoint), ("GW_FAILPOINT_DIR", &dir_s)]);
        let http = reqwest::Client::new();
        let worker = token(dir.path(), "worker-1", Role::GridWorker, "371002");
        let county = token(dir.path(), "county-dispatcher-1", Role::Dispatcher, "371002");
        let (lat, lon) = (37.5095, 122.115);
        let post = |id: &str, category: &str, urgency: &str| {
            let body = serde_json::json!({
                "id": id, "occurred_at": chrono::Utc::now().to_rfc3339(),
                "location": {"lat": lat, "lon": lon}, "category": category, "urgency": urgency,
                "description": "lane test",
            });
            let (http, base, worker) = (http.clone(), p.base.clone(), worker.clone());
            async move { http.post(format!("{base}/v1/reports")).bearer_auth(worker).json(&body).send().await.unwrap() }
        };
        let ordinary = Uuid::new_v4().to_string();
        assert_eq!(post(&ordinary, "dispute.neighbourhood", "normal").await.status(), 201);
        let hit = dir.path().join(format!("{failpoint}.hit"));
        for _ in 0..300 {
            if hit.exists() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(hit.exists(), "{stage}: the ordinary lane is stuck");
        let urgent = Uuid::new_v4().to_string();
        assert_eq!(post(&urgent, "hazard.gas", "emergency").await.status(), 201);
        let mut found = Vec::new();
        for _ in 0..300 {
            found = cases_by_report(&http, &p.base, &county).await;
            if found.contains(&urgent) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(found.contains(&urgent), "{stage}: the emergency became a case");
        assert!(!found.contains(&ordinary), "{stage}: the ordinary report is still stuck behind the failpoint");
        p.child.kill().unwrap();
        p.child.wait().unwrap();
    }
}
