//! Conversions between domain types and protobuf messages.

use chrono::{DateTime, Utc};
use gridwork_domain::auth::Actor;
use gridwork_domain::petition::{PetitionClass, PetitionInfo};
use gridwork_domain::{Case, CaseEventKind, CaseStatus, Channel, Hierarchy, Outcome, Satisfaction, Urgency};
use uuid::Uuid;

use crate::pb;
use crate::{from_timestamp, timestamp, DecodeError};

impl From<&Hierarchy> for pb::case::Hierarchy {
    fn from(h: &Hierarchy) -> Self {
        pb::case::Hierarchy {
            grid: h.grid.clone(),
            community: h.community.clone(),
            street: h.street.clone(),
            county: h.county.clone(),
            city: h.city.clone(),
            province: h.province.clone(),
        }
    }
}

impl From<&pb::case::Hierarchy> for Hierarchy {
    fn from(h: &pb::case::Hierarchy) -> Self {
        Hierarchy {
            grid: h.grid.clone(),
            community: h.community.clone(),
            street: h.street.clone(),
            county: h.county.clone(),
            city: h.city.clone(),
            province: h.province.clone(),
        }
    }
}

impl From<&pb::report::Assignment> for Hierarchy {
    fn from(a: &pb::report::Assignment) -> Self {
        Hierarchy {
            grid: a.grid.clone(),
            community: a.community.clone(),
            street: a.street.clone(),
            county: a.county.clone(),
            city: a.city.clone(),
            province: a.province.clone(),
        }
    }
}

/// Who caused a lifecycle event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause<'a> {
    /// The pipeline itself (routing a new report).
    System,
    Actor(&'a Actor),
}

/// Why the pipeline (not a person) explains an event: the codes of
/// `CaseEvent.reason_code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReasonCode {
    /// Opened by the routing rules.
    Routing,
    /// A report of the same incident linked to the case.
    ReportLinked,
    /// Opened from a report split off another case.
    Split,
    /// Resolved on the spot by the reporting grid worker (就地化解).
    OnTheSpot,
    /// A supervision notice (督办).
    Supervision,
}

impl ReasonCode {
    pub const ALL: [ReasonCode; 5] = [
        ReasonCode::Routing,
        ReasonCode::ReportLinked,
        ReasonCode::Split,
        ReasonCode::OnTheSpot,
        ReasonCode::Supervision,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonCode::Routing => "routing",
            ReasonCode::ReportLinked => "report_linked",
            ReasonCode::Split => "split",
            ReasonCode::OnTheSpot => "on_the_spot",
            ReasonCode::Supervision => "supervision",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        ReasonCode::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// Details of one transition beyond the case itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransitionDetail {
    /// A machine-written explanation (no personal data): published.
    pub reason: String,
    /// What `reason` explains.
    pub reason_code: Option<ReasonCode>,
    /// The words a person gave with the action (a reason or a note). They
    /// can name people: kept, sealed, in the database; the topic carries
    /// only their length.
    pub stated: String,
    pub routing_rule: String,
    pub routing_version: u32,
    pub from_centre: String,
    pub from_channel: String,
    pub linked_report_id: String,
    pub split_case_id: String,
    pub clock: String,
}

/// The lifecycle message for `kind`, carrying `case` as it is after it.
pub fn case_event(
    case: &Case,
    kind: CaseEventKind,
    cause: Cause<'_>,
    detail: &TransitionDetail,
) -> pb::case::CaseEvent {
    let (actor_id, actor_role) = match cause {
        Cause::System => ("system".to_owned(), "system".to_owned()),
        Cause::Actor(a) => (a.id.clone(), a.role.as_str().to_owned()),
    };
    pb::case::CaseEvent {
        case_id: case.id.to_string(),
        report_id: case.report_id.to_string(),
        kind: kind.as_str().to_owned(),
        status: case.status.as_str().to_owned(),
        actor_id,
        actor_role,
        reason: detail.reason.clone(),
        reason_code: detail.reason_code.map(|c| c.as_str().to_owned()).unwrap_or_default(),
        stated_chars: u32::try_from(detail.stated.chars().count()).unwrap_or(u32::MAX),
        outcome: case.outcome.map(|o| o.as_str().to_owned()).unwrap_or_default(),
        satisfaction: case.satisfaction.map(|s| s.as_str().to_owned()).unwrap_or_default(),
        centre: case.centre.clone(),
        channel: case.channel.as_str().to_owned(),
        priority: u32::from(case.priority),
        category: case.category.clone(),
        urgency: case.urgency.as_str().to_owned(),
        hierarchy: Some((&case.hierarchy).into()),
        created_at: Some(timestamp(case.created_at)),
        due_at: Some(timestamp(case.due_at)),
        version: case.version,
        petition: case.petition.as_ref().map(|p| pb::case::Petition {
            petitioner_key: p.petitioner_key.clone(),
            matter_key: p.matter_key.clone(),
            class: p.class.as_str().to_owned(),
        }),
        routing_rule: detail.routing_rule.clone(),
        routing_version: detail.routing_version,
        joint_channels: case.joint.iter().map(|c| c.as_str().to_owned()).collect(),
        from_centre: detail.from_centre.clone(),
        from_channel: detail.from_channel.clone(),
        linked_report_id: detail.linked_report_id.clone(),
        split_case_id: detail.split_case_id.clone(),
        accept_due_at: case.accept_due_at.map(timestamp),
        clock: detail.clock.clone(),
    }
}

/// A lifecycle message read back into domain terms.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseEventView {
    pub case_id: Uuid,
    pub report_id: Uuid,
    pub kind: CaseEventKind,
    pub status: CaseStatus,
    pub actor_id: String,
    /// The machine-written explanation, if any (never a person's words).
    pub reason: String,
    pub reason_code: Option<ReasonCode>,
    /// How long the words the actor gave were (0: none); the words stay
    /// with mediation.
    pub stated_chars: u32,
    pub outcome: Option<Outcome>,
    pub satisfaction: Option<Satisfaction>,
    pub centre: String,
    pub channel: Channel,
    pub priority: u8,
    pub category: String,
    pub urgency: Urgency,
    pub hierarchy: Hierarchy,
    pub created_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    /// The acceptance deadline, for cases with an acceptance clock.
    pub accept_due_at: Option<DateTime<Utc>>,
    pub version: i64,
    pub petition: Option<PetitionInfo>,
}

