//! `gridwork kpi recompute` rebuilds the KPIs from the event history alone,
//! and the rebuild equals what analytics computed incrementally.

use crate::helpers;
use std::collections::BTreeMap;

use crate::helpers::{eventually, report, TestApp};
use gridwork_storage::entity::{case, kpi_fact};
use sea_orm::EntityTrait;
use serde_json::{json, Value};
use uuid::Uuid;

async fn open(app: &TestApp, body: Value) -> String {
    app.submit_and_wait_for_case(&body).await["id"].as_str().unwrap().to_owned()
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
    let cfg = helpers::config(dir.path());
    let app = helpers::spawn_with(cfg.clone()).await;
    let d = app.dispatcher();
    let (lat, lon) = app.demo.demo_point;
    // A closed case with a satisfied callback; one transferred and still
    // open; one rejected; a first-time petition answered, then repeated.
    let a = open(&app, report(&Uuid::new_v4().to_string(), lat, lon, "dispute.neighbourhood")).await;
    app.act_ok(&d, &a, "claim", json!({})).await;
    app.act_ok(&d, &a, "resolve", json!({"outcome": "mediated_agreement"})).await;
    app.act_ok(&d, &a, "close", json!({})).await;
    app.act_ok(&d, &a, "callback", json!({"satisfaction": "satisfied"})).await;
    let b = open(&app, report(&Uuid::new_v4().to_string(), lat, lon, "dispute.consumer")).await;
    app.act_ok(&d, &b, "transfer", json!({"channel": "legal_aid", "reason": "需要法律援助"})).await;
    let c = open(&app, report(&Uuid::new_v4().to_string(), lat, lon, "order.public")).await;
    app.act_ok(&d, &c, "reject", json!({"reason": "不属于受理范围"})).await;
    let petition = |id: &str| {
        let mut b = report(id, lat, lon, "petition.land_acquisition");
        b["parties"] = json!([{"name": "李四", "id_number": "371002198001011234"}]);
        b
    };
    let p1 = open(&app, petition(&Uuid::new_v4().to_string())).await;
    app.act_ok(&d, &p1, "claim", json!({})).await;
    app.act_ok(&d, &p1, "resolve", json!({"outcome": "handled"})).await;
    app.act_ok(&d, &p1, "close", json!({})).await;
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

    let app = helpers::spawn_with(cfg).await;
    let after = facts(&app.ctx.db).await;
    assert_eq!(after, before, "the rebuild equals the incremental facts exactly");
    assert_eq!(kpis(&app).await, rows_before);
    app.shutdown().await;
}

/// The public KPIs need no token, carry no personal data, are published for
/// streets and above and for whole, completed calendar months only: the
/// month still running is not published (a figure that grows day by day
/// gives each day's cases away by difference).
#[actix_web::test]
async fn public_kpis_withhold_small_cells_and_carry_no_personal_data() {
    let dir = tempfile::tempdir().unwrap();
    let app = helpers::spawn(dir.path()).await;
    let (lat, lon) = app.demo.demo_point;
    let mut body = report(&Uuid::new_v4().to_string(), lat, lon, "dispute.neighbourhood");
    body["parties"] = json!([{"name": "赵六", "phone": "13700000000"}]);
    let case_id = open(&app, body).await;
    let street = &app.demo.demo_centre;
    // The signed-in view of the street shows this month's figure …
    let (_, inside) = eventually("the case counted", || async {
        let (s, v) = app.get(&app.analyst(), &format!("/v1/kpis?jurisdiction={street}&period=month")).await;
        (v["rows"][0]["volume"] == 1).then_some((s, v))
    })
    .await;
    assert_eq!(inside["rows"][0]["volume"], 1);
    // … the public view does not publish the month still running.
    let url = |j: &str| format!("{}/v1/public/kpis?jurisdiction={j}&period=month", app.base);
    let (_, last) = last_month();
    let (first, end) = (
        last.succ_opt().unwrap(),
        last.succ_opt().unwrap().checked_add_months(chrono::Months::new(1)).unwrap().pred_opt().unwrap(),
    );
    let r = app.http.get(format!("{}&from={first}&to={end}", url(street))).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!((e["code"].as_str(), e["field"].as_str()), (Some("invalid_range"), Some("to")), "{e}");
    // A completed month: published, with no case ids and no personal data.
    let (from, to) = last_month();
    let r = app.http.get(format!("{}&from={from}&to={to}", url(street))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["min_cell"], 5);
    let text = v.to_string();
    assert!(!text.contains(&case_id) && !text.contains("赵六") && !text.contains("13700000000"), "{text}");
    // Days, weeks, quarters and years are not published (they nest, and
    // nested ranges difference into each other).
    for period in ["day", "week", "quarter", "year"] {
        let r = app.http.get(format!("{}/v1/public/kpis?jurisdiction={street}&period={period}", app.base));
        let r = r.send().await.unwrap();
        assert_eq!(r.status(), 400, "{period}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["code"], "invalid_period", "{e}");
    }
    // Grids and communities are not published; the jurisdiction is required.
    let r = app.http.get(url(&app.demo.demo_grid)).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["code"], "jurisdiction_too_fine");
    let r = app.http.get(format!("{}/v1/public/kpis", app.base)).send().await.unwrap();
    assert_eq!(r.status(), 400);
    app.shutdown().await;
}

