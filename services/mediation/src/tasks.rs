//! Tasks for grid workers (网格员任务), ADR 0021: a dispatcher or mediator
//! working a case asks the grid worker(s) of the case's grid to go and do
//! something — verify on site (核查), visit again (回访), deliver a notice
//! (送达), assist a mediation (协助调解) — with instructions and a due time;
//! the worker's phone lists, acknowledges and completes them.
//!
//! Tasks live in their own table beside the case: they never change the
//! case's state and are not lifecycle events (no timeline rows, no Kafka).
//! A task given to nobody in particular belongs to the grid workers of the
//! case's grid until one of them acknowledges or completes it. Open tasks of
//! a case that has been closed or rejected are cancelled by the system the
//! next time anyone reads or works them.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Duration, Utc};
use gridwork_domain::auth::{Actor, Role};
use gridwork_domain::codes::{self, Level};
use gridwork_domain::CaseStatus;
use gridwork_platform::auth::Caller;
use gridwork_platform::{ApiError, Context};
use gridwork_storage::entity::{case, media, task, task_media, user};
use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, QuerySelect, Set, TransactionTrait,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::api::{may_see, require_queue_worker, MediationError};
use crate::State;

/// What a task asks the grid worker to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskKind {
    /// 核查: check on site what was reported or what was done.
    Verification,
    /// 回访: visit the parties again.
    FollowUp,
    /// 送达: deliver a notice or document.
    Delivery,
    /// 协助调解: help the mediator on site.
    AssistMediation,
}

impl TaskKind {
    pub const ALL: [TaskKind; 4] =
        [TaskKind::Verification, TaskKind::FollowUp, TaskKind::Delivery, TaskKind::AssistMediation];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::Verification => "verification",
            TaskKind::FollowUp => "follow_up",
            TaskKind::Delivery => "delivery",
            TaskKind::AssistMediation => "assist_mediation",
        }
    }

    pub fn name_zh(self) -> &'static str {
        match self {
            TaskKind::Verification => "核查",
            TaskKind::FollowUp => "回访",
            TaskKind::Delivery => "送达",
            TaskKind::AssistMediation => "协助调解",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        TaskKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

pub const ASSIGNED: &str = "assigned";
pub const ACKNOWLEDGED: &str = "acknowledged";
pub const DONE: &str = "done";
pub const CANCELLED: &str = "cancelled";
/// The statuses in which a task is still to be done.
pub const OPEN: [&str; 2] = [ASSIGNED, ACKNOWLEDGED];

/// Longest instructions, result note or cancel reason, in characters.
const MAX_TEXT: usize = 2000;
pub(crate) const MAX_MEDIA: usize = 20;
/// Longest user id an assignee may name, in characters.
const MAX_USER_ID: usize = 256;
/// How long a done or cancelled task stays on the phone's list.
const RECENT_DAYS: i64 = 7;
const MAX_LIST: u64 = 200;

fn bad(code: &'static str, field: &str, en: impl Into<String>, zh: impl Into<String>) -> MediationError {
    MediationError::BadRequest(ApiError::bad_request(code, en, zh).with_field(field))
}

fn conflict(code: &'static str, en: impl Into<String>, zh: impl Into<String>) -> MediationError {
    MediationError::BadRequest(ApiError::conflict(code, en, zh))
}

fn forbidden(en: impl Into<String>) -> MediationError {
    MediationError::BadRequest(ApiError::forbidden(en))
}

/// The process's `http.max_body_bytes`.
pub(crate) fn body_limit(req: &HttpRequest) -> usize {
    req.app_data::<web::Data<Context>>()
        .map_or_else(|| gridwork_platform::config::Http::default().max_body_bytes, |c| c.config.http.max_body_bytes)
}

/// The request body, at most the process's `http.max_body_bytes` (413
/// beyond, in the shared error shape; from `Content-Length` before a byte
/// is read). Every handler calls it only once the caller is authorised and
/// the object is known to be in the caller's view, so a stranger gets its
/// 401/403/404 whatever it sends (ADR 0033).
pub(crate) async fn read_body(req: &HttpRequest, payload: web::Payload) -> Result<web::Bytes, MediationError> {
    let limit = body_limit(req);
    if gridwork_platform::body::declared_length(req).is_some_and(|n| n > limit as u64) {
        return Err(MediationError::BadRequest(gridwork_platform::body::too_large()));
    }
    match payload.to_bytes_limited(limit).await {
        Ok(Ok(body)) => Ok(body),
        Ok(Err(e)) => Err(MediationError::BadRequest(ApiError::bad_request(
            "invalid_body",
            format!("the request body could not be read: {e}"),
            "请求体无法读取",
        ))),
        Err(_) => Err(MediationError::BadRequest(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the request body is too large",
            "请求体过大",
        ))),
    }
}

