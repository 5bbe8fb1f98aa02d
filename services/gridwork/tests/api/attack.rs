//! The attack matrix (issue 14, ADR 0033): every route the all-in-one app
//! registers — walked from its route table, the same data that registered
//! the routes — called by every kind of outsider against real objects of a
//! Huancui (环翠区) centre and grid worker: a report with a photo, its case,
//! a task, a petition, its parties, an Open311 request. Each outsider is
//! refused (401 without a valid token, 403 for a role the table does not
//! let in, otherwise 404 or an answer without the objects), and gets the
//! same status and code for an existing object as for a random id. Public
//! routes show none of the objects. The table is also checked against
//! `/openapi.json` both ways (every operation is a route; every route is an
//! operation, but for two exact lists) and against the router (a method a
//! table path does not list is answered 405 with `Allow`).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::time::Duration;

use crate::helpers::{report, spawn, TestApp};
use gridwork_domain::auth::{Actor, Role};
use gridwork_platform::routes::{Access, Method, Route};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The Huancui objects the outsiders go after, and what of them must never
/// show in an outsider's answer.
struct Owned {
    report: String,
    media: String,
    case: String,
    task: String,
    petition: String,
    open311: String,
    secrets: Vec<String>,
}

struct Outsider {
    name: &'static str,
    token: Option<String>,
    /// The role of a token that is still valid; `None` for no, an expired
    /// or a revoked token.
    valid_role: Option<Role>,
    actor: Option<Actor>,
}

struct Answer {
    status: u16,
    code: String,
    body: String,
}

fn token(app: &TestApp, id: &str, role: Role, scope: &str, channel: Option<&str>) -> (String, Actor) {
    let actor = Actor { id: id.into(), role, scope: scope.into(), channel: channel.map(str::to_owned) };
    (app.ctx.issuer.issue(&actor).unwrap().0, actor)
}

fn jpeg(seed: u8, len: usize) -> Vec<u8> {
    let mut b = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00, 0x01];
    b.extend((0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)));
    b
}

/// A Huancui grid worker's report with a photo, its case, a task, a
/// petition, a read of the parties, and an Open311 request.
async fn huancui_objects(app: &TestApp) -> Owned {
    let worker = app.worker();
    let d = app.dispatcher();
    let (lat, lon) = app.demo.demo_point;
    let marker = format!("秘密{}", &Uuid::new_v4().simple().to_string()[..8]);

    let photo = jpeg(7, 20_000);
    let media = hex::encode(Sha256::digest(&photo));
    let r = app
        .http
        .post(format!("{}/v1/media", app.base))
        .bearer_auth(&worker)
        .header("content-type", "application/octet-stream")
        .body(photo)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);

    let report_id = Uuid::new_v4().to_string();
    let mut body = report(&report_id, lat, lon, "dispute.neighbourhood");
    body["description"] = json!(format!("楼上装修噪音扰民 {marker}-report"));
    body["parties"] = json!([{"name": "欧阳秘密", "phone": "13912345678", "id_number": "371002198001011234"}]);
    body["media"] = json!([media]);
    let (s, v) = app.post(&worker, "/v1/reports", &body).await;
    assert_eq!(s, 201, "{v}");
    let case = app.case_of(&report_id).await["id"].as_str().unwrap().to_owned();

    let due = (chrono::Utc::now() + chrono::Duration::hours(24)).to_rfc3339();
    let give = json!({"kind": "verification", "instructions": format!("核实 {marker}-task"), "due_at": due});
    let (s, t) = app.post(&d, &format!("/v1/cases/{case}/tasks"), &give).await;
    assert_eq!(s, 201, "{t}");
    let task = t["id"].as_str().unwrap().to_owned();

    let petition_report = Uuid::new_v4().to_string();
    let mut body = report(&petition_report, lat, lon, "petition.land_acquisition");
    body["description"] = json!(format!("征地补偿 {marker}-petition"));
    body["parties"] = json!([{"name": "上官秘密", "phone": "13987654321"}]);
    let (s, v) = app.post(&worker, "/v1/reports", &body).await;
    assert_eq!(s, 201, "{v}");
    let p = app.case_of(&petition_report).await;
    assert_eq!(p["channel"], "petition", "{p}");
    let petition = p["id"].as_str().unwrap().to_owned();

    // The parties, read once (audited) by the case's own dispatcher.
    let (s, v) = app.post(&d, &format!("/v1/cases/{case}/parties"), &json!({"reason": "电话联系当事人调解"})).await;
    assert_eq!(s, 200, "{v}");
    assert!(v.to_string().contains("13912345678"), "{v}");

    let key = gridwork_intake::open311::issue_key(
        &app.ctx.db,
        gridwork_intake::open311::NewKey {
            name: "hotline-12345".into(),
            user: "integration:hotline".into(),
            area: String::new(),
            categories: Vec::new(),
            created_by: "attack test".into(),
        },
    )
    .await
    .unwrap()
    .1;
    let (lat_s, lon_s) = (lat.to_string(), lon.to_string());
    let description = format!("小区垃圾堆放 {marker}-open311");
    let form = [
        ("api_key", key.as_str()),
        ("service_code", "dispute.consumer"),
        ("description", description.as_str()),
        ("lat", lat_s.as_str()),
        ("long", lon_s.as_str()),
    ];
    let r = app.http.post(format!("{}/open311/v2/requests.json", app.base)).form(&form).send().await.unwrap();
    let s = r.status().as_u16();
    let v: Value = r.json().await.unwrap();
    assert!(s == 200 || s == 201, "{s} {v}");
    let open311 = v[0]["service_request_id"].as_str().unwrap().to_owned();

    let secrets = vec![
        report_id.clone(),
        media.clone(),
        case.clone(),
        task.clone(),
        petition.clone(),
        petition_report,
        open311.clone(),
        marker,
        "13912345678".into(),
        "欧阳秘密".into(),
        "13987654321".into(),
        "上官秘密".into(),
        "371002198001011234".into(),
    ];
    Owned { report: report_id, media, case, task, petition, open311, secrets }
}

