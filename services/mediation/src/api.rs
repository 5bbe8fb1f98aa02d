//! The dispatcher's API: queues with filters, sort and cursor pagination;
//! case detail with its timeline and linked reports; every lifecycle action.
//!
//! Who sees what: a dispatcher the centres under their scope (a county
//! centre also sees its streets' centres), a mediator only cases their
//! channel leads or assists in (and acts only where it leads), an admin
//! everything; grid workers and analysts never see queues. A case outside
//! the caller's view is answered 404, never 403, so its existence is not
//! revealed.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use gridwork_domain::auth::{Actor, Role};
use gridwork_domain::calendar::{ClockError, Span};
use gridwork_domain::{
    codes, Case, CaseAction, CaseEventKind, CaseStatus, Channel, NewCase, Outcome, Satisfaction, Step, TransitionError,
};
use gridwork_events::convert::{Cause, ReasonCode, TransitionDetail};
use gridwork_platform::auth::Caller;
use gridwork_platform::ApiError;
use gridwork_storage::entity::{
    case, case_event as case_event_row, case_report, centre as centre_row, grid_shape, report, supervision, unit,
};
use sea_orm::sea_query::{Expr, SimpleExpr};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DatabaseTransaction, EntityTrait, IntoActiveModel, Order, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, TransactionTrait, Value,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::repo::{self, Extra, Recorded};
use crate::State;

/// mediation's errors, mapped exhaustively to statuses and stable codes.
#[derive(Debug, thiserror::Error)]
pub enum MediationError {
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error(transparent)]
    Clock(#[from] ClockError),
    #[error("the case changed since version {expected} (now {actual})")]
    StaleVersion { expected: i64, actual: i64 },
    #[error("the case was changed concurrently")]
    Concurrent,
    #[error("the case is claimed by {0}")]
    LeaseHeld(String),
    #[error("{0}")]
    BadRequest(ApiError),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("database: {0}")]
    Db(#[from] sea_orm::DbErr),
    #[error("{0}")]
    Internal(String),
}

impl MediationError {
    fn api(&self) -> ApiError {
        match self {
            MediationError::Transition(e) => match e {
                TransitionError::IllegalTransition { state, action } => ApiError::conflict(
                    "illegal_transition",
                    e.to_string(),
                    format!("案件当前状态为 {state}，不能执行 {action}"),
                ),
                TransitionError::ClaimedByAnother { .. } => {
                    ApiError::conflict("claimed_by_another", e.to_string(), "案件已被他人签收")
                }
                TransitionError::CallbackAlreadyRecorded => {
                    ApiError::conflict("callback_already_recorded", e.to_string(), "已记录回访")
                }
                TransitionError::MissingReason(_) => {
                    ApiError::bad_request("missing_reason", e.to_string(), "请填写原因").with_field("reason")
                }
                TransitionError::Invalid(_) => ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_action",
                    e.to_string(),
                    "该操作的参数不适用于此案件",
                ),
                TransitionError::Text(v) => v.clone().into(),
            },
            MediationError::Clock(e) => {
                ApiError::bad_request("invalid_extension", e.to_string(), "延期时长无效").with_field("extension")
            }
            MediationError::StaleVersion { .. } => {
                ApiError::conflict("stale_version", self.to_string(), "案件已被更新，请刷新后重试")
                    .with_field("version")
            }
            MediationError::LeaseHeld(_) => {
                ApiError::conflict("claimed_by_another", self.to_string(), "案件已被他人签收")
            }
            MediationError::Concurrent => {
                ApiError::conflict("concurrent_update", self.to_string(), "案件正被他人处理，请刷新后重试")
            }
            MediationError::BadRequest(e) => e.clone(),
            MediationError::NotFound(what) => ApiError::not_found(what),
            MediationError::Forbidden(why) => ApiError::forbidden(*why),
            MediationError::Db(e) => ApiError::unavailable(e),
            MediationError::Internal(e) => ApiError::internal(e),
        }
    }
}

impl ResponseError for MediationError {
    fn status_code(&self) -> StatusCode {
        self.api().status
    }
    fn error_response(&self) -> HttpResponse {
        self.api().error_response()
    }
}

fn bad(code: &'static str, field: &str, en: String, zh: &str) -> MediationError {
    MediationError::BadRequest(ApiError::bad_request(code, en, zh).with_field(field))
}

pub(crate) fn require_queue_worker(a: &Actor) -> Result<(), MediationError> {
    if !a.works_queues() {
        return Err(MediationError::Forbidden("only dispatchers and mediators work case queues"));
    }
    if a.role == Role::Mediator && a.channel.as_deref().and_then(Channel::parse).is_none() {
        return Err(MediationError::Forbidden("a mediator's token must name their channel"));
    }
    if a.role != Role::Admin && a.scope.is_empty() {
        return Err(MediationError::Forbidden("your token has no scope"));
    }
    Ok(())
}

/// The channels of a stored case: its lead and the assisting ones.
fn channels_of(m: &case::Model) -> impl Iterator<Item = &str> {
    m.channels()
}

/// Whether `actor` may see the case (the domain's one rule).
pub(crate) fn may_see(actor: &Actor, m: &case::Model) -> bool {
    actor.may_see_case(&m.centre, channels_of(m))
}

