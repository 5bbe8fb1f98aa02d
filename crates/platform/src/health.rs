//! The endpoints every process serves besides its services' routes:
//! liveness and readiness (on the API and the admin listener), and the
//! redirect to the browsable API description. Their rows are in
//! [`crate::routes::PLATFORM`] and [`crate::routes::ADMIN_LISTENER`].

use std::collections::BTreeMap;

use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use crate::context::Context;

/// `GET /health/live`: the process answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct Live {
    /// Always `live`.
    #[schema(value_type = String)]
    pub status: &'static str,
}

/// What the readiness check found, one entry per dependency.
#[derive(Debug, Serialize, ToSchema)]
pub struct Checks {
    /// `ok` or `unavailable`.
    #[schema(value_type = String)]
    pub database: &'static str,
    /// `ok` or `unavailable`.
    #[schema(value_type = String)]
    pub bus: &'static str,
    /// The cache's kind, then `ok`, or `unavailable (degraded: slower, not
    /// wrong)`: a cache that is down does not make the process unready.
    pub cache: String,
    pub consumers: ConsumerCheck,
}

/// `ok`, or each stalled consumer group with why it is stalled.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum ConsumerCheck {
    /// `ok`.
    Ok(String),
    /// Consumer group → reason.
    Stalled(BTreeMap<String, String>),
}

/// `GET /health/ready`: whether the process can do its work.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` or `not_ready`.
    #[schema(value_type = String)]
    pub status: &'static str,
    pub checks: Checks,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/health/live", tag = "health",
    responses((status = 200, description = "The process answers", body = Live)))]
pub(crate) async fn live() -> HttpResponse {
    HttpResponse::Ok().json(Live { status: "live" })
}

/// Readiness: the database and the event log are reachable and no consumer
/// is stalled (the cache is reported but only degrades).
#[utoipa::path(get, path = "/health/ready", tag = "health",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Not ready: `checks` says which dependency or consumer", body = Readiness),
    ))]
pub(crate) async fn ready(ctx: web::Data<Context>) -> HttpResponse {
    let db = ctx.db.ping().await.map_err(|e| e.to_string());
    let bus = ctx.bus.check().await.map_err(|e| e.to_string());
    // The cache only saves work: when it is down the service is slower, not
    // wrong, so it is reported but does not make the service unready.
    let cache = ctx.cache.get("health:ready").await.map(|_| ()).map_err(|e| e.to_string());
    // A consumer holding a message while a dependency is down, or
    // rejoining its group, is not doing its job: say which and why.
    let stalled = ctx.consumers.stalled();
    let ok = db.is_ok() && bus.is_ok() && stalled.is_empty();
    fn show(what: &str, r: &Result<(), String>, down: &'static str) -> &'static str {
        match r {
            Ok(()) => "ok",
            Err(e) => {
                tracing::warn!(check = what, error = %e, "readiness check failed");
                down
            }
        }
    }
    let body = Readiness {
        status: if ok { "ready" } else { "not_ready" },
        checks: Checks {
            database: show("database", &db, "unavailable"),
            bus: show("bus", &bus, "unavailable"),
            cache: format!(
                "{}: {}",
                ctx.cache.describe(),
                show("cache", &cache, "unavailable (degraded: slower, not wrong)")
            ),
            consumers: if stalled.is_empty() {
                ConsumerCheck::Ok("ok".to_owned())
            } else {
                ConsumerCheck::Stalled(stalled.into_iter().collect())
            },
        },
    };
    if ok {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

pub(crate) async fn docs_redirect() -> HttpResponse {
    HttpResponse::PermanentRedirect().insert_header(("Location", "/docs/")).finish()
}

/// The platform's part of `/openapi.json`: health.
#[derive(OpenApi)]
#[openapi(
    paths(live, ready),
    tags((name = "health", description = "Liveness and readiness probes")),
)]
pub struct HealthApi;
