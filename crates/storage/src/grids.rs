//! The grid registry's tables: versions and their grids.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait,
};

use crate::entity::{grid_shape, grid_version};
use crate::StorageError;

/// A grid as the registry stores it (geometry as GeoJSON text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GridRow {
    pub code: String,
    pub name: String,
    pub community: String,
    pub centre: String,
    pub geometry: String,
}

/// A new version to store.
#[derive(Debug, Clone)]
pub struct NewVersion {
    pub label: String,
    pub valid_from: DateTime<Utc>,
    pub counties: Vec<String>,
    pub source: String,
    pub created_by: String,
}

/// Rows per INSERT statement.
const CHUNK: usize = 500;

/// Stores a version and its grids in one transaction; `progress` is called
/// with the number of grids written so far. `commit_by` is checked just
/// before the commit: if the clock has passed it, nothing is stored (a
/// version must be visible to every assigner before it becomes valid).
pub async fn insert_version(
    db: &DatabaseConnection,
    v: NewVersion,
    grids: Vec<GridRow>,
    commit_by: DateTime<Utc>,
    progress: impl FnMut(usize),
) -> Result<Option<i64>, StorageError> {
    let txn = db.begin().await?;
    let id = insert_version_in(&txn, v, grids, progress).await?;
    if Utc::now() > commit_by {
        txn.rollback().await?;
        return Ok(None);
    }
    txn.commit().await?;
    Ok(Some(id))
}

/// Writes a version and its grids on `conn` (a transaction the caller commits).
pub async fn insert_version_in(
    conn: &impl ConnectionTrait,
    v: NewVersion,
    grids: Vec<GridRow>,
    mut progress: impl FnMut(usize),
) -> Result<i64, StorageError> {
    let version = grid_version::Model {
        id: 0,
        label: v.label,
        valid_from: v.valid_from,
        created_at: Utc::now(),
        counties: v.counties.join(","),
        grids: grids.len() as i64,
        source: v.source,
        created_by: v.created_by,
    };
    let mut am = version.into_active_model();
    am.id = sea_orm::ActiveValue::NotSet;
    let id = am.insert(conn).await?.id;
    let mut written = 0;
    let mut rows = grids.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<_> = rows
            .by_ref()
            .take(CHUNK)
            .map(|g| {
                grid_shape::Model {
                    version_id: id,
                    code: g.code,
                    name: g.name,
                    community: g.community,
                    centre: g.centre,
                    geometry: g.geometry,
                }
                .into_active_model()
            })
            .collect();
        written += chunk.len();
        grid_shape::Entity::insert_many(chunk).exec(conn).await?;
        progress(written);
    }
    Ok(id)
}

/// Every version, oldest `valid_from` first (ties: lower id first).
pub async fn versions(db: &impl ConnectionTrait) -> Result<Vec<grid_version::Model>, StorageError> {
    Ok(grid_version::Entity::find()
        .order_by_asc(grid_version::Column::ValidFrom)
        .order_by_asc(grid_version::Column::Id)
        .all(db)
        .await?)
}

/// The highest version id (changes whenever a version is added).
pub async fn latest_id(db: &impl ConnectionTrait) -> Result<Option<i64>, StorageError> {
    let v: Option<Option<i64>> = grid_version::Entity::find()
        .select_only()
        .column_as(grid_version::Column::Id.max(), "max")
        .into_tuple()
        .one(db)
        .await?;
    Ok(v.flatten())
}

/// The grids of one version, by code.
pub async fn shapes(db: &impl ConnectionTrait, version_id: i64) -> Result<Vec<grid_shape::Model>, StorageError> {
    Ok(grid_shape::Entity::find()
        .filter(grid_shape::Column::VersionId.eq(version_id))
        .order_by_asc(grid_shape::Column::Code)
        .all(db)
        .await?)
}