/// A JSON body (empty = `{}`); an unknown field is named in `field`.
pub(crate) fn parse_body<T: DeserializeOwned + Default>(body: &web::Bytes) -> Result<T, MediationError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| MediationError::BadRequest(gridwork_platform::error::body_error(&e)))
}

/// A required text field, trimmed, at most [`MAX_TEXT`] characters, with
/// no control characters but tabs and line breaks (PostgreSQL cannot store
/// a NUL byte in text).
fn required_text(field: &str, value: Option<&str>, en: &str, zh: &str) -> Result<String, MediationError> {
    let t = value.map(str::trim).unwrap_or("");
    if t.is_empty() {
        return Err(bad("missing_field", field, format!("{en} must not be empty"), format!("请填写{zh}")));
    }
    if t.chars().count() > MAX_TEXT {
        return Err(bad(
            "too_long",
            field,
            format!("{en} is longer than {MAX_TEXT} characters"),
            format!("{zh}不能超过 {MAX_TEXT} 字"),
        ));
    }
    gridwork_domain::report::check_text(field, t, MAX_TEXT).map_err(|e| MediationError::BadRequest(e.into()))?;
    Ok(t.to_owned())
}

pub use gridwork_domain::report::is_media_id;

/// Where a case is, for its tasks: its grid, or its county when it fell in
/// no grid.
fn place(m: &case::Model) -> &str {
    if m.grid.is_empty() {
        &m.county
    } else {
        &m.grid
    }
}

/// Whether `actor` is one of the grid workers of `grid`: a grid worker
/// whose scope is that grid or its community.
fn works_grid(actor: &Actor, grid: &str) -> bool {
    actor.role == Role::GridWorker
        && matches!(codes::level_of(&actor.scope), Ok(Level::Grid | Level::Community))
        && codes::level_of(grid) == Ok(Level::Grid)
        && codes::covers(&actor.scope, grid)
}

/// The tasks a grid worker may see and work: given to them, or to nobody
/// in particular in their grid.
fn visible_to(actor: &Actor) -> Condition {
    let mut any = Condition::any().add(task::Column::Assignee.eq(actor.id.as_str()));
    if matches!(codes::level_of(&actor.scope), Ok(Level::Grid | Level::Community)) {
        any = any.add(
            Condition::all()
                .add(task::Column::Assignee.is_null())
                .add(task::Column::Grid.starts_with(actor.scope.as_str())),
        );
    }
    any
}

fn may_work(actor: &Actor, t: &task::Model) -> Result<(), MediationError> {
    match &t.assignee {
        Some(a) if *a == actor.id => Ok(()),
        // Out of the caller's view: 404 as for an id that does not exist,
        // so a grid worker cannot probe for other workers' tasks (ADR 0033).
        Some(_) => Err(MediationError::NotFound("task")),
        None if works_grid(actor, &t.grid) => Ok(()),
        None => Err(MediationError::NotFound("task")),
    }
}

/// Cancels the open tasks among `which` whose case has been closed or
/// rejected, in the system's name: eagerly in the transition that closes or
/// rejects a case, and again whenever tasks are listed or worked (a case
/// ended before tasks existed, or by a path other than a transition).
pub(crate) async fn sweep<C: ConnectionTrait>(db: &C, which: Condition, now: DateTime<Utc>) -> Result<u64, DbErr> {
    let mut n = 0;
    for (status, reason) in [(CaseStatus::Closed, "case closed"), (CaseStatus::Rejected, "case rejected")] {
        let ended = Query::select()
            .column(case::Column::Id)
            .from(case::Entity)
            .and_where(case::Column::Status.eq(status.as_str()))
            .to_owned();
        let res = task::Entity::update_many()
            .col_expr(task::Column::Status, Expr::value(CANCELLED))
            .col_expr(task::Column::CancelledAt, Expr::value(now))
            .col_expr(task::Column::CancelledBy, Expr::value("system"))
            .col_expr(task::Column::CancelReason, Expr::value(reason))
            .col_expr(task::Column::UpdatedAt, Expr::value(now))
            .filter(which.clone())
            .filter(task::Column::Status.is_in(OPEN))
            .filter(task::Column::CaseId.in_subquery(ended))
            .exec(db)
            .await?;
        n += res.rows_affected;
    }
    if n > 0 {
        tracing::info!(tasks = n, "open tasks of closed or rejected cases cancelled");
    }
    Ok(n)
}

