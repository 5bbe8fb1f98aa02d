//! The dispatcher's API: queues, case detail with timeline, actions.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse, ResponseError};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use gridwork_domain::auth::Actor;
use gridwork_domain::{CaseAction, CaseStatus, Channel, Outcome, Satisfaction, TransitionError};
use gridwork_events::convert::{case_event, Cause, TransitionDetail};
use gridwork_events::{Event, Payload};
use gridwork_platform::auth::Caller;
use gridwork_platform::pipeline::emit;
use gridwork_platform::ApiError;
use gridwork_storage::entity::{case, case_event as case_event_row, report};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{repo, State, PRODUCER};

/// mediation's errors, mapped exhaustively to statuses and stable codes.
#[derive(Debug, thiserror::Error)]
pub enum MediationError {
    #[error(transparent)]
    Transition(#[from] TransitionError),
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
            },
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

fn require_queue_worker(a: &Actor) -> Result<(), MediationError> {
    if a.works_queues() {
        Ok(())
    } else {
        Err(MediationError::Forbidden("only dispatchers and mediators work case queues"))
    }
}

#[derive(Debug, Serialize)]
pub struct CaseView {
    pub id: String,
    pub report_id: String,
    pub centre: String,
    pub channel: String,
    pub channel_zh: &'static str,
    pub priority: i32,
    pub category: String,
    pub urgency: String,
    pub hierarchy: serde_json::Value,
    pub status: String,
    pub claimed_by: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    pub outcome: Option<String>,
    pub satisfaction: Option<String>,
    pub petition_class: Option<String>,
    pub routing_rule: String,
    pub created_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub overdue: bool,
    pub version: i64,
}

fn is_open(status: &str) -> bool {
    CaseStatus::parse(status).is_some_and(|s| s.is_open())
}

pub(crate) fn view(m: case::Model, now: DateTime<Utc>) -> CaseView {
    CaseView {
        overdue: is_open(&m.status) && m.due_at < now,
        channel_zh: Channel::parse(&m.channel).map(|c| c.name_zh()).unwrap_or(""),
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
        outcome: m.outcome,
        satisfaction: m.satisfaction,
        petition_class: m.petition_class,
        routing_rule: m.routing_rule,
        created_at: m.created_at,
        due_at: m.due_at,
        version: m.version,
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default)]
    pub centre: Option<String>,
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub overdue: Option<bool>,
    #[serde(default)]
    pub limit: Option<u64>,
    #[serde(default)]
    pub cursor: Option<String>,
}

fn encode_cursor(m: &case::Model) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}|{}|{}", m.priority, m.created_at.to_rfc3339(), m.id))
}

fn decode_cursor(s: &str) -> Option<(i32, DateTime<Utc>, String)> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(s).ok()?).ok()?;
    let mut it = raw.splitn(3, '|');
    let p = it.next()?.parse().ok()?;
    let t = DateTime::parse_from_rfc3339(it.next()?).ok()?.with_timezone(&Utc);
    Some((p, t, it.next()?.to_owned()))
}

/// `GET /v1/cases`: the queues the caller may see, most urgent first
/// (priority, then age), with keyset pagination.
pub async fn list(
    state: web::Data<State>,
    caller: Caller,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, MediationError> {
    let actor = caller.0;
    require_queue_worker(&actor)?;
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    let mut query = case::Entity::find();
    if let Some(centre) = &q.centre {
        if !actor.covers(centre) {
            return Err(MediationError::Forbidden("that centre is outside your scope"));
        }
        query = query.filter(case::Column::Centre.eq(centre.as_str()));
    } else if !actor.scope.is_empty() {
        let prefix = gridwork_domain::codes::significant_prefix(&actor.scope)
            .map_err(|_| MediationError::Forbidden("your token's scope is not an administrative code"))?;
        query = query.filter(case::Column::Centre.starts_with(prefix));
    } else if actor.role != gridwork_domain::auth::Role::Admin {
        return Err(MediationError::Forbidden("your token has no scope"));
    }
    if let Some(ch) = &q.channel {
        let c = Channel::parse(ch)
            .ok_or_else(|| bad("invalid_filter", "channel", format!("unknown channel {ch:?}"), "未知的渠道"))?;
        query = query.filter(case::Column::Channel.eq(c.as_str()));
    }
    if let Some(st) = &q.status {
        let s = CaseStatus::parse(st)
            .ok_or_else(|| bad("invalid_filter", "status", format!("unknown status {st:?}"), "未知的状态"))?;
        query = query.filter(case::Column::Status.eq(s.as_str()));
    }
    let now = Utc::now();
    if let Some(overdue) = q.overdue {
        let open = case::Column::Status.is_not_in([CaseStatus::Closed.as_str(), CaseStatus::Rejected.as_str()]);
        query = if overdue {
            query.filter(open).filter(case::Column::DueAt.lt(now))
        } else {
            query.filter(Condition::any().add(open.not()).add(case::Column::DueAt.gte(now)))
        };
    }
    if let Some(c) = &q.cursor {
        let (p, t, id) = decode_cursor(c)
            .ok_or_else(|| bad("invalid_cursor", "cursor", "the cursor is not valid".into(), "分页游标无效"))?;
        query = query.filter(
            Condition::any()
                .add(case::Column::Priority.gt(p))
                .add(Condition::all().add(case::Column::Priority.eq(p)).add(case::Column::CreatedAt.gt(t)))
                .add(
                    Condition::all()
                        .add(case::Column::Priority.eq(p))
                        .add(case::Column::CreatedAt.eq(t))
                        .add(case::Column::Id.gt(id)),
                ),
        );
    }
    let rows = query
        .order_by_asc(case::Column::Priority)
        .order_by_asc(case::Column::CreatedAt)
        .order_by_asc(case::Column::Id)
        .limit(limit)
        .all(&state.db)
        .await?;
    let next = if rows.len() as u64 == limit { rows.last().map(encode_cursor) } else { None };
    let items: Vec<CaseView> = rows.into_iter().map(|m| view(m, now)).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({"items": items, "next_cursor": next})))
}

