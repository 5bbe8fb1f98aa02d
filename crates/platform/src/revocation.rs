//! Token revocation. The database is the truth (`revoked_tokens`); the
//! cache answers most checks: a revoked mark, or a short-lived "not revoked"
//! mark, shared by every replica. A flushed or unreachable cache only sends
//! checks to the database.
//!
//! [`Revocations`] is all a check needs (the database and the cache), so
//! verifying a token (`auth`) does not need the whole `Context`.

use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use chrono::{DateTime, Utc};
use gridwork_storage::entity::revoked_token;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, Set};

use crate::cache::Cache;
use crate::error::ApiError;

/// How long a "not revoked" answer may be reused.
const NOT_REVOKED_TTL: Duration = Duration::from_secs(30);

fn revoked_key(jti: &str) -> String {
    format!("auth:revoked:{jti}")
}

fn ok_key(jti: &str) -> String {
    format!("auth:ok:{jti}")
}

/// The revocation list: `revoked_tokens` in the database, marks in the cache.
#[derive(Clone)]
pub struct Revocations {
    db: DatabaseConnection,
    cache: Arc<dyn Cache>,
}

impl std::fmt::Debug for Revocations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Revocations").finish_non_exhaustive()
    }
}

impl Revocations {
    pub fn new(db: DatabaseConnection, cache: Arc<dyn Cache>) -> Self {
        Revocations { db, cache }
    }

    /// Whether the token `jti` was revoked.
    pub async fn is_revoked(&self, jti: &str) -> Result<bool, ApiError> {
        if let Ok(Some(_)) = self.cache.get(&revoked_key(jti)).await {
            return Ok(true);
        }
        if let Ok(Some(_)) = self.cache.get(&ok_key(jti)).await {
            return Ok(false);
        }
        let row = revoked_token::Entity::find_by_id(jti.to_owned())
            .one(&self.db)
            .await
            .map_err(|e| ApiError::unavailable(&e))?;
        match row {
            Some(r) => {
                let ttl = (r.expires_at - Utc::now()).to_std().unwrap_or(Duration::from_secs(1));
                let _ = self.cache.set(&revoked_key(jti), b"1", ttl).await;
                Ok(true)
            }
            None => {
                let _ = self.cache.set(&ok_key(jti), b"1", NOT_REVOKED_TTL).await;
                Ok(false)
            }
        }
    }

    /// Revokes the token `jti` (valid until `expires_at`) for good.
    pub async fn revoke(&self, jti: &str, expires_at: DateTime<Utc>, by: &str) -> Result<(), ApiError> {
        record(&self.db, jti, expires_at, by).await.map_err(|e| ApiError::unavailable(&e))?;
        self.mark(jti, expires_at).await;
        Ok(())
    }

    /// Tells every replica at once that `jti` is revoked (best effort:
    /// without the cache, the "not revoked" marks expire within 30 s and
    /// the database answers).
    pub async fn mark(&self, jti: &str, expires_at: DateTime<Utc>) {
        let ttl = (expires_at - Utc::now()).to_std().unwrap_or(Duration::from_secs(1));
        let _ = self.cache.set(&revoked_key(jti), b"1", ttl).await;
        let _ = self.cache.del(&ok_key(jti)).await;
    }
}

/// What holds the revocation list: `Revocations` itself, the `Context`,
/// and either as actix app data.
impl AsRef<Revocations> for Revocations {
    fn as_ref(&self) -> &Revocations {
        self
    }
}

impl<T: AsRef<Revocations> + ?Sized> AsRef<Revocations> for web::Data<T> {
    fn as_ref(&self) -> &Revocations {
        AsRef::<Revocations>::as_ref(self.get_ref())
    }
}

/// Whether the token `jti` was revoked ([`Revocations::is_revoked`]).
pub async fn is_revoked(list: impl AsRef<Revocations>, jti: &str) -> Result<bool, ApiError> {
    list.as_ref().is_revoked(jti).await
}

/// Revokes the token `jti` for good ([`Revocations::revoke`]).
pub async fn revoke(
    list: impl AsRef<Revocations>,
    jti: &str,
    expires_at: DateTime<Utc>,
    by: &str,
) -> Result<(), ApiError> {
    list.as_ref().revoke(jti, expires_at, by).await
}

/// Writes the revocation of `jti` (the truth), in the caller's transaction
/// when `db` is one; [`mark`] it in the cache once that committed.
pub async fn record<C: ConnectionTrait>(db: &C, jti: &str, expires_at: DateTime<Utc>, by: &str) -> Result<(), DbErr> {
    revoked_token::Entity::insert(revoked_token::ActiveModel {
        jti: Set(jti.to_owned()),
        expires_at: Set(expires_at),
        revoked_at: Set(Utc::now()),
        revoked_by: Set(by.to_owned()),
    })
    .on_conflict(OnConflict::column(revoked_token::Column::Jti).do_nothing().to_owned())
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Marks `jti` revoked in the cache ([`Revocations::mark`]).
pub async fn mark(list: impl AsRef<Revocations>, jti: &str, expires_at: DateTime<Utc>) {
    list.as_ref().mark(jti, expires_at).await
}
