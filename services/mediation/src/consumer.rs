//! Opens a case for each assigned report.

use actix_web::web;
use async_trait::async_trait;
use chrono::Utc;
use gridwork_bus::{Handler, HandlerError, Message};
use gridwork_domain::petition::{PetitionClass, PetitionInfo};
use gridwork_domain::{Case, CaseEventKind, CaseStatus, Hierarchy, Urgency};
use gridwork_events::convert::{case_event, Cause, TransitionDetail};
use gridwork_events::{Event, Payload};
use gridwork_platform::pipeline::{decode, emit, retryable};
use gridwork_storage::dedup;
use gridwork_storage::entity::{case, case_event as case_event_row};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter, Set, TransactionTrait,
};
use uuid::Uuid;

use crate::{repo, State, PRODUCER};

pub struct CaseOpener {
    pub state: web::Data<State>,
}

#[async_trait]
impl Handler for CaseOpener {
    async fn handle(&self, msg: &Message) -> Result<(), HandlerError> {
        let event = decode(msg)?;
        let Payload::ReportAssigned(r) = &event.payload else {
            return Err(HandlerError::Poison(format!(
                "unexpected schema {} on report-assigned",
                event.payload.schema()
            )));
        };
        let poison = |m: String| HandlerError::Poison(m);
        let report_id = Uuid::parse_str(&r.report_id).map_err(|_| poison(format!("report_id {:?}", r.report_id)))?;
        let asg = r.assignment.clone().ok_or_else(|| poison("no assignment".into()))?;
        let hierarchy = Hierarchy::from(&asg);
        let urgency = Urgency::parse(&r.urgency).ok_or_else(|| poison(format!("urgency {:?}", r.urgency)))?;
        let routing = self.state.routing().map_err(HandlerError::Retryable)?;
        let route = routing
            .route(&r.category, urgency, &hierarchy)
            .ok_or_else(|| poison(format!("no routing rule matches {}", r.category)))?;

        let txn = self.state.db.begin().await.map_err(retryable)?;
        if !dedup::first_delivery(&txn, PRODUCER, &event.id.to_string()).await.map_err(retryable)? {
            return Ok(());
        }
        // One case per report, even if the assignment was published twice.
        let existing = case::Entity::find()
            .filter(case::Column::ReportId.eq(report_id.to_string()))
            .count(&txn)
            .await
            .map_err(retryable)?;
        if existing > 0 {
            txn.commit().await.map_err(retryable)?;
            return Ok(());
        }
        let petition = if self.state.petition_categories.contains(&r.category) && !r.petitioner_key.is_empty() {
            let earlier = case::Entity::find()
                .filter(case::Column::PetitionerKey.eq(r.petitioner_key.as_str()))
                .filter(case::Column::MatterKey.eq(r.matter_key.as_str()))
                .count(&txn)
                .await
                .map_err(retryable)?;
            Some(PetitionInfo {
                petitioner_key: r.petitioner_key.clone(),
                matter_key: r.matter_key.clone(),
                class: if earlier == 0 { PetitionClass::FirstTime } else { PetitionClass::Repeat },
            })
        } else {
            None
        };
        let now = Utc::now();
        let c = Case {
            id: Uuid::now_v7(),
            report_id,
            centre: asg.centre.clone(),
            channel: route.channel,
            priority: route.priority,
            category: r.category.clone(),
            urgency,
            hierarchy,
            status: CaseStatus::Created,
            claimed_by: None,
            lease_until: None,
            outcome: None,
            satisfaction: None,
            petition,
            created_at: now,
            due_at: now + route.sla(),
            version: 1,
        };
        repo::to_model(&c, &route.rule_id, now)
            .into_active_model()
            .reset_all()
            .insert(&txn)
            .await
            .map_err(retryable)?;
        let detail = TransitionDetail {
            reason: format!("routed by rule {} (rules v{})", route.rule_id, route.rules_version),
            routing_rule: route.rule_id.clone(),
            routing_version: route.rules_version,
        };
        let out = Event::new(
            PRODUCER,
            now,
            Payload::CaseLifecycle(case_event(&c, CaseEventKind::Created, Cause::System, &detail)),
        );
        case_event_row::Entity::insert(case_event_row::ActiveModel {
            event_id: Set(out.id.to_string()),
            case_id: Set(c.id.to_string()),
            kind: Set(CaseEventKind::Created.as_str().to_owned()),
            status: Set(c.status.as_str().to_owned()),
            actor_id: Set("system".into()),
            actor_role: Set("system".into()),
            reason: Set(detail.reason.clone()),
            at: Set(now),
            version: Set(c.version),
            ..Default::default()
        })
        .exec_without_returning(&txn)
        .await
        .map_err(retryable)?;
        emit(&txn, PRODUCER, &self.state.topics.case_lifecycle, &c.id.to_string(), &out).await.map_err(retryable)?;
        txn.commit().await.map_err(retryable)?;
        // Crash tests stop here: the case is committed, the offset is not.
        gridwork_platform::failpoint::hit("mediation.after_db_commit").await;
        self.state.wake.notify_one();
        self.state.cases_created.with_label_values(&[c.channel.as_str()]).inc();
        crate::live::publish(
            &self.state,
            out.id,
            CaseEventKind::Created,
            &repo::to_model(&c, &route.rule_id, now),
            now,
        )
        .await;
        tracing::info!(case = %c.id, report = %report_id, centre = %c.centre, channel = c.channel.as_str(), "case opened");
        Ok(())
    }
}
