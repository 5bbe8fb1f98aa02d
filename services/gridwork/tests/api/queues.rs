//! The one-stop mediation queues and the dispatcher's API, over HTTP against
//! the real all-in-one app: every lifecycle action and refusal, petition
//! clocks, the working-day calendar, routing administration and dry runs,
//! duplicate reports linked and split, supervision notices exactly once
//! across restarts, the live stream with resume, and who may see what.

use crate::helpers;
use std::time::Duration;

use crate::helpers::{eventually, report, spawn, TestApp};
use gridwork_domain::auth::{Actor, Role};
use serde_json::{json, Value};
use uuid::Uuid;

fn mediator(app: &TestApp, user: &str, channel: &str) -> String {
    let actor = Actor {
        id: user.into(),
        role: Role::Mediator,
        scope: app.demo.demo_centre.clone(),
        channel: Some(channel.into()),
    };
    app.ctx.issuer.issue(&actor).unwrap().0
}

fn kinds(detail: &Value) -> Vec<String> {
    detail["timeline"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap().to_owned()).collect()
}

// A dispatcher's day: every action of the lifecycle, each refusal with the
// state and action named, stale versions refused, and the full timeline.
on_both_backends!(every_transition_and_refusal, transitions);

async fn transitions(app: &TestApp) {
    let d = app.dispatcher();
    let (lat, lon) = app.demo.demo_point;
    let c = app.submit_and_wait_for_case(&report(&Uuid::new_v4().to_string(), lat, lon, "dispute.neighbourhood")).await;
    let id = c["id"].as_str().unwrap().to_owned();
    assert_eq!(
        (c["status"].as_str(), c["channel"].as_str(), c["version"].as_i64()),
        (Some("created"), Some("people_mediation"), Some(1))
    );

    // Refusals name the state and the action.
    let (s, e) = app.act(&d, &id, "close", json!({})).await;
    assert_eq!((s, e["code"].as_str()), (409, Some("illegal_transition")), "{e}");
    assert_eq!(e["message"], "cannot close a case that is created");
    let (s, e) = app.act(&d, &id, "dance", json!({})).await;
    assert_eq!((s, e["code"].as_str()), (404, Some("unknown_action")), "{e}");
    let (s, e) = app.act(&d, &id, "reject", json!({"reason": "  "})).await;
    assert_eq!((s, e["code"].as_str(), e["field"].as_str()), (400, Some("missing_reason"), Some("reason")), "{e}");

    // 签收 accepts and claims; a stale version is refused, not overwritten.
    let (s, v) = app.act(&d, &id, "claim", json!({"version": 1})).await;
    assert_eq!((s, v["status"].as_str(), v["version"].as_i64()), (200, Some("claimed"), Some(3)), "{v}");
    let (s, e) = app.act(&d, &id, "start", json!({"version": 1})).await;
    assert_eq!((s, e["code"].as_str()), (409, Some("stale_version")), "{e}");

    // Transfer to another channel, with a reason: back to unclaimed there.
    let (s, e) = app.act(&d, &id, "transfer", json!({"channel": "legal_aid"})).await;
    assert_eq!((s, e["code"].as_str()), (400, Some("missing_reason")), "{e}");
    let (s, e) = app.act(&d, &id, "transfer", json!({"channel": "people_mediation", "reason": "x"})).await;
    assert_eq!((s, e["code"].as_str()), (422, Some("invalid_action")), "{e}");
    let (s, e) = app.act(&d, &id, "transfer", json!({"centre": "371099001", "reason": "x"})).await;
    assert_eq!((s, e["code"].as_str()), (400, Some("unknown_centre")), "{e}");
    let (s, v) = app.act(&d, &id, "transfer", json!({"channel": "legal_aid", "reason": "工资纠纷需要法律援助"})).await;
    assert_eq!(
        (s, v["channel"].as_str(), v["status"].as_str(), &v["claimed_by"]),
        (200, Some("legal_aid"), Some("created"), &Value::Null),
        "{v}"
    );

    // Joint handling: legal aid leads, people's mediation and counselling assist.
    assert_eq!(app.act(&d, &id, "claim", json!({})).await.0, 200);
    assert_eq!(app.act(&d, &id, "start", json!({})).await.0, 200);
    let (s, e) = app.act(&d, &id, "joint", json!({"channels": ["legal_aid"], "reason": "x"})).await;
    assert_eq!((s, e["code"].as_str()), (422, Some("invalid_action")), "{e}");
    let (s, v) = app
        .act(&d, &id, "joint", json!({"channels": ["people_mediation", "counselling"], "reason": "多方联合调处"}))
        .await;
    assert_eq!((s, v["joint"].clone()), (200, json!(["people_mediation", "counselling"])), "{v}");

    // Suspend (the clock stops), refuse work while suspended, resume.
    let time = |v: &Value, f: &str| chrono::DateTime::parse_from_rfc3339(v[f].as_str().unwrap()).unwrap();
    let due_before = time(&v, "due_at");
    let (s, v) = app.act(&d, &id, "suspend", json!({"reason": "当事人外出务工"})).await;
    assert_eq!((s, v["status"].as_str()), (200, Some("suspended")), "{v}");
    let (s, e) = app.act(&d, &id, "resolve", json!({"outcome": "handled"})).await;
    assert_eq!((s, e["message"].as_str()), (409, Some("cannot resolve a case that is suspended")), "{e}");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (s, v) = app.act(&d, &id, "resume", json!({})).await;
    assert_eq!((s, v["status"].as_str()), (200, Some("in_progress")), "{v}");
    assert!(time(&v, "due_at") > due_before, "the deadline moved by the pause: {v}");

    // Resolve, verify, close, callback; a second callback is refused.
    let (s, e) = app.act(&d, &id, "resolve", json!({})).await;
    assert_eq!((s, e["field"].as_str()), (400, Some("outcome")), "{e}");
    let (s, v) = app.act(&d, &id, "resolve", json!({"outcome": "mediated_agreement", "note": "达成协议"})).await;
    assert_eq!((s, v["outcome"].as_str()), (200, Some("mediated_agreement")), "{v}");
    assert_eq!(app.act(&d, &id, "verify", json!({})).await.0, 200);
    assert_eq!(app.act(&d, &id, "close", json!({})).await.0, 200);
    let (s, v) = app.act(&d, &id, "callback", json!({"satisfaction": "basically_satisfied"})).await;
    assert_eq!((s, v["satisfaction"].as_str()), (200, Some("basically_satisfied")), "{v}");
    let (s, e) = app.act(&d, &id, "callback", json!({"satisfaction": "satisfied"})).await;
    assert_eq!((s, e["code"].as_str()), (409, Some("callback_already_recorded")), "{e}");

    // Reopen, then escalate to the county centre: the street no longer sees it.
    let (s, v) = app.act(&d, &id, "reopen", json!({"reason": "协议未履行"})).await;
    assert_eq!((s, v["status"].as_str(), &v["outcome"]), (200, Some("accepted"), &Value::Null), "{v}");
    let county = &app.demo.demo_centre[..6];
    let (s, v) = app.act(&d, &id, "escalate", json!({"reason": "涉及多个街道"})).await;
    assert_eq!((s, v["centre"].as_str(), v["status"].as_str()), (200, Some(county), Some("created")), "{v}");
    assert_eq!(app.get(&d, &format!("/v1/cases/{id}")).await.0, 404);
    let cd = app.token("county-d", Role::Dispatcher, county);
    let (s, e) = app.act(&cd, &id, "escalate", json!({"reason": "again"})).await;
    assert_eq!((s, e["code"].as_str()), (422, Some("invalid_action")), "{e}");
    let (s, detail) = app.get(&cd, &format!("/v1/cases/{id}")).await;
    assert_eq!(s, 200);
    assert_eq!(
        kinds(&detail),
        [
            "created",
            "accepted",
            "claimed",
            "transferred",
            "accepted",
            "claimed",
            "started",
            "joint_handling",
            "suspended",
            "resumed",
            "resolved",
            "verified",
            "closed",
            "callback_recorded",
            "reopened",
            "escalated",
        ]
    );
    let versions: Vec<i64> =
        detail["timeline"].as_array().unwrap().iter().map(|e| e["version"].as_i64().unwrap()).collect();
    assert_eq!(versions, (1..=16).collect::<Vec<_>>(), "every transition recorded, in order");
    let last = detail["timeline"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((last["actor"].as_str(), last["reason"].as_str()), (Some("dispatcher-1"), Some("涉及多个街道")));
}

/// Petitions carry the statutory clocks: acceptance in 15 days, close-out
/// 60 days from acceptance, one approved extension of up to 30 days.
#[actix_web::test]
async fn petition_clocks_and_extension() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(dir.path()).await;
    let d = app.dispatcher();
    let (lat, lon) = app.demo.demo_point;
    let mut body = report(&Uuid::new_v4().to_string(), lat, lon, "petition.land_acquisition");
    body["parties"] = json!([{"name": "李四", "phone": "13900000000", "id_number": "371002198001011234"}]);
    let c = app.submit_and_wait_for_case(&body).await;
    let id = c["id"].as_str().unwrap().to_owned();
    assert_eq!(c["channel"], "petition");
    let accept_due = chrono::DateTime::parse_from_rfc3339(c["accept_due_at"].as_str().unwrap()).unwrap();
    let created = chrono::DateTime::parse_from_rfc3339(c["created_at"].as_str().unwrap()).unwrap();
    let days = (accept_due - created).num_hours() as f64 / 24.0;
    assert!((15.0..=25.0).contains(&days), "15 days, rolled past holidays and weekends: {days}");
    assert_eq!(
        accept_due.with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap()).time(),
        chrono::NaiveTime::MIN,
        "ends at midnight, Beijing time"
    );
    let (s, v) = app.act(&d, &id, "accept", json!({})).await;
    assert_eq!(s, 200, "{v}");
    let due = chrono::DateTime::parse_from_rfc3339(v["due_at"].as_str().unwrap()).unwrap();
    assert!((due - created).num_days() >= 60, "{v}");
    let (s, e) = app.act(&d, &id, "extend", json!({"extension": "31 days", "reason": "经批准"})).await;
    assert_eq!((s, e["code"].as_str()), (400, Some("invalid_extension")), "{e}");
    let (s, e) = app.act(&d, &id, "extend", json!({"extension": "3 fortnights", "reason": "经批准"})).await;
    assert_eq!((s, e["code"].as_str()), (400, Some("invalid_extension")), "{e}");
    let (s, v) = app.act(&d, &id, "extend", json!({"extension": "30 days", "reason": "经机关负责人批准延期"})).await;
    assert_eq!((s, v["extended"].as_bool()), (200, Some(true)), "{v}");
    let extended = chrono::DateTime::parse_from_rfc3339(v["due_at"].as_str().unwrap()).unwrap();
    assert!((extended - due).num_days() >= 30, "{v}");
    let (s, e) = app.act(&d, &id, "extend", json!({"extension": "10 days", "reason": "again"})).await;
    assert_eq!((s, e["code"].as_str()), (422, Some("invalid_action")), "{e}");
    app.shutdown().await;
}