/// The concrete paths of a route: (path with a real object, the same path
/// with a random id). Equal when the path names no object.
fn paths(app: &TestApp, route: &Route, o: &Owned) -> Vec<(String, String)> {
    let t = route.path;
    let rand = || Uuid::new_v4().to_string();
    let rand_hex = hex::encode(Sha256::digest(Uuid::new_v4().as_bytes()));
    let fill = |pairs: &[(&str, &str, String)]| -> (String, String) {
        let (mut real, mut random) = (t.to_owned(), t.to_owned());
        for (k, v, r) in pairs {
            real = real.replace(k, v);
            random = random.replace(k, r);
        }
        (real, random)
    };
    let out = match t {
        "/v1/media/{id}" => vec![fill(&[("{id}", o.media.as_str(), rand_hex)])],
        "/v1/reports/{id}" => {
            vec![fill(&[("{id}", o.report.as_str(), rand())]), fill(&[("{id}", o.open311.as_str(), rand())])]
        }
        "/v1/users/{id}" => vec![fill(&[("{id}", "worker-1", format!("nobody-{}", rand()))])],
        "/v1/grids/versions/{id}/geojson" => vec![fill(&[("{id}", "1", "987654".into())])],
        "/v1/cases/{id}/tasks/{task}/cancel" => {
            vec![fill(&[("{id}", o.case.as_str(), rand()), ("{task}", o.task.as_str(), rand())])]
        }
        "/v1/me/tasks/{id}/ack" | "/v1/me/tasks/{id}/complete" => vec![fill(&[("{id}", o.task.as_str(), rand())])],
        // A centre code is no secret object: the same code both times.
        "/v1/centres/{code}/stream" => {
            vec![fill(&[("{code}", app.demo.demo_centre.as_str(), app.demo.demo_centre.clone())])]
        }
        "/open311/v2/requests/{file}" => {
            vec![fill(&[("{file}", format!("{}.json", o.report).as_str(), format!("{}.json", rand()))])]
        }
        "/open311/v2/services/{file}" => {
            vec![fill(&[("{file}", "dispute.neighbourhood.json", "dispute.neighbourhood.json".into())])]
        }
        "/docs/{_:.*}" | "/console/{_:.*}" => vec![fill(&[("{_:.*}", "index.html", "index.html".into())])],
        _ if t.starts_with("/v1/cases/{id}") => [o.case.as_str(), o.petition.as_str()]
            .into_iter()
            .map(|c| fill(&[("{id}", c, rand()), ("{action}", "claim", "claim".into())]))
            .collect(),
        _ => vec![fill(&[("{format}", "json", "json".into())])],
    };
    for (real, _) in &out {
        assert!(
            !real.contains('{'),
            "attack.rs has no object for a path parameter of {t}: add one to paths() so the new route is attacked"
        );
    }
    out
}

