//! The case worker's task endpoints: give, list and cancel a case's tasks.

use std::collections::HashMap;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use gridwork_domain::auth::Actor;
use gridwork_domain::codes;
use gridwork_domain::CaseStatus;
use gridwork_platform::auth::Caller;
use gridwork_platform::error::responses::{PayloadTooLarge, Unauthorized, Unavailable};
use gridwork_platform::ApiError;
use gridwork_storage::entity::{case, task};
use sea_orm::{ConnectionTrait, TransactionTrait};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::view::{one_view, view, TaskView};
use super::{load, place, required_text, TaskKind, ASSIGNED, DONE, MAX_USER_ID};
use crate::access;
use crate::error::{bad, MediationError};
use crate::repo::{self, cases as repo_cases, tasks as repo_tasks};
use crate::State;

const NOT_LEAD: &str = "an assisting channel sees the case; only its lead channel gives and cancels its tasks";

/// The case, if the caller works queues and may see it (404 otherwise, as
/// for the case itself).
async fn visible_case(state: &State, actor: &Actor, id: &str) -> Result<case::Model, MediationError> {
    access::require_queue_worker(actor)?;
    access::visible(actor, repo_cases::find(&state.db, id).await?)
}

/// Body of `POST /v1/cases/{id}/tasks`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateIn {
    /// `verification` (核查), `follow_up` (回访), `delivery` (送达) or
    /// `assist_mediation` (协助调解).
    #[serde(default)]
    #[schema(required, nullable = false, schema_with = super::schema::task_kind)]
    pub kind: Option<String>,
    /// What to do; at most 2000 characters.
    #[serde(default)]
    #[schema(required, nullable = false, value_type = String, min_length = 1, max_length = 2000)]
    pub instructions: Option<String>,
    /// RFC 3339, in the future.
    #[serde(default)]
    #[schema(required, nullable = false, value_type = DateTime<Utc>)]
    pub due_at: Option<String>,
    /// A grid worker's user id; by default the grid workers of the case's grid.
    #[serde(default)]
    pub assignee: Option<String>,
}

/// A named assignee must be a grid worker bound to the case's place: their
/// grid or community is the case's grid (or lies in the county of a case
/// that fell in no grid).
async fn check_assignee<C: ConnectionTrait>(db: &C, name: &str, m: &case::Model) -> Result<String, MediationError> {
    let name = name.trim();
    // Before it reaches the database: PostgreSQL refuses a NUL byte in text.
    gridwork_domain::report::check_text("assignee", name, MAX_USER_ID)?;
    let Some(u) = repo_tasks::grid_worker(db, name).await? else {
        return Err(bad("unknown_assignee", "assignee", format!("{name:?} is not a grid worker"), "该网格员不存在"));
    };
    let at = place(m);
    if !(codes::covers(&u.scope, at) || codes::covers(at, &u.scope)) {
        return Err(bad(
            "assignee_outside_grid",
            "assignee",
            format!("grid worker {name} works {}, not the case's grid {at}", u.scope),
            "该网格员不属于案件所在网格",
        ));
    }
    Ok(u.id)
}

/// `POST /v1/cases/{id}/tasks`: gives a task to the grid worker(s) of the
/// case's grid, or to one named grid worker.
#[utoipa::path(post, path = "/v1/cases/{id}/tasks", tag = "tasks", operation_id = "give_task",
    params(("id" = Uuid, Path, description = "The case")),
    request_body = CreateIn,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Given", body = TaskView, links(
            ("cancel" = (operation_id = "cancel_task",
                parameters(("id" = "$request.path.id"), ("task" = "$response.body#/id")),
                description = "Withdraw the task")),
        )),
        (status = 400, description = "Bad path or body: `code` and `field` say what", body = ApiError),
        Unauthorized,
        (status = 403, description = "Not a dispatcher or mediator, or not of the case's lead channel",
            body = ApiError),
        (status = 404, description = "No such case visible to the caller", body = ApiError),
        (status = 409, description = "The case is closed or rejected", body = ApiError),
        PayloadTooLarge,
        Unavailable,
    ))]
