//! Intake under load: concurrent reports share commits (group commit) and
//! every one is stored once; a token that posts too fast gets 429 with
//! Retry-After while others go on.

use crate::helpers;
use crate::helpers::{config, report, spawn_with};
use gridwork_domain::auth::Role;
use uuid::Uuid;

#[actix_web::test]
async fn concurrent_reports_share_commits_and_all_are_stored_once() {
    concurrent_reports(256).await;
}

/// Group commit off (`batch_max = 0`): one transaction per report, the same
/// outcome.
#[actix_web::test]
async fn without_group_commit_every_report_is_stored_once_too() {
    concurrent_reports(0).await;
}

async fn concurrent_reports(batch_max: usize) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.intake.rate_limit_per_minute = 0;
    cfg.intake.batch_wait_ms = 20;
    cfg.intake.batch_max = batch_max;
    let app = spawn_with(cfg).await;
    let worker = app.worker();
    let (lat, lon) = app.demo.demo_point;
    let ids: Vec<String> = (0..120).map(|_| Uuid::new_v4().to_string()).collect();
    let posts = ids.iter().map(|id| {
        let body = report(id, lat, lon, "environment.sanitation");
        let app = &app;
        let worker = worker.clone();
        async move { app.post(&worker, "/v1/reports", &body).await.0 }
    });
    let statuses = futures::future::join_all(posts).await;
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    // Replays of all of them, concurrently: the same reports, nothing new.
    let replays = ids.iter().map(|id| {
        let body = report(id, lat, lon, "environment.sanitation");
        let app = &app;
        let worker = worker.clone();
        async move { app.post(&worker, "/v1/reports", &body).await.0 }
    });
    let statuses = futures::future::join_all(replays).await;
    assert!(statuses.iter().all(|s| *s == 200 || *s == 409), "{statuses:?}");
    let (_, mine) = app.get(&worker, "/v1/me/reports?limit=200").await;
    assert_eq!(mine["items"].as_array().unwrap().len(), ids.len());
    let metrics = app.http.get(format!("{}/metrics", app.admin)).send().await.unwrap().text().await.unwrap();
    let commits: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("gridwork_intake_batch_size_count "))
        .unwrap_or("0")
        .parse()
        .unwrap();
    if batch_max > 0 {
        assert!(commits >= 1.0);
        assert!(commits < ids.len() as f64, "{commits} transactions for {} reports: no group commit", ids.len());
    } else {
        assert_eq!(commits, 0.0, "no batches without group commit");
    }
    app.shutdown().await;
}

#[actix_web::test]
async fn a_token_posting_too_fast_gets_429_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.intake.rate_limit_per_minute = 5;
    let app = spawn_with(cfg).await;
    let worker = app.worker();
    let (lat, lon) = app.demo.demo_point;
    let mut codes = Vec::new();
    let mut retry_after = None;
    // Counting is per clock minute: if the minute turns over mid-burst, the
    // burst is repeated once (it cannot span two turn-overs).
    for _ in 0..2 {
        codes.clear();
        for _ in 0..8 {
            let body = report(&Uuid::new_v4().to_string(), lat, lon, "environment.sanitation");
            let r = app
                .http
                .post(format!("{}/v1/reports", app.base))
                .bearer_auth(&worker)
                .json(&body)
                .send()
                .await
                .unwrap();
            codes.push(r.status().as_u16());
            if r.status() == 429 {
                retry_after = r.headers().get("retry-after").map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
                let e: serde_json::Value = r.json().await.unwrap();
                assert_eq!(e["code"], "rate_limited");
            }
        }
        if codes.contains(&429) {
            break;
        }
    }
    // Unless the minute turned over mid-test, exactly 5 pass.
    assert!(codes.iter().filter(|c| **c == 201).count() >= 5, "{codes:?}");
    assert!(codes.contains(&429), "{codes:?}");
    assert!(retry_after.is_some_and(|s| (1..=60).contains(&s)));
    // Another grid worker is not held back.
    let other = app.token("worker-2", Role::GridWorker, &app.demo.demo_grid);
    let body = report(&Uuid::new_v4().to_string(), lat, lon, "environment.sanitation");
    assert_eq!(app.post(&other, "/v1/reports", &body).await.0, 201);
    app.shutdown().await;
}

/// Redis down costs speed, never correctness: reports are accepted and flow
/// through the pipeline; readiness reports the cache as degraded.
#[actix_web::test]
async fn ingest_goes_on_when_the_cache_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.cache.url = "redis://127.0.0.1:1".into(); // nothing listens there
    let app = spawn_with(cfg).await;
    let ready: serde_json::Value =
        app.http.get(format!("{}/health/ready", app.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["status"], "ready", "{ready}");
    assert!(ready["checks"]["cache"].as_str().unwrap().contains("degraded"), "{ready}");
    let worker = app.worker();
    let (lat, lon) = app.demo.demo_point;
    let id = Uuid::new_v4().to_string();
    let body = report(&id, lat, lon, "environment.sanitation");
    let started = std::time::Instant::now();
    assert_eq!(app.post(&worker, "/v1/reports", &body).await.0, 201);
    assert_eq!(app.post(&worker, "/v1/reports", &body).await.0, 200, "idempotent without the cache too");
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "a dead cache must not stall requests");
    let case = helpers::eventually("the case", || async {
        let (_, v) = app.get(&app.dispatcher(), "/v1/cases").await;
        v["items"].as_array()?.iter().find(|c| c["report_id"] == id.as_str()).cloned()
    })
    .await;
    // Claim leases fall back to the database: still exactly one holder.
    let claim = format!("/v1/cases/{}/claim", case["id"].as_str().unwrap());
    let rival = app.token("dispatcher-2", gridwork_domain::auth::Role::Dispatcher, &app.demo.demo_centre);
    assert_eq!(app.post(&app.dispatcher(), &claim, &serde_json::json!({})).await.0, 200);
    let (s, e) = app.post(&rival, &claim, &serde_json::json!({})).await;
    assert_eq!((s, e["code"].as_str()), (409, Some("claimed_by_another")));
    app.shutdown().await;
}
