//! `gridwork kpi recompute` rebuilds the KPIs from the event history alone,
//! and the rebuild equals what analytics computed incrementally.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

mod common;

use std::collections::BTreeMap;

use common::{eventually, report, TestApp};
use gridwork_storage::entity::{case, kpi_fact};
use sea_orm::EntityTrait;
use serde_json::{json, Value};
use uuid::Uuid;

async fn open(app: &TestApp, body: Value) -> String {
    assert_eq!(app.post(&app.worker(), "/v1/reports", &body).await.0, 201);
    let rid = body["id"].as_str().unwrap().to_owned();
    let d = app.dispatcher();
    eventually("the case", || async {
        let (_, l) = app.get(&d, "/v1/cases?limit=200&sort=created").await;
        l["items"]
            .as_array()?
            .iter()
            .find(|c| c["report_id"] == rid.as_str())
            .map(|c| c["id"].as_str().unwrap().to_owned())
    })
    .await
}

async fn facts(db: &sea_orm::DatabaseConnection) -> BTreeMap<String, (i64, Value)> {
    kpi_fact::Entity::find()
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.case_id, (r.version, serde_json::from_str(&r.facts).unwrap())))
        .collect()
}

#[actix_web::test]
async fn recompute_from_the_event_history_equals_the_incremental_kpis() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = common::config(dir.path());
    let app = common::spawn_with(cfg.clone()).await;
    let d = app.dispatcher();
    let (lat, lon) = app.demo.demo_point;
    let act = |id: String, action: &'static str, body: Value| {
        let (http, base, d) = (app.http.clone(), app.base.clone(), d.clone());
        async move {
            let r =
                http.post(format!("{base}/v1/cases/{id}/{action}")).bearer_auth(d).json(&body).send().await.unwrap();
            assert_eq!(r.status(), 200, "{action}");
        }
    };
    // A closed case with a satisfied callback; one transferred and still
    // open; one rejected; a first-time petition answered, then repeated.
    let a = open(&app, report(&Uuid::new_v4().to_string(), lat, lon, "dispute.neighbourhood")).await;
    act(a.clone(), "claim", json!({})).await;
    act(a.clone(), "resolve", json!({"outcome": "mediated_agreement"})).await;
    act(a.clone(), "close", json!({})).await;
    act(a.clone(), "callback", json!({"satisfaction": "satisfied"})).await;
    let b = open(&app, report(&Uuid::new_v4().to_string(), lat, lon, "dispute.consumer")).await;
    act(b.clone(), "transfer", json!({"channel": "legal_aid", "reason": "需要法律援助"})).await;
    let c = open(&app, report(&Uuid::new_v4().to_string(), lat, lon, "order.public")).await;
    act(c.clone(), "reject", json!({"reason": "不属于受理范围"})).await;
    let petition = |id: &str| {
        let mut b = report(id, lat, lon, "petition.land_acquisition");
        b["parties"] = json!([{"name": "李四", "id_number": "371002198001011234"}]);
        b
    };
    let p1 = open(&app, petition(&Uuid::new_v4().to_string())).await;
    act(p1.clone(), "claim", json!({})).await;
    act(p1.clone(), "resolve", json!({"outcome": "handled"})).await;
    act(p1.clone(), "close", json!({})).await;
    open(&app, petition(&Uuid::new_v4().to_string())).await;

    // Wait until analytics has folded every event of every case.
    let before = eventually("analytics caught up", || async {
        let cases = case::Entity::find().all(&app.ctx.db).await.unwrap();
        let f = facts(&app.ctx.db).await;
        (cases.len() == 5 && cases.iter().all(|c| f.get(&c.id).is_some_and(|(v, _)| *v == c.version))).then_some(f)
    })
    .await;
    let a_json = &before[&a].1;
    assert!(a_json["closed_at"].is_string() && a_json["satisfaction"] == "satisfied", "{a_json}");
    assert!(
        before[&p1].1["disqualified_at"].is_string(),
        "the repeat petition disqualified the first: {}",
        before[&p1].1
    );
    let kpis = |app: &TestApp| {
        let (http, base, t) = (app.http.clone(), app.base.clone(), app.analyst());
        async move {
            let v: Value = http
                .get(format!("{base}/v1/kpis?jurisdiction=371000&period=month"))
                .bearer_auth(t)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["rows"].clone()
        }
    };
    // One event per version step of each case.
    let events: usize = case::Entity::find().all(&app.ctx.db).await.unwrap().iter().map(|c| c.version as usize).sum();
    let rows_before = kpis(&app).await;
    assert_eq!(rows_before[0]["volume"], 5, "{rows_before}");
    app.shutdown().await;

    // Rebuild from the history with the CLI.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gridwork"))
        .args(["kpi", "recompute", "--data-dir", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout);
    let folded: usize = said.split_whitespace().nth(2).and_then(|n| n.parse().ok()).unwrap_or(0);
    assert_eq!(folded, events, "every lifecycle event of the five cases was folded again: {said}");

    let app = common::spawn_with(cfg).await;
    let after = facts(&app.ctx.db).await;
    assert_eq!(after, before, "the rebuild equals the incremental facts exactly");
    assert_eq!(kpis(&app).await, rows_before);
    app.shutdown().await;
}

