//! `POST /v1/cases/{id}/split`: a report wrongly linked to this case
//! becomes a case of its own, in the same place, routed afresh.

use chrono::{DateTime, Utc};
use gridwork_domain::auth::Actor;
use gridwork_domain::{Case, CaseEventKind, CaseStatus, NewCase, Step, TransitionError};
use gridwork_events::convert::{Cause, ReasonCode, TransitionDetail};
use gridwork_storage::entity::case;
use sea_orm::TransactionTrait;
use uuid::Uuid;

use super::act::{check_version, ActionIn};
use super::publish::publish;
use crate::access;
use crate::error::{bad, MediationError};
use crate::repo::{self, cases as repo_cases, Extra};
use crate::State;

pub async fn split(
    state: &State,
    actor: &Actor,
    id: &str,
    input: &ActionIn,
) -> Result<(case::Model, DateTime<Utc>), MediationError> {
    let report_id = input
        .report_id
        .ok_or_else(|| bad("missing_field", "report_id", "split needs the linked report_id", "请填写报告编号"))?;
    let reason = input.reason.clone().unwrap_or_default();
    gridwork_domain::case::check_reason(&reason).map_err(TransitionError::from)?;
    if reason.trim().is_empty() {
        return Err(TransitionError::MissingReason("a split needs a reason").into());
    }
    let txn = state.db.begin().await?;
    repo::lock_case(&txn, id).await?;
    let row = repo_cases::find(&txn, id).await?.ok_or(MediationError::NotFound("case"))?;
    access::may_act(actor, &row)?;
    check_version(input.version, row.version)?;
    let link = repo_cases::open_link(&txn, &report_id.to_string(), id).await?.ok_or_else(|| {
        bad("not_linked", "report_id", format!("report {report_id} is not linked to this case"), "该报告未关联到此案件")
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
    let rep = repo_cases::report(&txn, &report_id.to_string()).await?;
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
    repo_cases::insert(&txn, &new_model).await?;
    repo_cases::mark_split(&txn, &link.report_id, &new.id.to_string()).await?;
    let step = old.note(CaseEventKind::ReportSplit);
    let updated = repo::to_model(&old, &Extra::of(&row), state.near_due_share, now);
    if !repo_cases::save(&txn, &updated, row.version).await? {
        return Err(MediationError::Concurrent);
    }
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
    publish(state, &a, &updated, now).await;
    publish(state, &b, &new_model, now).await;
    tracing::info!(case = %id, report = %report_id, new_case = %new.id, "linked report split off");
    Ok((updated, now))
}
