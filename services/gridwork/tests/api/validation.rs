//! Every validation error intake can give, walked over HTTP: each has its
//! status, its stable code, the field at fault, and an English and a Chinese
//! message. The list of codes is docs/errors.md's table, and the walk must
//! cover exactly that list: a code added to the code without the docs, or to
//! the docs without a walk, fails here.

use crate::helpers;
use std::collections::{BTreeMap, BTreeSet};

use crate::helpers::{report, TestApp};
use gridwork_domain::auth::Role;
use serde_json::{json, Value};
use uuid::Uuid;

/// The validation codes docs/errors.md lists, with their statuses.
fn documented() -> BTreeMap<String, u16> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/errors.md")).unwrap();
    let table = doc.split("<!-- validation-codes:start -->").nth(1).unwrap().split("<!-- validation-codes:end -->");
    let mut codes = BTreeMap::new();
    for line in table.into_iter().next().unwrap().lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() > 3 && cells[1].starts_with('`') {
            codes.insert(cells[1].trim_matches('`').to_owned(), cells[2].parse().unwrap());
        }
    }
    assert!(codes.len() > 20, "{codes:?}");
    codes
}

fn is_chinese(s: &str) -> bool {
    s.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
}

struct Walk<'a> {
    app: &'a TestApp,
    seen: BTreeMap<String, u16>,
    n: usize,
}