/// The first and last day of the last completed month (China time).
fn last_month() -> (chrono::NaiveDate, chrono::NaiveDate) {
    use chrono::Datelike;
    let today = gridwork_domain::kpi::china_day(chrono::Utc::now());
    let to = today.with_day(1).unwrap().pred_opt().unwrap();
    (to.with_day(1).unwrap(), to)
}

/// Writes the day tallies the fold would have written for `n` cases created
/// on `day` in `grid`, for each `(grid, day, n)`.
async fn seed_cases(db: &sea_orm::DatabaseConnection, cases: &[(&str, &str, usize)]) {
    use gridwork_domain::kpi::{self, CaseFacts, Tally};
    use gridwork_storage::entity::kpi_cell;
    use sea_orm::{ActiveModelTrait, Set};
    let mut delta: BTreeMap<(String, chrono::NaiveDate), Tally> = BTreeMap::new();
    for (grid, day, n) in cases {
        let day: chrono::NaiveDate = day.parse().unwrap();
        // Noon in China.
        let at = day.and_hms_opt(4, 0, 0).unwrap().and_utc();
        for _ in 0..*n {
            let f = CaseFacts::opened(
                Uuid::new_v4(),
                gridwork_domain::codes::Hierarchy::from_grid_code(grid).unwrap(),
                "dispute.neighbourhood".into(),
                gridwork_domain::Channel::PeopleMediation,
                at,
                at + chrono::Duration::days(3),
                None,
            );
            for (k, t) in kpi::delta(None, &f) {
                delta.entry(k).or_default().add(&t, 1);
            }
        }
    }
    // And the month tallies, as the fold keeps them beside the day tallies.
    for ((code, month), t) in gridwork_analytics::fold::month_delta(&delta) {
        gridwork_storage::entity::kpi_month_cell::ActiveModel {
            jurisdiction: Set(code),
            month: Set(month),
            net_open: Set(t.created - t.ended),
            tally: Set(serde_json::to_string(&t).unwrap()),
        }
        .insert(db)
        .await
        .unwrap();
    }
    for ((code, day), t) in delta {
        kpi_cell::ActiveModel {
            jurisdiction: Set(code),
            day: Set(day.to_string()),
            net_open: Set(t.created - t.ended),
            tally: Set(serde_json::to_string(&t).unwrap()),
            version: Set(1),
            dirty: Set(false),
        }
        .insert(db)
        .await
        .unwrap();
    }
}

