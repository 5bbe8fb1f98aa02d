//! The grid registry over HTTP and the CLI: versions that go live without a
//! restart while reports flow, imports that name every problem, exports
//! that give back what was imported.

use crate::helpers;
use std::time::Duration;

use crate::helpers::{eventually, report};
use chrono::{DateTime, Utc};
use gridwork_domain::auth::Role;
use gridwork_geoindex::geojson_io::{self, GridFeature};
use gridwork_geoindex::synth::{self, SynthParams};
use gridwork_geoindex::{Area, GridIndex, Located};
use serde_json::{json, Value};
use uuid::Uuid;

fn quick_versions(dir: &std::path::Path) -> gridwork_platform::Config {
    let mut cfg = helpers::config(dir);
    cfg.assigner.version_lead_ms = 1_500;
    cfg.assigner.refresh_ms = 200;
    // The demo grid's worker reports all over the county here.
    cfg.intake.report_area = gridwork_domain::auth::ReportArea::County;
    cfg
}

fn index_of(features: &[GridFeature]) -> GridIndex {
    let areas = features.iter().map(|g| Area { code: g.code.clone(), geometry: g.geometry.clone() }).collect();
    GridIndex::new(areas, vec![], 0.0).unwrap()
}

fn inside(idx: &GridIndex, lat: f64, lon: f64) -> Option<String> {
    match idx.locate(lon, lat) {
        Located::Inside { grid } => Some(grid),
        _ => None,
    }
}

/// County 371002 redrawn: a different Voronoi partition, so most points
/// change grid.
fn redrawn_371002() -> Vec<GridFeature> {
    let all = gridwork::grids::boundaries(None).unwrap();
    let county = gridwork::grids::select_counties(&all, "371002").unwrap();
    let params = SynthParams { grids_per_community: 5, communities_per_street: 4, seed: 777 };
    gridwork::grids::features(synth::partition_counties(&county, 150, params).unwrap())
}

async fn export(app: &helpers::TestApp, admin: &str, id: i64) -> Vec<GridFeature> {
    let r =
        app.http.get(format!("{}/v1/grids/versions/{id}/geojson", app.base)).bearer_auth(admin).send().await.unwrap();
    assert_eq!(r.status(), 200);
    geojson_io::parse_grids(&r.text().await.unwrap()).unwrap()
}

