//! What a grid worker's phone needs beyond reporting: marking a small
//! matter resolved on the spot (就地化解) with its outcome and photo, and the
//! open cases of their own grid.

use crate::helpers;
use crate::helpers::{eventually, report};
use gridwork_domain::auth::Role;
use serde_json::{json, Value};
use uuid::Uuid;

#[actix_web::test]
async fn on_the_spot_resolution_and_the_grids_open_cases() {
    let dir = tempfile::tempdir().unwrap();
    let app = helpers::spawn(dir.path()).await;
    let worker = app.worker();
    let (lat, lon) = app.demo.demo_point;

    // A photo of the settled matter, then the report that says it is settled.
    let photo = [vec![0xFF, 0xD8, 0xFF, 0xE0], vec![42u8; 2048]].concat();
    let r = app.http.post(format!("{}/v1/media", app.base)).bearer_auth(&worker).body(photo).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let photo_id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let rid = Uuid::new_v4().to_string();
    let mut body = report(&rid, lat, lon, "dispute.neighbourhood");
    body["media"] = json!([photo_id]);
    body["resolved_on_spot"] = json!({"outcome": "mediated_agreement", "note": "双方当场和解，已签字"});
    let (s, v) = app.post(&worker, "/v1/reports", &body).await;
    assert_eq!(s, 201, "{v}");

    // The case is opened, resolved and closed in the worker's name at once.
    let seen = eventually("the report closed", || async {
        let (_, v) = app.get(&worker, &format!("/v1/reports/{rid}")).await;
        (v["status"] == "closed").then_some(v)
    })
    .await;
    let steps: Vec<&str> = seen["timeline"].as_array().unwrap().iter().map(|e| e["status"].as_str().unwrap()).collect();
    assert!(steps.ends_with(&["closed"]), "{steps:?}");
    assert_eq!(seen["media"][0]["available"], true);
    let d = app.dispatcher();
    let cid = seen["case_id"].as_str().unwrap().to_owned();
    let (_, case) = app.get(&d, &format!("/v1/cases/{cid}")).await;
    assert_eq!(
        (case["status"].as_str(), case["outcome"].as_str()),
        (Some("closed"), Some("mediated_agreement")),
        "{case}"
    );
    let actors: Vec<&str> = case["timeline"].as_array().unwrap().iter().filter_map(|e| e["actor"].as_str()).collect();
    assert!(actors.contains(&"worker-1"), "done in the worker's name: {actors:?}");
    // It counts as resolved on the spot.
    let today = gridwork_domain::kpi::china_day(chrono::Utc::now());
    let grid = app.demo.demo_grid.clone();
    let kpi = eventually("the KPI", || async {
        let (_, k) =
            app.get(&app.analyst(), &format!("/v1/kpis?jurisdiction={grid}&period=day&from={today}&to={today}")).await;
        let row = k["rows"].get(0)?.clone();
        (row["closed"] == 1).then_some(row)
    })
    .await;
    assert_eq!(kpi["on_the_spot_resolution"]["numerator"], 1);

    // Refused: an unknown outcome; a petition closed on the spot.
    let mut bad = report(&Uuid::new_v4().to_string(), lat, lon, "dispute.neighbourhood");
    bad["resolved_on_spot"] = json!({"outcome": "sorted"});
    let (s, e) = app.post(&worker, "/v1/reports", &bad).await;
    assert_eq!((s, e["field"].as_str()), (400, Some("resolved_on_spot.outcome")), "{e}");
    let mut petition = report(&Uuid::new_v4().to_string(), lat, lon, "petition.land_acquisition");
    petition["resolved_on_spot"] = json!({"outcome": "handled"});
    let (s, e) = app.post(&worker, "/v1/reports", &petition).await;
    assert_eq!((s, e["code"].as_str()), (400, Some("petition_not_on_spot")), "{e}");

    // The grid's open cases: an ordinary report's case is there, the
    // settled one is not; nobody's personal data.
    let open_rid = Uuid::new_v4().to_string();
    assert_eq!(app.post(&worker, "/v1/reports", &report(&open_rid, lat, lon, "order.public")).await.0, 201);
    let list = eventually("the grid's open case", || async {
        let (s, l) = app.get(&worker, "/v1/me/cases").await;
        assert_eq!(s, 200, "{l}");
        (l["items"].as_array()?.len() == 1).then_some(l)
    })
    .await;
    assert_ne!(list["items"][0]["id"], cid);
    assert!(!list.to_string().contains("张三") && !list.to_string().contains("13800000000"), "{list}");
    assert_eq!(app.get(&d, "/v1/me/cases").await.0, 403, "a dispatcher has queues instead");
    let elsewhere = app.token("worker-9", Role::GridWorker, "371082001001001");
    let (_, other) = app.get(&elsewhere, "/v1/me/cases").await;
    assert_eq!(other["items"], json!([]), "another grid sees none of it");
    app.shutdown().await;
}