/// The dry run answers where a report would go and why, with its deadline
/// on the working-day calendar: 3 working days from Friday 24 January 2025
/// count Sunday 26 (a make-up working day), Monday 27, then skip the Spring
/// Festival (28 January – 4 February) to Wednesday 5 February, so the case
/// is due at midnight Beijing time that night.
#[actix_web::test]
async fn dry_run_explains_the_route_and_counts_working_days() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(dir.path()).await;
    let d = app.dispatcher();
    let ask = json!({"category": "dispute.labour_wage", "place": app.demo.demo_grid, "at": "2025-01-24T02:00:00Z"});
    let (s, r) = app.post(&d, "/v1/routing/dry-run", &ask).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(
        (r["channel"].as_str(), r["priority"].as_i64(), r["rule"].as_str()),
        (Some("administrative_mediation"), Some(2), Some("labour-wage"))
    );
    assert_eq!(
        (r["close_out_within"].as_str(), r["due_at"].as_str()),
        (Some("3 working days"), Some("2025-02-05T16:00:00Z"))
    );
    assert_eq!(r["centre"], app.demo.demo_centre.as_str());
    let checked = r["checked"].as_array().unwrap();
    assert_eq!(checked.last().unwrap()["rule_id"], "labour-wage");
    assert!(checked[0]["why_not"][0].as_str().unwrap().contains("urgency is normal"), "{r}");
    // An emergency goes to the emergency channel on top, within hours.
    let ask = json!({"category": "dispute.labour_wage", "urgency": "emergency", "place": app.demo.demo_grid});
    let (_, r) = app.post(&d, "/v1/routing/dry-run", &ask).await;
    assert_eq!(
        (r["channel"].as_str(), r["priority"].as_i64(), r["close_out_within"].as_str()),
        (Some("emergency"), Some(1), Some("4 hours"))
    );
    // Outside every grid: the county's triage queue.
    let ask = json!({"category": "dispute.neighbourhood", "place": &app.demo.demo_centre[..6]});
    let cd = app.token("county-d", Role::Dispatcher, &app.demo.demo_centre[..6]);
    let (_, r) = app.post(&cd, "/v1/routing/dry-run", &ask).await;
    assert_eq!((r["channel"].as_str(), r["triage"].as_bool()), (Some("triage"), Some(true)), "{r}");
    let (s, e) = app.post(&d, "/v1/routing/dry-run", &json!({"category": "x", "place": "12"})).await;
    assert_eq!((s, e["field"].as_str()), (400, Some("place")), "{e}");
    app.shutdown().await;
}