/// Whether `actor` may act on the case as stored in `m`: they see it
/// (else 404, as if it did not exist) and, a mediator, their channel leads
/// it. Judged on the row read under the case's lock, so a transfer that
/// commits in between cannot leave the old centre or channel acting.
pub(crate) fn may_act(actor: &Actor, m: &case::Model) -> Result<(), MediationError> {
    if !may_see(actor, m) {
        return Err(MediationError::NotFound("case"));
    }
    if actor.role == Role::Mediator && actor.channel.as_deref() != Some(m.channel.as_str()) {
        return Err(MediationError::Forbidden("an assisting channel sees the case; only its lead channel acts on it"));
    }
    Ok(())
}

#[derive(Debug, Serialize)]
pub struct CaseView {
    pub id: String,
    pub report_id: String,
    pub centre: String,
    pub channel: String,
    pub channel_zh: &'static str,
    /// Channels assisting in joint handling (联合调处).
    pub joint: Vec<String>,
    pub priority: i32,
    pub category: String,
    pub urgency: String,
    pub hierarchy: serde_json::Value,
    pub status: String,
    pub claimed_by: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    pub suspended_from: Option<String>,
    pub outcome: Option<String>,
    pub satisfaction: Option<String>,
    pub petition_class: Option<String>,
    pub routing_rule: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub accept_due_at: Option<DateTime<Utc>>,
    pub extended: bool,
    /// The close-out (or, for an unaccepted petition, acceptance) deadline
    /// has passed while the case is still being worked.
    pub overdue: bool,
    pub version: i64,
}

fn overdue(m: &case::Model, now: DateTime<Utc>) -> bool {
    let running = CaseStatus::parse(&m.status).is_some_and(|s| s.clock_runs());
    running && (m.due_at <= now || (m.status == "created" && m.accept_due_at.is_some_and(|d| d <= now)))
}

