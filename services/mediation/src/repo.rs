//! Cases in the database, converted to and from the domain at this edge.

use chrono::{DateTime, Utc};
use gridwork_domain::petition::{PetitionClass, PetitionInfo};
use gridwork_domain::{Case, CaseStatus, Channel, Hierarchy, Outcome, Satisfaction, Urgency};
use gridwork_storage::entity::case;
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement};
use uuid::Uuid;

pub fn to_domain(m: &case::Model) -> Result<Case, String> {
    let bad = |f: &str, v: &str| format!("case {}: stored {f} {v:?} is not valid", m.id);
    Ok(Case {
        id: Uuid::parse_str(&m.id).map_err(|_| bad("id", &m.id))?,
        report_id: Uuid::parse_str(&m.report_id).map_err(|_| bad("report_id", &m.report_id))?,
        centre: m.centre.clone(),
        channel: Channel::parse(&m.channel).ok_or_else(|| bad("channel", &m.channel))?,
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
        version: m.version,
    })
}

pub fn to_model(c: &Case, routing_rule: &str, now: DateTime<Utc>) -> case::Model {
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
        routing_rule: routing_rule.to_owned(),
        created_at: c.created_at,
        due_at: c.due_at,
        updated_at: now,
        version: c.version,
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
