//! Opens a case for each assigned report, or links the report to an open
//! case of the same incident.

use actix_web::web;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use gridwork_bus::{Handler, HandlerError, Message};
use gridwork_domain::auth::{Actor, Role};
use gridwork_domain::petition::{self, PetitionInfo};
use gridwork_domain::{Case, CaseAction, CaseEventKind, CaseStatus, Hierarchy, NewCase, Outcome, Step, Urgency};
use gridwork_events::convert::{Cause, ReasonCode, TransitionDetail};
use gridwork_platform::pipeline::{decode, retryable};
use gridwork_storage::dedup;
use gridwork_storage::entity::{case, case_report, report};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter,
    TransactionTrait,
};
use uuid::Uuid;

use crate::repo::{self, Extra};
use crate::{link, State, PRODUCER};

pub struct CaseOpener {
    pub state: web::Data<State>,
}

/// The report as mediation sees it.
struct Incoming {
    report_id: Uuid,
    category: String,
    urgency: Urgency,
    hierarchy: Hierarchy,
    centre: String,
    lat: f64,
    lon: f64,
    occurred_at: DateTime<Utc>,
    petition: Option<(String, String)>,
    reporter: String,
    /// 就地化解: resolved by the reporting grid worker on the spot.
    on_spot: Option<(Outcome, String)>,
}

/// The most assigned reports opened in one transaction: enough to amortise
/// the commit under load, few enough that an emergency lane sharing the
/// database (the embedded default's single writer) never waits long.
const MAX_BATCH: usize = 32;

#[async_trait]
impl Handler for CaseOpener {
    async fn handle(&self, msg: &Message) -> Result<(), HandlerError> {
        self.open_cases(std::slice::from_ref(msg)).await
    }

    /// The batch in one transaction: all its cases or none.
    async fn handle_batch(&self, msgs: &[Message]) -> Result<(), HandlerError> {
        self.open_cases(msgs).await
    }

    fn max_batch(&self) -> usize {
        MAX_BATCH
    }
}

/// Reads an assigned report; anything it lacks makes it poison.
fn incoming(msg: &Message) -> Result<(String, Incoming), HandlerError> {
    let event = decode(msg)?;
    let gridwork_events::Payload::ReportAssigned(r) = &event.payload else {
        return Err(HandlerError::Poison(format!("unexpected schema {} on report-assigned", event.payload.schema())));
    };
    let poison = |m: String| HandlerError::Poison(m);
    let report_id = Uuid::parse_str(&r.report_id).map_err(|_| poison(format!("report_id {:?}", r.report_id)))?;
    let asg = r.assignment.clone().ok_or_else(|| poison("no assignment".into()))?;
    let hierarchy = Hierarchy::from(&asg);
    let urgency = Urgency::parse(&r.urgency).ok_or_else(|| poison(format!("urgency {:?}", r.urgency)))?;
    let incoming = Incoming {
        report_id,
        category: r.category.clone(),
        urgency,
        centre: asg.centre.clone(),
        hierarchy,
        lat: asg.lat,
        lon: asg.lon,
        occurred_at: gridwork_events::from_timestamp(r.occurred_at.as_ref()).unwrap_or(event.occurred_at),
        petition: (!r.petitioner_key.is_empty()).then(|| (r.petitioner_key.clone(), r.matter_key.clone())),
        reporter: r.reporter_id.clone(),
        on_spot: Outcome::parse(&r.on_spot_outcome).map(|o| (o, r.on_spot_note.clone())),
    };
    Ok((event.id.to_string(), incoming))
}

impl CaseOpener {
    /// Opens (or links) the cases of `msgs` in one transaction, then tells
    /// the live streams.
    async fn open_cases(&self, msgs: &[Message]) -> Result<(), HandlerError> {
        let reports = msgs.iter().map(incoming).collect::<Result<Vec<_>, _>>()?;
        let txn = self.state.db.begin().await.map_err(retryable)?;
        let mut recorded = Vec::with_capacity(reports.len());
        for (event_id, incoming) in &reports {
            if let Some(r) = self.record(&txn, event_id, incoming).await? {
                recorded.push(r);
            }
        }
        txn.commit().await.map_err(retryable)?;
        // Crash tests stop here: the cases are committed, the offsets are not.
        gridwork_platform::failpoint::hit("mediation.after_db_commit").await;
        if recorded.is_empty() {
            return Ok(());
        }
        self.state.wake.notify_one();
        for (model, rec, now) in &recorded {
            crate::cases::publish::publish(&self.state, rec, model, *now).await;
        }
        Ok(())
    }

