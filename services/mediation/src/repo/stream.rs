//! What the live stream reads from the timeline: the events a resuming
//! client missed, and the open emergencies a fresh one starts with.

use std::collections::HashMap;

use gridwork_domain::CaseStatus;
use gridwork_storage::entity::{case, case_event};
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, JoinType, QueryFilter, QueryOrder, QuerySelect, RelationDef,
};

/// How case events join their case: one query reads both.
fn event_case() -> RelationDef {
    case_event::Entity::belongs_to(case::Entity).from(case_event::Column::CaseId).to(case::Column::Id).into()
}

/// The events after `last` of the centres under `prefix`, each with its
/// case as it is now, oldest first; at most `limit`.
pub async fn events_after<C: ConnectionTrait>(
    db: &C,
    prefix: &str,
    last: i64,
    limit: u64,
) -> Result<Vec<(case_event::Model, Option<case::Model>)>, DbErr> {
    case_event::Entity::find()
        .join(JoinType::InnerJoin, event_case())
        .select_also(case::Entity)
        .filter(case_event::Column::Id.gt(last))
        .filter(case_event::Column::Centre.starts_with(prefix))
        .order_by_asc(case_event::Column::Id)
        .limit(limit)
        .all(db)
        .await
}

/// The newest event id of the centres under `prefix`.
pub async fn newest<C: ConnectionTrait>(db: &C, prefix: &str) -> Result<Option<i64>, DbErr> {
    let newest: Option<Option<i64>> = case_event::Entity::find()
        .select_only()
        .expr(Expr::col(case_event::Column::Id).max())
        .filter(case_event::Column::Centre.starts_with(prefix))
        .into_tuple()
        .one(db)
        .await?;
    Ok(newest.flatten())
}

/// The open emergency cases of the centres under `prefix` (running or
/// suspended), oldest first, at most `limit`, each with its latest event:
/// two queries, whatever their number.
pub async fn open_emergencies<C: ConnectionTrait>(
    db: &C,
    prefix: &str,
    limit: u64,
) -> Result<Vec<(case::Model, case_event::Model)>, DbErr> {
    let open = CaseStatus::RUNNING.into_iter().chain([CaseStatus::Suspended]).map(CaseStatus::as_str);
    let rows = case::Entity::find()
        .filter(case::Column::Centre.starts_with(prefix))
        .filter(case::Column::Status.is_in(open))
        .filter(case::Column::Channel.eq("emergency"))
        .order_by_asc(case::Column::CreatedAt)
        .limit(limit)
        .all(db)
        .await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let latest = Query::select()
        .expr(Expr::col(case_event::Column::Id).max())
        .from(case_event::Entity)
        .and_where(case_event::Column::CaseId.is_in(rows.iter().map(|m| m.id.clone())))
        .group_by_col(case_event::Column::CaseId)
        .to_owned();
    let mut events: HashMap<String, case_event::Model> = case_event::Entity::find()
        .filter(case_event::Column::Id.in_subquery(latest))
        .all(db)
        .await?
        .into_iter()
        .map(|e| (e.case_id.clone(), e))
        .collect();
    Ok(rows
        .into_iter()
        .filter_map(|m| {
            let e = events.remove(&m.id)?;
            Some((m, e))
        })
        .collect())
}