fn parse<T>(field: &'static str, value: &str, f: impl Fn(&str) -> Option<T>) -> Result<T, DecodeError> {
    f(value).ok_or_else(|| DecodeError::Invalid(format!("{field} = {value:?}")))
}

fn optional<T>(field: &'static str, value: &str, f: impl Fn(&str) -> Option<T>) -> Result<Option<T>, DecodeError> {
    if value.is_empty() {
        Ok(None)
    } else {
        parse(field, value, f).map(Some)
    }
}

fn uuid(field: &'static str, value: &str) -> Result<Uuid, DecodeError> {
    Uuid::parse_str(value).map_err(|_| DecodeError::Invalid(format!("{field} = {value:?} is not a UUID")))
}

impl TryFrom<&pb::case::CaseEvent> for CaseEventView {
    type Error = DecodeError;
    fn try_from(e: &pb::case::CaseEvent) -> Result<Self, DecodeError> {
        Ok(CaseEventView {
            case_id: uuid("case_id", &e.case_id)?,
            report_id: uuid("report_id", &e.report_id)?,
            kind: parse("kind", &e.kind, CaseEventKind::parse)?,
            status: parse("status", &e.status, CaseStatus::parse)?,
            actor_id: e.actor_id.clone(),
            reason: e.reason.clone(),
            // An unknown code (a newer producer) is no reason to refuse the event.
            reason_code: ReasonCode::parse(&e.reason_code),
            stated_chars: e.stated_chars,
            outcome: optional("outcome", &e.outcome, Outcome::parse)?,
            satisfaction: optional("satisfaction", &e.satisfaction, Satisfaction::parse)?,
            centre: e.centre.clone(),
            channel: parse("channel", &e.channel, Channel::parse)?,
            priority: u8::try_from(e.priority).map_err(|_| DecodeError::Invalid("priority".into()))?,
            category: e.category.clone(),
            urgency: parse("urgency", &e.urgency, Urgency::parse)?,
            hierarchy: e.hierarchy.as_ref().map(Hierarchy::from).ok_or(DecodeError::Missing("hierarchy"))?,
            created_at: from_timestamp(e.created_at.as_ref())?,
            due_at: from_timestamp(e.due_at.as_ref())?,
            accept_due_at: e.accept_due_at.as_ref().map(|t| from_timestamp(Some(t))).transpose()?,
            version: e.version,
            petition: match &e.petition {
                None => None,
                Some(p) => Some(PetitionInfo {
                    petitioner_key: p.petitioner_key.clone(),
                    matter_key: p.matter_key.clone(),
                    class: parse("petition.class", &p.class, PetitionClass::parse)?,
                }),
            },
        })
    }
}

/// A KPI row as the snapshot subscribers get it.
pub fn kpi_snapshot(
    jurisdiction: &str,
    level: gridwork_domain::codes::Level,
    period: gridwork_domain::kpi::Period,
    row: &gridwork_domain::kpi::KpiRow,
    computed_at: DateTime<Utc>,
) -> pb::kpi::KpiSnapshot {
    let r =
        |x: &gridwork_domain::kpi::Ratio| Some(pb::kpi::Ratio { numerator: x.numerator, denominator: x.denominator });
    pb::kpi::KpiSnapshot {
        jurisdiction: jurisdiction.to_owned(),
        level: level.as_str().to_owned(),
        period: period.as_str().to_owned(),
        period_start: row.period_start.to_string(),
        volume: row.volume,
        closed: row.closed,
        on_time_close_out: r(&row.on_time_close_out),
        backlog: row.backlog,
        satisfaction: r(&row.satisfaction),
        participation: r(&row.participation),
        first_time_petitions: row.first_time_petitions,
        first_contact_resolution: r(&row.first_contact_resolution),
        first_contact_resolution_provisional: r(&row.first_contact_resolution_provisional),
        computed_at: Some(timestamp(computed_at)),
        on_the_spot_resolution: r(&row.on_the_spot_resolution),
        on_time_acceptance: r(&row.on_time_acceptance),
        callbacks_unanswered: row.callbacks_unanswered,
        median_hours_to_close: row.median_hours_to_close,
        petitions: row.petitions,
        repeat_petition_rate: r(&row.repeat_petition_rate),
        escalation_rate: r(&row.escalation_rate),
        transfer_up_rate: r(&row.transfer_up_rate),
        volume_by_category: row.volume_by_category.iter().map(|(k, v)| (k.clone(), *v)).collect(),
    }
}

/// The snapshot topic's key: one value per jurisdiction, period and bucket.
pub fn kpi_snapshot_key(s: &pb::kpi::KpiSnapshot) -> String {
    format!("{}|{}|{}", s.jurisdiction, s.period, s.period_start)
}