fn media_ids(t: &task::Model) -> Vec<String> {
    t.media.as_deref().and_then(|m| serde_json::from_str(m).ok()).unwrap_or_default()
}

/// What has been uploaded of the media the tasks name.
async fn uploaded(state: &State, tasks: &[task::Model]) -> Result<HashMap<String, media::Model>, MediationError> {
    let ids: Vec<String> = tasks.iter().flat_map(media_ids).collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(media::Entity::find()
        .filter(media::Column::Id.is_in(ids))
        .all(&state.db)
        .await?
        .into_iter()
        .map(|m| (m.id.clone(), m))
        .collect())
}

/// A photo or video of a task's result, and whether it has arrived yet.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskMedia {
    /// The SHA-256 (lowercase hex) of the file, as `POST /v1/media` named it.
    pub id: String,
    /// Uploaded already.
    pub available: bool,
    /// Once uploaded.
    #[schema(required)]
    pub content_type: Option<String>,
    pub url: String,
}

/// One step of a task's history.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskEvent {
    #[schema(schema_with = crate::openapi::task_status)]
    pub event: &'static str,
    pub at: DateTime<Utc>,
    /// Who: a user id, or `system`.
    #[schema(required)]
    pub by: Option<String>,
    /// Why, for a cancellation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A task as both the phone and the case worker see it: what, by when, its
/// state, the result, and its history. Nobody's personal data but what the
/// case worker wrote and the grid worker reported.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskView {
    pub id: String,
    pub case_id: String,
    /// The case's grid when the task was given (its county when the case
    /// lies in no grid).
    pub grid: String,
    #[schema(schema_with = crate::openapi::task_kind)]
    pub kind: String,
    /// The kind in Chinese: 核查, 回访, 送达 or 协助调解.
    pub kind_zh: &'static str,
    pub instructions: String,
    pub due_at: DateTime<Utc>,
    /// Still open and past its due time.
    pub overdue: bool,
    /// The grid worker; `null`: any grid worker of `grid`, until one
    /// acknowledges or completes it.
    #[schema(required)]
    pub assignee: Option<String>,
    #[schema(schema_with = crate::openapi::task_status)]
    pub status: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    #[schema(required)]
    pub acked_at: Option<DateTime<Utc>>,
    #[schema(required)]
    pub done_at: Option<DateTime<Utc>>,
    /// The grid worker's result note.
    #[schema(required)]
    pub note: Option<String>,
    pub media: Vec<TaskMedia>,
    #[schema(required)]
    pub cancelled_at: Option<DateTime<Utc>>,
    /// A case worker's id, or `system` when the case was closed or rejected.
    #[schema(required)]
    pub cancelled_by: Option<String>,
    #[schema(required)]
    pub cancel_reason: Option<String>,
    pub updated_at: DateTime<Utc>,
    pub history: Vec<TaskEvent>,
}

