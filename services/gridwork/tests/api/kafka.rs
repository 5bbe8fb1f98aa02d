//! The production shape against real servers on loopback: Kafka (tansu),
//! PostgreSQL and Redis, with every service its own process.

use crate::helpers;
use std::collections::BTreeSet;
use std::time::Duration;

use crate::helpers::{migrate_demo, poll_json, start_process, token_from, RealBackends};
use gridwork_bus::OutMessage;
use gridwork_domain::auth::Role;
use serde_json::{json, Value};
use uuid::Uuid;

fn report(id: &str, lat: f64, lon: f64) -> Value {
    json!({
        "id": id, "occurred_at": chrono::Utc::now().to_rfc3339(),
        "location": {"lat": lat, "lon": lon}, "category": "dispute.neighbourhood",
        "description": "邻里纠纷",
    })
}

/// intake, assigner, two mediation replicas and analytics as five processes;
/// the replicas share the work through their consumer group and both serve
/// the API; a consumer gridwork did not write (Python, confluent-kafka,
/// classes from `protoc --python_out`) reads the topics.
#[tokio::test]
async fn services_as_processes_on_kafka_postgres_redis() {
    let dir = tempfile::tempdir().unwrap();
    let real = RealBackends::start().await;
    let env = real.env(dir.path());
    let grid = migrate_demo(&env);
    // The demo grid's worker reports all over 环翠区 and beyond its street.
    let mut intake_env = env.clone();
    intake_env.push(("GRIDWORK_INTAKE__REPORT_AREA".into(), "city".into()));
    let intake = start_process("gridwork-intake", &[], &intake_env);
    let assigner = start_process("gridwork-assigner", &[], &env);
    let mediation_a = start_process("gridwork-mediation", &[], &env);
    let mediation_b = start_process("gridwork-mediation", &[], &env);
    let analytics = start_process("gridwork-analytics", &[], &env);
    let http = reqwest::Client::new();
    for s in [&intake, &assigner, &mediation_a, &mediation_b, &analytics] {
        let r: Value = http.get(format!("{}/health/ready", s.base)).send().await.unwrap().json().await.unwrap();
        assert_eq!(r["status"], "ready", "{}: {r}", s.base);
        assert!(r["checks"]["cache"].as_str().unwrap().starts_with("redis"));
    }
    let worker = token_from(dir.path(), "worker-1", Role::GridWorker, &grid);
    let admin = token_from(dir.path(), "admin", Role::Admin, "");
    let dispatcher = token_from(dir.path(), "dispatcher-1", Role::Dispatcher, &grid[..9]);
    let analyst = token_from(dir.path(), "analyst-1", Role::Analyst, "371000");

    // Reports all over 环翠区, so their grids (the report-assigned keys) spread
    // over both partitions. The second replica joins the group a few seconds
    // after the first takes every partition, so reports come in waves until
    // both replicas have done part of the work.
    let cases_created = |admin: String| {
        let http = http.clone();
        async move {
            let text = http.get(format!("{admin}/metrics")).send().await.unwrap().text().await.unwrap();
            text.lines()
                .filter(|l| l.starts_with("gridwork_cases_created_total"))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
                .sum::<u64>()
        }
    };
    let mut ids = Vec::new();
    let mut per_replica = Vec::new();
    for wave in 0..15 {
        for i in 0..6 {
            let id = Uuid::new_v4().to_string();
            let k = f64::from(wave * 6 + i);
            let (lat, lon) = (37.40 + 0.0013 * k, 121.98 + 0.0025 * k);
            let r = http
                .post(format!("{}/v1/reports", intake.base))
                .bearer_auth(&worker)
                .json(&report(&id, lat, lon))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
            ids.push(id);
        }
        poll_json(&http, &format!("{}/v1/cases?limit=200", mediation_a.base), &admin, |v| {
            v["items"].as_array().is_some_and(|a| a.len() >= ids.len())
        })
        .await;
        per_replica =
            vec![cases_created(mediation_a.admin.clone()).await, cases_created(mediation_b.admin.clone()).await];
        if per_replica.iter().all(|n| *n > 0) {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert!(per_replica.iter().all(|n| *n > 0), "the group shares the work: {per_replica:?}");
    let demo = Uuid::new_v4().to_string();
    let r = http
        .post(format!("{}/v1/reports", intake.base))
        .bearer_auth(&worker)
        .json(&report(&demo, 37.5095, 122.115))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    ids.push(demo.clone());

    let all = poll_json(&http, &format!("{}/v1/cases?limit=200", mediation_a.base), &admin, |v| {
        v["items"].as_array().is_some_and(|a| a.len() >= ids.len())
    })
    .await;
    let found: Vec<&str> = all["items"].as_array().unwrap().iter().map(|c| c["report_id"].as_str().unwrap()).collect();
    assert_eq!(found.len(), ids.len(), "exactly one case per report");
    for id in &ids {
        assert!(found.contains(&id.as_str()));
    }
    // Both replicas serve the same queues.
    let from_b = poll_json(&http, &format!("{}/v1/cases?limit=200", mediation_b.base), &admin, |_| true).await;
    assert_eq!(from_b["items"].as_array().unwrap().len(), ids.len());
    let total = cases_created(mediation_a.admin.clone()).await + cases_created(mediation_b.admin.clone()).await;
    assert_eq!(total, ids.len() as u64, "every case was opened once, by one replica");

    // A dispatcher watches the live stream on replica A…
    let mut live = http
        .get(format!("{}/v1/centres/{}/stream", mediation_a.base, &grid[..9]))
        .bearer_auth(&dispatcher)
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), 200);
    assert!(String::from_utf8_lossy(&live.chunk().await.unwrap().unwrap()).contains("connected"));
    // …while the demo case is worked through replica B.
    let case = all["items"].as_array().unwrap().iter().find(|c| c["report_id"] == demo.as_str()).unwrap().clone();
    let cid = case["id"].as_str().unwrap();
    helpers::claim_resolve_close(&http, &mediation_b.base, &dispatcher, cid, "mediated_agreement").await;
    // Replica A's stream carried every change made on replica B (Redis pub/sub).
    let mut seen = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !seen.contains("\"kind\":\"closed\"") && std::time::Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(5), live.chunk()).await {
            Ok(Ok(Some(c))) => seen.push_str(&String::from_utf8_lossy(&c)),
            _ => break,
        }
    }
    for kind in ["accepted", "claimed", "resolved", "closed"] {
        assert!(seen.contains(&format!("\"kind\":\"{kind}\"")), "{kind} missing from the live stream: {seen}");
    }
    assert!(seen.contains(cid));
    drop(live);
    // A client that saw only the first of those events on replica A resumes
    // on replica B from that event's id and gets the rest.
    let first_id = seen.lines().find_map(|l| l.strip_prefix("id: ")).unwrap().to_owned();
    let mut resumed = http
        .get(format!("{}/v1/centres/{}/stream", mediation_b.base, &grid[..9]))
        .bearer_auth(&dispatcher)
        .header("Last-Event-ID", &first_id)
        .send()
        .await
        .unwrap();
    assert_eq!(resumed.status(), 200);
    let mut replay = String::new();
    while !replay.contains("\"kind\":\"closed\"") {
        match tokio::time::timeout(Duration::from_secs(10), resumed.chunk()).await {
            Ok(Ok(Some(c))) => replay.push_str(&String::from_utf8_lossy(&c)),
            other => panic!("resume on replica B stopped early ({other:?}): {replay}"),
        }
    }
    for kind in ["claimed", "resolved", "closed"] {
        assert!(replay.contains(&format!("\"kind\":\"{kind}\"")), "{kind} missing from the resumed stream: {replay}");
    }
    assert!(!replay.contains(&format!("id: {first_id}\n")), "the event seen already is not sent again");
    drop(resumed);
    let k = poll_json(&http, &format!("{}/v1/kpis?jurisdiction=371000", analytics.base), &analyst, |v| {
        v["rows"].as_array().and_then(|r| r.first()).is_some_and(|r| r["closed"] == 1 && r["volume"] == ids.len())
    })
    .await;
    assert_eq!(k["rows"][0]["on_time_close_out"]["numerator"], 1);
    poll_json(&http, &format!("{}/v1/reports/{demo}", intake.base), &worker, |v| v["status"] == "closed").await;

    // The independent consumer.
    let out = std::process::Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tools/consume_topics.py"))
        .args(["--brokers", &real.broker.addr, "--prefix", &real.prefix, "--report-id", &demo, "--expect-grid", &grid])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python consumer: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(seen["assigned"]["grid"], grid.as_str());
    assert_eq!(seen["assigned"]["centre"], &grid[..9]);
    assert_eq!(seen["lifecycle"][0]["channel"], "people_mediation");

    // Without crashes, the two replicas' outbox relays published every
    // lifecycle event exactly once (one relay at a time per producer).
    let bus = gridwork_bus::connect(&real.broker.url(), "test-reader").await.unwrap();
    let mut c = bus
        .subscribe(&format!("{}reader", real.prefix), &[format!("{}gridwork.case.lifecycle", real.prefix)])
        .await
        .unwrap();
    let (mut messages, mut distinct) = (0, std::collections::HashSet::new());
    let mut wait = Duration::from_secs(20);
    while let Some(m) = c.poll(wait).await.unwrap() {
        wait = Duration::from_secs(2);
        messages += 1;
        distinct.insert(gridwork_events::Event::decode(&m.payload).unwrap().id);
    }
    assert!(messages >= ids.len() + 4, "created for every case, and the demo case's four transitions: {messages}");
    assert_eq!(messages, distinct.len(), "no lifecycle event was published twice");
    c.close().await.unwrap();

    // SIGTERM: every process stops cleanly.
    for s in [intake, assigner, mediation_a, mediation_b, analytics] {
        let mut s = s;
        std::process::Command::new("kill").args(["-TERM", &s.child.id().to_string()]).status().unwrap();
        let status = s.child.wait().unwrap();
        assert!(status.success(), "{} exited {status:?}", s.base);
    }
    real.stop().await;
}

