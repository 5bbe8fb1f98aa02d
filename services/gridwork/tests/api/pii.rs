//! Parties' personal information (PIPL): sealed at rest, masked in the case
//! detail, shown in full only to a worker of the case who gives a reason,
//! and every such read audited.

use crate::helpers;
use crate::helpers::{eventually, report, TestApp};
use gridwork_domain::auth::{Actor, Role};
use gridwork_storage::entity::report as report_row;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Set};
use serde_json::{json, Value};
use uuid::Uuid;

const NAME: &str = "李四";
const PHONE: &str = "13900000000";
const ID_NUMBER: &str = "371002198001011234";
const MATTER: &str = "李四家宅基地边界纠纷";

async fn petition_case(app: &TestApp) -> (String, String) {
    let (lat, lon) = app.demo.demo_point;
    let rid = Uuid::new_v4().to_string();
    let mut body = report(&rid, lat, lon, "petition.land_acquisition");
    body["parties"] = json!([{"name": NAME, "phone": PHONE, "id_number": ID_NUMBER}]);
    body["matter"] = json!(MATTER);
    assert_eq!(app.post(&app.worker(), "/v1/reports", &body).await.0, 201);
    let d = app.dispatcher();
    let case = eventually("the petition's case", || async {
        let (_, l) = app.get(&d, "/v1/cases?channel=petition").await;
        l["items"].as_array()?.iter().find(|c| c["report_id"] == rid.as_str()).cloned()
    })
    .await;
    (rid, case["id"].as_str().unwrap().to_owned())
}

fn has_identity(v: &Value) -> bool {
    let s = v.to_string();
    s.contains(NAME) || s.contains(PHONE) || s.contains(ID_NUMBER)
}

