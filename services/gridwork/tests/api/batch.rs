//! A phone's offline queue: `POST /v1/reports/batch` replayed shuffled,
//! repeated and with a conflicting item stores each report once, returns
//! the same results every time, never overwrites, and keeps both the
//! phone's and the server's time.

use crate::helpers;
use std::collections::BTreeMap;

use crate::helpers::{eventually, report};
use chrono::{Duration, Utc};
use gridwork_storage::entity::case;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{json, Value};
use uuid::Uuid;

#[actix_web::test]
async fn an_offline_queue_replayed_in_any_order_stores_each_report_once() {
    let dir = tempfile::tempdir().unwrap();
    let app = helpers::spawn(dir.path()).await;
    let worker = app.worker();
    let (lat, lon) = app.demo.demo_point;
    let queued_at = (Utc::now() - Duration::hours(20)).trunc_subsecs_micros();

    // Five reports queued offline hours apart (so none is linked to another).
    let categories =
        ["dispute.neighbourhood", "dispute.consumer", "order.public", "dispute.neighbourhood", "dispute.consumer"];
    let mut items: Vec<Value> = categories
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut r = report(&Uuid::new_v4().to_string(), lat, lon, c);
            r["occurred_at"] = json!((queued_at + Duration::hours(4 * i as i64)).to_rfc3339());
            r["device_time"] = json!((queued_at + Duration::hours(4 * i as i64) + Duration::minutes(1)).to_rfc3339());
            r
        })
        .collect();
    // One the phone sent before it lost the network, then queued again with
    // other content (an edit): a conflict, never an overwrite.
    let sent = items[0]["id"].as_str().unwrap().to_owned();
    let mut edited = items[0].clone();
    edited["description"] = json!("改过的描述");
    // One invalid, and one item twice.
    let mut invalid = report(&Uuid::new_v4().to_string(), lat, lon, "no.such.category");
    invalid["device_time"] = json!(queued_at.to_rfc3339());
    let (s, first_single) = app.post(&worker, "/v1/reports", &items[0]).await;
    assert_eq!(s, 201, "{first_single}");
    let twice = items[1].clone();
    items.extend([edited, invalid, twice]);

    let batch = |list: &[Value]| json!({"reports": list});
    let (s, first) = app.post(&worker, "/v1/reports/batch", &batch(&items)).await;
    assert_eq!(s, 200, "{first}");
    let results = first["results"].as_array().unwrap();
    assert_eq!(results.len(), 8);
    assert_eq!(first["accepted"], 6, "five reports and the repeated item: {first}");
    let by_index: Vec<(&str, u64)> =
        results.iter().map(|r| (r["result"].as_str().unwrap(), r["status"].as_u64().unwrap())).collect();
    assert_eq!(&by_index[5..], &[("conflict", 409), ("invalid", 400), ("accepted", 200)]);
    assert_eq!(results[5]["error"]["code"], "report_id_conflict");
    assert_eq!(results[6]["error"]["field"], "category");
    assert!(results[6]["error"]["message_zh"].as_str().is_some_and(|m| !m.is_empty()), "Chinese message too");
    assert_eq!(results[7], results[1], "the same item twice: the same result");
    assert_eq!(results[0]["received_at"], first_single["received_at"], "the earlier submission's server time");

    // Replayed shuffled, three times: the same result for every id.
    let key = |v: &Value| -> BTreeMap<String, Vec<Value>> {
        let mut m: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for r in v["results"].as_array().unwrap() {
            m.entry(r["id"].as_str().unwrap().to_owned()).or_default().push(r.clone());
        }
        m.values_mut().for_each(|v| v.sort_by_key(|r| r.to_string()));
        m
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(6);
    for round in 0..3 {
        let mut shuffled = items.clone();
        shuffled.shuffle(&mut rng);
        let (s, again) = app.post(&worker, "/v1/reports/batch", &batch(&shuffled)).await;
        assert_eq!(s, 200);
        assert_eq!(key(&again), key(&first), "round {round}");
    }

    // Stored once each, nothing overwritten, both times kept.
    let (_, mine) = app.get(&worker, "/v1/me/reports?limit=100").await;
    let mine = mine["items"].as_array().unwrap().clone();
    assert_eq!(mine.len(), 5, "{mine:?}");
    let (_, kept) = app.get(&worker, &format!("/v1/reports/{sent}")).await;
    assert_eq!(kept["description"], items[0]["description"], "the conflicting edit did not overwrite");
    let (_, r2) = app.get(&worker, &format!("/v1/reports/{}", items[2]["id"].as_str().unwrap())).await;
    assert_eq!(
        r2["device_time"].as_str().map(|t| t.parse::<chrono::DateTime<Utc>>().unwrap()),
        Some(queued_at + Duration::hours(8) + Duration::minutes(1))
    );
    let received: chrono::DateTime<Utc> = r2["received_at"].as_str().unwrap().parse().unwrap();
    assert!(received > queued_at + Duration::hours(19), "the server's own time: {received}");

    // Each became exactly one case.
    for r in &items[..5] {
        let id = r["id"].as_str().unwrap().to_owned();
        let links = eventually("the report's case", || async {
            let l = case::Entity::find().filter(case::Column::ReportId.eq(id.as_str())).all(&app.ctx.db).await.unwrap();
            (!l.is_empty()).then_some(l)
        })
        .await;
        assert_eq!(links.len(), 1, "{id}");
    }

    // Limits and roles.
    let (s, e) = app.post(&worker, "/v1/reports/batch", &json!({"reports": []})).await;
    assert_eq!((s, e["code"].as_str(), e["field"].as_str()), (400, Some("invalid_batch_size"), Some("reports")));
    let many: Vec<Value> = (0..101).map(|_| report(&Uuid::new_v4().to_string(), lat, lon, "order.public")).collect();
    let (s, e) = app.post(&worker, "/v1/reports/batch", &batch(&many)).await;
    assert_eq!((s, e["code"].as_str()), (400, Some("invalid_batch_size")), "{e}");
    let (s, _) = app.post(&app.analyst(), "/v1/reports/batch", &batch(&items[..1])).await;
    assert_eq!(s, 403);
    let (s, _) = app.post(&worker, "/v1/reports/batch", &json!({"reports": [items[0]], "extra": true})).await;
    assert_eq!(s, 400, "unknown fields refused");
    app.shutdown().await;
}

trait Micros {
    fn trunc_subsecs_micros(self) -> Self;
}

impl Micros for chrono::DateTime<Utc> {
    fn trunc_subsecs_micros(self) -> Self {
        chrono::SubsecRound::trunc_subsecs(self, 6)
    }
}
