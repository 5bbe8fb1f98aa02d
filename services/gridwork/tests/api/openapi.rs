//! The OpenAPI description: generated from the code, served at
//! `/openapi.json` with a browsable UI at `/docs/`, and checked against the
//! running service by schemathesis (PyPI; installed by
//! `scripts/setup-test-deps.sh`): no server errors; every response's
//! status, content type, headers and body as the spec says; authentication
//! enforced where declared; undeclared methods 405; schema-valid requests
//! accepted and invalid ones refused; the spec's links followed
//! (`--checks all`, with [`CONFIG`]'s written exceptions).

use crate::helpers;
use std::collections::BTreeSet;

use serde_json::Value;

/// What JSON Schema cannot say, said to schemathesis (`--config-file`),
/// each with its reason; and who calls what (the tokens come from the
/// environment: `GW_ST_WORKER`, `GW_ST_DISPATCHER`, `GW_ST_ADMIN`).
const CONFIG: &str = r#"
# The grid worker's phone by default; the dispatcher's console for the
# queues, cases and their tasks and the live stream; an admin for the
# routing rules and the audit log.
headers = { Authorization = "Bearer ${GW_ST_WORKER}" }

[[operations]]
include-path-regex = "^/v1/(cases|centres)"
headers = { Authorization = "Bearer ${GW_ST_DISPATCHER}" }

[[operations]]
include-path-regex = "^/v1/(routing|audit)/"
headers = { Authorization = "Bearer ${GW_ST_ADMIN}" }

# Public KPIs cover whole, completed calendar months: `from` the first day
# of a month and `to` the last day of a month (the spec's patterns say
# that much), and also `to` before the current month, not before `from`,
# at most 3,700 days after it. Those depend on today's date and on both
# parameters together, which JSON Schema cannot state: a query the schema
# allows may be refused 400 `invalid_range` (documented on the operation).
[[operations]]
include-path = "/v1/public/kpis"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404"]

# A report may not have happened in the future (beyond the clock skew
# allowed): a comparison with the server's clock, which JSON Schema cannot
# state (400 `occurred_in_future`).
[[operations]]
include-name = "POST /v1/reports"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404"]

# A batch judges each report on its own: a report the schema refuses is an
# item with `result: invalid` and its error, and the batch is 200 (the
# phone's other reports are not held back by one bad one).
[[operations]]
include-name = "POST /v1/reports/batch"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404"]
checks.negative_data_rejection.expected-statuses = ["200", "400", "401", "403", "404", "406", "413", "415", "422"]

# A photo or video is one by its bytes (JPEG, PNG, HEIC, WebP, MP4,
# QuickTime, sniffed): any octet stream is schema-valid, most are 415.
[[operations]]
include-name = "POST /v1/media"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "415"]

# A cursor is opaque: only the server's own `next_cursor` is one (400
# `invalid_cursor` for any other string).
[[operations]]
include-name = "GET /v1/cases"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404"]

# Which actions a case allows depends on its state (409
# `illegal_transition`; the state machine of docs/architecture.md), and
# some on its kind (422: an extension for petitions only) or on other data
# (400 `unknown_centre`: a transfer's centre must exist in the case's
# county).
[[operations]]
include-name = "POST /v1/cases/{id}/{action}"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "409", "422"]

# A task is given on an open case only (409 `case_closed`) and to a grid
# worker of the case's grid (400 `unknown_assignee`); one done or
# cancelled is not worked again (409).
[[operations]]
include-name = "POST /v1/cases/{id}/tasks"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "409"]

[[operations]]
include-path-regex = "^/v1/(me/tasks|cases/[^/]+/tasks/[^/]+/cancel)"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "409"]

# A new routing table must be based on the latest version (409
# `stale_version`) and be usable (422 `invalid_routing`: a catch-all rule
# last, unique rule ids, a clock for every rule): rules across items.
[[operations]]
include-name = "PUT /v1/routing/rules"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "409", "422"]

