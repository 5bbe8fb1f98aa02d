//! How a case looks to those who work it: the queue's row and the detail's
//! core, and a report as the detail shows it (parties masked).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use gridwork_domain::{Channel, Hierarchy};
use gridwork_storage::entity::{case, media, report};
use serde::Serialize;
use utoipa::ToSchema;

use crate::pii::MaskedParty;
use crate::repo::cases::is_overdue;
use crate::State;
use gridwork_platform::media::{refs, MediaRef};

/// A case as those who work it see it: the queue's row, and the core of
/// the detail.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaseView {
    #[schema(format = Uuid)]
    pub id: String,
    /// The report that opened the case.
    #[schema(format = Uuid)]
    pub report_id: String,
    /// The centre whose queue holds the case.
    pub centre: String,
    /// The lead channel.
    #[schema(schema_with = crate::schema::channel)]
    pub channel: String,
    /// The lead channel's Chinese name.
    pub channel_zh: &'static str,
    /// Channels assisting in joint handling (联合调处).
    #[schema(schema_with = crate::schema::channels)]
    pub joint: Vec<String>,
    /// 1 (highest) to 5.
    pub priority: i32,
    /// A category code of the taxonomy.
    pub category: String,
    #[schema(schema_with = crate::schema::urgency)]
    pub urgency: String,
    /// Where it is: its grid and the units above it.
    #[schema(value_type = gridwork_platform::openapi::HierarchySchema)]
    pub hierarchy: Hierarchy,
    /// Where the first report saw the incident (WGS-84), for the map;
    /// `null` for a case opened before this was kept.
    #[schema(required)]
    pub lat: Option<f64>,
    #[schema(required)]
    pub lon: Option<f64>,
    #[schema(schema_with = crate::schema::case_status)]
    pub status: String,
    /// Who holds the case (签收), and until when.
    pub claimed_by: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    /// A suspended case's status before it was suspended.
    pub suspended_from: Option<String>,
    /// How it was resolved (`mediated_agreement`, `not_agreed`,
    /// `referred_to_litigation`, `withdrawn`, `handled`).
    pub outcome: Option<String>,
    /// The callback's (回访) satisfaction.
    pub satisfaction: Option<String>,
    /// A petition's class (初次信访 or repeat), for petitions only.
    pub petition_class: Option<String>,
    /// The routing rule that put it in its queue.
    pub routing_rule: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub accept_due_at: Option<DateTime<Utc>>,
    /// Whether a petition's deadline was extended (延期).
    pub extended: bool,
    /// The close-out (or, for an unaccepted petition, acceptance) deadline
    /// has passed while the case is still being worked
    /// ([`gridwork_domain::CaseStatus::overdue`]).
    pub overdue: bool,
    /// The case's version: send it with an action to refuse a stale view
    /// (409).
    pub version: i64,
}

/// The case as its workers see it at `now`.
pub fn view(m: case::Model, now: DateTime<Utc>) -> CaseView {
    CaseView {
        overdue: is_overdue(&m, now),
        channel_zh: Channel::parse(&m.channel).map(|c| c.name_zh()).unwrap_or(""),
        joint: m.joint.split(',').filter(|c| !c.is_empty()).map(str::to_owned).collect(),
        hierarchy: Hierarchy {
            grid: m.grid,
            community: m.community,
            street: m.street,
            county: m.county,
            city: m.city,
            province: m.province,
        },
        lat: m.lat,
        lon: m.lon,
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

/// Where a report saw the incident, as the phone sent it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaseReportLocation {
    pub lat: f64,
    pub lon: f64,
    /// `wgs84` or `gcj02`.
    pub crs: String,
}

/// A report of the case, as its detail shows it: its parties masked (see
/// `POST /v1/cases/{id}/parties` for the audited full view).
#[derive(Debug, Serialize, ToSchema)]
pub struct CaseReport {
    /// The parties, masked; `null` if they cannot be read.
    #[schema(required)]
    pub parties: Option<Vec<MaskedParty>>,
    #[schema(format = Uuid)]
    pub id: String,
    /// The grid worker (or API key) who sent it.
    pub reporter: String,
    pub occurred_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub description: String,
    pub address: Option<String>,
    pub location: CaseReportLocation,
    pub party_count: usize,
    /// The photos and videos it shows (fetch each from its `url` with the
    /// bearer token; scoped like the case).
    pub media: Vec<MediaRef>,
}

/// The media ids report `r` names.
pub fn report_media_ids(r: &report::Model) -> Vec<String> {
    r.media.as_deref().and_then(|m| serde_json::from_str(m).ok()).unwrap_or_default()
}

/// A report as the case detail shows it: its parties masked, with what
/// `uploaded` holds of its media.
pub fn case_report(state: &State, r: report::Model, uploaded: &HashMap<String, media::Model>) -> CaseReport {
    CaseReport {
        media: refs(report_media_ids(&r), uploaded),
        party_count: r.party_count(),
        parties: crate::pii::masked(state, &r),
        location: CaseReportLocation { lat: r.lat, lon: r.lon, crs: r.crs },
        id: r.id,
        reporter: r.reporter,
        occurred_at: r.occurred_at,
        received_at: r.received_at,
        description: r.description,
        address: r.address,
    }
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
        assert_eq!(v.hierarchy.grid, "371002001001001");
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