pub async fn create(
    state: web::Data<State>,
    caller: Caller,
    path: web::Path<Uuid>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, MediationError> {
    let actor = caller.0;
    // A first look turns strangers away before the body is read; the
    // judgement that counts is made again under the case's row lock.
    let seen = visible_case(&state, &actor, &path.into_inner().to_string()).await?;
    access::require_lead(&actor, &seen, NOT_LEAD)?;
    let input: CreateIn = crate::body::json(&crate::body::read(&req, body).await?)?;
    let kinds = TaskKind::ALL.map(TaskKind::as_str).join(", ");
    let kind = match input.kind.as_deref() {
        None => return Err(bad("missing_field", "kind", format!("a task needs a kind: {kinds}"), "请选择任务类型")),
        Some(k) => TaskKind::parse(k).ok_or_else(|| {
            bad("invalid_field", "kind", format!("unknown task kind {k:?}; expected one of {kinds}"), "未知的任务类型")
        })?,
    };
    let instructions = required_text("instructions", input.instructions.as_deref(), "instructions", "任务说明")?;
    let now = Utc::now();
    let due_at = match input.due_at.as_deref() {
        None => return Err(bad("missing_field", "due_at", "a task needs a due time (due_at)", "请填写完成时限")),
        Some(d) => DateTime::parse_from_rfc3339(d).map(|d| d.with_timezone(&Utc)).map_err(|_| {
            bad(
                "invalid_field",
                "due_at",
                format!("{d:?} is not an RFC 3339 time, e.g. 2026-05-01T18:00:00+08:00"),
                "完成时限格式错误",
            )
        })?,
    };
    if due_at <= now {
        return Err(bad(
            "due_in_past",
            "due_at",
            format!("due_at {due_at} has already passed"),
            "完成时限早于当前时间",
        ));
    }
    // Under the case's row lock (the lock every case action takes): a
    // transfer, a channel change or a close that commits meanwhile is seen
    // here, and a close's sweep of open tasks cannot miss this one.
    let txn = state.db.begin().await?;
    repo::lock_case(&txn, &seen.id).await?;
    let m = access::visible(&actor, repo_cases::find(&txn, &seen.id).await?)?;
    access::require_lead(&actor, &m, NOT_LEAD)?;
    if !CaseStatus::parse(&m.status).is_some_and(CaseStatus::is_open) {
        return Err(MediationError::CaseClosed(m.status));
    }
    let assignee = match input.assignee.as_deref() {
        Some(name) => Some(check_assignee(&txn, name, &m).await?),
        None if m.grid.is_empty() => {
            return Err(bad(
                "missing_field",
                "assignee",
                "this case lies in no grid: name the grid worker (assignee)",
                "案件不在任何网格内，请指定网格员",
            ))
        }
        None => None,
    };
    let row = task::Model {
        id: Uuid::now_v7().to_string(),
        case_id: m.id.clone(),
        grid: place(&m).to_owned(),
        kind: kind.as_str().to_owned(),
        instructions,
        due_at,
        assignee,
        status: ASSIGNED.to_owned(),
        created_by: actor.id.clone(),
        created_at: now,
        acked_at: None,
        done_at: None,
        note: None,
        media: None,
        cancelled_at: None,
        cancelled_by: None,
        cancel_reason: None,
        updated_at: now,
    };
    let saved = repo_tasks::insert(&txn, row).await?;
    txn.commit().await?;
    tracing::info!(task = %saved.id, case = %m.id, kind = kind.as_str(), actor = %actor.id, "task given");
    Ok(HttpResponse::Created().json(view(&saved, &HashMap::new(), now)))
}

/// Body of `GET /v1/cases/{id}/tasks`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaseTasks {
    pub case_id: String,
    /// Newest first.
    pub items: Vec<TaskView>,
}

