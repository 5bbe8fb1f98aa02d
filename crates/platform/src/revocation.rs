//! Token revocation. The database is the truth (`revoked_tokens`); the
//! cache answers most checks: a revoked mark, or a short-lived "not revoked"
//! mark, shared by every replica. A flushed or unreachable cache only sends
//! checks to the database.

use std::time::Duration;

use chrono::{DateTime, Utc};
use gridwork_storage::entity::revoked_token;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, Set};

use crate::context::Context;
use crate::error::ApiError;

/// How long a "not revoked" answer may be reused.
const NOT_REVOKED_TTL: Duration = Duration::from_secs(30);

fn revoked_key(jti: &str) -> String {
    format!("auth:revoked:{jti}")
}

fn ok_key(jti: &str) -> String {
    format!("auth:ok:{jti}")
}

/// Whether the token `jti` was revoked.
pub async fn is_revoked(ctx: &Context, jti: &str) -> Result<bool, ApiError> {
    if let Ok(Some(_)) = ctx.cache.get(&revoked_key(jti)).await {
        return Ok(true);
    }
    if let Ok(Some(_)) = ctx.cache.get(&ok_key(jti)).await {
        return Ok(false);
    }
    let row =
        revoked_token::Entity::find_by_id(jti.to_owned()).one(&ctx.db).await.map_err(|e| ApiError::unavailable(&e))?;
    match row {
        Some(r) => {
            let ttl = (r.expires_at - Utc::now()).to_std().unwrap_or(Duration::from_secs(1));
            let _ = ctx.cache.set(&revoked_key(jti), b"1", ttl).await;
            Ok(true)
        }
        None => {
            let _ = ctx.cache.set(&ok_key(jti), b"1", NOT_REVOKED_TTL).await;
            Ok(false)
        }
    }
}

/// Revokes the token `jti` (valid until `expires_at`) for good.
pub async fn revoke(ctx: &Context, jti: &str, expires_at: DateTime<Utc>, by: &str) -> Result<(), ApiError> {
    record(&ctx.db, jti, expires_at, by).await.map_err(|e| ApiError::unavailable(&e))?;
    mark(ctx, jti, expires_at).await;
    Ok(())
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

/// Tells every replica at once that `jti` is revoked (best effort: without
/// the cache, the "not revoked" marks expire within 30 s and the database
/// answers).
pub async fn mark(ctx: &Context, jti: &str, expires_at: DateTime<Utc>) {
    let ttl = (expires_at - Utc::now()).to_std().unwrap_or(Duration::from_secs(1));
    let _ = ctx.cache.set(&revoked_key(jti), b"1", ttl).await;
    let _ = ctx.cache.del(&ok_key(jti)).await;
}