/// Issue 14, item 13: a withheld public figure cannot be recovered by
/// differencing published ones: a county's total against its streets' (for
/// every count, rate denominator and category), or a range against the same
/// range one day shorter.
#[actix_web::test]
async fn public_kpis_cannot_be_differenced_back_into_withheld_cells() {
    let dir = tempfile::tempdir().unwrap();
    let app = helpers::spawn(dir.path()).await;
    let min = 5;
    // March 2024 in 环翠区: three streets with 2, 6 and 7 cases; one case of
    // the second street on the last day of the month.
    seed_cases(
        &app.ctx.db,
        &[
            ("371002001001001", "2024-03-10", 2),
            ("371002002001001", "2024-03-10", 5),
            ("371002002001001", "2024-03-31", 1),
            ("371002003001001", "2024-03-12", 7),
        ],
    )
    .await;
    let get = |q: String| {
        let (http, base) = (app.http.clone(), app.base.clone());
        async move {
            let r = http.get(format!("{base}/v1/public/kpis?{q}")).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let march = |j: &str| get(format!("jurisdiction={j}&period=month&from=2024-03-01&to=2024-03-31"));
    let (s, county) = march("371002").await;
    assert_eq!(s, 200, "{county}");
    let county = county["rows"][0].clone();
    assert_eq!(county["volume"], 15, "the county's total is published: {county}");
    let mut streets = Vec::new();
    for code in ["371002001", "371002002", "371002003"] {
        let (s, v) = march(code).await;
        assert_eq!(s, 200, "{v}");
        streets.push((code, v["rows"][0].clone()));
    }
    // (figure, the county's value, each street's value or None if withheld)
    type Parts<'a> = Vec<(&'a str, Option<u64>)>;
    let mut figures: Vec<(String, u64, Parts)> = Vec::new();
    for (name, total) in county.as_object().unwrap() {
        let of = |r: &Value| match total {
            Value::Object(_) => r[name]["denominator"].as_u64(),
            _ => r[name].as_u64(),
        };
        if let Some(t) = of(&county) {
            figures.push((name.clone(), t, streets.iter().map(|(c, r)| (*c, of(r))).collect()));
        }
    }
    for (cat, total) in county["volume_by_category"].as_object().unwrap() {
        if let (Some(t), false) = (total.as_u64(), cat == "other") {
            let parts = streets.iter().map(|(c, r)| (*c, r["volume_by_category"][cat].as_u64())).collect();
            figures.push((format!("volume_by_category.{cat}"), t, parts));
        }
    }
    assert!(figures.iter().any(|(f, _, _)| f == "volume"), "{figures:?}");
    for (figure, total, parts) in &figures {
        let withheld: Vec<&str> = parts.iter().filter(|(_, v)| v.is_none()).map(|(c, _)| *c).collect();
        let rest = total - parts.iter().filter_map(|(_, v)| *v).sum::<u64>();
        assert!(
            withheld.is_empty() || rest == 0 || rest >= min,
            "{figure}: the county's {total} minus its published streets recovers {rest} for {withheld:?}, withheld"
        );
    }
    // A range against the same range one day shorter.
    let (s1, whole) = get("jurisdiction=371002&period=month&from=2024-03-01&to=2024-03-31".into()).await;
    let (s2, short) = get("jurisdiction=371002&period=month&from=2024-03-01&to=2024-03-30".into()).await;
    if let (200, 200) = (s1, s2) {
        if let (Some(a), Some(b)) = (whole["rows"][0]["volume"].as_u64(), short["rows"][0]["volume"].as_u64()) {
            assert!(a == b || a - b >= min, "2024-03-31 alone, withheld as a day, recovered as {a} − {b} = {}", a - b);
        }
    }
    app.shutdown().await;
}

/// Prometheus gauges carry the current month's KPIs per county, city and
/// province, on the admin listener only (issue 14, item 9): the API listener
/// answers `/metrics` with 404, and the gauges withhold small cells by the
/// rule of `/v1/public/kpis`.
#[actix_web::test]
async fn current_month_kpis_are_prometheus_gauges_on_the_admin_listener_without_small_cells() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = helpers::config(dir.path());
    cfg.kpi.gauge_refresh_ms = 200;
    let app = helpers::spawn_with(cfg).await;
    // Not on the API listener, with or without a token.
    for token in [None, Some(app.token("admin", gridwork_domain::auth::Role::Admin, ""))] {
        let mut req = app.http.get(format!("{}/metrics", app.base));
        if let Some(t) = &token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 404, "/metrics on the API listener (token: {})", token.is_some());
    }
    let (lat, lon) = app.demo.demo_point;
    let id = open(&app, report(&Uuid::new_v4().to_string(), lat, lon, "dispute.neighbourhood")).await;
    helpers::claim_resolve_close(&app.http, &app.base, &app.dispatcher(), &id, "mediated_agreement").await;
    let county = &app.demo.demo_centre[..6];
    // One case: every count of 1 is withheld, zero is shown.
    let text = eventually("the gauges", || async {
        let text = app.http.get(format!("{}/metrics", app.admin)).send().await.unwrap().text().await.unwrap();
        let zero = "gridwork_kpi_current_month{jurisdiction=\"370000\",kpi=\"backlog\"} 0";
        text.lines().any(|l| l == zero).then_some(text)
    })
    .await;
    for shown in [
        format!("gridwork_kpi_current_month{{jurisdiction=\"{county}\",kpi=\"closed\"}}"),
        format!("gridwork_kpi_current_month{{jurisdiction=\"{county}\",kpi=\"on_time_close_out\"}}"),
        "gridwork_kpi_current_month{jurisdiction=\"371000\",kpi=\"volume\"}".to_owned(),
        "gridwork_kpi_current_month{jurisdiction=\"370000\",kpi=\"median_hours_to_close\"}".to_owned(),
    ] {
        let line = text.lines().find(|l| l.starts_with(&shown));
        assert!(line.is_none(), "a small cell is exported: {line:?}");
    }
    // Probes use the admin listener too.
    let r = app.http.get(format!("{}/health/ready", app.admin)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    app.shutdown().await;
}