pub(crate) fn view(m: case::Model, now: DateTime<Utc>) -> CaseView {
    CaseView {
        overdue: overdue(&m, now),
        channel_zh: Channel::parse(&m.channel).map(|c| c.name_zh()).unwrap_or(""),
        joint: m.joint.split(',').filter(|c| !c.is_empty()).map(str::to_owned).collect(),
        hierarchy: serde_json::json!({
            "grid": m.grid, "community": m.community, "street": m.street,
            "county": m.county, "city": m.city, "province": m.province,
        }),
        id: m.id,
        report_id: m.report_id,
        centre: m.centre,
        channel: m.channel,
        priority: m.priority,
        category: m.category,
        urgency: m.urgency,
        status: m.status,
        claimed_by: m.claimed_by,
        lease_until: m.lease_until,
        suspended_from: m.suspended_from,
        outcome: m.outcome,
        satisfaction: m.satisfaction,
        petition_class: m.petition_class,
        routing_rule: m.routing_rule,
        created_at: m.created_at,
        updated_at: m.updated_at,
        due_at: m.due_at,
        accept_due_at: m.accept_due_at,
        extended: m.extended,
        version: m.version,
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// A centre code (or any code under the caller's scope): cases of the
    /// centres under it.
    #[serde(default)]
    pub centre: Option<String>,
    #[serde(default)]
    pub channel: Option<String>,
    /// One status or several, comma-separated; `open` for every open one.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub priority: Option<i32>,
    #[serde(default)]
    pub overdue: Option<bool>,
    /// A grid, community or street code: cases located under it.
    #[serde(default)]
    pub grid: Option<String>,
    /// A category code or a dotted prefix (`dispute`).
    #[serde(default)]
    pub category: Option<String>,
    /// Words of the report's address or description, or of the category.
    #[serde(default)]
    pub text: Option<String>,
    /// `urgent` (default: overdue first, then priority, then deadline),
    /// `due`, `priority`, `created` (newest first), `updated` (latest first).
    #[serde(default)]
    pub sort: Option<String>,
    #[serde(default)]
    pub limit: Option<u64>,
    #[serde(default)]
    pub cursor: Option<String>,
}

/// One key of an ordering and its value in a cursor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
enum Key {
    Int(i64),
    Text(String),
}

#[derive(Debug, Serialize, Deserialize)]
struct Cursor {
    /// The sort the cursor belongs to.
    s: String,
    /// The instant "overdue" was judged at on the first page, kept so that
    /// pages do not shift under the reader.
    t: i64,
    k: Vec<Key>,
}

/// The orderings: (name, keys: expression, direction, value of a row).
struct Sort {
    name: &'static str,
    keys: Vec<(SimpleExpr, Order)>,
}

/// A time as a key: nanoseconds, so a stored value compares equal to
/// itself whatever precision the database keeps.
fn ts_key(t: DateTime<Utc>) -> Key {
    Key::Int(t.timestamp_nanos_opt().unwrap_or(i64::MAX))
}

fn sort_of(name: &str, at: DateTime<Utc>) -> Result<Sort, MediationError> {
    let running = CaseStatus::RUNNING.map(CaseStatus::as_str);
    let overdue_rank =
        Expr::case(Condition::all().add(case::Column::Status.is_in(running)).add(case::Column::DueAt.lte(at)), 0)
            .finally(1);
    let col = |c: case::Column| -> SimpleExpr { Expr::col((case::Entity, c)).into() };
    Ok(match name {
        "urgent" => Sort {
            name: "urgent",
            keys: vec![
                (overdue_rank.into(), Order::Asc),
                (col(case::Column::Priority), Order::Asc),
                (col(case::Column::DueAt), Order::Asc),
                (col(case::Column::Id), Order::Asc),
            ],
        },
        "due" => Sort {
            name: "due",
            keys: vec![(col(case::Column::DueAt), Order::Asc), (col(case::Column::Id), Order::Asc)],
        },
        "priority" => Sort {
            name: "priority",
            keys: vec![
                (col(case::Column::Priority), Order::Asc),
                (col(case::Column::CreatedAt), Order::Asc),
                (col(case::Column::Id), Order::Asc),
            ],
        },
        "created" => Sort {
            name: "created",
            keys: vec![(col(case::Column::CreatedAt), Order::Desc), (col(case::Column::Id), Order::Desc)],
        },
        "updated" => Sort {
            name: "updated",
            keys: vec![(col(case::Column::UpdatedAt), Order::Desc), (col(case::Column::Id), Order::Desc)],
        },
        other => {
            return Err(bad(
                "invalid_sort",
                "sort",
                format!("unknown sort {other:?}: urgent, due, priority, created or updated"),
                "未知的排序方式",
            ))
        }
    })
}

/// The key values of `m` under `sort`.
fn keys_of(sort: &str, m: &case::Model, at: DateTime<Utc>) -> Vec<Key> {
    let id = Key::Text(m.id.clone());
    match sort {
        "urgent" => {
            vec![Key::Int(if overdue_at(m, at) { 0 } else { 1 }), Key::Int(i64::from(m.priority)), ts_key(m.due_at), id]
        }
        "due" => vec![ts_key(m.due_at), id],
        "priority" => vec![Key::Int(i64::from(m.priority)), ts_key(m.created_at), id],
        "created" => vec![ts_key(m.created_at), id],
        _ => vec![ts_key(m.updated_at), id],
    }
}

/// The close-out overdue judgement the `urgent` sort uses.
fn overdue_at(m: &case::Model, at: DateTime<Utc>) -> bool {
    CaseStatus::parse(&m.status).is_some_and(|s| s.clock_runs()) && m.due_at <= at
}

/// A cursor value as a database value of the key's column.
fn db_value(sort: &str, i: usize, k: &Key) -> Option<Value> {
    let time_key = matches!((sort, i), ("urgent", 2) | ("due", 0) | ("priority", 1) | ("created", 0) | ("updated", 0));
    match k {
        Key::Int(v) if time_key => Some(Value::from(DateTime::from_timestamp_nanos(*v))),
        Key::Int(v) => Some(Value::from(*v)),
        Key::Text(t) => Some(Value::from(t.clone())),
    }
}

/// Rows strictly after `values` in the order `keys`.
fn after(keys: &[(SimpleExpr, Order)], values: &[Value]) -> Condition {
    let mut any = Condition::any();
    for i in 0..keys.len() {
        let mut all = Condition::all();
        for j in 0..i {
            all = all.add(Expr::expr(keys[j].0.clone()).eq(values[j].clone()));
        }
        let (e, o) = &keys[i];
        all = all.add(match o {
            Order::Desc => Expr::expr(e.clone()).lt(values[i].clone()),
            _ => Expr::expr(e.clone()).gt(values[i].clone()),
        });
        any = any.add(all);
    }
    any
}

fn invalid_cursor() -> MediationError {
    bad("invalid_cursor", "cursor", "the cursor is not valid for this query".into(), "分页游标无效")
}

/// `GET /v1/cases`: the queues the caller may see, with filters, sort and
/// keyset pagination.
pub async fn list(
    state: web::Data<State>,
    caller: Caller,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, MediationError> {
    let actor = caller.0;
    require_queue_worker(&actor)?;
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    let mut query = case::Entity::find();
    let code_prefix = |code: &str, field: &str| {
        codes::significant_prefix(code).map(str::to_owned).map_err(|_| {
            bad("invalid_filter", field, format!("{code:?} is not an administrative code"), "行政区划代码无效")
        })
    };
    match &q.centre {
        Some(centre) => {
            let prefix = code_prefix(centre, "centre")?;
            if !actor.covers(centre) {
                return Err(MediationError::Forbidden("that centre is outside your scope"));
            }
            query = query.filter(case::Column::Centre.starts_with(prefix));
        }
        None if !actor.scope.is_empty() => {
            let prefix = codes::significant_prefix(&actor.scope)
                .map_err(|_| MediationError::Forbidden("your token's scope is not an administrative code"))?;
            query = query.filter(case::Column::Centre.starts_with(prefix));
        }
        None => {}
    }
    if let (Role::Mediator, Some(mine)) = (actor.role, &actor.channel) {
        query = query.filter(
            Condition::any()
                .add(case::Column::Channel.eq(mine.as_str()))
                // No channel's name is part of another's, so a substring
                // match on the comma-separated list is exact.
                .add(case::Column::Joint.contains(mine.as_str())),
        );
    }
    if let Some(ch) = &q.channel {
        let c = Channel::parse(ch)
            .ok_or_else(|| bad("invalid_filter", "channel", format!("unknown channel {ch:?}"), "未知的渠道"))?;
        query = query.filter(case::Column::Channel.eq(c.as_str()));
    }
    if let Some(st) = &q.status {
        let mut wanted = Vec::new();
        for s in st.split(',') {
            if s == "open" {
                wanted.extend(CaseStatus::ALL.into_iter().filter(|s| s.is_open()));
            } else {
                wanted.push(
                    CaseStatus::parse(s).ok_or_else(|| {
                        bad("invalid_filter", "status", format!("unknown status {s:?}"), "未知的状态")
                    })?,
                );
            }
        }
        query = query.filter(case::Column::Status.is_in(wanted.into_iter().map(CaseStatus::as_str)));
    }
    if let Some(p) = q.priority {
        query = query.filter(case::Column::Priority.eq(p));
    }
    if let Some(g) = &q.grid {
        let prefix = code_prefix(g, "grid")?;
        query = query.filter(case::Column::Grid.starts_with(prefix));
    }
    if let Some(cat) = &q.category {
        query = query.filter(
            Condition::any()
                .add(case::Column::Category.eq(cat.as_str()))
                .add(case::Column::Category.starts_with(format!("{cat}."))),
        );
    }
    if let Some(text) = &q.text {
        for word in text.split_whitespace() {
            query = query.filter(case::Column::Search.contains(word.to_lowercase()));
        }
    }
    let mut now = Utc::now();
    let sort_name = q.sort.as_deref().unwrap_or("urgent");
    let mut sort = sort_of(sort_name, now)?;
    if let Some(c) = &q.cursor {
        let raw = URL_SAFE_NO_PAD.decode(c).map_err(|_| invalid_cursor())?;
        let cur: Cursor = serde_json::from_slice(&raw).map_err(|_| invalid_cursor())?;
        if cur.s != sort.name || cur.k.len() != sort.keys.len() {
            return Err(invalid_cursor());
        }
        now = DateTime::from_timestamp_micros(cur.t).ok_or_else(invalid_cursor)?;
        sort = sort_of(sort_name, now)?;
        let values = cur
            .k
            .iter()
            .enumerate()
            .map(|(i, k)| db_value(sort.name, i, k))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(invalid_cursor)?;
        query = query.filter(after(&sort.keys, &values));
    }
    if let Some(overdue) = q.overdue {
        let running = case::Column::Status.is_in(CaseStatus::RUNNING.map(CaseStatus::as_str));
        let late = Condition::any()
            .add(case::Column::DueAt.lte(now))
            .add(Condition::all().add(case::Column::Status.eq("created")).add(case::Column::AcceptDueAt.lte(now)));
        let cond = Condition::all().add(running).add(late);
        query = query.filter(if overdue { cond } else { cond.not() });
    }
    for (e, o) in &sort.keys {
        query = query.order_by(e.clone(), o.clone());
    }
    let rows = query.limit(limit).all(&state.db).await?;
    let next = if rows.len() as u64 == limit {
        rows.last().and_then(|m| {
            let cur = Cursor { s: sort.name.to_owned(), t: now.timestamp_micros(), k: keys_of(sort.name, m, now) };
            serde_json::to_vec(&cur).ok().map(|b| URL_SAFE_NO_PAD.encode(b))
        })
    } else {
        None
    };
    let items: Vec<CaseView> = rows.into_iter().map(|m| view(m, Utc::now())).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({"items": items, "next_cursor": next})))
}

