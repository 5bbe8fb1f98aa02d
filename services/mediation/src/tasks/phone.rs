//! The grid worker's phone: "tasks assigned to me", acknowledge, complete.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Duration, Utc};
use gridwork_domain::auth::Actor;
use gridwork_platform::auth::Caller;
use gridwork_platform::error::responses::{PayloadTooLarge, Unauthorized, Unavailable};
use gridwork_platform::ApiError;
use gridwork_storage::entity::task;
use sea_orm::TransactionTrait;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::view::{one_view, view, TaskView};
use super::{is_media_id, load, required_text, ACKNOWLEDGED, CANCELLED, DONE, MAX_LIST, MAX_MEDIA, OPEN, RECENT_DAYS};
use crate::access;
use crate::error::{bad, MediationError};
use crate::repo::tasks::{self as repo_tasks, media_ids};
use crate::State;

const GRID_WORKERS_ONLY: &str = "tasks are worked by grid workers; case workers read them on the case";

/// Where a task's case is and what it is about: never anyone's personal data.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskCase {
    pub id: String,
    /// A category code of the taxonomy.
    pub category: String,
    #[schema(schema_with = crate::schema::case_status)]
    pub status: String,
    #[schema(schema_with = crate::schema::urgency)]
    pub urgency: String,
    /// Empty when the case lies in no grid.
    pub grid: String,
    pub centre: String,
    /// Where the first report saw the incident.
    #[schema(required)]
    pub location: Option<TaskLocation>,
}

/// A point, WGS-84.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskLocation {
    pub lat: f64,
    pub lon: f64,
    /// Always `wgs84`.
    pub crs: &'static str,
}

/// A task on the grid worker's phone: the task and its case.
#[derive(Debug, Serialize, ToSchema)]
pub struct MyTask {
    #[serde(flatten)]
    pub task: TaskView,
    /// `null` if the case is gone.
    #[schema(required)]
    pub case: Option<TaskCase>,
}

/// Body of `GET /v1/me/tasks`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MyTasks {
    /// Open ones and those done or cancelled in the last week, newest
    /// first; at most 200.
    pub items: Vec<MyTask>,
}

/// `GET /v1/me/tasks`: the caller's tasks (given to them, or to the grid
/// workers of their grid), open ones and those done or cancelled in the
/// last week, newest first. Each names its case by id, category, status
/// and place, never by anyone's personal data.
#[utoipa::path(get, path = "/v1/me/tasks", tag = "phone", operation_id = "my_tasks",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's tasks", body = MyTasks, links(
            ("ack" = (operation_id = "ack_task", parameters(("id" = "$response.body#/items/0/id")),
                description = "Acknowledge the newest task")),
            ("complete" = (operation_id = "complete_task", parameters(("id" = "$response.body#/items/0/id")),
                description = "Complete the newest task")),
        )),
        Unauthorized,
        (status = 403, description = "Not a grid worker", body = ApiError),
        Unavailable,
    ))]
pub async fn mine(state: web::Data<State>, caller: Caller) -> Result<HttpResponse, MediationError> {
    let actor = caller.0;
    access::require_grid_worker(&actor, GRID_WORKERS_ONLY)?;
    let now = Utc::now();
    repo_tasks::sweep(&state.db, access::visible_tasks(&actor), now).await?;
    let rows = repo_tasks::listed(&state.db, access::visible_tasks(&actor), now, Duration::days(RECENT_DAYS), MAX_LIST)
        .await?;
    let up = repo_tasks::uploaded(&state.db, &rows).await?;
    let cases = repo_tasks::cases_by_id(&state.db, rows.iter().map(|t| t.case_id.clone()).collect()).await?;
    let items = rows
        .iter()
        .map(|t| MyTask {
            task: view(t, &up, now),
            case: cases.get(&t.case_id).map(|c| TaskCase {
                id: c.id.clone(),
                category: c.category.clone(),
                status: c.status.clone(),
                urgency: c.urgency.clone(),
                grid: c.grid.clone(),
                centre: c.centre.clone(),
                location: match (c.lat, c.lon) {
                    (Some(lat), Some(lon)) => Some(TaskLocation { lat, lon, crs: "wgs84" }),
                    _ => None,
                },
            }),
        })
        .collect();
    Ok(HttpResponse::Ok().json(MyTasks { items }))
}