    /// One report's case, inside the batch's transaction; `None` when the
    /// event or the report was handled before.
    async fn record<C: ConnectionTrait>(
        &self,
        txn: &C,
        event_id: &str,
        incoming: &Incoming,
    ) -> Result<Option<(case::Model, repo::Recorded, DateTime<Utc>)>, HandlerError> {
        if !dedup::first_delivery(txn, PRODUCER, event_id).await.map_err(retryable)? {
            return Ok(None);
        }
        let report_id = incoming.report_id;
        // One case per report, even if the assignment was published twice.
        let known = case::Entity::find()
            .filter(case::Column::ReportId.eq(report_id.to_string()))
            .count(txn)
            .await
            .map_err(retryable)?
            + case_report::Entity::find_by_id(report_id.to_string()).count(txn).await.map_err(retryable)?;
        if known > 0 {
            return Ok(None);
        }
        let now = Utc::now();
        let is_petition = self.state.petition_categories.contains(&incoming.category);
        // Petitions are never merged: each is a person's own matter; nor is
        // a matter the grid worker already resolved on the spot.
        let duplicate_of = if is_petition || incoming.on_spot.is_some() {
            None
        } else {
            link::find_open_case(
                txn,
                &self.state,
                &incoming.category,
                &incoming.hierarchy,
                incoming.lat,
                incoming.lon,
                incoming.occurred_at,
            )
            .await
            .map_err(retryable)?
        };
        let (model, rec) = match duplicate_of {
            Some((row, distance_m)) => self.link(txn, row, incoming, distance_m, now).await.map_err(retryable)?,
            None => self.open(txn, incoming, is_petition, now).await?,
        };
        Ok(Some((model, rec, now)))
    }
    /// Links the report to `row`, an open case of the same incident.
    async fn link<C: ConnectionTrait>(
        &self,
        txn: &C,
        row: case::Model,
        incoming: &Incoming,
        distance_m: f64,
        now: DateTime<Utc>,
    ) -> Result<(case::Model, repo::Recorded), DbErr> {
        repo::lock_case(txn, &row.id).await?;
        let row = case::Entity::find_by_id(row.id.clone()).one(txn).await?.unwrap_or(row);
        let mut c = repo::to_domain(&row).map_err(DbErr::Custom)?;
        case_report::Model {
            report_id: incoming.report_id.to_string(),
            case_id: row.id.clone(),
            linked_at: now,
            linked_by: "system".into(),
            distance_m,
            split_case_id: None,
        }
        .into_active_model()
        .reset_all()
        .insert(txn)
        .await?;
        let step = c.note(CaseEventKind::ReportLinked);
        case::Entity::update_many()
            .col_expr(case::Column::Version, sea_orm::sea_query::Expr::value(c.version))
            .col_expr(case::Column::UpdatedAt, sea_orm::sea_query::Expr::value(now))
            .filter(case::Column::Id.eq(row.id.as_str()))
            .exec(txn)
            .await?;
        let detail = TransitionDetail {
            reason: format!(
                "report {} of the same incident, {distance_m:.0} m away, linked instead of opening a case",
                incoming.report_id
            ),
            reason_code: Some(ReasonCode::ReportLinked),
            linked_report_id: incoming.report_id.to_string(),
            ..Default::default()
        };
        let rec = repo::record(txn, &self.state, &c, step, Cause::System, &detail, now).await?;
        self.state.reports_linked.with_label_values(&[]).inc();
        tracing::info!(case = %c.id, report = %incoming.report_id, distance_m, "report linked to an open case");
        let mut model = row;
        model.version = c.version;
        model.updated_at = now;
        Ok((model, rec))
    }

