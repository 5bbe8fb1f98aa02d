//! The route table (ADR 0033): every route a gridwork process serves, with
//! who may call it, as data.
//!
//! Each service declares its routes in one `static` table of [`Route`]s and
//! registers them with [`register`] (or [`register_scope`]): the table IS
//! the registration, so a route cannot be served without a row saying who
//! may call it. Registering a route any other way (`App::route`,
//! `ServiceConfig::route`, `Scope::route`, `web::resource`) is refused by
//! clippy (`disallowed-methods` in `clippy.toml`); this module is the one
//! place allowed to call them. `services/gridwork/tests/attack.rs` walks the
//! whole table (and `/openapi.json`) with every outsider token.

use actix_web::web;
use gridwork_domain::auth::Role;

/// An HTTP method a route answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub const ALL: [Method; 5] = [Method::Get, Method::Post, Method::Put, Method::Patch, Method::Delete];

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }

    fn route(self) -> actix_web::Route {
        match self {
            Method::Get => web::get(),
            Method::Post => web::post(),
            Method::Put => web::put(),
            Method::Patch => web::patch(),
            Method::Delete => web::delete(),
        }
    }
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without a token: health, OpenAPI, public KPIs, the JWKS,
    /// Open311 discovery and look-up by id, sign-in. Must show no scoped
    /// data.
    Public,
    /// An Open311 integration's `api_key` (not a user's token).
    ApiKey,
    /// Any valid user token; the handler shows only the caller's own objects
    /// or those in the caller's scope.
    SignedIn,
    /// A valid token of one of these roles; the handler further limits
    /// objects to the caller's scope (and a mediator's channel).
    Roles(&'static [Role]),
    /// Only on the admin listener (`http.admin_listen`), never on the API
    /// listener.
    AdminListener,
}

/// The roles that work case queues (`Actor::works_queues`).
pub const QUEUE_WORKERS: &[Role] = &[Role::Dispatcher, Role::Mediator, Role::Admin];
/// Grid workers (and admins, who may do anything).
pub const REPORTERS: &[Role] = &[Role::GridWorker, Role::Admin];
/// Grid workers only.
pub const GRID_WORKERS: &[Role] = &[Role::GridWorker];
/// Readers of KPIs and ledgers.
pub const KPI_READERS: &[Role] = &[Role::Analyst, Role::Dispatcher, Role::Admin];
/// Admins only.
pub const ADMINS: &[Role] = &[Role::Admin];

/// One route: method, path template (actix syntax, the full path), who may
/// call it, and how it is served.
#[derive(Clone, Copy)]
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
    /// Attaches the handler: `|r| r.to(api::list)`. `None` for a route a
    /// library service serves (the OpenAPI document and Swagger UI).
    pub to: Option<fn(actix_web::Route) -> actix_web::Route>,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} ({:?})", self.method.as_str(), self.path, self.access)
    }
}

impl Route {
    pub const fn new(
        method: Method,
        path: &'static str,
        access: Access,
        to: fn(actix_web::Route) -> actix_web::Route,
    ) -> Self {
        Route { method, path, access, to: Some(to) }
    }
}

/// Registers every row of `table` that has a handler, in table order (the
/// order matters where templates overlap: `/v1/cases/{id}/tasks` before
/// `/v1/cases/{id}/{action}`).
#[allow(clippy::disallowed_methods)] // the one place routes are registered
pub fn register(cfg: &mut web::ServiceConfig, table: &'static [Route]) {
    for r in table {
        if let Some(to) = r.to {
            cfg.route(r.path, to(r.method.route()));
        }
    }
}

/// Registers the rows of `table` under `scope`, whose prefix is `prefix`
/// (each row's path is the full path, starting with `prefix`).
#[allow(clippy::disallowed_methods)] // the one place routes are registered
pub fn register_scope(mut scope: actix_web::Scope, prefix: &str, table: &'static [Route]) -> actix_web::Scope {
    for r in table {
        if let (Some(to), Some(rest)) = (r.to, r.path.strip_prefix(prefix)) {
            scope = scope.route(rest, to(r.method.route()));
        }
    }
    scope
}

/// Registers the rows of `table` on an `App` (the admin listener).
#[allow(clippy::disallowed_methods)] // the one place routes are registered
pub fn register_app<T>(mut app: actix_web::App<T>, table: &'static [Route]) -> actix_web::App<T>
where
    T: actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Error = actix_web::Error,
        InitError = (),
    >,
{
    for r in table {
        if let Some(to) = r.to {
            app = app.route(r.path, to(r.method.route()));
        }
    }
    app
}

/// The table a process's API listener serves besides its services' routes.
pub static PLATFORM: &[Route] = &[
    Route::new(Method::Get, "/health/live", Access::Public, |r| r.to(crate::http::live)),
    Route::new(Method::Get, "/health/ready", Access::Public, |r| r.to(crate::http::ready)),
    Route { method: Method::Get, path: "/openapi.json", access: Access::Public, to: None },
    Route { method: Method::Get, path: "/docs/{_:.*}", access: Access::Public, to: None },
    Route::new(Method::Get, "/docs", Access::Public, |r| r.to(crate::http::docs_redirect)),
];

/// The admin listener's routes (`http.admin_listen`).
pub static ADMIN_LISTENER: &[Route] = &[
    Route::new(Method::Get, "/health/live", Access::AdminListener, |r| r.to(crate::http::live)),
    Route::new(Method::Get, "/health/ready", Access::AdminListener, |r| r.to(crate::http::ready)),
    Route::new(Method::Get, "/metrics", Access::AdminListener, |r| r.to(crate::metrics::metrics_endpoint)),
];