#[actix_web::test]
async fn parties_are_sealed_masked_and_read_only_with_an_audited_reason() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = helpers::config(dir.path());
    let app = helpers::spawn_with(cfg.clone()).await;
    let (rid, cid) = petition_case(&app).await;

    // At rest: sealed, bound to the report.
    let row = report_row::Entity::find_by_id(rid.clone()).one(&app.ctx.db).await.unwrap().unwrap();
    assert!(row.parties.starts_with("gwpii1:k1:"), "{}", row.parties);
    assert!(!row.parties.contains(NAME) && !row.parties.contains(PHONE) && !row.parties.contains(ID_NUMBER));
    assert_eq!(row.party_count, 1);
    let matter = row.matter.clone().unwrap();
    assert!(matter.starts_with("gwpii1:k1:") && !matter.contains("宅基地"), "the matter is sealed too: {matter}");

    // The case detail shows them masked.
    let d = app.dispatcher();
    let (s, detail) = app.get(&d, &format!("/v1/cases/{cid}")).await;
    assert_eq!(s, 200);
    assert!(!has_identity(&detail), "{detail}");
    assert_eq!(
        detail["report"]["parties"],
        json!([{"name": "李*", "phone": "139****0000", "id_number": "371002********1234"}])
    );
    let path = format!("/v1/cases/{cid}/parties");

    // Only with a reason, only for workers of the case.
    let (s, e) = app.post(&d, &path, &json!({})).await;
    assert_eq!((s, e["code"].as_str(), e["field"].as_str()), (400, Some("missing_reason"), Some("reason")), "{e}");
    let mediator = |channel: &str| {
        let actor = Actor {
            id: format!("m-{channel}"),
            role: Role::Mediator,
            scope: app.demo.demo_centre.clone(),
            channel: Some(channel.into()),
        };
        app.ctx.issuer.issue(&actor).unwrap().0
    };
    let why = json!({"reason": "电话联系信访人告知受理"});
    for (who, token, want) in [
        ("grid worker", app.worker(), 403),
        ("analyst", app.analyst(), 403),
        ("dispatcher of another centre", app.token("d-9", Role::Dispatcher, "371082001"), 404),
        ("mediator of another channel", mediator("counselling"), 404),
    ] {
        let (s, v) = app.post(&token, &path, &why).await;
        assert_eq!(s, want, "{who}: {v}");
        assert!(!has_identity(&v), "{who}: {v}");
    }
    let (s, shown) = app.post(&d, &path, &why).await;
    assert_eq!(s, 200, "{shown}");
    assert_eq!(shown["reports"][0]["parties"][0]["name"], NAME);
    assert_eq!(shown["reports"][0]["parties"][0]["id_number"], ID_NUMBER);
    let (s, shown) = app.post(&mediator("petition"), &path, &json!({"reason": "约谈信访人"})).await;
    assert_eq!((s, shown["reports"][0]["parties"][0]["phone"].as_str()), (200, Some(PHONE)));

    // Every read is in the audit log: who, which case, when, why.
    assert_eq!(app.get(&d, "/v1/audit/pii-reads").await.0, 403);
    let admin = app.as_role(Role::Admin);
    let (_, log) = app.get(&admin, &format!("/v1/audit/pii-reads?case_id={cid}")).await;
    let items = log["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{log}");
    assert_eq!(
        (items[1]["actor"].as_str(), items[1]["reason"].as_str()),
        (Some("dispatcher-1"), Some("电话联系信访人告知受理"))
    );
    assert_eq!((items[0]["actor"].as_str(), items[0]["role"].as_str()), (Some("m-petition"), Some("mediator")));
    assert_eq!(items[0]["report_ids"], json!([rid]));
    assert!(!has_identity(&log));
    app.shutdown().await;

    // A report stored in plain text (before encryption at rest) is sealed
    // at the next start, and still reads back.
    let plain = serde_json::to_string(&json!([{"name": NAME, "phone": PHONE, "id_number": ID_NUMBER}])).unwrap();
    let db = gridwork_storage::connect(&cfg.database.url, 1).await.unwrap();
    report_row::Entity::update_many()
        .set(report_row::ActiveModel {
            parties: Set(plain),
            matter: Set(Some(MATTER.to_owned())),
            ..Default::default()
        })
        .filter(report_row::Column::Id.eq(rid.as_str()))
        .exec(&db)
        .await
        .unwrap();
    drop(db);
    let app = helpers::spawn_with(cfg.clone()).await;
    let row = report_row::Entity::find_by_id(rid.clone()).one(&app.ctx.db).await.unwrap().unwrap();
    assert!(row.parties.starts_with("gwpii1:") && !row.parties.contains(NAME));
    let (s, shown) = app.post(&app.dispatcher(), &path, &why).await;
    assert_eq!((s, shown["reports"][0]["parties"][0]["name"].as_str()), (200, Some(NAME)));
    assert!(row.matter.as_deref().is_some_and(|m| m.starts_with("gwpii1:")), "the legacy matter sealed too");
    assert_eq!(shown["reports"][0]["matter"], MATTER);
    app.shutdown().await;

    // Rotation: a new current key; re-wrapping moves stored data to it and
    // everything still reads.
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_gridwork"))
            .args(args)
            .args(["--data-dir", dir.path().to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(cli(&["pii", "rotate"]).trim(), "k2");
    let moved = cli(&["pii", "rewrap"]);
    assert!(moved.contains("re-wrapped to key k2"), "{moved}");
    let app = helpers::spawn_with(cfg).await;
    let row = report_row::Entity::find_by_id(rid.clone()).one(&app.ctx.db).await.unwrap().unwrap();
    assert!(row.parties.starts_with("gwpii1:k2:"), "{}", row.parties);
    assert!(row.matter.as_deref().is_some_and(|m| m.starts_with("gwpii1:k2:")), "{:?}", row.matter);
    let (s, shown) = app.post(&app.dispatcher(), &path, &why).await;
    assert_eq!((s, shown["reports"][0]["parties"][0]["phone"].as_str()), (200, Some(PHONE)));
    app.shutdown().await;
}

/// Runs `gridwork ARGS --data-dir DIR` with the failpoint `keyfile.write`
/// armed: it stops dead while a key file is being written. Returns the
/// stopped process once it got there.
fn stopped_writing_a_key(dir: &std::path::Path, hits: &std::path::Path, args: &[&str]) -> std::process::Child {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_gridwork"))
        .args(args)
        .args(["--data-dir", dir.to_str().unwrap()])
        .env("GW_FAILPOINT", "keyfile.write")
        .env("GW_FAILPOINT_DIR", hits)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let hit = hits.join("keyfile.write.hit");
    for _ in 0..300 {
        if hit.exists() {
            std::fs::remove_file(&hit).unwrap();
            return child;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("gridwork {args:?} ended ({status}) without writing a key file");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("gridwork {args:?} never reached the failpoint");
}

/// Every key file in `dir` (the signing key, the keyring, the petition
/// secret, and any file being written in their place) is private to its
/// owner: no group or other bits.
fn assert_private(dir: &std::path::Path, when: &str) {
    use std::os::unix::fs::PermissionsExt;
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() && entry.file_name().to_string_lossy().contains("key") {
            let mode = entry.metadata().unwrap().permissions().mode() & 0o777;
            assert_eq!(mode & 0o077, 0, "{when}: {} has mode {mode:o}", entry.path().display());
        }
    }
}

/// Issue 14, item 12: key files are private from their first byte, and a
/// crash in the middle of writing one (first start, or `gridwork pii
/// rotate`) never leaves sealed data unreadable.
#[actix_web::test]
async fn key_files_are_private_from_the_first_byte_and_survive_a_crash_mid_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let hits = tempfile::tempdir().unwrap();
    // First start of the embedded issuer, stopped while it writes its key:
    // nothing in the data directory is readable by others, even then.
    let mut child = stopped_writing_a_key(dir.path(), hits.path(), &["token", "--role", "admin"]);
    assert_private(dir.path(), "while the signing key is being created");
    child.kill().unwrap();
    child.wait().unwrap();

    // The crash left no half-written key behind: the app starts and seals.
    let cfg = helpers::config(dir.path());
    let app = helpers::spawn_with(cfg.clone()).await;
    assert_private(dir.path(), "after the first start");
    let (_, cid) = petition_case(&app).await;
    let path = format!("/v1/cases/{cid}/parties");
    let why = json!({"reason": "电话联系信访人告知受理"});
    let (s, shown) = app.post(&app.dispatcher(), &path, &why).await;
    assert_eq!((s, shown["reports"][0]["parties"][0]["name"].as_str()), (200, Some(NAME)), "{shown}");
    app.shutdown().await;

    // `gridwork pii rotate`, killed in the middle of writing the keyring.
    let mut child = stopped_writing_a_key(dir.path(), hits.path(), &["pii", "rotate"]);
    assert_private(dir.path(), "while the keyring is being rewritten");
    child.kill().unwrap();
    child.wait().unwrap();
    let keyring = std::fs::read_to_string(dir.path().join("pii-keyring.json")).unwrap();
    assert!(keyring.contains("\"k1\""), "the keyring still holds the key the data is sealed with: {keyring:?}");
    let app = helpers::spawn_with(cfg.clone()).await;
    let (s, shown) = app.post(&app.dispatcher(), &path, &why).await;
    assert_eq!((s, shown["reports"][0]["parties"][0]["name"].as_str()), (200, Some(NAME)), "{shown}");
    app.shutdown().await;

    // The rotation run again completes, and the data still reads.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gridwork"))
        .args(["pii", "rotate", "--data-dir", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "k2");
    assert_private(dir.path(), "after the rotation");
    let app = helpers::spawn_with(cfg).await;
    let (s, shown) = app.post(&app.dispatcher(), &path, &why).await;
    assert_eq!((s, shown["reports"][0]["parties"][0]["phone"].as_str()), (200, Some(PHONE)), "{shown}");
    app.shutdown().await;
}