    /// Opens a new case for the report.
    async fn open<C: ConnectionTrait>(
        &self,
        txn: &C,
        incoming: &Incoming,
        is_petition: bool,
        now: DateTime<Utc>,
    ) -> Result<(case::Model, repo::Recorded), HandlerError> {
        let routing = self.state.routing().map_err(HandlerError::Retryable)?;
        let route = routing
            .route(&incoming.category, incoming.urgency, &incoming.hierarchy)
            .ok_or_else(|| HandlerError::Poison(format!("no routing rule matches {}", incoming.category)))?;
        let petition = match (&incoming.petition, is_petition) {
            (Some((pk, mk)), true) => {
                let earlier = case::Entity::find()
                    .filter(case::Column::PetitionerKey.eq(pk.as_str()))
                    .filter(case::Column::MatterKey.eq(mk.as_str()))
                    .all(txn)
                    .await
                    .map_err(retryable)?;
                let earlier: Vec<(String, CaseStatus)> = earlier
                    .iter()
                    .map(|c| (c.centre.clone(), CaseStatus::parse(&c.status).unwrap_or(CaseStatus::Created)))
                    .collect();
                Some(PetitionInfo {
                    petitioner_key: pk.clone(),
                    matter_key: mk.clone(),
                    class: petition::classify(&incoming.centre, &earlier),
                })
            }
            _ => None,
        };
        let clocks = self.state.clocks.open(&route, petition.is_some(), now);
        let mut c = Case::new(NewCase {
            id: Uuid::now_v7(),
            report_id: incoming.report_id,
            centre: incoming.centre.clone(),
            channel: route.channel,
            priority: route.priority,
            category: incoming.category.clone(),
            urgency: incoming.urgency,
            hierarchy: incoming.hierarchy.clone(),
            petition,
            created_at: now,
            due_at: clocks.due_at,
            accept_due_at: clocks.accept_due_at,
        });
        let rep = report::Entity::find_by_id(incoming.report_id.to_string()).one(txn).await.map_err(retryable)?;
        // What the text filter searches: the report's own words.
        let words = rep
            .as_ref()
            .map(|r| format!("{} {}", r.address.as_deref().unwrap_or(""), r.description))
            .unwrap_or_default();
        let extra = Extra {
            routing_rule: route.rule_id.clone(),
            lat: Some(incoming.lat),
            lon: Some(incoming.lon),
            occurred_at: Some(incoming.occurred_at),
            search: format!("{} {}", incoming.category, words).to_lowercase(),
        };
        let model = repo::to_model(&c, &extra, self.state.near_due_share, now);
        model.clone().into_active_model().reset_all().insert(txn).await.map_err(retryable)?;
        let detail = TransitionDetail {
            reason: format!(
                "routed by rule {} (rules v{}); close-out within {} ({})",
                route.rule_id, route.rules_version, clocks.within, route.sla_source
            ),
            reason_code: Some(ReasonCode::Routing),
            routing_rule: route.rule_id.clone(),
            routing_version: route.rules_version,
            ..Default::default()
        };
        let step = Step { kind: CaseEventKind::Created, status: c.status, version: c.version };
        let mut rec = repo::record(txn, &self.state, &c, step, Cause::System, &detail, now).await.map_err(retryable)?;
        let mut model = model;
        // 就地化解: the reporting grid worker resolved it on the spot; the
        // case is claimed, resolved and closed in their name at once.
        if let Some((outcome, sent_note)) = &incoming.on_spot {
            // The note is kept, sealed, with the report (the topic carries
            // only its length); an older intake sent it on the topic.
            let note = match rep.as_ref().and_then(|r| r.on_spot_note.as_ref().map(|n| (r.id.as_str(), n))) {
                Some((id, sealed)) => match self.state.keyring.open(id, sealed) {
                    Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                    Err(e) => {
                        // It stays with the report; the case goes on without it.
                        tracing::warn!(report = %id, error = %e, "the on-the-spot note does not open");
                        String::new()
                    }
                },
                None => sent_note.clone(),
            };
            let worker = Actor {
                id: incoming.reporter.clone(),
                role: Role::GridWorker,
                scope: incoming.hierarchy.grid.clone(),
                channel: None,
            };
            let mut steps = Vec::new();
            for action in [
                CaseAction::Claim,
                CaseAction::Resolve { outcome: *outcome, note: (!note.is_empty()).then(|| note.clone()) },
                CaseAction::Close,
            ] {
                steps.extend(
                    c.apply(&action, &worker, now, self.state.lease)
                        .map_err(|e| HandlerError::Poison(format!("on-the-spot resolution: {e}")))?,
                );
            }
            model = repo::to_model(&c, &extra, self.state.near_due_share, now);
            model.clone().into_active_model().reset_all().update(txn).await.map_err(retryable)?;
            for s in steps {
                let detail = TransitionDetail {
                    reason: "resolved on the spot by the reporting grid worker (就地化解)".into(),
                    reason_code: Some(ReasonCode::OnTheSpot),
                    // The worker's note, with the resolution.
                    stated: if s.kind == CaseEventKind::Resolved { note.clone() } else { String::new() },
                    ..Default::default()
                };
                rec = repo::record(txn, &self.state, &c, s, Cause::Actor(&worker), &detail, now)
                    .await
                    .map_err(retryable)?;
            }
        }
        self.state.cases_created.with_label_values(&[c.channel.as_str()]).inc();
        tracing::info!(case = %c.id, report = %incoming.report_id, centre = %c.centre, channel = c.channel.as_str(), "case opened");
        Ok((model, rec))
    }
}
