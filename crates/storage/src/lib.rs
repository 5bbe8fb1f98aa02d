//! gridwork's database: sea-orm entities, the one set of migrations for
//! SQLite and PostgreSQL, the transactional outbox and its relay, and
//! consumer-side de-duplication.

use std::time::Duration;

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr};
use sea_orm_migration::MigratorTrait;

pub mod dedup;
pub mod entity;
pub mod grids;
pub mod migration;
pub mod outbox;
mod unavailable;

pub use migration::Migrator;
pub use sea_orm;
pub use unavailable::is_unavailable;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("unsupported database URL {0:?}: expected sqlite://PATH, sqlite::memory: or postgres://…")]
    UnsupportedUrl(String),
    #[error("cannot open the database: {0}")]
    Connect(String),
    #[error(
        "the database schema is behind this build ({pending} migration(s) pending, first {first}); run `gridwork migrate`"
    )]
    SchemaBehind { pending: usize, first: String },
    #[error("database: {0}")]
    Db(#[from] DbErr),
}

/// Opens a pool on `url`: `sqlite://PATH` (created if missing),
/// `sqlite::memory:`, or `postgres://…`.
pub async fn connect(url: &str, pool_size: u32) -> Result<DatabaseConnection, StorageError> {
    connect_with(url, pool_size, Duration::from_secs(10)).await
}

/// [`connect`] with how long a query waits for a pooled connection.
pub async fn connect_with(
    url: &str,
    pool_size: u32,
    acquire_timeout: Duration,
) -> Result<DatabaseConnection, StorageError> {
    let is_sqlite = url.starts_with("sqlite:");
    if !is_sqlite && !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
        return Err(StorageError::UnsupportedUrl(url.to_owned()));
    }
    let url = if is_sqlite && !url.contains("memory") && !url.contains("mode=") {
        format!("{url}?mode=rwc")
    } else {
        url.to_owned()
    };
    let memory = is_sqlite && url.contains("memory");
    let mut opts = ConnectOptions::new(url);
    opts.max_connections(if memory { 1 } else { pool_size.max(1) })
        .acquire_timeout(acquire_timeout)
        .sqlx_logging(false);
    if memory {
        // An in-memory database lives as long as its one connection: never recycle it.
        let forever = Duration::from_secs(100 * 365 * 24 * 3600);
        opts.min_connections(1).idle_timeout(forever).max_lifetime(forever);
    }
    let db = Database::connect(opts).await.map_err(|e| StorageError::Connect(e.to_string()))?;
    if is_sqlite {
        db.execute_unprepared("PRAGMA journal_mode=WAL").await?;
    }
    Ok(db)
}

/// Applies every pending migration.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), StorageError> {
    Migrator::up(db, None).await?;
    Ok(())
}

/// Refuses to go on against a schema that is behind this build.
pub async fn ensure_schema_current(db: &DatabaseConnection) -> Result<(), StorageError> {
    let pending = Migrator::get_pending_migrations(db).await?;
    match pending.first() {
        None => Ok(()),
        Some(first) => Err(StorageError::SchemaBehind { pending: pending.len(), first: first.name().to_owned() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn schema_check_and_idempotent_migrations() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("s.db").display());
        let db = connect(&url, 2).await.unwrap();
        let err = ensure_schema_current(&db).await.unwrap_err();
        assert!(err.to_string().contains("gridwork migrate"), "{err}");
        migrate(&db).await.unwrap();
        migrate(&db).await.unwrap();
        ensure_schema_current(&db).await.unwrap();
        assert!(matches!(connect("mysql://x", 1).await, Err(StorageError::UnsupportedUrl(_))));
    }

    /// The month-cells migration sums the day cells already stored (issue 17).
    #[tokio::test]
    async fn month_cells_migration_sums_existing_day_cells() {
        use crate::entity::{kpi_cell, kpi_month_cell};
        use gridwork_domain::kpi::Tally;
        use sea_orm::{ActiveModelTrait, EntityTrait, IntoActiveModel};
        let db = connect("sqlite::memory:", 1).await.unwrap();
        migrate(&db).await.unwrap();
        Migrator::down(&db, Some(1)).await.unwrap();
        let t = |created: i64, ended: i64, hours: u32| {
            let mut t = Tally { created, ended, closed: ended, ..Tally::default() };
            if ended > 0 {
                t.close_hours.insert(hours, ended);
            }
            t
        };
        // Enough rows for several pages of the backfill's reads.
        let mut want: std::collections::BTreeMap<(String, String), (i64, Tally)> = Default::default();
        for j in ["370101", "370101001", "370000"] {
            for day in 0..400 {
                let date = chrono::NaiveDate::from_ymd_opt(2025, 1, 1).unwrap() + chrono::Duration::days(day);
                let tally = t(day % 5 + 1, day % 3, (day % 7) as u32);
                let net = tally.created - tally.ended;
                let e = want.entry((j.to_owned(), date.format("%Y-%m").to_string())).or_default();
                e.0 += net;
                e.1.add(&tally, 1);
                kpi_cell::Model {
                    jurisdiction: j.to_owned(),
                    day: date.to_string(),
                    net_open: net,
                    tally: serde_json::to_string(&tally).unwrap(),
                    version: 1,
                    dirty: false,
                }
                .into_active_model()
                .reset_all()
                .insert(&db)
                .await
                .unwrap();
            }
        }
        migrate(&db).await.unwrap();
        let got: std::collections::BTreeMap<(String, String), (i64, Tally)> = kpi_month_cell::Entity::find()
            .all(&db)
            .await
            .unwrap()
            .into_iter()
            .map(|m| ((m.jurisdiction, m.month), (m.net_open, serde_json::from_str(&m.tally).unwrap())))
            .collect();
        assert_eq!(got.len(), 3 * 14);
        assert_eq!(got, want);
    }
}
