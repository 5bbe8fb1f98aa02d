//! Routing tables as stored (`routing_tables`, every version kept), and
//! what a dry run reads of the taxonomy and the grids.

use chrono::Utc;
use gridwork_storage::entity::{category, grid_shape, routing_table};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
};

/// The newest stored version, if newer than `after`.
pub async fn newest_after<C: ConnectionTrait>(db: &C, after: u32) -> Result<Option<routing_table::Model>, DbErr> {
    routing_table::Entity::find()
        .filter(routing_table::Column::Version.gt(after as i32))
        .order_by_desc(routing_table::Column::Version)
        .one(db)
        .await
}

/// Every stored version, newest first.
pub async fn versions<C: ConnectionTrait>(db: &C) -> Result<Vec<routing_table::Model>, DbErr> {
    routing_table::Entity::find().order_by_desc(routing_table::Column::Version).all(db).await
}

/// The newest stored version number (0 when there is none).
pub async fn latest_version<C: ConnectionTrait>(db: &C) -> Result<u32, DbErr> {
    Ok(routing_table::Entity::find()
        .order_by_desc(routing_table::Column::Version)
        .one(db)
        .await?
        .map(|r| r.version as u32)
        .unwrap_or(0))
}

/// Stores version `version` of the table (its JSON `body`).
pub async fn insert<C: ConnectionTrait>(db: &C, version: u32, body: String) -> Result<(), DbErr> {
    routing_table::Model { version: version as i32, body, created_at: Utc::now() }
        .into_active_model()
        .reset_all()
        .insert(db)
        .await?;
    Ok(())
}

/// Every category code of the taxonomy.
pub async fn category_codes<C: ConnectionTrait>(db: &C) -> Result<Vec<String>, DbErr> {
    Ok(category::Entity::find().all(db).await?.into_iter().map(|c| c.code).collect())
}

/// The centre owning grid `code` (its newest version), if the grid exists.
pub async fn grid_centre<C: ConnectionTrait>(db: &C, code: &str) -> Result<Option<String>, DbErr> {
    Ok(grid_shape::Entity::find()
        .filter(grid_shape::Column::Code.eq(code))
        .order_by_desc(grid_shape::Column::VersionId)
        .one(db)
        .await?
        .map(|g| g.centre))
}
