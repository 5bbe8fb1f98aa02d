//! `POST /v1/cases/{id}/{action}`: every lifecycle action. The body is
//! parsed into the domain's [`CaseAction`]; the transition runs in one
//! transaction under the case's row lock; the live streams hear of it.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use gridwork_domain::auth::Actor;
use gridwork_domain::calendar::Span;
use gridwork_domain::{codes, Case, CaseAction, CaseEventKind, CaseStatus, Channel, Outcome, Satisfaction};
use gridwork_events::convert::{Cause, TransitionDetail};
use gridwork_platform::auth::Caller;
use gridwork_platform::error::responses::{
    BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge, Unauthorized, Unavailable, Unprocessable,
};
use gridwork_storage::entity::case;
use sea_orm::TransactionTrait;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::publish::publish;
use super::view::{view, CaseView};
use crate::access;
use crate::clocks::Clocks;
use crate::error::{bad, MediationError, ACTIONS};
use crate::repo::{self, cases as repo_cases, Extra};
use crate::State;

/// Body of `POST /v1/cases/{id}/{action}`: every field is optional; which
/// an action needs depends on the action (empty body = `{}`).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionIn {
    /// Why (reject, transfer, joint, escalate, suspend, reopen,
    /// request_review, extend; split needs one). Kept sealed with the
    /// event, never published.
    #[serde(default)]
    pub reason: Option<String>,
    /// resolve: `mediated_agreement`, `not_agreed`,
    /// `referred_to_litigation`, `withdrawn` or `handled`.
    #[serde(default)]
    pub outcome: Option<String>,
    /// resolve: a note on the resolution.
    #[serde(default)]
    pub note: Option<String>,
    /// callback (回访): `satisfied`, `basically_satisfied`, `unsatisfied`
    /// or `unanswered`.
    #[serde(default)]
    pub satisfaction: Option<String>,
    /// transfer: the channel to move to.
    #[serde(default)]
    #[schema(schema_with = crate::schema::channel_or_null)]
    pub channel: Option<String>,
    /// transfer: the centre to move to (in the case's county).
    #[serde(default)]
    pub centre: Option<String>,
    /// joint (联合调处): the assisting channels.
    #[serde(default)]
    #[schema(schema_with = crate::schema::channels_or_null)]
    pub channels: Option<Vec<String>>,
    /// extend (延期): how much longer, e.g. `30 days`.
    #[serde(default)]
    pub extension: Option<String>,
    /// split: the linked report to split off into a case of its own.
    #[serde(default)]
    pub report_id: Option<Uuid>,
    /// The version the caller last saw; a stale one gets 409.
    #[serde(default)]
    pub version: Option<i64>,
}

impl ActionIn {
    /// Every field that is present is well-formed, whichever action it
    /// comes with (the body's schema holds for every action): text without
    /// control characters and within its length, known outcomes,
    /// satisfactions and channels, a centre that is an administrative code,
    /// an extension that is a span.
    pub fn check(&self) -> Result<(), MediationError> {
        if let Some(r) = &self.reason {
            gridwork_domain::case::check_reason(r)?;
        }
        if let Some(n) = &self.note {
            gridwork_domain::text::check_text("note", n, gridwork_domain::text::MAX_NOTE_CHARS)?;
        }
        if let Some(o) = &self.outcome {
            outcome_field(o)?;
        }
        if let Some(s) = &self.satisfaction {
            satisfaction_field(s)?;
        }
        if let Some(c) = &self.channel {
            channel_field("channel", c)?;
        }
        for c in self.channels.iter().flatten() {
            channel_field("channels", c)?;
        }
        if let Some(c) = &self.centre {
            codes::level_of(c)
                .map_err(|_| bad("unknown_centre", "centre", format!("no centre {c:?}"), "综治中心不存在"))?;
        }
        if let Some(x) = &self.extension {
            x.parse::<Span>()?;
        }
        Ok(())
    }
}

/// The path of `POST /v1/cases/{id}/{action}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ActionPath {
    /// The case.
    pub id: Uuid,
    /// The action.
    #[param(schema_with = crate::schema::action)]
    pub action: String,
}

/// Whether `name` is an action of this endpoint.
pub fn is_action(name: &str) -> bool {
    ACTIONS.split([',', ' ']).any(|a| !a.is_empty() && a != "or" && a == name)
}

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

fn outcome_field(o: &str) -> Result<Outcome, MediationError> {
    Outcome::parse(o).ok_or_else(|| bad("invalid_field", "outcome", format!("unknown outcome {o:?}"), "未知的办理结果"))
}