/// Routing rules are versioned data that an admin edits over HTTP.
#[actix_web::test]
async fn routing_rules_are_edited_as_versioned_data() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(dir.path()).await;
    let d = app.dispatcher();
    let a = app.admin();
    let (s, current) = app.get(&d, "/v1/routing/rules").await;
    assert_eq!((s, current["version"].as_i64()), (200, Some(1)));
    assert_eq!(app.get(&app.worker(), "/v1/routing/rules").await.0, 403);
    let mut rules = current["rules"].as_array().unwrap().clone();
    rules.insert(0, json!({"id": "noise-counselling", "category": "dispute.neighbourhood", "channel": "counselling", "priority": 3}));
    let edit = json!({"base_version": 1, "rules": rules, "sla": current["sla"]});
    let r = app.http.put(format!("{}/v1/routing/rules", app.base)).bearer_auth(&d).json(&edit).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let put = |body: Value| {
        let (http, base, a) = (app.http.clone(), app.base.clone(), a.clone());
        async move {
            let r = http.put(format!("{base}/v1/routing/rules")).bearer_auth(a).json(&body).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let mut bad = edit.clone();
    bad["rules"][0]["category"] = json!("noise");
    bad["rules"].as_array_mut().unwrap().pop();
    let (s, e) = put(bad).await;
    assert_eq!((s, e["code"].as_str()), (422, Some("invalid_routing")), "{e}");
    let details = e["details"].to_string();
    assert!(details.contains("catch-all") && details.contains("no category \\\"noise\\\""), "{e}");
    let (s, v) = put(edit.clone()).await;
    assert_eq!((s, v["version"].as_i64()), (200, Some(2)), "{v}");
    let (s, e) = put(edit).await;
    assert_eq!((s, e["code"].as_str()), (409, Some("stale_version")), "{e}");
    let (_, versions) = app.get(&d, "/v1/routing/versions").await;
    assert_eq!(versions["items"].as_array().unwrap().len(), 2);
    // New reports follow the new version at once.
    let (lat, lon) = app.demo.demo_point;
    let c = app.submit_and_wait_for_case(&report(&Uuid::new_v4().to_string(), lat, lon, "dispute.neighbourhood")).await;
    assert_eq!((c["channel"].as_str(), c["routing_rule"].as_str()), (Some("counselling"), Some("noise-counselling")));
    app.shutdown().await;
}

/// Several grid workers report the same incident: one case, the other
/// reports linked to it; a wrong link is split off into a case of its own.
#[actix_web::test]
async fn duplicate_reports_are_linked_and_can_be_split() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(dir.path()).await;
    let d = app.dispatcher();
    let (lat, lon) = app.demo.demo_point;
    let first = report(&Uuid::new_v4().to_string(), lat, lon, "environment.sanitation");
    let c = app.submit_and_wait_for_case(&first).await;
    let id = c["id"].as_str().unwrap().to_owned();
    // 40 m away, a minute later: the same incident.
    let mut second = report(&Uuid::new_v4().to_string(), lat + 0.00036, lon, "environment.sanitation");
    second["description"] = json!("垃圾堆放多日无人清理");
    let second_id = second["id"].as_str().unwrap().to_owned();
    assert_eq!(app.post(&app.worker(), "/v1/reports", &second).await.0, 201);
    let detail = eventually("the second report linked", || async {
        let (_, v) = app.get(&d, &format!("/v1/cases/{id}")).await;
        (v["linked_reports"].as_array()?.len() == 1).then_some(v)
    })
    .await;
    let link = &detail["linked_reports"][0];
    assert_eq!(link["report_id"], second_id.as_str());
    let dist = link["distance_m"].as_f64().unwrap();
    assert!((35.0..45.0).contains(&dist), "{dist}");
    assert_eq!(link["report"]["description"], "垃圾堆放多日无人清理");
    assert!(kinds(&detail).contains(&"report_linked".to_owned()));
    // A different category at the same spot, and the same category hours
    // earlier, are different incidents.
    let other =
        app.submit_and_wait_for_case(&report(&Uuid::new_v4().to_string(), lat, lon, "environment.facilities")).await;
    assert_ne!(other["id"], id.as_str());
    let mut earlier = report(&Uuid::new_v4().to_string(), lat, lon, "environment.sanitation");
    earlier["occurred_at"] = json!((chrono::Utc::now() - chrono::Duration::hours(5)).to_rfc3339());
    let old = app.submit_and_wait_for_case(&earlier).await;
    assert_ne!(old["id"], id.as_str());
    // The grid worker who sent the linked report sees it in the case's hands.
    let (_, mine) = app.get(&app.worker(), &format!("/v1/reports/{second_id}")).await;
    assert_eq!(mine["case_id"], id.as_str(), "{mine}");
    // Split the wrong link off.
    let (s, e) = app.act(&d, &id, "split", json!({"report_id": Uuid::new_v4(), "reason": "x"})).await;
    assert_eq!((s, e["code"].as_str()), (400, Some("not_linked")), "{e}");
    let (s, e) = app.act(&d, &id, "split", json!({"report_id": second_id})).await;
    assert_eq!((s, e["code"].as_str()), (400, Some("missing_reason")), "{e}");
    let (s, v) = app.act(&d, &id, "split", json!({"report_id": second_id, "reason": "不是同一处垃圾点"})).await;
    assert_eq!(s, 200, "{v}");
    let (_, detail) = app.get(&d, &format!("/v1/cases/{id}")).await;
    let new_case = detail["linked_reports"][0]["split_case_id"].as_str().unwrap().to_owned();
    let (s, split) = app.get(&d, &format!("/v1/cases/{new_case}")).await;
    assert_eq!(
        (s, split["report_id"].as_str(), split["status"].as_str()),
        (200, Some(second_id.as_str()), Some("created"))
    );
    assert!(split["timeline"][0]["reason"].as_str().unwrap().contains("不是同一处垃圾点"));
    assert_eq!(kinds(&detail).last().unwrap(), "report_split");
    app.shutdown().await;
}

/// Supervision notices (督办) are raised once per case, clock and threshold,
/// also for a case that fell due while no scheduler ran, and never again
/// after a restart. Overdue cases sort first and are filterable.
#[actix_web::test]
async fn supervision_once_per_case_and_threshold_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    supervision(helpers::config(dir.path())).await;
}

#[actix_web::test]
async fn supervision_once_across_restarts_on_postgres_and_redis() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, pg) = helpers::on_postgres_and_redis(dir.path()).await;
    supervision(cfg).await;
    drop(pg);
}