/// Every month tally is the sum of its month's day tallies, and exists
/// exactly where one of them does (issue 17).
pub(crate) async fn assert_month_cells_sum_days(db: &sea_orm::DatabaseConnection) {
    use gridwork_domain::kpi::Tally;
    use gridwork_storage::entity::{kpi_cell, kpi_month_cell};
    let mut sums: BTreeMap<(String, String), (i64, Tally)> = BTreeMap::new();
    for c in kpi_cell::Entity::find().all(db).await.unwrap() {
        let e = sums.entry((c.jurisdiction, c.day[..7].to_owned())).or_default();
        e.0 += c.net_open;
        e.1.add(&serde_json::from_str(&c.tally).unwrap(), 1);
    }
    let months: BTreeMap<(String, String), (i64, Tally)> = kpi_month_cell::Entity::find()
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|m| ((m.jurisdiction, m.month), (m.net_open, serde_json::from_str(&m.tally).unwrap())))
        .collect();
    assert_eq!(months, sums, "month tallies against the sums of their day tallies");
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
    let pg = helpers::PgDatabase::create().await;
    let mut cfg = helpers::config(dir.path());
    cfg.database.url = pg.url.clone();
    let app = helpers::spawn_with(cfg.clone()).await;
    let d = app.dispatcher();
    let (lat, lon) = app.demo.demo_point;
    const N: usize = 16;
    for i in 0..N {
        let mut b = report(&Uuid::new_v4().to_string(), lat, lon, "petition.land_acquisition");
        b["parties"] = json!([{"name": "李四", "phone": format!("1380000{i:04}")}]);
        let id = open(&app, b).await;
        helpers::claim_resolve_close(&app.http, &app.base, &d, &id, "handled").await;
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
    gridwork_storage::entity::kpi_month_cell::Entity::delete_many().exec(&db).await.unwrap();
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
                            Err(HandlerError::Retryable(_) | HandlerError::Unavailable(_)) => {
                                tokio::time::sleep(Duration::from_millis(10)).await
                            }
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
    assert_month_cells_sum_days(&db).await;
    gridwork_analytics::recompute(&db, &topic, window, later, |_| {}).await.unwrap();
    let rebuilt = (facts(&db).await, cells(&db).await);
    assert_month_cells_sum_days(&db).await;
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
