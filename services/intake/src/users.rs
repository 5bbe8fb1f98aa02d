//! User administration (ADR 0025): an admin changes a user's role, scope or
//! channel, or deactivates the account, within the admin's jurisdiction.
//! Any such change revokes every session of the user (their refresh
//! families and the access tokens issued with them) in the same
//! transaction, so a token never outlives the rights it was issued for.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use gridwork_domain::auth::{Actor, Role};
use gridwork_domain::report::ValidationError;
use gridwork_domain::{codes, Channel};
use gridwork_platform::auth::Caller;
use gridwork_platform::error::responses::{PayloadTooLarge, Unauthorized, Unavailable};
use gridwork_platform::{ApiError, Context};
use gridwork_storage::entity::user;
use sea_orm::{ActiveModelTrait, ConnectionTrait, EntityTrait, IntoActiveModel, Set, TransactionTrait};
use serde::{Deserialize, Serialize};

use crate::error::IntakeError;
use crate::State;

/// The body of `PATCH /v1/users/{id}`: only what changes.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    /// `grid_worker`, `dispatcher`, `mediator`, `analyst` or `admin`.
    #[serde(default)]
    pub role: Option<String>,
    /// The administrative code the user acts in (a grid, community, street,
    /// county, city or province code), inside the admin's own scope.
    #[serde(default)]
    pub scope: Option<String>,
    /// A mediator's channel (`people_mediation`, …); mediators only.
    #[serde(default)]
    pub channel: Option<String>,
    /// `false` deactivates the account (no sign-in, no renewal); `true`
    /// reactivates it.
    #[serde(default)]
    pub active: Option<bool>,
}

/// A user as administration sees it (never the password hash).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserView {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub role: String,
    pub scope: String,
    pub channel: Option<String>,
    pub active: bool,
    pub deactivated_at: Option<DateTime<Utc>>,
    /// Access tokens revoked by this change (0 when nothing that matters
    /// for access changed).
    pub revoked_access_tokens: usize,
}

fn bad(code: &'static str, field: &'static str, en: String, zh: &str) -> IntakeError {
    IntakeError::Validation(ValidationError::new(field, code, en, zh))
}

/// What `patch` makes of `u`, checked: a known role, a scope the admin
/// administers and that suits the role, a channel exactly for mediators.
fn apply(admin: &Actor, u: &user::Model, patch: &UserPatch) -> Result<user::Model, IntakeError> {
    let mut next = u.clone();
    if let Some(r) = &patch.role {
        let role: Role = r.parse().map_err(|e: String| bad("invalid_role", "role", e, "未知的角色"))?;
        next.role = role.as_str().to_owned();
    }
    if let Some(s) = &patch.scope {
        next.scope = s.trim().to_owned();
    }
    let role: Role = next.role.parse().map_err(IntakeError::Internal)?;
    if next.scope.is_empty() {
        if role != Role::Admin {
            return Err(bad(
                "invalid_scope",
                "scope",
                "only an admin may be without scope".into(),
                "只有管理员可以不设辖区",
            ));
        }
    } else if codes::level_of(&next.scope).is_err() {
        return Err(bad(
            "invalid_scope",
            "scope",
            format!("{:?} is not an administrative code (6, 9, 12 or 15 digits)", next.scope),
            "辖区须为行政区划代码（6、9、12 或 15 位数字）",
        ));
    }
    if !admin.administers(&next.scope) {
        return Err(IntakeError::Forbidden("the new scope lies outside your jurisdiction"));
    }
    next.channel = if role == Role::Mediator {
        let c = patch.channel.clone().or_else(|| u.channel.clone()).ok_or_else(|| {
            bad("missing_field", "channel", "a mediator needs a channel".into(), "调解员须指定调解渠道")
        })?;
        if Channel::parse(&c).is_none() {
            return Err(bad("invalid_channel", "channel", format!("{c:?} is not a channel"), "未知的调解渠道"));
        }
        Some(c)
    } else if patch.channel.is_some() {
        return Err(bad(
            "invalid_channel",
            "channel",
            "only mediators have a channel".into(),
            "只有调解员可以指定调解渠道",
        ));
    } else {
        None
    };
    match patch.active {
        Some(false) if next.deactivated_at.is_none() => next.deactivated_at = Some(Utc::now()),
        Some(true) => next.deactivated_at = None,
        _ => {}
    }
    Ok(next)
}

