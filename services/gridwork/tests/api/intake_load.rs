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
    let metrics = app.metrics().await;
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

/// One id posted many times at once, with two different contents: the
/// posts share a group commit (one multi-row INSERT), exactly one is new
/// (201), the same content again is a replay (200), the other content a
/// conflict (409); one report, one timeline entry, one case.
#[actix_web::test]
async fn one_id_racing_in_one_batch_is_stored_once_embedded() {
    helpers::on_with(helpers::Backend::Embedded, racing_config, racing_ids).await;
}

#[actix_web::test]
async fn one_id_racing_in_one_batch_is_stored_once_on_postgres() {
    helpers::on_with(helpers::Backend::PostgresAndRedis, racing_config, racing_ids).await;
}

fn racing_config(cfg: &mut gridwork_platform::Config) {
    cfg.intake.rate_limit_per_minute = 0;
    // Long enough for every post to join the first one's batch.
    cfg.intake.batch_wait_ms = 200;
}

async fn racing_ids(app: &helpers::TestApp) {
    let worker = app.worker();
    let (lat, lon) = app.demo.demo_point;
    let id = Uuid::new_v4().to_string();
    let a = report(&id, lat, lon, "environment.sanitation");
    let mut b = a.clone();
    b["description"] = serde_json::json!("另一份不同的上报");
    // Others' new reports in the same batch are not disturbed (other
    // categories: nearby reports of one category join one case).
    let categories = ["dispute.neighbourhood", "dispute.consumer", "order.public", "dispute.property_management"];
    let others: Vec<(String, &str)> = categories.iter().map(|c| (Uuid::new_v4().to_string(), *c)).collect();
    let posts = (0..12).map(|i| {
        let body = if i % 3 == 2 { b.clone() } else { a.clone() };
        let (app, worker) = (app, worker.clone());
        async move { (i % 3 == 2, app.post(&worker, "/v1/reports", &body).await.0) }
    });
    let other_posts = others.iter().map(|(o, category)| {
        let body = report(o, lat, lon, category);
        let (app, worker) = (app, worker.clone());
        async move { app.post(&worker, "/v1/reports", &body).await.0 }
    });
    let (answers, other_answers) =
        futures::future::join(futures::future::join_all(posts), futures::future::join_all(other_posts)).await;
    assert!(other_answers.iter().all(|s| *s == 201), "{other_answers:?}");
    let winners: Vec<bool> = answers.iter().filter(|(_, s)| *s == 201).map(|(is_b, _)| *is_b).collect();
    assert_eq!(winners.len(), 1, "exactly one new report: {answers:?}");
    let b_won = winners[0];
    for (is_b, status) in answers.iter().filter(|(_, s)| *s != 201) {
        let want = if *is_b == b_won { 200 } else { 409 };
        assert_eq!(*status, want, "same content is a replay, other content a conflict: {answers:?}");
    }
    let (s, stored) = app.get(&worker, &format!("/v1/reports/{id}")).await;
    assert_eq!(s, 200, "{stored}");
    let want = if b_won { &b } else { &a };
    assert_eq!(stored["description"], want["description"]);
    assert_eq!(stored["timeline"].as_array().unwrap().iter().filter(|e| e["status"] == "submitted").count(), 1);
    // One outbox message: one case, however many posts.
    app.case_of(&id).await;
    for (o, _) in &others {
        app.case_of(o).await;
    }
    let (_, v) = app.get(&app.dispatcher(), "/v1/cases?limit=200").await;
    let n = v["items"].as_array().unwrap().iter().filter(|c| c["report_id"] == id.as_str()).count();
    assert_eq!(n, 1, "one case for the id");
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