/// The public KPIs need no token, carry no personal data, are published for
/// streets and above, and withhold small cells.
#[actix_web::test]
async fn public_kpis_withhold_small_cells_and_carry_no_personal_data() {
    let dir = tempfile::tempdir().unwrap();
    let app = common::spawn(dir.path()).await;
    let (lat, lon) = app.demo.demo_point;
    let mut body = report(&Uuid::new_v4().to_string(), lat, lon, "dispute.neighbourhood");
    body["parties"] = json!([{"name": "赵六", "phone": "13700000000"}]);
    let case_id = open(&app, body).await;
    let street = &app.demo.demo_centre;
    let url = |j: &str| format!("{}/v1/public/kpis?jurisdiction={j}&period=month", app.base);
    let v: Value = eventually("the case counted", || async {
        let v: Value = app.http.get(url(street)).send().await.unwrap().json().await.unwrap();
        v["rows"][0]["suppressed"].as_array()?.iter().any(|s| s == "volume").then_some(v)
    })
    .await;
    let row = &v["rows"][0];
    assert_eq!((row["volume"].clone(), row["backlog"].clone()), (Value::Null, Value::Null), "{v}");
    assert_eq!(row["volume_by_category"], json!({"other": null}));
    assert_eq!(v["min_cell"], 5);
    let text = v.to_string();
    assert!(!text.contains(&case_id) && !text.contains("赵六") && !text.contains("13700000000"), "{text}");
    // The signed-in view of the same street shows the figure.
    let (_, inside) = app.get(&app.analyst(), &format!("/v1/kpis?jurisdiction={street}&period=month")).await;
    assert_eq!(inside["rows"][0]["volume"], 1);
    // Grids and communities are not published; the jurisdiction is required.
    let r = app.http.get(url(&app.demo.demo_grid)).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["code"], "jurisdiction_too_fine");
    let r = app.http.get(format!("{}/v1/public/kpis", app.base)).send().await.unwrap();
    assert_eq!(r.status(), 400);
    app.shutdown().await;
}

/// Prometheus gauges carry the current month's KPIs per county, city and
/// province.
#[actix_web::test]
async fn current_month_kpis_are_prometheus_gauges() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = common::config(dir.path());
    cfg.kpi.gauge_refresh_ms = 200;
    let app = common::spawn_with(cfg).await;
    let (lat, lon) = app.demo.demo_point;
    let id = open(&app, report(&Uuid::new_v4().to_string(), lat, lon, "dispute.neighbourhood")).await;
    common::claim_resolve_close(&app.http, &app.base, &app.dispatcher(), &id, "mediated_agreement").await;
    let county = &app.demo.demo_centre[..6];
    let want = [
        format!("gridwork_kpi_current_month{{jurisdiction=\"{county}\",kpi=\"closed\"}} 1"),
        format!("gridwork_kpi_current_month{{jurisdiction=\"{county}\",kpi=\"on_time_close_out\"}} 1"),
        "gridwork_kpi_current_month{jurisdiction=\"371000\",kpi=\"volume\"} 1".to_owned(),
        "gridwork_kpi_current_month{jurisdiction=\"370000\",kpi=\"backlog\"} 0".to_owned(),
    ];
    eventually("the gauges", || async {
        let text = app.http.get(format!("{}/metrics", app.base)).send().await.unwrap().text().await.unwrap();
        want.iter().all(|w| text.lines().any(|l| l == w)).then_some(())
    })
    .await;
    app.shutdown().await;
}

/// The day tallies that are not zero, by jurisdiction and day.
async fn cells(db: &sea_orm::DatabaseConnection) -> BTreeMap<(String, String), (i64, Value)> {
    use gridwork_storage::entity::kpi_cell;
    kpi_cell::Entity::find()
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|c| ((c.jurisdiction, c.day), (c.net_open, serde_json::from_str::<Value>(&c.tally).unwrap())))
        .filter(|(_, (n, t))| *n != 0 || t.as_object().is_some_and(|o| !o.is_empty()))
        .collect()
}

