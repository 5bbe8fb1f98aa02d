//! The repository: every read and write of mediation's tables. Cases are
//! converted to and from the domain at this edge, and lifecycle events are
//! written in one place ([`record`]: timeline row + outbox); the submodules
//! hold the queries of each part of the service, so handlers build no SQL.

use chrono::{DateTime, Utc};
use gridwork_domain::calendar::near_due_at;
use gridwork_domain::petition::{PetitionClass, PetitionInfo};
use gridwork_domain::{Case, CaseEventKind, CaseStatus, Channel, Hierarchy, Outcome, Satisfaction, Step, Urgency};
use gridwork_events::convert::{case_event, Cause, TransitionDetail};
use gridwork_events::{Event, Payload};
use gridwork_platform::pipeline::emit;
use gridwork_storage::entity::{case, case_event as case_event_row};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, EntityTrait, Set, Statement};
use uuid::Uuid;

use crate::{State, PRODUCER};

pub mod audit;
pub mod cases;
pub mod media;
pub mod routing;
pub mod stream;
pub mod tasks;

pub fn parse_joint(s: &str) -> Option<Vec<Channel>> {
    s.split(',').filter(|c| !c.is_empty()).map(Channel::parse).collect()
}

pub fn to_domain(m: &case::Model) -> Result<Case, String> {
    let bad = |f: &str, v: &str| format!("case {}: stored {f} {v:?} is not valid", m.id);
    Ok(Case {
        id: Uuid::parse_str(&m.id).map_err(|_| bad("id", &m.id))?,
        report_id: Uuid::parse_str(&m.report_id).map_err(|_| bad("report_id", &m.report_id))?,
        centre: m.centre.clone(),
        channel: Channel::parse(&m.channel).ok_or_else(|| bad("channel", &m.channel))?,
        joint: parse_joint(&m.joint).ok_or_else(|| bad("joint", &m.joint))?,
        priority: u8::try_from(m.priority).map_err(|_| bad("priority", &m.priority.to_string()))?,
        category: m.category.clone(),
        urgency: Urgency::parse(&m.urgency).ok_or_else(|| bad("urgency", &m.urgency))?,
        hierarchy: Hierarchy {
            grid: m.grid.clone(),
            community: m.community.clone(),
            street: m.street.clone(),
            county: m.county.clone(),
            city: m.city.clone(),
            province: m.province.clone(),
        },
        status: CaseStatus::parse(&m.status).ok_or_else(|| bad("status", &m.status))?,
        claimed_by: m.claimed_by.clone(),
        lease_until: m.lease_until,
        suspended_from: match &m.suspended_from {
            Some(s) => Some(CaseStatus::parse(s).ok_or_else(|| bad("suspended_from", s))?),
            None => None,
        },
        suspended_at: m.suspended_at,
        outcome: match &m.outcome {
            Some(o) => Some(Outcome::parse(o).ok_or_else(|| bad("outcome", o))?),
            None => None,
        },
        satisfaction: match &m.satisfaction {
            Some(s) => Some(Satisfaction::parse(s).ok_or_else(|| bad("satisfaction", s))?),
            None => None,
        },
        petition: match (&m.petitioner_key, &m.matter_key, &m.petition_class) {
            (Some(p), Some(k), Some(c)) => Some(PetitionInfo {
                petitioner_key: p.clone(),
                matter_key: k.clone(),
                class: PetitionClass::parse(c).ok_or_else(|| bad("petition_class", c))?,
            }),
            _ => None,
        },
        created_at: m.created_at,
        due_at: m.due_at,
        accept_due_at: m.accept_due_at,
        extended: m.extended,
        version: m.version,
    })
}

/// Where and what a case is about beyond the domain's view: kept from its
/// first report, for linking duplicates and for the text filter.
#[derive(Debug, Clone, Default)]
pub struct Extra {
    pub routing_rule: String,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub occurred_at: Option<DateTime<Utc>>,
    pub search: String,
}

impl Extra {
    pub fn of(m: &case::Model) -> Self {
        Extra {
            routing_rule: m.routing_rule.clone(),
            lat: m.lat,
            lon: m.lon,
            occurred_at: m.occurred_at,
            search: m.search.clone(),
        }
    }
}