/// Changes a user's role, scope or channel, or (de)activates the account.
/// Every change of role, scope or channel and every deactivation revokes
/// the user's sessions at once. Users outside the admin's jurisdiction do
/// not exist for them (404).
#[utoipa::path(patch, path = "/v1/users/{id}", tag = "users", request_body = UserPatch,
    params(("id" = String, Path, description = "The user's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Changed (or unchanged); sessions revoked if access changed", body = UserView),
        (status = 400, description = "Invalid body: `code` and `field` say what", body = ApiError),
        Unauthorized,
        (status = 403, description = "Not an admin, or the new scope is outside the admin's", body = ApiError),
        (status = 404, description = "No such user in the admin's jurisdiction", body = ApiError),
        PayloadTooLarge,
        (status = 415, description = "Not JSON", body = ApiError),
        Unavailable,
    ))]
pub async fn patch(
    state: web::Data<State>,
    ctx: web::Data<Context>,
    caller: Caller,
    path: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, IntakeError> {
    let admin = caller.0;
    if admin.role != Role::Admin {
        return Err(IntakeError::Forbidden("only admins administer users"));
    }
    let id = path.into_inner();
    if id.chars().any(char::is_control) || id.len() > 256 {
        return Err(IntakeError::NotFound("user"));
    }
    // Read only once the caller is known to be an admin (ADR 0033), and
    // before the user's row is locked.
    let body: UserPatch = gridwork_platform::body::json(&req, payload).await?;
    let txn = state.db.begin().await?;
    // Held until the commit: a sign-in or renewal in flight finishes first
    // (and what it issued is revoked below), later ones see the change.
    let u = user::Entity::find_by_id(id.clone());
    let u = match txn.get_database_backend() {
        sea_orm::DbBackend::Postgres => sea_orm::QuerySelect::lock_exclusive(u),
        _ => u,
    };
    let u = u.one(&txn).await?.filter(|u| admin.administers(&u.scope)).ok_or(IntakeError::NotFound("user"))?;
    let next = apply(&admin, &u, &body)?;
    let access_changed = next.role != u.role || next.scope != u.scope || next.channel != u.channel;
    let deactivated = u.deactivated_at.is_none() && next.deactivated_at.is_some();
    let mut revoked = Vec::new();
    if next != u {
        let mut row = u.clone().into_active_model();
        row.role = Set(next.role.clone());
        row.scope = Set(next.scope.clone());
        row.channel = Set(next.channel.clone());
        row.deactivated_at = Set(next.deactivated_at);
        row.update(&txn).await?;
        if access_changed || deactivated {
            revoked = crate::auth::session::revoke_user(&txn, &u.id, &format!("admin:{}", admin.id)).await?;
        }
    }
    txn.commit().await?;
    crate::auth::session::mark(&ctx, &revoked).await;
    if next != u {
        tracing::info!(
            user = %u.id, admin = %admin.id, role = %next.role, scope = %next.scope,
            active = next.deactivated_at.is_none(), revoked = revoked.len(), "user changed"
        );
    }
    Ok(HttpResponse::Ok().json(UserView {
        id: next.id,
        username: next.username,
        display_name: next.display_name,
        role: next.role,
        scope: next.scope,
        channel: next.channel,
        active: next.deactivated_at.is_none(),
        deactivated_at: next.deactivated_at,
        revoked_access_tokens: revoked.len(),
    }))
}
