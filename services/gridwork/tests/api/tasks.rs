//! Tasks for grid workers (ADR 0021), over HTTP against the real all-in-one
//! app: a dispatcher gives a case's grid a 核查 task, the grid worker's phone
//! lists, acknowledges and completes it with a note and a photo, the case
//! worker reads the result; who may complete, every validation refusal,
//! cancelling, and what a closed case does to its open tasks.

use crate::helpers;
use crate::helpers::{report, TestApp};
use gridwork_domain::auth::{Actor, Role};
use gridwork_storage::entity::user;
use gridwork_storage::sea_orm::{ActiveModelTrait, IntoActiveModel};
use serde_json::{json, Value};
use uuid::Uuid;

on_both_backends!(grid_worker_tasks_from_assignment_to_result, flow);

/// Posts a report and waits for the case it opens (as the dispatcher sees it).
async fn open_case(app: &TestApp) -> String {
    open_case_of(app, "dispute.neighbourhood").await
}

/// The same, of a category: reports of one category at one spot would be
/// linked to one case.
async fn open_case_of(app: &TestApp, category: &str) -> String {
    let (lat, lon) = app.demo.demo_point;
    let case = app.submit_and_wait_for_case(&report(&Uuid::new_v4().to_string(), lat, lon, category)).await;
    case["id"].as_str().unwrap().to_owned()
}

async fn add_grid_worker(app: &TestApp, id: &str, scope: &str) {
    user::Model {
        id: id.into(),
        username: id.into(),
        password_hash: "-".into(),
        role: "grid_worker".into(),
        scope: scope.into(),
        display_name: id.into(),
        channel: None,
        deactivated_at: None,
    }
    .into_active_model()
    .reset_all()
    .insert(&app.ctx.db)
    .await
    .unwrap();
}

fn in_hours(h: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::hours(h)).to_rfc3339()
}

fn error(v: &Value) -> (Option<&str>, Option<&str>) {
    (v["code"].as_str(), v["field"].as_str())
}