fn view(t: &task::Model, uploaded: &HashMap<String, media::Model>, now: DateTime<Utc>) -> TaskView {
    let open = OPEN.contains(&t.status.as_str());
    let media = media_ids(t)
        .into_iter()
        .map(|id| {
            let m = uploaded.get(&id);
            TaskMedia {
                available: m.is_some(),
                content_type: m.map(|m| m.content_type.clone()),
                url: format!("/v1/media/{id}"),
                id,
            }
        })
        .collect();
    let event = |event, at, by: Option<&String>| TaskEvent { event, at, by: by.cloned(), reason: None };
    let mut history = vec![event(ASSIGNED, t.created_at, Some(&t.created_by))];
    if let Some(at) = t.acked_at {
        history.push(event(ACKNOWLEDGED, at, t.assignee.as_ref()));
    }
    if let Some(at) = t.done_at {
        history.push(event(DONE, at, t.assignee.as_ref()));
    }
    if let Some(at) = t.cancelled_at {
        history.push(TaskEvent { reason: t.cancel_reason.clone(), ..event(CANCELLED, at, t.cancelled_by.as_ref()) });
    }
    TaskView {
        id: t.id.clone(),
        case_id: t.case_id.clone(),
        grid: t.grid.clone(),
        kind: t.kind.clone(),
        kind_zh: TaskKind::parse(&t.kind).map(TaskKind::name_zh).unwrap_or(""),
        instructions: t.instructions.clone(),
        due_at: t.due_at,
        overdue: open && t.due_at <= now,
        assignee: t.assignee.clone(),
        status: t.status.clone(),
        created_by: t.created_by.clone(),
        created_at: t.created_at,
        acked_at: t.acked_at,
        done_at: t.done_at,
        note: t.note.clone(),
        media,
        cancelled_at: t.cancelled_at,
        cancelled_by: t.cancelled_by.clone(),
        cancel_reason: t.cancel_reason.clone(),
        updated_at: t.updated_at,
        history,
    }
}

async fn one_view(state: &State, t: &task::Model) -> Result<TaskView, MediationError> {
    let up = uploaded(state, std::slice::from_ref(t)).await?;
    Ok(view(t, &up, Utc::now()))
}

async fn load(state: &State, id: &str) -> Result<task::Model, MediationError> {
    task::Entity::find_by_id(id.to_owned()).one(&state.db).await?.ok_or(MediationError::NotFound("task"))
}

// ---------------------------------------------------------------------------
// Case workers: give, list and cancel a case's tasks.

/// The case, if the caller works queues and may see it (404 otherwise, as
/// for the case itself).
async fn visible_case(state: &State, actor: &Actor, id: &str) -> Result<case::Model, MediationError> {
    require_queue_worker(actor)?;
    let m = case::Entity::find_by_id(id.to_owned()).one(&state.db).await?.ok_or(MediationError::NotFound("case"))?;
    if !may_see(actor, &m) {
        return Err(MediationError::NotFound("case"));
    }
    Ok(m)
}

/// Only the lead channel's mediators act on a case (as for its lifecycle).
fn require_lead(actor: &Actor, m: &case::Model) -> Result<(), MediationError> {
    if actor.role == Role::Mediator && actor.channel.as_deref() != Some(m.channel.as_str()) {
        return Err(MediationError::Forbidden(
            "an assisting channel sees the case; only its lead channel gives and cancels its tasks",
        ));
    }
    Ok(())
}

/// Body of `POST /v1/cases/{id}/tasks`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateIn {
    /// `verification` (核查), `follow_up` (回访), `delivery` (送达) or
    /// `assist_mediation` (协助调解).
    #[serde(default)]
    #[schema(required, nullable = false, schema_with = crate::openapi::task_kind)]
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
    gridwork_domain::report::check_text("assignee", name, MAX_USER_ID)
        .map_err(|e| MediationError::BadRequest(e.into()))?;
    let found = user::Entity::find_by_id(name.to_owned()).one(db).await?.filter(|u| u.role == "grid_worker");
    let Some(u) = found else {
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
        (status = 401, description = "No or bad token", body = ApiError),
        (status = 403, description = "Not a dispatcher or mediator, or not of the case's lead channel",
            body = ApiError),
        (status = 404, description = "No such case visible to the caller", body = ApiError),
        (status = 409, description = "The case is closed or rejected", body = ApiError),
        (status = 413, description = "Body too large", body = ApiError),
        (status = 503, description = "Storage unavailable; retry", body = ApiError),
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
    require_lead(&actor, &seen)?;
    let input: CreateIn = parse_body(&read_body(&req, body).await?)?;
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
    crate::repo::lock_case(&txn, &seen.id).await?;
    let m = case::Entity::find_by_id(seen.id.clone()).one(&txn).await?.ok_or(MediationError::NotFound("case"))?;
    if !may_see(&actor, &m) {
        return Err(MediationError::NotFound("case"));
    }
    require_lead(&actor, &m)?;
    let status = CaseStatus::parse(&m.status);
    if !status.is_some_and(CaseStatus::is_open) {
        return Err(conflict(
            "case_closed",
            format!("the case is {}: tasks are given on open cases only", m.status),
            "案件已结案或不予受理，不能再派发任务",
        ));
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
    let saved = row.into_active_model().reset_all().insert(&txn).await?;
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
        (status = 401, description = "No or bad token", body = ApiError),
        (status = 403, description = "Not a dispatcher or mediator", body = ApiError),
        (status = 404, description = "No such case visible to the caller", body = ApiError),
        (status = 503, description = "Storage unavailable; retry", body = ApiError),
    ))]
