//! Parties' personal information on cases: masked in the case detail;
//! shown in full only through `POST /v1/cases/{id}/parties` with a reason,
//! to those working the case, and every such read is audited
//! (`GET /v1/audit/pii-reads`, admin).

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use gridwork_domain::auth::Role;
use gridwork_platform::auth::Caller;
use gridwork_platform::pii::{mask_digits, mask_name};
use gridwork_platform::ApiError;
use gridwork_storage::entity::{case, case_report, pii_read, report};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::State;

/// The parties of a report, opened (legacy plaintext is read as is).
fn open(state: &State, r: &report::Model) -> Result<Vec<Value>, ApiError> {
    let text = if gridwork_platform::pii::Keyring::is_sealed(&r.parties) {
        let raw = state.keyring.open(&r.id, &r.parties).map_err(|e| ApiError::internal(&e))?;
        String::from_utf8(raw).map_err(|e| ApiError::internal(&e))?
    } else {
        r.parties.clone()
    };
    serde_json::from_str(&text).map_err(|e| ApiError::internal(&e))
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

#[derive(Debug, Deserialize)]
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
) -> Result<HttpResponse, ApiError> {
    let actor = caller.0;
    crate::api::require_queue_worker(&actor).map_err(|e| ApiError::forbidden(e.to_string()))?;
    let id = path.into_inner().to_string();
    let db = |e: sea_orm::DbErr| ApiError::unavailable(&e);
    let m = case::Entity::find_by_id(id.clone()).one(&state.db).await.map_err(db)?;
    let m = m.filter(|m| crate::api::may_see(&actor, m)).ok_or_else(|| ApiError::not_found("case"))?;
    if actor.role == Role::Mediator && actor.channel.as_deref() != Some(m.channel.as_str()) {
        return Err(ApiError::forbidden("only the lead channel's mediators see the parties' identity"));
    }
    // The body is read only once the case is known to be in the caller's
    // view (ADR 0033).
    let body = gridwork_platform::body::read(&req, body, crate::tasks::body_limit(&req)).await?;
    let input: RevealIn = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request("invalid_body", format!("invalid request body: {e}"), "请求体格式错误"))?;
    if input.reason.trim().chars().count() < 4 {
        return Err(ApiError::bad_request(
            "missing_reason",
            "say why you need the parties' identity (at least 4 characters); it is kept in the audit log",
            "请说明查看当事人身份信息的理由（至少 4 个字），该理由将记入审计日志",
        )
        .with_field("reason"));
    }
    let mut report_ids = vec![m.report_id.clone()];
    let linked: Vec<String> = case_report::Entity::find()
        .select_only()
        .column(case_report::Column::ReportId)
        .filter(case_report::Column::CaseId.eq(id.as_str()))
        .filter(case_report::Column::SplitCaseId.is_null())
        .into_tuple()
        .all(&state.db)
        .await
        .map_err(db)?;
    report_ids.extend(linked);
    let txn = state.db.begin().await.map_err(db)?;
    // The audit record commits before anything is shown.
    pii_read::ActiveModel {
        actor_id: sea_orm::Set(actor.id.clone()),
        actor_role: sea_orm::Set(actor.role.as_str().to_owned()),
        case_id: sea_orm::Set(id.clone()),
        report_ids: sea_orm::Set(report_ids.join(",")),
        reason: sea_orm::Set(input.reason.trim().to_owned()),
        at: sea_orm::Set(Utc::now()),
        ..Default::default()
    }
    .insert(&txn)
    .await
    .map_err(db)?;
    let mut out = Vec::new();
    for rid in &report_ids {
        if let Some(r) = report::Entity::find_by_id(rid.clone()).one(&txn).await.map_err(db)? {
            let matter = match r.matter.as_deref() {
                Some(m) if gridwork_platform::pii::Keyring::is_sealed(m) => Some(
                    String::from_utf8_lossy(&state.keyring.open(&r.id, m).map_err(|e| ApiError::internal(&e))?)
                        .into_owned(),
                ),
                other => other.map(str::to_owned),
            };
            out.push(json!({"report_id": rid, "parties": open(&state, &r)?, "matter": matter}));
        }
    }
    txn.commit().await.map_err(db)?;
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
) -> Result<HttpResponse, ApiError> {
    if caller.0.role != Role::Admin {
        return Err(ApiError::forbidden("only an admin reads the audit log"));
    }
    let mut query = pii_read::Entity::find();
    if let Some(c) = &q.case_id {
        query = query.filter(pii_read::Column::CaseId.eq(c.as_str()));
    }
    let rows = query
        .order_by_desc(pii_read::Column::Id)
        .limit(q.limit.unwrap_or(100).clamp(1, 1000))
        .all(&state.db)
        .await
        .map_err(|e| ApiError::unavailable(&e))?;
    let items: Vec<Value> = rows
        .into_iter()
        .map(|r| {
            json!({"actor": r.actor_id, "role": r.actor_role, "case_id": r.case_id,
                   "report_ids": r.report_ids.split(',').collect::<Vec<_>>(), "reason": r.reason, "at": r.at})
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({"items": items})))
}