async fn load_visible(state: &State, actor: &Actor, id: &str) -> Result<case::Model, MediationError> {
    let m = case::Entity::find_by_id(id.to_owned()).one(&state.db).await?.ok_or(MediationError::NotFound("case"))?;
    if !actor.covers(&m.centre) {
        // 404, not 403: do not reveal that the case exists.
        return Err(MediationError::NotFound("case"));
    }
    Ok(m)
}

/// `GET /v1/cases/{id}`: the case, its report and its timeline.
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
    let report_json = rep.map(|r| {
        let party_count = r.party_count();
        serde_json::json!({
            "id": r.id, "reporter": r.reporter, "occurred_at": r.occurred_at, "received_at": r.received_at,
            "description": r.description, "address": r.address,
            "location": {"lat": r.lat, "lon": r.lon, "crs": r.crs},
            "party_count": party_count,
        })
    });
    let timeline: Vec<serde_json::Value> = timeline
        .into_iter()
        .map(|e| {
            serde_json::json!({
                "event_id": e.event_id, "kind": e.kind, "status": e.status, "actor": e.actor_id,
                "actor_role": e.actor_role, "reason": e.reason, "at": e.at, "version": e.version,
            })
        })
        .collect();
    let mut body = serde_json::to_value(view(m, Utc::now())).map_err(|e| MediationError::Internal(e.to_string()))?;
    body["report"] = report_json.unwrap_or(serde_json::Value::Null);
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
    /// The version the caller last saw; a stale one gets 409.
    #[serde(default)]
    pub version: Option<i64>,
}

fn parse_action(name: &str, body: &ActionIn) -> Result<CaseAction, MediationError> {
    Ok(match name {
        "accept" => CaseAction::Accept,
        "reject" => CaseAction::Reject { reason: body.reason.clone().unwrap_or_default() },
        "claim" => CaseAction::Claim,
        "release" => CaseAction::Release,
        "start" => CaseAction::Start,
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
        "callback" => {
            let s = body.satisfaction.as_deref().ok_or_else(|| {
                bad(
                    "missing_field",
                    "satisfaction",
                    "callback needs satisfaction: satisfied, basically_satisfied or unsatisfied".into(),
                    "回访需要填写满意度",
                )
            })?;
            let satisfaction = Satisfaction::parse(s).ok_or_else(|| {
                bad("invalid_field", "satisfaction", format!("unknown satisfaction {s:?}"), "未知的满意度")
            })?;
            CaseAction::Callback { satisfaction }
        }
        other => {
            return Err(MediationError::BadRequest(ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_action",
                format!(
                "unknown action {other:?}: accept, reject, claim, release, start, resolve, verify, close or callback"
            ),
                "未知的操作",
            )))
        }
    })
}

