//! Ending sessions (ADR 0018, 0025): log-out (`POST /v1/auth/revoke`)
//! revokes the presented token and its sign-in's refresh family; a change
//! of a user revokes all their families; a spent refresh token used again
//! revokes its family. Each writes `revoked_tokens` in its transaction and
//! marks the cache once committed. Expired refresh tokens are pruned here.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use gridwork_platform::auth::Caller;
use gridwork_platform::error::responses::Unauthorized;
use gridwork_platform::{revocation, ApiError, Context};
use gridwork_storage::entity::refresh_token;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, TransactionTrait};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::IntakeError;
use crate::State;

#[derive(Debug, Serialize, ToSchema)]
pub struct Revoked {
    pub revoked: bool,
    /// The revoked token's id.
    pub jti: String,
}

/// Revokes the token this request presents (log out) and, when a password
/// sign-in issued it, the refresh tokens of that sign-in with every access
/// token issued from them. Other replicas refuse them at once. A browser's
/// refresh cookie is cleared.
#[utoipa::path(post, path = "/v1/auth/revoke", tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Revoked", body = Revoked),
        Unauthorized,
        (status = 503, description = "Revocation list unavailable; retry", body = ApiError),
    ))]
pub async fn revoke(
    state: web::Data<State>,
    ctx: web::Data<gridwork_platform::Context>,
    caller: Caller,
    req: HttpRequest,
) -> Result<HttpResponse, IntakeError> {
    let families = end_session(&state, &ctx, &caller.1.jti, caller.1.expires_at, &caller.0.id).await?;
    tracing::info!(user = %caller.0.id, families, "signed out");
    // A browser's refresh cookie goes with the session (its token is
    // revoked above already).
    Ok(HttpResponse::Ok()
        .cookie(super::token::refresh_cookie(&req, "", 0))
        .json(Revoked { revoked: true, jti: caller.1.jti.clone() }))
}

/// Revokes the refresh tokens `filter` selects (not yet revoked) and the
/// unexpired access tokens issued with them, in `txn`; returns the access
/// tokens to [`mark`] once `txn` committed.
pub(super) async fn revoke_where<C: ConnectionTrait>(
    txn: &C,
    filter: Condition,
    by: &str,
) -> Result<Vec<(String, chrono::DateTime<Utc>)>, IntakeError> {
    let now = Utc::now();
    let rows = refresh_token::Entity::find().filter(filter.clone()).all(txn).await?;
    refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::RevokedAt, Expr::value(now))
        .filter(filter)
        .filter(refresh_token::Column::RevokedAt.is_null())
        .exec(txn)
        .await?;
    let mut access = Vec::new();
    for r in rows.into_iter().filter(|r| r.access_expires_at > now) {
        revocation::record(txn, &r.access_jti, r.access_expires_at, by).await?;
        access.push((r.access_jti, r.access_expires_at));
    }
    Ok(access)
}

/// Tells every replica's cache about access tokens revoked in a committed
/// transaction (the database already refuses them).
pub async fn mark(ctx: &Context, access: &[(String, chrono::DateTime<Utc>)]) {
    for (jti, until) in access {
        revocation::mark(ctx, jti, *until).await;
    }
}

/// Log-out: revokes access token `jti` and, when a sign-in issued it, its
/// whole refresh family (every refresh token descended from that sign-in
/// and the access tokens issued with them), in one transaction.
pub async fn end_session(
    state: &State,
    ctx: &Context,
    jti: &str,
    expires_at: chrono::DateTime<Utc>,
    by: &str,
) -> Result<usize, IntakeError> {
    let txn = state.db.begin().await?;
    revocation::record(&txn, jti, expires_at, by).await?;
    let family = refresh_token::Entity::find()
        .filter(refresh_token::Column::AccessJti.eq(jti))
        .one(&txn)
        .await?
        .map(|r| r.family);
    let access = match &family {
        Some(f) => revoke_where(&txn, Condition::all().add(refresh_token::Column::Family.eq(f.as_str())), by).await?,
        None => Vec::new(),
    };
    txn.commit().await?;
    revocation::mark(ctx, jti, expires_at).await;
    mark(ctx, &access).await;
    Ok(usize::from(family.is_some()))
}

/// Revokes every refresh family of user `id` and the access tokens issued
/// with them, in `txn` (a change of the user's role or scope, or a
/// deactivation); returns the access tokens to [`mark`] after the commit.
pub async fn revoke_user<C: ConnectionTrait>(
    txn: &C,
    id: &str,
    by: &str,
) -> Result<Vec<(String, chrono::DateTime<Utc>)>, IntakeError> {
    revoke_where(txn, Condition::all().add(refresh_token::Column::UserId.eq(id)), by).await
}

/// Deletes refresh tokens past their expiry, at start-up and then hourly. An
/// expired token is refused whether its row is there or not; reuse of a spent
/// token is caught while it is unexpired, which is as long as it could be used.
pub fn spawn_pruner(
    db: sea_orm::DatabaseConnection,
    shutdown: tokio_util::sync::CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match prune_expired(&db, Utc::now()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "expired refresh tokens pruned"),
                Err(e) => tracing::warn!(error = %e, "pruning expired refresh tokens failed; will retry"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(std::time::Duration::from_secs(3600)) => {}
            }
        }
    })
}

/// Deletes the refresh tokens that expired before `now`; how many.
pub async fn prune_expired<C: ConnectionTrait>(db: &C, now: chrono::DateTime<Utc>) -> Result<u64, sea_orm::DbErr> {
    Ok(refresh_token::Entity::delete_many()
        .filter(refresh_token::Column::ExpiresAt.lt(now))
        .exec(db)
        .await?
        .rows_affected)
}