async fn import(app: &helpers::TestApp, admin: &str, query: &str, body: String) -> (u16, Value) {
    let r = app
        .http
        .post(format!("{}/v1/grids/versions?{query}", app.base))
        .bearer_auth(admin)
        .header("content-type", "application/geo+json")
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[actix_web::test]
async fn a_new_version_goes_live_without_restart_and_each_report_gets_the_grids_of_its_time() {
    let dir = tempfile::tempdir().unwrap();
    let app = helpers::spawn_with(quick_versions(dir.path())).await;
    let admin = app.as_role(Role::Admin);
    let worker = app.worker();

    // The demo's version and a redrawing of county 371002.
    let (s, versions) = app.get(&admin, "/v1/grids/versions").await;
    assert_eq!(s, 200, "{versions}");
    let first = versions["versions"][0]["id"].as_i64().unwrap();
    let old = index_of(&export(&app, &admin, first).await);
    let new_features = redrawn_371002();
    let new = index_of(&new_features);
    // Points of 环翠区 whose grid changes with the new version.
    let mut points = Vec::new();
    for k in 0..4000 {
        let (lat, lon) = (37.38 + (k / 80) as f64 * 0.0042, 121.95 + (k % 80) as f64 * 0.0047);
        if let (Some(a), Some(b)) = (inside(&old, lat, lon), inside(&new, lat, lon)) {
            if a != b && a.starts_with("371002") {
                points.push((lat, lon, a, b));
            }
        }
    }
    assert!(points.len() >= 10, "{} points change grid", points.len());
    points.truncate(10);

    // Too soon to be loaded everywhere: refused.
    let body = geojson_io::grids_to_geojson(&new_features);
    let soon = (Utc::now() + chrono::Duration::milliseconds(200)).to_rfc3339();
    let (s, e) = import(&app, &admin, &format!("valid_from={}", urlencode(&soon)), body.clone()).await;
    assert_eq!((s, e["code"].as_str()), (400, Some("valid_from_too_soon")), "{e}");

    // Reports flow while the new version is stored and goes live.
    let switch: DateTime<Utc> = Utc::now() + chrono::Duration::milliseconds(3_000);
    let sender = {
        let (http, base, worker, points) = (app.http.clone(), app.base.clone(), worker.clone(), points.clone());
        tokio::spawn(async move {
            let mut sent = Vec::new();
            let end = switch + chrono::Duration::milliseconds(2_500);
            let mut k = 0;
            while Utc::now() < end {
                let (lat, lon, _, _) = &points[k % points.len()];
                let id = Uuid::new_v4().to_string();
                let r = http
                    .post(format!("{base}/v1/reports"))
                    .bearer_auth(&worker)
                    .json(&report(&id, *lat, *lon, "dispute.neighbourhood"))
                    .send()
                    .await
                    .unwrap();
                assert!(r.status().is_success(), "{}", r.status());
                let body: Value = r.json().await.unwrap();
                let at: DateTime<Utc> =
                    body["occurred_at"].as_str().map(|t| t.parse().unwrap()).unwrap_or_else(Utc::now);
                sent.push((id, at, k % points.len()));
                k += 1;
                tokio::time::sleep(Duration::from_millis(60)).await;
            }
            sent
        })
    };
    let (s, v) =
        import(&app, &admin, &format!("valid_from={}&label=redraw", urlencode(&switch.to_rfc3339())), body).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["counties"], json!(["371002"]));
    let second = v["version"].as_i64().unwrap();
    let mut sent = sender.await.unwrap();

    // A phone that was offline: the report occurred before the switch and
    // arrives after it.
    let late = Uuid::new_v4().to_string();
    let mut body = report(&late, points[0].0, points[0].1, "dispute.neighbourhood");
    let before = switch - chrono::Duration::seconds(60);
    body["occurred_at"] = json!(before.to_rfc3339());
    let (s, _) = app.post(&worker, "/v1/reports", &body).await;
    assert_eq!(s, 201);
    sent.push((late.clone(), before, 0));

    let (mut early, mut later) = (0, 0);
    for (id, at, p) in &sent {
        // Too close to the switch to say which side the clocks put it on.
        if (*at - switch).num_milliseconds().abs() < 100 {
            continue;
        }
        let expected = if *at < switch { &points[*p].2 } else { &points[*p].3 };
        let got: Value = eventually("the report is assigned", || async {
            let (_, r) = app.get(&worker, &format!("/v1/reports/{id}")).await;
            r["grid"].is_string().then_some(r)
        })
        .await;
        assert_eq!(got["grid"].as_str(), Some(expected.as_str()), "report {id} occurred at {at}, switch at {switch}");
        // Assigned exactly once.
        let assigned = got["timeline"].as_array().map(|t| {
            t.iter().filter(|e| e["note"].as_str().is_some_and(|n| n.starts_with("assigned to grid"))).count()
        });
        assert_eq!(assigned, Some(1), "{got}");
        if *at < switch {
            early += 1;
        } else {
            later += 1;
        }
    }
    assert!(early >= 5 && later >= 5, "reports before the switch: {early}, after: {later}");

    // The locate endpoint answers as of any time.
    let (lat, lon, a, b) = &points[1];
    for (at, want) in [(switch - chrono::Duration::milliseconds(1), a), (switch, b)] {
        let path = format!("/v1/grids/locate?lat={lat}&lon={lon}&at={}", urlencode(&at.to_rfc3339()));
        let (s, g) = app.get(&worker, &path).await;
        assert_eq!((s, g["grid"].as_str()), (200, Some(want.as_str())), "{g}");
    }
    // Other counties keep their grids; the list says which version each county uses.
    let (_, versions) = app.get(&admin, "/v1/grids/versions").await;
    assert_eq!(versions["active"]["371002"], json!(second), "{versions}");
    assert_eq!(versions["active"]["371003"], json!(first), "{versions}");
    // Export gives back exactly what was imported.
    let mut exported = export(&app, &admin, second).await;
    let mut imported = new_features.clone();
    exported.sort_by(|x, y| x.code.cmp(&y.code));
    imported.sort_by(|x, y| x.code.cmp(&y.code));
    assert_eq!(exported.len(), imported.len());
    for (e, i) in exported.iter().zip(&imported) {
        assert_eq!(e, i, "grid {} differs after export", i.code);
    }
    app.shutdown().await;
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

fn square(code: &str, x: f64, y: f64, size: f64) -> Value {
    json!({"type": "Feature", "properties": {"code": code, "name": format!("网格{code}"), "community": &code[..12]},
        "geometry": {"type": "Polygon", "coordinates": [[[x, y], [x + size, y], [x + size, y + size], [x, y + size], [x, y]]]}})
}

#[actix_web::test]
async fn an_import_names_every_problem_and_stores_nothing_until_it_is_clean() {
    let dir = tempfile::tempdir().unwrap();
    let app = helpers::spawn_with(quick_versions(dir.path())).await;
    let admin = app.as_role(Role::Admin);
    let bad = json!({"type": "FeatureCollection", "features": [
        // Two overlapping grids in 环翠区.
        square("371002001001001", 122.10, 37.50, 0.01),
        square("371002001001002", 122.105, 37.50, 0.01),
        // A bow-tie.
        {"type": "Feature", "properties": {"code": "371002001001003", "name": "x", "community": "371002001001"},
         "geometry": {"type": "Polygon", "coordinates": [[[122.12, 37.50], [122.13, 37.51], [122.13, 37.50], [122.12, 37.51], [122.12, 37.50]]]}},
        // Far outside its county (in Jinan's longitude).
        square("371002001001004", 117.0, 36.6, 0.01),
        // A county gridwork does not know.
        square("990101001001001", 122.10, 37.60, 0.01),
    ]});
    let (s, e) = import(&app, &admin, "", bad.to_string()).await;
    assert_eq!((s, e["code"].as_str()), (422, Some("invalid_grids")), "{e}");
    let details: Vec<&str> = e["details"].as_array().unwrap().iter().map(|d| d.as_str().unwrap()).collect();
    let has = |needle: &str| details.iter().any(|d| d.contains(needle));
    assert!(has("371002001001001") && has("overlap"), "{details:?}");
    assert!(has("371002001001003") && has("invalid geometry"), "{details:?}");
    assert!(has("371002001001004") && has("outside its county"), "{details:?}");
    assert!(has("990101"), "{details:?}");

    // Malformed GeoJSON: every bad feature named.
    let (s, e) = import(
        &app,
        &admin,
        "",
        r#"{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, "geometry": null}]}"#
            .into(),
    )
    .await;
    assert_eq!((s, e["code"].as_str()), (400, Some("invalid_geojson")), "{e}");
    assert!(e["details"][0].as_str().unwrap().contains("feature 0"), "{e}");

    // Only admins administer grids.
    let (s, _) = import(&app, &app.dispatcher(), "", bad.to_string()).await;
    assert_eq!(s, 403);
    let (s, _) = app.get(&app.worker(), "/v1/grids/versions").await;
    assert_eq!(s, 403);

    // A dry run of a clean file stores nothing; nothing above was stored either.
    let good = json!({"type": "FeatureCollection", "features": [square("371002001001001", 122.10, 37.50, 0.01)]});
    let (s, v) = import(&app, &admin, "dry_run=true", good.to_string()).await;
    assert_eq!((s, v["dry_run"].as_bool()), (200, Some(true)), "{v}");
    assert!(v["warnings"][0].as_str().unwrap().contains("not covered"), "a coverage gap is a warning: {v}");
    let (_, versions) = app.get(&admin, "/v1/grids/versions").await;
    assert_eq!(versions["versions"].as_array().unwrap().len(), 1, "{versions}");
    let (s, _) = app.get(&admin, "/v1/grids/versions/99/geojson").await;
    assert_eq!(s, 404);
    app.shutdown().await;
}

/// The operator's path: synthesise, validate, import, list, export, with
/// the `gridwork` binary.
#[test]
fn the_cli_synthesises_validates_imports_and_exports_grids() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = dir.path().join("weihai.geojson");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(helpers::binary("gridwork"))
            .args(args)
            .env("GRIDWORK_DATA_DIR", &data)
            .env("GRIDWORK_ASSIGNER__VERSION_LEAD_MS", "1000")
            .env("GRIDWORK_ASSIGNER__REFRESH_MS", "200")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, _, err) = run(&["grids", "synth", "--area", "3710", "--grids", "3000", "--out", file.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(err.contains("3000 grids"), "{err}");
    let (ok, out, err) = run(&["grids", "validate", file.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("3000 grids in 4 counties: 0 errors"), "{out}");
    let (ok, out, err) = run(&["grids", "import", file.to_str().unwrap(), "--label", "weihai 3000"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("version 1: 3000 grids in 4 counties"), "{out}");
    assert!(err.contains("stored 3000/3000 grids"), "progress is shown: {err}");
    let (ok, out, _) = run(&["grids", "versions"]);
    assert!(ok && out.contains("weihai 3000"), "{out}");
    let exported = dir.path().join("out.geojson");
    let (ok, out, err) = run(&["grids", "export", "--out", exported.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    let a = geojson_io::parse_grids(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let mut b = geojson_io::parse_grids(&std::fs::read_to_string(&exported).unwrap()).unwrap();
    b.sort_by(|x, y| x.code.cmp(&y.code));
    let mut a = a;
    a.sort_by(|x, y| x.code.cmp(&y.code));
    assert_eq!(a, b);
    // A broken file: exit code 1 and the problem named.
    std::fs::write(&file, r#"{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"code": "1"}, "geometry": null}]}"#).unwrap();
    let (ok, out, _) = run(&["grids", "validate", file.to_str().unwrap()]);
    assert!(!ok && out.contains("feature 0"), "{out}");
}

/// Sends only the head of a POST that announces a `length`-byte body and
/// waits up to 5 s for an answer: `Some((status, body))` when the server
/// answered without the body (it never gets a byte of it), `None` when it
/// is still waiting for the body.
async fn answer_before_body(
    app: &helpers::TestApp,
    path: &str,
    token: &str,
    ctype: &str,
    length: u64,
) -> Option<(u16, Value)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: {ctype}\r\nContent-Length: {length}\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 8192];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let status: u16 = head.split_whitespace().nth(1)?.parse().ok()?;
            let len: usize = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
                .unwrap_or(0);
            if body.len() >= len {
                return Some((status, serde_json::from_str(body).unwrap_or(Value::Null)));
            }
        }
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
            _ => return None,
        }
    }
}

/// Bodies are read only after the caller is authorised: a grid worker's (or
/// a dispatcher's) token gets its 403 while a grid import's 100 MiB, a
/// report's or a medium's body is still unsent, so nothing is buffered for
/// a caller who may not send it. Admins keep the import's large limit.
#[actix_web::test]
async fn bodies_are_read_only_after_the_caller_is_authorised() {
    let dir = tempfile::tempdir().unwrap();
    let app = helpers::spawn(dir.path()).await;
    let (worker, dispatcher, admin) = (app.worker(), app.dispatcher(), app.as_role(Role::Admin));
    let cases = [
        ("/v1/grids/versions", &worker, "application/geo+json", 100u64 << 20, "a grid worker's grid import"),
        ("/v1/grids/versions", &dispatcher, "application/geo+json", 100 << 20, "a dispatcher's grid import"),
        ("/v1/reports", &dispatcher, "application/json", 200 << 10, "a dispatcher's report"),
        ("/v1/reports/batch", &dispatcher, "application/json", 200 << 10, "a dispatcher's batch"),
        ("/v1/media", &dispatcher, "application/octet-stream", 40 << 20, "a dispatcher's upload"),
    ];
    for (path, token, ctype, length, what) in cases {
        let started = std::time::Instant::now();
        let answer = answer_before_body(&app, path, token, ctype, length).await;
        let Some((status, e)) = answer else {
            panic!("{what}: no answer within 5 s while the body was unsent: the server waits for the body before authorising");
        };
        assert_eq!((status, e["code"].as_str()), (403, Some("forbidden")), "{what}: {e}");
        assert!(started.elapsed() < Duration::from_secs(5), "{what}");
    }
    // Without a valid token at all: 401, at once.
    let (s, e) = answer_before_body(&app, "/v1/grids/versions", "not-a-token", "application/geo+json", 100 << 20)
        .await
        .expect("a bad token is refused before the body");
    assert_eq!(s, 401, "{e}");
    // An admin's import may be large, but not over the limit: refused from
    // its Content-Length, in the shared error shape, before a byte is read.
    let (s, e) = answer_before_body(&app, "/v1/grids/versions", &admin, "application/geo+json", 600 << 20)
        .await
        .expect("an oversized import is refused from its Content-Length");
    assert_eq!((s, e["code"].as_str()), (413, Some("payload_too_large")), "{e}");
    // And an admin's import within the limit waits for its body.
    assert!(
        answer_before_body(&app, "/v1/grids/versions", &admin, "application/geo+json", 100 << 20).await.is_none(),
        "an admin's import is read"
    );
    app.shutdown().await;
}

/// The console's map: the grids of a view, of the caller's scope only,
/// simplified for the zoom; a bad box is 400.
#[actix_web::test]
async fn a_map_view_gets_the_grids_of_its_box_and_scope() {
    let dir = tempfile::tempdir().unwrap();
    let app = helpers::spawn(dir.path()).await;
    let (lat, lon) = app.demo.demo_point;
    let bbox = format!("{},{},{},{}", lon - 0.02, lat - 0.02, lon + 0.02, lat + 0.02);
    let grid = "371002003003004";
    let shapes = |token: String, zoom: u8| {
        let url = format!("{}/v1/grids/shapes?bbox={bbox}&zoom={zoom}", app.base);
        let http = app.http.clone();
        async move {
            let r = http.get(url).bearer_auth(token).send().await.unwrap();
            assert_eq!(r.status(), 200);
            assert_eq!(r.headers()["content-type"], "application/geo+json");
            r.json::<Value>().await.unwrap()
        }
    };
    let fine = shapes(app.dispatcher(), 18).await;
    assert_eq!((fine["type"].as_str(), fine["truncated"].as_bool()), (Some("FeatureCollection"), Some(false)));
    let features = fine["features"].as_array().unwrap();
    let demo = features.iter().find(|f| f["id"] == grid).unwrap_or_else(|| panic!("{grid} not in view: {fine}"));
    assert_eq!(demo["properties"]["centre"], app.demo.demo_centre.as_str());
    assert_eq!(demo["geometry"]["type"], "MultiPolygon");
    // Only the caller's scope: the dispatcher's centre's grids.
    assert!(features.iter().all(|f| f["id"].as_str().unwrap().starts_with(&app.demo.demo_centre)), "{fine}");
    let points = |v: &Value| -> usize {
        v["features"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|f| f["geometry"]["coordinates"].as_array().unwrap())
            .map(|p| p[0].as_array().unwrap().len())
            .sum()
    };
    // A county dispatcher sees more grids; at a low zoom with fewer points.
    let county = app.token("county-1", Role::Dispatcher, "371002");
    let wide = shapes(county.clone(), 18).await;
    assert!(wide["features"].as_array().unwrap().len() >= features.len());
    let coarse = shapes(county, 8).await;
    assert_eq!(coarse["features"].as_array().unwrap().len(), wide["features"].as_array().unwrap().len());
    assert!(points(&coarse) < points(&wide), "simplified at zoom 8: {} vs {}", points(&coarse), points(&wide));
    let elsewhere = app.token("d-x", Role::Dispatcher, "371082001");
    assert_eq!(shapes(elsewhere, 18).await["features"], json!([]));

    let (s, e) = app.get(&app.dispatcher(), "/v1/grids/shapes?bbox=1,2,3").await;
    assert_eq!((s, e["code"].as_str()), (400, Some("invalid_bbox")), "{e}");
    app.shutdown().await;
}

/// The taxonomy, named in both languages, to anyone signed in: the
/// console shows 邻里纠纷, not `dispute.neighbourhood`.
#[actix_web::test]
async fn the_taxonomy_names_every_category() {
    let dir = tempfile::tempdir().unwrap();
    let app = helpers::spawn(dir.path()).await;
    let seeded: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/categories.json")).unwrap(),
    )
    .unwrap();
    for token in [app.worker(), app.dispatcher(), app.analyst()] {
        let (s, body) = app.get(&token, "/v1/categories").await;
        assert_eq!(s, 200, "{body}");
        let items = body["items"].as_array().unwrap();
        assert_eq!(items.len(), seeded["categories"].as_array().unwrap().len(), "{body}");
        let codes: Vec<&str> = items.iter().map(|c| c["code"].as_str().unwrap()).collect();
        assert!(codes.windows(2).all(|w| w[0] < w[1]), "by code: {codes:?}");
        let n = items.iter().find(|c| c["code"] == "dispute.neighbourhood").unwrap();
        assert_eq!((n["name_zh"].as_str(), n["petition"].as_bool()), (Some("邻里纠纷"), Some(false)), "{n}");
        assert!(items.iter().any(|c| c["petition"] == true), "petitions are marked: {body}");
    }
    let r = app.http.get(format!("{}/v1/categories", app.base)).send().await.unwrap();
    assert_eq!(r.status(), 401);
    app.shutdown().await;
}