/// A replay is its reporter's own: another grid worker sending the same
/// report id and body gets 409, never the first worker's report — through
/// the cache's fast path and the database's slow path alike, alone or in a
/// batch — while the reporter's own replays still get 200.
#[actix_web::test]
async fn another_worker_replaying_a_report_gets_409_on_the_fast_and_the_slow_path() {
    let dir = tempfile::tempdir().unwrap();
    let app = helpers::spawn(dir.path()).await;
    let (lat, lon) = app.demo.demo_point;
    let first = app.worker();
    let second = app.token("worker-2", Role::GridWorker, &app.demo.demo_grid);
    let rid = Uuid::new_v4().to_string();
    let mut body = report(&rid, lat, lon, "dispute.neighbourhood");
    body["description"] = json!("worker-1's own words about the dispute");
    assert_eq!(app.post(&first, "/v1/reports", &body).await.0, 201);

    // Fast path: the report's hash is in the cache.
    let (s, v) = app.post(&first, "/v1/reports", &body).await;
    assert_eq!((s, v["id"].as_str()), (200, Some(rid.as_str())), "the reporter's replay: {v}");
    let (s, e) = app.post(&second, "/v1/reports", &body).await;
    assert_eq!((s, e["code"].as_str()), (409, Some("report_id_conflict")), "fast path, another worker: {e}");
    assert!(!e.to_string().contains("own words"), "another worker's replay must not show the report: {e}");
    let (s, b) = app.post(&second, "/v1/reports/batch", &json!({"reports": [body.clone()]})).await;
    assert_eq!((s, b["results"][0]["status"].as_u64()), (200, Some(409)), "fast path in a batch: {b}");
    assert_eq!(b["accepted"], 0, "{b}");

    // Slow path: the cache forgot; the database decides.
    app.ctx.cache.del(&format!("intake:report:{rid}")).await.unwrap();
    let (s, e) = app.post(&second, "/v1/reports", &body).await;
    assert_eq!((s, e["code"].as_str()), (409, Some("report_id_conflict")), "slow path, another worker: {e}");
    let (s, b) = app.post(&second, "/v1/reports/batch", &json!({"reports": [body.clone()]})).await;
    assert_eq!((s, b["results"][0]["status"].as_u64()), (200, Some(409)), "slow path in a batch: {b}");
    let (s, v) = app.post(&first, "/v1/reports", &body).await;
    assert_eq!((s, v["reporter"].as_str()), (200, Some("worker-1")), "the reporter's replay, slow path: {v}");
    app.shutdown().await;
}

/// The demo's grids, from the admin API, as (code, geometry) areas.
async fn demo_grids(app: &helpers::TestApp) -> Vec<gridwork_geoindex::Area> {
    let admin = app.as_role(Role::Admin);
    let (_, versions) = app.get(&admin, "/v1/grids/versions").await;
    let id = versions["versions"][0]["id"].as_i64().unwrap();
    let r =
        app.http.get(format!("{}/v1/grids/versions/{id}/geojson", app.base)).bearer_auth(&admin).send().await.unwrap();
    let features = gridwork_geoindex::geojson_io::parse_grids(&r.text().await.unwrap()).unwrap();
    features.into_iter().map(|g| gridwork_geoindex::Area { code: g.code, geometry: g.geometry }).collect()
}

/// A point of `all` (searched on a lattice around `near`) for which `want`
/// holds, given where `all` and `street` (the demo street's grids, with the
/// 200 m tolerance) locate it.
fn find_point(
    all: &gridwork_geoindex::GridIndex,
    street: &gridwork_geoindex::GridIndex,
    near: (f64, f64),
    want: impl Fn(&gridwork_geoindex::Located, &gridwork_geoindex::Located) -> bool,
) -> (f64, f64) {
    for step in 1..400 {
        for k in 0..(8 * step) {
            let a = std::f64::consts::TAU * f64::from(k) / f64::from(8 * step);
            let (lat, lon) = (near.0 + 0.0005 * f64::from(step) * a.sin(), near.1 + 0.0006 * f64::from(step) * a.cos());
            if want(&all.locate(lon, lat), &street.locate(lon, lat)) {
                return (lat, lon);
            }
        }
    }
    panic!("no such point near {near:?}");
}

