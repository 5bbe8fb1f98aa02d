//! `POST /v1/auth/token` of the embedded issuer: a password sign-in gives an
//! access token and a refresh token; a refresh token is spent on use and
//! exchanged for a new pair (rotation); using a spent one again revokes its
//! whole family — every refresh token descended from that sign-in and the
//! access tokens issued with them — since one of the two users is a thief.

use actix_web::cookie::time::Duration as CookieDuration;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{Duration, Utc};
use gridwork_domain::auth::{Actor, Role};
use gridwork_platform::error::responses::PayloadTooLarge;
use gridwork_platform::{ApiError, Context};
use gridwork_storage::entity::{refresh_token, user};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, IntoActiveModel, QueryFilter,
    QuerySelect, TransactionTrait,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::session::{mark, revoke_where};
use crate::error::IntakeError;
use crate::State;

/// The body of `POST /v1/auth/token` (OAuth 2 style grants, as JSON).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenIn {
    /// `password` (the default) or `refresh_token`.
    #[serde(default)]
    pub grant_type: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub refresh_token: Option<String>,
}

/// The grants of `POST /v1/auth/token`, as the document describes them
/// (the server reads them as one [`TokenIn`]).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // a schema only
pub enum TokenGrant {
    Password(PasswordGrant),
    Refresh(RefreshGrant),
}

/// Sign in with a username and password.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // a schema only
pub struct PasswordGrant {
    /// `password` (the default).
    #[serde(default)]
    #[schema(schema_with = password_grant_type)]
    grant_type: Option<String>,
    username: String,
    password: String,
}

/// Renew with a refresh token (single use).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // a schema only
pub struct RefreshGrant {
    #[schema(schema_with = refresh_grant_type)]
    grant_type: String,
    refresh_token: String,
}

fn password_grant_type() -> utoipa::openapi::Object {
    gridwork_platform::openapi::one_of(["password"])
}

fn refresh_grant_type() -> utoipa::openapi::Object {
    gridwork_platform::openapi::one_of(["refresh_token"])
}

fn refused(code: &'static str, message: &'static str) -> IntakeError {
    IntakeError::RefreshRefused { code, message }
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// An access token and the refresh token that renews it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenOut {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds the access token is valid.
    pub expires_in: i64,
    /// Single use: each use returns a new one; a spent one used again
    /// revokes the whole family. Absent when the request asked for it in a
    /// cookie (`X-Refresh-Cookie: 1`): then it is the HttpOnly,
    /// `SameSite=Strict` cookie `gw_refresh` on path `/v1/auth`, which page
    /// scripts cannot read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub refresh_expires_in: i64,
    pub user_id: String,
    pub role: String,
    pub scope: String,
}

/// The cookie that carries the refresh token to a browser.
pub const REFRESH_COOKIE: &str = "gw_refresh";
/// Where the browser sends it: the token endpoints only.
const REFRESH_COOKIE_PATH: &str = "/v1/auth";

/// Whether the caller keeps its refresh token in a cookie (a browser page:
/// the web console), asked for with `X-Refresh-Cookie: 1`.
fn cookie_mode(req: &HttpRequest) -> bool {
    req.headers().get("X-Refresh-Cookie").is_some_and(|v| v.as_bytes() == b"1")
}

/// The refresh cookie holding `value` for `max_age` seconds (0 and an
/// empty value clear it); `Secure` when the request came over HTTPS.
pub fn refresh_cookie(req: &HttpRequest, value: &str, max_age: i64) -> Cookie<'static> {
    Cookie::build(REFRESH_COOKIE, value.to_owned())
        .path(REFRESH_COOKIE_PATH)
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(req.connection_info().scheme() == "https")
        .max_age(CookieDuration::seconds(max_age))
        .finish()
}

/// The answer carrying `out`: in cookie mode the refresh token moves from
/// the body into the HttpOnly cookie.
fn respond(req: &HttpRequest, mut out: TokenOut) -> HttpResponse {
    let mut res = HttpResponse::Ok();
    res.insert_header(("Cache-Control", "no-store"));
    if cookie_mode(req) {
        if let Some(refresh) = out.refresh_token.take() {
            res.cookie(refresh_cookie(req, &refresh, out.refresh_expires_in));
        }
    }
    res.json(out)
}

