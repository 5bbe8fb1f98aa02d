//! Photos and videos: streamed to storage, typed by their bytes, limited in
//! size, stored once per content, linked to reports uploaded before or
//! after them, and shown only to those who may see them.

use crate::helpers;
use crate::helpers::{report, TestApp};
use gridwork_domain::auth::{Actor, Role};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

fn jpeg(seed: u8, len: usize) -> Vec<u8> {
    let mut b = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00, 0x01];
    b.extend((0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)));
    b
}

fn mp4(len: usize) -> Vec<u8> {
    let mut b = vec![0x00, 0x00, 0x00, 0x18, b'f', b't', b'y', b'p', b'i', b's', b'o', b'm'];
    b.extend(std::iter::repeat_n(7u8, len));
    b
}

async fn upload(app: &TestApp, token: &str, bytes: Vec<u8>) -> (u16, Value) {
    let r = app
        .http
        .post(format!("{}/v1/media", app.base))
        .bearer_auth(token)
        .header("content-type", "application/octet-stream")
        .body(bytes)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

#[actix_web::test]
async fn media_are_typed_limited_deduplicated_and_linked_either_way() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = helpers::config(dir.path());
    cfg.intake.max_image_bytes = 64 * 1024;
    cfg.intake.max_video_bytes = 256 * 1024;
    let app = helpers::spawn_with(cfg).await;
    let worker = app.worker();

    // A photo, then the same photo again: one object, the same id.
    let photo = jpeg(1, 40_000);
    let id = hex::encode(Sha256::digest(&photo));
    let (s, first) = upload(&app, &worker, photo.clone()).await;
    assert_eq!((s, first["id"].as_str(), first["content_type"].as_str()), (201, Some(id.as_str()), Some("image/jpeg")));
    assert_eq!(first["size"], photo.len());
    let (s, again) = upload(&app, &worker, photo.clone()).await;
    assert_eq!((s, again["id"].as_str()), (201, Some(id.as_str())), "de-duplicated by content, answered alike");
    let media_dir = dir.path().join("media");
    let stored: Vec<_> =
        helpers::walk(&media_dir).into_iter().filter(|p| !p.starts_with(media_dir.join("tmp"))).collect();
    assert_eq!(stored.len(), 1, "one object for one content: {stored:?}");

    // Types by their bytes; sizes per type.
    let (s, e) = upload(&app, &worker, b"GIF89a not a photo we take".to_vec()).await;
    assert_eq!((s, e["code"].as_str()), (415, Some("unsupported_media_type")));
    assert!(e["message_zh"].as_str().is_some_and(|m| m.contains("JPEG")));
    let (s, e) = upload(&app, &worker, jpeg(2, 70 * 1024)).await;
    assert_eq!((s, e["code"].as_str()), (413, Some("media_too_large")), "a 70 KiB photo over the 64 KiB limit");
    let (s, v) = upload(&app, &worker, mp4(100 * 1024)).await;
    assert_eq!((s, v["content_type"].as_str()), (201, Some("video/mp4")), "a video may be larger");
    let (s, e) = upload(&app, &worker, Vec::new()).await;
    assert_eq!((s, e["code"].as_str()), (400, Some("empty_body")), "an empty body is no photo");

    // Chunked, without Content-Length: cut off with 413 once the bytes pass
    // the limit, and nothing of it is kept.
    let objects_before = helpers::walk(&media_dir).len();
    let head = jpeg(4, 1024);
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        std::iter::once(Ok(head)).chain((0..80).map(|i| Ok(vec![i as u8; 1024]))).collect();
    let r = app
        .http
        .post(format!("{}/v1/media", app.base))
        .bearer_auth(&worker)
        .header("content-type", "application/octet-stream")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    let e: Value = r.json().await.unwrap();
    assert_eq!((s, e["code"].as_str()), (413, Some("media_too_large")), "81 KiB streamed over the 64 KiB limit");
    assert_eq!(helpers::walk(&media_dir).len(), objects_before, "the cut-off upload left nothing behind");
    let (s, _) = upload(&app, &app.analyst(), jpeg(3, 100)).await;
    assert_eq!(s, 403, "only grid workers upload");

    // A report names a photo uploaded before it and one not yet uploaded.
    let later = jpeg(9, 5_000);
    let later_id = hex::encode(Sha256::digest(&later));
    let (lat, lon) = app.demo.demo_point;
    let rid = Uuid::new_v4().to_string();
    let mut body = report(&rid, lat, lon, "dispute.neighbourhood");
    body["media"] = json!([id, later_id]);
    let (s, r) = app.post(&worker, "/v1/reports", &body).await;
    assert_eq!(s, 201, "{r}");
    assert_eq!((r["media"][0]["available"].as_bool(), r["media"][1]["available"].as_bool()), (Some(true), Some(false)));
    let (s, _) = upload(&app, &worker, later.clone()).await;
    assert_eq!(s, 201);
    let (_, r) = app.get(&worker, &format!("/v1/reports/{rid}")).await;
    assert_eq!(r["media"][1]["available"], true, "uploaded after the report: now shown");
    assert_eq!(r["media"][1]["content_type"], "image/jpeg");
    // A malformed id is refused with its field.
    let mut bad = report(&Uuid::new_v4().to_string(), lat, lon, "dispute.neighbourhood");
    bad["media"] = json!(["not-a-hash"]);
    let (s, e) = app.post(&worker, "/v1/reports", &bad).await;
    assert_eq!((s, e["field"].as_str(), e["code"].as_str()), (400, Some("media[0]"), Some("invalid_media_id")));

    // Who sees the file.
    let get = |token: String| {
        let (http, base, id) = (app.http.clone(), app.base.clone(), id.clone());
        async move {
            let r = http.get(format!("{base}/v1/media/{id}")).bearer_auth(token).send().await.unwrap();
            let s = r.status().as_u16();
            (s, r.bytes().await.unwrap().to_vec())
        }
    };
    let (s, bytes) = get(worker.clone()).await;
    assert_eq!((s, bytes == photo), (200, true), "the uploader gets the bytes back");
    assert_eq!(get(app.analyst()).await.0, 404);
    assert_eq!(get(app.token("worker-2", Role::GridWorker, &app.demo.demo_grid)).await.0, 404);
    app.shutdown().await;
}

