//! `GET /v1/cases/counts`: the open cases the caller may see, counted per
//! channel queue (the console's queue tabs) or per grid (its map).

use actix_web::{web, HttpResponse};
use chrono::Utc;
use gridwork_platform::auth::Caller;
use gridwork_platform::error::responses::{BadRequest, Forbidden, Unauthorized, Unavailable};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::access;
use crate::error::{bad, MediationError};
use crate::repo::cases::{self as repo, CountBy};
use crate::State;

/// Query of `GET /v1/cases/counts`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CountsQuery {
    /// `channel` or `grid` (required; read as optional so that the role is
    /// judged first).
    #[serde(default)]
    #[param(schema_with = by)]
    pub by: Option<String>,
    /// An administrative code under the caller's scope: only the centres
    /// under it. Default: the caller's scope.
    #[serde(default)]
    #[param(pattern = r"^([0-9]{6}|[0-9]{9}|[0-9]{12}|[0-9]{15})$")]
    pub centre: Option<String>,
}

fn by() -> utoipa::openapi::Object {
    crate::schema::one_of(["channel", "grid"])
}

/// The open cases of one queue or grid.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaseCount {
    /// The channel or the grid code.
    pub key: String,
    /// Open cases (neither closed nor rejected).
    pub open: i64,
    /// Of those, overdue now (the overdue rule of every case view).
    pub overdue: i64,
}

/// Body of `GET /v1/cases/counts`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaseCounts {
    /// What the items are counted by: `channel` or `grid`.
    pub by: String,
    /// One per key with open cases, by key.
    pub items: Vec<CaseCount>,
}

/// `GET /v1/cases/counts`: the open cases the caller may see (a mediator:
/// their channel's), counted per channel queue or per grid, with how many
/// are overdue.
#[utoipa::path(get, path = "/v1/cases/counts", tag = "cases", operation_id = "case_counts", params(CountsQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Open and overdue cases per key", body = CaseCounts),
        BadRequest, Unauthorized, Forbidden, Unavailable,
    ))]
pub async fn counts(
    state: web::Data<State>,
    caller: Caller,
    q: web::Query<CountsQuery>,
) -> Result<HttpResponse, MediationError> {
    let actor = caller.0;
    access::require_queue_worker(&actor)?;
    let by = match q.by.as_deref() {
        Some("channel") => CountBy::Channel,
        Some("grid") => CountBy::Grid,
        None => return Err(bad("missing_field", "by", "count by what? by=channel or by=grid", "请指定统计维度 by")),
        Some(other) => {
            return Err(bad(
                "invalid_filter",
                "by",
                format!("count by {other:?}? channel or grid"),
                "统计维度须为 channel 或 grid",
            ))
        }
    };
    let prefix = match &q.centre {
        Some(c) => {
            let p = super::list::code_prefix(c, "centre")?;
            access::require_covers(&actor, c, "that centre is outside your scope")?;
            Some(p)
        }
        None => None,
    };
    let rows = repo::counts(&state.db, access::visible_cases(&actor), prefix.as_deref(), by, Utc::now()).await?;
    let items = rows.into_iter().map(|(key, open, overdue)| CaseCount { key, open, overdue }).collect();
    let by = match by {
        CountBy::Channel => "channel",
        CountBy::Grid => "grid",
    };
    Ok(HttpResponse::Ok().json(CaseCounts { by: by.to_owned(), items }))
}