async fn supervision(mut cfg: gridwork_platform::Config) {
    // The scheduler looks once at start, then not for an hour.
    cfg.mediation.supervise_interval_ms = 3_600_000;
    let app = helpers::spawn_with(cfg.clone()).await;
    let a = app.admin();
    let (_, current) = app.get(&a, "/v1/routing/rules").await;
    // Sanitation cases are due at once (a zero-hour clock), so they are near
    // due and overdue as soon as they open.
    let mut rules = current["rules"].as_array().unwrap().clone();
    rules.insert(0, json!({"id": "instant", "category": "environment.sanitation", "channel": "department_dispatch", "priority": 3, "sla_hours": 0}));
    let edit = json!({"base_version": 1, "rules": rules, "sla": current["sla"]});
    let r = app.http.put(format!("{}/v1/routing/rules", app.base)).bearer_auth(&a).json(&edit).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let (lat, lon) = app.demo.demo_point;
    let late =
        app.submit_and_wait_for_case(&report(&Uuid::new_v4().to_string(), lat, lon, "environment.sanitation")).await;
    let fine =
        app.submit_and_wait_for_case(&report(&Uuid::new_v4().to_string(), lat, lon, "dispute.neighbourhood")).await;
    let id = late["id"].as_str().unwrap().to_owned();
    assert_eq!(late["overdue"], true);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let d = app.dispatcher();
    let (_, detail) = app.get(&d, &format!("/v1/cases/{id}")).await;
    assert!(!kinds(&detail).iter().any(|k| k.starts_with("supervision")), "no scheduler tick yet");
    app.shutdown().await;

    // Restarted with a busy scheduler: the notices come, once each.
    cfg.mediation.supervise_interval_ms = 50;
    let count = |detail: &Value, kind: &str| kinds(detail).iter().filter(|k| k.as_str() == kind).count();
    for round in 0..2 {
        let app = helpers::spawn_with(cfg.clone()).await;
        let d = app.dispatcher();
        let detail = eventually("both supervision notices", || async {
            let (_, v) = app.get(&d, &format!("/v1/cases/{id}")).await;
            (count(&v, "supervision_overdue") >= 1 && count(&v, "supervision_near_due") >= 1).then_some(v)
        })
        .await;
        // Many ticks later, still one of each.
        tokio::time::sleep(Duration::from_millis(600)).await;
        let (_, detail2) = app.get(&d, &format!("/v1/cases/{id}")).await;
        assert_eq!(
            (count(&detail2, "supervision_overdue"), count(&detail2, "supervision_near_due")),
            (1, 1),
            "round {round}: {detail}"
        );
        assert_eq!(detail2["supervision"].as_array().unwrap().len(), 2);
        assert!(detail2["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["reason"].as_str().unwrap_or("").contains("督办")));
        // Overdue first in the default sort, and filterable.
        let (_, l) = app.get(&d, "/v1/cases").await;
        assert_eq!(l["items"][0]["id"], id.as_str(), "{l}");
        let (_, l) = app.get(&d, "/v1/cases?overdue=true").await;
        let ids: Vec<&str> = l["items"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
        assert!(ids.contains(&id.as_str()) && !ids.contains(&fine["id"].as_str().unwrap()), "{l}");
        app.shutdown().await;
    }
}

/// Reads server-sent events from `resp` until `done` says enough.
async fn read_events(
    resp: &mut reqwest::Response,
    mut done: impl FnMut(&[(String, String, Value)]) -> bool,
) -> Vec<(String, String, Value)> {
    let mut buf = String::new();
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !done(&out) {
        let chunk = tokio::time::timeout_at(deadline, resp.chunk()).await.expect("events in time").unwrap().unwrap();
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let frame: String = buf.drain(..end + 2).collect();
            let (mut id, mut event, mut data) = (String::new(), String::new(), Value::Null);
            for line in frame.lines() {
                if let Some(v) = line.strip_prefix("id: ") {
                    id = v.to_owned();
                } else if let Some(v) = line.strip_prefix("event: ") {
                    event = v.to_owned();
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data = serde_json::from_str(v).unwrap_or(Value::Null);
                }
            }
            if !id.is_empty() {
                out.push((id, event, data));
            }
        }
    }
    out
}

/// The live stream delivers changes as they happen and, after a
/// reconnect with Last-Event-ID, what was missed — emergencies first.
#[actix_web::test]
async fn live_stream_resumes_from_the_last_event_id() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(dir.path()).await;
    let d = app.dispatcher();
    let url = format!("{}/v1/centres/{}/stream", app.base, app.demo.demo_centre);
    let mut s1 = app.http.get(&url).bearer_auth(&d).send().await.unwrap();
    assert_eq!(s1.status(), 200);
    let (lat, lon) = app.demo.demo_point;
    let rid = Uuid::new_v4().to_string();
    assert_eq!(app.post(&app.worker(), "/v1/reports", &report(&rid, lat, lon, "dispute.consumer")).await.0, 201);
    let got = read_events(&mut s1, |e| !e.is_empty()).await;
    let (last_id, _, first) = got[0].clone();
    assert_eq!((first["kind"].as_str(), first["case"]["report_id"].as_str()), (Some("created"), Some(rid.as_str())));
    let case_id = first["case"]["id"].as_str().unwrap().to_owned();
    drop(s1);

    // While disconnected: the case is claimed, and an emergency comes in.
    assert_eq!(app.act(&d, &case_id, "claim", json!({})).await.0, 200);
    let eid = Uuid::new_v4().to_string();
    let mut em = report(&eid, lat, lon, "emergency.accident");
    em["urgency"] = json!("emergency");
    let em_case = app.submit_and_wait_for_case(&em).await;
    assert_eq!((em_case["channel"].as_str(), em_case["priority"].as_i64()), (Some("emergency"), Some(1)));
    // A page reloaded while the alert is up finds the open emergencies again.
    let (_, open_emergencies) = app.get(&d, "/v1/cases?urgency=emergency&status=open").await;
    let listed: Vec<&str> =
        open_emergencies["items"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(listed, [em_case["id"].as_str().unwrap()], "{open_emergencies}");
    let (s, e) = app.get(&d, "/v1/cases?urgency=burning").await;
    assert_eq!((s, e["code"].as_str(), e["field"].as_str()), (400, Some("invalid_filter"), Some("urgency")), "{e}");

    let mut s2 = app.http.get(&url).bearer_auth(&d).header("Last-Event-ID", &last_id).send().await.unwrap();
    assert_eq!(s2.status(), 200);
    let got = read_events(&mut s2, |e| e.len() >= 3).await;
    let seen: Vec<(&str, &str)> =
        got.iter().map(|(_, ev, v)| (ev.as_str(), v["kind"].as_str().unwrap_or(""))).collect();
    assert_eq!(seen[0], ("emergency", "created"), "emergencies first: {seen:?}");
    assert_eq!(&seen[1..3], &[("case", "accepted"), ("case", "claimed")], "{seen:?}");
    let ids: Vec<i64> = got.iter().map(|(i, ..)| i.parse().unwrap()).collect();
    assert!(ids.iter().all(|i| *i > last_id.parse::<i64>().unwrap()), "nothing from before the resume point");
    // And then live again, without repeats.
    assert_eq!(app.act(&d, &case_id, "start", json!({})).await.0, 200);
    let more = read_events(&mut s2, |e| !e.is_empty()).await;
    assert_eq!(more[0].2["kind"], "started");
    let r = app.http.get(&url).bearer_auth(&d).header("Last-Event-ID", "yesterday").send().await.unwrap();
    assert_eq!(r.status(), 400);
    drop(s2);
    // A fresh stream starts with the open emergencies, each with its latest event.
    let mut s3 = app.http.get(&url).bearer_auth(&d).send().await.unwrap();
    let got = read_events(&mut s3, |e| !e.is_empty()).await;
    let (_, ev, first) = &got[0];
    assert_eq!(
        (ev.as_str(), first["kind"].as_str(), first["case"]["id"].as_str()),
        ("emergency", Some("created"), em_case["id"].as_str()),
        "{got:?}"
    );
    drop(s3);
    app.shutdown().await;
}

/// Every route, called with a token of another centre, another channel or
/// another role: 403 or 404, never the case.
#[actix_web::test]
async fn authorisation_matrix() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(dir.path()).await;
    let d = app.dispatcher();
    let (lat, lon) = app.demo.demo_point;
    let c = app.submit_and_wait_for_case(&report(&Uuid::new_v4().to_string(), lat, lon, "dispute.neighbourhood")).await;
    let id = c["id"].as_str().unwrap().to_owned();
    let centre = app.demo.demo_centre.clone();
    let other_centre = app.token("d-other", Role::Dispatcher, "371082001");
    let other_county = app.token("d-other-county", Role::Dispatcher, "371082");
    let counselling = mediator(&app, "m-counselling", "counselling");
    let people = mediator(&app, "m-people", "people_mediation");
    let no_channel = app.token("m-none", Role::Mediator, &centre);
    let worker = app.worker();
    let analyst = app.analyst();
    let outsiders = [
        ("dispatcher of another centre", &other_centre),
        ("dispatcher of another county", &other_county),
        ("mediator of another channel", &counselling),
        ("mediator without a channel", &no_channel),
        ("grid worker", &worker),
        ("analyst", &analyst),
    ];
    for (who, t) in outsiders {
        let (s, v) = app.get(t, &format!("/v1/cases/{id}")).await;
        assert!(matches!(s, 403 | 404), "{who}: detail {s}");
        assert!(!v.to_string().contains(&id), "{who}: {v}");
        for action in ["claim", "accept", "reject", "transfer", "split", "escalate"] {
            let (s, v) = app.act(t, &id, action, json!({"reason": "x"})).await;
            assert!(matches!(s, 403 | 404), "{who}: {action} {s} {v}");
        }
        let (s, v) = app.get(t, "/v1/cases").await;
        assert!(s == 403 || !v.to_string().contains(&id), "{who}: list {s} {v}");
        let (s, _) = app.get(t, &format!("/v1/cases?centre={centre}")).await;
        assert!(matches!(s, 403) || *t == counselling, "{who}: list of the centre {s}");
        let r = app.http.get(format!("{}/v1/centres/{centre}/stream", app.base)).bearer_auth(t).send().await.unwrap();
        if *t != counselling {
            assert_eq!(r.status(), 403, "{who}: stream");
        }
        drop(r);
        let (s, _) = app
            .post(t, "/v1/routing/dry-run", &json!({"category": "dispute.neighbourhood", "place": app.demo.demo_grid}))
            .await;
        assert!(matches!(s, 403) || *t == counselling, "{who}: dry run {s}");
        let r = app
            .http
            .put(format!("{}/v1/routing/rules", app.base))
            .bearer_auth(t)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{who}: routing edit");
        if matches!(who, "grid worker" | "analyst" | "mediator without a channel") {
            for path in ["/v1/routing/rules", "/v1/routing/versions"] {
                assert_eq!(app.get(t, path).await.0, 403, "{who}: {path}");
            }
        }
    }
    // The counselling mediator sees the case once counselling assists, but
    // only the lead channel acts on it.
    assert_eq!(app.act(&d, &id, "claim", json!({})).await.0, 200);
    assert_eq!(app.act(&d, &id, "joint", json!({"channels": ["counselling"], "reason": "心理疏导"})).await.0, 200);
    assert_eq!(app.get(&counselling, &format!("/v1/cases/{id}")).await.0, 200);
    let (_, l) = app.get(&counselling, "/v1/cases").await;
    assert!(l.to_string().contains(&id));
    let (s, e) = app.act(&counselling, &id, "release", json!({})).await;
    assert_eq!(s, 403, "{e}");
    // The people's-mediation mediator works it, but cannot take a case a
    // dispatcher holds.
    let (s, e) = app.act(&people, &id, "start", json!({})).await;
    assert_eq!((s, e["code"].as_str()), (409, Some("claimed_by_another")), "{e}");
    assert_eq!(app.act(&d, &id, "release", json!({})).await.0, 200);
    assert_eq!(app.act(&people, &id, "claim", json!({})).await.0, 200);
    // A county dispatcher sees its streets' cases; an admin sees everything.
    let county = app.token("county-d", Role::Dispatcher, &centre[..6]);
    assert_eq!(app.get(&county, &format!("/v1/cases/{id}")).await.0, 200);
    assert_eq!(app.get(&app.admin(), &format!("/v1/cases/{id}")).await.0, 200);
    app.shutdown().await;
}

// Filters, sorts and cursor pagination of `GET /v1/cases`.
on_both_backends!(list_filters_sorts_and_pages, listing);

async fn listing(app: &TestApp) {
    let d = app.dispatcher();
    let (lat, lon) = app.demo.demo_point;
    let cats = [
        "dispute.consumer",
        "dispute.neighbourhood",
        "hazard.fire",
        "environment.pollution",
        "order.public",
        "dispute.traffic",
        "legal.aid",
    ];
    let mut ids = Vec::new();
    for cat in cats {
        let mut b = report(&Uuid::new_v4().to_string(), lat, lon, cat);
        b["description"] = json!(format!("{cat} 描述"));
        ids.push(app.submit_and_wait_for_case(&b).await["id"].as_str().unwrap().to_owned());
    }
    // Pages of 2 by every sort: each case exactly once, in order.
    for sort in ["urgent", "due", "priority", "created", "updated"] {
        let mut seen = Vec::new();
        let mut path = format!("/v1/cases?limit=2&sort={sort}");
        loop {
            let (s, page) = app.get(&d, &path).await;
            assert_eq!(s, 200, "{page}");
            seen.extend(page["items"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => path = format!("/v1/cases?limit=2&sort={sort}&cursor={c}"),
                None => break,
            }
        }
        let got: Vec<&str> = seen.iter().map(|c| c["id"].as_str().unwrap()).collect();
        let mut uniq = got.clone();
        uniq.sort();
        uniq.dedup();
        assert_eq!((got.len(), uniq.len()), (7, 7), "{sort}: {got:?}");
        if sort == "priority" || sort == "urgent" {
            let p: Vec<i64> = seen.iter().map(|c| c["priority"].as_i64().unwrap()).collect();
            assert!(p.windows(2).all(|w| w[0] <= w[1]), "{sort}: {p:?}");
        }
        if sort == "created" {
            let t: Vec<&str> = seen.iter().map(|c| c["created_at"].as_str().unwrap()).collect();
            assert!(t.windows(2).all(|w| w[0] >= w[1]), "{t:?}");
        }
    }
    let count = |v: &Value| v["items"].as_array().unwrap_or_else(|| panic!("not a list: {v}")).len();
    let (_, v) = app.get(&d, "/v1/cases?category=dispute").await;
    assert_eq!(count(&v), 3);
    let (_, v) = app.get(&d, "/v1/cases?channel=judicial_mediation").await;
    assert_eq!(count(&v), 1);
    let (_, v) = app.get(&d, "/v1/cases?priority=2").await;
    assert_eq!(count(&v), 1, "hazards are priority 2: {v}");
    let (_, v) = app.get(&d, &format!("/v1/cases?grid={}", app.demo.demo_grid)).await;
    assert_eq!(count(&v), 7);
    let (_, v) = app.get(&d, "/v1/cases?text=pollution").await;
    assert_eq!(count(&v), 1);
    let (_, v) = app.get(&d, "/v1/cases?text=描述%20legal").await;
    assert_eq!(count(&v), 1);
    assert_eq!(app.act(&d, &ids[0], "claim", json!({})).await.0, 200);
    let (_, v) = app.get(&d, "/v1/cases?status=claimed,in_progress").await;
    assert_eq!(count(&v), 1);
    let (_, v) = app.get(&d, "/v1/cases?status=open").await;
    assert_eq!(count(&v), 7);
    for (q, field) in [
        ("status=lost", "status"),
        ("channel=x", "channel"),
        ("sort=random", "sort"),
        ("cursor=abc", "cursor"),
        ("grid=12", "grid"),
    ] {
        let (s, e) = app.get(&d, &format!("/v1/cases?{q}")).await;
        assert_eq!((s, e["field"].as_str()), (400, Some(field)), "{q}: {e}");
    }
    let (s, _) = app.get(&d, "/v1/cases?colour=red").await;
    assert_eq!(s, 400);
    // A mediator lists their channel's queue, and what it assists in.
    let judicial = mediator(app, "m-judicial", "judicial_mediation");
    let (_, v) = app.get(&judicial, "/v1/cases").await;
    assert_eq!(count(&v), 1, "{v}");
    assert_eq!(
        app.act(&d, &ids[0], "joint", json!({"channels": ["judicial_mediation"], "reason": "诉调对接"})).await.0,
        200
    );
    let (_, v) = app.get(&judicial, "/v1/cases").await;
    assert_eq!(count(&v), 2, "{v}");
}

/// Reads `resp` to its end: what it sent, or `None` if it is still open
/// after `within`.
async fn read_to_end(resp: &mut reqwest::Response, within: Duration) -> Option<String> {
    let deadline = tokio::time::Instant::now() + within;
    let mut text = String::new();
    loop {
        match tokio::time::timeout_at(deadline, resp.chunk()).await {
            Err(_) => return None,
            Ok(Ok(Some(c))) => text.push_str(&String::from_utf8_lossy(&c)),
            Ok(Ok(None)) | Ok(Err(_)) => return Some(text),
        }
    }
}

/// An open live stream checks its token again every
/// `mediation.stream_recheck_ms`: revoked, it ends within that period; an
/// expiring token's stream ends when the token does. A valid one stays.
#[actix_web::test]
async fn live_stream_ends_when_its_token_is_revoked_or_expires() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = helpers::config(dir.path());
    cfg.mediation.stream_recheck_ms = 200;
    cfg.auth.leeway_secs = 0;
    let app = helpers::spawn_with(cfg).await;
    let url = format!("{}/v1/centres/{}/stream", app.base, app.demo.demo_centre);
    let actor =
        |id: &str| Actor { id: id.into(), role: Role::Dispatcher, scope: app.demo.demo_centre.clone(), channel: None };

    // Revoked while the stream is open.
    let (revoked, _) = app.ctx.issuer.issue(&actor("d-revoked")).unwrap();
    let (valid, _) = app.ctx.issuer.issue(&actor("d-valid")).unwrap();
    let mut s = app.http.get(&url).bearer_auth(&revoked).send().await.unwrap();
    assert_eq!(s.status(), 200);
    let mut kept = app.http.get(&url).bearer_auth(&valid).send().await.unwrap();
    assert_eq!(kept.status(), 200);
    assert!(s.chunk().await.unwrap().is_some(), "the stream says hello");
    let (st, v) = app.post(&revoked, "/v1/auth/revoke", &json!({})).await;
    assert_eq!(st, 200, "{v}");
    let ended = read_to_end(&mut s, Duration::from_secs(3))
        .await
        .expect("the stream of a revoked token ends within the re-check period (200 ms; waited 3 s)");
    assert!(ended.contains("event: token_revoked"), "the stream says why it ends: {ended:?}");
    assert_eq!(app.http.get(&url).bearer_auth(&revoked).send().await.unwrap().status(), 401);

    // A token that expires while the stream is open.
    let (short, _) = app.ctx.issuer.issue_with(&actor("d-short"), 2).unwrap();
    let opened = std::time::Instant::now();
    let mut s = app.http.get(&url).bearer_auth(&short).send().await.unwrap();
    assert_eq!(s.status(), 200);
    let ended = read_to_end(&mut s, Duration::from_secs(6))
        .await
        .expect("the stream of an expired token ends once it expires (2 s; waited 6 s)");
    assert!(ended.contains("event: token_expired"), "the stream says why it ends: {ended:?}");
    assert!(opened.elapsed() >= Duration::from_millis(900), "not before the token expired: {:?}", opened.elapsed());

    // The valid token's stream is still open, many re-checks later.
    assert!(read_to_end(&mut kept, Duration::from_millis(500)).await.is_none(), "a valid token's stream stays open");
    drop(kept);
    app.shutdown().await;
}

/// Fan-out channels exist only while someone listens: changes published
/// for codes nobody listens to leave nothing behind, and a stream's
/// channel goes with its last listener.
#[actix_web::test]
async fn live_fan_out_keeps_no_channel_nobody_listens_to() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(dir.path()).await;
    let (lat, lon) = app.demo.demo_point;
    let c = app.submit_and_wait_for_case(&report(&Uuid::new_v4().to_string(), lat, lon, "dispute.neighbourhood")).await;
    let id = c["id"].as_str().unwrap().to_owned();
    assert_eq!(app.act(&app.dispatcher(), &id, "claim", json!({})).await.0, 200);
    assert_eq!(
        app.ctx.fanout.channel_count(),
        0,
        "changes were published to the centre, county, city and province; nobody listens, so no channel is kept"
    );
    let url = format!("{}/v1/centres/{}/stream", app.base, app.demo.demo_centre);
    let mut s = app.http.get(&url).bearer_auth(app.dispatcher()).send().await.unwrap();
    assert_eq!(s.status(), 200);
    assert!(s.chunk().await.unwrap().is_some(), "the stream says hello");
    assert_eq!(app.ctx.fanout.channel_count(), 1, "the listened-to channel exists");
    drop(s);
    eventually("the channel dropped with its last listener", || async {
        (app.ctx.fanout.channel_count() == 0).then_some(())
    })
    .await;
    app.shutdown().await;
}