/// SIGKILL of mediation after its transaction committed but before its
/// offset did: the restarted process gets the message again and still opens
/// exactly one case per report.
#[tokio::test]
async fn sigkill_of_mediation_between_commit_and_offset_opens_no_second_case() {
    let dir = tempfile::tempdir().unwrap();
    let real = RealBackends::start().await;
    let env = real.env(dir.path());
    let grid = migrate_demo(&env);
    let intake = start_process("gridwork-intake", &[], &env);
    let _assigner = start_process("gridwork-assigner", &[], &env);
    let mut armed = env.clone();
    armed.push(("GW_FAILPOINT".into(), "mediation.after_db_commit".into()));
    armed.push(("GW_FAILPOINT_DIR".into(), dir.path().display().to_string()));
    let mut mediation = start_process("gridwork-mediation", &[], &armed);
    let http = reqwest::Client::new();
    let worker = token_from(dir.path(), "worker-1", Role::GridWorker, &grid);
    let dispatcher = token_from(dir.path(), "dispatcher-1", Role::Dispatcher, &grid[..9]);
    let id = Uuid::new_v4().to_string();
    let r = http
        .post(format!("{}/v1/reports", intake.base))
        .bearer_auth(&worker)
        .json(&report(&id, 37.5095, 122.115))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let hit = dir.path().join("mediation.after_db_commit.hit");
    for _ in 0..300 {
        if hit.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(hit.exists(), "mediation reached the failpoint");
    mediation.child.kill().unwrap(); // SIGKILL
    mediation.child.wait().unwrap();

    let mediation = start_process("gridwork-mediation", &[], &env);
    // The case committed before the kill is there, and only once, also after
    // the redelivered message has been handled (its offset gets committed).
    let list = poll_json(&http, &format!("{}/v1/cases", mediation.base), &dispatcher, |v| {
        v["items"].as_array().is_some_and(|a| a.iter().any(|c| c["report_id"] == id.as_str()))
    })
    .await;
    assert_eq!(list["items"].as_array().unwrap().iter().filter(|c| c["report_id"] == id.as_str()).count(), 1);
    // A second report flows after it, so the partition moved on.
    let id2 = Uuid::new_v4().to_string();
    let r = http
        .post(format!("{}/v1/reports", intake.base))
        .bearer_auth(&worker)
        // Another incident (a report of the same one would be linked to the case).
        .json(&{
            let mut b = report(&id2, 37.5095, 122.115);
            b["category"] = json!("dispute.property_management");
            b
        })
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let list = poll_json(&http, &format!("{}/v1/cases", mediation.base), &dispatcher, |v| {
        v["items"].as_array().is_some_and(|a| a.iter().any(|c| c["report_id"] == id2.as_str()))
    })
    .await;
    let reports: Vec<&str> =
        list["items"].as_array().unwrap().iter().map(|c| c["report_id"].as_str().unwrap()).collect();
    assert_eq!(reports.iter().filter(|r| **r == id).count(), 1);
    assert_eq!(reports.iter().filter(|r| **r == id2).count(), 1);
    assert_eq!(reports.len(), 2);
    drop(mediation);
    real.stop().await;
}

/// Garbage on every consumed topic goes to the dead-letter topic with its
/// origin, while the next good message is processed.
async fn garbage_goes_to_dead_letter(app: &helpers::TestApp) {
    let t = &app.ctx.topics;
    for topic in [&t.report_submitted, &t.report_assigned, &t.case_lifecycle] {
        app.ctx
            .bus
            .publish(
                topic,
                OutMessage { key: b"garbage".to_vec(), payload: b"\x08\xff\xffnot protobuf".to_vec(), headers: vec![] },
            )
            .await
            .unwrap();
    }
    let worker = app.worker();
    let id = Uuid::new_v4().to_string();
    let (lat, lon) = app.demo.demo_point;
    let (s, _) = app.post(&worker, "/v1/reports", &helpers::report(&id, lat, lon, "dispute.neighbourhood")).await;
    assert_eq!(s, 201);
    helpers::eventually("the good report's case", || async {
        let (_, v) = app.get(&app.dispatcher(), "/v1/cases").await;
        v["items"].as_array()?.iter().find(|c| c["report_id"] == id.as_str()).cloned()
    })
    .await;
    let prefix = &app.ctx.config.bus.topic_prefix;
    let expected: BTreeSet<(String, String)> = [
        (t.report_submitted.clone(), "assigner"),
        (t.report_assigned.clone(), "mediation"),
        (t.report_assigned.clone(), "intake"),
        (t.case_lifecycle.clone(), "intake"),
        (t.case_lifecycle.clone(), "analytics"),
    ]
    .into_iter()
    .map(|(topic, g)| (topic, format!("{prefix}{g}")))
    .collect();
    let mut c = app
        .ctx
        .bus
        .subscribe(&format!("{prefix}dlq-reader-{}", Uuid::new_v4()), std::slice::from_ref(&t.dead_letter))
        .await
        .unwrap();
    let mut seen = BTreeSet::new();
    let mut wait = Duration::from_secs(20);
    while seen.len() < expected.len() {
        let Some(m) = c.poll(wait).await.unwrap() else { break };
        wait = Duration::from_secs(5);
        assert_eq!(m.payload, b"\x08\xff\xffnot protobuf");
        assert!(m.header("gridwork.dlq.reason").is_some_and(|r| !r.is_empty()));
        assert!(m.header("gridwork.dlq.source.offset").is_some_and(|o| o.parse::<i64>().is_ok()));
        assert!(m.header("gridwork.dlq.source.partition").is_some());
        seen.insert((
            m.header("gridwork.dlq.source.topic").unwrap().to_owned(),
            m.header("gridwork.dlq.group").unwrap().to_owned(),
        ));
    }
    assert_eq!(seen, expected);
}

#[actix_web::test]
async fn garbage_goes_to_dead_letter_on_the_embedded_log() {
    let dir = tempfile::tempdir().unwrap();
    let app = helpers::spawn(dir.path()).await;
    garbage_goes_to_dead_letter(&app).await;
    app.shutdown().await;
}

#[actix_web::test]
async fn garbage_goes_to_dead_letter_on_kafka() {
    let dir = tempfile::tempdir().unwrap();
    let real = RealBackends::start().await;
    let mut cfg = helpers::config(dir.path());
    real.apply(&mut cfg);
    let app = helpers::spawn_with(cfg).await;
    garbage_goes_to_dead_letter(&app).await;
    app.shutdown().await;
    real.stop().await;
}

/// The outbox relay hands a batch to the bus at once: on Kafka every
/// message is enqueued before any is awaited, and they land in the log in
/// the batch's order within each partition, each once.
#[tokio::test]
async fn a_batch_published_at_once_keeps_its_order_per_partition() {
    let broker = helpers::Broker::start();
    let bus = gridwork_bus::connect(&broker.url(), "batch-test").await.unwrap();
    let topic = format!("t{}.batch", Uuid::new_v4().simple());
    bus.create_topic(&gridwork_bus::TopicSpec::new(topic.clone(), 2)).await.unwrap();
    let msgs: Vec<(String, OutMessage)> = (0..300)
        .map(|i| {
            let key = format!("k{}", i % 3).into_bytes();
            (topic.clone(), OutMessage { key, payload: format!("{}-{i}", i % 3).into_bytes(), headers: vec![] })
        })
        .collect();
    let results = bus.publish_many(msgs).await;
    assert_eq!(results.len(), 300);
    assert!(results.iter().all(Result::is_ok), "{:?}", results.iter().find(|r| r.is_err()));
    // Per key (so per partition): the batch's order, nothing twice.
    let mut seen: std::collections::HashMap<String, Vec<usize>> = Default::default();
    // The log's end counts every message (tansu 0.6 counted a batch of
    // several records as one offset: lag and the dead-letter tools read
    // the watermarks, so the producer sends one record per batch).
    let mut total = 0;
    for (partition, _, high) in bus.watermarks(&topic).await.unwrap() {
        let got = bus.read(&topic, partition, 0, high as usize + 1).await.unwrap();
        assert_eq!(got.len() as i64, high, "partition {partition}");
        total += high;
        for m in got {
            let text = String::from_utf8(m.payload).unwrap();
            let (k, i) = text.split_once('-').unwrap();
            seen.entry(k.to_owned()).or_default().push(i.parse().unwrap());
        }
    }
    assert_eq!(total, 300);
    for k in ["0", "1", "2"] {
        let want: Vec<usize> = (0..300).filter(|i| (i % 3).to_string() == k).collect();
        assert_eq!(seen.get(k), Some(&want), "key {k}");
    }
}