fn satisfaction_field(s: &str) -> Result<Satisfaction, MediationError> {
    Satisfaction::parse(s)
        .ok_or_else(|| bad("invalid_field", "satisfaction", format!("unknown satisfaction {s:?}"), "未知的满意度"))
}

/// The domain's action `name` with the fields of `body`, for `case`
/// (an extension's deadline is counted on `clocks`).
pub fn parse_action(clocks: &Clocks, name: &str, body: &ActionIn, case: &Case) -> Result<CaseAction, MediationError> {
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
                    bad("missing_field", "channels", "joint needs the assisting channels", "请填写协办渠道")
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
                    "resolve needs an outcome: mediated_agreement, not_agreed, referred_to_litigation, withdrawn or handled",
                    "办结需要填写结果",
                )
            })?;
            CaseAction::Resolve { outcome: outcome_field(o)?, note: body.note.clone() }
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
                    "callback needs satisfaction: satisfied, basically_satisfied, unsatisfied or unanswered",
                    "回访需要填写满意度",
                )
            })?;
            CaseAction::Callback { satisfaction: satisfaction_field(s)? }
        }
        "extend" => {
            let text = body.extension.as_deref().ok_or_else(|| {
                bad("missing_field", "extension", "extend needs an extension, e.g. \"30 days\"", "请填写延期时长")
            })?;
            let span: Span = text.parse()?;
            CaseAction::Extend { due_at: clocks.extended(case, span)?, reason: reason() }
        }
        other => return Err(MediationError::UnknownAction(other.to_owned())),
    })
}

/// `POST /v1/cases/{id}/{action}`: one step of the case's life, on the
/// state machine of docs/architecture.md — claim (签收), release, accept or
/// reject, start, transfer, joint handling (联合调处), escalate (上行),
/// suspend and resume, resolve, verify (核查), close (结案), reopen,
/// callback (回访), extend (延期), request_review, split. Answers the case
/// as it is after the step.
#[utoipa::path(post, path = "/v1/cases/{id}/{action}", tag = "cases", operation_id = "case_action",
    params(ActionPath),
    request_body(content = Option<ActionIn>, description = "What the action needs (none or empty = `{}`)"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The case after the action", body = CaseView, links(
            ("detail" = (operation_id = "case_detail", parameters(("id" = "$response.body#/id")),
                description = "The case's detail, with the new timeline entry")),
        )),
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PayloadTooLarge, Unprocessable, Unavailable,
    ))]
