//! Each service runs as its own process: intake, assigner, mediation and
//! analytics on the embedded default (one SQLite database and one durable
//! event log shared through the data directory) carry a report from a phone
//! to a KPI, talking only through the event log.

use crate::helpers;
use crate::helpers::{migrate_demo, poll_json, start_process, token_from};
use gridwork_domain::auth::Role;
use serde_json::json;
use uuid::Uuid;

#[tokio::test]
async fn four_services_as_four_processes() {
    let dir = tempfile::tempdir().unwrap();
    let env = vec![
        ("GRIDWORK_DATA_DIR".to_owned(), dir.path().display().to_string()),
        ("GRIDWORK_HTTP__LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
    ];
    let grid = migrate_demo(&env);
    let intake = start_process("gridwork-intake", &[], &env);
    let assigner = start_process("gridwork-assigner", &[], &env);
    let mediation = start_process("gridwork-mediation", &[], &env);
    let analytics = start_process("gridwork-analytics", &[], &env);
    let http = reqwest::Client::new();
    for s in [&intake, &assigner, &mediation, &analytics] {
        let r = http.get(format!("{}/health/ready", s.base)).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    let worker = token_from(dir.path(), "worker-1", Role::GridWorker, &grid);
    let dispatcher = token_from(dir.path(), "dispatcher-1", Role::Dispatcher, &grid[..9]);
    let analyst = token_from(dir.path(), "analyst-1", Role::Analyst, "371000");

    let id = Uuid::new_v4().to_string();
    let body = json!({
        "id": id, "occurred_at": chrono::Utc::now().to_rfc3339(),
        "location": {"lat": 37.5095, "lon": 122.115}, "category": "dispute.property_management",
        "description": "小区电梯长期故障，物业不予维修",
    });
    let r = http.post(format!("{}/v1/reports", intake.base)).bearer_auth(&worker).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 201);
    // The assigner process's locate endpoint agrees with the grid seeded.
    let l = poll_json(&http, &format!("{}/v1/grids/locate?lat=37.5095&lon=122.115", assigner.base), &worker, |_| true)
        .await;
    assert_eq!(l["grid"], grid.as_str());

    let list = poll_json(&http, &format!("{}/v1/cases", mediation.base), &dispatcher, |v| {
        v["items"].as_array().is_some_and(|a| a.iter().any(|c| c["report_id"] == id.as_str()))
    })
    .await;
    let case = list["items"].as_array().unwrap().iter().find(|c| c["report_id"] == id.as_str()).unwrap().clone();
    assert_eq!(case["channel"], "people_mediation");
    let cid = case["id"].as_str().unwrap();
    helpers::claim_resolve_close(&http, &mediation.base, &dispatcher, cid, "handled").await;
    let k = poll_json(&http, &format!("{}/v1/kpis?jurisdiction=371000", analytics.base), &analyst, |v| {
        v["rows"].as_array().and_then(|r| r.first()).is_some_and(|r| r["closed"] == 1)
    })
    .await;
    assert_eq!(k["rows"][0]["volume"], 1);
    let mine =
        poll_json(&http, &format!("{}/v1/me/reports", intake.base), &worker, |v| v["items"][0]["status"] == "closed")
            .await;
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);
    // Routes belong to their service: intake does not serve the queues.
    let r = http.get(format!("{}/v1/cases", intake.base)).bearer_auth(&dispatcher).send().await.unwrap();
    assert_eq!(r.status(), 404);
}
