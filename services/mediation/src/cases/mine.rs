//! `GET /v1/me/cases`: for a grid worker's phone, the open cases of their
//! grid — what is going on around them, without anyone's personal data.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use gridwork_platform::auth::Caller;
use gridwork_platform::error::responses::{Unauthorized, Unavailable};
use gridwork_platform::ApiError;
use serde::Serialize;

use crate::access;
use crate::error::MediationError;
use crate::repo::cases::{self as repo_cases, is_overdue};
use crate::State;

/// An open case of the grid worker's grid, as their phone lists it: what,
/// where in the queues, and by when; nobody's personal data.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GridCase {
    pub id: String,
    /// A category code of the taxonomy.
    pub category: String,
    #[schema(schema_with = crate::schema::open_case_status)]
    pub status: String,
    #[schema(schema_with = crate::schema::urgency)]
    pub urgency: String,
    /// The lead channel.
    #[schema(schema_with = crate::schema::channel)]
    pub channel: String,
    /// The centre whose queue holds the case.
    pub centre: String,
    pub created_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    /// Past its due time while being worked (the overdue rule of every
    /// case view).
    pub overdue: bool,
}

/// Body of `GET /v1/me/cases`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MyGridCases {
    /// The caller's grid (their scope).
    pub grid: String,
    /// At most 200, most urgent first.
    pub items: Vec<GridCase>,
}

/// `GET /v1/me/cases`: for a grid worker's phone, the open cases of their
/// grid — what is going on around them, without anyone's personal data —
/// most urgent first (overdue, then by due time).
#[utoipa::path(get, path = "/v1/me/cases", tag = "phone",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The open cases of the caller's grid", body = MyGridCases),
        Unauthorized,
        (status = 403, description = "Not a grid worker", body = ApiError),
        Unavailable,
    ))]
pub async fn my_grid_cases(state: web::Data<State>, caller: Caller) -> Result<HttpResponse, MediationError> {
    let actor = caller.0;
    access::require_grid_worker(&actor, "this list is a grid worker's own grid")?;
    let rows = repo_cases::open_in_grid(&state.db, &actor.scope, 200).await?;
    let now = Utc::now();
    let items: Vec<GridCase> = rows
        .into_iter()
        .map(|c| GridCase {
            overdue: is_overdue(&c, now),
            id: c.id,
            category: c.category,
            status: c.status,
            urgency: c.urgency,
            channel: c.channel,
            centre: c.centre,
            created_at: c.created_at,
            due_at: c.due_at,
        })
        .collect();
    Ok(HttpResponse::Ok().json(MyGridCases { grid: actor.scope, items }))
}