/// `GET /v1/cases/{id}/tasks`: every task of the case, newest first.
#[utoipa::path(get, path = "/v1/cases/{id}/tasks", tag = "tasks", operation_id = "case_tasks",
    params(("id" = Uuid, Path, description = "The case")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The case's tasks", body = CaseTasks),
        (status = 400, description = "The id is not a UUID", body = ApiError),
        Unauthorized,
        (status = 403, description = "Not a dispatcher or mediator", body = ApiError),
        (status = 404, description = "No such case visible to the caller", body = ApiError),
        Unavailable,
    ))]
pub async fn of_case(
    state: web::Data<State>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, MediationError> {
    let actor = caller.0;
    let m = visible_case(&state, &actor, &path.into_inner().to_string()).await?;
    let now = Utc::now();
    repo_tasks::sweep_case(&state.db, &m.id, now).await?;
    let rows = repo_tasks::of_case(&state.db, &m.id).await?;
    let up = repo_tasks::uploaded(&state.db, &rows).await?;
    let items = rows.iter().map(|t| view(t, &up, now)).collect();
    Ok(HttpResponse::Ok().json(CaseTasks { case_id: m.id, items }))
}

/// Body of `POST /v1/cases/{id}/tasks/{task}/cancel`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelIn {
    /// Why; at most 2000 characters.
    #[serde(default)]
    #[schema(required, nullable = false, value_type = String, min_length = 1, max_length = 2000)]
    pub reason: Option<String>,
}

/// `POST /v1/cases/{id}/tasks/{task}/cancel`: withdraws an open task, with
/// a reason. Cancelling a cancelled task again answers it as it is.
#[utoipa::path(post, path = "/v1/cases/{id}/tasks/{task}/cancel", tag = "tasks", operation_id = "cancel_task",
    params(("id" = Uuid, Path, description = "The case"), ("task" = Uuid, Path, description = "The task")),
    request_body = CancelIn,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Cancelled (now or before)", body = TaskView),
        (status = 400, description = "Bad path or body, or no reason", body = ApiError),
        Unauthorized,
        (status = 403, description = "Not a dispatcher or mediator, or not of the case's lead channel",
            body = ApiError),
        (status = 404, description = "No such case visible to the caller, or no such task of it", body = ApiError),
        (status = 409, description = "The task is done", body = ApiError),
        PayloadTooLarge,
        Unavailable,
    ))]
pub async fn cancel(
    state: web::Data<State>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, MediationError> {
    let actor = caller.0;
    let (case_id, task_id) = path.into_inner();
    let m = visible_case(&state, &actor, &case_id.to_string()).await?;
    access::require_lead(&actor, &m, NOT_LEAD)?;
    let task_id = task_id.to_string();
    let t = load(&state, &task_id).await?;
    if t.case_id != m.id {
        return Err(MediationError::NotFound("task"));
    }
    let input: CancelIn = crate::body::json(&crate::body::read(&req, body).await?)?;
    if input.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
        return Err(bad("missing_reason", "reason", "cancelling a task needs a reason", "请填写原因"));
    }
    let reason = required_text("reason", input.reason.as_deref(), "the reason", "撤销原因")?;
    let now = Utc::now();
    repo_tasks::sweep_one(&state.db, &task_id, now).await?;
    let cancelled = repo_tasks::cancel(&state.db, &task_id, &actor.id, &reason, now).await?;
    let t = load(&state, &task_id).await?;
    if !cancelled && t.status == DONE {
        return Err(MediationError::TaskDone { zh: "任务已完成，不能撤销" });
    }
    if cancelled {
        tracing::info!(task = %task_id, case = %m.id, actor = %actor.id, "task cancelled");
    }
    Ok(HttpResponse::Ok().json(one_view(&state, &t).await?))
}
