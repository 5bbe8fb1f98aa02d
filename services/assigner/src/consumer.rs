//! Assigns each submitted report to its grid and publishes report-assigned
//! through the outbox.

use std::sync::Arc;

use actix_web::web;
use async_trait::async_trait;
use gridwork_bus::{Handler, HandlerError, Message};
use gridwork_domain::codes;
use gridwork_domain::report::Crs;
use gridwork_domain::Urgency;
use gridwork_events::{pb, Event, Payload, Topics};
use gridwork_platform::pipeline::{self, decode, emit, retryable};
use gridwork_storage::dedup;
use sea_orm::{DatabaseConnection, TransactionTrait};
use tokio::sync::Notify;

use crate::{State, PRODUCER};

/// The most reports assigned in one transaction (see mediation's
/// `MAX_BATCH`).
const MAX_BATCH: usize = 64;

pub(crate) struct Assigner {
    pub(crate) db: DatabaseConnection,
    pub(crate) state: web::Data<State>,
    pub(crate) topics: Topics,
    pub(crate) wake: Arc<Notify>,
    pub(crate) assigned: prometheus::IntCounterVec,
}

/// One report's assignment, ready to be recorded.
struct Assigned {
    event_id: String,
    report_id: String,
    topic: String,
    key: String,
    out: Event,
    grid: String,
    centre: String,
    outcome: &'static str,
}

#[async_trait]
impl Handler for Assigner {
    async fn handle(&self, msg: &Message) -> Result<(), HandlerError> {
        self.assign_all(std::slice::from_ref(msg)).await
    }

    /// The batch's assignments in one transaction: all or none.
    async fn handle_batch(&self, msgs: &[Message]) -> Result<(), HandlerError> {
        self.assign_all(msgs).await
    }

    fn max_batch(&self) -> usize {
        MAX_BATCH
    }
}

impl Assigner {
    async fn assign_all(&self, msgs: &[Message]) -> Result<(), HandlerError> {
        let mut assigned = Vec::with_capacity(msgs.len());
        for msg in msgs {
            assigned.push(self.assign(msg).await?);
        }
        let txn = self.db.begin().await.map_err(retryable)?;
        let mut recorded = Vec::with_capacity(assigned.len());
        for a in assigned {
            if dedup::first_delivery(&txn, PRODUCER, &a.event_id).await.map_err(retryable)? {
                emit(&txn, PRODUCER, &a.topic, &a.key, &a.out).await.map_err(retryable)?;
                recorded.push(a);
            }
        }
        txn.commit().await.map_err(retryable)?;
        if recorded.is_empty() {
            return Ok(());
        }
        self.wake.notify_one();
        for a in recorded {
            self.assigned.with_label_values(&[a.outcome]).inc();
            tracing::info!(report = %a.report_id, grid = %a.grid, centre = %a.centre, outcome = a.outcome, "report assigned");
        }
        Ok(())
    }

    /// Finds the report's grid; nothing is written yet.
    async fn assign(&self, msg: &Message) -> Result<Assigned, HandlerError> {
        let event = decode(msg)?;
        let Payload::ReportSubmitted(r) = &event.payload else {
            return Err(HandlerError::Poison(format!(
                "unexpected schema {} on report-submitted",
                event.payload.schema()
            )));
        };
        let loc = r.location.clone().ok_or_else(|| HandlerError::Poison("report without location".into()))?;
        let crs = match loc.crs.as_str() {
            "gcj02" => Crs::Gcj02,
            "wgs84" | "" => Crs::Wgs84,
            other => return Err(HandlerError::Poison(format!("unknown crs {other:?}"))),
        };
        let occurred = gridwork_events::from_timestamp(r.occurred_at.as_ref()).unwrap_or(event.occurred_at);
        let grids = self.state.grids_at(occurred).await.map_err(pipeline::classify)?;
        let mut a = grids
            .assign(loc.lat, loc.lon, crs)
            .ok_or_else(|| HandlerError::Poison("no county known: the grid registry is empty".into()))?;
        // Received in person at a higher centre that covers the place: that
        // centre's queues get it. A centre elsewhere is ignored.
        if !r.received_by.is_empty() {
            if codes::covers(&r.received_by, a.hierarchy.finest()) {
                a.centre = r.received_by.clone();
            } else {
                tracing::warn!(report = %r.report_id, received_by = %r.received_by, "received_by does not cover the report's place; the grid's centre takes it");
            }
        }
        let h = &a.hierarchy;
        let key = h.finest().to_owned();
        let out = Event::new(
            PRODUCER,
            event.occurred_at,
            Payload::ReportAssigned(pb::report::ReportAssigned {
                report_id: r.report_id.clone(),
                reporter_id: r.reporter_id.clone(),
                occurred_at: r.occurred_at,
                category: r.category.clone(),
                urgency: r.urgency.clone(),
                assignment: Some(pb::report::Assignment {
                    grid: h.grid.clone(),
                    community: h.community.clone(),
                    street: h.street.clone(),
                    county: h.county.clone(),
                    city: h.city.clone(),
                    province: h.province.clone(),
                    approximate: a.approximate,
                    distance_m: a.distance_m,
                    centre: a.centre.clone(),
                    lat: a.lat,
                    lon: a.lon,
                }),
                petitioner_key: r.petitioner_key.clone(),
                matter_key: r.matter_key.clone(),
                on_spot_outcome: r.on_spot_outcome.clone(),
                // Never the note's text (an older intake sent it): only its length.
                on_spot_note: String::new(),
                on_spot_note_chars: if r.on_spot_note_chars > 0 {
                    r.on_spot_note_chars
                } else {
                    u32::try_from(r.on_spot_note.chars().count()).unwrap_or(u32::MAX)
                },
            }),
        );
        let emergency =
            Urgency::parse(&r.urgency).is_some_and(|u| gridwork_domain::report::is_emergency(u, &r.category));
        let outcome = if h.grid.is_empty() {
            "triage"
        } else if a.approximate {
            "approximate"
        } else {
            "inside"
        };
        Ok(Assigned {
            event_id: event.id.to_string(),
            report_id: r.report_id.clone(),
            topic: self.topics.assigned(emergency).to_owned(),
            key,
            grid: h.grid.clone(),
            centre: a.centre.clone(),
            outcome,
            out,
        })
    }
}