async fn load_visible(state: &State, actor: &Actor, id: &str) -> Result<case::Model, MediationError> {
    let m = case::Entity::find_by_id(id.to_owned()).one(&state.db).await?.ok_or(MediationError::NotFound("case"))?;
    if !may_see(actor, &m) {
        // 404, not 403: do not reveal that the case exists.
        return Err(MediationError::NotFound("case"));
    }
    Ok(m)
}

fn report_json(state: &State, r: report::Model) -> serde_json::Value {
    let party_count = r.party_count();
    let parties = crate::pii::masked(state, &r);
    serde_json::json!({
        "parties": parties,
        "id": r.id, "reporter": r.reporter, "occurred_at": r.occurred_at, "received_at": r.received_at,
        "description": r.description, "address": r.address,
        "location": {"lat": r.lat, "lon": r.lon, "crs": r.crs},
        "party_count": party_count,
    })
}

/// `GET /v1/cases/{id}`: the case, its report, linked reports, supervision
/// notices and its timeline.
pub async fn detail(
    state: web::Data<State>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, MediationError> {
    let actor = caller.0;
    require_queue_worker(&actor)?;
    let id = path.into_inner().to_string();
    let m = load_visible(&state, &actor, &id).await?;
    let timeline = case_event_row::Entity::find()
        .filter(case_event_row::Column::CaseId.eq(id.as_str()))
        .order_by_asc(case_event_row::Column::Id)
        .all(&state.db)
        .await?;
    let rep = report::Entity::find_by_id(m.report_id.clone()).one(&state.db).await?;
    let links = case_report::Entity::find()
        .filter(case_report::Column::CaseId.eq(id.as_str()))
        .order_by_asc(case_report::Column::LinkedAt)
        .all(&state.db)
        .await?;
    let mut linked = Vec::with_capacity(links.len());
    for l in links {
        let r = report::Entity::find_by_id(l.report_id.clone()).one(&state.db).await?;
        linked.push(serde_json::json!({
            "report_id": l.report_id, "linked_at": l.linked_at, "linked_by": l.linked_by,
            "distance_m": l.distance_m, "split_case_id": l.split_case_id,
            "report": r.map(|r| report_json(&state, r)),
        }));
    }
    let notices: Vec<serde_json::Value> = supervision::Entity::find()
        .filter(supervision::Column::CaseId.eq(id.as_str()))
        .order_by_asc(supervision::Column::RaisedAt)
        .all(&state.db)
        .await?
        .into_iter()
        .map(|s| serde_json::json!({"clock": s.clock, "threshold": s.threshold, "due_at": s.due_at, "raised_at": s.raised_at}))
        .collect();
    let timeline: Vec<serde_json::Value> = timeline
        .into_iter()
        .map(|e| {
            serde_json::json!({
                "seq": e.id, "event_id": e.event_id, "kind": e.kind, "status": e.status, "actor": e.actor_id,
                "actor_role": e.actor_role, "reason": repo::timeline_reason(&state.keyring, &e), "at": e.at,
                "version": e.version,
                "centre": e.centre, "channel": e.channel,
            })
        })
        .collect();
    let mut body = serde_json::to_value(view(m, Utc::now())).map_err(|e| MediationError::Internal(e.to_string()))?;
    body["report"] = rep.map(|r| report_json(&state, r)).unwrap_or(serde_json::Value::Null);
    body["linked_reports"] = serde_json::Value::Array(linked);
    body["supervision"] = serde_json::Value::Array(notices);
    body["timeline"] = serde_json::Value::Array(timeline);
    Ok(HttpResponse::Ok().json(body))
}

/// Body of `POST /v1/cases/{id}/{action}` (all optional; which are needed
/// depends on the action).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionIn {
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub outcome: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default)]
    pub satisfaction: Option<String>,
    /// transfer: the channel and/or centre to move to.
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default)]
    pub centre: Option<String>,
    /// joint: the assisting channels.
    #[serde(default)]
    pub channels: Option<Vec<String>>,
    /// extend: e.g. "30 days".
    #[serde(default)]
    pub extension: Option<String>,
    /// split: the linked report to split off.
    #[serde(default)]
    pub report_id: Option<Uuid>,
    /// The version the caller last saw; a stale one gets 409.
    #[serde(default)]
    pub version: Option<i64>,
}