# The working-day calendar counts within 1970–2199 (400 for an `at`
# outside it; JSON Schema has no range for a date-time).
[[operations]]
include-name = "POST /v1/routing/dry-run"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404"]

# A map's box must have west < east and south < north within the globe's
# ranges (400 `invalid_bbox`): a relation between its four numbers.
[[operations]]
include-name = "GET /v1/grids/shapes"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404"]

# Failed sign-ins are limited per name and address (429, ADR 0025).
[[operations]]
include-name = "POST /v1/auth/token"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "429"]
"#;

/// The tokens of [`CONFIG`].
struct Tokens {
    worker: String,
    dispatcher: String,
    admin: String,
}

/// Runs schemathesis with every check against `spec` (a URL or a file)
/// and the app at `base`; `config` is the `--config-file`.
async fn schemathesis(spec: &str, base: &str, tokens: &Tokens, config: &str, extra: &[&str]) -> (bool, String) {
    let seed = std::env::var("GW_SCHEMATHESIS_SEED").unwrap_or_else(|_| "20261122".into());
    let examples = std::env::var("GW_SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| "60".into());
    let mut args: Vec<String> = vec![
        "--config-file".into(),
        config.into(),
        "run".into(),
        spec.into(),
        "--url".into(),
        base.into(),
        "--checks".into(),
        // Every check: server errors, conformance of statuses, content
        // types, headers and bodies, authentication enforced, undeclared
        // methods 405, schema-valid requests accepted and invalid ones
        // refused (with CONFIG's written exceptions), links followed.
        std::env::var("GW_SCHEMATHESIS_CHECKS").unwrap_or_else(|_| "all".into()),
        // The live stream never ends while the token holds (tests/api/
        // queues.rs and pipeline.rs read it).
        "--exclude-path".into(),
        "/v1/centres/{code}/stream".into(),
        // Revoking the token every other request would leave only 401s to
        // test; revocation has its own tests (tests/api/auth.rs).
        "--exclude-path".into(),
        "/v1/auth/revoke".into(),
        "--max-examples".into(),
        examples,
        "--seed".into(),
        seed,
        "--no-color".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let out = tokio::process::Command::new("schemathesis")
        .args(&args)
        .env("GW_ST_WORKER", &tokens.worker)
        .env("GW_ST_DISPATCHER", &tokens.dispatcher)
        .env("GW_ST_ADMIN", &tokens.admin)
        .output()
        .await
        .expect("schemathesis runs (scripts/setup-test-deps.sh installs it from PyPI)");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn collect_refs(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => {
                        out.insert(r.clone());
                    }
                    _ => collect_refs(v, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

fn operations(spec: &Value) -> BTreeSet<String> {
    let mut ops = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            ops.insert(format!("{} {path}", method.to_uppercase()));
        }
    }
    ops
}

/// A case in the worker's grid with three tasks: one given to the grid and
/// cancelled, two given to the worker.
async fn seed_tasks(app: &helpers::TestApp, worker: &str) {
    let (lat, lon) = app.demo.demo_point;
    let rid = uuid::Uuid::new_v4().to_string();
    let (s, r) = app.post(worker, "/v1/reports", &helpers::report(&rid, lat, lon, "dispute.neighbourhood")).await;
    assert_eq!(s, 201, "{r}");
    let (w, d) = (worker.to_owned(), app.dispatcher());
    let case = app.case_of(&rid).await;
    let tasks = format!("/v1/cases/{}/tasks", case["id"].as_str().unwrap());
    let due = (chrono::Utc::now() + chrono::Duration::hours(24)).to_rfc3339();
    let mut ids = Vec::new();
    for (kind, assignee) in [("delivery", None), ("follow_up", Some("worker-1")), ("verification", Some("worker-1"))] {
        let mut body = serde_json::json!({"kind": kind, "instructions": "请到现场核实", "due_at": due});
        if let Some(a) = assignee {
            body["assignee"] = a.into();
        }
        let (s, t) = app.post(&d, &tasks, &body).await;
        assert_eq!(s, 201, "{t}");
        ids.push(t["id"].as_str().unwrap().to_owned());
    }
    let (s, t) = app.post(&d, &format!("{tasks}/{}/cancel", ids[0]), &serde_json::json!({"reason": "已和解"})).await;
    assert_eq!(s, 200, "{t}");
    let (s, mine) = app.get(worker, "/v1/me/tasks").await;
    assert_eq!((s, mine["items"].as_array().map(Vec::len)), (200, Some(3)), "{mine}");
    // PostgreSQL refuses a NUL byte in text: refused before it gets there
    // (schemathesis rarely reaches these with one, so they are tried here).
    let nul = [
        (&d, tasks.clone(), serde_json::json!({"kind": "delivery", "instructions": "x\0", "due_at": due})),
        (
            &d,
            tasks.clone(),
            serde_json::json!({"kind": "delivery", "instructions": "x", "due_at": due, "assignee": "w\0"}),
        ),
        (&d, format!("{tasks}/{}/cancel", ids[1]), serde_json::json!({"reason": "x\0"})),
        (&w, format!("/v1/me/tasks/{}/complete", ids[2]), serde_json::json!({"note": "x\0"})),
    ];
    for (who, path, body) in nul {
        let (s, e) = app.post(who, &path, &body).await;
        assert_eq!((s, e["code"].as_str()), (400, Some("invalid_characters")), "{path} {body}: {e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spec_describes_the_api_and_schemathesis_finds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // PostgreSQL and Redis: the production stores, stricter than SQLite
    // about what text they accept.
    let (mut cfg, _pg) = helpers::on_postgres_and_redis(dir.path()).await;
    cfg.intake.rate_limit_per_minute = 0;
    let app = helpers::spawn_with(cfg).await;

    let spec: Value = app.http.get(format!("{}/openapi.json", app.base)).send().await.unwrap().json().await.unwrap();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."), "{}", spec["openapi"]);
    let ops = operations(&spec);
    for op in [
        "POST /v1/reports",
        "POST /v1/reports/batch",
        "GET /v1/reports/{id}",
        "GET /v1/me/reports",
        "POST /v1/media",
        "GET /v1/media/{id}",
        "POST /v1/auth/token",
        "POST /v1/auth/revoke",
        "GET /.well-known/jwks.json",
        "GET /v1/me/cases",
        "GET /v1/me/tasks",
        "POST /v1/me/tasks/{id}/ack",
        "POST /v1/me/tasks/{id}/complete",
        "POST /v1/cases/{id}/tasks",
        "GET /v1/cases/{id}/tasks",
        "POST /v1/cases/{id}/tasks/{task}/cancel",
        "PATCH /v1/users/{id}",
        "GET /v1/kpis",
        "GET /v1/public/kpis",
        "GET /v1/ledgers/cases",
        "GET /v1/ledgers/kpis",
        "GET /v1/grids/locate",
        "GET /v1/grids/versions",
        "POST /v1/grids/versions",
        "GET /v1/grids/versions/{id}/geojson",
        "GET /health/live",
        "GET /health/ready",
        "GET /v1/cases",
        "GET /v1/cases/counts",
        "GET /v1/grids/shapes",
        "GET /v1/categories",
        "GET /v1/cases/{id}",
        "POST /v1/cases/{id}/{action}",
        "POST /v1/cases/{id}/parties",
        "GET /v1/centres/{code}/stream",
        "GET /v1/audit/pii-reads",
        "GET /v1/routing/rules",
        "PUT /v1/routing/rules",
        "GET /v1/routing/versions",
        "POST /v1/routing/dry-run",
    ] {
        assert!(ops.contains(op), "{op} missing from /openapi.json: {ops:?}");
    }
    assert_eq!(spec["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    // Every reference resolves (a type alias such as `Priority = u8` would
    // otherwise be a `$ref` to a schema nobody defined).
    let mut refs = BTreeSet::new();
    collect_refs(&spec, &mut refs);
    let dangling: Vec<&String> = refs.iter().filter(|r| spec.pointer(r.trim_start_matches('#')).is_none()).collect();
    assert!(dangling.is_empty(), "references to nothing: {dangling:?}");
    // The report's category is one of this deployment's categories.
    let listed: BTreeSet<String> = spec["components"]["schemas"]["ReportIn"]["properties"]["category"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    use sea_orm::EntityTrait;
    let taxonomy: BTreeSet<String> = gridwork_storage::entity::category::Entity::find()
        .all(&app.ctx.db)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.code)
        .collect();
    assert_eq!(listed, taxonomy);
    // Errors are described with their shape.
    let report_400 = &spec["paths"]["/v1/reports"]["post"]["responses"]["400"]["content"]["application/json"]["schema"];
    assert_eq!(report_400["$ref"], "#/components/schemas/ApiError");

    // The browsable UI.
    let ui = app.http.get(format!("{}/docs/", app.base)).send().await.unwrap();
    assert_eq!(ui.status(), 200);
    assert!(ui.text().await.unwrap().contains("swagger-ui"));
    let redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/docs", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(redirect.status(), 308);

    let token = app.worker();
    let tokens = Tokens { worker: token.clone(), dispatcher: app.dispatcher(), admin: app.admin() };
    // The phone's lists have something to show (so their bodies are checked
    // against the spec too), and schemathesis follows the spec's links from
    // the worker's tasks to acknowledging and completing them.
    seed_tasks(&app, &token).await;
    let config = dir.path().join("schemathesis.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let config = config.to_str().unwrap();
    let (ok, out) = schemathesis(&format!("{}/openapi.json", app.base), &app.base, &tokens, config, &[]).await;
    println!("{out}");
    assert!(ok, "schemathesis found problems:\n{out}");
    // It really exercised the API: every operation but revoke and the
    // stream, many cases.
    let tested = ops.len() - 2;
    assert!(out.contains(&format!("Tested: {tested}")), "want {tested} operations tested:\n{out}");
    let generated: u64 =
        out.lines().find_map(|l| l.trim().split_once(" generated,").and_then(|(n, _)| n.parse().ok())).unwrap_or(0);
    assert!(generated >= 200, "only {generated} cases generated:\n{out}");
    eprintln!("schemathesis: {tested} operations tested, {generated} cases generated, 0 failures");
    // …and stored what it sent: positive cases reached the database.
    let stored = app.get(&token, "/v1/me/reports?limit=200").await.1["items"].as_array().unwrap().len();
    assert!(stored > 0, "no generated report was accepted");

    // The control: the same run against a spec that lies (no 400 documented
    // for a report, and a field the view never has made required) fails, so
    // a pass above means the checks ran.
    let mut lying = spec.clone();
    lying["paths"]["/v1/reports"]["post"]["responses"].as_object_mut().unwrap().remove("400");
    lying["components"]["schemas"]["ReportView"]["required"].as_array_mut().unwrap().push("no_such_field".into());
    let file = dir.path().join("lying.json");
    std::fs::write(&file, serde_json::to_vec(&lying).unwrap()).unwrap();
    let (ok, out) = schemathesis(
        file.to_str().unwrap(),
        &app.base,
        &tokens,
        config,
        &["--include-path", "/v1/reports", "--phases", "examples,coverage,fuzzing"],
    )
    .await;
    assert!(!ok, "schemathesis passed a spec that does not match the service:\n{out}");
    assert!(out.contains("Undocumented status code") || out.contains("Response violates schema"), "{out}");

    app.shutdown().await;
}
