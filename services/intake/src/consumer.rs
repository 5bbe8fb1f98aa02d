//! intake follows its reports through the pipeline.

use async_trait::async_trait;
use chrono::Utc;
use gridwork_bus::{Handler, HandlerError, Message};
use gridwork_domain::report::ReportStatus;
use gridwork_domain::{CaseEventKind, CaseStatus};
use gridwork_events::convert::CaseEventView;
use gridwork_events::Payload;
use gridwork_platform::pipeline::{decode, retryable};
use gridwork_storage::dedup;
use gridwork_storage::entity::{report, report_event};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DatabaseTransaction, EntityTrait, IntoActiveModel, QueryFilter,
    Set, TransactionTrait,
};

pub struct StatusFollower {
    pub db: DatabaseConnection,
}

const GROUP: &str = "intake";

fn report_status(s: CaseStatus) -> ReportStatus {
    match s {
        CaseStatus::Created => ReportStatus::Queued,
        CaseStatus::Accepted => ReportStatus::Accepted,
        CaseStatus::Rejected => ReportStatus::Rejected,
        CaseStatus::Claimed | CaseStatus::InProgress | CaseStatus::Suspended => ReportStatus::InProgress,
        CaseStatus::Resolved | CaseStatus::Verified => ReportStatus::Resolved,
        CaseStatus::Closed => ReportStatus::Closed,
    }
}

/// How an event changes its report's row.
type Update = Box<dyn FnOnce(&mut report::ActiveModel, &report::Model) + Send>;

/// The most events followed in one transaction.
const MAX_BATCH: usize = 64;

#[async_trait]
impl Handler for StatusFollower {
    async fn handle(&self, msg: &Message) -> Result<(), HandlerError> {
        self.handle_batch(std::slice::from_ref(msg)).await
    }

    /// The batch in one transaction: all of it or none.
    async fn handle_batch(&self, msgs: &[Message]) -> Result<(), HandlerError> {
        let txn = self.db.begin().await.map_err(retryable)?;
        for msg in msgs {
            follow(&txn, msg).await?;
        }
        txn.commit().await.map_err(retryable)
    }

    fn max_batch(&self) -> usize {
        MAX_BATCH
    }
}

/// Records on its report what one event says, inside the batch's
/// transaction.
async fn follow(txn: &DatabaseTransaction, msg: &Message) -> Result<(), HandlerError> {
    let event = decode(msg)?;
    if !dedup::first_delivery(txn, GROUP, &event.id.to_string()).await.map_err(retryable)? {
        return Ok(());
    }
    let now = Utc::now();
    let (report_id, note, update): (String, String, Update) = match &event.payload {
        Payload::ReportAssigned(a) => {
            let asg = a.assignment.clone().unwrap_or_default();
            let note = if asg.grid.is_empty() {
                format!("outside every grid: to the triage queue of county centre {}", asg.centre)
            } else if asg.approximate {
                format!("assigned to grid {} (approximate, {:.0} m away)", asg.grid, asg.distance_m)
            } else {
                format!("assigned to grid {}", asg.grid)
            };
            let grid = (!asg.grid.is_empty()).then(|| asg.grid.clone());
            let centre = asg.centre.clone();
            (
                a.report_id.clone(),
                note,
                Box::new(move |m: &mut report::ActiveModel, cur: &report::Model| {
                    m.grid = Set(grid);
                    m.centre = Set(Some(centre));
                    if cur.status == ReportStatus::Submitted.as_str() {
                        m.status = Set(ReportStatus::Assigned.as_str().to_owned());
                    }
                }),
            )
        }
        Payload::CaseLifecycle(c) => {
            let v = CaseEventView::try_from(c).map_err(|e| HandlerError::Poison(e.to_string()))?;
            // The grid worker sees the pipeline's own explanations; the
            // words a case worker gave never travel (they can name
            // people), only that there were some. A reason without a
            // code (an older producer) may be such words: not shown.
            let why = match (v.reason_code, v.stated_chars) {
                (Some(_), _) if !v.reason.is_empty() => v.reason.clone(),
                (_, n) if n > 0 => "a reason is on record at the centre (理由已由综治中心记录)".to_owned(),
                _ => v.channel.name_zh().to_owned(),
            };
            let note = format!("case {}: {why}", v.kind.as_str());
            let case_id = v.case_id.to_string();
            // Reports linked to the case as the same incident follow it.
            let status = report_status(v.status).as_str().to_owned();
            report::Entity::update_many()
                .col_expr(report::Column::Status, sea_orm::sea_query::Expr::value(status))
                .col_expr(report::Column::CaseVersion, sea_orm::sea_query::Expr::value(v.version))
                .col_expr(report::Column::UpdatedAt, sea_orm::sea_query::Expr::value(now))
                .filter(report::Column::CaseId.eq(case_id.as_str()))
                .filter(report::Column::Id.ne(v.report_id.to_string()))
                .filter(report::Column::CaseVersion.lt(v.version))
                .exec(txn)
                .await
                .map_err(retryable)?;
            let target = match v.kind {
                CaseEventKind::ReportLinked if !c.linked_report_id.is_empty() => c.linked_report_id.clone(),
                _ => v.report_id.to_string(),
            };
            (
                target,
                note,
                Box::new(move |m: &mut report::ActiveModel, cur: &report::Model| {
                    m.case_id = Set(Some(case_id));
                    if v.version > cur.case_version {
                        m.status = Set(report_status(v.status).as_str().to_owned());
                        m.case_version = Set(v.version);
                    }
                }),
            )
        }
        // Other events are not intake's business.
        _ => return Ok(()),
    };
    let Some(current) = report::Entity::find_by_id(report_id.clone()).one(txn).await.map_err(retryable)? else {
        // Reports are committed before their events exist; a missing one is not ours.
        return Err(HandlerError::Poison(format!("unknown report {report_id}")));
    };
    let mut m = current.clone().into_active_model();
    update(&mut m, &current);
    m.updated_at = Set(now);
    // The step this event records: an assignment is "assigned" even when
    // the case's first event (another topic) arrived first.
    let status = match (&event.payload, &m.status) {
        (Payload::ReportAssigned(_), _) => ReportStatus::Assigned.as_str().to_owned(),
        (_, sea_orm::ActiveValue::Set(s)) => s.clone(),
        _ => current.status.clone(),
    };
    m.update(txn).await.map_err(retryable)?;
    report_event::Entity::insert(report_event::ActiveModel {
        report_id: Set(report_id),
        // When the pipeline recorded the step (the report's own time is occurred_at).
        at: Set(event.recorded_at),
        status: Set(status),
        note: Set(note),
        ..Default::default()
    })
    .exec_without_returning(txn)
    .await
    .map_err(retryable)?;
    Ok(())
}
