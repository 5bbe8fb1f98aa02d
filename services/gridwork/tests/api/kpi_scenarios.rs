//! KPI scenarios with hand-computed expected values.
//!
//! Case histories are driven through the real case state machine at chosen
//! times in March–April 2025, and their lifecycle events go through the
//! producers' outbox onto the case-lifecycle topic, exactly as mediation
//! writes them. Analytics folds them; `GET /v1/kpis` must give the rates
//! computed by hand below, per jurisdiction; the KPI snapshot topic and
//! `gridwork kpi recompute` must agree.

use crate::helpers;
use std::collections::BTreeMap;
use std::time::Duration as StdDuration;

use crate::helpers::{eventually, TestApp};
use chrono::{DateTime, Duration, TimeZone, Utc};
use gridwork_domain::auth::{Actor, Role};
use gridwork_domain::petition::{PetitionClass, PetitionInfo};
use gridwork_domain::{Case, CaseAction, Channel, Hierarchy, NewCase, Outcome, Satisfaction, Urgency};
use gridwork_events::convert::{case_event, Cause, TransitionDetail};
use gridwork_events::{Event, Payload};
use gridwork_storage::entity::{kpi_cell, kpi_fact};
use sea_orm::EntityTrait;
use serde_json::{json, Value};
use uuid::Uuid;

const G1: &str = "371002001001001";
const G2: &str = "371002001002001"; // same street, another community
const G3: &str = "371002002001001"; // same county, another street
const G4: &str = "371003001001001"; // another county, same city

/// 10:00 China time on a day of 2025.
fn day(m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, m, d, 2, 0, 0).single().unwrap()
}

fn boss() -> Actor {
    Actor { id: "dispatcher-s".into(), role: Role::Dispatcher, scope: "370000".into(), channel: None }
}

/// One case's history: the case, and every event so far as (time, message).
struct History {
    case: Case,
    events: Vec<(DateTime<Utc>, gridwork_events::pb::case::CaseEvent)>,
}

impl History {
    fn new(grid: &str, centre: &str, created: DateTime<Utc>, petition: Option<(&str, &str, PetitionClass)>) -> Self {
        let is_petition = petition.is_some();
        let case = Case::new(NewCase {
            id: Uuid::now_v7(),
            report_id: Uuid::new_v4(),
            centre: centre.into(),
            channel: if is_petition { Channel::Petition } else { Channel::PeopleMediation },
            priority: 3,
            category: if is_petition { "petition.land_acquisition" } else { "dispute.neighbourhood" }.into(),
            urgency: Urgency::Normal,
            hierarchy: Hierarchy::from_grid_code(grid).unwrap(),
            petition: petition.map(|(p, m, class)| PetitionInfo {
                petitioner_key: p.into(),
                matter_key: m.into(),
                class,
            }),
            created_at: created,
            // Petitions: 60 days; others: 3 days.
            due_at: created + Duration::days(if is_petition { 60 } else { 3 }),
            accept_due_at: is_petition.then(|| created + Duration::days(15)),
        });
        let first =
            case_event(&case, gridwork_domain::CaseEventKind::Created, Cause::System, &TransitionDetail::default());
        History { case, events: vec![(created, first)] }
    }

    fn act(&mut self, at: DateTime<Utc>, action: CaseAction) -> &mut Self {
        let who = boss();
        let steps = self.case.apply(&action, &who, at, Duration::hours(4)).unwrap();
        for s in steps {
            let mut pb = case_event(&self.case, s.kind, Cause::Actor(&who), &TransitionDetail::default());
            pb.status = s.status.as_str().to_owned();
            pb.version = s.version;
            self.events.push((at, pb));
        }
        self
    }

    fn close(&mut self, at: DateTime<Utc>) -> &mut Self {
        self.act(at, CaseAction::Claim)
            .act(at, CaseAction::Resolve { outcome: Outcome::MediatedAgreement, note: None })
            .act(at, CaseAction::Close)
    }