impl Walk<'_> {
    /// A token of a grid worker of its own, so the walk's requests do not
    /// share one rate limit.
    fn fresh_worker(&mut self) -> String {
        self.n += 1;
        self.app.token(&format!("walker-{}", self.n), Role::GridWorker, &self.app.demo.demo_grid)
    }

    fn check(&mut self, what: &str, status: u16, e: &Value, code: &str, field: Option<&str>) {
        assert_eq!(e["code"], code, "{what}: {status} {e}");
        assert_eq!(e["field"].as_str(), field, "{what}: {e}");
        let en = e["message"].as_str().unwrap_or_default();
        let zh = e["message_zh"].as_str().unwrap_or_default();
        assert!(en.chars().filter(char::is_ascii_alphabetic).count() > 5, "{what}: English message: {e}");
        assert!(is_chinese(zh), "{what}: Chinese message: {e}");
        self.seen.insert(code.to_owned(), status);
    }

    async fn report(&mut self, what: &str, body: Value, status: u16, code: &str, field: Option<&str>) {
        let token = self.fresh_worker();
        let (s, e) = self.app.post(&token, "/v1/reports", &body).await;
        assert_eq!(s, status, "{what}: {e}");
        self.check(what, s, &e, code, field);
    }

    async fn raw(&mut self, what: &str, req: reqwest::RequestBuilder, status: u16, code: &str, field: Option<&str>) {
        let r = req.send().await.unwrap();
        let s = r.status().as_u16();
        let e: Value = r.json().await.unwrap();
        assert_eq!(s, status, "{what}: {e}");
        self.check(what, s, &e, code, field);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_validation_error_has_its_status_code_field_and_both_messages() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = helpers::config(dir.path());
    cfg.intake.rate_limit_per_minute = 5;
    cfg.intake.max_image_bytes = 4096;
    cfg.intake.batch_max_items = 3;
    let app = helpers::spawn_with(cfg).await;
    let mut w = Walk { app: &app, seen: BTreeMap::new(), n: 0 };
    let (lat, lon) = app.demo.demo_point;
    let ok = report(&Uuid::new_v4().to_string(), lat, lon, "dispute.neighbourhood");
    let with = |f: &dyn Fn(&mut Value)| {
        let mut b = ok.clone();
        b["id"] = json!(Uuid::new_v4());
        f(&mut b);
        b
    };
    let url = |p: &str| format!("{}{p}", app.base);

    // The body as a whole.
    let t = w.fresh_worker();
    w.raw(
        "truncated JSON",
        app.http.post(url("/v1/reports")).bearer_auth(&t).header("content-type", "application/json").body("{\"id\": "),
        400,
        "malformed_json",
        None,
    )
    .await;
    w.report("a number as text", with(&|b| b["location"]["lat"] = json!("north")), 400, "invalid_body", None).await;
    // serde alone reads a struct from an array of its fields in order; no
    // schema of this API allows one.
    let fields = with(&|_| {});
    let as_array = json!([
        fields["id"],
        fields["occurred_at"],
        fields["location"],
        fields["address"],
        fields["category"],
        fields["description"],
        "normal",
        fields["parties"],
        null,
        null,
        null,
        [],
        null
    ]);
    w.report("a report as an array of its fields", as_array, 400, "invalid_body", None).await;
    w.report("an unknown field", with(&|b| b["colour"] = json!("red")), 400, "unknown_field", Some("colour")).await;
    w.report(
        "a missing field",
        with(&|b| {
            b.as_object_mut().unwrap().remove("category");
        }),
        400,
        "missing_field",
        Some("category"),
    )
    .await;
    let t = w.fresh_worker();
    w.raw(
        "a body over http.max_body_bytes",
        app.http
            .post(url("/v1/reports"))
            .bearer_auth(&t)
            .header("content-type", "application/json")
            .body(format!(r#"{{"description": "{}"}}"#, "x".repeat(300 * 1024))),
        413,
        "payload_too_large",
        None,
    )
    .await;
    let t = w.fresh_worker();
    w.raw(
        "a report that is not JSON",
        app.http.post(url("/v1/reports")).bearer_auth(&t).header("content-type", "text/plain").body(ok.to_string()),
        415,
        "unsupported_media_type",
        None,
    )
    .await;

    // The report's fields.
    w.report(
        "latitude",
        with(&|b| b["location"]["lat"] = json!(91.0)),
        400,
        "invalid_coordinates",
        Some("location.lat"),
    )
    .await;
    w.report(
        "longitude",
        with(&|b| b["location"]["lon"] = json!(-181.0)),
        400,
        "invalid_coordinates",
        Some("location.lon"),
    )
    .await;
    w.report(
        "accuracy",
        with(&|b| b["location"]["accuracy_m"] = json!(-3.0)),
        400,
        "invalid_accuracy",
        Some("location.accuracy_m"),
    )
    .await;
    w.report(
        "category",
        with(&|b| b["category"] = json!("dispute.unicorns")),
        400,
        "unknown_category",
        Some("category"),
    )
    .await;
    w.report("description", with(&|b| b["description"] = json!("  ")), 400, "missing_field", Some("description")).await;
    w.report(
        "description",
        with(&|b| b["description"] = json!("噪".repeat(4001))),
        400,
        "too_long",
        Some("description"),
    )
    .await;
    w.report(
        "a NUL in the description",
        with(&|b| b["description"] = json!("楼上\u{0}噪音")),
        400,
        "invalid_characters",
        Some("description"),
    )
    .await;
    w.report(
        "a control character in a party's name",
        with(&|b| b["parties"] = json!([{"name": "张\u{7}三"}])),
        400,
        "invalid_characters",
        Some("parties[0].name"),
    )
    .await;
    w.report("address", with(&|b| b["address"] = json!("路".repeat(501))), 400, "too_long", Some("address")).await;
    w.report(
        "a party without a name",
        with(&|b| b["parties"] = json!([{"name": " "}])),
        400,
        "missing_field",
        Some("parties[0].name"),
    )
    .await;
    w.report(
        "too many parties",
        with(&|b| b["parties"] = json!(vec![json!({"name": "张三"}); 51])),
        400,
        "too_many",
        Some("parties"),
    )
    .await;
    w.report(
        "received_by a grid",
        with(&|b| b["received_by"] = json!(app.demo.demo_grid)),
        400,
        "invalid_received_by",
        Some("received_by"),
    )
    .await;
    w.report(
        "the future",
        with(&|b| b["occurred_at"] = json!("2999-01-01T00:00:00Z")),
        400,
        "occurred_in_future",
        Some("occurred_at"),
    )
    .await;
    w.report(
        "a place in Rongcheng, outside the reporter's street in Huancui",
        with(&|b| b["location"] = json!({"lat": 37.165, "lon": 122.486})),
        403,
        "outside_report_area",
        Some("location"),
    )
    .await;
    w.report(
        "received_by a county centre elsewhere",
        with(&|b| b["received_by"] = json!("371082")),
        400,
        "received_by_not_above_place",
        Some("received_by"),
    )
    .await;
    w.report(
        "an unknown on-the-spot outcome",
        with(&|b| b["resolved_on_spot"] = json!({"outcome": "vanished"})),
        400,
        "invalid_outcome",
        Some("resolved_on_spot.outcome"),
    )
    .await;
    w.report(
        "a petition closed on the spot",
        with(&|b| {
            b["category"] = json!("petition.land_acquisition");
            b["resolved_on_spot"] = json!({"outcome": "mediated_agreement"});
        }),
        400,
        "petition_not_on_spot",
        Some("resolved_on_spot"),
    )
    .await;
    w.report("a media id", with(&|b| b["media"] = json!(["photo.jpg"])), 400, "invalid_media_id", Some("media[0]"))
        .await;
    w.report("too many media", with(&|b| b["media"] = json!(vec!["0".repeat(64); 21])), 400, "too_many", Some("media"))
        .await;

    // The same id for a different report.
    let t = w.fresh_worker();
    let first = with(&|_| {});
    let (s, _) = app.post(&t, "/v1/reports", &first).await;
    assert_eq!(s, 201);
    let mut other = first.clone();
    other["description"] = json!("另一件事");
    let (s, e) = app.post(&t, "/v1/reports", &other).await;
    assert_eq!(s, 409);
    w.check("a reused id", s, &e, "report_id_conflict", Some("id"));

    // Batches.
    let t = w.fresh_worker();
    let (s, e) = app.post(&t, "/v1/reports/batch", &json!({"reports": []})).await;
    w.check("an empty batch", s, &e, "invalid_batch_size", Some("reports"));
    let four: Vec<Value> = (0..4).map(|_| with(&|_| {})).collect();
    let (s, e) = app.post(&t, "/v1/reports/batch", &json!({ "reports": four })).await;
    assert_eq!(s, 400);
    w.check("a batch over intake.batch_max_items", s, &e, "invalid_batch_size", Some("reports"));
    // A bad item is that item's result, with the same shape.
    let (s, b) =
        app.post(&t, "/v1/reports/batch", &json!({"reports": [with(&|b| b["category"] = json!("nope"))]})).await;
    assert_eq!((s, b["results"][0]["result"].as_str()), (200, Some("invalid")));
    assert_eq!(b["results"][0]["status"], 400);
    w.check("a batch item", 400, &b["results"][0]["error"], "unknown_category", Some("category"));

    // Queries and paths.
    let t = w.fresh_worker();
    let (s, e) = app.get(&t, "/v1/me/reports?limit=many").await;
    assert_eq!(s, 400);
    w.check("a query parameter of the wrong type", s, &e, "invalid_query", None);
    let (s, e) = app.get(&t, "/v1/me/reports?colour=red").await;
    assert_eq!(s, 400);
    w.check("an unknown query parameter", s, &e, "unknown_field", Some("colour"));
    let (s, e) = app.get(&t, "/v1/reports/not-a-uuid").await;
    assert_eq!(s, 400);
    w.check("a report id that is not a UUID", s, &e, "invalid_path", None);

    // Media.
    let media = |token: &str, bytes: Vec<u8>| {
        app.http
            .post(url("/v1/media"))
            .bearer_auth(token)
            .header("content-type", "application/octet-stream")
            .body(bytes)
    };
    let t = w.fresh_worker();
    w.raw("an empty upload", media(&t, Vec::new()), 400, "empty_body", None).await;
    w.raw(
        "a text file as a photo",
        media(&t, b"just some text, not a photo".to_vec()),
        415,
        "unsupported_media_type",
        None,
    )
    .await;
    let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0];
    jpeg.resize(8192, 0);
    w.raw("a photo over intake.max_image_bytes", media(&t, jpeg), 413, "media_too_large", None).await;

    // Tokens.
    let token = |body: Value| app.http.post(url("/v1/auth/token")).json(&body);
    w.raw(
        "an unknown grant type",
        token(json!({"grant_type": "client_credentials"})),
        400,
        "unsupported_grant_type",
        Some("grant_type"),
    )
    .await;
    w.raw("sign-in without a username", token(json!({"password": "x"})), 400, "missing_field", Some("username")).await;

    // Rate limits: intake.rate_limit_per_minute = 5 per token.
    let t = w.fresh_worker();
    let mut limited = None;
    for _ in 0..7 {
        let r = app.http.post(url("/v1/reports")).bearer_auth(&t).json(&with(&|_| {})).send().await.unwrap();
        if r.status() == 429 {
            let after: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
            assert!((1..=60).contains(&after), "Retry-After {after}");
            limited = Some(r.json::<Value>().await.unwrap());
            break;
        }
        assert_eq!(r.status(), 201);
    }
    let e = limited.expect("the 6th report in a minute is refused");
    w.check("a token over its rate", 429, &e, "rate_limited", None);

    // The walk covered exactly the documented codes, with their statuses.
    let documented = documented();
    let walked: BTreeSet<&String> = w.seen.keys().collect();
    let listed: BTreeSet<&String> = documented.keys().collect();
    assert_eq!(walked, listed, "docs/errors.md and the walk differ");
    for (code, status) in &w.seen {
        assert_eq!(documented[code], *status, "{code}: docs/errors.md says {}", documented[code]);
    }
    app.shutdown().await;
}
