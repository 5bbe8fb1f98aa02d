//! Infrastructure trouble is not poison (ADR 0023): a database outage in the
//! middle of the pipeline delays reports but loses none and dead-letters
//! none; a Kafka consumer waiting on a dependency keeps its group
//! membership; the dead-letter tools put poison back after a fix.

use crate::helpers;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::helpers::{eventually, report, OwnPostgres};
use chrono::Utc;
use gridwork_bus::{
    Consume, ConsumerHealth, ConsumerState, EventBus, Handler, HandlerError, Message, NoProbe, OutMessage, RetryPolicy,
    TopicSpec,
};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

async fn count(db: &sea_orm::DatabaseConnection, sql: &str) -> i64 {
    let row = db.query_one(Statement::from_string(DbBackend::Postgres, sql)).await.unwrap().unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}

/// `gridwork up` on PostgreSQL: 200 reports accepted, PostgreSQL stopped
/// (`-m immediate`) while they are on their way to their queues and kept
/// down for longer than the old bounded retries lasted, then started again.
/// Every report gets its case, nothing is dead-lettered, and while the
/// database was down the process said it was not ready and why.
#[actix_web::test]
async fn a_database_outage_mid_pipeline_delays_reports_but_loses_and_dead_letters_none() {
    let pg = OwnPostgres::start();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = helpers::config(dir.path());
    cfg.database.url = pg.url();
    // Each try gives up on the pool after 1 s: five tries used to end in the
    // dead-letter topic within ~8 s, so a 12 s outage shows the difference.
    cfg.database.acquire_timeout_ms = 1000;
    let app = helpers::spawn_with(cfg).await;
    let worker = app.worker();
    let (lat, lon) = app.demo.demo_point;
    let categories = [
        "dispute.neighbourhood",
        "dispute.consumer",
        "order.public",
        "dispute.property_management",
        "dispute.marriage_family",
    ];
    let mut ids = Vec::new();
    let mut batches = Vec::new();
    for b in 0..2 {
        let items: Vec<Value> = (0..100)
            .map(|i| {
                let k = b * 100 + i;
                let id = Uuid::new_v4().to_string();
                ids.push(id.clone());
                let mut r = report(
                    &id,
                    lat + 0.0002 * f64::from(k % 10) - 0.001,
                    lon + 0.0002 * f64::from(k / 10 % 10) - 0.001,
                    categories[k as usize % categories.len()],
                );
                r["occurred_at"] = json!((Utc::now() - chrono::Duration::hours(4 * i64::from(k))).to_rfc3339());
                r
            })
            .collect();
        batches.push(json!({"reports": items}));
    }
    let (a, b) = tokio::join!(
        app.post(&worker, "/v1/reports/batch", &batches[0]),
        app.post(&worker, "/v1/reports/batch", &batches[1])
    );
    for (s, body) in [a, b] {
        assert_eq!(s, 200, "{body}");
        assert_eq!(body["accepted"], 100, "{body}");
    }
    // Stop the database once the first cases exist and before the last.
    let watch = sea_orm::Database::connect(pg.url()).await.unwrap();
    let mut cases_at_stop = 0;
    for _ in 0..2000 {
        cases_at_stop = count(&watch, "SELECT count(*) FROM cases").await;
        if cases_at_stop > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    watch.close().await.unwrap();
    pg.stop_immediate();
    assert!(cases_at_stop > 0 && cases_at_stop < 200, "stopped mid-pipeline: {cases_at_stop} cases at the stop");
    eprintln!("PostgreSQL stopped with {cases_at_stop} of 200 cases opened");

    // While it is down: not ready, and which consumer waits for what.
    let blocked = eventually("a consumer blocked on the database", || async {
        let r = app.http.get(format!("{}/health/ready", app.base)).send().await.ok()?;
        let status = r.status().as_u16();
        let v: Value = r.json().await.ok()?;
        (status == 503 && v["checks"]["consumers"].is_object()).then_some(v)
    })
    .await;
    let why = blocked["checks"]["consumers"].to_string();
    assert!(why.contains("database"), "{blocked}");
    tokio::time::sleep(Duration::from_secs(12)).await;
    let dead = gridwork::dlq::select(app.ctx.bus.as_ref(), &app.ctx.topics, &Default::default()).await.unwrap();
    assert!(dead.is_empty(), "an outage is not poison: {:?}", dead.iter().map(|d| d.line()).collect::<Vec<_>>());

    pg.start_server();
    let db = sea_orm::Database::connect(pg.url()).await.unwrap();
    let waiting = eventually("every report in its queue", || async {
        let n = count(&db, "SELECT count(*) FROM reports WHERE case_id IS NULL OR status IN ('submitted', 'assigned')")
            .await;
        (n == 0).then_some(n)
    })
    .await;
    assert_eq!(waiting, 0);
    assert_eq!(count(&db, "SELECT count(*) FROM reports").await, 200);
    // One case per report, or linked to one: never two cases for a report.
    assert_eq!(
        count(&db, "SELECT count(*) FROM (SELECT report_id FROM cases GROUP BY report_id HAVING count(*) > 1) d").await,
        0
    );
    // Analytics folded every case.
    eventually("analytics caught up", || async {
        let facts = count(&db, "SELECT count(*) FROM kpi_case_facts").await;
        let cases = count(&db, "SELECT count(*) FROM cases").await;
        (facts == cases).then_some(())
    })
    .await;
    let dead = gridwork::dlq::select(app.ctx.bus.as_ref(), &app.ctx.topics, &Default::default()).await.unwrap();
    assert!(dead.is_empty(), "{:?}", dead.iter().map(|d| d.line()).collect::<Vec<_>>());
    let ready = eventually("ready again", || async {
        let r = app.http.get(format!("{}/health/ready", app.base)).send().await.ok()?;
        (r.status() == 200).then_some(())
    })
    .await;
    assert_eq!(ready, ());
    let metrics = app.metrics().await;
    let blocked_secs: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("gridwork_consumer_blocked_seconds_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(blocked_secs >= 10.0, "the consumers waited the outage out: {blocked_secs} s\n{metrics}");
    // Every group catches up: the last cases' later events (the phone's
    // status, the KPI fold of each step) may still be on their way when
    // the fold has seen every case, and offsets are committed after the
    // work (ADR 0023), so the lag reaches 0 a little later under load.
    let lag = eventually("every consumer group caught up", || async {
        let lag = gridwork::dlq::lag(app.ctx.bus.as_ref(), "", &app.ctx.topics).await.ok()?;
        (lag.iter().map(|l| l.lag).sum::<i64>() == 0).then_some(lag)
    })
    .await;
    assert!(lag.iter().all(|l| l.lag == 0), "{lag:?}");
    db.close().await.unwrap();
    app.shutdown().await;
}

/// A handler on Kafka that says its database is down for twice the
/// broker's `max.poll.interval.ms`.
struct Outage {
    until: std::time::Instant,
    handled: Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl Handler for Outage {
    async fn handle(&self, msg: &Message) -> Result<(), HandlerError> {
        if std::time::Instant::now() < self.until {
            return Err(HandlerError::Unavailable("database: connection refused".into()));
        }
        self.handled.lock().unwrap().push(String::from_utf8_lossy(&msg.payload).into_owned());
        Ok(())
    }
}

/// The consumers that overran `max.poll.interval.ms` while retrying left
/// their groups and never came back. Waiting on a dependency now pauses the
/// partitions and keeps polling: no rebalance, nothing handled twice or out
/// of order, nothing dead-lettered.
#[actix_web::test]
async fn a_kafka_consumer_waiting_on_a_dependency_keeps_its_group_membership() {
    let broker = helpers::Broker::start();
    // The smallest interval librdkafka allows beside a 6 s session timeout.
    let url = format!("{}?max.poll.interval.ms=7000&session.timeout.ms=6000", broker.url());
    let bus = gridwork_bus::connect(&url, "faults-test").await.unwrap();
    let prefix = format!("t{}.", Uuid::new_v4().simple());
    let (topic, dlq) = (format!("{prefix}in"), format!("{prefix}dlq"));
    for t in [&topic, &dlq] {
        bus.create_topic(&TopicSpec::new(t.clone(), 2)).await.unwrap();
    }
    let sent: Vec<String> = (0..20).map(|i| format!("k{}-{i}", i % 4)).collect();
    for body in &sent {
        let key = body.split('-').next().unwrap().as_bytes().to_vec();
        bus.publish(&topic, OutMessage { key, payload: body.clone().into_bytes(), headers: vec![] }).await.unwrap();
    }
    let handler =
        Arc::new(Outage { until: std::time::Instant::now() + Duration::from_secs(16), handled: Mutex::new(vec![]) });
    let health = ConsumerHealth::new(format!("{prefix}g"), vec![topic.clone()]);
    let run = Consume {
        bus: bus.clone(),
        group: format!("{prefix}g"),
        topics: vec![topic.clone()],
        dead_letter_topic: dlq.clone(),
        policy: RetryPolicy { max_blocked_backoff: Duration::from_secs(1), ..RetryPolicy::default() },
        handler: handler.clone(),
        probe: Arc::new(NoProbe),
        health: health.clone(),
    };
    let stop = CancellationToken::new();
    let task = tokio::spawn(run.run(stop.clone()));
    eventually("blocked", || async { matches!(health.snapshot().state, ConsumerState::Blocked { .. }).then_some(()) })
        .await;
    // Past the outage (16 s, over twice max.poll.interval.ms) and its drain.
    let mut handled = Vec::new();
    for _ in 0..600 {
        handled = handler.handled.lock().unwrap().clone();
        if handled.len() >= sent.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let snap = health.snapshot();
    assert_eq!(handled.len(), sent.len(), "every message once: {handled:?} ({snap:?})");
    for k in 0..4 {
        let of_key: Vec<&String> = handled.iter().filter(|b| b.starts_with(&format!("k{k}-"))).collect();
        let expected: Vec<&String> = sent.iter().filter(|b| b.starts_with(&format!("k{k}-"))).collect();
        assert_eq!(of_key, expected, "per-key order");
    }
    assert_eq!(snap.revocations, 0, "never dropped from the group: {snap:?}");
    assert_eq!(snap.rejoins, 0, "{snap:?}");
    assert!(snap.blocked_seconds >= 14.0, "{snap:?}");
    assert_eq!(snap.state, ConsumerState::Running);
    stop.cancel();
    task.await.unwrap().unwrap();
    let dead: usize = {
        let mut n = 0;
        for (p, _, _) in bus.watermarks(&dlq).await.unwrap() {
            n += bus.read(&dlq, p, 0, 100).await.unwrap().len();
        }
        n
    };
    assert_eq!(dead, 0);
    eventually("offsets committed", || async {
        let lag: i64 = bus
            .group_offsets(&format!("{prefix}g"), std::slice::from_ref(&topic))
            .await
            .ok()?
            .iter()
            .map(|p| p.lag())
            .sum();
        (lag == 0).then_some(())
    })
    .await;
}

/// The fault suite's finding: after a PostgreSQL restart a partition of
/// mediation's stayed paused for good. librdkafka keeps a partition's pause
/// across a rebalance: a partition paused while its consumer waited, taken
/// away by a rebalance, and given back after the consumer had resumed what
/// it then owned, was never fetched again. A new assignment starts unpaused.
#[actix_web::test]
async fn a_partition_paused_during_an_outage_and_handed_back_by_a_rebalance_is_consumed() {
    let broker = helpers::Broker::start();
    let url = format!("{}?session.timeout.ms=6000&max.poll.interval.ms=7000", broker.url());
    let bus = gridwork_bus::connect(&url, "faults-test").await.unwrap();
    let prefix = format!("t{}.", Uuid::new_v4().simple());
    let topic = format!("{prefix}in");
    bus.create_topic(&TopicSpec::new(topic.clone(), 2)).await.unwrap();
    let group = format!("{prefix}g");
    let topics = vec![topic.clone()];
    let publish = |tag: &'static str| {
        let bus = bus.clone();
        let topic = topic.clone();
        async move {
            for i in 0..20 {
                let body = format!("{tag}-{i}");
                let out = OutMessage { key: format!("k{i}").into_bytes(), payload: body.into_bytes(), headers: vec![] };
                bus.publish(&topic, out).await.unwrap();
            }
        }
    };
    // A owns both partitions and has read the first batch.
    let mut a = bus.subscribe(&group, &topics).await.unwrap();
    publish("before").await;
    let mut got = 0;
    for _ in 0..600 {
        if got == 20 {
            break;
        }
        if let Some(m) = a.poll(Duration::from_millis(100)).await.unwrap() {
            a.commit(&m).await.unwrap();
            got += 1;
        }
    }
    assert_eq!(got, 20, "A reads the first batch");
    // A's dependency is down: it pauses everything and keeps polling.
    a.pause_all().await.unwrap();
    // B joins: the partitions are shared out while A is paused.
    let mut b = bus.subscribe(&group, &topics).await.unwrap();
    for _ in 0..300 {
        let _ = a.poll(Duration::from_millis(50)).await;
        let _ = b.poll(Duration::from_millis(50)).await;
        let mine = (0..2).filter(|p| a.owns(&topic, *p)).count();
        let theirs = (0..2).filter(|p| b.owns(&topic, *p)).count();
        if mine == 1 && theirs == 1 {
            break;
        }
    }
    assert_eq!((0..2).filter(|p| a.owns(&topic, *p)).count(), 1, "the group shares the partitions");
    // The dependency is back: A resumes what it owns now.
    a.resume_all().await.unwrap();
    // B leaves: its partition goes back to A.
    b.close().await.unwrap();
    publish("after").await;
    let mut after = std::collections::BTreeSet::new();
    for _ in 0..900 {
        if after.len() == 20 {
            break;
        }
        if let Some(m) = a.poll(Duration::from_millis(100)).await.unwrap() {
            let body = String::from_utf8_lossy(&m.payload).into_owned();
            if body.starts_with("after-") {
                after.insert(body);
            }
            a.commit(&m).await.unwrap();
        }
    }
    assert_eq!(after.len(), 20, "every message of both partitions reaches A: {after:?}");
    a.close().await.unwrap();
}

/// Poison: a dead letter is listed, shown and replayed once the handler is
/// fixed; replaying again changes nothing (consumers de-duplicate by event id).
struct Picky {
    fixed: AtomicBool,
    calls: AtomicU32,
    seen: Mutex<std::collections::BTreeSet<String>>,
}

#[async_trait::async_trait]
impl Handler for Picky {
    async fn handle(&self, msg: &Message) -> Result<(), HandlerError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let ev = gridwork_events::Event::decode(&msg.payload).map_err(|e| HandlerError::Poison(e.to_string()))?;
        if !self.fixed.load(Ordering::SeqCst) {
            return Err(HandlerError::Poison("unknown category".into()));
        }
        self.seen.lock().unwrap().insert(ev.id.to_string());
        Ok(())
    }
}

#[actix_web::test]
async fn dead_letters_are_listed_and_replayed_idempotently_after_a_fix() {
    let bus: Arc<dyn EventBus> = Arc::new(gridwork_bus::LogBus::in_memory().await.unwrap());
    let topics = gridwork_events::Topics::new("");
    for t in [&topics.report_submitted, &topics.dead_letter] {
        bus.create_topic(&TopicSpec::new(t.clone(), 2)).await.unwrap();
    }
    let event = |n: usize| {
        gridwork_events::Event::new(
            "intake",
            Utc::now(),
            gridwork_events::Payload::ReportSubmitted(gridwork_events::pb::report::ReportSubmitted {
                report_id: format!("r{n}"),
                ..Default::default()
            }),
        )
    };
    let events: Vec<_> = (0..3).map(event).collect();
    for e in &events {
        bus.publish(
            &topics.report_submitted,
            OutMessage { key: e.id.to_string().into_bytes(), payload: e.encode(), headers: vec![] },
        )
        .await
        .unwrap();
    }
    let handler = Arc::new(Picky {
        fixed: AtomicBool::new(false),
        calls: AtomicU32::new(0),
        seen: Mutex::new(Default::default()),
    });
    let run = |h: Arc<Picky>| Consume {
        bus: bus.clone(),
        group: "assigner".into(),
        topics: vec![topics.report_submitted.clone()],
        dead_letter_topic: topics.dead_letter.clone(),
        policy: RetryPolicy::default(),
        handler: h,
        probe: Arc::new(NoProbe),
        health: ConsumerHealth::new("assigner", vec![]),
    };
    let stop = CancellationToken::new();
    let task = tokio::spawn(run(handler.clone()).run(stop.clone()));
    let all = Default::default();
    let dead = eventually("three dead letters", || async {
        let d = gridwork::dlq::select(bus.as_ref(), &topics, &all).await.ok()?;
        (d.len() == 3).then_some(d)
    })
    .await;
    assert!(dead.iter().all(|d| d.reason == "unknown category" && d.source_topic == topics.report_submitted));
    assert!(dead.iter().all(|d| d.schema.as_deref() == Some(gridwork_events::schema::REPORT_SUBMITTED)));
    // By event id: exactly that one.
    let one = gridwork::dlq::Selection { event_ids: vec![events[1].id.to_string()], ..Default::default() };
    let picked = gridwork::dlq::select(bus.as_ref(), &topics, &one).await.unwrap();
    assert_eq!(picked.len(), 1);
    assert_eq!(picked[0].event_id.as_deref(), Some(events[1].id.to_string().as_str()));
    // A dry run publishes nothing.
    let calls = handler.calls.load(Ordering::SeqCst);
    let dry = gridwork::dlq::replay(&bus, &topics, &all, true, |_| {}).await.unwrap();
    assert_eq!(dry, gridwork::dlq::Replayed { replayed: 3, skipped: 0, dry_run: true });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(handler.calls.load(Ordering::SeqCst), calls);

    handler.fixed.store(true, Ordering::SeqCst);
    let done = gridwork::dlq::replay(&bus, &topics, &all, false, |_| {}).await.unwrap();
    assert_eq!(done.replayed, 3);
    let want: std::collections::BTreeSet<String> = events.iter().map(|e| e.id.to_string()).collect();
    eventually("replayed and handled", || async { (*handler.seen.lock().unwrap() == want).then_some(()) }).await;
    // Replaying again: delivered again, and the handler (like every
    // gridwork consumer) finds the event ids already done.
    gridwork::dlq::replay(&bus, &topics, &all, false, |_| {}).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(*handler.seen.lock().unwrap(), want);
    assert_eq!(gridwork::dlq::select(bus.as_ref(), &topics, &all).await.unwrap().len(), 3, "no new dead letters");
    stop.cancel();
    task.await.unwrap().unwrap();
}

fn gridwork_cli(dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gridwork"))
        .args(args)
        .args(["--data-dir", &dir.display().to_string()])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The operator's commands against a running `gridwork up`: a garbage
/// message on report.submitted is dead-lettered by the assigner and shown by
/// `gridwork dlq list|show`; `replay --dry-run` names it; `gridwork lag`
/// reports every group caught up.
#[actix_web::test]
async fn the_dlq_and_lag_commands_show_what_an_operator_needs() {
    let dir = tempfile::tempdir().unwrap();
    let app = helpers::spawn(dir.path()).await;
    app.ctx
        .bus
        .publish(
            &app.ctx.topics.report_submitted,
            OutMessage { key: b"garbage".to_vec(), payload: b"\xff\xfe not protobuf".to_vec(), headers: vec![] },
        )
        .await
        .unwrap();
    let dead = eventually("the garbage dead-lettered", || async {
        let d = gridwork::dlq::select(app.ctx.bus.as_ref(), &app.ctx.topics, &Default::default()).await.ok()?;
        (d.len() == 1).then_some(d)
    })
    .await;
    assert_eq!(dead[0].group, "assigner");
    let (ok, out, err) = gridwork_cli(dir.path(), &["dlq", "list", "--json"]);
    assert!(ok, "{err}");
    let listed: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(listed.len(), 1, "{out}");
    assert_eq!(listed[0]["source_topic"], app.ctx.topics.report_submitted);
    assert_eq!(listed[0]["group"], "assigner");
    assert!(listed[0]["reason"].as_str().unwrap().contains("envelope"), "{out}");
    let (ok, out, err) = gridwork_cli(dir.path(), &["dlq", "show", "--source", "gridwork.report.submitted"]);
    assert!(ok, "{err}");
    assert!(out.contains("gridwork.dlq.reason") && out.contains("do not decode"), "{out}");
    let (ok, out, err) = gridwork_cli(dir.path(), &["dlq", "replay", "--dry-run"]);
    assert!(ok, "{err}");
    assert_eq!(
        serde_json::from_str::<Value>(out.trim()).unwrap(),
        json!({"replayed": 1, "skipped": 0, "dry_run": true})
    );
    assert!(err.contains("would replay"), "{err}");
    eventually("caught up", || async {
        let (ok, out, _) = gridwork_cli(dir.path(), &["lag", "--json"]);
        let total: i64 = out.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["lag"].as_i64().unwrap()).sum();
        (ok && total == 0 && out.lines().count() > 6).then_some(())
    })
    .await;
    app.shutdown().await;
}
