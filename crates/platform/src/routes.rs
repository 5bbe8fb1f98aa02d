//! The route table (ADR 0033): every route a gridwork process serves, with
//! who may call it, as data.
//!
//! Each service declares its routes in one `static` table of [`Route`]s and
//! registers them with [`register`] (or [`register_scope`]): the table IS
//! the registration, so a route cannot be served without a row saying who
//! may call it. Registering a route any other way (`App::route`,
//! `ServiceConfig::route`, `Scope::route`, `web::resource`) is refused by
//! clippy (`disallowed-methods` in `clippy.toml`); this module is the one
//! place allowed to call them. `services/gridwork/tests/api/attack.rs` walks the
//! whole table (and `/openapi.json`) with every outsider token.

use std::sync::Arc;

use actix_web::dev::ResourceDef;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use gridwork_domain::auth::Role;

use crate::error::ApiError;

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

/// How many dynamic segments a template has: of two templates matching a
/// path, the one with fewer is the more specific (`/v1/reports/batch` over
/// `/v1/reports/{id}`).
fn dynamic_segments(path: &str) -> usize {
    path.matches('{').count()
}

/// The actix route of row `r`: its method, its handler, and a guard that
/// leaves to the table's more specific templates the paths they match (so
/// `GET /v1/reports/batch` is not `GET /v1/reports/{id}` with the id
/// "batch", but 405 from the fallback: only POST is `/v1/reports/batch`).
fn route_of(table: &[Route], r: &Route, to: fn(actix_web::Route) -> actix_web::Route) -> actix_web::Route {
    let mine = dynamic_segments(r.path);
    let mut specific: Vec<&'static str> =
        table.iter().filter(|o| o.path != r.path && dynamic_segments(o.path) < mine).map(|o| o.path).collect();
    specific.sort_unstable();
    specific.dedup();
    let route = to(r.method.route());
    if specific.is_empty() {
        return route;
    }
    let defs: Arc<Vec<ResourceDef>> = Arc::new(specific.into_iter().map(ResourceDef::new).collect());
    route.guard(actix_web::guard::fn_guard(move |ctx| {
        let path = ctx.head().uri.path();
        !defs.iter().any(|d| d.is_match(path))
    }))
}

/// Registers every row of `table` that has a handler, in table order; where
/// templates overlap, the more specific one takes the path
/// (`/v1/cases/{id}/tasks` over `/v1/cases/{id}/{action}`).
#[allow(clippy::disallowed_methods)] // the one place routes are registered
pub fn register(cfg: &mut web::ServiceConfig, table: &'static [Route]) {
    for r in table {
        if let Some(to) = r.to {
            cfg.route(r.path, route_of(table, r, to));
        }
    }
}

/// Registers the rows of `table` under `scope`, whose prefix is `prefix`
/// (each row's path is the full path, starting with `prefix`).
#[allow(clippy::disallowed_methods)] // the one place routes are registered
pub fn register_scope(mut scope: actix_web::Scope, prefix: &str, table: &'static [Route]) -> actix_web::Scope {
    for r in table {
        if let (Some(to), Some(rest)) = (r.to, r.path.strip_prefix(prefix)) {
            scope = scope.route(rest, route_of(table, r, to));
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
            app = app.route(r.path, route_of(table, r, to));
        }
    }
    app
}

/// What a listener answers for a request no route took: 405 Method Not
/// Allowed, with an `Allow` header naming the methods the table has for
/// that path, when the path is one of the table's; 404 otherwise. Both in
/// the shared error shape. (A row's method guard sits on its resource, so
/// without this a known path with another method would fall through to
/// 404.)
#[derive(Clone)]
pub struct Fallback {
    /// Each template, its methods and its number of dynamic segments.
    paths: Arc<Vec<(ResourceDef, Vec<Method>, usize)>>,
}

impl Fallback {
    /// The fallback of a listener serving `table`.
    pub fn new(table: &[Route]) -> Self {
        let mut paths: Vec<(&'static str, Vec<Method>)> = Vec::new();
        for r in table {
            match paths.iter_mut().find(|(p, _)| *p == r.path) {
                Some((_, methods)) if !methods.contains(&r.method) => methods.push(r.method),
                Some(_) => {}
                None => paths.push((r.path, vec![r.method])),
            }
        }
        Fallback {
            paths: Arc::new(paths.into_iter().map(|(p, m)| (ResourceDef::new(p), m, dynamic_segments(p))).collect()),
        }
    }

    /// The methods the table has for `path` (a concrete path): those of
    /// the most specific templates that match it (fewest dynamic segments),
    /// in [`Method::ALL`] order; empty when no row's template matches it.
    pub fn allowed(&self, path: &str) -> Vec<Method> {
        let matching: Vec<_> = self.paths.iter().filter(|(def, ..)| def.is_match(path)).collect();
        let Some(best) = matching.iter().map(|(.., n)| *n).min() else {
            return Vec::new();
        };
        let methods: Vec<Method> =
            matching.iter().filter(|(.., n)| *n == best).flat_map(|(_, m, _)| m.iter().copied()).collect();
        Method::ALL.into_iter().filter(|m| methods.contains(m)).collect()
    }

    /// The answer to `req`, which no route took.
    pub fn respond(&self, req: &HttpRequest) -> HttpResponse {
        let allowed = self.allowed(req.path());
        if allowed.is_empty() {
            return ApiError::not_found("route").error_response();
        }
        let allow = allowed.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(", ");
        let mut res = ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{} is not allowed here; allowed: {allow}", req.method()),
            format!("不支持 {} 请求方法；可用：{allow}", req.method()),
        )
        .error_response();
        if let Ok(v) = header::HeaderValue::from_str(&allow) {
            res.headers_mut().insert(header::ALLOW, v);
        }
        res
    }