pub async fn of_case(
    state: web::Data<State>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, MediationError> {
    let actor = caller.0;
    let m = visible_case(&state, &actor, &path.into_inner().to_string()).await?;
    let now = Utc::now();
    sweep(&state.db, Condition::all().add(task::Column::CaseId.eq(m.id.as_str())), now).await?;
    let rows = task::Entity::find()
        .filter(task::Column::CaseId.eq(m.id.as_str()))
        .order_by_desc(task::Column::CreatedAt)
        .order_by_desc(task::Column::Id)
        .all(&state.db)
        .await?;
    let up = uploaded(&state, &rows).await?;
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
        (status = 401, description = "No or bad token", body = ApiError),
        (status = 403, description = "Not a dispatcher or mediator, or not of the case's lead channel",
            body = ApiError),
        (status = 404, description = "No such case visible to the caller, or no such task of it", body = ApiError),
        (status = 409, description = "The task is done", body = ApiError),
        (status = 413, description = "Body too large", body = ApiError),
        (status = 503, description = "Storage unavailable; retry", body = ApiError),
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
    require_lead(&actor, &m)?;
    let task_id = task_id.to_string();
    let t = load(&state, &task_id).await?;
    if t.case_id != m.id {
        return Err(MediationError::NotFound("task"));
    }
    let input: CancelIn = parse_body(&read_body(&req, body).await?)?;
    if input.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
        return Err(bad("missing_reason", "reason", "cancelling a task needs a reason", "请填写原因"));
    }
    let reason = required_text("reason", input.reason.as_deref(), "the reason", "撤销原因")?;
    let now = Utc::now();
    sweep(&state.db, Condition::all().add(task::Column::Id.eq(task_id.as_str())), now).await?;
    let res = task::Entity::update_many()
        .col_expr(task::Column::Status, Expr::value(CANCELLED))
        .col_expr(task::Column::CancelledAt, Expr::value(now))
        .col_expr(task::Column::CancelledBy, Expr::value(actor.id.as_str()))
        .col_expr(task::Column::CancelReason, Expr::value(reason))
        .col_expr(task::Column::UpdatedAt, Expr::value(now))
        .filter(task::Column::Id.eq(task_id.as_str()))
        .filter(task::Column::Status.is_in(OPEN))
        .exec(&state.db)
        .await?;
    let t = load(&state, &task_id).await?;
    if res.rows_affected == 0 && t.status == DONE {
        return Err(conflict("task_done", "the task is already done", "任务已完成，不能撤销"));
    }
    if res.rows_affected == 1 {
        tracing::info!(task = %task_id, case = %m.id, actor = %actor.id, "task cancelled");
    }
    Ok(HttpResponse::Ok().json(one_view(&state, &t).await?))
}

// ---------------------------------------------------------------------------
// Grid workers: the phone's "tasks assigned to me".

fn require_grid_worker(actor: &Actor) -> Result<(), MediationError> {
    if actor.role != Role::GridWorker {
        return Err(forbidden("tasks are worked by grid workers; case workers read them on the case"));
    }
    Ok(())
}

/// Where a task's case is and what it is about: never anyone's personal data.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskCase {
    pub id: String,
    /// A category code of the taxonomy.
    pub category: String,
    #[schema(schema_with = crate::openapi::case_status)]
    pub status: String,
    #[schema(schema_with = crate::openapi::urgency)]
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
        (status = 401, description = "No or bad token", body = ApiError),
        (status = 403, description = "Not a grid worker", body = ApiError),
        (status = 503, description = "Storage unavailable; retry", body = ApiError),
    ))]