async fn call(app: &TestApp, method: Method, path: &str, token: Option<&str>) -> Answer {
    let url = format!("{}{path}", app.base);
    let mut r = match method {
        Method::Get => app.http.get(url),
        Method::Post => app.http.post(url),
        Method::Put => app.http.put(url),
        Method::Patch => app.http.patch(url),
        Method::Delete => app.http.delete(url),
    };
    if matches!(method, Method::Post | Method::Put | Method::Patch) {
        // Malformed on purpose: a refused caller must never learn that the
        // body was read (a 400 or 413 instead of its 401/403/404).
        r = r.header("content-type", "application/json").body("{");
    }
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.timeout(Duration::from_secs(3)).send().await.unwrap();
    let status = r.status().as_u16();
    // A live stream that opened would never end: what arrived in 3 s.
    let body = match r.text().await {
        Ok(b) => b,
        Err(_) => "<stream>".into(),
    };
    let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let code = match (&v["code"], &v[0]["code"]) {
        (Value::String(c), _) => c.clone(),
        (_, c) if !c.is_null() => c.to_string(),
        _ => String::new(),
    };
    Answer { status, code, body }
}

fn leaked<'a>(o: &'a Owned, body: &str, path: &str) -> Vec<&'a str> {
    o.secrets
        .iter()
        // The case ledger (台账) lists the case ids of its reader's
        // jurisdiction by design (a KPI reader's city covers Huancui); it
        // must show nothing else of them.
        .filter(|s| !(path.starts_with("/v1/ledgers/cases") && (**s == o.case || **s == o.petition)))
        .filter(|s| !path.contains(s.as_str()) && body.contains(s.as_str()))
        .map(String::as_str)
        .collect()
}

