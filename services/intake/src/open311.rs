//! Open311 GeoReport v2 under `/open311/v2/` (ADR 0020).
//!
//! - `GET services.{json,xml}`, `GET services/{code}.{json,xml}`: the category
//!   taxonomy as services (petition categories are not offered).
//! - `POST requests.{json,xml}` (form-encoded, with an `api_key`): a report
//!   stored through the same path as `POST /v1/reports` (`reports::submit::submit_one`,
//!   the group-commit batcher, the outbox), so it gets a grid and a case like
//!   any other. The report id (UUID v4, made here) is the `service_request_id`.
//! - `GET requests/{id}.{json,xml}`, `GET requests.{json,xml}`: status, for
//!   reports that came in through Open311 only. Anyone may look a request up
//!   by its id; listing without ids needs the integration's `api_key` and
//!   lists its own requests.
//!
//! What Open311 shows is never personal data: no parties, no petition
//! matter, no reporter, no worker's notes (status notes are fixed phrases).
//! Errors are GeoReport's shape, `[{"code": 400, "description": "…"}]`
//! (`<errors><error>…` in XML), with the HTTP status of `code`.
//!
//! API keys are issued to integrations by `gridwork apikey issue`
//! ([`issue_key`]), stored as SHA-256 only, revocable, and map to a
//! reporting identity and a scope (an area and a set of categories).
//!
//! The module by job: `services` (discovery), `requests` (status),
//! `create` (posting), `keys` (API keys), `areas` (the area served),
//! `params` (query and form parameters), `documents` and `format` (JSON
//! and XML). Errors are [`crate::error::Open311Error`], mapped from
//! the service's [`crate::error::IntakeError`] in one place.

use actix_web::{web, HttpRequest, HttpResponse};
use gridwork_platform::routes::{Access, Method, Route};

use crate::error::Open311Error;

mod areas;
mod create;
mod documents;
mod format;
mod keys;
mod params;
mod requests;
mod services;

pub use areas::Areas;
pub use documents::{PostedOut, RequestOut, ServiceOut};
pub use keys::{allows_category, hash_key, issue_key, list_keys, revoke_key, NewKey, KEY_PREFIX};

use format::Format;

/// Where an external `media_url` is kept: the last line of the description.
const MEDIA_LINE: &str = "\n\nmedia_url: ";

/// The routes, for `routes()` in lib.rs: `.configure(open311::routes)`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    let scope = web::scope(PREFIX).app_data(web::Data::new(Areas::default()));
    let scope = gridwork_platform::routes::register_scope(scope, PREFIX, ROUTES).default_service(web::to(unknown));
    // The scope's routes are registered from ROUTES just above.
    #[allow(clippy::disallowed_methods)]
    cfg.service(scope);
}

const PREFIX: &str = "/open311/v2";

/// Open311's route table (ADR 0033): discovery and look-up by id are public
/// (GeoReport v2); listing and posting need an integration's `api_key`.
pub static ROUTES: &[Route] = &[
    Route::new(Method::Get, "/open311/v2/services.{format}", Access::Public, |r| r.to(services::services)),
    Route::new(Method::Get, "/open311/v2/services/{file}", Access::Public, |r| r.to(services::service_definition)),
    Route::new(Method::Get, "/open311/v2/requests.{format}", Access::ApiKey, |r| r.to(requests::list_requests)),
    Route::new(Method::Post, "/open311/v2/requests.{format}", Access::ApiKey, |r| r.to(create::create_request)),
    Route::new(Method::Get, "/open311/v2/requests/{file}", Access::Public, |r| r.to(requests::one_request)),
];

async fn unknown(req: HttpRequest) -> HttpResponse {
    let format = if req.path().ends_with(".xml") { Format::Xml } else { Format::Json };
    Open311Error::not_found(format!(
        "{} {} is not part of GeoReport v2 here: services, services/{{code}}, requests, requests/{{id}} (.json or .xml)",
        req.method(),
        req.path()
    ))
    .render(format)
}