    fn callback(&mut self, at: DateTime<Utc>, s: Satisfaction) -> &mut Self {
        self.act(at, CaseAction::Callback { satisfaction: s })
    }
}

fn reason(s: &str) -> String {
    s.to_owned()
}

/// The scenario: every history of the issue, in grids G1–G4.
fn scenario() -> Vec<History> {
    use PetitionClass::*;
    let street = "371002001";
    let mut out = Vec::new();
    // P1: first-time, answered, nothing follows: resolved once.
    let mut p1 = History::new(G1, street, day(3, 3), Some(("A", "m1", FirstTime)));
    p1.act(day(3, 4), CaseAction::Accept).close(day(3, 10)).callback(day(3, 12), Satisfaction::Satisfied);
    // P2: answered, then a review request inside the window: failed.
    let mut p2 = History::new(G1, street, day(3, 3), Some(("B", "m2", FirstTime)));
    p2.act(day(3, 5), CaseAction::Accept).close(day(3, 8)).callback(day(3, 9), Satisfaction::BasicallySatisfied);
    p2.act(day(3, 20), CaseAction::RequestReview { reason: reason("对答复意见不服") });
    // P3: answered 6 March; the same petitioner repeats on 10 April, after
    // the window (5 April): still resolved once. The repeat counts in April.
    let mut p3 = History::new(G1, street, day(3, 4), Some(("C", "m3", FirstTime)));
    p3.act(day(3, 5), CaseAction::Accept).close(day(3, 6)).callback(day(3, 7), Satisfaction::Unsatisfied);
    let p3r = History::new(G1, street, day(4, 10), Some(("C", "m3", Repeat)));
    // P4: while the street handles it, the petitioner goes to the county
    // (an escalated petition, 12 March): failed. Its callback is never answered.
    let mut p4 = History::new(G1, street, day(3, 5), Some(("D", "m4", FirstTime)));
    p4.act(day(3, 6), CaseAction::Accept);
    let mut p4e = History::new(G1, "371002", day(3, 12), Some(("D", "m4", Escalated)));
    p4e.act(day(3, 13), CaseAction::Accept);
    p4.close(day(3, 15)).callback(day(3, 16), Satisfaction::Unanswered);
    // P5: accepted late (25 March, deadline 21 March), then transferred up
    // to the county: failed, still open at the end of March.
    let mut p5 = History::new(G1, street, day(3, 6), Some(("E", "m5", FirstTime)));
    p5.act(day(3, 25), CaseAction::Accept).act(day(3, 26), CaseAction::Escalate { reason: reason("涉及多部门") });
    // P6: answered 9 March, reopened 15 March (inside the window): failed;
    // closed again 18 March.
    let mut p6 = History::new(G1, street, day(3, 7), Some(("F", "m6", FirstTime)));
    p6.act(day(3, 8), CaseAction::Accept).close(day(3, 9));
    p6.act(day(3, 15), CaseAction::Reopen { reason: reason("协议未履行") })
        .close(day(3, 18))
        .callback(day(3, 19), Satisfaction::Satisfied);
    // Ordinary cases.
    let mut c1 = History::new(G1, street, day(3, 3), None);
    c1.close(day(3, 4)).callback(day(3, 5), Satisfaction::Satisfied);
    let mut c2 = History::new(G1, street, day(3, 3), None);
    c2.close(day(3, 20)).callback(day(3, 21), Satisfaction::Unanswered);
    let c3 = History::new(G2, street, day(3, 10), None);
    let mut c4 = History::new(G3, "371002002", day(3, 11), None);
    c4.act(day(3, 11), CaseAction::Reject { reason: reason("不属于受理范围") });
    let mut c5 = History::new(G4, "371003001", day(3, 12), None);
    c5.close(day(3, 13));
    out.extend([p1, p2, p3, p3r, p4, p4e, p5, p6, c1, c2, c3, c4, c5]);
    out
}