/// A resumed stream replays at most `mediation.stream_replay_max` missed
/// events; a client that missed more is told to reload (`event: reset`,
/// whose id is the newest event, so the next resume starts there).
#[actix_web::test]
async fn live_stream_replay_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = helpers::config(dir.path());
    cfg.mediation.stream_replay_max = 3;
    let app = helpers::spawn_with(cfg).await;
    let d = app.dispatcher();
    let (lat, lon) = app.demo.demo_point;
    let c = app.submit_and_wait_for_case(&report(&Uuid::new_v4().to_string(), lat, lon, "dispute.neighbourhood")).await;
    let id = c["id"].as_str().unwrap().to_owned();
    assert_eq!(app.act(&d, &id, "claim", json!({})).await.0, 200);
    assert_eq!(app.act(&d, &id, "start", json!({})).await.0, 200);
    let (_, detail) = app.get(&d, &format!("/v1/cases/{id}")).await;
    let seqs: Vec<i64> = detail["timeline"].as_array().unwrap().iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs.len(), 4, "created, accepted, claimed, started: {detail}");
    let url = format!("{}/v1/centres/{}/stream", app.base, app.demo.demo_centre);

    // Three missed: all three, in order.
    let mut s = app.http.get(&url).bearer_auth(&d).header("Last-Event-ID", seqs[0].to_string()).send().await.unwrap();
    let got = read_events(&mut s, |e| e.len() >= 3).await;
    let kinds: Vec<&str> = got.iter().map(|(_, _, v)| v["kind"].as_str().unwrap_or("")).collect();
    assert_eq!(kinds, ["accepted", "claimed", "started"]);
    drop(s);

    // Four missed, more than three: reload.
    let mut s = app.http.get(&url).bearer_auth(&d).header("Last-Event-ID", "0").send().await.unwrap();
    let got = read_events(&mut s, |e| !e.is_empty()).await;
    let (first_id, first_event, first) = &got[0];
    assert_eq!(
        (first_event.as_str(), first_id.as_str()),
        ("reset", seqs[3].to_string().as_str()),
        "more missed than stream_replay_max (3): told to reload, not replayed: {first}"
    );
    assert_eq!(first["missed_more_than"], 3, "{first}");
    // Live again after the reset.
    assert_eq!(app.act(&d, &id, "release", json!({})).await.0, 200);
    let more = read_events(&mut s, |e| !e.is_empty()).await;
    assert_eq!(more[0].2["kind"], "released", "{more:?}");
    drop(s);
    app.shutdown().await;
}