pub async fn mine(state: web::Data<State>, caller: Caller) -> Result<HttpResponse, MediationError> {
    let actor = caller.0;
    require_grid_worker(&actor)?;
    let now = Utc::now();
    sweep(&state.db, visible_to(&actor), now).await?;
    let rows = task::Entity::find()
        .filter(visible_to(&actor))
        .filter(
            Condition::any()
                .add(task::Column::Status.is_in(OPEN))
                .add(task::Column::UpdatedAt.gte(now - Duration::days(RECENT_DAYS))),
        )
        .order_by_desc(task::Column::CreatedAt)
        .order_by_desc(task::Column::Id)
        .limit(MAX_LIST)
        .all(&state.db)
        .await?;
    let up = uploaded(&state, &rows).await?;
    let case_ids: Vec<String> = rows.iter().map(|t| t.case_id.clone()).collect();
    let cases: HashMap<String, case::Model> = if case_ids.is_empty() {
        HashMap::new()
    } else {
        case::Entity::find()
            .filter(case::Column::Id.is_in(case_ids))
            .all(&state.db)
            .await?
            .into_iter()
            .map(|c| (c.id.clone(), c))
            .collect()
    };
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
    may_work(actor, &t)?;
    if OPEN.contains(&t.status.as_str())
        && sweep(&state.db, Condition::all().add(task::Column::Id.eq(id)), now).await? > 0
    {
        return load(state, id).await;
    }
    Ok(t)
}

fn cancelled_error(t: &task::Model) -> MediationError {
    let why = t.cancel_reason.as_deref().unwrap_or("");
    conflict("task_cancelled", format!("the task was cancelled: {why}"), "任务已撤销")
}

/// The condition an open task must still meet for `actor` to move it on:
/// open, and theirs or nobody's yet.
fn still_theirs(actor: &Actor, id: &str) -> Condition {
    Condition::all()
        .add(task::Column::Id.eq(id))
        .add(task::Column::Status.is_in(OPEN))
        .add(Condition::any().add(task::Column::Assignee.eq(actor.id.as_str())).add(task::Column::Assignee.is_null()))
}

fn raced() -> MediationError {
    conflict("concurrent_update", "the task was changed concurrently", "任务正被他人处理，请刷新后重试")
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
        (status = 401, description = "No or bad token", body = ApiError),
        (status = 403, description = "Not a grid worker", body = ApiError),
        (status = 404, description = "No such task, or another grid worker's or grid's (alike)", body = ApiError),
        (status = 409, description = "The task is done or cancelled, or was changed concurrently", body = ApiError),
        (status = 413, description = "Body too large", body = ApiError),
        (status = 503, description = "Storage unavailable; retry", body = ApiError),
    ))]
