//! Steps 1–6 of the pipeline over real HTTP against the all-in-one app.

use crate::helpers;
use std::time::Duration;

use crate::helpers::{eventually, report, spawn};
use gridwork_domain::auth::Role;
use gridwork_events::{Event, Payload};
use serde_json::{json, Value};
use uuid::Uuid;

/// Reads every message of `topic` from the start, decoded.
async fn read_topic(app: &helpers::TestApp, topic: &str) -> Vec<Event> {
    let group = format!("test-reader-{}", Uuid::new_v4());
    let mut c = app.ctx.bus.subscribe(&group, &[topic.to_owned()]).await.unwrap();
    let mut out = Vec::new();
    // A new group may take a while to join (Kafka); then read until idle.
    let mut wait = Duration::from_secs(15);
    while let Some(m) = c.poll(wait).await.unwrap() {
        out.push(Event::decode(&m.payload).expect("every message on a gridwork topic decodes"));
        wait = Duration::from_millis(700);
    }
    c.close().await.unwrap();
    out
}

// On the embedded default, and with state in PostgreSQL and the cache in
// Redis (the machine's servers, as on CI): a database and a key prefix of
// its own.
on_both_backends!(report_to_case_to_kpi, end_to_end);

/// The production shape in one process: Kafka (tansu), PostgreSQL, Redis.
#[actix_web::test]
async fn report_to_case_to_kpi_on_kafka_postgres_and_redis() {
    let dir = tempfile::tempdir().unwrap();
    let real = helpers::RealBackends::start().await;
    let mut cfg = helpers::config(dir.path());
    real.apply(&mut cfg);
    let app = helpers::spawn_with(cfg).await;
    let ready: Value = app.http.get(format!("{}/health/ready", app.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["status"], "ready", "{ready}");
    assert!(ready["checks"]["cache"].as_str().unwrap().starts_with("redis"), "{ready}");
    end_to_end(&app).await;
    app.shutdown().await;
    real.stop().await;
}

async fn end_to_end(app: &helpers::TestApp) {
    let ready: Value = app.http.get(format!("{}/health/ready", app.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["status"], "ready", "{ready}");
    let (worker, dispatcher, analyst) = (app.worker(), app.dispatcher(), app.analyst());
    let (lat, lon) = app.demo.demo_point;

    // 1. A grid worker posts a report; the same id again returns the same report.
    let id = Uuid::new_v4().to_string();
    let body = report(&id, lat, lon, "dispute.neighbourhood");
    let (status, first) = app.post(&worker, "/v1/reports", &body).await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["id"], id.as_str());
    assert_eq!(first["status"], "submitted");
    let (status, again) = app.post(&worker, "/v1/reports", &body).await;
    assert_eq!(status, 200, "a replay is not a new report: {again}");
    assert_eq!(again["id"], id.as_str());
    assert_eq!(again["received_at"], first["received_at"]);
    let mut changed = body.clone();
    changed["description"] = json!("另一件事");
    let (status, err) = app.post(&worker, "/v1/reports", &changed).await;
    assert_eq!(status, 409);
    assert_eq!(err["code"], "report_id_conflict");

    // 2. report-submitted → assigner → report-assigned with the whole hierarchy.
    let assigned = eventually("report-assigned event", || async {
        let events = read_topic(app, &app.ctx.topics.report_assigned).await;
        events.into_iter().find_map(|e| match e.payload {
            Payload::ReportAssigned(a) if a.report_id == id => Some(a),
            _ => None,
        })
    })
    .await;
    let submitted = read_topic(app, &app.ctx.topics.report_submitted).await;
    assert_eq!(
        submitted.iter().filter(|e| matches!(&e.payload, Payload::ReportSubmitted(r) if r.report_id == id)).count(),
        1,
        "the duplicate post published nothing"
    );
    let a = assigned.assignment.clone().unwrap();
    let g = &app.demo.demo_grid;
    assert_eq!(a.grid, *g);
    assert_eq!((a.community.as_str(), a.street.as_str(), a.county.as_str()), (&g[..12], &g[..9], &g[..6]));
    assert_eq!((a.city.as_str(), a.province.as_str()), ("371000", "370000"));
    assert_eq!(a.centre, app.demo.demo_centre);
    assert!(!a.approximate);

    // 3. mediation opens a case in the people's-mediation queue of the owning centre.
    let case = eventually("a case in the centre's queue", || async {
        let (s, list) = app.get(&dispatcher, &format!("/v1/cases?centre={}", app.demo.demo_centre)).await;
        assert_eq!(s, 200, "{list}");
        list["items"].as_array().unwrap().iter().find(|c| c["report_id"] == id.as_str()).cloned()
    })
    .await;
    assert_eq!(case["channel"], "people_mediation");
    assert_eq!(case["status"], "created");
    assert_eq!(case["hierarchy"]["grid"], g.as_str());
    let case_id = case["id"].as_str().unwrap().to_owned();

    // Redelivering the assignment (same event id) creates nothing twice.
    let raw = {
        let mut c = app
            .ctx
            .bus
            .subscribe("test-redeliver", std::slice::from_ref(&app.ctx.topics.report_assigned))
            .await
            .unwrap();
        let m = c.poll(Duration::from_secs(1)).await.unwrap().unwrap();
        c.close().await.unwrap();
        m
    };
    app.ctx
        .bus
        .publish(&raw.topic, gridwork_bus::OutMessage { key: raw.key, payload: raw.payload, headers: vec![] })
        .await
        .unwrap();

    // Outsiders see nothing: a grid worker has no queue, another centre's
    // dispatcher does not see the case.
    let (s, _) = app.get(&worker, "/v1/cases").await;
    assert_eq!(s, 403);
    let other = app.token("d-9", Role::Dispatcher, "371082001");
    let (s, list) = app.get(&other, "/v1/cases").await;
    assert_eq!(s, 200);
    assert!(list["items"].as_array().unwrap().iter().all(|c| c["id"] != case_id.as_str()));
    let (s, _) = app.get(&other, &format!("/v1/cases/{case_id}")).await;
    assert_eq!(s, 404);
    let (s, _) = app.post(&other, &format!("/v1/cases/{case_id}/claim"), &json!({})).await;
    assert_eq!(s, 404);

    // 4. The dispatcher claims, resolves and closes; each step is a lifecycle event.
    let (s, c) = app.post(&dispatcher, &format!("/v1/cases/{case_id}/close"), &json!({})).await;
    assert_eq!((s, c["code"].as_str()), (409, Some("illegal_transition")), "{c}");
    let (s, c) = app.post(&dispatcher, &format!("/v1/cases/{case_id}/claim"), &json!({})).await;
    assert_eq!((s, c["status"].as_str()), (200, Some("claimed")), "{c}");
    let rival = app.token("dispatcher-2", Role::Dispatcher, &app.demo.demo_centre);
    let (s, c) = app.post(&rival, &format!("/v1/cases/{case_id}/claim"), &json!({})).await;
    assert_eq!((s, c["code"].as_str()), (409, Some("claimed_by_another")), "{c}");
    let (s, c) = app.post(&dispatcher, &format!("/v1/cases/{case_id}/resolve"), &json!({})).await;
    assert_eq!((s, c["field"].as_str()), (400, Some("outcome")), "{c}");
    let (s, c) = app
        .post(
            &dispatcher,
            &format!("/v1/cases/{case_id}/resolve"),
            &json!({"outcome": "mediated_agreement", "note": "双方达成和解", "version": 1}),
        )
        .await;
    assert_eq!((s, c["code"].as_str()), (409, Some("stale_version")), "{c}");
    let (s, c) = app
        .post(
            &dispatcher,
            &format!("/v1/cases/{case_id}/resolve"),
            &json!({"outcome": "mediated_agreement", "note": "双方达成和解", "version": 3}),
        )
        .await;
    assert_eq!((s, c["status"].as_str()), (200, Some("resolved")), "{c}");
    let (s, c) = app.post(&dispatcher, &format!("/v1/cases/{case_id}/close"), &json!({})).await;
    assert_eq!((s, c["status"].as_str()), (200, Some("closed")), "{c}");
    let (s, detail) = app.get(&dispatcher, &format!("/v1/cases/{case_id}")).await;
    assert_eq!(s, 200);
    let kinds: Vec<&str> = detail["timeline"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["created", "accepted", "claimed", "resolved", "closed"]);
    assert_eq!(detail["report"]["description"], "楼上装修噪音扰民，多次协商未果");
    let lifecycle = eventually("five lifecycle events on the topic", || async {
        let kinds: Vec<String> = read_topic(app, &app.ctx.topics.case_lifecycle)
            .await
            .into_iter()
            .filter_map(|e| match e.payload {
                Payload::CaseLifecycle(c) if c.case_id == case_id => Some(c.kind),
                _ => None,
            })
            .collect();
        (kinds.len() >= 5).then_some(kinds)
    })
    .await;
    assert_eq!(lifecycle, ["created", "accepted", "claimed", "resolved", "closed"]);

    // 5. Analytics counts the case.
    let row = eventually("the KPI row counting the closed case", || async {
        let (s, k) = app.get(&analyst, "/v1/kpis?jurisdiction=371000&period=day").await;
        assert_eq!(s, 200, "{k}");
        let row = k["rows"].as_array()?.first()?.clone();
        (row["closed"] == 1).then_some(row)
    })
    .await;
    assert_eq!(row["volume"], 1);
    assert_eq!(row["volume_by_category"]["dispute.neighbourhood"], 1);
    assert_eq!(row["on_time_close_out"], json!({"numerator": 1, "denominator": 1, "rate": 1.0}));
    assert_eq!(row["backlog"], 0);
    // Scoped: an analyst of another city may not read Weihai's KPIs.
    let outsider = app.token("a-2", Role::Analyst, "350100");
    let (s, _) = app.get(&outsider, "/v1/kpis?jurisdiction=371000").await;
    assert_eq!(s, 403);

    // 6. The grid worker sees the status change and the timeline.
    let mine = eventually("the report closed on /v1/me/reports", || async {
        let (_, mine) = app.get(&worker, "/v1/me/reports").await;
        let r = mine["items"].as_array()?.iter().find(|r| r["id"] == id.as_str())?.clone();
        (r["status"] == "closed").then_some(r)
    })
    .await;
    let statuses: Vec<&str> =
        mine["timeline"].as_array().unwrap().iter().map(|e| e["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["submitted", "assigned", "queued", "accepted", "in_progress", "resolved", "closed"]);
    let (_, list) = app.get(&worker, "/v1/me/reports").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "one report, never a second");
    let (_, all) = app.get(&dispatcher, "/v1/cases").await;
    assert_eq!(all["items"].as_array().unwrap().iter().filter(|c| c["report_id"] == id.as_str()).count(), 1);
}

#[actix_web::test]
async fn petitions_count_for_first_contact_resolution() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(dir.path()).await;
    let (worker, dispatcher, analyst) = (app.worker(), app.dispatcher(), app.analyst());
    let (lat, lon) = app.demo.demo_point;
    let petition = |id: &str| {
        let mut b = report(id, lat, lon, "petition.land_acquisition");
        b["parties"] = json!([{"name": "李四", "phone": "13900000000", "id_number": "371002198001011234"}]);
        b["matter"] = json!("老城区拆迁补偿标准");
        b
    };
    let first = Uuid::new_v4().to_string();
    let (s, r) = app.post(&worker, "/v1/reports", &petition(&first)).await;
    assert_eq!(s, 201, "{r}");
    let case = eventually("the petition case", || async {
        let (_, l) = app.get(&dispatcher, "/v1/cases?channel=petition").await;
        l["items"].as_array()?.iter().find(|c| c["report_id"] == first.as_str()).cloned()
    })
    .await;
    assert_eq!(case["petition_class"], "first_time");
    let cid = case["id"].as_str().unwrap();
    for (action, body) in [
        ("claim", json!({})),
        ("resolve", json!({"outcome": "handled", "note": "已答复"})),
        ("verify", json!({})),
        ("close", json!({})),
        ("callback", json!({"satisfaction": "basically_satisfied"})),
    ] {
        let (s, c) = app.post(&dispatcher, &format!("/v1/cases/{cid}/{action}"), &body).await;
        assert_eq!(s, 200, "{action}: {c}");
    }
    let kpi = |pred: fn(&Value) -> bool| {
        let app = &app;
        let analyst = analyst.clone();
        async move {
            eventually("KPI row", || async {
                let (_, k) = app.get(&analyst, "/v1/kpis?jurisdiction=371002").await;
                let row = k["rows"].as_array()?.first()?.clone();
                pred(&row).then_some(row)
            })
            .await
        }
    };
    // Answered, inside its 30-day window: provisionally resolved once, not yet final.
    let row = kpi(|r| r["satisfaction"]["denominator"] == 1).await;
    assert_eq!(row["first_time_petitions"], 1);
    assert_eq!(row["first_contact_resolution_provisional"], json!({"numerator": 1, "denominator": 1, "rate": 1.0}));
    assert_eq!(row["first_contact_resolution"], json!({"numerator": 0, "denominator": 0, "rate": null}));
    assert_eq!(row["satisfaction"], json!({"numerator": 1, "denominator": 1, "rate": 1.0}));

    // The same petitioner raises the same matter again: a repeat petition,
    // and the first one no longer counts as resolved once.
    let second = Uuid::new_v4().to_string();
    let mut body = petition(&second);
    body["parties"][0]["id_number"] = json!(" 371002198001011234 ");
    body["matter"] = json!("老城区 拆迁补偿标准。");
    let (s, _) = app.post(&worker, "/v1/reports", &body).await;
    assert_eq!(s, 201);
    let repeat = eventually("the repeat petition case", || async {
        let (_, l) = app.get(&dispatcher, "/v1/cases?channel=petition").await;
        l["items"].as_array()?.iter().find(|c| c["report_id"] == second.as_str()).cloned()
    })
    .await;
    assert_eq!(repeat["petition_class"], "repeat");
    let row = kpi(|r| r["volume"] == 2).await;
    assert_eq!(row["first_time_petitions"], 1);
    assert_eq!(row["first_contact_resolution"], json!({"numerator": 0, "denominator": 1, "rate": 0.0}));
    assert_eq!(row["first_contact_resolution_provisional"], json!({"numerator": 0, "denominator": 1, "rate": 0.0}));

    // Topics never carry the petitioner's identity.
    for topic in [&app.ctx.topics.report_submitted, &app.ctx.topics.report_assigned, &app.ctx.topics.case_lifecycle] {
        let mut c =
            app.ctx.bus.subscribe(&format!("pii-{}", Uuid::new_v4()), std::slice::from_ref(topic)).await.unwrap();
        while let Some(m) = c.poll(Duration::from_millis(200)).await.unwrap() {
            let text = String::from_utf8_lossy(&m.payload);
            for secret in ["李四", "13900000000", "371002198001011234"] {
                assert!(!text.contains(secret), "{topic} carries {secret}");
            }
        }
    }
    app.shutdown().await;
}

#[actix_web::test]
async fn bad_input_gets_clear_4xx_never_500() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(dir.path()).await;
    let worker = app.worker();
    let (lat, lon) = app.demo.demo_point;
    let ok = report(&Uuid::new_v4().to_string(), lat, lon, "dispute.neighbourhood");
    let with = |f: &dyn Fn(&mut Value)| {
        let mut b = ok.clone();
        f(&mut b);
        b
    };
    let cases: Vec<(Value, &str, Option<&str>)> = vec![
        (
            with(&|b| {
                b.as_object_mut().unwrap().remove("category");
            }),
            "missing_field",
            Some("category"),
        ),
        (with(&|b| b["location"]["lat"] = json!(91.0)), "invalid_coordinates", Some("location.lat")),
        (with(&|b| b["location"]["lon"] = json!(-181.0)), "invalid_coordinates", Some("location.lon")),
        (with(&|b| b["location"]["lat"] = json!("north")), "invalid_body", None),
        (with(&|b| b["category"] = json!("dispute.unicorns")), "unknown_category", Some("category")),
        (with(&|b| b["description"] = json!("")), "missing_field", Some("description")),
        (with(&|b| b["colour"] = json!("red")), "unknown_field", Some("colour")),
        (with(&|b| b["location"]["crs"] = json!("bd09")), "invalid_body", None),
        (with(&|b| b["occurred_at"] = json!("2999-01-01T00:00:00Z")), "occurred_in_future", Some("occurred_at")),
        (with(&|b| b["parties"] = json!([{"name": " "}])), "missing_field", Some("parties[0].name")),
    ];
    for (body, code, field) in cases {
        let (s, e) = app.post(&worker, "/v1/reports", &body).await;
        assert_eq!(s, 400, "{body} → {e}");
        assert_eq!(e["code"], code, "{body} → {e}");
        assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()) && e["message_zh"].as_str().is_some());
        if let Some(f) = field {
            assert_eq!(e["field"], f);
        }
    }
    let (s, e) = app.post_raw(&worker, "/v1/reports", r#"{"id": "#).await;
    assert_eq!((s, e["code"].as_str()), (400, Some("malformed_json")));
    let (s, e) = app.post_raw(&worker, "/v1/reports", r#"{"location": {"lat": NaN}}"#).await;
    assert_eq!((s, e["code"].as_str()), (400, Some("malformed_json")));
    let big = "x".repeat(300 * 1024);
    let (s, e) = app.post_raw(&worker, "/v1/reports", &format!(r#"{{"description": "{big}"}}"#)).await;
    assert_eq!((s, e["code"].as_str()), (413, Some("payload_too_large")));
    // Tokens.
    let (s, e) = app.post("not-a-token", "/v1/reports", &ok).await;
    assert_eq!((s, e["code"].as_str()), (401, Some("invalid_token")));
    let analyst = app.analyst();
    let (s, _) = app.post(&analyst, "/v1/reports", &ok).await;
    assert_eq!(s, 403);
    // Queries and paths.
    let d = app.dispatcher();
    let (s, e) = app.get(&d, "/v1/cases?status=lost").await;
    assert_eq!((s, e["field"].as_str()), (400, Some("status")));
    let (s, e) = app.get(&d, "/v1/cases?cursor=%%%").await;
    assert_eq!(s, 400, "{e}");
    let (s, e) = app.get(&d, "/v1/cases/not-a-uuid").await;
    assert_eq!((s, e["code"].as_str()), (400, Some("invalid_path")));
    let (s, e) = app.post(&d, &format!("/v1/cases/{}/dance", Uuid::new_v4()), &json!({})).await;
    assert_eq!((s, e["code"].as_str()), (404, Some("unknown_action")));
    let (s, e) = app.get(&app.analyst(), "/v1/kpis?period=fortnight").await;
    assert_eq!((s, e["field"].as_str()), (400, Some("period")));
    let (s, e) = app.get(&worker, "/v1/grids/locate?lat=99&lon=122").await;
    assert_eq!((s, e["code"].as_str()), (400, Some("invalid_coordinates")));
    let (s, e) = app.get(&worker, "/v1/nowhere").await;
    assert_eq!((s, e["code"].as_str()), (404, Some("not_found")));
    // Login.
    let (s, t) = app.post("", "/v1/auth/token", &json!({"username": "worker-1", "password": "gridwork-demo"})).await;
    assert_eq!(s, 200, "{t}");
    let (s, me) = app.get(t["access_token"].as_str().unwrap(), "/v1/me/reports").await;
    assert_eq!(s, 200, "{me}");
    let (s, e) = app.post("", "/v1/auth/token", &json!({"username": "worker-1", "password": "wrong"})).await;
    assert_eq!((s, e["code"].as_str()), (401, Some("invalid_credentials")));
    // Locate answers with the hierarchy, and converts GCJ-02.
    let (s, l) = app.get(&worker, &format!("/v1/grids/locate?lat={lat}&lon={lon}")).await;
    assert_eq!(s, 200);
    assert_eq!(l["grid"], app.demo.demo_grid.as_str());
    let (glon, glat) = gridwork_geoindex::wgs84_to_gcj02(lon, lat);
    let (_, g) = app.get(&worker, &format!("/v1/grids/locate?lat={glat}&lon={glon}&crs=gcj02")).await;
    assert_eq!(g["grid"], app.demo.demo_grid.as_str());
    assert!((g["wgs84"]["lat"].as_f64().unwrap() - lat).abs() < 1e-6);
    // Health and metrics.
    let r = app.http.get(format!("{}/health/ready", app.base)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let m = app.http.get(format!("{}/metrics", app.admin)).send().await.unwrap().text().await.unwrap();
    assert!(m.contains("gridwork_http_requests_total"), "{m}");
    app.shutdown().await;
}

/// Two dispatchers claim the same case at the same moment: exactly one wins,
/// the other gets 409; the loser may take over only after a release.
async fn claim_race(app: &helpers::TestApp) {
    let worker = app.worker();
    let (lat, lon) = app.demo.demo_point;
    let a = app.token("dispatcher-a", Role::Dispatcher, &app.demo.demo_centre);
    let b = app.token("dispatcher-b", Role::Dispatcher, &app.demo.demo_centre);
    let mut ids = Vec::new();
    // Six different incidents (different categories: the same one at the
    // same spot would be linked into one case).
    for category in [
        "dispute.consumer",
        "dispute.neighbourhood",
        "dispute.marriage_family",
        "dispute.property_management",
        "environment.sanitation",
        "order.public",
    ] {
        let id = Uuid::new_v4().to_string();
        assert_eq!(app.post(&worker, "/v1/reports", &report(&id, lat, lon, category)).await.0, 201);
        ids.push(id);
    }
    let cases = eventually("six cases", || async {
        let (_, v) = app.get(&a, "/v1/cases?limit=200").await;
        let found: Vec<String> = v["items"]
            .as_array()?
            .iter()
            .filter(|c| ids.iter().any(|i| c["report_id"] == i.as_str()))
            .map(|c| c["id"].as_str().unwrap_or_default().to_owned())
            .collect();
        (found.len() == ids.len()).then_some(found)
    })
    .await;
    for cid in &cases {
        let path = format!("/v1/cases/{cid}/claim");
        let empty = json!({});
        let (ra, rb) = futures::join!(app.post(&a, &path, &empty), app.post(&b, &path, &empty));
        let mut codes = [ra.0, rb.0];
        codes.sort();
        assert_eq!(codes, [200, 409], "{} / {}", ra.1, rb.1);
        let loser_body = if ra.0 == 409 { &ra.1 } else { &rb.1 };
        assert_eq!(loser_body["code"], "claimed_by_another");
        let (winner, loser) = if ra.0 == 200 { (&a, &b) } else { (&b, &a) };
        // The winner renews; the loser is still refused; after a release the loser gets it.
        assert_eq!(app.post(winner, &path, &json!({})).await.0, 200);
        assert_eq!(app.post(loser, &path, &json!({})).await.0, 409);
        assert_eq!(app.post(winner, &format!("/v1/cases/{cid}/release"), &json!({})).await.0, 200);
        assert_eq!(app.post(loser, &path, &json!({})).await.0, 200);
    }
}

on_both_backends!(concurrent_claims_exactly_one_wins, claim_race);

/// The live stream of a centre shows a change as it happens; other centres
/// and grid workers may not watch it.
#[actix_web::test]
async fn live_stream_of_a_centre() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(dir.path()).await;
    let d = app.dispatcher();
    let county = app.token("county-1", Role::Dispatcher, &app.demo.demo_centre[..6]);
    let url = |code: &str| format!("{}/v1/centres/{code}/stream", app.base);
    let mut street = app.http.get(url(&app.demo.demo_centre)).bearer_auth(&d).send().await.unwrap();
    let mut above = app.http.get(url(&app.demo.demo_centre[..6])).bearer_auth(&county).send().await.unwrap();
    assert_eq!((street.status().as_u16(), above.status().as_u16()), (200, 200));
    street.chunk().await.unwrap();
    above.chunk().await.unwrap();
    let (lat, lon) = app.demo.demo_point;
    let id = Uuid::new_v4().to_string();
    assert_eq!(app.post(&app.worker(), "/v1/reports", &report(&id, lat, lon, "dispute.neighbourhood")).await.0, 201);
    for s in [&mut street, &mut above] {
        let chunk = tokio::time::timeout(Duration::from_secs(10), s.chunk()).await.unwrap().unwrap().unwrap();
        let text = String::from_utf8_lossy(&chunk);
        assert!(text.starts_with("id: ") && text.contains("event: case"), "{text}");
        assert!(text.contains("\"kind\":\"created\"") && text.contains(&id), "{text}");
    }
    let other = app.token("d-9", Role::Dispatcher, "371082001");
    let r = app.http.get(url(&app.demo.demo_centre)).bearer_auth(&other).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let r = app.http.get(url(&app.demo.demo_centre)).bearer_auth(app.worker()).send().await.unwrap();
    assert_eq!(r.status(), 403);
    drop((street, above));
    app.shutdown().await;
}

/// A revoked token is refused by every request after it, and stays refused
/// when the cache forgets (the database is the truth).
async fn revocation(app: &helpers::TestApp) {
    let (s, t) =
        app.post("", "/v1/auth/token", &json!({"username": "dispatcher-1", "password": "gridwork-demo"})).await;
    assert_eq!(s, 200, "{t}");
    let token = t["access_token"].as_str().unwrap().to_owned();
    assert_eq!(app.get(&token, "/v1/cases").await.0, 200);
    let (s, r) = app.post(&token, "/v1/auth/revoke", &json!({})).await;
    assert_eq!(s, 200, "{r}");
    let jti = r["jti"].as_str().unwrap().to_owned();
    let (s, e) = app.get(&token, "/v1/cases").await;
    assert_eq!((s, e["code"].as_str()), (401, Some("token_revoked")));
    // The cache forgets everything about the token: still refused.
    app.ctx.cache.del(&format!("auth:revoked:{jti}")).await.unwrap();
    app.ctx.cache.del(&format!("auth:ok:{jti}")).await.unwrap();
    let (s, _) = app.get(&token, "/v1/cases").await;
    assert_eq!(s, 401);
    // Other tokens of the same user are not affected.
    assert_eq!(app.get(&app.dispatcher(), "/v1/cases").await.0, 200);
}

on_both_backends!(revoked_tokens_are_refused, revocation);

/// A consumer's counter in `metrics`, summed over the groups whose name
/// ends in one of `groups`.
fn consumer_counter(metrics: &str, name: &str, groups: &[&str]) -> f64 {
    metrics
        .lines()
        .filter(|l| l.contains(name))
        .filter(|l| groups.iter().any(|g| l.contains(&format!("{g}\"}}"))))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A burst (a phone's offline queue of 100 reports) reaches every stage at
/// once: the consumers take what is waiting in batches, one transaction
/// each (ADR 0037), and every report still becomes exactly one case.
#[actix_web::test]
async fn a_burst_is_handled_in_batches_and_each_report_becomes_one_case() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = helpers::config(dir.path());
    // No linking: each report its own case.
    cfg.mediation.link_distance_m = 0.0;
    let app = helpers::spawn_with(cfg).await;
    let worker = app.worker();
    let (lat, lon) = app.demo.demo_point;
    let ids: Vec<String> = (0..100).map(|_| Uuid::new_v4().to_string()).collect();
    let items: Vec<Value> = ids.iter().map(|id| report(id, lat, lon, "dispute.neighbourhood")).collect();
    let (s, out) = app.post(&worker, "/v1/reports/batch", &json!({ "reports": items })).await;
    assert_eq!(s, 200, "{out}");
    assert_eq!(out["accepted"], 100, "{out}");
    use gridwork_storage::entity::case;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let cases = eventually("a case for every report", || async {
        let rows =
            case::Entity::find().filter(case::Column::ReportId.is_in(ids.clone())).all(&app.ctx.db).await.ok()?;
        (rows.len() >= ids.len()).then_some(rows)
    })
    .await;
    let mut reports: Vec<&str> = cases.iter().map(|c| c.report_id.as_str()).collect();
    reports.sort_unstable();
    reports.dedup();
    assert_eq!((cases.len(), reports.len()), (100, 100), "one case per report");
    let stages = ["assigner", "mediation"];
    let metrics = app.metrics().await;
    let messages = consumer_counter(&metrics, "consumer_messages_total", &stages);
    let units = consumer_counter(&metrics, "consumer_transactions_total", &stages);
    assert!(messages >= 200.0, "both stages handled the burst: {messages} messages");
    let per_stage: Vec<(&str, f64, f64)> = stages
        .iter()
        .map(|g| {
            let one = [*g];
            (
                *g,
                consumer_counter(&metrics, "consumer_messages_total", &one),
                consumer_counter(&metrics, "consumer_transactions_total", &one),
            )
        })
        .collect();
    eprintln!("per stage (messages, transactions): {per_stage:?}");
    // How many join a batch depends on how fast the burst arrives; seen
    // here: 67 to 102 transactions for the 200 messages.
    assert!(
        units <= messages * 0.8,
        "the burst was handled in batches: {messages} messages in {units} transactions ({per_stage:?})"
    );
    app.shutdown().await;
}