pub async fn act(
    state: web::Data<State>,
    caller: Caller,
    path: web::Path<ActionPath>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, MediationError> {
    let actor = caller.0;
    access::require_queue_worker(&actor)?;
    let ActionPath { id, action: action_name } = path.into_inner();
    let id = id.to_string();
    if !is_action(&action_name) {
        return Err(MediationError::UnknownAction(action_name));
    }
    // A first look, to turn strangers away before any lock or lease; the
    // judgement that counts is made again under the row lock.
    let seen = access::visible(&actor, repo_cases::find(&state.db, &id).await?)?;
    access::may_act(&actor, &seen)?;
    // Only now is the body read: a stranger gets 401/403/404 whatever it
    // sends, never a 400 or 413 that would tell the case exists (ADR 0033).
    let bytes = crate::body::read(&req, body).await?;
    let input: ActionIn = crate::body::json_or_invalid(&bytes, "request body", "请求体格式错误", true)?;
    input.check()?;
    if action_name == "split" {
        let (m, now) = super::split::split(&state, &actor, &id, &input).await?;
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
    if !repo_cases::centre_known(&state.db, centre).await? {
        return Err(unknown());
    }
    if !access::may_move_to(actor, &case.county, centre) {
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
    let row = repo_cases::find(&txn, id).await?.ok_or(MediationError::NotFound("case"))?;
    access::may_act(actor, &row)?;
    check_version(input.version, row.version)?;
    let mut c = repo::to_domain(&row).map_err(MediationError::Internal)?;
    let action = parse_action(&state.clocks, action_name, input, &c)?;
    let now = Utc::now();
    let steps = c.apply(&action, actor, now, state.lease)?;
    if steps.iter().any(|s| s.kind == CaseEventKind::Accepted) {
        state.clocks.on_accept(&mut c, now);
    }
    let extra = Extra::of(&row);
    let updated = repo::to_model(&c, &extra, state.near_due_share, now);
    if !repo_cases::save(&txn, &updated, row.version).await? {
        return Err(MediationError::Concurrent);
    }
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
        repo::tasks::sweep_case(&txn, id, now).await?;
    }
    txn.commit().await?;
    state.wake.notify_one();
    tracing::info!(case = %id, action = action.name(), actor = %actor.id, version = c.version, "case transition");
    for rec in &live {
        publish(state, rec, &updated, now).await;
    }
    Ok((updated, now))
}

/// 409 if the caller saw another version than the stored one.
pub(super) fn check_version(expected: Option<i64>, actual: i64) -> Result<(), MediationError> {
    match expected {
        Some(expected) if expected != actual => Err(MediationError::StaleVersion { expected, actual }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gridwork_domain::calendar::{Calendar, PetitionRules};
    use gridwork_domain::{Hierarchy, NewCase, Urgency};

    fn clocks() -> Clocks {
        Clocks { calendar: Calendar::official().clone(), petition: PetitionRules::default() }
    }

    fn case() -> Case {
        let now = Utc::now();
        Case::new(NewCase {
            id: Uuid::nil(),
            report_id: Uuid::nil(),
            centre: "371002001".into(),
            channel: Channel::PeopleMediation,
            priority: 3,
            category: "dispute.neighbourhood".into(),
            urgency: Urgency::Normal,
            hierarchy: Hierarchy::from_grid_code("371002001001001").unwrap(),
            petition: None,
            created_at: now,
            due_at: now + chrono::Duration::days(7),
            accept_due_at: None,
        })
    }

    fn parse(name: &str, body: serde_json::Value) -> Result<CaseAction, (u16, &'static str, Option<String>)> {
        let body: ActionIn = serde_json::from_value(body).unwrap();
        parse_action(&clocks(), name, &body, &case()).map_err(|e| {
            let a = e.api();
            (a.status.as_u16(), a.code, a.field)
        })
    }

    #[test]
    fn every_listed_action_parses_with_its_fields() {
        let names: Vec<&str> = ACTIONS.split([',', ' ']).filter(|a| !a.is_empty() && *a != "or").collect();
        assert_eq!(names.len(), 18);
        let body = serde_json::json!({
            "reason": "当事人要求", "outcome": "mediated_agreement", "satisfaction": "satisfied",
            "channels": ["legal_aid"], "channel": "legal_aid", "extension": "30 days",
        });
        for name in names {
            assert!(is_action(name), "{name}");
            match parse(name, body.clone()) {
                Ok(action) => assert_eq!(action.name(), name),
                // Split is not a transition of the state machine.
                Err(e) => assert_eq!((name, e.1), ("split", "unknown_action")),
            }
        }
        assert!(!is_action("or") && !is_action("fly") && !is_action(""));
    }

    #[test]
    fn missing_and_unknown_fields_are_named() {
        let table = [
            ("resolve", serde_json::json!({}), (400, "missing_field", Some("outcome"))),
            ("resolve", serde_json::json!({"outcome": "won"}), (400, "invalid_field", Some("outcome"))),
            ("callback", serde_json::json!({}), (400, "missing_field", Some("satisfaction"))),
            ("callback", serde_json::json!({"satisfaction": "meh"}), (400, "invalid_field", Some("satisfaction"))),
            ("joint", serde_json::json!({}), (400, "missing_field", Some("channels"))),
            ("joint", serde_json::json!({"channels": ["x"]}), (400, "invalid_field", Some("channels"))),
            ("transfer", serde_json::json!({"channel": "x"}), (400, "invalid_field", Some("channel"))),
            ("extend", serde_json::json!({}), (400, "missing_field", Some("extension"))),
            ("extend", serde_json::json!({"extension": "soon"}), (400, "invalid_extension", Some("extension"))),
            ("fly", serde_json::json!({}), (404, "unknown_action", None)),
        ];
        for (name, body, (status, code, field)) in table {
            let got = parse(name, body.clone()).map(|a| a.name()).unwrap_err();
            assert_eq!(got, (status, code, field.map(str::to_owned)), "{name} {body}");
        }
        match parse("transfer", serde_json::json!({"centre": "371002002", "reason": "辖区调整"})) {
            Ok(CaseAction::Transfer { channel: None, centre: Some(c), reason }) => {
                assert_eq!((c.as_str(), reason.as_str()), ("371002002", "辖区调整"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_stale_version_is_refused() {
        assert!(check_version(None, 3).is_ok());
        assert!(check_version(Some(3), 3).is_ok());
        assert!(matches!(check_version(Some(2), 3), Err(MediationError::StaleVersion { expected: 2, actual: 3 })));
    }
}