pub async fn ack(
    state: web::Data<State>,
    caller: Caller,
    path: web::Path<Uuid>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, MediationError> {
    let actor = caller.0;
    require_grid_worker(&actor)?;
    let id = path.into_inner().to_string();
    let now = Utc::now();
    let t = workable(&state, &actor, &id, now).await?;
    let AckIn {} = parse_body(&read_body(&req, body).await?)?;
    match t.status.as_str() {
        CANCELLED => return Err(cancelled_error(&t)),
        DONE => return Err(conflict("task_done", "the task is already done", "任务已完成")),
        ACKNOWLEDGED => return Ok(HttpResponse::Ok().json(one_view(&state, &t).await?)),
        _ => {}
    }
    let res = task::Entity::update_many()
        .col_expr(task::Column::Status, Expr::value(ACKNOWLEDGED))
        .col_expr(task::Column::AckedAt, Expr::value(now))
        .col_expr(task::Column::Assignee, Expr::value(actor.id.as_str()))
        .col_expr(task::Column::UpdatedAt, Expr::value(now))
        .filter(still_theirs(&actor, &id))
        .filter(task::Column::Status.eq(ASSIGNED))
        .exec(&state.db)
        .await?;
    let t = load(&state, &id).await?;
    if res.rows_affected == 0 {
        may_work(&actor, &t)?;
        match t.status.as_str() {
            CANCELLED => return Err(cancelled_error(&t)),
            DONE => return Err(conflict("task_done", "the task is already done", "任务已完成")),
            ACKNOWLEDGED => {}
            _ => return Err(raced()),
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
    #[schema(schema_with = crate::openapi::media_ids)]
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
        (status = 401, description = "No or bad token", body = ApiError),
        (status = 403, description = "Not a grid worker", body = ApiError),
        (status = 404, description = "No such task, or another grid worker's or grid's (alike)", body = ApiError),
        (status = 409, description = "The task is cancelled, done with another result, or changed concurrently",
            body = ApiError),
        (status = 413, description = "Body too large", body = ApiError),
        (status = 503, description = "Storage unavailable; retry", body = ApiError),
    ))]
pub async fn complete(
    state: web::Data<State>,
    caller: Caller,
    path: web::Path<Uuid>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, MediationError> {
    let actor = caller.0;
    require_grid_worker(&actor)?;
    let id = path.into_inner().to_string();
    let now = Utc::now();
    let t = workable(&state, &actor, &id, now).await?;
    let input: CompleteIn = parse_body(&read_body(&req, body).await?)?;
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
        DONE => return Err(conflict("task_done", "the task is already done", "任务已完成")),
        _ => {}
    }
    let media = if input.media.is_empty() {
        None
    } else {
        Some(serde_json::to_string(&input.media).map_err(|e| MediationError::Internal(e.to_string()))?)
    };
    // The result and the index of the media it names (who may see them,
    // ADR 0024) commit together.
    let txn = state.db.begin().await?;
    let res = task::Entity::update_many()
        .col_expr(task::Column::Status, Expr::value(DONE))
        .col_expr(task::Column::DoneAt, Expr::value(now))
        .col_expr(task::Column::Assignee, Expr::value(actor.id.as_str()))
        .col_expr(task::Column::Note, Expr::value(note.as_str()))
        .col_expr(task::Column::Media, Expr::value(media))
        .col_expr(task::Column::UpdatedAt, Expr::value(now))
        .filter(still_theirs(&actor, &id))
        .exec(&txn)
        .await?;
    if res.rows_affected > 0 && !input.media.is_empty() {
        let rows =
            input.media.iter().map(|m| task_media::ActiveModel { media_id: Set(m.clone()), task_id: Set(id.clone()) });
        task_media::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::columns([task_media::Column::MediaId, task_media::Column::TaskId]).do_nothing().to_owned(),
            )
            .exec_without_returning(&txn)
            .await?;
    }
    txn.commit().await?;
    let t = load(&state, &id).await?;
    if res.rows_affected == 0 {
        may_work(&actor, &t)?;
        match t.status.as_str() {
            CANCELLED => return Err(cancelled_error(&t)),
            DONE if replay(&t) => {}
            _ => return Err(raced()),
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
    fn kinds_and_media_ids() {
        for k in TaskKind::ALL {
            assert_eq!(TaskKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(TaskKind::parse("核查"), None);
        assert!(is_media_id(&"ab".repeat(32)));
        assert!(!is_media_id(&"AB".repeat(32)));
        assert!(!is_media_id("abc"));
    }

    #[test]
    fn who_works_a_grid() {
        let grid = "371002001002003";
        let w = |scope: &str| Actor::new("w", Role::GridWorker, scope);
        assert!(works_grid(&w(grid), grid));
        assert!(works_grid(&w("371002001002"), grid), "the community's worker");
        assert!(!works_grid(&w("371002001002004"), grid), "the next grid's worker");
        assert!(!works_grid(&w("371002"), grid), "a county is no grid worker's scope");
        assert!(!works_grid(&Actor::new("d", Role::Dispatcher, grid), grid));
    }

    #[test]
    fn unknown_fields_are_named() {
        let e = parse_body::<CreateIn>(&web::Bytes::from_static(br#"{"kind":"verification","colour":"red"}"#));
        match e {
            Err(MediationError::BadRequest(a)) => {
                assert_eq!((a.code, a.field.as_deref()), ("unknown_field", Some("colour")));
            }
            other => panic!("{other:?}"),
        }
        assert!(parse_body::<AckIn>(&web::Bytes::from_static(b"  ")).is_ok());
    }

    #[test]
    fn free_text_is_trimmed_and_checked() {
        let code = |v: &str| match required_text("note", Some(v), "the note", "办理结果") {
            Ok(t) => t,
            Err(MediationError::BadRequest(a)) => format!("{} {}", a.code, a.field.unwrap_or_default()),
            Err(other) => panic!("{other:?}"),
        };
        assert_eq!(code("  已送达\n签收人：李四 "), "已送达\n签收人：李四");
        assert_eq!(code(" "), "missing_field note");
        assert_eq!(code("a\0b"), "invalid_characters note", "PostgreSQL cannot store a NUL byte");
        assert_eq!(code(&"字".repeat(MAX_TEXT + 1)), "too_long note");
    }
}