/// Writes every event into mediation's outbox, in history order per case,
/// as mediation does; its relay publishes them.
async fn publish(app: &TestApp, histories: &[History]) -> usize {
    let topic = app.ctx.topics.case_lifecycle.clone();
    let mut n = 0;
    for h in histories {
        for (at, pb) in &h.events {
            let event = Event::new("mediation", *at, Payload::CaseLifecycle(pb.clone()));
            gridwork_platform::pipeline::emit(&app.ctx.db, "mediation", &topic, &pb.case_id, &event).await.unwrap();
            n += 1;
        }
    }
    n
}

fn ratio(v: &Value) -> (u64, u64) {
    (v["numerator"].as_u64().unwrap(), v["denominator"].as_u64().unwrap())
}

/// The figures of one row this test pins.
fn figures(r: &Value) -> BTreeMap<&'static str, Value> {
    BTreeMap::from([
        ("volume", r["volume"].clone()),
        ("closed", r["closed"].clone()),
        ("backlog", r["backlog"].clone()),
        ("petitions", r["petitions"].clone()),
        ("first_time_petitions", r["first_time_petitions"].clone()),
        ("callbacks_unanswered", r["callbacks_unanswered"].clone()),
        ("median_hours_to_close", r["median_hours_to_close"].clone()),
        ("on_time_close_out", json!(ratio(&r["on_time_close_out"]))),
        ("on_the_spot_resolution", json!(ratio(&r["on_the_spot_resolution"]))),
        ("on_time_acceptance", json!(ratio(&r["on_time_acceptance"]))),
        ("satisfaction", json!(ratio(&r["satisfaction"]))),
        ("participation", json!(ratio(&r["participation"]))),
        ("repeat_petition_rate", json!(ratio(&r["repeat_petition_rate"]))),
        ("escalation_rate", json!(ratio(&r["escalation_rate"]))),
        ("transfer_up_rate", json!(ratio(&r["transfer_up_rate"]))),
        ("first_contact_resolution", json!(ratio(&r["first_contact_resolution"]))),
        ("first_contact_resolution_provisional", json!(ratio(&r["first_contact_resolution_provisional"]))),
    ])
}

/// March 2025 by hand. Grid G1 holds P1–P6, P4e (the escalated petition is
/// about the same place), C1 and C2.
///
/// - volume: G1 9; street +C3 = 10; county +C4 = 11; city +C5 = 12.
/// - closed (status closed, closed in March): P1, P2, P3, P4, P6, C1, C2 =
///   7; the city adds C5 = 8. P4e, P5 and C3 are open; C4 was rejected.
/// - on time: all but C2 (due 6 March, closed 20 March): 6/7, city 7/8.
/// - on the spot: all closed but P6 (reopened): 6/7, city 7/8.
/// - on-time acceptance (petitions, 15 days): P5 accepted 25 March, late;
///   P1–P4, P6, P4e on time: 6/7 in every jurisdiction holding G1.
/// - backlog at 31 March: P5, P4e (+C3 from the street up) → 2, 3, 3, 3.
/// - callbacks answered: P1 satisfied, P2 basically, P3 unsatisfied, P6 and
///   C1 satisfied → satisfaction 4/5, participation 5/7 (city 5/8);
///   unanswered: P4, C2 → 2.
/// - hours to close: C1 24, P3 48, P2 120, P1 168, P4 240, P6 264, C2 408 →
///   median 168; the city adds C5 (24) → lower median of 8 = 120.
/// - petitions 7 (six first-time, P4e escalated): repeat 0/7, escalation 1/7.
/// - transfer up: P5 → 1/9, 1/10, 1/11, 1/12.
/// - first contact: P1 and P3 resolved once; P2 (review), P4 (escalated
///   petition), P5 (transfer up), P6 (reopen) failed → 2/6, final and
///   provisional alike (every window has ended).
fn march(volume: u64, closed: u64, backlog: u64, median: u64) -> BTreeMap<&'static str, Value> {
    let city = closed == 8;
    BTreeMap::from([
        ("volume", json!(volume)),
        ("closed", json!(closed)),
        ("backlog", json!(backlog)),
        ("petitions", json!(7)),
        ("first_time_petitions", json!(6)),
        ("callbacks_unanswered", json!(2)),
        ("median_hours_to_close", json!(median)),
        ("on_time_close_out", json!((closed - 1, closed))),
        ("on_the_spot_resolution", json!((closed - 1, closed))),
        ("on_time_acceptance", json!((6, 7))),
        ("satisfaction", json!((4, 5))),
        ("participation", json!((5, if city { 8 } else { 7 }))),
        ("repeat_petition_rate", json!((0, 7))),
        ("escalation_rate", json!((1, 7))),
        ("transfer_up_rate", json!((1, volume))),
        ("first_contact_resolution", json!((2, 6))),
        ("first_contact_resolution_provisional", json!((2, 6))),
    ])
}

