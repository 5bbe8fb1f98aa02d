//! Tasks for grid workers as stored (`tasks`, and `task_media`, the index
//! of the media a result names), with the media and users they name.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use gridwork_domain::CaseStatus;
use gridwork_storage::entity::{case, media, task, task_media, user};
use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, QuerySelect, Set,
};

pub const ASSIGNED: &str = "assigned";
pub const ACKNOWLEDGED: &str = "acknowledged";
pub const DONE: &str = "done";
pub const CANCELLED: &str = "cancelled";
/// The statuses in which a task is still to be done.
pub const OPEN: [&str; 2] = [ASSIGNED, ACKNOWLEDGED];

/// Cancels the open tasks among `which` whose case has been closed or
/// rejected, in the system's name: eagerly in the transition that closes or
/// rejects a case, and again whenever tasks are listed or worked (a case
/// ended before tasks existed, or by a path other than a transition).
pub async fn sweep<C: ConnectionTrait>(db: &C, which: Condition, now: DateTime<Utc>) -> Result<u64, DbErr> {
    let mut n = 0;
    for (status, reason) in [(CaseStatus::Closed, "case closed"), (CaseStatus::Rejected, "case rejected")] {
        let ended = Query::select()
            .column(case::Column::Id)
            .from(case::Entity)
            .and_where(case::Column::Status.eq(status.as_str()))
            .to_owned();
        let res = task::Entity::update_many()
            .col_expr(task::Column::Status, Expr::value(CANCELLED))
            .col_expr(task::Column::CancelledAt, Expr::value(now))
            .col_expr(task::Column::CancelledBy, Expr::value("system"))
            .col_expr(task::Column::CancelReason, Expr::value(reason))
            .col_expr(task::Column::UpdatedAt, Expr::value(now))
            .filter(which.clone())
            .filter(task::Column::Status.is_in(OPEN))
            .filter(task::Column::CaseId.in_subquery(ended))
            .exec(db)
            .await?;
        n += res.rows_affected;
    }
    if n > 0 {
        tracing::info!(tasks = n, "open tasks of closed or rejected cases cancelled");
    }
    Ok(n)
}

/// [`sweep`] of one task.
pub async fn sweep_one<C: ConnectionTrait>(db: &C, id: &str, now: DateTime<Utc>) -> Result<u64, DbErr> {
    sweep(db, Condition::all().add(task::Column::Id.eq(id)), now).await
}

/// [`sweep`] of one case's tasks.
pub async fn sweep_case<C: ConnectionTrait>(db: &C, case_id: &str, now: DateTime<Utc>) -> Result<u64, DbErr> {
    sweep(db, Condition::all().add(task::Column::CaseId.eq(case_id)), now).await
}

/// The task `id`.
pub async fn find<C: ConnectionTrait>(db: &C, id: &str) -> Result<Option<task::Model>, DbErr> {
    task::Entity::find_by_id(id.to_owned()).one(db).await
}

/// The media ids a task's result names.
pub fn media_ids(t: &task::Model) -> Vec<String> {
    t.media.as_deref().and_then(|m| serde_json::from_str(m).ok()).unwrap_or_default()
}

/// What has been uploaded of the media the tasks name.
pub async fn uploaded<C: ConnectionTrait>(
    db: &C,
    tasks: &[task::Model],
) -> Result<HashMap<String, media::Model>, DbErr> {
    super::media::uploaded(db, tasks.iter().flat_map(media_ids).collect()).await
}

/// The grid worker `id`, if there is one.
pub async fn grid_worker<C: ConnectionTrait>(db: &C, id: &str) -> Result<Option<user::Model>, DbErr> {
    Ok(user::Entity::find_by_id(id.to_owned()).one(db).await?.filter(|u| u.role == "grid_worker"))
}

/// A new task.
pub async fn insert<C: ConnectionTrait>(db: &C, t: task::Model) -> Result<task::Model, DbErr> {
    t.into_active_model().reset_all().insert(db).await
}