/// Body of `POST /v1/me/tasks/{id}/ack` (nothing yet; `{}` or empty).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AckIn {}

/// The task as the grid worker may work it: theirs, its case still open
/// (or else cancelled now).
async fn workable(state: &State, actor: &Actor, id: &str, now: DateTime<Utc>) -> Result<task::Model, MediationError> {
    let t = load(state, id).await?;
    access::may_work(actor, &t)?;
    if OPEN.contains(&t.status.as_str()) && repo_tasks::sweep_one(&state.db, id, now).await? > 0 {
        return load(state, id).await;
    }
    Ok(t)
}

fn cancelled_error(t: &task::Model) -> MediationError {
    MediationError::TaskCancelled(t.cancel_reason.clone().unwrap_or_default())
}

fn already_done() -> MediationError {
    MediationError::TaskDone { zh: "任务已完成" }
}

/// `POST /v1/me/tasks/{id}/ack`: the grid worker has seen the task (and,
/// when it was given to the grid, takes it). Optional; again is harmless.
#[utoipa::path(post, path = "/v1/me/tasks/{id}/ack", tag = "phone", operation_id = "ack_task",
    params(("id" = Uuid, Path, description = "The task")),
    request_body = Option<AckIn>,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Acknowledged (now or before)", body = TaskView, links(
            ("complete" = (operation_id = "complete_task", parameters(("id" = "$response.body#/id")),
                description = "Complete the task")),
        )),
        (status = 400, description = "Bad path or body", body = ApiError),
        Unauthorized,
        (status = 403, description = "Not a grid worker", body = ApiError),
        (status = 404, description = "No such task, or another grid worker's or grid's (alike)", body = ApiError),
        (status = 409, description = "The task is done or cancelled, or was changed concurrently", body = ApiError),
        PayloadTooLarge,
        Unavailable,
    ))]
pub async fn ack(
    state: web::Data<State>,
    caller: Caller,
    path: web::Path<Uuid>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, MediationError> {
    let actor = caller.0;
    access::require_grid_worker(&actor, GRID_WORKERS_ONLY)?;
    let id = path.into_inner().to_string();
    let now = Utc::now();
    let t = workable(&state, &actor, &id, now).await?;
    let AckIn {} = crate::body::json(&crate::body::read(&req, body).await?)?;
    match t.status.as_str() {
        CANCELLED => return Err(cancelled_error(&t)),
        DONE => return Err(already_done()),
        ACKNOWLEDGED => return Ok(HttpResponse::Ok().json(one_view(&state, &t).await?)),
        _ => {}
    }
    let acked = repo_tasks::acknowledge(&state.db, access::still_theirs(&actor, &id), &actor.id, now).await?;
    let t = load(&state, &id).await?;
    if !acked {
        access::may_work(&actor, &t)?;
        match t.status.as_str() {
            CANCELLED => return Err(cancelled_error(&t)),
            DONE => return Err(already_done()),
            ACKNOWLEDGED => {}
            _ => return Err(MediationError::TaskRaced),
        }
    }
    Ok(HttpResponse::Ok().json(one_view(&state, &t).await?))
}

/// Body of `POST /v1/me/tasks/{id}/complete`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteIn {
    /// What was found or done; at most 2000 characters.
    #[serde(default)]
    #[schema(required, nullable = false, value_type = String, min_length = 1, max_length = 2000)]
    pub note: Option<String>,
    /// Photos or videos: ids from `POST /v1/media` (the file's SHA-256,
    /// lowercase hex), uploaded before or after; at most 20.
    #[serde(default)]
    #[schema(schema_with = super::schema::media_ids)]
    pub media: Vec<String>,
}

