//! Parties' personal information on cases: masked in the case detail;
//! shown in full only through `POST /v1/cases/{id}/parties` with a reason,
//! to those working the case, and every such read is audited
//! (`GET /v1/audit/pii-reads`, admin).

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use gridwork_platform::auth::Caller;
use gridwork_platform::pii::{mask_digits, mask_name};
use gridwork_storage::entity::report;
use sea_orm::TransactionTrait;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::access;
use crate::error::{bad, MediationError};
use crate::repo::{audit as audit_log, cases as repo_cases};
use crate::State;

/// The parties of a report, opened (legacy plaintext is read as is).
fn open(state: &State, r: &report::Model) -> Result<Vec<Value>, MediationError> {
    let internal = |e: &dyn std::fmt::Display| MediationError::Internal(e.to_string());
    let text = if gridwork_platform::pii::Keyring::is_sealed(&r.parties) {
        let raw = state.keyring.open(&r.id, &r.parties).map_err(|e| internal(&e))?;
        String::from_utf8(raw).map_err(|e| internal(&e))?
    } else {
        r.parties.clone()
    };
    serde_json::from_str(&text).map_err(|e| internal(&e))
}

/// The parties of a report, masked: `张*`, `138****1234`, `371002********1234`.
pub fn masked(state: &State, r: &report::Model) -> Value {
    match open(state, r) {
        Ok(parties) => Value::Array(
            parties
                .iter()
                .map(|p| {
                    json!({
                        "name": p["name"].as_str().map(mask_name),
                        "phone": p["phone"].as_str().map(|s| mask_digits(s, 3, 4)),
                        "id_number": p["id_number"].as_str().map(|s| mask_digits(s, 6, 4)),
                    })
                })
                .collect(),
        ),
        Err(_) => Value::Null,
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevealIn {
    /// Why the caller needs the parties' identity (kept in the audit log).
    #[serde(default)]
    pub reason: String,
}

/// `POST /v1/cases/{id}/parties`: the parties of the case's reports in
/// full, for a worker of the case, with a reason; audited.
pub async fn reveal(
    state: web::Data<State>,
    caller: Caller,
    path: web::Path<Uuid>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, MediationError> {
    let actor = caller.0;
    access::require_queue_worker(&actor)?;
    let id = path.into_inner().to_string();
    let m = access::visible(&actor, repo_cases::find(&state.db, &id).await?)?;
    access::require_lead(&actor, &m, "only the lead channel's mediators see the parties' identity")?;
    // The body is read only once the case is known to be in the caller's
    // view (ADR 0033).
    let body = crate::body::read(&req, body).await?;
    let input: RevealIn = crate::body::json_or_invalid(&body, "request body", "请求体格式错误", false)?;
    if input.reason.trim().chars().count() < 4 {
        return Err(bad(
            "missing_reason",
            "reason",
            "say why you need the parties' identity (at least 4 characters); it is kept in the audit log",
            "请说明查看当事人身份信息的理由（至少 4 个字），该理由将记入审计日志",
        ));
    }
    let mut report_ids = vec![m.report_id.clone()];
    report_ids.extend(repo_cases::linked_report_ids(&state.db, &id).await?);
    let txn = state.db.begin().await?;
    // The audit record commits before anything is shown.
    audit_log::record(
        &txn,
        audit_log::Read {
            actor_id: &actor.id,
            actor_role: actor.role.as_str(),
            case_id: &id,
            report_ids: &report_ids,
            reason: input.reason.trim(),
            at: Utc::now(),
        },
    )
    .await?;
    let mut out = Vec::new();
    for rid in &report_ids {
        if let Some(r) = repo_cases::report(&txn, rid).await? {
            let matter = match r.matter.as_deref() {
                Some(m) if gridwork_platform::pii::Keyring::is_sealed(m) => Some(
                    String::from_utf8_lossy(
                        &state.keyring.open(&r.id, m).map_err(|e| MediationError::Internal(e.to_string()))?,
                    )
                    .into_owned(),
                ),
                other => other.map(str::to_owned),
            };
            out.push(json!({"report_id": rid, "parties": open(&state, &r)?, "matter": matter}));
        }
    }
    txn.commit().await?;
    tracing::info!(case = %id, actor = %actor.id, "parties' personal information shown (audited)");
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(json!({"case_id": id, "reports": out})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    #[serde(default)]
    pub case_id: Option<String>,
    #[serde(default)]
    pub limit: Option<u64>,
}

/// `GET /v1/audit/pii-reads` (admin): who read whose identity, when, why.
pub async fn audit(
    state: web::Data<State>,
    caller: Caller,
    q: web::Query<AuditQuery>,
) -> Result<HttpResponse, MediationError> {
    access::require_admin(&caller.0, "only an admin reads the audit log")?;
    let rows = audit_log::reads(&state.db, q.case_id.as_deref(), q.limit.unwrap_or(100).clamp(1, 1000)).await?;
    let items: Vec<Value> = rows
        .into_iter()
        .map(|r| {
            json!({"actor": r.actor_id, "role": r.actor_role, "case_id": r.case_id,
                   "report_ids": r.report_ids.split(',').collect::<Vec<_>>(), "reason": r.reason, "at": r.at})
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({"items": items})))
}