/// Every task of a case, newest first.
pub async fn of_case<C: ConnectionTrait>(db: &C, case_id: &str) -> Result<Vec<task::Model>, DbErr> {
    task::Entity::find()
        .filter(task::Column::CaseId.eq(case_id))
        .order_by_desc(task::Column::CreatedAt)
        .order_by_desc(task::Column::Id)
        .all(db)
        .await
}

/// The tasks `visible` selects that are open or ended within `recent`,
/// newest first, at most `limit`.
pub async fn listed<C: ConnectionTrait>(
    db: &C,
    visible: Condition,
    now: DateTime<Utc>,
    recent: Duration,
    limit: u64,
) -> Result<Vec<task::Model>, DbErr> {
    task::Entity::find()
        .filter(visible)
        .filter(Condition::any().add(task::Column::Status.is_in(OPEN)).add(task::Column::UpdatedAt.gte(now - recent)))
        .order_by_desc(task::Column::CreatedAt)
        .order_by_desc(task::Column::Id)
        .limit(limit)
        .all(db)
        .await
}

/// The cases of `ids`, by id.
pub async fn cases_by_id<C: ConnectionTrait>(db: &C, ids: Vec<String>) -> Result<HashMap<String, case::Model>, DbErr> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(case::Entity::find()
        .filter(case::Column::Id.is_in(ids))
        .all(db)
        .await?
        .into_iter()
        .map(|c| (c.id.clone(), c))
        .collect())
}

/// Acknowledges the assigned task `still` selects, taking it for `by`;
/// whether it did.
pub async fn acknowledge<C: ConnectionTrait>(
    db: &C,
    still: Condition,
    by: &str,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let res = task::Entity::update_many()
        .col_expr(task::Column::Status, Expr::value(ACKNOWLEDGED))
        .col_expr(task::Column::AckedAt, Expr::value(now))
        .col_expr(task::Column::Assignee, Expr::value(by))
        .col_expr(task::Column::UpdatedAt, Expr::value(now))
        .filter(still)
        .filter(task::Column::Status.eq(ASSIGNED))
        .exec(db)
        .await?;
    Ok(res.rows_affected > 0)
}

/// Completes the task `still` selects with `note` and `media`, by `by`,
/// and indexes the media it names (who may see them, ADR 0024), in the
/// caller's transaction; whether it did.
pub async fn complete<C: ConnectionTrait>(
    db: &C,
    still: Condition,
    id: &str,
    by: &str,
    note: &str,
    media: &[String],
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let stored = if media.is_empty() {
        None
    } else {
        Some(serde_json::to_string(media).map_err(|e| DbErr::Custom(e.to_string()))?)
    };
    let res = task::Entity::update_many()
        .col_expr(task::Column::Status, Expr::value(DONE))
        .col_expr(task::Column::DoneAt, Expr::value(now))
        .col_expr(task::Column::Assignee, Expr::value(by))
        .col_expr(task::Column::Note, Expr::value(note))
        .col_expr(task::Column::Media, Expr::value(stored))
        .col_expr(task::Column::UpdatedAt, Expr::value(now))
        .filter(still)
        .exec(db)
        .await?;
    if res.rows_affected > 0 && !media.is_empty() {
        let rows =
            media.iter().map(|m| task_media::ActiveModel { media_id: Set(m.clone()), task_id: Set(id.to_owned()) });
        task_media::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::columns([task_media::Column::MediaId, task_media::Column::TaskId]).do_nothing().to_owned(),
            )
            .exec_without_returning(db)
            .await?;
    }
    Ok(res.rows_affected > 0)
}

/// Cancels the open task `id` in `by`'s name; whether it did.
pub async fn cancel<C: ConnectionTrait>(
    db: &C,
    id: &str,
    by: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let res = task::Entity::update_many()
        .col_expr(task::Column::Status, Expr::value(CANCELLED))
        .col_expr(task::Column::CancelledAt, Expr::value(now))
        .col_expr(task::Column::CancelledBy, Expr::value(by))
        .col_expr(task::Column::CancelReason, Expr::value(reason))
        .col_expr(task::Column::UpdatedAt, Expr::value(now))
        .filter(task::Column::Id.eq(id))
        .filter(task::Column::Status.is_in(OPEN))
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}
