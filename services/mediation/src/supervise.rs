//! The supervision scheduler (督办): raises a near-due and an overdue event
//! exactly once per case, clock and threshold (and deadline: an extended or
//! resumed case's new deadline is supervised afresh). A row in
//! `supervisions` is inserted in the same transaction as the event, under a
//! primary key, so restarts and several replicas never raise one twice.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use gridwork_domain::{CaseEventKind, CaseStatus};
use gridwork_events::convert::{Cause, ReasonCode, TransitionDetail};
use gridwork_storage::entity::{case, supervision};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DbErr, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};
use tokio_util::sync::CancellationToken;

use crate::repo::{self, Extra};
use crate::State;

/// [`CaseStatus::RUNNING`] as stored.
const RUNNING: [&str; 4] = [
    CaseStatus::RUNNING[0].as_str(),
    CaseStatus::RUNNING[1].as_str(),
    CaseStatus::RUNNING[2].as_str(),
    CaseStatus::RUNNING[3].as_str(),
];

/// One kind of notice: which clock, which threshold, the column holding the
/// instant it fires and the column holding the deadline it is about.
#[derive(Debug, Clone, Copy)]
struct Notice {
    clock: &'static str,
    threshold: &'static str,
    kind: CaseEventKind,
    fires: case::Column,
    deadline: case::Column,
    statuses: &'static [&'static str],
}

const NOTICES: [Notice; 4] = [
    Notice {
        clock: "close_out",
        threshold: "overdue",
        kind: CaseEventKind::SupervisionOverdue,
        fires: case::Column::DueAt,
        deadline: case::Column::DueAt,
        statuses: &RUNNING,
    },
    Notice {
        clock: "close_out",
        threshold: "near_due",
        kind: CaseEventKind::SupervisionNearDue,
        fires: case::Column::NearDueAt,
        deadline: case::Column::DueAt,
        statuses: &RUNNING,
    },
    Notice {
        clock: "acceptance",
        threshold: "overdue",
        kind: CaseEventKind::SupervisionOverdue,
        fires: case::Column::AcceptDueAt,
        deadline: case::Column::AcceptDueAt,
        statuses: &[CaseStatus::Created.as_str()],
    },
    Notice {
        clock: "acceptance",
        threshold: "near_due",
        kind: CaseEventKind::SupervisionNearDue,
        fires: case::Column::AcceptNearDueAt,
        deadline: case::Column::AcceptDueAt,
        statuses: &[CaseStatus::Created.as_str()],
    },
];

fn column_name(c: case::Column) -> &'static str {
    match c {
        case::Column::DueAt => "due_at",
        case::Column::NearDueAt => "near_due_at",
        case::Column::AcceptDueAt => "accept_due_at",
        case::Column::AcceptNearDueAt => "accept_near_due_at",
        _ => "due_at",
    }
}

/// Runs until `shutdown`, looking every `mediation.supervise_interval_ms`.
pub fn spawn(state: actix_web::web::Data<State>, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let every = StdDuration::from_millis(state.supervise_every_ms);
        loop {
            if let Err(e) = crate::routing::refresh(&state).await {
                tracing::warn!(error = %e, "routing rules not refreshed");
            }
            match sweep(&state, Utc::now()).await {
                Ok(n) if n > 0 => tracing::info!(raised = n, "supervision notices raised"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "supervision sweep failed; retrying at the next tick"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(every) => {}
            }
        }
    })
}