async fn kpis(app: &TestApp, jurisdiction: &str, period: &str, from: &str, to: &str) -> Value {
    let (s, v) = app
        .get(&app.analyst(), &format!("/v1/kpis?jurisdiction={jurisdiction}&period={period}&from={from}&to={to}"))
        .await;
    assert_eq!(s, 200, "{v}");
    v["rows"].clone()
}

async fn month_row(app: &TestApp, jurisdiction: &str, month: &str, last: &str) -> Value {
    let rows = kpis(app, jurisdiction, "month", &format!("2025-{month}-01"), &format!("2025-{month}-{last}")).await;
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
    rows[0].clone()
}

#[actix_web::test]
async fn hand_computed_kpis_per_jurisdiction_snapshot_and_recompute() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = helpers::config(dir.path());
    cfg.kpi.gauge_refresh_ms = 200;
    let app = helpers::spawn_with(cfg.clone()).await;
    let histories = scenario();
    let events = publish(&app, &histories).await;

    // Wait until analytics has folded every event and matured the results.
    let expected_versions: BTreeMap<String, i64> =
        histories.iter().map(|h| (h.case.id.to_string(), h.case.version)).collect();
    eventually("analytics folded the scenario", || async {
        let f = kpi_fact::Entity::find().all(&app.ctx.db).await.unwrap();
        let done = f.len() == expected_versions.len()
            && f.iter().all(|r| expected_versions.get(&r.case_id) == Some(&r.version) && r.matures_at.is_none());
        done.then_some(())
    })
    .await;

    let cases = [
        ("grid", G1, march(9, 7, 2, 168)),
        ("community", "371002001001", march(9, 7, 2, 168)),
        ("street", "371002001", march(10, 7, 3, 168)),
        ("county", "371002", march(11, 7, 3, 168)),
        ("city", "371000", march(12, 8, 3, 120)),
    ];
    for (level, code, want) in &cases {
        let row = month_row(&app, code, "03", "31").await;
        assert_eq!(figures(&row), *want, "{level} {code}: {row}");
    }
    // Another street of the county: only the rejected C4, which ended the
    // day it came.
    let row = month_row(&app, "371002002", "03", "31").await;
    assert_eq!((row["volume"].clone(), row["closed"].clone(), row["backlog"].clone()), (json!(1), json!(0), json!(0)));
    // April: the repeat petition, after P3's window, is counted as a repeat
    // and leaves P3 resolved once (checked above); the backlog carries over.
    let row = month_row(&app, G1, "04", "30").await;
    assert_eq!(row["volume"], 1);
    assert_eq!(ratio(&row["repeat_petition_rate"]), (1, 1));
    assert_eq!(row["backlog"], 3, "P5, P4e and the repeat petition");
    // Weeks: the week of 3 March (Monday) holds the cases created 3–7 March.
    let weeks = kpis(&app, G1, "week", "2025-03-01", "2025-03-31").await;
    let w = weeks.as_array().unwrap().iter().find(|r| r["period_start"] == "2025-03-03").unwrap();
    assert_eq!(w["volume"], 8, "P1–P6, C1, C2");

    // Public view of the street: small cells withheld.
    let (s, public) = app
        .http
        .get(format!("{}/v1/public/kpis?jurisdiction=371002001&period=month&from=2025-03-01&to=2025-03-31", app.base))
        .send()
        .await
        .map(|r| (r.status().as_u16(), r))
        .unwrap();
    assert_eq!(s, 200);
    let public: Value = public.json().await.unwrap();
    let p = &public["rows"][0];
    // The street's 10 cases (7 closed) are withheld too: the county's 11 (8)
    // minus them would give away the one case of street 371002002 (C4). The
    // county is withheld in turn, since the city's 12 minus its 11 would give
    // away the one case of county 371003 (C5); the city is published.
    assert_eq!((p["volume"].clone(), p["closed"].clone()), (Value::Null, Value::Null), "{p}");
    let public_volume = |j: &'static str| {
        let (http, base) = (app.http.clone(), app.base.clone());
        async move {
            let url = format!("{base}/v1/public/kpis?jurisdiction={j}&period=month&from=2025-03-01&to=2025-03-31");
            let v: Value = http.get(url).send().await.unwrap().json().await.unwrap();
            v["rows"][0]["volume"].clone()
        }
    };
    assert_eq!(public_volume("371002002").await, Value::Null, "C4 alone");
    assert_eq!(public_volume("371002").await, Value::Null);
    assert_eq!(public_volume("371000").await, json!(12));
    assert_eq!(p["backlog"], Value::Null, "3 cases are too few to publish");
    assert_eq!(ratio(&p["satisfaction"]), (4, 5));

    // The compacted snapshot topic carries the same figures.
    let key = "371002|month|2025-03-01";
    let snap = eventually("the county's March snapshot", || async {
        let group = format!("snap-{}", Uuid::new_v4());
        let mut c = app.ctx.bus.subscribe(&group, std::slice::from_ref(&app.ctx.topics.kpi_snapshot)).await.unwrap();
        let mut last = None;
        while let Some(m) = c.poll(StdDuration::from_millis(500)).await.unwrap() {
            if m.key == key.as_bytes() {
                last = Some(Event::decode(&m.payload).unwrap());
            }
        }
        c.close().await.unwrap();
        match last?.payload {
            Payload::KpiSnapshot(s) if s.volume == 11 && s.first_contact_resolution.as_ref()?.denominator == 6 => {
                Some(s)
            }
            _ => None,
        }
    })
    .await;
    assert_eq!((snap.closed, snap.backlog, snap.petitions), (7, 3, 7));
    assert_eq!(snap.median_hours_to_close, Some(168));
    let fcr = snap.first_contact_resolution.unwrap();
    assert_eq!((fcr.numerator, fcr.denominator), (2, 6));

    // Rebuilt from the event history, the facts and day tallies are the same.
    let facts_before = facts(&app).await;
    let cells_before = cells(&app).await;
    crate::kpi::assert_month_cells_sum_days(&app.ctx.db).await;
    app.shutdown().await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gridwork"))
        .args(["kpi", "recompute", "--data-dir", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains(&format!("{events} events folded")), "{said}");
    let app = helpers::spawn_with(cfg).await;
    assert_eq!(facts(&app).await, facts_before);
    assert_eq!(cells(&app).await, cells_before);
    crate::kpi::assert_month_cells_sum_days(&app.ctx.db).await;
    for (level, code, want) in &cases {
        let row = month_row(&app, code, "03", "31").await;
        assert_eq!(figures(&row), *want, "after recompute, {level} {code}");
    }
    app.shutdown().await;
}