fn mediator(app: &TestApp, id: &str, scope: &str, channel: &str) -> String {
    let actor = Actor { id: id.into(), role: Role::Mediator, scope: scope.into(), channel: Some(channel.into()) };
    app.ctx.issuer.issue(&actor).unwrap().0
}

async fn fetch(app: &TestApp, token: &str, id: &str) -> u16 {
    let r = app.http.get(format!("{}/v1/media/{id}", app.base)).bearer_auth(token).send().await.unwrap();
    r.status().as_u16()
}

/// Issue 14, item 1: a medium is seen by its uploaders, the reporter of a
/// report naming it, and those who may see a case naming it (its report's
/// or a task's) — scoped like the case; everyone else gets 404. Uploading
/// bytes someone else stored answers as for new bytes.
#[actix_web::test]
async fn media_are_scoped_like_the_cases_that_name_them() {
    let dir = tempfile::tempdir().unwrap();
    scoped_like_cases(helpers::spawn(dir.path()).await).await;
    let dir = tempfile::tempdir().unwrap();
    let (cfg, _pg) = helpers::on_postgres_and_redis(dir.path()).await;
    scoped_like_cases(helpers::spawn_with(cfg).await).await;
}

async fn scoped_like_cases(app: TestApp) {
    let worker = app.worker();
    let grid = app.demo.demo_grid.clone();
    let huancui = &grid[..6];
    assert_eq!(huancui, "371002", "the demo grid lies in Huancui");
    let rongcheng_dispatcher = app.token("rc-dispatcher", Role::Dispatcher, "371082001");

    // Huancui's grid worker reports with a photo; the case lands in the
    // demo centre's people's mediation queue.
    let photo = jpeg(21, 3_000);
    let pid = hex::encode(Sha256::digest(&photo));
    assert_eq!(upload(&app, &worker, photo.clone()).await.0, 201);
    let (lat, lon) = app.demo.demo_point;
    let rid = Uuid::new_v4().to_string();
    let mut body = report(&rid, lat, lon, "dispute.neighbourhood");
    body["media"] = json!([pid]);
    let (s, r) = app.post(&worker, "/v1/reports", &body).await;
    assert_eq!(s, 201, "{r}");
    let d = app.dispatcher();
    let case = helpers::eventually("the report's case", || async {
        let (_, l) = app.get(&d, "/v1/cases?limit=200").await;
        l["items"].as_array()?.iter().find(|c| c["report_id"] == rid.as_str()).cloned()
    })
    .await;
    let (centre, channel) = (case["centre"].as_str().unwrap().to_owned(), case["channel"].as_str().unwrap().to_owned());
    assert_eq!(channel, "people_mediation");
    // The case's detail lists the photo, arrived, where to fetch it; and
    // the queue's row says where the incident is, for the map.
    assert_eq!((case["lat"].as_f64(), case["lon"].as_f64()), (Some(lat), Some(lon)), "{case}");
    let (s, detail) = app.get(&d, &format!("/v1/cases/{}", case["id"].as_str().unwrap())).await;
    assert_eq!(s, 200, "{detail}");
    assert_eq!(
        detail["report"]["media"],
        json!([{"id": pid, "available": true, "content_type": "image/jpeg", "size": photo.len(), "url": format!("/v1/media/{pid}")}]),
        "{detail}"
    );

    let county = app.token("county-dispatcher-1", Role::Dispatcher, huancui);
    let admin = app.as_role(Role::Admin);
    for (who, token, status) in [
        ("the uploader", worker.clone(), 200),
        ("the case's centre's dispatcher", d.clone(), 200),
        ("the county's dispatcher", county.clone(), 200),
        ("a mediator of the case's channel", mediator(&app, "m-1", &centre, &channel), 200),
        ("an admin", admin.clone(), 200),
        ("a Rongcheng street's dispatcher", rongcheng_dispatcher.clone(), 404),
        ("a Rongcheng mediator", mediator(&app, "m-2", "371082001", &channel), 404),
        ("a mediator of another channel", mediator(&app, "m-3", &centre, "legal_aid"), 404),
        ("an analyst of the city", app.analyst(), 404),
        ("another grid worker of the grid", app.token("worker-2", Role::GridWorker, &grid), 404),
    ] {
        assert_eq!(fetch(&app, &token, &pid).await, status, "{who}");
    }

    // A photo no report or task names: its uploader only, even for the
    // dispatcher of the uploader's own centre.
    let loose = jpeg(22, 2_000);
    let loose_id = hex::encode(Sha256::digest(&loose));
    assert_eq!(upload(&app, &worker, loose.clone()).await.0, 201);
    assert_eq!(fetch(&app, &worker, &loose_id).await, 200);
    assert_eq!(fetch(&app, &d, &loose_id).await, 404, "named by nothing: not the dispatcher's");
    assert_eq!(fetch(&app, &rongcheng_dispatcher, &loose_id).await, 404);

    // Someone else uploads the same bytes: the same answer as for new bytes
    // (201 both times), and they may then see what they uploaded.
    let other = app.token("worker-3", Role::GridWorker, &grid);
    assert_eq!(fetch(&app, &other, &loose_id).await, 404);
    let (s, again) = upload(&app, &other, loose.clone()).await;
    assert_eq!((s, again["id"].as_str()), (201, Some(loose_id.as_str())), "no hint that the bytes were known");
    assert_eq!(fetch(&app, &other, &loose_id).await, 200, "an uploader sees what they uploaded");

    // A task's completion photo: seen by whoever may see the task's case.
    let due = (chrono::Utc::now() + chrono::Duration::hours(24)).to_rfc3339();
    let tasks = format!("/v1/cases/{}/tasks", case["id"].as_str().unwrap());
    let (s, t) = app
        .post(
            &d,
            &tasks,
            &json!({"kind": "verification", "instructions": "核实现场", "due_at": due, "assignee": "worker-1"}),
        )
        .await;
    assert_eq!(s, 201, "{t}");
    let done = jpeg(23, 2_500);
    let done_id = hex::encode(Sha256::digest(&done));
    assert_eq!(upload(&app, &worker, done).await.0, 201);
    assert_eq!(fetch(&app, &d, &done_id).await, 404, "not yet named by the task");
    let (s, t) = app
        .post(
            &worker,
            &format!("/v1/me/tasks/{}/complete", t["id"].as_str().unwrap()),
            &json!({"note": "已核实", "media": [done_id]}),
        )
        .await;
    assert_eq!(s, 200, "{t}");
    assert_eq!(fetch(&app, &d, &done_id).await, 200, "the case's dispatcher sees the task's photo");
    assert_eq!(fetch(&app, &county, &done_id).await, 200);
    assert_eq!(fetch(&app, &rongcheng_dispatcher, &done_id).await, 404, "out of scope");
    assert_eq!(fetch(&app, &mediator(&app, "m-3", &centre, "legal_aid"), &done_id).await, 404);
    // An id never uploaded, or not an id at all: 404 alike.
    assert_eq!(fetch(&app, &admin, &"0".repeat(64)).await, 404);
    assert_eq!(fetch(&app, &admin, "not-an-id").await, 404);
    app.shutdown().await;
}