/// Signs in (`grant_type=password`) or renews (`grant_type=refresh_token`).
/// A browser page sends `X-Refresh-Cookie: 1`: the refresh token then comes
/// and goes in an HttpOnly, `SameSite=Strict` cookie (`gw_refresh`, path
/// `/v1/auth`) instead of the body, and a renewal may leave
/// `refresh_token` out of the body to use the cookie.
#[utoipa::path(post, path = "/v1/auth/token", tag = "auth", request_body = TokenGrant,
    responses(
        (status = 200, description = "Tokens issued", body = TokenOut),
        (status = 400, description = "Missing field, unknown field or grant type", body = ApiError),
        (status = 401, description = "Wrong credentials, a deactivated account, or a refresh token unknown, \
            expired, revoked or reused", body = ApiError),
        PayloadTooLarge,
        (status = 415, description = "Not JSON", body = ApiError),
        (status = 429, description = "Too many failed sign-ins for this username or from this address; \
            see Retry-After", body = ApiError,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "Storage unavailable, or too many sign-ins at once (Retry-After); retry",
            body = ApiError),
    ))]
pub async fn token(
    state: web::Data<State>,
    ctx: web::Data<Context>,
    req: HttpRequest,
    body: web::Json<TokenIn>,
) -> Result<HttpResponse, IntakeError> {
    let out = match body.grant_type.as_deref().unwrap_or("password") {
        "password" => {
            let client = state.signin.client_address(&req);
            password(&state, &ctx, &body, &client).await?
        }
        "refresh_token" => {
            let from_cookie = || cookie_mode(&req).then(|| req.cookie(REFRESH_COOKIE)).flatten();
            let presented = match (&body.refresh_token, from_cookie()) {
                (Some(t), _) => t.clone(),
                (None, Some(c)) if !c.value().is_empty() => c.value().to_owned(),
                _ => return Err(IntakeError::MissingField("refresh_token")),
            };
            refresh(&state, &ctx, &presented).await?
        }
        other => return Err(IntakeError::UnsupportedGrantType(other.to_owned())),
    };
    Ok(respond(&req, out))
}

async fn password(state: &State, ctx: &Context, body: &TokenIn, client: &str) -> Result<TokenOut, IntakeError> {
    let username = body.username.as_deref().ok_or(IntakeError::MissingField("username"))?;
    let password = body.password.clone().ok_or(IntakeError::MissingField("password"))?;
    // No account has a control character in its name (a NUL could not even be
    // looked up in PostgreSQL): wrong credentials, without asking the database.
    if username.chars().any(char::is_control) || username.len() > 256 {
        return Err(IntakeError::BadCredentials);
    }
    // Too many failures for this name or from this address: refused before
    // any hashing, whatever the password (ADR 0025).
    state.signin.check(username, client).await?;
    let u = user::Entity::find().filter(user::Column::Username.eq(username)).one(&state.db).await?;
    // Verify even for unknown users, so timing does not reveal which exist.
    let stored = u.as_ref().map(|u| u.password_hash.clone()).unwrap_or_else(|| state.dummy_hash.clone());
    let ok = state.signin.verify(stored, password).await?;
    let u = match (u, ok) {
        (Some(u), true) => u,
        _ => {
            state.signin.failed(username, client).await;
            return Err(IntakeError::BadCredentials);
        }
    };
    state.signin.succeeded(username).await;
    let txn = state.db.begin().await?;
    // The user as they are now, held against a concurrent change (which
    // revokes every token of theirs, this one included, after it).
    let u = lock_user(&txn, &u.id).await?.ok_or(IntakeError::BadCredentials)?;
    if u.deactivated_at.is_some() {
        return Err(IntakeError::AccountDeactivated);
    }
    let out = issue_pair(state, ctx, &txn, &u, &uuid::Uuid::new_v4().to_string()).await?;
    txn.commit().await?;
    Ok(out)
}

/// Reads user `id` in `txn`, holding it (PostgreSQL: `FOR SHARE`) until
/// the transaction ends: a change of the user (role, scope, deactivation)
/// waits for a sign-in or renewal in flight, and revokes what it issued.
/// Users are locked before refresh tokens, by every path.
pub(crate) async fn lock_user<C: ConnectionTrait>(txn: &C, id: &str) -> Result<Option<user::Model>, IntakeError> {
    let mut q = user::Entity::find_by_id(id.to_owned());
    if txn.get_database_backend() == DbBackend::Postgres {
        q = q.lock_shared();
    }
    Ok(q.one(txn).await?)
}

