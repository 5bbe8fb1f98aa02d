//! Committed changes of cases, published to the live streams of every
//! replica (`GET /v1/centres/{code}/stream`, [`crate::live`]) through the
//! fan-out: on the channel of the case's centre and of every unit above it.

use chrono::{DateTime, Utc};
use gridwork_storage::entity::case;

use serde::Serialize;

use super::view::{view, CaseView};
use crate::repo::Recorded;
use crate::State;

/// The fan-out channel of the queues of `code`.
pub fn topic(code: &str) -> String {
    format!("queue:{code}")
}

/// The channels a change of a case in `centre` goes to: the centre and every
/// unit above it (a county centre sees its streets' queues).
pub fn channels(centre: &str) -> Vec<String> {
    let mut out = vec![centre.to_owned()];
    if centre.len() > 6 {
        out.push(centre[..6].to_owned());
    }
    if centre.len() >= 6 {
        out.push(format!("{}00", &centre[..4]));
        out.push(format!("{}0000", &centre[..2]));
    }
    out.dedup();
    out
}

/// A stream event's data: the event and the case as it is at `now`.
pub fn payload(seq: i64, event_id: &str, kind: &str, m: &case::Model, now: DateTime<Utc>) -> String {
    let event = StreamEvent { seq, event_id: event_id.to_owned(), kind: kind.to_owned(), case: view(m.clone(), now) };
    serde_json::to_string(&event).unwrap_or_default()
}

/// The data of a live stream's `case` and `emergency` events: what
/// happened, and the case as it is now.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StreamEvent {
    /// The event's position (the SSE `id`; send it back as `Last-Event-ID`).
    pub seq: i64,
    /// The case-lifecycle event's id.
    pub event_id: String,
    /// What happened (`created`, `claimed`, …).
    pub kind: String,
    pub case: CaseView,
}

/// Publishes one committed lifecycle change to every replica's subscribers:
/// the case's centre and those above it, and the centre it left if it moved.
pub async fn publish(state: &State, rec: &Recorded, m: &case::Model, now: DateTime<Utc>) {
    let body = payload(rec.seq, &rec.event_id.to_string(), rec.kind.as_str(), m, now);
    let mut targets = channels(&m.centre);
    if let Some(from) = &rec.from_centre {
        targets.extend(channels(from));
    }
    targets.sort();
    targets.dedup();
    for ch in targets {
        state.fanout.publish(&topic(&ch), body.clone()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_reaches_every_unit_above_its_centre() {
        assert_eq!(channels("371002001"), ["371002001", "371002", "371000", "370000"]);
        assert_eq!(channels("371002"), ["371002", "371000", "370000"]);
        assert_eq!(topic("371002"), "queue:371002");
    }
}