const ACTIONS: &str = "accept, reject, claim, release, start, transfer, joint, escalate, suspend, resume, resolve, \
                       verify, close, reopen, callback, request_review, extend or split";

fn channel_field(field: &str, v: &str) -> Result<Channel, MediationError> {
    Channel::parse(v).ok_or_else(|| {
        bad(
            "invalid_field",
            field,
            format!("unknown channel {v:?}; expected one of {}", Channel::ALL.map(|c| c.as_str()).join(", ")),
            "未知的渠道",
        )
    })
}

fn parse_action(state: &State, name: &str, body: &ActionIn, case: &Case) -> Result<CaseAction, MediationError> {
    let reason = || body.reason.clone().unwrap_or_default();
    Ok(match name {
        "accept" => CaseAction::Accept,
        "reject" => CaseAction::Reject { reason: reason() },
        "claim" => CaseAction::Claim,
        "release" => CaseAction::Release,
        "start" => CaseAction::Start,
        "transfer" => CaseAction::Transfer {
            channel: body.channel.as_deref().map(|c| channel_field("channel", c)).transpose()?,
            centre: body.centre.clone(),
            reason: reason(),
        },
        "joint" => CaseAction::Joint {
            channels: body
                .channels
                .as_deref()
                .ok_or_else(|| {
                    bad("missing_field", "channels", "joint needs the assisting channels".into(), "请填写协办渠道")
                })?
                .iter()
                .map(|c| channel_field("channels", c))
                .collect::<Result<_, _>>()?,
            reason: reason(),
        },
        "escalate" => CaseAction::Escalate { reason: reason() },
        "suspend" => CaseAction::Suspend { reason: reason() },
        "resume" => CaseAction::Resume,
        "resolve" => {
            let o = body.outcome.as_deref().ok_or_else(|| {
                bad(
                    "missing_field",
                    "outcome",
                    "resolve needs an outcome: mediated_agreement, not_agreed, referred_to_litigation, withdrawn or handled".into(),
                    "办结需要填写结果",
                )
            })?;
            let outcome = Outcome::parse(o)
                .ok_or_else(|| bad("invalid_field", "outcome", format!("unknown outcome {o:?}"), "未知的办理结果"))?;
            CaseAction::Resolve { outcome, note: body.note.clone() }
        }
        "verify" => CaseAction::Verify,
        "close" => CaseAction::Close,
        "reopen" => CaseAction::Reopen { reason: reason() },
        "request_review" => CaseAction::RequestReview { reason: reason() },
        "callback" => {
            let s = body.satisfaction.as_deref().ok_or_else(|| {
                bad(
                    "missing_field",
                    "satisfaction",
                    "callback needs satisfaction: satisfied, basically_satisfied, unsatisfied or unanswered".into(),
                    "回访需要填写满意度",
                )
            })?;
            let satisfaction = Satisfaction::parse(s).ok_or_else(|| {
                bad("invalid_field", "satisfaction", format!("unknown satisfaction {s:?}"), "未知的满意度")
            })?;
            CaseAction::Callback { satisfaction }
        }
        "extend" => {
            let text = body.extension.as_deref().ok_or_else(|| {
                bad(
                    "missing_field",
                    "extension",
                    "extend needs an extension, e.g. \"30 days\"".into(),
                    "请填写延期时长",
                )
            })?;
            let span: Span = text.parse()?;
            CaseAction::Extend { due_at: state.clocks.extended(case, span)?, reason: reason() }
        }
        other => {
            return Err(MediationError::BadRequest(ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_action",
                format!("unknown action {other:?}: {ACTIONS}"),
                "未知的操作",
            )))
        }
    })
}