// A case action judges the caller's scope and lead channel on the row it
// read under the lock: a transfer that commits between the action's first
// look and its lock leaves the old centre (or channel) out — 404.
on_both_backends!(an_action_rechecks_scope_under_the_row_lock, scope_under_lock);

/// Moves case `id` the way a transfer on another replica does, inside a
/// transaction that holds the case's row lock while `during` runs; commits
/// after it.
async fn moved_while_locked<F: std::future::Future<Output = (u16, Value)> + Send + 'static>(
    app: &TestApp,
    id: &str,
    set: &str,
    during: F,
) -> (u16, Value) {
    let set = format!("{set}, status = 'created', claimed_by = NULL, lease_until = NULL");
    helpers::locked_update(app, id, &set, during).await
}

async fn scope_under_lock(app: &TestApp) {
    let d = app.dispatcher();
    let (lat, lon) = app.demo.demo_point;
    let county = app.demo.demo_centre[..6].to_owned();
    // Three categories: reports of one category at one spot would be linked to one case.

    // Transferred, then acted on by the old centre: out of view.
    let c = app.submit_and_wait_for_case(&report(&Uuid::new_v4().to_string(), lat, lon, "dispute.neighbourhood")).await;
    let id = c["id"].as_str().unwrap().to_owned();
    let (s, v) = app.act(&d, &id, "transfer", json!({"centre": county, "reason": "跨街道纠纷"})).await;
    assert_eq!((s, v["centre"].as_str()), (200, Some(county.as_str())), "{v}");
    let (s, e) = app.act(&d, &id, "accept", json!({})).await;
    assert_eq!(s, 404, "the old centre no longer acts: {e}");

    // Transferred to the county centre while the old centre's action waits
    // for the lock.
    let c = app.submit_and_wait_for_case(&report(&Uuid::new_v4().to_string(), lat, lon, "dispute.consumer")).await;
    let id = c["id"].as_str().unwrap().to_owned();
    let http = app.http.clone();
    let url = format!("{}/v1/cases/{id}/accept", app.base);
    let token = d.clone();
    let during = async move {
        let r = http.post(url).bearer_auth(token).json(&json!({})).send().await.unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null))
    };
    let (s, e) = moved_while_locked(app, &id, &format!("centre = '{county}'"), during).await;
    assert_eq!(s, 404, "a case moved to another centre under the action's feet is out of the old centre's view: {e}");
    let cd = app.token("county-d", Role::Dispatcher, &county);
    let (_, now) = app.get(&cd, &format!("/v1/cases/{id}")).await;
    assert_eq!((now["status"].as_str(), now["centre"].as_str()), (Some("created"), Some(county.as_str())), "{now}");

    // Moved to another channel while the lead channel's mediator waits.
    let c = app
        .submit_and_wait_for_case(&report(&Uuid::new_v4().to_string(), lat, lon, "dispute.property_management"))
        .await;
    let id = c["id"].as_str().unwrap().to_owned();
    assert_eq!(c["channel"], "people_mediation");
    let people = mediator(app, "m-people", "people_mediation");
    let http = app.http.clone();
    let url = format!("{}/v1/cases/{id}/claim", app.base);
    let during = async move {
        let r = http.post(url).bearer_auth(people).json(&json!({})).send().await.unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null))
    };
    let (s, e) = moved_while_locked(app, &id, "channel = 'legal_aid'", during).await;
    assert_eq!(s, 404, "a case moved to another channel is out of the old channel's view: {e}");
    let (_, now) = app.get(&d, &format!("/v1/cases/{id}")).await;
    assert_eq!((now["status"].as_str(), &now["claimed_by"]), (Some("created"), &Value::Null), "{now}");
}