#[actix_web::test]
async fn every_route_refuses_every_outsider_without_leaking() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(dir.path()).await;
    let o = huancui_objects(&app).await;
    let centre = app.demo.demo_centre.clone();
    let grid = app.demo.demo_grid.clone();
    let other_street = format!("{}{}", &centre[..6], if centre.ends_with("999") { "998" } else { "999" });
    let other_grid = format!("{}{}", &grid[..12], if grid.ends_with("999") { "998" } else { "999" });

    let insider = Actor { id: "d-gone".into(), role: Role::Dispatcher, scope: centre.clone(), channel: None };
    let expired = app.ctx.issuer.issue_with(&insider, -600).unwrap().0;
    let revoked_actor = Actor { id: "d-signed-out".into(), ..insider.clone() };
    let revoked = app.ctx.issuer.issue(&revoked_actor).unwrap().0;
    let (s, v) = app.post(&revoked, "/v1/auth/revoke", &json!({})).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = app.get(&revoked, "/v1/cases").await;
    assert_eq!(s, 401, "revoked: {v}");

    let mut outsiders = Vec::new();
    for (name, id, role, scope, channel) in [
        ("other centre", "d-other-street", Role::Dispatcher, other_street.as_str(), None),
        ("other county", "d-rongcheng", Role::Dispatcher, "371082001", None),
        ("other channel", "m-legal-aid", Role::Mediator, centre.as_str(), Some("legal_aid")),
        ("other grid", "w-other-grid", Role::GridWorker, other_grid.as_str(), None),
        ("analyst", "analyst-1", Role::Analyst, "371000", None),
    ] {
        let (t, actor) = token(&app, id, role, scope, channel);
        outsiders.push(Outsider { name, token: Some(t), valid_role: Some(role), actor: Some(actor) });
    }
    outsiders.push(Outsider { name: "expired", token: Some(expired), valid_role: None, actor: None });
    outsiders.push(Outsider { name: "revoked", token: Some(revoked), valid_role: None, actor: None });
    outsiders.push(Outsider { name: "no token", token: None, valid_role: None, actor: None });

    let mut rows: Vec<(String, &'static str, u16, String, Option<String>)> = Vec::new();
    let mut failures = 0;
    assert!(app.table.len() >= 40, "the whole table: {:?}", app.table);
    for route in &app.table {
        assert_ne!(route.access, Access::AdminListener, "admin-listener route on the API listener: {route:?}");
        for (real, random) in paths(&app, route, &o) {
            for who in &outsiders {
                // Signing out with an outsider's own token would end it for
                // the rest of the matrix: a token of its own for that call.
                let own;
                let tok = match (&who.actor, route.path) {
                    (Some(a), "/v1/auth/revoke") => {
                        own = app.ctx.issuer.issue(a).unwrap().0;
                        Some(own.as_str())
                    }
                    _ => who.token.as_deref(),
                };
                let a = call(&app, route.method, &real, tok).await;
                let b = if random == real { None } else { Some(call(&app, route.method, &random, tok).await) };
                let mut wrong = Vec::new();
                let leaks = leaked(&o, &a.body, &real);
                if !leaks.is_empty() {
                    wrong.push(format!("shows {leaks:?}"));
                }
                if let Some(b) = &b {
                    if (a.status, &a.code) != (b.status, &b.code) {
                        wrong.push(format!("existing {} {} vs random {} {}", a.status, a.code, b.status, b.code));
                    }
                }
                // An object of Huancui is out of every outsider's view: a
                // valid token gets 403 or 404, never a 400 or 413 that says
                // the body was read (or a 2xx).
                if b.is_some()
                    && route.access != Access::Public
                    && who.valid_role.is_some()
                    && !matches!(a.status, 403 | 404)
                {
                    wrong.push("want 403 or 404 for another's object".into());
                }
                if a.status == 404 && a.body.contains("route not found") {
                    wrong.push("not registered".into());
                }
                match (route.access, who.valid_role) {
                    (Access::Public, _) => {}
                    (Access::ApiKey, _) if (200..300).contains(&a.status) => wrong.push("no api_key, yet 2xx".into()),
                    (Access::ApiKey, _) => {}
                    (_, None) if a.status != 401 => wrong.push("want 401".into()),
                    (Access::Roles(roles), Some(role)) if !roles.contains(&role) && a.status != 403 => {
                        wrong.push(format!("want 403 for {}", role.as_str()))
                    }
                    (_, Some(_)) if a.status == 401 => wrong.push("a valid token refused as invalid".into()),
                    _ => {}
                }
                if !wrong.is_empty() {
                    failures += 1;
                }
                let shown = if wrong.is_empty() { None } else { Some(wrong.join("; ")) };
                rows.push((format!("{} {real}", route.method.as_str()), who.name, a.status, a.code.clone(), shown));
            }
        }
    }
    if failures > 0 {
        let mut t = String::new();
        for (route, who, status, code, wrong) in &rows {
            let mark = wrong.as_deref().map_or(String::new(), |w| format!("  <-- {w}"));
            writeln!(t, "{route:<70} {who:<14} {status} {code}{mark}").unwrap();
        }
        panic!("{failures} of {} calls wrong:\n{t}", rows.len());
    }
    eprintln!("attack matrix: {} calls over {} routes, all refused without leaking", rows.len(), app.table.len());

    // /metrics and the admin routes live on the admin listener only.
    assert_eq!(call(&app, Method::Get, "/metrics", None).await.status, 404);
    for r in gridwork_platform::routes::ADMIN_LISTENER {
        let s = app.http.get(format!("{}{}", app.admin, r.path)).send().await.unwrap().status().as_u16();
        assert!(s == 200 || s == 503, "{r:?} on the admin listener: {s}");
    }
    app.shutdown().await;
}