/// Issues an access token and a refresh token of `family` for `u`.
async fn issue_pair<C: ConnectionTrait>(
    state: &State,
    ctx: &Context,
    db: &C,
    u: &user::Model,
    family: &str,
) -> Result<TokenOut, IntakeError> {
    let role: Role = u.role.parse().map_err(IntakeError::Internal)?;
    let actor = Actor { id: u.id.clone(), role, scope: u.scope.clone(), channel: u.channel.clone() };
    let (access, ttl, jti) = state
        .issuer
        .issue_with_jti(&actor, state.issuer.ttl_secs())
        .map_err(|e| IntakeError::Internal(e.to_string()))?;
    let mut raw = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut raw)
        .map_err(|_| IntakeError::Internal("no randomness for a refresh token".into()))?;
    let refresh = URL_SAFE_NO_PAD.encode(raw);
    let now = Utc::now();
    let refresh_ttl = ctx.config.auth.refresh_ttl_secs as i64;
    refresh_token::Model {
        token_hash: hash(&refresh),
        family: family.to_owned(),
        user_id: u.id.clone(),
        issued_at: now,
        expires_at: now + Duration::seconds(refresh_ttl),
        used_at: None,
        revoked_at: None,
        access_jti: jti,
        access_expires_at: now + Duration::seconds(ttl),
    }
    .into_active_model()
    .reset_all()
    .insert(db)
    .await?;
    Ok(TokenOut {
        access_token: access,
        token_type: "Bearer".into(),
        expires_in: ttl,
        refresh_token: Some(refresh),
        refresh_expires_in: refresh_ttl,
        user_id: u.id.clone(),
        role: u.role.clone(),
        scope: u.scope.clone(),
    })
}

enum Outcome {
    Issued(TokenOut),
    /// A spent token used again: its family and their access tokens are
    /// revoked in the database; these go to the cache after the commit.
    Reused(Vec<(String, chrono::DateTime<Utc>)>),
}

async fn refresh(state: &State, ctx: &Context, presented: &str) -> Result<TokenOut, IntakeError> {
    let txn = state.db.begin().await?;
    let unknown = || refused("invalid_grant", "unknown refresh token");
    // The user first, then the token: the order a change of the user takes.
    let owner = refresh_token::Entity::find_by_id(hash(presented)).one(&txn).await?.ok_or_else(unknown)?.user_id;
    let u = lock_user(&txn, &owner).await?;
    let mut q = refresh_token::Entity::find_by_id(hash(presented));
    if txn.get_database_backend() == DbBackend::Postgres {
        q = q.lock_exclusive();
    }
    let row = q.one(&txn).await?.ok_or_else(unknown)?;
    let now = Utc::now();
    if row.revoked_at.is_some() {
        return Err(refused("refresh_token_revoked", "the refresh token has been revoked; sign in again"));
    }
    let outcome = if row.used_at.is_some() {
        // Reuse: revoke the whole family.
        tracing::warn!(user = %row.user_id, family = %row.family, "a spent refresh token was used again; its family is revoked");
        let family = Condition::all().add(refresh_token::Column::Family.eq(row.family.as_str()));
        Outcome::Reused(revoke_where(&txn, family, &format!("refresh-reuse:{}", row.user_id)).await?)
    } else if row.expires_at <= now {
        return Err(refused("refresh_token_expired", "the refresh token has expired; sign in again"));
    } else {
        // The user as they are now: a changed role or scope applies at once.
        let u = u.ok_or_else(|| refused("invalid_grant", "the user no longer exists"))?;
        if u.deactivated_at.is_some() {
            return Err(IntakeError::AccountDeactivated);
        }
        let spent = refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::UsedAt, Expr::value(now))
            .filter(refresh_token::Column::TokenHash.eq(row.token_hash.as_str()))
            .filter(refresh_token::Column::UsedAt.is_null())
            .exec(&txn)
            .await?;
        if spent.rows_affected != 1 {
            return Err(refused("refresh_token_reused", "the refresh token was already used"));
        }
        Outcome::Issued(issue_pair(state, ctx, &txn, &u, &row.family).await?)
    };
    txn.commit().await?;
    match outcome {
        Outcome::Issued(r) => Ok(r),
        Outcome::Reused(access) => {
            mark(ctx, &access).await;
            Err(IntakeError::RefreshReused)
        }
    }
}
