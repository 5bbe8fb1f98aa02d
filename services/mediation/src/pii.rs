//! Parties' personal information on cases: masked in the case detail;
//! shown in full only through `POST /v1/cases/{id}/parties` with a reason,
//! to those working the case, and every such read is audited
//! (`GET /v1/audit/pii-reads`, admin).

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use gridwork_platform::auth::Caller;
use gridwork_platform::error::responses::{
    BadRequest, Forbidden, NotFound, PayloadTooLarge, Unauthorized, Unavailable,
};
use gridwork_platform::pii::{mask_digits, mask_name};
use gridwork_storage::entity::report;
use sea_orm::TransactionTrait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
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

/// A party as the case detail shows them: masked (`张*`, `138****1234`,
/// `371002********1234`).
#[derive(Debug, Serialize, ToSchema)]
pub struct MaskedParty {
    pub name: Option<String>,
    pub phone: Option<String>,
    pub id_number: Option<String>,
}

/// The parties of a report, masked: `张*`, `138****1234`, `371002********1234`;
/// `None` if they cannot be read.
pub fn masked(state: &State, r: &report::Model) -> Option<Vec<MaskedParty>> {
    let parties = open(state, r).ok()?;
    Some(
        parties
            .iter()
            .map(|p| MaskedParty {
                name: p["name"].as_str().map(mask_name),
                phone: p["phone"].as_str().map(|s| mask_digits(s, 3, 4)),
                id_number: p["id_number"].as_str().map(|s| mask_digits(s, 6, 4)),
            })
            .collect(),
    )
}

/// A party in full: who they are and how to reach them.
#[derive(Debug, Serialize, ToSchema)]
pub struct RevealedParty {
    pub name: Option<String>,
    pub phone: Option<String>,
    pub id_number: Option<String>,
}

/// The parties of one report of the case, in full.
#[derive(Debug, Serialize, ToSchema)]
pub struct RevealedReport {
    #[schema(format = Uuid)]
    pub report_id: String,
    pub parties: Vec<RevealedParty>,
    /// The petition's matter (信访事项) in the petitioner's words, if any.
    pub matter: Option<String>,
}

/// Body of `POST /v1/cases/{id}/parties`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Revealed {
    #[schema(format = Uuid)]
    pub case_id: String,
    /// The case's report first, then its linked reports.
    pub reports: Vec<RevealedReport>,
}

/// The longest reason for reading the parties.
pub const MAX_REASON_CHARS: usize = gridwork_domain::text::MAX_NOTE_CHARS;

/// Body of `POST /v1/cases/{id}/parties`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevealIn {
    /// Why the caller needs the parties' identity (kept in the audit log):
    /// at least 4 characters besides the spaces around them,
    /// at most 2,000, no control characters.
    #[serde(default)]
    #[schema(required)]
    pub reason: String,
}

/// `POST /v1/cases/{id}/parties`: the parties of the case's reports in
/// full, for the lead channel's workers of the case, with a reason. The
/// read is in the audit log before anything is shown; the answer is never
/// cached (`Cache-Control: no-store`).
#[utoipa::path(post, path = "/v1/cases/{id}/parties", tag = "cases", operation_id = "reveal_parties",
    params(("id" = Uuid, Path, description = "The case")),
    request_body = RevealIn,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The parties in full (audited)", body = Revealed),
        BadRequest, Unauthorized, Forbidden, NotFound, PayloadTooLarge, Unavailable,
    ))]
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
    // Kept in the audit log, so text PostgreSQL can store.
    gridwork_domain::text::check_text("reason", &input.reason, MAX_REASON_CHARS)?;
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
            let parties = open(&state, &r)?
                .iter()
                .map(|p| RevealedParty {
                    name: p["name"].as_str().map(str::to_owned),
                    phone: p["phone"].as_str().map(str::to_owned),
                    id_number: p["id_number"].as_str().map(str::to_owned),
                })
                .collect();
            out.push(RevealedReport { report_id: rid.clone(), parties, matter });
        }
    }
    txn.commit().await?;
    tracing::info!(case = %id, actor = %actor.id, "parties' personal information shown (audited)");
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(Revealed { case_id: id, reports: out }))
}

/// Query of `GET /v1/audit/pii-reads`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only the reads of this case.
    #[serde(default)]
    #[param(format = Uuid)]
    pub case_id: Option<Uuid>,
    /// At most this many, newest first: 1–1,000 (default 100; larger is
    /// read as 1,000, 0 as 1).
    #[serde(default)]
    #[param(minimum = 0)]
    pub limit: Option<u64>,
}

/// One read of parties' personal information.
#[derive(Debug, Serialize, ToSchema)]
pub struct PiiRead {
    /// Who read.
    pub actor: String,
    pub role: String,
    #[schema(format = Uuid)]
    pub case_id: String,
    /// The reports whose parties were shown.
    pub report_ids: Vec<String>,
    /// Why, in the reader's words.
    pub reason: String,
    pub at: DateTime<Utc>,
}

/// Body of `GET /v1/audit/pii-reads`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PiiReads {
    /// Newest first.
    pub items: Vec<PiiRead>,
}

/// `GET /v1/audit/pii-reads` (admin): who read whose identity, when, why.
#[utoipa::path(get, path = "/v1/audit/pii-reads", tag = "audit", operation_id = "pii_reads", params(AuditQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The reads, newest first", body = PiiReads),
        BadRequest, Unauthorized, Forbidden, Unavailable,
    ))]
pub async fn audit(
    state: web::Data<State>,
    caller: Caller,
    q: web::Query<AuditQuery>,
) -> Result<HttpResponse, MediationError> {
    access::require_admin(&caller.0, "only an admin reads the audit log")?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let case_id = q.case_id.map(|c| c.to_string());
    let rows = audit_log::reads(&state.db, case_id.as_deref(), limit).await?;
    let items = rows
        .into_iter()
        .map(|r| PiiRead {
            report_ids: r.report_ids.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
            actor: r.actor_id,
            role: r.actor_role,
            case_id: r.case_id,
            reason: r.reason,
            at: r.at,
        })
        .collect();
    Ok(HttpResponse::Ok().json(PiiReads { items }))
}