/// The row of `c`; near-due supervision fires when `near_due_share` of each
/// clock has run.
pub fn to_model(c: &Case, extra: &Extra, near_due_share: f64, now: DateTime<Utc>) -> case::Model {
    case::Model {
        id: c.id.to_string(),
        report_id: c.report_id.to_string(),
        centre: c.centre.clone(),
        channel: c.channel.as_str().to_owned(),
        priority: i32::from(c.priority),
        category: c.category.clone(),
        urgency: c.urgency.as_str().to_owned(),
        grid: c.hierarchy.grid.clone(),
        community: c.hierarchy.community.clone(),
        street: c.hierarchy.street.clone(),
        county: c.hierarchy.county.clone(),
        city: c.hierarchy.city.clone(),
        province: c.hierarchy.province.clone(),
        status: c.status.as_str().to_owned(),
        claimed_by: c.claimed_by.clone(),
        lease_until: c.lease_until,
        outcome: c.outcome.map(|o| o.as_str().to_owned()),
        satisfaction: c.satisfaction.map(|s| s.as_str().to_owned()),
        petitioner_key: c.petition.as_ref().map(|p| p.petitioner_key.clone()),
        matter_key: c.petition.as_ref().map(|p| p.matter_key.clone()),
        petition_class: c.petition.as_ref().map(|p| p.class.as_str().to_owned()),
        routing_rule: extra.routing_rule.clone(),
        created_at: c.created_at,
        due_at: c.due_at,
        updated_at: now,
        version: c.version,
        joint: c.joint.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(","),
        suspended_from: c.suspended_from.map(|s| s.as_str().to_owned()),
        suspended_at: c.suspended_at,
        accept_due_at: c.accept_due_at,
        near_due_at: Some(near_due_at(c.created_at, c.due_at, near_due_share)),
        accept_near_due_at: c.accept_due_at.map(|d| near_due_at(c.created_at, d, near_due_share)),
        extended: c.extended,
        lat: extra.lat,
        lon: extra.lon,
        occurred_at: extra.occurred_at,
        search: extra.search.clone(),
    }
}

/// Takes the case's row lock for the rest of the transaction, before
/// reading it: `SELECT … FOR UPDATE` on PostgreSQL; on SQLite a no-op write,
/// which takes the database's write lock up front (a read-then-write
/// transaction could otherwise fail with a stale snapshot).
pub async fn lock_case<C: ConnectionTrait>(db: &C, id: &str) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => "SELECT id FROM cases WHERE id = $1 FOR UPDATE",
        _ => "UPDATE cases SET version = version WHERE id = ?",
    };
    db.execute(Statement::from_sql_and_values(backend, sql, [id.into()])).await?;
    Ok(())
}

/// A committed lifecycle event, for the live stream.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Position in the timeline table: the live stream's event id.
    pub seq: i64,
    pub event_id: Uuid,
    pub kind: CaseEventKind,
    /// The centre the case left, for transfers and escalations: its stream
    /// hears of the move too.
    pub from_centre: Option<String>,
}

/// What a timeline row says about why, for the case's workers: the
/// machine-written explanation and the words the actor gave (opened from
/// their seal), either or both.
pub fn timeline_reason(keyring: &gridwork_platform::pii::Keyring, e: &case_event_row::Model) -> String {
    let words = match &e.statement {
        Some(sealed) => match keyring.open(&e.event_id, sealed) {
            Ok(words) => String::from_utf8_lossy(&words).into_owned(),
            Err(err) => {
                tracing::warn!(event = %e.event_id, error = %err, "a sealed statement does not open");
                String::new()
            }
        },
        None => String::new(),
    };
    match (e.reason.is_empty(), words.is_empty()) {
        (_, true) => e.reason.clone(),
        (true, false) => words,
        (false, false) => format!("{}: {words}", e.reason),
    }
}

/// Who caused an event, as stored.
pub fn cause_names(cause: &Cause<'_>) -> (String, String) {
    match cause {
        Cause::System => ("system".to_owned(), "system".to_owned()),
        Cause::Actor(a) => (a.id.clone(), a.role.as_str().to_owned()),
    }
}