// Every free-text field of every action passes the same checks as a
// report's text: no control characters (PostgreSQL cannot store a NUL),
// bounded length.
on_both_backends!(action_text_is_checked_like_report_text, action_text);

async fn action_text(app: &TestApp) {
    let d = app.dispatcher();
    let (lat, lon) = app.demo.demo_point;
    let c = app.submit_and_wait_for_case(&report(&Uuid::new_v4().to_string(), lat, lon, "dispute.neighbourhood")).await;
    let id = c["id"].as_str().unwrap().to_owned();
    let code = |e: &Value| (e["code"].as_str().map(str::to_owned), e["field"].as_str().map(str::to_owned));
    let bad = |c: &str, f: &str| (Some(c.to_owned()), Some(f.to_owned()));

    let (s, e) = app.act(&d, &id, "reject", json!({"reason": "不予受理\u{0}"})).await;
    assert_eq!((s, code(&e)), (400, bad("invalid_characters", "reason")), "a NUL in a reject's reason: {e}");
    assert!(e["message_zh"].as_str().is_some_and(|m| !m.is_empty()), "{e}");
    let (s, e) = app.act(&d, &id, "transfer", json!({"channel": "legal_aid", "reason": "转\u{7}办"})).await;
    assert_eq!((s, code(&e)), (400, bad("invalid_characters", "reason")), "{e}");
    let (s, e) = app.act(&d, &id, "transfer", json!({"channel": "legal_aid", "reason": "理".repeat(2001)})).await;
    assert_eq!((s, code(&e)), (400, bad("too_long", "reason")), "{e}");
    assert_eq!(app.act(&d, &id, "claim", json!({})).await.0, 200);
    let (s, e) = app.act(&d, &id, "suspend", json!({"reason": "\u{0}"})).await;
    assert_eq!((s, code(&e)), (400, bad("invalid_characters", "reason")), "{e}");
    let (s, e) = app.act(&d, &id, "resolve", json!({"outcome": "handled", "note": "记".repeat(2001)})).await;
    assert_eq!((s, code(&e)), (400, bad("too_long", "note")), "an overlong note: {e}");
    let (s, e) = app.act(&d, &id, "resolve", json!({"outcome": "handled", "note": "a\u{0}b"})).await;
    assert_eq!((s, code(&e)), (400, bad("invalid_characters", "note")), "{e}");
    // Nothing of it was recorded; tabs and line breaks are fine.
    let (s, v) = app.act(&d, &id, "resolve", json!({"outcome": "handled", "note": "第一行\n第二行\t完"})).await;
    assert_eq!((s, v["status"].as_str(), v["version"].as_i64()), (200, Some("resolved"), Some(4)), "{v}");
}

