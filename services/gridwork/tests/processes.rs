//! Each service runs as its own process: intake, assigner, mediation and
//! analytics on the embedded default (one SQLite database and one durable
//! event log shared through the data directory) carry a report from a phone
//! to a KPI, talking only through the event log.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use gridwork_domain::auth::{Actor, Role};
use gridwork_platform::auth::Issuer;
use serde_json::{json, Value};
use uuid::Uuid;

fn sibling(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_BIN_EXE_gridwork")).with_file_name(name);
    assert!(
        p.exists(),
        "{} is not built: run the tests through scripts/test.sh (cargo nextest run --workspace)",
        p.display()
    );
    p
}

struct Svc {
    child: Child,
    base: String,
}

impl Drop for Svc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(name: &str, dir: &Path) -> Svc {
    let mut child = Command::new(sibling(name))
        .env("GRIDWORK_DATA_DIR", dir)
        .env("GRIDWORK_HTTP__LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = loop {
        let line = lines.next().unwrap_or_else(|| panic!("{name} exited before listening")).unwrap();
        if let Some((_, url)) = line.split_once(" listening on ") {
            break url.trim().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Svc { child, base }
}

async fn until<F: Fn(&Value) -> bool>(http: &reqwest::Client, url: &str, token: &str, ok: F) -> Value {
    for _ in 0..200 {
        let r = http.get(url).bearer_auth(token).send().await.unwrap();
        if r.status() == 200 {
            let v: Value = r.json().await.unwrap();
            if ok(&v) {
                return v;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting on {url}");
}

#[tokio::test]
async fn four_services_as_four_processes() {
    let dir = tempfile::tempdir().unwrap();
    let migrate = Command::new(env!("CARGO_BIN_EXE_gridwork"))
        .args(["migrate", "--demo", "--data-dir", dir.path().to_str().unwrap()])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(migrate.status.success(), "{}", String::from_utf8_lossy(&migrate.stderr));
    let out = String::from_utf8_lossy(&migrate.stdout);
    let grid =
        out.split("demo point in grid ").nth(1).unwrap().trim_end_matches(|c: char| !c.is_ascii_digit()).to_owned();

    let intake = start("gridwork-intake", dir.path());
    let assigner = start("gridwork-assigner", dir.path());
    let mediation = start("gridwork-mediation", dir.path());
    let analytics = start("gridwork-analytics", dir.path());
    let http = reqwest::Client::new();
    for s in [&intake, &assigner, &mediation, &analytics] {
        let r = http.get(format!("{}/health/ready", s.base)).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }

    let issuer = Issuer::load_or_create(&dir.path().join("jwt-ed25519.key"), "gridwork", "gridwork", 3600).unwrap();
    let tok =
        |id: &str, role, scope: &str| issuer.issue(&Actor { id: id.into(), role, scope: scope.into() }).unwrap().0;
    let worker = tok("worker-1", Role::GridWorker, &grid);
    let dispatcher = tok("dispatcher-1", Role::Dispatcher, &grid[..9]);
    let analyst = tok("analyst-1", Role::Analyst, "371000");

    let id = Uuid::new_v4().to_string();
    let body = json!({
        "id": id, "occurred_at": chrono::Utc::now().to_rfc3339(),
        "location": {"lat": 37.5095, "lon": 122.115}, "category": "dispute.property_management",
        "description": "小区电梯长期故障，物业不予维修",
    });
    let r = http.post(format!("{}/v1/reports", intake.base)).bearer_auth(&worker).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 201);
    // The assigner process's locate endpoint agrees with the grid seeded.
    let l: Value = http
        .get(format!("{}/v1/grids/locate?lat=37.5095&lon=122.115", assigner.base))
        .bearer_auth(&worker)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(l["grid"], grid.as_str());

    let list = until(&http, &format!("{}/v1/cases", mediation.base), &dispatcher, |v| {
        v["items"].as_array().is_some_and(|a| a.iter().any(|c| c["report_id"] == id.as_str()))
    })
    .await;
    let case = list["items"].as_array().unwrap().iter().find(|c| c["report_id"] == id.as_str()).unwrap().clone();
    assert_eq!(case["channel"], "people_mediation");
    let cid = case["id"].as_str().unwrap();
    for (action, b) in [("claim", json!({})), ("resolve", json!({"outcome": "handled"})), ("close", json!({}))] {
        let r = http
            .post(format!("{}/v1/cases/{cid}/{action}", mediation.base))
            .bearer_auth(&dispatcher)
            .json(&b)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{action}");
    }
    let k = until(&http, &format!("{}/v1/kpis?jurisdiction=371000", analytics.base), &analyst, |v| {
        v["rows"].as_array().and_then(|r| r.first()).is_some_and(|r| r["closed"] == 1)
    })
    .await;
    assert_eq!(k["rows"][0]["volume"], 1);
    let mine =
        until(&http, &format!("{}/v1/me/reports", intake.base), &worker, |v| v["items"][0]["status"] == "closed").await;
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);
    // Routes belong to their service: intake does not serve the queues.
    let r = http.get(format!("{}/v1/cases", intake.base)).bearer_auth(&dispatcher).send().await.unwrap();
    assert_eq!(r.status(), 404);
}