/// `POST /v1/me/tasks/{id}/complete`: done, with a result note and media.
/// Only the assigned grid worker (or, for a task given to the grid, one of
/// its grid workers) completes it. Sending the same completion again (a
/// phone retrying) answers the task as it is.
#[utoipa::path(post, path = "/v1/me/tasks/{id}/complete", tag = "phone", operation_id = "complete_task",
    params(("id" = Uuid, Path, description = "The task")),
    request_body = CompleteIn,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Done (now, or the same result before)", body = TaskView),
        (status = 400, description = "Bad path or body: `code` and `field` say what", body = ApiError),
        Unauthorized,
        (status = 403, description = "Not a grid worker", body = ApiError),
        (status = 404, description = "No such task, or another grid worker's or grid's (alike)", body = ApiError),
        (status = 409, description = "The task is cancelled, done with another result, or changed concurrently",
            body = ApiError),
        PayloadTooLarge,
        Unavailable,
    ))]
pub async fn complete(
    state: web::Data<State>,
    caller: Caller,
    path: web::Path<Uuid>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, MediationError> {
    let actor = caller.0;
    access::require_grid_worker(&actor, GRID_WORKERS_ONLY)?;
    let id = path.into_inner().to_string();
    let now = Utc::now();
    let t = workable(&state, &actor, &id, now).await?;
    let input: CompleteIn = crate::body::json(&crate::body::read(&req, body).await?)?;
    let note = required_text("note", input.note.as_deref(), "the result note", "办理结果")?;
    if input.media.len() > MAX_MEDIA {
        return Err(bad(
            "too_many",
            "media",
            format!("at most {MAX_MEDIA} media per task"),
            format!("每个任务最多 {MAX_MEDIA} 个附件"),
        ));
    }
    if let Some((i, m)) = input.media.iter().enumerate().find(|(_, m)| !is_media_id(m)) {
        return Err(bad(
            "invalid_media_id",
            &format!("media[{i}]"),
            format!("{m:?} is not a media id (the id POST /v1/media returned)"),
            format!("{m:?} 不是有效的附件编号"),
        ));
    }
    let replay = |t: &task::Model| t.note.as_deref() == Some(note.as_str()) && media_ids(t) == input.media;
    match t.status.as_str() {
        CANCELLED => return Err(cancelled_error(&t)),
        DONE if replay(&t) => return Ok(HttpResponse::Ok().json(one_view(&state, &t).await?)),
        DONE => return Err(already_done()),
        _ => {}
    }
    // The result and the index of the media it names (who may see them,
    // ADR 0024) commit together.
    let txn = state.db.begin().await?;
    let done =
        repo_tasks::complete(&txn, access::still_theirs(&actor, &id), &id, &actor.id, &note, &input.media, now).await?;
    txn.commit().await?;
    let t = load(&state, &id).await?;
    if !done {
        access::may_work(&actor, &t)?;
        match t.status.as_str() {
            CANCELLED => return Err(cancelled_error(&t)),
            DONE if replay(&t) => {}
            _ => return Err(MediationError::TaskRaced),
        }
    } else {
        tracing::info!(task = %id, case = %t.case_id, actor = %actor.id, media = input.media.len(), "task done");
    }
    Ok(HttpResponse::Ok().json(one_view(&state, &t).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_are_named() {
        let e = crate::body::json::<crate::tasks::case_worker::CreateIn>(br#"{"kind":"verification","colour":"red"}"#);
        match e {
            Err(e) => {
                let a = e.api();
                assert_eq!((a.code, a.field.as_deref()), ("unknown_field", Some("colour")));
            }
            other => panic!("{other:?}"),
        }
        assert!(crate::body::json::<AckIn>(b"  ").is_ok());
    }
}
