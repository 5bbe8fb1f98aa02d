//! How a case looks to those who work it: the queue's row and the detail's
//! core, and a report as the detail shows it (parties masked).

use chrono::{DateTime, Utc};
use gridwork_domain::Channel;
use gridwork_storage::entity::{case, report};
use serde::Serialize;

use crate::repo::cases::is_overdue;
use crate::State;

#[derive(Debug, Serialize)]
pub struct CaseView {
    pub id: String,
    pub report_id: String,
    pub centre: String,
    pub channel: String,
    pub channel_zh: &'static str,
    /// Channels assisting in joint handling (联合调处).
    pub joint: Vec<String>,
    pub priority: i32,
    pub category: String,
    pub urgency: String,
    pub hierarchy: serde_json::Value,
    pub status: String,
    pub claimed_by: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    pub suspended_from: Option<String>,
    pub outcome: Option<String>,
    pub satisfaction: Option<String>,
    pub petition_class: Option<String>,
    pub routing_rule: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub accept_due_at: Option<DateTime<Utc>>,
    pub extended: bool,
    /// The close-out (or, for an unaccepted petition, acceptance) deadline
    /// has passed while the case is still being worked
    /// ([`gridwork_domain::CaseStatus::overdue`]).
    pub overdue: bool,
    pub version: i64,
}

/// The case as its workers see it at `now`.
pub fn view(m: case::Model, now: DateTime<Utc>) -> CaseView {
    CaseView {
        overdue: is_overdue(&m, now),
        channel_zh: Channel::parse(&m.channel).map(|c| c.name_zh()).unwrap_or(""),
        joint: m.joint.split(',').filter(|c| !c.is_empty()).map(str::to_owned).collect(),
        hierarchy: serde_json::json!({
            "grid": m.grid, "community": m.community, "street": m.street,
            "county": m.county, "city": m.city, "province": m.province,
        }),
        id: m.id,
        report_id: m.report_id,
        centre: m.centre,
        channel: m.channel,
        priority: m.priority,
        category: m.category,
        urgency: m.urgency,
        status: m.status,
        claimed_by: m.claimed_by,
        lease_until: m.lease_until,
        suspended_from: m.suspended_from,
        outcome: m.outcome,
        satisfaction: m.satisfaction,
        petition_class: m.petition_class,
        routing_rule: m.routing_rule,
        created_at: m.created_at,
        updated_at: m.updated_at,
        due_at: m.due_at,
        accept_due_at: m.accept_due_at,
        extended: m.extended,
        version: m.version,
    }
}

/// A report as the case detail shows it: its parties masked.
pub fn report_json(state: &State, r: report::Model) -> serde_json::Value {
    let party_count = r.party_count();
    let parties = crate::pii::masked(state, &r);
    serde_json::json!({
        "parties": parties,
        "id": r.id, "reporter": r.reporter, "occurred_at": r.occurred_at, "received_at": r.received_at,
        "description": r.description, "address": r.address,
        "location": {"lat": r.lat, "lon": r.lon, "crs": r.crs},
        "party_count": party_count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::testing::case_row;
    use chrono::Duration;

    #[test]
    fn a_case_as_its_workers_see_it() {
        let now = Utc::now();
        let mut m = case_row("c1", "371002001", "people_mediation", "legal_aid,counselling");
        m.grid = "371002001001001".into();
        let v = view(m.clone(), now);
        assert_eq!(v.channel_zh, "人民调解");
        assert_eq!(v.joint, ["legal_aid", "counselling"]);
        assert_eq!(v.hierarchy["grid"], "371002001001001");
        assert!(!v.overdue);
        // Overdue by the one rule: the deadline passed while the clock runs…
        m.due_at = now - Duration::minutes(1);
        assert!(view(m.clone(), now).overdue);
        // …not while suspended; and an unaccepted petition past its
        // acceptance deadline is overdue before its close-out deadline.
        m.status = "suspended".into();
        assert!(!view(m.clone(), now).overdue);
        m.status = "created".into();
        m.due_at = now + Duration::days(60);
        m.accept_due_at = Some(now - Duration::minutes(1));
        assert!(view(m.clone(), now).overdue);
        m.status = "accepted".into();
        assert!(!view(m, now).overdue);
        let none = view(case_row("c2", "371002001", "no_such_channel", ""), now);
        assert_eq!((none.channel_zh, none.joint.len()), ("", 0));
    }
}