/// `POST /v1/cases/{id}/{action}`.
pub async fn act(
    state: web::Data<State>,
    caller: Caller,
    path: web::Path<(Uuid, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, MediationError> {
    let actor = caller.0;
    require_queue_worker(&actor)?;
    let (id, action_name) = path.into_inner();
    let input: ActionIn = if body.iter().all(|b| b.is_ascii_whitespace()) {
        ActionIn::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            MediationError::BadRequest(ApiError::bad_request(
                "invalid_body",
                format!("invalid request body: {e}"),
                "请求体格式错误",
            ))
        })?
    };
    let action = parse_action(&action_name, &input)?;
    let id = id.to_string();
    // Scope check before taking any lock.
    load_visible(&state, &actor, &id).await?;

    // The shared lease in the cache turns away a rival claim at once; the
    // database row (lock + lease_until) stays the judge, so a cache that is
    // down or flushed only costs speed.
    let lease_key = format!("mediation:lease:{id}");
    let lease_ttl = state.lease.to_std().unwrap_or(std::time::Duration::from_secs(1800));
    let mut took_lease = false;
    if action == CaseAction::Claim {
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
    let result = transition(&state, &actor, &id, &action, &input).await;
    match (&result, &action) {
        (Err(_), _) if took_lease => {
            let _ = state.cache.del(&lease_key).await;
        }
        (Ok(_), CaseAction::Claim) if !took_lease => {
            // Renewed by its holder.
            let _ = state.cache.set(&lease_key, actor.id.as_bytes(), lease_ttl).await;
        }
        (Ok(_), CaseAction::Release | CaseAction::Resolve { .. } | CaseAction::Reject { .. }) => {
            let _ = state.cache.del(&lease_key).await;
        }
        _ => {}
    }
    let (updated, now) = result?;
    Ok(HttpResponse::Ok().json(view(updated, now)))
}

/// Applies `action` to the case in one transaction: row lock, version
/// check, state machine, optimistic update, lifecycle events into the outbox.
async fn transition(
    state: &State,
    actor: &Actor,
    id: &str,
    action: &CaseAction,
    input: &ActionIn,
) -> Result<(case::Model, DateTime<Utc>), MediationError> {
    let id = id.to_owned();
    let txn = state.db.begin().await?;
    repo::lock_case(&txn, &id).await?;
    let row = case::Entity::find_by_id(id.clone()).one(&txn).await?.ok_or(MediationError::NotFound("case"))?;
    if let Some(expected) = input.version {
        if expected != row.version {
            return Err(MediationError::StaleVersion { expected, actual: row.version });
        }
    }
    let mut c = repo::to_domain(&row).map_err(MediationError::Internal)?;
    let now = Utc::now();
    let steps = c.apply(action, actor, now, state.lease)?;
    let updated = repo::to_model(&c, &row.routing_rule, now);
    let res = case::Entity::update_many()
        .col_expr(case::Column::Status, Expr::value(updated.status.clone()))
        .col_expr(case::Column::ClaimedBy, Expr::value(updated.claimed_by.clone()))
        .col_expr(case::Column::LeaseUntil, Expr::value(updated.lease_until))
        .col_expr(case::Column::Outcome, Expr::value(updated.outcome.clone()))
        .col_expr(case::Column::Satisfaction, Expr::value(updated.satisfaction.clone()))
        .col_expr(case::Column::UpdatedAt, Expr::value(now))
        .col_expr(case::Column::Version, Expr::value(updated.version))
        .filter(case::Column::Id.eq(id.as_str()))
        .filter(case::Column::Version.eq(row.version))
        .exec(&txn)
        .await?;
    if res.rows_affected != 1 {
        return Err(MediationError::Concurrent);
    }
    let reason = input.reason.clone().or(input.note.clone()).unwrap_or_default();
    let detail =
        TransitionDetail { reason: reason.clone(), routing_rule: row.routing_rule.clone(), routing_version: 0 };
    let mut live = Vec::with_capacity(steps.len());
    for step in &steps {
        let mut snapshot = c.clone();
        snapshot.status = step.status;
        snapshot.version = step.version;
        let out = Event::new(
            PRODUCER,
            now,
            Payload::CaseLifecycle(case_event(&snapshot, step.kind, Cause::Actor(actor), &detail)),
        );
        case_event_row::Entity::insert(case_event_row::ActiveModel {
            event_id: Set(out.id.to_string()),
            case_id: Set(id.clone()),
            kind: Set(step.kind.as_str().to_owned()),
            status: Set(step.status.as_str().to_owned()),
            actor_id: Set(actor.id.clone()),
            actor_role: Set(actor.role.as_str().to_owned()),
            reason: Set(reason.clone()),
            at: Set(now),
            version: Set(step.version),
            ..Default::default()
        })
        .exec_without_returning(&txn)
        .await?;
        emit(&txn, PRODUCER, &state.topics.case_lifecycle, &id, &out).await?;
        state.transitions.with_label_values(&[step.kind.as_str()]).inc();
        live.push((out.id, step.kind));
    }
    txn.commit().await?;
    state.wake.notify_one();
    tracing::info!(case = %id, action = action.name(), actor = %actor.id, version = c.version, "case transition");
    for (event_id, kind) in live {
        crate::live::publish(state, event_id, kind, &updated, now).await;
    }
    Ok((updated, now))
}