async fn facts(app: &TestApp) -> BTreeMap<String, (i64, Value)> {
    kpi_fact::Entity::find()
        .all(&app.ctx.db)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.case_id, (r.version, serde_json::from_str(&r.facts).unwrap())))
        .collect()
}

/// The day cells that count anything. A cell can be left at zero: the live
/// maturity tick may make a petition's result final (counted on the day its
/// window ends) before a later petition of the same matter is folded and
/// moves it, while a rebuild folds every event before it matures anything.
async fn cells(app: &TestApp) -> BTreeMap<(String, String), (i64, Value)> {
    kpi_cell::Entity::find()
        .all(&app.ctx.db)
        .await
        .unwrap()
        .into_iter()
        .map(|c| ((c.jurisdiction, c.day), (c.net_open, serde_json::from_str::<Value>(&c.tally).unwrap())))
        .filter(|(_, (net_open, tally))| *net_open != 0 || tally.as_object().is_none_or(|t| !t.is_empty()))
        .collect()
}

/// Classification at intake, through the whole pipeline: the first petition
/// is first-time; the same petitioner on the same matter at the county
/// centre (received in person) while the street still handles it is
/// escalated; once the street has closed it, the same again is a repeat.
#[actix_web::test]
async fn petitions_are_classified_first_time_escalated_and_repeat() {
    let dir = tempfile::tempdir().unwrap();
    let app = helpers::spawn(dir.path()).await;
    let (lat, lon) = app.demo.demo_point;
    let county = app.demo.demo_centre[..6].to_owned();
    let petition = |received_by: Option<&str>| {
        let mut b = helpers::report(&Uuid::new_v4().to_string(), lat, lon, "petition.land_acquisition");
        b["parties"] = json!([{"name": "赵六", "id_number": "371002197001011111"}]);
        b["matter"] = json!("宅基地确权纠纷");
        if let Some(c) = received_by {
            b["received_by"] = json!(c);
        }
        b
    };
    let admin = app.token("admin-1", Role::Admin, "");
    let open = |body: Value| {
        let (app, admin) = (&app, admin.clone());
        async move {
            let (s, e) = app.post(&app.worker(), "/v1/reports", &body).await;
            assert_eq!(s, 201, "{e}");
            let rid = body["id"].as_str().unwrap().to_owned();
            eventually("the case", || async {
                let (_, l) = app.get(&admin, "/v1/cases?channel=petition&limit=200").await;
                l["items"].as_array()?.iter().find(|c| c["report_id"] == rid.as_str()).cloned()
            })
            .await
        }
    };
    let first = open(petition(None)).await;
    assert_eq!(
        (first["petition_class"].as_str(), first["centre"].as_str()),
        (Some("first_time"), Some(app.demo.demo_centre.as_str()))
    );
    let up = open(petition(Some(&county))).await;
    assert_eq!(
        (up["petition_class"].as_str(), up["centre"].as_str()),
        (Some("escalated"), Some(county.as_str())),
        "{up}"
    );
    // A received_by that is not a street, county or city code is refused.
    let (s, e) = app.post(&app.worker(), "/v1/reports", &petition(Some("37100200100100"))).await;
    assert_eq!(
        (s, e["field"].as_str(), e["code"].as_str()),
        (400, Some("received_by"), Some("invalid_received_by")),
        "{e}"
    );
    // The street closes the first; the county still has the escalated one
    // (not below the street), so a new petition at the street is a repeat.
    let d = app.token("dispatcher-x", Role::Dispatcher, &app.demo.demo_centre);
    let id = first["id"].as_str().unwrap();
    for (action, body) in [("claim", json!({})), ("resolve", json!({"outcome": "handled"})), ("close", json!({}))] {
        let (s, e) = app.post(&d, &format!("/v1/cases/{id}/{action}"), &body).await;
        assert_eq!(s, 200, "{action}: {e}");
    }
    let again = open(petition(None)).await;
    assert_eq!(again["petition_class"].as_str(), Some("repeat"), "{again}");
    app.shutdown().await;
}
