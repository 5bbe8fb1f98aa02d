//! The audit log of reads of parties' personal information (`pii_reads`).

use chrono::{DateTime, Utc};
use gridwork_storage::entity::pii_read;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

/// One read, as the audit log keeps it.
pub struct Read<'a> {
    pub actor_id: &'a str,
    pub actor_role: &'a str,
    pub case_id: &'a str,
    pub report_ids: &'a [String],
    pub reason: &'a str,
    pub at: DateTime<Utc>,
}

/// Records a read (in the caller's transaction, before anything is shown).
pub async fn record<C: ConnectionTrait>(db: &C, r: Read<'_>) -> Result<(), DbErr> {
    pii_read::ActiveModel {
        actor_id: sea_orm::Set(r.actor_id.to_owned()),
        actor_role: sea_orm::Set(r.actor_role.to_owned()),
        case_id: sea_orm::Set(r.case_id.to_owned()),
        report_ids: sea_orm::Set(r.report_ids.join(",")),
        reason: sea_orm::Set(r.reason.to_owned()),
        at: sea_orm::Set(r.at),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}

/// The newest reads (of one case, if given), at most `limit`.
pub async fn reads<C: ConnectionTrait>(
    db: &C,
    case_id: Option<&str>,
    limit: u64,
) -> Result<Vec<pii_read::Model>, DbErr> {
    let mut query = pii_read::Entity::find();
    if let Some(c) = case_id {
        query = query.filter(pii_read::Column::CaseId.eq(c));
    }
    query.order_by_desc(pii_read::Column::Id).limit(limit).all(db).await
}