/// Raises every notice due at `now`; returns how many.
pub async fn sweep(state: &State, now: DateTime<Utc>) -> Result<usize, DbErr> {
    let mut raised = 0;
    for n in NOTICES {
        loop {
            let not_yet = Expr::cust(format!(
                "NOT EXISTS (SELECT 1 FROM supervisions s WHERE s.case_id = cases.id AND s.clock = '{}' \
                 AND s.threshold = '{}' AND s.due_at = cases.{})",
                n.clock,
                n.threshold,
                column_name(n.deadline)
            ));
            let due = case::Entity::find()
                .filter(case::Column::Status.is_in(n.statuses.iter().copied()))
                .filter(n.fires.lte(now))
                .filter(not_yet)
                .order_by_asc(n.fires)
                .limit(200)
                .all(&state.db)
                .await?;
            if due.is_empty() {
                break;
            }
            let mut progress = false;
            for row in due {
                match raise(state, &row.id, n, now).await {
                    Ok(true) => {
                        raised += 1;
                        progress = true;
                    }
                    // No longer due (changed meanwhile): not progress, so a
                    // batch of such rows cannot keep the sweep spinning.
                    Ok(false) => {}
                    // Another replica raised it first (primary key) or the
                    // case moved on: it is picked up again if still due.
                    Err(e) => tracing::debug!(case = %row.id, error = %e, "supervision not raised"),
                }
            }
            if !progress {
                break;
            }
        }
    }
    if raised > 0 {
        state.wake.notify_one();
    }
    Ok(raised)
}

/// Raises one notice for case `id` if it is still due; `false` if not.
async fn raise(state: &State, id: &str, n: Notice, now: DateTime<Utc>) -> Result<bool, DbErr> {
    let txn = state.db.begin().await?;
    repo::lock_case(&txn, id).await?;
    let Some(row) = case::Entity::find_by_id(id.to_owned()).one(&txn).await? else {
        return Ok(false);
    };
    let fires = match n.fires {
        case::Column::NearDueAt => row.near_due_at,
        case::Column::AcceptNearDueAt => row.accept_near_due_at,
        case::Column::AcceptDueAt => row.accept_due_at,
        _ => Some(row.due_at),
    };
    let deadline = if n.clock == "acceptance" { row.accept_due_at } else { Some(row.due_at) };
    let (Some(fires), Some(deadline)) = (fires, deadline) else {
        return Ok(false);
    };
    if fires > now || !n.statuses.contains(&row.status.as_str()) {
        return Ok(false);
    }
    let exists =
        supervision::Entity::find_by_id((row.id.clone(), n.clock.to_owned(), n.threshold.to_owned(), deadline))
            .one(&txn)
            .await?
            .is_some();
    if exists {
        return Ok(false);
    }
    let mut c = repo::to_domain(&row).map_err(DbErr::Custom)?;
    let step = c.note(n.kind);
    let what = if n.clock == "acceptance" { "acceptance" } else { "close-out" };
    let detail = TransitionDetail {
        reason_code: Some(ReasonCode::Supervision),
        reason: match n.threshold {
            "overdue" => format!("督办: {what} deadline {} has passed", deadline.to_rfc3339()),
            _ => format!("督办: {what} deadline {} is near", deadline.to_rfc3339()),
        },
        clock: n.clock.to_owned(),
        routing_rule: row.routing_rule.clone(),
        ..Default::default()
    };
    let rec = repo::record(&txn, state, &c, step, Cause::System, &detail, now).await?;
    supervision::Model {
        case_id: row.id.clone(),
        clock: n.clock.to_owned(),
        threshold: n.threshold.to_owned(),
        due_at: deadline,
        raised_at: now,
        event_id: rec.event_id.to_string(),
    }
    .into_active_model()
    .reset_all()
    .insert(&txn)
    .await?;
    let res = case::Entity::update_many()
        .col_expr(case::Column::Version, Expr::value(c.version))
        .col_expr(case::Column::UpdatedAt, Expr::value(now))
        .filter(case::Column::Id.eq(row.id.as_str()))
        .filter(case::Column::Version.eq(row.version))
        .exec(&txn)
        .await?;
    if res.rows_affected != 1 {
        return Ok(false);
    }
    txn.commit().await?;
    state.supervisions.with_label_values(&[n.clock, n.threshold]).inc();
    let model = repo::to_model(&c, &Extra::of(&row), state.near_due_share, now);
    crate::cases::publish::publish(state, &rec, &model, now).await;
    tracing::info!(case = %row.id, clock = n.clock, threshold = n.threshold, "supervision notice");
    Ok(true)
}