    /// The default service of a listener: [`Fallback::respond`].
    pub fn service(&self) -> actix_web::Route {
        let this = self.clone();
        web::to(move |req: HttpRequest| {
            let this = this.clone();
            async move { this.respond(&req) }
        })
    }
}

/// The table a process's API listener serves besides its services' routes.
pub static PLATFORM: &[Route] = &[
    Route::new(Method::Get, "/health/live", Access::Public, |r| r.to(crate::health::live)),
    Route::new(Method::Get, "/health/ready", Access::Public, |r| r.to(crate::health::ready)),
    Route { method: Method::Get, path: "/openapi.json", access: Access::Public, to: None },
    Route { method: Method::Get, path: "/docs/{_:.*}", access: Access::Public, to: None },
    Route::new(Method::Get, "/docs", Access::Public, |r| r.to(crate::health::docs_redirect)),
];

/// The admin listener's routes (`http.admin_listen`).
pub static ADMIN_LISTENER: &[Route] = &[
    Route::new(Method::Get, "/health/live", Access::AdminListener, |r| r.to(crate::health::live)),
    Route::new(Method::Get, "/health/ready", Access::AdminListener, |r| r.to(crate::health::ready)),
    Route::new(Method::Get, "/metrics", Access::AdminListener, |r| r.to(crate::metrics::metrics_endpoint)),
];

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // tests
    use super::*;

    async fn ok() -> HttpResponse {
        HttpResponse::Ok().finish()
    }

    static TABLE: &[Route] = &[
        Route::new(Method::Get, "/v1/things/{id}", Access::Public, |r| r.to(ok)),
        Route::new(Method::Post, "/v1/things/batch", Access::Public, |r| r.to(ok)),
        Route::new(Method::Delete, "/v1/things/{id}", Access::Public, |r| r.to(ok)),
        Route::new(Method::Get, "/files/{_:.*}", Access::Public, |r| r.to(ok)),
    ];

    #[test]
    fn allowed_methods_are_those_of_the_most_specific_matching_rows() {
        let f = Fallback::new(TABLE);
        assert_eq!(f.allowed("/v1/things/x"), [Method::Get, Method::Delete]);
        assert_eq!(f.allowed("/v1/things/batch"), [Method::Post]);
        assert_eq!(f.allowed("/files/a/b.txt"), [Method::Get]);
        assert!(f.allowed("/v1/things").is_empty());
        assert!(f.allowed("/v1/things/x/y").is_empty());
    }

    /// Over HTTP: a known path with a method no row has is 405 with
    /// `Allow` in the shared error shape; an unknown path stays 404.
    #[actix_web::test]
    async fn a_known_path_with_another_method_is_405_with_allow() {
        let fallback = Fallback::new(TABLE);
        let server = actix_web::HttpServer::new(move || {
            actix_web::App::new().configure(|cfg| register(cfg, TABLE)).default_service(fallback.service())
        })
        .workers(1)
        .disable_signals()
        .bind(("127.0.0.1", 0))
        .unwrap();
        let addr = server.addrs()[0];
        let server = server.run();
        let handle = server.handle();
        let task = tokio::spawn(server);
        let http = reqwest::Client::new();
        let base = format!("http://{addr}");
        let call = |m: reqwest::Method, path: &str| http.request(m, format!("{base}{path}")).send();

        let r = call(reqwest::Method::PUT, "/v1/things/abc").await.unwrap();
        assert_eq!(r.status().as_u16(), 405);
        assert_eq!(r.headers()["allow"], "GET, DELETE");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["code"], "method_not_allowed", "{body}");
        assert!(body["message"].as_str().unwrap().contains("PUT"), "{body}");
        assert!(body["message_zh"].is_string(), "{body}");

        // `/v1/things/batch` is its own row's, not the `{id}` row's with the
        // id "batch": only POST is served there.
        assert_eq!(call(reqwest::Method::POST, "/v1/things/batch").await.unwrap().status().as_u16(), 200);
        for m in [reqwest::Method::GET, reqwest::Method::PATCH, reqwest::Method::DELETE] {
            let r = call(m.clone(), "/v1/things/batch").await.unwrap();
            assert_eq!((r.status().as_u16(), r.headers()["allow"].to_str().unwrap()), (405, "POST"), "{m}");
        }
        assert_eq!(call(reqwest::Method::GET, "/v1/things/x").await.unwrap().status().as_u16(), 200);
        let r = call(reqwest::Method::POST, "/files/a/b.txt").await.unwrap();
        assert_eq!((r.status().as_u16(), r.headers()["allow"].to_str().unwrap()), (405, "GET"));
        let r = call(reqwest::Method::OPTIONS, "/v1/things/abc").await.unwrap();
        assert_eq!((r.status().as_u16(), r.headers()["allow"].to_str().unwrap()), (405, "GET, DELETE"));

        let r = call(reqwest::Method::GET, "/v1/nothing").await.unwrap();
        assert_eq!(r.status().as_u16(), 404);
        assert!(r.headers().get("allow").is_none());
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["code"], "not_found", "{body}");

        handle.stop(true).await;
        task.await.unwrap().unwrap();
    }
}