/// Whether an actix path template matches a concrete path: `{name}` takes
/// one segment (or what is left of it), `{_:.*}` the rest of the path.
fn matches(template: &str, path: &str) -> bool {
    let t: Vec<&str> = template.split('/').collect();
    let p: Vec<&str> = path.split('/').collect();
    for (i, seg) in t.iter().enumerate() {
        if seg.contains(":.*}") {
            return p.len() > i;
        }
        let Some(actual) = p.get(i) else { return false };
        match (seg.find('{'), seg.rfind('}')) {
            (Some(a), Some(b)) => {
                let (pre, post) = (&seg[..a], &seg[b + 1..]);
                if !(actual.len() > pre.len() + post.len() && actual.starts_with(pre) && actual.ends_with(post)) {
                    return false;
                }
            }
            _ if seg != actual => return false,
            _ => {}
        }
    }
    t.len() == p.len()
}

fn normalise(template: &str) -> String {
    let mut out = String::new();
    let mut depth = 0;
    for ch in template.chars() {
        match ch {
            '{' => {
                depth += 1;
                if depth == 1 {
                    out.push_str("{}");
                }
            }
            '}' => depth -= 1,
            c if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// The table is the truth: every operation of `/openapi.json` has a row,
/// and on every path of the table no method answers that the table does
/// not list (the router's 404 or 405), so a handler added beside the table
/// is caught here, and one added on a new path by clippy's
/// `disallowed-methods`.
#[actix_web::test]
async fn the_route_table_is_what_the_app_serves() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(dir.path()).await;
    let table: BTreeSet<(String, &str)> = app.table.iter().map(|r| (normalise(r.path), r.method.as_str())).collect();
    assert_eq!(table.len(), app.table.len(), "no row twice: {:?}", app.table);

    let spec: Value = app.http.get(format!("{}/openapi.json", app.base)).send().await.unwrap().json().await.unwrap();
    let mut missing = Vec::new();
    for (path, ops) in spec["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            let m = method.to_uppercase();
            if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&m.as_str()) {
                continue;
            }
            if !table.iter().any(|(p, tm)| *p == normalise(path) && *tm == m) {
                missing.push(format!("{m} {path}"));
            }
        }
    }
    assert!(missing.is_empty(), "in /openapi.json but not in the route table: {missing:?}");

    let mut extra = Vec::new();
    let paths: BTreeSet<&str> = app.table.iter().map(|r| r.path).collect();
    for path in paths {
        let concrete = path
            .replace("{_:.*}", "index.html")
            .replace("{format}", "json")
            .replace("{file}", &format!("{}.json", Uuid::new_v4()))
            .replace("{code}", "371002001")
            .replace("{action}", "claim")
            .replace("{task}", &Uuid::new_v4().to_string())
            .replace("{id}", &Uuid::new_v4().to_string());
        // The methods of the most specific rows whose template takes the
        // path (fewest `{…}`: `/v1/reports/batch` is POST only, not also
        // `GET /v1/reports/{id}` with the id "batch").
        let taking: Vec<&gridwork_platform::routes::Route> =
            app.table.iter().filter(|r| matches(r.path, &concrete)).collect();
        let best = taking.iter().map(|r| r.path.matches('{').count()).min().unwrap();
        let allowed: Vec<&str> = Method::ALL
            .into_iter()
            .filter(|m| taking.iter().any(|r| r.method == *m && r.path.matches('{').count() == best))
            .map(Method::as_str)
            .collect();
        for m in Method::ALL {
            if allowed.contains(&m.as_str()) {
                continue;
            }
            // Open311 keeps GeoReport v2's own answers (its scope's 404 in
            // its error shape): nothing but the table's methods answer.
            if concrete.starts_with("/open311/") {
                let a = call(&app, m, &concrete, None).await;
                if !matches!(a.status, 404 | 405) {
                    extra.push(format!("{} {concrete}: {} {}", m.as_str(), a.status, a.body));
                }
                continue;
            }
            // A known path with a method it does not have: 405 with
            // `Allow` naming the methods it has, in the shared error shape.
            let r = app
                .http
                .request(reqwest::Method::from_bytes(m.as_str().as_bytes()).unwrap(), format!("{}{concrete}", app.base))
                .timeout(Duration::from_secs(3))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let allow = r.headers().get("allow").map(|v| v.to_str().unwrap().to_owned());
            let body = r.text().await.unwrap();
            let code = serde_json::from_str::<Value>(&body).map(|v| v["code"].clone()).unwrap_or(Value::Null);
            if (status, allow.as_deref(), code.as_str())
                != (405, Some(allowed.join(", ").as_str()), Some("method_not_allowed"))
            {
                extra.push(format!("{} {concrete}: {status} (Allow: {allow:?}, want {allowed:?}) {body}", m.as_str()));
            }
        }
    }
    assert!(extra.is_empty(), "answered but not in the route table, or not 405 with Allow: {extra:#?}");
    app.shutdown().await;
}