/// The console's queue tabs and map counts: the open cases a caller may
/// see, per channel queue and per grid, with the overdue ones; a mediator
/// counts only their channel's; another centre's dispatcher none of them.
#[actix_web::test]
async fn open_cases_are_counted_per_queue_and_per_grid() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(dir.path()).await;
    let d = app.dispatcher();
    let (lat, lon) = app.demo.demo_point;
    let a = app.submit_and_wait_for_case(&report(&Uuid::new_v4().to_string(), lat, lon, "dispute.neighbourhood")).await;
    let b = app.submit_and_wait_for_case(&report(&Uuid::new_v4().to_string(), lat, lon, "dispute.consumer")).await;
    let channel = a["channel"].as_str().unwrap().to_owned();
    let b_id = b["id"].as_str().unwrap().to_owned();
    // One rejected: no longer open.
    app.act_ok(&d, &b_id, "reject", json!({"reason": "不属于受理范围"})).await;

    let count = |v: &Value, key: &str| -> (i64, i64) {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["key"] == key)
            .map(|i| (i["open"].as_i64().unwrap(), i["overdue"].as_i64().unwrap()))
            .unwrap_or((0, 0))
    };
    let (s, by_channel) = app.get(&d, "/v1/cases/counts?by=channel").await;
    assert_eq!(s, 200, "{by_channel}");
    assert_eq!(by_channel["by"], "channel");
    let open_in_channel = count(&by_channel, &channel);
    assert!(open_in_channel.0 >= 1 && open_in_channel.1 == 0, "{by_channel}");
    let (s, by_grid) = app.get(&d, &format!("/v1/cases/counts?by=grid&centre={}", app.demo.demo_centre)).await;
    assert_eq!(s, 200, "{by_grid}");
    assert_eq!(count(&by_grid, a["hierarchy"]["grid"].as_str().unwrap()), (1, 0), "{by_grid}");

    // The same as the queue says.
    let (_, listed) = app.get(&d, &format!("/v1/cases?status=open&channel={channel}&limit=200")).await;
    assert_eq!(listed["items"].as_array().unwrap().len() as i64, open_in_channel.0);

    let other_channel = app.ctx.issuer.issue(&Actor {
        id: "mediator-x".into(),
        role: Role::Mediator,
        scope: app.demo.demo_centre.clone(),
        channel: Some("legal_aid".into()),
    });
    let (s, mine) = app.get(&other_channel.unwrap().0, "/v1/cases/counts?by=channel").await;
    assert_eq!(s, 200);
    assert_eq!(count(&mine, &channel), (0, 0), "a mediator counts only their channel's cases: {mine}");
    let stranger = app.token("dispatcher-x", Role::Dispatcher, "371082001");
    let (_, theirs) = app.get(&stranger, "/v1/cases/counts?by=grid").await;
    assert_eq!(theirs["items"], json!([]), "{theirs}");
    let (s, e) = app.get(&stranger, &format!("/v1/cases/counts?by=grid&centre={}", app.demo.demo_centre)).await;
    assert_eq!(s, 403, "{e}");
    let (s, e) = app.get(&d, "/v1/cases/counts?by=street").await;
    assert_eq!((s, e["code"].as_str(), e["field"].as_str()), (400, Some("invalid_filter"), Some("by")));
    app.shutdown().await;
}
