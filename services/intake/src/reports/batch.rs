//! `POST /v1/reports/batch`: the reports a phone queued while offline, each
//! through [`super::submit::submit_one`] with a result of its own.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use gridwork_domain::report::ValidationError;
use gridwork_platform::auth::Caller;
use gridwork_platform::error::responses::{PayloadTooLarge, Unauthorized, Unavailable};
use gridwork_platform::ApiError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::submit::{rate_limit, require_reporter, submit_one, Origin};
use super::ReportIn;
use crate::error::IntakeError;
use crate::State;

/// `POST /v1/reports/batch`: the reports a phone queued while offline.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchIn {
    pub reports: Vec<ReportIn>,
}

/// One item's result. The same batch sent again, in any order and any
/// number of times, gives the same results: nothing is stored twice.
#[derive(Debug, Serialize, ToSchema)]
pub struct ItemResult {
    /// The item's client id.
    pub id: Uuid,
    /// `accepted` (stored now or before), `conflict` (the id was used for a
    /// different report: nothing overwritten), `invalid` (refused as it is:
    /// `status` and `error.code` say why — 400 for the content, 403
    /// `outside_report_area` for a place outside the reporter's area), or
    /// `unavailable` (try again).
    #[schema(value_type = String)]
    pub result: &'static str,
    /// The HTTP status the item alone would have got (accepted: 200).
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub received_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_time: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<gridwork_platform::ApiError>,
}

/// The results of a batch, one per item in the order sent.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchOut {
    /// Items accepted (now or before).
    pub accepted: usize,
    pub results: Vec<ItemResult>,
}

/// Submits the reports a phone queued while offline; each item gets its own
/// result. Replays, in any order, create nothing twice.
#[utoipa::path(post, path = "/v1/reports/batch", tag = "reports", request_body = BatchIn,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Per-item results", body = BatchOut),
        (status = 400, description = "Malformed body, unknown field or bad batch size", body = ApiError),
        Unauthorized,
        (status = 403, description = "Not a grid worker", body = ApiError),
        PayloadTooLarge,
        (status = 415, description = "Not JSON", body = ApiError),
        (status = 429, description = "Too many requests from this token", body = ApiError),
        Unavailable,
    ))]
pub async fn submit_batch(
    state: web::Data<State>,
    caller: Caller,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, IntakeError> {
    let actor = caller.0;
    require_reporter(&actor)?;
    // Read only now that the caller may send it.
    let items = gridwork_platform::body::json::<BatchIn>(&req, body).await?.reports;
    if items.is_empty() || items.len() > state.batch_max_items {
        return Err(ValidationError::new(
            "reports",
            "invalid_batch_size",
            format!("a batch holds 1 to {} reports, got {}", state.batch_max_items, items.len()),
            format!("每批 1 至 {} 条，收到 {} 条", state.batch_max_items, items.len()),
        )
        .into());
    }
    // A phone coming back online sends its queue at once: one request.
    rate_limit(&state, &actor).await?;
    let mut results = Vec::with_capacity(items.len());
    // In order: the same id twice in one batch is judged like a replay.
    for item in items {
        let id = item.id;
        results.push(match submit_one(&state, &actor, item, Origin::Phone).await {
            Ok((_, v)) => ItemResult {
                id,
                result: "accepted",
                status: 200,
                received_at: Some(v.received_at),
                device_time: v.device_time,
                error: None,
            },
            Err(e) => {
                let api = e.api();
                let result = match api.status.as_u16() {
                    409 => "conflict",
                    s if s >= 500 => "unavailable",
                    _ => "invalid",
                };
                if api.status.as_u16() >= 500 {
                    tracing::warn!(report = %id, error = %e, "batch item not stored");
                }
                ItemResult {
                    id,
                    result,
                    status: api.status.as_u16(),
                    received_at: None,
                    device_time: None,
                    error: Some(api),
                }
            }
        });
    }
    let accepted = results.iter().filter(|r| r.result == "accepted").count();
    Ok(HttpResponse::Ok().json(BatchOut { accepted, results }))
}