fn parse_body(body: &web::Bytes) -> Result<ActionIn, MediationError> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(ActionIn::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        MediationError::BadRequest(ApiError::bad_request(
            "invalid_body",
            format!("invalid request body: {e}"),
            "请求体格式错误",
        ))
    })
}

/// `POST /v1/cases/{id}/{action}`.
pub async fn act(
    state: web::Data<State>,
    caller: Caller,
    path: web::Path<(Uuid, String)>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, MediationError> {
    let actor = caller.0;
    require_queue_worker(&actor)?;
    let (id, action_name) = path.into_inner();
    let id = id.to_string();
    if !ACTIONS.split([',', ' ']).any(|a| a == action_name) {
        return Err(MediationError::BadRequest(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_action",
            format!("unknown action {action_name:?}: {ACTIONS}"),
            "未知的操作",
        )));
    }
    // A first look, to turn strangers away before any lock or lease; the
    // judgement that counts is made again under the row lock.
    let seen = load_visible(&state, &actor, &id).await?;
    may_act(&actor, &seen)?;
    // Only now is the body read: a stranger gets 401/403/404 whatever it
    // sends, never a 400 or 413 that would tell the case exists (ADR 0033).
    let input = parse_body(&crate::tasks::read_body(&req, body).await?)?;
    if action_name == "split" {
        let (m, now) = split(&state, &actor, &id, &input).await?;
        return Ok(HttpResponse::Ok().json(view(m, now)));
    }
    if action_name == "transfer" {
        if let Some(centre) = &input.centre {
            check_centre(&state, &actor, &seen, centre).await?;
        }
    }

    // The shared lease in the cache turns away a rival claim at once; the
    // database row (lock + lease_until) stays the judge, so a cache that is
    // down or flushed only costs speed.
    let lease_key = format!("mediation:lease:{id}");
    let lease_ttl = state.lease.to_std().unwrap_or(std::time::Duration::from_secs(1800));
    let mut took_lease = false;
    if action_name == "claim" {
        match state.cache.set_nx(&lease_key, actor.id.as_bytes(), lease_ttl).await {
            Ok(true) => took_lease = true,
            Ok(false) => {
                if let Ok(Some(holder)) = state.cache.get(&lease_key).await {
                    if holder != actor.id.as_bytes() {
                        return Err(MediationError::LeaseHeld(String::from_utf8_lossy(&holder).into_owned()));
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "claim lease not checked in the cache"),
        }
    }
    let result = transition(&state, &actor, &id, &action_name, &input).await;
    match (&result, action_name.as_str()) {
        (Err(_), _) if took_lease => {
            let _ = state.cache.del(&lease_key).await;
        }
        (Ok(_), "claim") if !took_lease => {
            // Renewed by its holder.
            let _ = state.cache.set(&lease_key, actor.id.as_bytes(), lease_ttl).await;
        }
        (Ok(_), "release" | "resolve" | "reject" | "transfer" | "escalate") => {
            let _ = state.cache.del(&lease_key).await;
        }
        _ => {}
    }
    let (updated, now) = result?;
    Ok(HttpResponse::Ok().json(view(updated, now)))
}

/// A transfer's target centre must exist and lie in the case's county
/// (the county centre included); only an admin moves cases across counties.
async fn check_centre(state: &State, actor: &Actor, case: &case::Model, centre: &str) -> Result<(), MediationError> {
    let unknown = || bad("unknown_centre", "centre", format!("no centre {centre:?}"), "综治中心不存在");
    codes::level_of(centre).map_err(|_| unknown())?;
    // Centres are listed, or known from the grids they own, or are counties.
    let known = centre_row::Entity::find_by_id(centre.to_owned()).one(&state.db).await?.is_some()
        || grid_shape::Entity::find().filter(grid_shape::Column::Centre.eq(centre)).count(&state.db).await? > 0
        || (centre.len() == 6 && unit::Entity::find_by_id(centre.to_owned()).one(&state.db).await?.is_some());
    if !known {
        return Err(unknown());
    }
    if actor.role != Role::Admin && !centre.starts_with(&case.county) {
        return Err(bad(
            "invalid_field",
            "centre",
            format!("{centre} is outside county {}; escalate to the county centre instead", case.county),
            "只能转至本县（市、区）的综治中心",
        ));
    }
    Ok(())
}

/// Applies the action to the case in one transaction: row lock, version
/// check, state machine, clocks, optimistic update, lifecycle events into
/// the outbox; then the live stream hears of it.
async fn transition(
    state: &State,
    actor: &Actor,
    id: &str,
    action_name: &str,
    input: &ActionIn,
) -> Result<(case::Model, DateTime<Utc>), MediationError> {
    let txn = state.db.begin().await?;
    repo::lock_case(&txn, id).await?;
    let row = case::Entity::find_by_id(id.to_owned()).one(&txn).await?.ok_or(MediationError::NotFound("case"))?;
    may_act(actor, &row)?;
    if let Some(expected) = input.version {
        if expected != row.version {
            return Err(MediationError::StaleVersion { expected, actual: row.version });
        }
    }
    let mut c = repo::to_domain(&row).map_err(MediationError::Internal)?;
    let action = parse_action(state, action_name, input, &c)?;
    let now = Utc::now();
    let steps = c.apply(&action, actor, now, state.lease)?;
    if steps.iter().any(|s| s.kind == CaseEventKind::Accepted) {
        state.clocks.on_accept(&mut c, now);
    }
    let extra = Extra::of(&row);
    let updated = repo::to_model(&c, &extra, state.near_due_share, now);
    save(&txn, &updated, row.version).await?;
    let detail = TransitionDetail {
        // The actor's words: kept sealed with the event, never published.
        stated: action.reason().unwrap_or_default().to_owned(),
        routing_rule: row.routing_rule.clone(),
        from_centre: if row.centre != c.centre { row.centre.clone() } else { String::new() },
        from_channel: if row.channel != c.channel.as_str() { row.channel.clone() } else { String::new() },
        ..Default::default()
    };
    let mut live = Vec::with_capacity(steps.len());
    for step in &steps {
        live.push(repo::record(&txn, state, &c, *step, Cause::Actor(actor), &detail, now).await?);
    }
    if matches!(c.status, CaseStatus::Closed | CaseStatus::Rejected) {
        // The case's open tasks end with it, in the same transaction.
        let this_case = sea_orm::Condition::all().add(gridwork_storage::entity::task::Column::CaseId.eq(id));
        crate::tasks::sweep(&txn, this_case, now).await?;
    }
    txn.commit().await?;
    state.wake.notify_one();
    tracing::info!(case = %id, action = action.name(), actor = %actor.id, version = c.version, "case transition");
    publish_all(state, &live, &updated, now).await;
    Ok((updated, now))
}

/// Writes every mutable column of `m`, if the row is still at `version`.
async fn save(txn: &DatabaseTransaction, m: &case::Model, version: i64) -> Result<(), MediationError> {
    let mut am = m.clone().into_active_model().reset_all();
    am.id = sea_orm::ActiveValue::Unchanged(m.id.clone());
    let res = case::Entity::update_many()
        .set(am)
        .filter(case::Column::Id.eq(m.id.as_str()))
        .filter(case::Column::Version.eq(version))
        .exec(txn)
        .await?;
    if res.rows_affected != 1 {
        return Err(MediationError::Concurrent);
    }
    Ok(())
}

async fn publish_all(state: &State, live: &[Recorded], m: &case::Model, now: DateTime<Utc>) {
    for rec in live {
        crate::live::publish(state, rec, m, now).await;
    }
}

/// `POST /v1/cases/{id}/split`: a report wrongly linked to this case
/// becomes a case of its own, in the same place, routed afresh.
async fn split(
    state: &State,
    actor: &Actor,
    id: &str,
    input: &ActionIn,
) -> Result<(case::Model, DateTime<Utc>), MediationError> {
    let report_id = input.report_id.ok_or_else(|| {
        bad("missing_field", "report_id", "split needs the linked report_id".into(), "请填写报告编号")
    })?;
    let reason = input.reason.clone().unwrap_or_default();
    gridwork_domain::case::check_reason(&reason).map_err(TransitionError::from)?;
    if reason.trim().is_empty() {
        return Err(TransitionError::MissingReason("a split needs a reason").into());
    }
    let txn = state.db.begin().await?;
    repo::lock_case(&txn, id).await?;
    let row = case::Entity::find_by_id(id.to_owned()).one(&txn).await?.ok_or(MediationError::NotFound("case"))?;
    may_act(actor, &row)?;
    if let Some(expected) = input.version {
        if expected != row.version {
            return Err(MediationError::StaleVersion { expected, actual: row.version });
        }
    }
    let link = case_report::Entity::find_by_id(report_id.to_string())
        .one(&txn)
        .await?
        .filter(|l| l.case_id == id && l.split_case_id.is_none())
        .ok_or_else(|| {
            bad(
                "not_linked",
                "report_id",
                format!("report {report_id} is not linked to this case"),
                "该报告未关联到此案件",
            )
        })?;
    let now = Utc::now();
    let mut old = repo::to_domain(&row).map_err(MediationError::Internal)?;
    let routing = state.routing().map_err(MediationError::Internal)?;
    let route = routing
        .route(&old.category, old.urgency, &old.hierarchy)
        .ok_or_else(|| MediationError::Internal(format!("no routing rule matches {}", old.category)))?;
    let clocks = state.clocks.open(&route, false, now);
    let new = Case::new(NewCase {
        id: Uuid::now_v7(),
        report_id,
        centre: row.centre.clone(),
        channel: route.channel,
        priority: route.priority,
        category: old.category.clone(),
        urgency: old.urgency,
        hierarchy: old.hierarchy.clone(),
        petition: None,
        created_at: now,
        due_at: clocks.due_at,
        accept_due_at: None,
    });
    let rep = report::Entity::find_by_id(report_id.to_string()).one(&txn).await?;
    // Where the report is, in WGS-84 like every case (phones may send GCJ-02).
    let at = rep.as_ref().map(|r| match r.crs.as_str() {
        "gcj02" => gridwork_geoindex::gcj02_to_wgs84(r.lon, r.lat),
        _ => (r.lon, r.lat),
    });
    let extra = Extra {
        routing_rule: route.rule_id.clone(),
        lat: at.map(|(_, lat)| lat),
        lon: at.map(|(lon, _)| lon),
        occurred_at: rep.as_ref().map(|r| r.occurred_at),
        search: format!(
            "{} {}",
            new.category,
            rep.as_ref()
                .map(|r| format!("{} {}", r.address.as_deref().unwrap_or(""), r.description))
                .unwrap_or_default()
        )
        .to_lowercase(),
    };
    let new_model = repo::to_model(&new, &extra, state.near_due_share, now);
    new_model.clone().into_active_model().reset_all().insert(&txn).await?;
    case_report::Entity::update_many()
        .col_expr(case_report::Column::SplitCaseId, Expr::value(new.id.to_string()))
        .filter(case_report::Column::ReportId.eq(link.report_id.as_str()))
        .exec(&txn)
        .await?;
    let step = old.note(CaseEventKind::ReportSplit);
    let updated = repo::to_model(&old, &Extra::of(&row), state.near_due_share, now);
    save(&txn, &updated, row.version).await?;
    let split_detail = TransitionDetail {
        stated: reason.clone(),
        routing_rule: row.routing_rule.clone(),
        linked_report_id: report_id.to_string(),
        split_case_id: new.id.to_string(),
        ..Default::default()
    };
    let a = repo::record(&txn, state, &old, step, Cause::Actor(actor), &split_detail, now).await?;
    let created_detail = TransitionDetail {
        // The dispatcher's reason stays with the split event of the old case.
        reason: format!("split from case {id}"),
        reason_code: Some(ReasonCode::Split),
        stated: reason.clone(),
        routing_rule: route.rule_id.clone(),
        routing_version: route.rules_version,
        ..Default::default()
    };
    let created = Step { kind: CaseEventKind::Created, status: CaseStatus::Created, version: 1 };
    let b = repo::record(&txn, state, &new, created, Cause::Actor(actor), &created_detail, now).await?;
    txn.commit().await?;
    state.wake.notify_one();
    crate::live::publish(state, &a, &updated, now).await;
    crate::live::publish(state, &b, &new_model, now).await;
    tracing::info!(case = %id, report = %report_id, new_case = %new.id, "linked report split off");
    Ok((updated, now))
}

/// An open case of the grid worker's grid, as their phone lists it: what,
/// where in the queues, and by when; nobody's personal data.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GridCase {
    pub id: String,
    /// A category code of the taxonomy.
    pub category: String,
    #[schema(schema_with = crate::openapi::open_case_status)]
    pub status: String,
    #[schema(schema_with = crate::openapi::urgency)]
    pub urgency: String,
    /// The lead channel.
    #[schema(schema_with = crate::openapi::channel)]
    pub channel: String,
    /// The centre whose queue holds the case.
    pub centre: String,
    pub created_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    /// Past its due time.
    pub overdue: bool,
}

/// Body of `GET /v1/me/cases`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MyGridCases {
    /// The caller's grid (their scope).
    pub grid: String,
    /// At most 200, most urgent first.
    pub items: Vec<GridCase>,
}