/// Routes left out of `/openapi.json` on purpose, each with its reason.
/// Exact: an entry that is documented, or no longer a route, fails the
/// test, so the list cannot go stale.
const OUTSIDE_THE_DOCUMENT: &[(&str, &str, &str)] = &[
    ("GET", "/openapi.json", "the document itself"),
    ("GET", "/docs/{_:.*}", "Swagger UI, the document's browsable view"),
    ("GET", "/docs", "the redirect to Swagger UI"),
    ("GET", "/console", "the redirect to the web console"),
    ("GET", "/console/{_:.*}", "the web console's page and assets (it uses the API, it is not part of it)"),
    // Open311 GeoReport v2 is a published standard (open311.org) with its
    // own contract: form-encoded posts, XML or JSON chosen by the path's
    // `.{format}`, its own error list. Integrations build against that
    // standard; tests/api/open311.rs checks it with two third-party clients.
    ("GET", "/open311/v2/services.{format}", "Open311 GeoReport v2 (its own standard)"),
    ("GET", "/open311/v2/services/{file}", "Open311 GeoReport v2 (its own standard)"),
    ("GET", "/open311/v2/requests.{format}", "Open311 GeoReport v2 (its own standard)"),
    ("POST", "/open311/v2/requests.{format}", "Open311 GeoReport v2 (its own standard)"),
    ("GET", "/open311/v2/requests/{file}", "Open311 GeoReport v2 (its own standard)"),
];

/// One contract (issue 15): every route of every service's route table is
/// an operation of `/openapi.json` (and, in the test above, every
/// operation a route), but for the list above, which must be exact.
#[actix_web::test]
async fn every_route_is_in_the_document() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn(dir.path()).await;
    let spec: Value = app.http.get(format!("{}/openapi.json", app.base)).send().await.unwrap().json().await.unwrap();
    let mut documented: BTreeSet<(String, String)> = BTreeSet::new();
    for (path, ops) in spec["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            documented.insert((method.to_uppercase(), normalise(path)));
        }
    }
    let rows: BTreeSet<(String, String)> =
        app.table.iter().map(|r| (r.method.as_str().to_owned(), normalise(r.path))).collect();
    let listed = |m: &str, p: &str, list: &[(&str, &str)]| list.iter().any(|(lm, lp)| *lm == m && normalise(lp) == p);
    let outside: Vec<(&str, &str)> = OUTSIDE_THE_DOCUMENT.iter().map(|(m, p, _)| (*m, *p)).collect();

    let mut absent = Vec::new();
    for (m, p) in &rows {
        if !documented.contains(&(m.clone(), p.clone())) && !listed(m, p, &outside) {
            absent.push(format!("{m} {p}"));
        }
    }
    assert!(
        absent.is_empty(),
        "routes missing from /openapi.json (annotate the handler with #[utoipa::path] and add it to its \
         service's OpenApi): {absent:#?}"
    );

    let mut stale = Vec::new();
    for (m, p) in &outside {
        let key = (m.to_string(), normalise(p));
        if !rows.contains(&key) {
            stale.push(format!("{m} {p}: not a route"));
        } else if documented.contains(&key) {
            stale.push(format!("{m} {p}: documented now, take it off the list"));
        }
    }
    assert!(stale.is_empty(), "stale entries in OUTSIDE_THE_DOCUMENT: {stale:#?}");
    eprintln!(
        "{} routes: {} documented, {} outside the document",
        rows.len(),
        rows.len() - OUTSIDE_THE_DOCUMENT.len(),
        OUTSIDE_THE_DOCUMENT.len()
    );
    app.shutdown().await;
}