/// Writes one lifecycle event of `case` (as it is after `step`): the
/// timeline row and the outbox message, in the caller's transaction.
pub async fn record<C: ConnectionTrait>(
    db: &C,
    state: &State,
    case: &Case,
    step: Step,
    cause: Cause<'_>,
    detail: &TransitionDetail,
    at: DateTime<Utc>,
) -> Result<Recorded, DbErr> {
    let mut snapshot = case.clone();
    snapshot.status = step.status;
    snapshot.version = step.version;
    let (actor_id, actor_role) = cause_names(&cause);
    let out = Event::new(PRODUCER, at, Payload::CaseLifecycle(case_event(&snapshot, step.kind, cause, detail)));
    // A person's words can name people: sealed, bound to this event, and
    // kept here only (the message carries their length).
    let statement = match detail.stated.as_str() {
        "" => None,
        words => Some(
            state
                .keyring
                .seal(&out.id.to_string(), words.as_bytes())
                .map_err(|e| DbErr::Custom(format!("sealing a statement: {e}")))?,
        ),
    };
    let res = case_event_row::Entity::insert(case_event_row::ActiveModel {
        event_id: Set(out.id.to_string()),
        case_id: Set(case.id.to_string()),
        kind: Set(step.kind.as_str().to_owned()),
        status: Set(step.status.as_str().to_owned()),
        actor_id: Set(actor_id),
        actor_role: Set(actor_role),
        reason: Set(detail.reason.clone()),
        at: Set(at),
        version: Set(step.version),
        centre: Set(case.centre.clone()),
        channel: Set(case.channel.as_str().to_owned()),
        statement: Set(statement),
        ..Default::default()
    })
    .exec(db)
    .await?;
    emit(db, PRODUCER, &state.topics.case_lifecycle, &case.id.to_string(), &out).await?;
    state.transitions.with_label_values(&[step.kind.as_str()]).inc();
    let from_centre =
        (!detail.from_centre.is_empty() && detail.from_centre != case.centre).then(|| detail.from_centre.clone());
    Ok(Recorded { seq: res.last_insert_id, event_id: out.id, kind: step.kind, from_centre })
}

/// Fixtures for unit tests that run queries: an in-memory SQLite database
/// with the schema, and rows to put in it.
#[cfg(test)]
pub(crate) mod testing {
    use chrono::{Duration, Utc};
    use gridwork_storage::entity::{case, task};
    use sea_orm::DatabaseConnection;

    pub async fn memory_db() -> DatabaseConnection {
        let db = gridwork_storage::connect("sqlite::memory:", 1).await.unwrap();
        gridwork_storage::migrate(&db).await.unwrap();
        db
    }

    /// An open case queued at `centre` in `channel`, assisted by `joint`
    /// (comma-separated), due in a day.
    pub fn case_row(id: &str, centre: &str, channel: &str, joint: &str) -> case::Model {
        let now = Utc::now();
        case::Model {
            id: id.to_owned(),
            report_id: format!("report-{id}"),
            centre: centre.to_owned(),
            channel: channel.to_owned(),
            priority: 3,
            category: "dispute.neighbourhood".to_owned(),
            urgency: "normal".to_owned(),
            grid: String::new(),
            community: String::new(),
            street: String::new(),
            county: centre.get(..6).unwrap_or_default().to_owned(),
            city: String::new(),
            province: String::new(),
            status: "created".to_owned(),
            claimed_by: None,
            lease_until: None,
            outcome: None,
            satisfaction: None,
            petitioner_key: None,
            matter_key: None,
            petition_class: None,
            routing_rule: "r".to_owned(),
            created_at: now,
            due_at: now + Duration::days(1),
            updated_at: now,
            version: 1,
            joint: joint.to_owned(),
            suspended_from: None,
            suspended_at: None,
            accept_due_at: None,
            near_due_at: None,
            accept_near_due_at: None,
            extended: false,
            lat: None,
            lon: None,
            occurred_at: None,
            search: String::new(),
        }
    }

    /// An assigned task at `grid`, given to `assignee` (or to the grid).
    pub fn task_row(id: &str, assignee: Option<&str>, grid: &str) -> task::Model {
        let now = Utc::now();
        task::Model {
            id: id.to_owned(),
            case_id: "c".to_owned(),
            grid: grid.to_owned(),
            kind: "verification".to_owned(),
            instructions: "go".to_owned(),
            due_at: now + Duration::days(1),
            assignee: assignee.map(str::to_owned),
            status: "assigned".to_owned(),
            created_by: "d".to_owned(),
            created_at: now,
            acked_at: None,
            done_at: None,
            note: None,
            media: None,
            cancelled_at: None,
            cancelled_by: None,
            cancel_reason: None,
            updated_at: now,
        }
    }
}
