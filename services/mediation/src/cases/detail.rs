//! `GET /v1/cases/{id}`: the case, its report, linked reports, supervision
//! notices and its timeline.

use actix_web::{web, HttpResponse};
use chrono::Utc;
use gridwork_platform::auth::Caller;
use uuid::Uuid;

use super::view::{report_json, view};
use crate::access;
use crate::error::MediationError;
use crate::repo::{self, cases as repo_cases};
use crate::State;

pub async fn detail(
    state: web::Data<State>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, MediationError> {
    let actor = caller.0;
    access::require_queue_worker(&actor)?;
    let id = path.into_inner().to_string();
    // 404, not 403, for a case out of view: do not reveal that it exists.
    let m = access::visible(&actor, repo_cases::find(&state.db, &id).await?)?;
    let timeline = repo_cases::timeline(&state.db, &id).await?;
    let rep = repo_cases::report(&state.db, &m.report_id).await?;
    let links = repo_cases::links(&state.db, &id).await?;
    let mut linked = Vec::with_capacity(links.len());
    for l in links {
        let r = repo_cases::report(&state.db, &l.report_id).await?;
        linked.push(serde_json::json!({
            "report_id": l.report_id, "linked_at": l.linked_at, "linked_by": l.linked_by,
            "distance_m": l.distance_m, "split_case_id": l.split_case_id,
            "report": r.map(|r| report_json(&state, r)),
        }));
    }
    let notices: Vec<serde_json::Value> = repo_cases::notices(&state.db, &id)
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