async fn flow(app: &TestApp) {
    let grid = app.demo.demo_grid.clone();
    // The next grid of the same community: another grid's worker.
    let other_grid = format!("{}{}", &grid[..12], if grid.ends_with("999") { "998" } else { "999" });
    add_grid_worker(app, "worker-3", &grid).await;
    add_grid_worker(app, "worker-elsewhere", &other_grid).await;
    let d = app.dispatcher();
    let w1 = app.worker();
    let w3 = app.token("worker-3", Role::GridWorker, &grid);
    let elsewhere = app.token("worker-elsewhere", Role::GridWorker, &other_grid);
    let case = open_case(app).await;
    let tasks_url = format!("/v1/cases/{case}/tasks");

    // The dispatcher gives the case's grid a 核查 task.
    let verify = json!({"kind": "verification", "instructions": "请到现场核实噪音情况并拍照", "due_at": in_hours(24)});
    let (s, t) = app.post(&d, &tasks_url, &verify).await;
    assert_eq!(s, 201, "{t}");
    assert_eq!(
        (t["kind_zh"].as_str(), t["status"].as_str(), &t["assignee"], t["grid"].as_str()),
        (Some("核查"), Some("assigned"), &Value::Null, Some(grid.as_str())),
        "{t}"
    );
    let verify_id = t["id"].as_str().unwrap().to_owned();
    // And a 送达 task to one named grid worker.
    let deliver =
        json!({"kind": "delivery", "instructions": "送达调解通知书", "due_at": in_hours(48), "assignee": "worker-1"});
    let (s, t) = app.post(&d, &tasks_url, &deliver).await;
    assert_eq!((s, t["assignee"].as_str()), (201, Some("worker-1")), "{t}");
    let deliver_id = t["id"].as_str().unwrap().to_owned();

    // Validation: a stable code and the field at fault for each.
    let base = json!({"kind": "verification", "instructions": "x", "due_at": in_hours(1)});
    for (change, code, field) in [
        (json!({"kind": "inspection"}), "invalid_field", "kind"),
        (json!({"kind": null}), "missing_field", "kind"),
        (json!({"due_at": in_hours(-1)}), "due_in_past", "due_at"),
        (json!({"due_at": "tomorrow"}), "invalid_field", "due_at"),
        (json!({"due_at": null}), "missing_field", "due_at"),
        (json!({"instructions": "   "}), "missing_field", "instructions"),
        (json!({"colour": "red"}), "unknown_field", "colour"),
        (json!({"assignee": "dispatcher-1"}), "unknown_assignee", "assignee"),
        (json!({"assignee": "nobody"}), "unknown_assignee", "assignee"),
        (json!({"assignee": "worker-elsewhere"}), "assignee_outside_grid", "assignee"),
    ] {
        let mut body = base.clone();
        for (k, v) in change.as_object().unwrap() {
            if v.is_null() {
                body.as_object_mut().unwrap().remove(k);
            } else {
                body[k] = v.clone();
            }
        }
        let (s, e) = app.post(&d, &tasks_url, &body).await;
        assert_eq!((s, error(&e)), (400, (Some(code), Some(field))), "{body} → {e}");
        assert!(!e["message"].as_str().unwrap().is_empty() && !e["message_zh"].as_str().unwrap().is_empty(), "{e}");
    }
    // Only those who work the case give it tasks.
    assert_eq!(app.post(&w1, &tasks_url, &verify).await.0, 403, "a grid worker gives no tasks");
    let legal_aid = app
        .ctx
        .issuer
        .issue(&Actor {
            id: "m-legal".into(),
            role: Role::Mediator,
            scope: app.demo.demo_centre.clone(),
            channel: Some("legal_aid".into()),
        })
        .unwrap()
        .0;
    assert_eq!(app.post(&legal_aid, &tasks_url, &verify).await.0, 404, "another channel does not see the case");

    // The worker's phone: both tasks, newest first, nobody's personal data.
    let (s, mine) = app.get(&w1, "/v1/me/tasks").await;
    assert_eq!(s, 200, "{mine}");
    let ids: Vec<&str> = mine["items"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [deliver_id.as_str(), verify_id.as_str()], "{mine}");
    let first = &mine["items"][1];
    assert_eq!(
        (first["case"]["id"].as_str(), first["case"]["category"].as_str(), first["instructions"].as_str()),
        (Some(case.as_str()), Some("dispute.neighbourhood"), Some("请到现场核实噪音情况并拍照"))
    );
    let text = mine.to_string();
    assert!(!text.contains("张三") && !text.contains("13800000000"), "{mine}");
    // A fellow worker of the grid sees the grid's task, not worker-1's own;
    // another grid's worker sees none; case workers have the case instead.
    let (_, theirs) = app.get(&w3, "/v1/me/tasks").await;
    let ids: Vec<&str> = theirs["items"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [verify_id.as_str()], "{theirs}");
    assert_eq!(app.get(&elsewhere, "/v1/me/tasks").await.1["items"], json!([]));
    let (s, e) = app.get(&d, "/v1/me/tasks").await;
    assert_eq!((s, e["code"].as_str()), (403, Some("forbidden")), "{e}");

    // worker-1 acknowledges the grid's task and so takes it; then no one
    // else completes it.
    let (s, t) = app.post(&w1, &format!("/v1/me/tasks/{verify_id}/ack"), &json!({})).await;
    assert_eq!((s, t["status"].as_str(), t["assignee"].as_str()), (200, Some("acknowledged"), Some("worker-1")), "{t}");
    let done = json!({"note": "已到现场核实，噪音属实，已劝导", "media": []});
    // Another worker's task is out of view: 404 as for a task that does
    // not exist (ADR 0033); a case worker is no grid worker: 403.
    for (who, token, status, code) in [
        ("a fellow worker", &w3, 404, "not_found"),
        ("another grid's worker", &elsewhere, 404, "not_found"),
        ("the dispatcher", &d, 403, "forbidden"),
    ] {
        let (s, e) = app.post(token, &format!("/v1/me/tasks/{verify_id}/complete"), &done).await;
        assert_eq!((s, e["code"].as_str()), (status, Some(code)), "{who}: {e}");
        assert!(e["message"].is_string() && e["message_zh"].is_string(), "{e}");
        let random = app.post(token, &format!("/v1/me/tasks/{}/complete", Uuid::new_v4()), &done).await;
        assert_eq!((random.0, random.1["code"].as_str()), (status, Some(code)), "{who}: a random id {}", random.1);
    }
    assert_eq!(app.post(&w3, &format!("/v1/me/tasks/{deliver_id}/ack"), &json!({})).await.0, 404);
    let (_, theirs) = app.get(&w3, "/v1/me/tasks").await;
    assert_eq!(theirs["items"], json!([]), "taken by worker-1: {theirs}");

    // Completion: a note is needed, media ids are content hashes, unknown
    // fields are refused.
    let complete = format!("/v1/me/tasks/{verify_id}/complete");
    let (s, e) = app.post(&w1, &complete, &json!({"note": " "})).await;
    assert_eq!((s, error(&e)), (400, (Some("missing_field"), Some("note"))), "{e}");
    let (s, e) = app.post(&w1, &complete, &json!({"note": "ok", "media": ["IMG_0001.jpg"]})).await;
    assert_eq!((s, error(&e)), (400, (Some("invalid_media_id"), Some("media[0]"))), "{e}");
    let (s, e) = app.post(&w1, &complete, &json!({"note": "ok", "photos": []})).await;
    assert_eq!((s, error(&e)), (400, (Some("unknown_field"), Some("photos"))), "{e}");

    // The photo, then the completion that names it.
    let photo = [vec![0xFF, 0xD8, 0xFF, 0xE0], Uuid::new_v4().as_bytes().to_vec(), vec![7u8; 1024]].concat();
    let r = app.http.post(format!("{}/v1/media", app.base)).bearer_auth(&w1).body(photo).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let photo_id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let done = json!({"note": "已到现场核实，噪音属实，已劝导", "media": [photo_id]});
    let (s, t) = app.post(&w1, &complete, &done).await;
    assert_eq!((s, t["status"].as_str(), t["media"][0]["available"].as_bool()), (200, Some("done"), Some(true)), "{t}");
    // A phone's retry is answered as it is; a different result is refused.
    let (s, again) = app.post(&w1, &complete, &done).await;
    assert_eq!((s, &again["done_at"]), (200, &t["done_at"]), "{again}");
    let (s, e) = app.post(&w1, &complete, &json!({"note": "另一个结果"})).await;
    assert_eq!((s, e["code"].as_str()), (409, Some("task_done")), "{e}");
    let (s, e) = app.post(&w1, &format!("/v1/me/tasks/{verify_id}/ack"), &json!({})).await;
    assert_eq!((s, e["code"].as_str()), (409, Some("task_done")), "{e}");

    // The case worker reads the result on the case.
    let (s, list) = app.get(&d, &tasks_url).await;
    assert_eq!(s, 200, "{list}");
    let got = list["items"].as_array().unwrap().iter().find(|t| t["id"] == verify_id.as_str()).unwrap().clone();
    assert_eq!(
        (got["status"].as_str(), got["note"].as_str(), got["media"][0]["id"].as_str(), got["assignee"].as_str()),
        (Some("done"), Some("已到现场核实，噪音属实，已劝导"), Some(photo_id.as_str()), Some("worker-1")),
        "{got}"
    );
    let events: Vec<&str> = got["history"].as_array().unwrap().iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(events, ["assigned", "acknowledged", "done"]);
    // The case itself did not move: tasks are beside its lifecycle.
    let (_, detail) = app.get(&d, &format!("/v1/cases/{case}")).await;
    assert_eq!((detail["status"].as_str(), detail["version"].as_i64()), (Some("created"), Some(1)), "{detail}");
    // The phone still lists the done task (recently done).
    let (_, mine) = app.get(&w1, "/v1/me/tasks").await;
    let statuses: Vec<&str> = mine["items"].as_array().unwrap().iter().map(|t| t["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["assigned", "done"], "{mine}");

    // Cancelling: a reason is needed; the worker can no longer complete it;
    // a done task cannot be cancelled.
    let cancel = format!("{tasks_url}/{deliver_id}/cancel");
    let (s, e) = app.post(&d, &cancel, &json!({})).await;
    assert_eq!((s, error(&e)), (400, (Some("missing_reason"), Some("reason"))), "{e}");
    let (s, t) = app.post(&d, &cancel, &json!({"reason": "当事人已自行和解"})).await;
    assert_eq!(
        (s, t["status"].as_str(), t["cancelled_by"].as_str(), t["cancel_reason"].as_str()),
        (200, Some("cancelled"), Some("dispatcher-1"), Some("当事人已自行和解")),
        "{t}"
    );
    let (s, e) = app.post(&w1, &format!("/v1/me/tasks/{deliver_id}/complete"), &json!({"note": "已送达"})).await;
    assert_eq!((s, e["code"].as_str()), (409, Some("task_cancelled")), "{e}");
    let (s, e) = app.post(&d, &format!("{tasks_url}/{verify_id}/cancel"), &json!({"reason": "x"})).await;
    assert_eq!((s, e["code"].as_str()), (409, Some("task_done")), "{e}");
    let (s, _) = app.post(&d, &format!("/v1/cases/{}/tasks/{deliver_id}/cancel", Uuid::new_v4()), &json!({})).await;
    assert_eq!(s, 404, "a task only under its own case");

    // Closing the case cancels its open tasks; a closed case takes no more.
    let (s, t) = app
        .post(
            &d,
            &tasks_url,
            &json!({"kind": "follow_up", "instructions": "一周后回访双方", "due_at": in_hours(24 * 7)}),
        )
        .await;
    assert_eq!(s, 201, "{t}");
    let follow_up = t["id"].as_str().unwrap().to_owned();
    helpers::claim_resolve_close(&app.http, &app.base, &d, &case, "mediated_agreement").await;
    // Cancelled by the close itself, before anyone looks.
    use sea_orm::EntityTrait;
    let row =
        gridwork_storage::entity::task::Entity::find_by_id(follow_up.clone()).one(&app.ctx.db).await.unwrap().unwrap();
    assert_eq!((row.status.as_str(), row.cancel_reason.as_deref()), ("cancelled", Some("case closed")));
    let (s, e) = app.post(&w1, &format!("/v1/me/tasks/{follow_up}/complete"), &json!({"note": "已回访"})).await;
    assert_eq!((s, e["code"].as_str()), (409, Some("task_cancelled")), "{e}");
    let (_, list) = app.get(&d, &tasks_url).await;
    let got = list["items"].as_array().unwrap().iter().find(|t| t["id"] == follow_up.as_str()).unwrap().clone();
    assert_eq!(
        (got["status"].as_str(), got["cancelled_by"].as_str(), got["cancel_reason"].as_str()),
        (Some("cancelled"), Some("system"), Some("case closed")),
        "{got}"
    );
    let (s, e) = app.post(&d, &tasks_url, &verify).await;
    assert_eq!((s, e["code"].as_str()), (409, Some("case_closed")), "{e}");
    // Nothing open is left on the worker's phone.
    let (_, mine) = app.get(&w1, "/v1/me/tasks").await;
    assert!(mine["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["status"] != "assigned" && t["status"] != "acknowledged"));
    assert_eq!(app.post(&w1, &format!("/v1/me/tasks/{}/ack", Uuid::new_v4()), &json!({})).await.0, 404);
}

// Giving a task judges the caller's scope and lead channel and the case's
// state on the row read under the case's lock (as case actions do): a
// transfer that commits between the first look and the lock leaves the
// old centre out (404), a channel move leaves the old channel out (403),
// and a close leaves no open task behind (409). A stranger's malformed or
// oversized body gets the stranger's 404, never a 400 or 413.
on_both_backends!(giving_a_task_rechecks_the_case_under_the_row_lock, task_under_lock);

fn give(app: &TestApp, token: String, case: &str) -> impl std::future::Future<Output = (u16, Value)> + Send + 'static {
    let http = app.http.clone();
    let url = format!("{}/v1/cases/{case}/tasks", app.base);
    let body = json!({"kind": "verification", "instructions": "请到现场核实", "due_at": in_hours(24)});
    async move {
        let r = http.post(url).bearer_auth(token).json(&body).send().await.unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null))
    }
}

async fn task_count(app: &TestApp, case: &str) -> usize {
    let (s, v) = app.get(&app.as_role(Role::Admin), &format!("/v1/cases/{case}/tasks")).await;
    assert_eq!(s, 200, "{v}");
    v["items"].as_array().unwrap().iter().filter(|t| t["status"] != "cancelled").count()
}

async fn task_under_lock(app: &TestApp) {
    let d = app.dispatcher();
    let county = app.demo.demo_centre[..6].to_owned();

    // Moved to the county centre while the old centre's request waits for
    // the lock: 404, and no task was given.
    let case = open_case_of(app, "dispute.neighbourhood").await;
    let (s, e) = helpers::locked_update(app, &case, &format!("centre = '{county}'"), give(app, d.clone(), &case)).await;
    assert_eq!((s, e["code"].as_str()), (404, Some("not_found")), "the old centre gives no task: {e}");
    assert_eq!(task_count(app, &case).await, 0);

    // Moved to another channel while the lead channel's mediator waits: 403.
    let case = open_case_of(app, "dispute.property_management").await;
    let people = app
        .ctx
        .issuer
        .issue(&Actor {
            id: "m-people".into(),
            role: Role::Mediator,
            scope: app.demo.demo_centre.clone(),
            channel: Some("people_mediation".into()),
        })
        .unwrap()
        .0;
    let (s, e) = helpers::locked_update(app, &case, "channel = 'legal_aid'", give(app, people, &case)).await;
    assert!(matches!(s, 403 | 404), "the old channel gives no task: {s} {e}");
    assert_eq!(task_count(app, &case).await, 0);

    // Closed while the request waits: 409 case_closed, no open task left.
    let case = open_case_of(app, "dispute.consumer").await;
    let (s, e) = helpers::locked_update(app, &case, "status = 'closed'", give(app, d.clone(), &case)).await;
    assert_eq!((s, e["code"].as_str()), (409, Some("case_closed")), "{e}");
    assert_eq!(task_count(app, &case).await, 0);

    // A stranger's body is never read: another street's dispatcher gets 404
    // for a malformed body and for one over http.max_body_bytes, as for a
    // case that does not exist.
    let other_street =
        format!("{}{}", &app.demo.demo_centre[..6], if app.demo.demo_centre.ends_with("999") { "998" } else { "999" });
    let stranger = app.token("other-d", Role::Dispatcher, &other_street);
    for (what, body) in [("malformed", "{".to_owned()), ("too large", format!("\"{}\"", "x".repeat(300 * 1024)))] {
        for id in [case.as_str(), &Uuid::new_v4().to_string()] {
            let (s, e) = app.post_raw(&stranger, &format!("/v1/cases/{id}/tasks"), &body).await;
            assert_eq!((s, e["code"].as_str()), (404, Some("not_found")), "{what} body for {id}: {e}");
        }
    }
}
