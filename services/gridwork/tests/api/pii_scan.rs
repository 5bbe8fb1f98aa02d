//! A petition's whole life, scanned for the petitioner's name, phone and ID
//! number: every log line (at debug level, database statements included),
//! every message on every topic, every file of the data directory (the
//! database at rest) and every API response. They may appear only in the
//! answer to the audited `POST /v1/cases/{id}/parties` of a worker of the
//! case — and must appear there, or the scan proves nothing.

use crate::helpers;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::helpers::{eventually, report, TestApp};
use gridwork_domain::auth::{Actor, Role};
use serde_json::{json, Value};
use uuid::Uuid;

const NAME: &str = "欧阳明远";
const PHONE: &str = "13912345678";
const ID_NUMBER: &str = "37100219900101567X";
/// The matter names nobody; it is sealed at rest all the same.
const MATTER: &str = "村集体土地征收补偿款分配不公";
/// Free text of the case workers and the grid worker (a resolve note, a
/// review request's grounds, an on-the-spot note): it can name people, so it
/// is kept sealed in the database and never travels on a topic.
const WORDS: [&str; 3] =
    ["已向信访人书面答复并约定周三回访", "信访人对答复意见不服要求复查", "双方在网格员见证下当场签字和解"];

fn words_in(haystack: &[u8]) -> Vec<&'static str> {
    let text = String::from_utf8_lossy(haystack);
    WORDS.into_iter().filter(|w| text.contains(w)).collect()
}

fn needles() -> [&'static str; 4] {
    // The phone and ID number also as they would look re-formatted.
    [NAME, PHONE, ID_NUMBER, "139-1234-5678"]
}

fn found_in(haystack: &[u8]) -> Vec<&'static str> {
    let text = String::from_utf8_lossy(haystack);
    let lower = text.to_lowercase();
    needles().into_iter().filter(|n| text.contains(n) || lower.contains(&n.to_lowercase())).collect()
}

/// Every log line of this test process (the test is its own process).
fn logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = buf.clone();
        // Installed before the app's own (which then leaves it in place).
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "debug,h2=info,hyper=info,hyper_util=info,reqwest=info,rustls=info,actix_server=info",
            ))
            .with_ansi(false)
            .with_writer(move || Sink(sink.clone()))
            .try_init()
            .expect("the test's log capture is the first subscriber");
        buf
    })
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every response of the test, by who asked what.
#[derive(Default)]
struct Responses(Vec<(String, String)>);