/// `GET /v1/me/cases`: for a grid worker's phone, the open cases of their
/// grid — what is going on around them, without anyone's personal data —
/// most urgent first (overdue, then by due time).
#[utoipa::path(get, path = "/v1/me/cases", tag = "phone",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The open cases of the caller's grid", body = MyGridCases),
        (status = 401, description = "No or bad token", body = ApiError),
        (status = 403, description = "Not a grid worker", body = ApiError),
        (status = 503, description = "Storage unavailable; retry", body = ApiError),
    ))]
pub async fn my_grid_cases(state: web::Data<State>, caller: Caller) -> Result<HttpResponse, MediationError> {
    let actor = caller.0;
    if actor.role != Role::GridWorker {
        return Err(MediationError::BadRequest(ApiError::forbidden("this list is a grid worker's own grid")));
    }
    let open: Vec<&str> = [
        CaseStatus::Created,
        CaseStatus::Accepted,
        CaseStatus::Claimed,
        CaseStatus::InProgress,
        CaseStatus::Suspended,
        CaseStatus::Resolved,
        CaseStatus::Verified,
    ]
    .iter()
    .map(|s| s.as_str())
    .collect();
    let rows = case::Entity::find()
        .filter(case::Column::Grid.eq(actor.scope.as_str()))
        .filter(case::Column::Status.is_in(open))
        .order_by_asc(case::Column::DueAt)
        .limit(200)
        .all(&state.db)
        .await?;
    let now = Utc::now();
    let items: Vec<GridCase> = rows
        .into_iter()
        .map(|c| GridCase {
            overdue: c.due_at < now,
            id: c.id,
            category: c.category,
            status: c.status,
            urgency: c.urgency,
            channel: c.channel,
            centre: c.centre,
            created_at: c.created_at,
            due_at: c.due_at,
        })
        .collect();
    Ok(HttpResponse::Ok().json(MyGridCases { grid: actor.scope, items }))
}