/// A grid worker's reports lie where their scope allows: by default the
/// street (乡镇/街道) above their grid, with the assigner's GPS tolerance at
/// its edge. A Huancui grid's worker placing a report in Rongcheng (another
/// county), or in another street of Huancui, is refused with its own code,
/// alone or in a batch; `received_by` must name a centre above the place.
#[actix_web::test]
async fn a_grid_workers_reports_lie_in_the_area_their_scope_allows() {
    use gridwork_geoindex::{GridIndex, Located};
    const RONGCHENG: (f64, f64) = (37.165, 122.486);
    let dir = tempfile::tempdir().unwrap();
    let app = helpers::spawn(dir.path()).await;
    let worker = app.worker();
    let (lat, lon) = app.demo.demo_point;
    let street_code = app.demo.demo_grid[..9].to_owned();
    let county = app.demo.demo_grid[..6].to_owned();
    assert_eq!(county, "371002", "the demo grid is in Huancui");
    let grids = demo_grids(&app).await;
    let street: Vec<_> = grids.iter().filter(|g| g.code.starts_with(&street_code)).cloned().collect();
    let (all, street) = (GridIndex::new(grids, vec![], 200.0).unwrap(), GridIndex::new(street, vec![], 200.0).unwrap());
    let other_street = |l: &Located| matches!(l, Located::Inside { grid } if grid.starts_with(&county) && !grid.starts_with(&street_code));
    // Inside another street's grid, farther than the tolerance from this street.
    let far = find_point(&all, &street, (lat, lon), |a, s| other_street(a) && matches!(s, Located::Unassigned { .. }));
    // Inside another street's grid, but within 200 m of this street.
    let edge =
        find_point(&all, &street, (lat, lon), |a, s| other_street(a) && matches!(s, Located::Approximate { .. }));

    let post = |at: (f64, f64), received_by: Option<&str>| {
        let mut b = report(&Uuid::new_v4().to_string(), at.0, at.1, "dispute.neighbourhood");
        if let Some(r) = received_by {
            b["received_by"] = json!(r);
        }
        b
    };
    for (what, at) in [("in Rongcheng, another county", RONGCHENG), ("in another street of Huancui", far)] {
        let (s, e) = app.post(&worker, "/v1/reports", &post(at, None)).await;
        assert_eq!(
            (s, e["code"].as_str(), e["field"].as_str()),
            (403, Some("outside_report_area"), Some("location")),
            "{what}: {e}"
        );
        assert!(e["message"].as_str().unwrap().contains(&street_code), "{what}: the message names the area: {e}");
    }
    // In the street, and just across its edge (GPS error): accepted.
    assert_eq!(app.post(&worker, "/v1/reports", &post((lat, lon), None)).await.0, 201);
    let (s, v) = app.post(&worker, "/v1/reports", &post(edge, None)).await;
    assert_eq!(s, 201, "within the tolerance of the street: {v}");
    // A batch: per-item refusals with the same code.
    let (s, b) = app
        .post(&worker, "/v1/reports/batch", &json!({"reports": [post((lat, lon), None), post(RONGCHENG, None)]}))
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!((b["results"][0]["status"].as_u64(), b["results"][1]["status"].as_u64()), (Some(200), Some(403)), "{b}");
    assert_eq!(b["results"][1]["error"]["code"], "outside_report_area", "{b}");
    // An admin reports anywhere.
    let admin = app.as_role(Role::Admin);
    assert_eq!(app.post(&admin, "/v1/reports", &post(RONGCHENG, None)).await.0, 201);

    // received_by: a centre above the place, never one elsewhere.
    for (centre, status) in
        [(county.as_str(), 201), (street_code.as_str(), 201), ("371000", 201), ("371082", 400), ("371002999", 400)]
    {
        let (s, e) = app.post(&worker, "/v1/reports", &post((lat, lon), Some(centre))).await;
        assert_eq!(s, status, "received_by {centre}: {e}");
        if status == 400 {
            assert_eq!(
                (e["code"].as_str(), e["field"].as_str()),
                (Some("received_by_not_above_place"), Some("received_by")),
                "{e}"
            );
        }
    }
    app.shutdown().await;
}