/// Issue 14, item 14: the live fold and the maturity tick never both move
/// the tallies by a difference computed from the same stale fact, also with
/// two analytics replicas on one PostgreSQL database. The history (first-time
/// petitions answered, closed and called back) comes over HTTP; then two
/// replicas, each with its own connection pool, fold it afresh (each the
/// cases of its partitions) while both run the maturity tick over and over,
/// with pause points holding the window between reading a fact and writing
/// it back open. The result must equal `kpi recompute` of the same history.
#[actix_web::test]
async fn fold_and_ticks_of_two_replicas_on_postgres_equal_recompute() {
    use gridwork_bus::{Handler, HandlerError, Message};
    use gridwork_storage::entity::{consumed_event, kpi_cell, outbox};
    use sea_orm::{ColumnTrait, QueryFilter, QueryOrder};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;
    std::env::set_var("GW_PAUSEPOINT", "analytics.fold.read=15,analytics.mature.read=40");
    let dir = tempfile::tempdir().unwrap();
    let pg = common::PgDatabase::create().await;
    let mut cfg = common::config(dir.path());
    cfg.database.url = pg.url.clone();
    let app = common::spawn_with(cfg.clone()).await;
    let d = app.dispatcher();
    let (lat, lon) = app.demo.demo_point;
    const N: usize = 16;
    for i in 0..N {
        let mut b = report(&Uuid::new_v4().to_string(), lat, lon, "petition.land_acquisition");
        b["parties"] = json!([{"name": "李四", "phone": format!("1380000{i:04}")}]);
        let id = open(&app, b).await;
        common::claim_resolve_close(&app.http, &app.base, &d, &id, "handled").await;
        let (s, e) = app.post(&d, &format!("/v1/cases/{id}/callback"), &json!({"satisfaction": "satisfied"})).await;
        assert_eq!(s, 200, "{e}");
    }
    eventually("analytics caught up", || async {
        let cases = case::Entity::find().all(&app.ctx.db).await.unwrap();
        let f = facts(&app.ctx.db).await;
        (cases.len() == N && cases.iter().all(|c| f.get(&c.id).is_some_and(|(v, _)| *v == c.version))).then_some(())
    })
    .await;
    let topic = app.ctx.topics.case_lifecycle.clone();
    app.shutdown().await;

    let window = chrono::Duration::days(cfg.kpi.fcr_window_days);
    // Every answer's observation window has ended by then.
    let later = chrono::Utc::now() + window + chrono::Duration::days(1);
    let db = gridwork_storage::connect(&pg.url, 4).await.unwrap();
    // Analytics from scratch, as `kpi recompute` starts.
    kpi_fact::Entity::delete_many().exec(&db).await.unwrap();
    kpi_cell::Entity::delete_many().exec(&db).await.unwrap();
    consumed_event::Entity::delete_many()
        .filter(consumed_event::Column::Consumer.eq(gridwork_analytics::GROUP))
        .exec(&db)
        .await
        .unwrap();
    let messages: Vec<Message> = outbox::Entity::find()
        .filter(outbox::Column::Topic.eq(topic.as_str()))
        .order_by_asc(outbox::Column::Id)
        .all(&db)
        .await
        .unwrap()
        .into_iter()
        .map(|row| Message {
            topic: row.topic,
            partition: 0,
            offset: row.id,
            key: row.msg_key,
            payload: row.payload,
            headers: Vec::new(),
            timestamp: row.created_at,
        })
        .collect();
    assert!(messages.len() >= N * 5, "{} lifecycle events", messages.len());
    let finished = AtomicUsize::new(0);
    let replica = |r: usize| {
        let (url, finished, messages) = (pg.url.clone(), &finished, &messages);
        async move {
            let db = gridwork_storage::connect(&url, 4).await.unwrap();
            let folder = gridwork_analytics::fold::Folder { db: db.clone(), window };
            let fold = async {
                // Its partitions: per-case order, as the consumer group gives it.
                for m in messages.iter().filter(|m| m.key.iter().map(|b| *b as usize).sum::<usize>() % 2 == r) {
                    loop {
                        match folder.handle(m).await {
                            Ok(()) => break,
                            Err(HandlerError::Retryable(_)) => tokio::time::sleep(Duration::from_millis(10)).await,
                            Err(HandlerError::Poison(e)) => panic!("poison: {e}"),
                        }
                    }
                }
                finished.fetch_add(1, Ordering::SeqCst);
            };
            let tick = async {
                while finished.load(Ordering::SeqCst) < 2 {
                    let _ = gridwork_analytics::fold::mature(&db, later, window).await;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            };
            tokio::join!(fold, tick);
        }
    };
    tokio::join!(replica(0), replica(1));
    // The next tick, after every event was folded.
    while gridwork_analytics::fold::mature(&db, later, window).await.is_err() {}
    let live = (facts(&db).await, cells(&db).await);
    gridwork_analytics::recompute(&db, &topic, window, later, |_| {}).await.unwrap();
    let rebuilt = (facts(&db).await, cells(&db).await);
    let lost: Vec<_> = live.0.iter().filter(|(id, f)| rebuilt.0.get(*id) != Some(*f)).map(|(id, _)| id).collect();
    assert!(lost.is_empty(), "facts differ from the recompute for {} of {N} cases: {lost:?}", lost.len());
    let wrong: Vec<_> = live.1.keys().chain(rebuilt.1.keys()).filter(|k| live.1.get(*k) != rebuilt.1.get(*k)).collect();
    assert!(
        wrong.is_empty(),
        "day tallies differ from the recompute: {wrong:?}\nlive {:?}\nrebuilt {:?}",
        live.1,
        rebuilt.1
    );
}
