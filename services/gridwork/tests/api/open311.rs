//! Open311 GeoReport v2 under `/open311/v2/`, driven by clients gridwork did
//! not write (`tests/open311_client.py`: georeport for reads, three for the
//! post), with API keys issued, listed and revoked by `gridwork apikey`;
//! state in PostgreSQL, the rate-limit counters in Redis. (The event log is
//! the embedded one: Open311 posts take `POST /v1/reports`'s path, which
//! kafka.rs and pipeline.rs run on Kafka.)

use crate::helpers;
use crate::helpers::{claim_resolve_close, eventually, report};
use gridwork_domain::auth::Role;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// A point in 荣成市 (371082), another county of the demo city.
const RONGCHENG: (f64, f64) = (37.165, 122.486);
/// A point in Qingdao (370202): Shandong, but no grids of gridwork's.
const QINGDAO: (f64, f64) = (36.07, 120.38);

/// Runs `cmd` off the test's runtime, which drives the app's connections.
async fn run(mut cmd: std::process::Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap()
}

/// `gridwork ARGS` against the test's database: (success, stdout, stderr).
async fn cli(env: &[(String, String)], args: &[&str]) -> (bool, String, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_gridwork"));
    cmd.args(args).env("RUST_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = run(cmd).await;
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

/// `gridwork apikey issue ARGS`: (key id, key).
async fn issue(env: &[(String, String)], args: &[&str]) -> (String, String) {
    let (ok, stdout, stderr) = cli(env, &[&["apikey", "issue"], args].concat()).await;
    assert!(ok, "apikey issue {args:?}: {stderr}");
    let key = stdout.trim().to_owned();
    assert!(key.starts_with("gw311_") && key.len() > 40, "{key}");
    let id = stderr.split("issued ").nth(1).unwrap().split_whitespace().next().unwrap().to_owned();
    assert!(id.starts_with("ak_"), "{stderr}");
    (id, key)
}

/// A form-encoded POST to `/open311/v2/requests.{format}`.
async fn post(app: &helpers::TestApp, format: &str, form: &[(&str, &str)]) -> (u16, String) {
    let r = app.http.post(format!("{}/open311/v2/requests.{format}", app.base)).form(form).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

type Form<'a> = Vec<(&'a str, &'a str)>;

/// A request's form: key, service code, a description, and `rest`.
fn form<'a>(key: &'a str, code: &'a str, rest: &[(&'a str, &'a str)]) -> Form<'a> {
    let mut f = vec![("api_key", key), ("service_code", code), ("description", "噪音扰民")];
    f.extend_from_slice(rest);
    f
}

async fn post_json(app: &helpers::TestApp, form: &[(&str, &str)]) -> (u16, Value) {
    let (s, body) = post(app, "json", form).await;
    (s, serde_json::from_str(&body).unwrap_or_else(|_| panic!("not JSON: {body}")))
}

async fn get(app: &helpers::TestApp, path_and_query: &str) -> (u16, Value) {
    let r = app.http.get(format!("{}/open311/v2/{path_and_query}", app.base)).send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// GeoReport's error shape, with `code` = the HTTP status; the description.
fn error_of(status: u16, v: &Value) -> String {
    let arr = v.as_array().unwrap_or_else(|| panic!("not an error array: {v}"));
    assert_eq!(arr.len(), 1, "{v}");
    assert_eq!(arr[0]["code"], status, "{v}");
    arr[0]["description"].as_str().unwrap().to_owned()
}

#[actix_web::test]
async fn open311_clients_report_through_revocable_scoped_api_keys() {
    let dir = tempfile::tempdir().unwrap();
    let (mut cfg, pg) = helpers::on_postgres_and_redis(dir.path()).await;
    cfg.intake.rate_limit_per_minute = 40;
    // The CLI works on the same database as the app.
    let env = vec![
        ("GRIDWORK_DATA_DIR".to_owned(), dir.path().display().to_string()),
        ("GRIDWORK_DATABASE__URL".to_owned(), pg.url.clone()),
    ];
    let app = helpers::spawn_with(cfg).await;
    let (lat, lon) = app.demo.demo_point;
    let (lat_s, lon_s) = (lat.to_string(), lon.to_string());
    let grid = app.demo.demo_grid.clone();
    let county = grid[..6].to_owned();
    let centre = app.demo.demo_centre.clone();
    let admin = app.as_role(Role::Admin);

    // Keys, from the CLI: the hotline reports as worker-1 into its county;
    // the others are scoped to another county, or to sanitation only.
    let (hotline_id, hotline) = issue(
        &env,
        &["--name", "hotline-12345", "--user", "worker-1", "--scope", &county, "--categories", "dispute.,environment."],
    )
    .await;
    let (_, rongcheng) =
        issue(&env, &["--name", "rongcheng-app", "--user", "integration:rongcheng", "--scope", "371082"]).await;
    let (_, sanitation) =
        issue(&env, &["--name", "sanitation-co", "--user", "worker-1", "--categories", "environment.sanitation"]).await;
    let (_, busy) = issue(&env, &["--name", "busy-client", "--user", "worker-1"]).await;
    for (bad, why) in [
        (vec!["--name", "x", "--user", "worker-1", "--categories", "petition.labour"], "petitions"),
        (vec!["--name", "x", "--user", "dispatcher-1"], "grid worker"),
        (vec!["--name", "x", "--user", "worker-1", "--scope", &grid[..9]], "county code"),
        (vec!["--name", "x", "--user", "worker-1", "--categories", "nonsense"], "category"),
    ] {
        let (ok, _, stderr) = cli(&env, &[&["apikey", "issue"], bad.as_slice()].concat()).await;
        assert!(!ok && stderr.contains(why), "{bad:?}: {stderr}");
    }

    // Stored hashed: the SHA-256 is there, the key is nowhere.
    let rows: Vec<String> = app
        .ctx
        .db
        .query_all(Statement::from_string(
            app.ctx.db.get_database_backend(),
            "SELECT row_to_json(t)::text AS j FROM api_keys t",
        ))
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get::<String>("", "j").unwrap())
        .collect();
    assert_eq!(rows.len(), 4);
    let hashed = hex::encode(Sha256::digest(hotline.as_bytes()));
    assert!(rows.iter().any(|r| r.contains(&hashed) && r.contains(&hotline_id)), "{rows:?}");
    for key in [&hotline, &rongcheng, &sanitation, &busy] {
        let secret = key.trim_start_matches("gw311_");
        assert!(rows.iter().all(|r| !r.contains(secret)), "key {key} stored in plain: {rows:?}");
    }

    // The independent clients: services, a definition, a post with the
    // key, the request read back (JSON and XML), and two refusals.
    let mut client = std::process::Command::new("python3");
    client.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api/open311_client.py")).args([
        app.base.as_str(),
        hotline.as_str(),
        "371000",
        "dispute.neighbourhood",
        &lat_s,
        &lon_s,
    ]);
    let out = run(client).await;
    assert!(
        out.status.success(),
        "open311 client (scripts/setup-test-deps.sh installs georeport and three): {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();
    let services = seen["services"].as_array().unwrap();
    let codes: Vec<&str> = services.iter().map(|s| s["service_code"].as_str().unwrap()).collect();
    assert!(codes.contains(&"dispute.neighbourhood") && codes.contains(&"environment.sanitation"), "{codes:?}");
    assert!(codes.iter().all(|c| !c.starts_with("petition.")), "petitions are not offered: {codes:?}");
    let neighbourhood = services.iter().find(|s| s["service_code"] == "dispute.neighbourhood").unwrap();
    assert_eq!(
        (&neighbourhood["service_name"], &neighbourhood["metadata"], &neighbourhood["type"], &neighbourhood["group"]),
        (&json!("邻里纠纷"), &json!(false), &json!("realtime"), &json!("dispute"))
    );
    let xml_codes: Vec<&str> =
        seen["services_xml"].as_array().unwrap().iter().map(|s| s["service_code"].as_str().unwrap()).collect();
    assert_eq!(xml_codes, codes);
    assert_eq!(seen["services_xml"][0]["metadata"], "false");
    assert_eq!(seen["definition"], json!({"service_code": "dispute.neighbourhood", "attributes": []}));
    assert_eq!(seen["definition_xml"]["service_code"], "dispute.neighbourhood");

    assert_eq!(seen["posted_status"], 200, "{}", seen["posted"]);
    let posted = &seen["posted"][0];
    let id = posted["service_request_id"].as_str().unwrap().to_owned();
    assert_eq!(Uuid::parse_str(&id).unwrap().get_version_num(), 4);
    assert!(posted["account_id"].is_null() && posted["service_notice"].as_str().unwrap().contains("grid"));

    let r = &seen["request"];
    assert_eq!((r["service_request_id"].as_str(), r["status"].as_str()), (Some(id.as_str()), Some("open")), "{r}");
    assert_eq!(
        (r["service_code"].as_str(), r["service_name"].as_str()),
        (Some("dispute.neighbourhood"), Some("邻里纠纷"))
    );
    assert_eq!(r["description"], "楼道堆放杂物，邻里多次争吵");
    assert_eq!(r["address"], "威海市环翠区 & 海滨北路 <1号>");
    assert_eq!((r["lat"].as_f64(), r["long"].as_f64()), (Some(lat), Some(lon)));
    assert!(r["requested_datetime"].as_str().unwrap().ends_with('Z'), "{r}");
    // XML through xmltodict: the same request, the address unescaped.
    let rx = &seen["request_xml"];
    assert_eq!((rx["service_request_id"].as_str(), rx["address"].as_str()), (Some(id.as_str()), r["address"].as_str()));
    assert_eq!(rx["long"].as_str().unwrap().parse::<f64>().unwrap(), lon);
    assert_eq!(seen["requests"].as_array().unwrap().len(), 1);
    assert_eq!(seen["requests"][0]["service_request_id"], id.as_str());
    assert_eq!(seen["bad_key_status"], 403);
    assert_eq!(seen["bad_key"], json!([{"code": 403, "description": "invalid api_key"}]));
    assert_eq!(seen["missing"]["status"], 404);
    assert_eq!(seen["missing"]["body"][0]["code"], 404);

    // In gridwork: a report like any other, recorded as reported by the
    // key's identity, without the caller's contact details; it gets its grid
    // and a case.
    let (s, v) = app.get(&admin, &format!("/v1/reports/{id}")).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!((v["reporter"].as_str(), v["category"].as_str()), (Some("worker-1"), Some("dispute.neighbourhood")));
    assert_eq!(v["party_count"], 0);
    assert!(!v.to_string().contains("13900000000") && !v.to_string().contains("caller@example.com"), "{v}");
    let placed = eventually("the Open311 report's grid and case", || async {
        let (_, v) = app.get(&admin, &format!("/v1/reports/{id}")).await;
        (v["grid"] == grid.as_str() && v["case_id"].is_string()).then_some(v)
    })
    .await;
    assert_eq!(placed["centre"], centre.as_str());
    let case_id = placed["case_id"].as_str().unwrap().to_owned();
    // Open311 shows the centre and grid responsible, in fixed words.
    let (_, st) = get(&app, &format!("requests/{id}.json?jurisdiction_id=371000")).await;
    let agency = st[0]["agency_responsible"].as_str().unwrap();
    assert!(agency.contains(&centre) && agency.contains(&grid), "{st}");
    assert_eq!(st[0]["status"], "open");

    // Closing the case closes the request.
    claim_resolve_close(&app.http, &app.base, &app.dispatcher(), &case_id, "mediated_agreement").await;
    let closed = eventually("the request closed", || async {
        let (_, st) = get(&app, &format!("requests/{id}.json")).await;
        (st[0]["status"] == "closed").then_some(st)
    })
    .await;
    assert_eq!(closed[0]["status_notes"], "closed (已结案)");
    assert!(closed[0]["updated_datetime"].as_str() >= closed[0]["requested_datetime"].as_str(), "{closed}");

    // Refusals, all in GeoReport's shape.
    let here = [("lat", lat_s.as_str()), ("long", lon_s.as_str())];
    let neighbourhood = "dispute.neighbourhood";
    let cases: Vec<(Form, u16, &str)> = vec![
        (vec![("service_code", neighbourhood), ("lat", "37.5"), ("long", "122.1")], 400, "api_key is required"),
        (form("gw311_forged", neighbourhood, &here), 403, "invalid api_key"),
        (form(&hotline, "pothole", &here), 400, "services.json"),
        (form(&hotline, neighbourhood, &[]), 400, "lat and long"),
        (form(&hotline, neighbourhood, &[("lat", "91"), ("long", "122.1")]), 400, "lat must be"),
        (form(&hotline, neighbourhood, &[("address_string", "威海市环翠区")]), 400, "lat and long"),
        (form(&hotline, "petition.labour", &here), 400, "petition"),
        (form(&hotline, neighbourhood, &[("lat", "36.07"), ("long", "120.38")]), 400, "outside the area"),
        (form(&hotline, neighbourhood, &[("lat", "37.165"), ("long", "122.486")]), 403, "may report only in"),
        (form(&hotline, neighbourhood, &[here[0], here[1], ("jurisdiction_id", "370200")]), 404, "jurisdiction_id"),
        (
            form(&hotline, neighbourhood, &[here[0], here[1], ("jurisdiction_id", "371003")]),
            400,
            "outside jurisdiction",
        ),
        (form(&hotline, "hazard.fire", &here), 403, "may not report service_code"),
        (form(&hotline, neighbourhood, &[here[0], here[1], ("media_url", "file:///etc/passwd")]), 400, "media_url"),
        (vec![("api_key", hotline.as_str()), ("service_code", neighbourhood), here[0], here[1]], 400, "description"),
    ];
    for (f, status, says) in &cases {
        let (s, v) = post_json(&app, f).await;
        assert_eq!(s, *status, "{f:?}: {v}");
        let d = error_of(*status, &v);
        assert!(d.contains(says), "{f:?}: {d}");
    }
    // A key's scope: the Rongcheng app reports in Rongcheng, nowhere else;
    // the sanitation company reports sanitation only.
    let (s, v) = post_json(&app, &form(&rongcheng, neighbourhood, &here)).await;
    assert_eq!((s, error_of(403, &v).contains("371082")), (403, true), "{v}");
    let in_rongcheng = [("lat", RONGCHENG.0.to_string()), ("long", RONGCHENG.1.to_string())];
    let in_rongcheng =
        [(in_rongcheng[0].0, in_rongcheng[0].1.as_str()), (in_rongcheng[1].0, in_rongcheng[1].1.as_str())];
    let (s, v) = post_json(&app, &form(&rongcheng, neighbourhood, &in_rongcheng)).await;
    assert_eq!(s, 200, "{v}");
    let rc_id = v[0]["service_request_id"].as_str().unwrap().to_owned();
    let (s, v) = app.get(&admin, &format!("/v1/reports/{rc_id}")).await;
    assert_eq!((s, v["reporter"].as_str()), (200, Some("integration:rongcheng")), "{v}");
    let (s, v) = post_json(&app, &form(&sanitation, neighbourhood, &here)).await;
    assert_eq!((s, error_of(403, &v).contains("environment.sanitation")), (403, true), "{v}");
    let (s, v) = post_json(&app, &form(&sanitation, "environment.sanitation", &here)).await;
    assert_eq!(s, 200, "{v}");
    // Qingdao is in Shandong, but no grid of gridwork's is there.
    let outside = [("lat", QINGDAO.0.to_string()), ("long", QINGDAO.1.to_string())];
    let (s, v) = post_json(&app, &form(&busy, neighbourhood, &[("lat", &outside[0].1), ("long", &outside[1].1)])).await;
    assert_eq!((s, error_of(400, &v).contains("371000")), (400, true), "{v}");

    // XML: a post, and an error, as XML.
    let media = form(&hotline, neighbourhood, &[here[0], here[1], ("media_url", "https://img.example/1.jpg")]);
    let (s, body) = post(&app, "xml", &media).await;
    assert_eq!(s, 200, "{body}");
    assert!(body.starts_with("<?xml") && body.contains("<service_requests><request><service_request_id>"), "{body}");
    let xml_id = body.split("<service_request_id>").nth(1).unwrap().split('<').next().unwrap().to_owned();
    let (_, st) = get(&app, &format!("requests/{xml_id}.json")).await;
    assert_eq!(
        (st[0]["media_url"].as_str(), st[0]["description"].as_str()),
        (Some("https://img.example/1.jpg"), Some("噪音扰民"))
    );
    let r = app.http.get(format!("{}/open311/v2/requests/{}.xml", app.base, Uuid::new_v4())).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let body = r.text().await.unwrap();
    assert!(body.contains("<errors><error><code>404</code><description>"), "{body}");
    let (s, v) = get(&app, "services.yaml").await;
    assert_eq!((s, error_of(404, &v).contains(".json or .xml")), (404, true));
    let (s, v) = get(&app, "services.json?jurisdiction_id=350100").await;
    assert_eq!((s, error_of(404, &v).contains("371000")), (404, true), "{v}");
    let (s, v) = get(&app, "services/petition.labour.json").await;
    assert_eq!((s, error_of(404, &v).contains("petition")), (404, true), "{v}");
    let (s, v) = get(&app, "nonsense").await;
    assert_eq!(s, 404);
    error_of(404, &v);

    // No personal data: a phone's report (with parties) is not an Open311
    // request, and Open311 answers never carry parties or reporters.
    let phone_id = Uuid::new_v4().to_string();
    let (s, _) = app.post(&app.worker(), "/v1/reports", &report(&phone_id, lat, lon, "dispute.neighbourhood")).await;
    assert_eq!(s, 201);
    let (s, v) = get(&app, &format!("requests/{phone_id}.json")).await;
    assert_eq!((s, error_of(404, &v).contains("not found")), (404, true));
    let (_, v) = get(&app, &format!("requests.json?service_request_id={id},{phone_id},{rc_id}")).await;
    let listed: Vec<&str> = v.as_array().unwrap().iter().map(|r| r["service_request_id"].as_str().unwrap()).collect();
    assert_eq!(listed.len(), 2, "{v}");
    assert!(listed.contains(&id.as_str()) && listed.contains(&rc_id.as_str()));
    let text = v.to_string();
    for secret in ["张三", "13800000000", "worker-1", "integration:rongcheng", "parties", "reporter"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }

    // Listing needs the integration's key and shows only its requests.
    let (s, v) = get(&app, "requests.json").await;
    assert_eq!((s, error_of(403, &v).contains("api_key")), (403, true));
    let r = app.http.get(format!("{}/open311/v2/requests.json?status=closed", app.base)).header("X-Api-Key", &hotline);
    let v: Value = r.send().await.unwrap().json().await.unwrap();
    let closed: Vec<&str> = v.as_array().unwrap().iter().map(|r| r["service_request_id"].as_str().unwrap()).collect();
    assert_eq!(closed, [id.as_str()], "{v}");
    let (_, v) = get(&app, &format!("requests.json?api_key={hotline}&status=open")).await;
    let open: Vec<&str> = v.as_array().unwrap().iter().map(|r| r["service_request_id"].as_str().unwrap()).collect();
    assert_eq!(open, [xml_id.as_str()], "{v}");
    let (_, v) = get(&app, &format!("requests.json?api_key={rongcheng}")).await;
    assert_eq!(v.as_array().unwrap().len(), 1, "only the Rongcheng app's own: {v}");

    // Rate limits per key (intake.rate_limit_per_minute), checked before anything else.
    let mut limited = None;
    for _ in 0..90 {
        let r = app
            .http
            .post(format!("{}/open311/v2/requests.json", app.base))
            .form(&[("api_key", busy.as_str()), ("service_code", "nope")])
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            limited = Some((r.headers().get("retry-after").is_some(), r.json::<Value>().await.unwrap()));
            break;
        }
        assert_eq!(r.status(), 400);
    }
    let (retry_after, v) = limited.expect("the busy client was never limited");
    assert!(retry_after);
    assert!(error_of(429, &v).contains("retry"), "{v}");

    // Revoked: refused at once; its requests can still be looked up.
    let (ok, stdout, _) = cli(&env, &["apikey", "revoke", &hotline_id]).await;
    assert!(ok && stdout.contains("revoked"), "{stdout}");
    let (s, v) = post_json(&app, &form(&hotline, neighbourhood, &here)).await;
    assert_eq!((s, error_of(403, &v).contains("revoked")), (403, true), "{v}");
    let (s, _) = get(&app, &format!("requests/{id}.json")).await;
    assert_eq!(s, 200);
    let (ok, stdout, _) = cli(&env, &["apikey", "list"]).await;
    assert!(ok, "{stdout}");
    let line = stdout.lines().find(|l| l.starts_with(&hotline_id)).unwrap();
    assert!(line.contains("hotline-12345") && line.contains("revoked") && line.contains("gw311_"), "{line}");
    assert!(!stdout.contains(hotline.trim_start_matches("gw311_")), "list shows no keys: {stdout}");
    let (ok, _, stderr) = cli(&env, &["apikey", "revoke", "ak_nosuchkey"]).await;
    assert!(!ok && stderr.contains("no API key"), "{stderr}");

    app.shutdown().await;
    drop(pg);
}

/// An API key issued straight into the app's database.
async fn key_for(app: &helpers::TestApp, name: &str, user: &str) -> String {
    let new = gridwork_intake::open311::NewKey {
        name: name.into(),
        user: user.into(),
        area: String::new(),
        categories: Vec::new(),
        created_by: "test".into(),
    };
    gridwork_intake::open311::issue_key(&app.ctx.db, new).await.unwrap().1
}

/// A form POST to `requests.json`, with an `Idempotency-Key` header if given.
async fn post_with(app: &helpers::TestApp, form: &[(&str, &str)], idempotency_key: Option<&str>) -> (u16, Value) {
    let mut r = app.http.post(format!("{}/open311/v2/requests.json", app.base)).form(form);
    if let Some(k) = idempotency_key {
        r = r.header("Idempotency-Key", k);
    }
    let r = r.send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

fn request_id(v: &Value) -> String {
    v[0]["service_request_id"].as_str().unwrap_or_else(|| panic!("no service_request_id: {v}")).to_owned()
}

/// Clients retry: a POST sent again with the same `Idempotency-Key` header
/// (or `client_request_id` parameter) is the same request, stored once, even
/// when the retries race; the same key for different content is a 409; keys
/// are per integration; without one, every POST is a request of its own.
#[actix_web::test]
async fn a_retried_post_with_an_idempotency_key_is_one_request() {
    use gridwork_storage::entity::{api_key_report, report as report_row};
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    let dir = tempfile::tempdir().unwrap();
    let app = helpers::spawn(dir.path()).await;
    let hotline = key_for(&app, "hotline-12345", "integration:hotline").await;
    let other = key_for(&app, "other-app", "integration:other").await;
    let (lat, lon) = app.demo.demo_point;
    let (lat_s, lon_s) = (lat.to_string(), lon.to_string());
    let here = [("lat", lat_s.as_str()), ("long", lon_s.as_str())];
    let f = form(&hotline, "dispute.neighbourhood", &here);

    let (s, v) = post_with(&app, &f, Some("call-0001")).await;
    assert_eq!(s, 200, "{v}");
    let first = request_id(&v);
    let (s, v) = post_with(&app, &f, Some("call-0001")).await;
    assert_eq!((s, request_id(&v)), (200, first.clone()), "a retry with the same Idempotency-Key: {v}");
    // Retries racing each other.
    let racing = futures::future::join_all((0..6).map(|_| post_with(&app, &f, Some("call-0002")))).await;
    let ids: std::collections::BTreeSet<String> = racing
        .iter()
        .map(|(s, v)| {
            assert_eq!(*s, 200, "{v}");
            request_id(v)
        })
        .collect();
    assert_eq!(ids.len(), 1, "racing retries are one request: {ids:?}");
    assert!(!ids.contains(&first));
    // The same as a form parameter, for clients that cannot set headers.
    let mut g = f.clone();
    g.push(("client_request_id", "device-42-0001"));
    let (s, a) = post_with(&app, &g, None).await;
    let (s2, b) = post_with(&app, &g, None).await;
    assert_eq!((s, s2, request_id(&a)), (200, 200, request_id(&b)), "{a} {b}");
    // The key again for something else: refused, nothing overwritten.
    let mut changed = f.clone();
    changed[2] = ("description", "另一件事：楼道堆物");
    let (s, v) = post_with(&app, &changed, Some("call-0001")).await;
    assert_eq!((s, error_of(409, &v).contains("Idempotency-Key")), (409, true), "{v}");
    let (s, v) = app.get(&app.as_role(Role::Admin), &format!("/v1/reports/{first}")).await;
    assert_eq!((s, v["description"].as_str()), (200, Some("噪音扰民")), "{v}");
    // Another integration's key of the same name is its own request.
    let (s, v) = post_with(&app, &form(&other, "dispute.neighbourhood", &here), Some("call-0001")).await;
    assert_eq!(s, 200, "{v}");
    assert_ne!(request_id(&v), first);
    // Without a key: two posts, two requests.
    let (_, x) = post_with(&app, &f, None).await;
    let (_, y) = post_with(&app, &f, None).await;
    assert_ne!(request_id(&x), request_id(&y));

    // Stored: one report per request, each marked as Open311's.
    let hotline_reports = report_row::Entity::find()
        .filter(report_row::Column::Reporter.eq("integration:hotline"))
        .count(&app.ctx.db)
        .await
        .unwrap();
    assert_eq!(hotline_reports, 5, "call-0001, call-0002, device-42-0001 and two without a key");
    assert_eq!(api_key_report::Entity::find().count(&app.ctx.db).await.unwrap(), 6);
    app.shutdown().await;
}

/// The ambiguous case: the server stored the request and died before it
/// answered. The client retries with its key after the restart and gets the
/// same request: one report, marked as Open311's (never an orphan the
/// client cannot see, nor a second report).
#[tokio::test]
async fn a_post_a_crash_left_unanswered_is_the_same_request_when_retried() {
    let dir = tempfile::tempdir().unwrap();
    let dir_s = dir.path().display().to_string();
    let up = ["up", "--data-dir", dir_s.as_str(), "--listen", "127.0.0.1:0"];
    let armed = [
        ("GW_FAILPOINT".to_owned(), "open311.after_commit".to_owned()),
        ("GRIDWORK_DATA_DIR".to_owned(), dir_s.clone()),
    ];
    let p = helpers::start_process("gridwork", &up, &armed);
    let env = vec![("GRIDWORK_DATA_DIR".to_owned(), dir_s.clone())];
    let (_, key) = issue(&env, &["--name", "hotline-12345", "--user", "integration:hotline"]).await;
    let f = form(&key, "dispute.neighbourhood", &[("lat", "37.5095"), ("long", "122.115")]);
    let url = |base: &str| format!("{base}/open311/v2/requests.json");
    let impatient = reqwest::Client::builder().timeout(std::time::Duration::from_secs(3)).build().unwrap();
    // Answered or not, the client does not know what became of it.
    let _ = impatient.post(url(&p.base)).header("Idempotency-Key", "call-7781").form(&f).send().await;
    drop(p); // SIGKILL

    let p = helpers::start_process("gridwork", &up, &env);
    let http = reqwest::Client::new();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let r = http.post(url(&p.base)).header("Idempotency-Key", "call-7781").form(&f).send().await.unwrap();
        let s = r.status().as_u16();
        let v: Value = r.json().await.unwrap();
        assert_eq!(s, 200, "{v}");
        ids.push(request_id(&v));
    }
    assert_eq!(ids[0], ids[1]);
    let reporter = helpers::token_from(dir.path(), "integration:hotline", Role::GridWorker, "371002");
    let mine: Value = http
        .get(format!("{}/v1/me/reports", p.base))
        .bearer_auth(&reporter)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let stored: Vec<&str> = mine["items"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(stored, [ids[0].as_str()], "the retries stored exactly the one request: {mine}");
    let r = http.get(format!("{}/open311/v2/requests/{}.json", p.base, ids[0])).send().await.unwrap();
    assert_eq!(r.status(), 200, "Open311 shows the request: {}", r.text().await.unwrap());
}

/// Every log line of this test process (each test is its own process under
/// nextest), spans with all their fields included.
fn captured_logs() -> std::sync::Arc<std::sync::Mutex<Vec<u8>>> {
    struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = buf.clone();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("debug,h2=info,hyper=info,hyper_util=info,reqwest=info"))
        .with_span_events(
            tracing_subscriber::fmt::format::FmtSpan::NEW | tracing_subscriber::fmt::format::FmtSpan::CLOSE,
        )
        .with_ansi(false)
        .with_writer(move || Sink(sink.clone()))
        .try_init()
        .expect("the test's log capture is the first subscriber (run the test in its own process: nextest)");
    buf
}

/// Access logs name the path and harmless parameters, never an `api_key`
/// (nor `token`, `access_token`) or search text from a query string.
#[actix_web::test]
async fn access_logs_never_carry_api_keys_or_search_text() {
    let logs = captured_logs();
    let dir = tempfile::tempdir().unwrap();
    let app = helpers::spawn(dir.path()).await;
    let key = key_for(&app, "hotline-12345", "integration:hotline").await;
    let (lat, lon) = app.demo.demo_point;
    let base = format!("{}/open311/v2", app.base);
    // The key in the URL: a post, a listing, a refusal.
    let (lat_s, lon_s) = (lat.to_string(), lon.to_string());
    let body = [
        ("service_code", "dispute.neighbourhood"),
        ("description", "噪音扰民"),
        ("lat", lat_s.as_str()),
        ("long", lon_s.as_str()),
    ];
    let r = app.http.post(format!("{base}/requests.json?api_key={key}")).form(&body).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let r = app.http.get(format!("{base}/requests.json?status=open&api_key={key}")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let forged = "gw311_forgedSECRETforgedSECRET";
    let r = app.http.get(format!("{base}/requests.json?API_KEY={forged}&api%5Fkey={forged}")).send().await.unwrap();
    assert_eq!(r.status(), 403);
    // Tokens and search text in other services' query strings.
    let token = app.dispatcher();
    let r = app
        .http
        .get(format!("{}/v1/cases?text=%E6%AC%A7%E9%98%B3%E6%98%8E%E8%BF%9C", app.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success() || r.status().is_client_error());
    let _ =
        app.http.get(format!("{}/v1/me/reports?access_token={token}&q=13912345678", app.base)).send().await.unwrap();
    app.shutdown().await;

    let text = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(text.contains("/open311/v2/requests.json"), "the access log is captured: {}", text.len());
    assert!(text.contains("status=open"), "harmless parameters stay in the log");
    let secret = key.trim_start_matches("gw311_");
    for (what, needle) in [
        ("the api_key", secret),
        ("a forged api_key", "forgedSECRET"),
        ("a bearer token in access_token", token.as_str()),
        ("search text", "%E6%AC%A7%E9%98%B3"),
        ("search text", "欧阳"),
        ("a phone number searched for", "13912345678"),
    ] {
        let line = text.lines().find(|l| l.contains(needle));
        assert!(line.is_none(), "{what} is in the log: {}", line.unwrap_or_default());
    }
}

/// XML cannot carry U+FFFE, U+FFFF or C0 controls, and non-characters have
/// no business in a document: Open311's XML answers replace them with
/// U+FFFD (JSON, which can carry them, keeps the text as stored).
#[actix_web::test]
async fn xml_answers_carry_no_character_xml_cannot() {
    fn unfit(c: char) -> bool {
        let n = c as u32;
        (n < 0x20 && !matches!(c, '\t' | '\n' | '\r')) || (0xFDD0..=0xFDEF).contains(&n) || (n & 0xFFFE) == 0xFFFE
    }
    let dir = tempfile::tempdir().unwrap();
    let app = helpers::spawn(dir.path()).await;
    let key = key_for(&app, "hotline-12345", "integration:hotline").await;
    let (lat, lon) = app.demo.demo_point;
    let (lat_s, lon_s) = (lat.to_string(), lon.to_string());
    let description = "噪音\u{FFFE}扰民\u{FFFF}，\u{FDD0}\u{FDEF}\u{1FFFE}\u{10FFFF}";
    let mut f = form(&key, "dispute.neighbourhood", &[("lat", &lat_s), ("long", &lon_s)]);
    f[2] = ("description", description);
    let (s, v) = post_json(&app, &f).await;
    assert_eq!(s, 200, "{v}");
    let id = request_id(&v);
    let (s, json_form) = get(&app, &format!("requests/{id}.json")).await;
    assert_eq!((s, json_form[0]["description"].as_str()), (200, Some(description)), "{json_form}");
    let r = app.http.get(format!("{}/open311/v2/requests/{id}.xml", app.base)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let xml = r.text().await.unwrap();
    let bad: Vec<String> = xml.chars().filter(|c| unfit(*c)).map(|c| format!("U+{:04X}", c as u32)).collect();
    assert!(bad.is_empty(), "the XML carries {bad:?}: {xml}");
    assert!(
        xml.contains("<description>噪音\u{FFFD}扰民\u{FFFD}，\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}</description>"),
        "{xml}"
    );
    // An error that echoes the caller's text, as XML.
    let mut bad_code = f.clone();
    bad_code[1] = ("service_code", "noise\u{FFFF}\u{1}");
    let (s, xml) = post(&app, "xml", &bad_code).await;
    assert_eq!(s, 400, "{xml}");
    let bad: Vec<String> = xml.chars().filter(|c| unfit(*c)).map(|c| format!("U+{:04X}", c as u32)).collect();
    assert!(bad.is_empty(), "the XML error carries {bad:?}: {xml}");
    app.shutdown().await;
}