impl Responses {
    async fn call(
        &mut self,
        app: &TestApp,
        who: &str,
        method: &str,
        token: &str,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, String) {
        let url = format!("{}{path}", app.base);
        let mut req = match method {
            "GET" => app.http.get(url),
            _ => app.http.post(url),
        };
        if !token.is_empty() {
            req = req.bearer_auth(token);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        self.0.push((format!("{who} {method} {path} → {status}"), text.clone()));
        (status, text)
    }
}

fn mediator(app: &TestApp) -> String {
    let actor = Actor {
        id: "mediator-petition".into(),
        role: Role::Mediator,
        scope: app.demo.demo_centre.clone(),
        channel: Some("petition".into()),
    };
    app.ctx.issuer.issue(&actor).unwrap().0
}

#[actix_web::test]
async fn a_petitioners_identity_appears_only_where_the_role_permits() {
    let logs = logs();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = helpers::config(dir.path());
    cfg.kpi.gauge_refresh_ms = 200;
    let app = helpers::spawn_with(cfg).await;
    let mut seen = Responses::default();
    let (worker, dispatcher, analyst, m) = (app.worker(), app.dispatcher(), app.analyst(), mediator(&app));
    let admin = app.token("admin-1", Role::Admin, "");

    // The petition, from a grid worker's phone.
    let (lat, lon) = app.demo.demo_point;
    let rid = Uuid::new_v4().to_string();
    let mut body = report(&rid, lat, lon, "petition.land_acquisition");
    body["description"] = json!("征地补偿款迟迟未到位，要求说明");
    body["matter"] = json!(MATTER);
    body["parties"] = json!([{"name": NAME, "phone": PHONE, "id_number": ID_NUMBER}]);
    let (s, _) = seen.call(&app, "worker", "POST", &worker, "/v1/reports", Some(&body)).await;
    assert_eq!(s, 201);
    // The same report again (a phone retrying) answers the same.
    let (s, _) = seen.call(&app, "worker", "POST", &worker, "/v1/reports", Some(&body)).await;
    assert_eq!(s, 200);

    let cid = eventually("the petition's case", || async {
        let (_, l) = app.get(&dispatcher, "/v1/cases?channel=petition").await;
        l["items"].as_array()?.iter().find(|c| c["report_id"] == rid.as_str())?["id"].as_str().map(str::to_owned)
    })
    .await;
    let case = format!("/v1/cases/{cid}");
    seen.call(&app, "dispatcher", "GET", &dispatcher, "/v1/cases?channel=petition", None).await;
    seen.call(&app, "dispatcher", "GET", &dispatcher, &case, None).await;
    seen.call(&app, "worker", "GET", &worker, &format!("/v1/reports/{rid}"), None).await;

    // Worked to the end by the petition channel's mediator.
    for (action, b) in [
        ("claim", json!({})),
        ("start", json!({})),
        ("resolve", json!({"outcome": "handled", "note": WORDS[0]})),
        ("close", json!({})),
        ("callback", json!({"satisfaction": "unanswered"})),
        ("callback", json!({"satisfaction": "basically_satisfied"})),
        ("request_review", json!({"reason": WORDS[1]})),
    ] {
        let (s, text) = seen.call(&app, "mediator", "POST", &m, &format!("{case}/{action}"), Some(&b)).await;
        assert_eq!(s, 200, "{action}: {text}");
    }
    let (_, text) = seen.call(&app, "mediator", "GET", &m, &case, None).await;
    assert_eq!(words_in(text.as_bytes()), WORDS[..2], "the case's workers read the notes in its timeline: {text}");

    // A matter the grid worker settled on the spot, with a note.
    let spot_id = Uuid::new_v4().to_string();
    let mut spot = report(&spot_id, lat, lon, "dispute.neighbourhood");
    spot["parties"] = json!([]);
    spot["resolved_on_spot"] = json!({"outcome": "mediated_agreement", "note": WORDS[2]});
    let (s, text) = seen.call(&app, "worker", "POST", &worker, "/v1/reports", Some(&spot)).await;
    assert_eq!(s, 201, "{text}");
    let spot_case = eventually("the on-the-spot case closed", || async {
        let (_, v) = app.get(&worker, &format!("/v1/reports/{spot_id}")).await;
        (v["status"] == "closed").then(|| v["case_id"].as_str().map(str::to_owned)).flatten()
    })
    .await;
    let (_, spot_detail) =
        seen.call(&app, "dispatcher", "GET", &dispatcher, &format!("/v1/cases/{spot_case}"), None).await;

    // Refused reads of the identity answer without it.
    for (who, token) in [("worker", &worker), ("analyst", &analyst)] {
        let (s, _) = seen
            .call(&app, who, "POST", token, &format!("{case}/parties"), Some(&json!({"reason": "想看看当事人信息"})))
            .await;
        assert_eq!(s, 403, "{who}");
    }
    // The permitted, audited read.
    let permitted = format!("mediator POST {case}/parties → 200");
    let (s, text) = seen
        .call(&app, "mediator", "POST", &m, &format!("{case}/parties"), Some(&json!({"reason": "电话告知信访人答复"})))
        .await;
    assert_eq!(s, 200, "{text}");
    assert_eq!(found_in(text.as_bytes()).len(), 3, "the permitted read shows name, phone and ID: {text}");
    assert!(text.contains(MATTER), "and the matter: {text}");
    seen.call(&app, "admin", "GET", &admin, "/v1/audit/pii-reads", None).await;

    // What analysts and the public see.
    let today = gridwork_domain::kpi::china_day(chrono::Utc::now());
    let range = format!("from={today}&to={today}");
    // The public view publishes completed months only: last month's.
    let last = chrono::Datelike::with_day(&today, 1).and_then(|d| d.pred_opt()).unwrap();
    let public = format!("from={}&to={last}", chrono::Datelike::with_day(&last, 1).unwrap());
    for (who, token, path) in [
        ("analyst", analyst.as_str(), format!("/v1/kpis?jurisdiction=371000&period=month&{range}")),
        ("public", "", format!("/v1/public/kpis?jurisdiction=371000&period=month&{public}")),
        ("analyst", analyst.as_str(), format!("/v1/ledgers/cases?jurisdiction=371000&{range}")),
        ("analyst", analyst.as_str(), format!("/v1/ledgers/kpis?jurisdiction=371000&period=day&{range}")),
    ] {
        let (s, text) = seen.call(&app, who, "GET", token, &path, None).await;
        assert_eq!(s, 200, "{path}: {text}");
    }
    let metrics = app.http.get(format!("{}/metrics", app.admin)).send().await.unwrap().text().await.unwrap();
    seen.0.push(("GET /metrics".into(), metrics));

    // Wait for the KPI snapshots of this case to be on their topic.
    let topics = app.ctx.topics.clone();
    eventually("KPI snapshots published", || async {
        let all = read_topic(&app, &topics.kpi_snapshot).await;
        (!all.is_empty()).then_some(())
    })
    .await;

    // 1. API responses: only the permitted read.
    for (what, text) in &seen.0 {
        let hits = found_in(text.as_bytes());
        if what == &permitted {
            continue;
        }
        assert!(hits.is_empty(), "{hits:?} in the response to {what}: {text}");
    }
    // 2. Every topic, every message, raw bytes.
    let mut messages = 0;
    for topic in [
        &topics.report_submitted,
        &topics.report_submitted_emergency,
        &topics.report_assigned,
        &topics.report_assigned_emergency,
        &topics.case_lifecycle,
        &topics.kpi_snapshot,
        &topics.dead_letter,
    ] {
        for payload in read_topic(&app, topic).await {
            messages += 1;
            let hits = found_in(&payload);
            assert!(hits.is_empty(), "{hits:?} in a message on {topic}");
            assert!(!String::from_utf8_lossy(&payload).contains(MATTER), "the matter on {topic}");
            let words = words_in(&payload);
            assert!(words.is_empty(), "free text {words:?} in plain on {topic}");
        }
    }
    assert!(messages >= 10, "the scan read the petition's messages ({messages})");
    assert_eq!(
        words_in(spot_detail.as_bytes()),
        WORDS[2..],
        "the on-the-spot note is kept with the case: {spot_detail}"
    );
    app.shutdown().await;

    // 3. Every file of the data directory: the database at rest (with its
    //    write-ahead log), the keyring, the secrets.
    // The database's last connections may still be closing (a write-ahead
    // log folded in and removed): scan again until a pass reads every file.
    let mut files = 0;
    for _ in 0..20 {
        let read: Result<Vec<_>, _> =
            helpers::walk(dir.path()).into_iter().map(|p| std::fs::read(&p).map(|b| (p, b))).collect();
        let Ok(read) = read else {
            tokio::time::sleep(Duration::from_millis(250)).await;
            continue;
        };
        for (path, bytes) in read {
            files += 1;
            let hits = found_in(&bytes);
            assert!(hits.is_empty(), "{hits:?} at rest in {}", path.display());
            assert!(!String::from_utf8_lossy(&bytes).contains(MATTER), "the matter at rest in {}", path.display());
            let words = words_in(&bytes);
            assert!(words.is_empty(), "free text {words:?} in plain at rest in {}", path.display());
        }
        break;
    }
    assert!(files >= 2, "the database and the keyring were scanned");

    // 4. Every log line.
    let text = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(text.contains("case opened") && text.contains("audited"), "the log capture works");
    for line in text.lines() {
        let hits = found_in(line.as_bytes());
        assert!(hits.is_empty(), "{hits:?} in a log line: {line}");
    }
}

/// Every message of `topic` from the start, raw.
async fn read_topic(app: &TestApp, topic: &str) -> Vec<Vec<u8>> {
    let group = format!("pii-scan-{}", Uuid::new_v4());
    let mut c = app.ctx.bus.subscribe(&group, &[topic.to_owned()]).await.unwrap();
    let mut out = Vec::new();
    while let Some(m) = c.poll(Duration::from_millis(500)).await.unwrap() {
        out.push(m.payload);
    }
    c.close().await.unwrap();
    out
}
