//! The HTTP server every service runs: shared app data, JSON error
//! handling, tracing spans and metrics on every request, health and metrics
//! endpoints, and graceful shutdown of the server and background tasks.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{middleware, web, App, HttpServer};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use utoipa_swagger_ui::SwaggerUi;

use crate::config::Config;
use crate::context::{Context, Schema};
use crate::error::{self, ApiError};
use crate::routes::{Fallback, Route};

/// A service's routes.
pub type Routes = Arc<dyn Fn(&mut web::ServiceConfig) + Send + Sync>;

/// What a started service contributes to a process: its routes and its
/// background tasks (consumers, relays), which stop on the shutdown token.
pub struct Service {
    /// Registers the service's routes: only through
    /// [`crate::routes::register`] from the service's route table.
    pub routes: Routes,
    /// The service's route table (ADR 0033): the same rows `routes`
    /// registers, with who may call each.
    pub table: Vec<crate::routes::Route>,
    pub tasks: Vec<JoinHandle<()>>,
    /// The service's OpenAPI description, merged into `/openapi.json`.
    pub api: Option<utoipa::openapi::OpenApi>,
}

/// A service on its own: binds `http.listen`, connects (refusing a schema
/// that is behind), starts the service with a fresh shutdown token.
pub async fn standalone<F, Fut>(config: Config, name: &'static str, start: F) -> anyhow::Result<Application>
where
    F: FnOnce(Context, CancellationToken) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Service>>,
{
    let listener = TcpListener::bind(&config.http.listen)?;
    let ctx = Context::connect(config, Schema::RequireCurrent, name).await?;
    let shutdown = CancellationToken::new();
    let svc = start(ctx.clone(), shutdown.clone()).await?;
    let apis = svc.api.into_iter().collect();
    let table = crate::routes::PLATFORM.iter().copied().chain(svc.table.iter().copied()).collect();
    Ok(Application::new(ctx, listener, vec![svc.routes], table, apis, shutdown, svc.tasks)?)
}

/// The `main` of a service binary: configuration from `GRIDWORK_CONFIG` and
/// `GRIDWORK_…` variables, logging, the service, its address on stdout, and
/// a graceful stop on SIGTERM/SIGINT.
pub async fn main<F, Fut>(name: &str, build: F) -> anyhow::Result<()>
where
    F: FnOnce(Config) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Application>>,
{
    let file = std::env::var_os("GRIDWORK_CONFIG").map(std::path::PathBuf::from);
    let config = Config::load(file.as_deref())?;
    crate::telemetry::init(&config.log.format);
    let host = config_host(&config.http.listen);
    let app = build(config).await?;
    let admin_host = config_host(&app.admin_host);
    println!("gridwork-{name} admin listener (metrics, health) at http://{admin_host}:{}", app.admin_port());
    println!("gridwork-{name} listening on http://{host}:{}", app.port());
    app.run_until_stopped().await?;
    Ok(())
}

/// The host part of a `HOST:PORT` setting.
pub fn config_host(listen: &str) -> String {
    listen.rsplit_once(':').map(|(h, _)| h.to_owned()).unwrap_or_default()
}

/// The process's OpenAPI 3 description: the platform's health endpoints and
/// every service it runs, merged, with bearer-token security
/// (`Authorization: Bearer <jwt>`) and the shared error shape (`ApiError`).
pub fn openapi(apis: Vec<utoipa::openapi::OpenApi>) -> utoipa::openapi::OpenApi {
    use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
    use utoipa::openapi::{ComponentsBuilder, InfoBuilder, OpenApiBuilder};
    let mut spec = OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("gridwork")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Grid-based grassroots governance: reports from grid workers' phones, \
                     one-stop dispute-mediation queues, KPIs. Errors share one shape \
                     (`code`, `message`, `message_zh`, `field`).",
                ))
                .build(),
        )
        .components(Some(
            ComponentsBuilder::new()
                .security_scheme(
                    "bearer",
                    SecurityScheme::Http(
                        HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build(),
                    ),
                )
                .schema("ApiError", <ApiError as utoipa::PartialSchema>::schema())
                .build(),
        ))
        .build();
    spec.merge(<crate::health::HealthApi as utoipa::OpenApi>::openapi());
    for api in apis {
        let clashes = clashing_schemas(&spec, &api);
        // Merging keeps the first of two schemas of one name: the other
        // service's bodies would be described wrongly.
        if !clashes.is_empty() {
            tracing::error!(?clashes, "two services describe different schemas under one name");
        }
        debug_assert!(clashes.is_empty(), "two services describe different schemas under one name: {clashes:?}");
        spec.merge(api);
    }
    without_dangling_links(spec)
}

/// The component schemas `api` names like `spec` but describes differently.
fn clashing_schemas(spec: &utoipa::openapi::OpenApi, api: &utoipa::openapi::OpenApi) -> Vec<String> {
    let (Some(have), Some(new)) = (spec.components.as_ref(), api.components.as_ref()) else {
        return Vec::new();
    };
    new.schemas
        .iter()
        .filter(|(name, schema)| {
            have.schemas
                .get(*name)
                .is_some_and(|old| serde_json::to_value(old).ok() != serde_json::to_value(schema).ok())
        })
        .map(|(name, _)| name.clone())
        .collect()
}

/// `spec` without the links to operations it does not hold: a service's
/// links may lead into another service's operations (a report to its case),
/// which a process serving that service alone does not describe.
fn without_dangling_links(spec: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let Ok(mut json) = serde_json::to_value(&spec) else {
        return spec;
    };
    let ids: std::collections::BTreeSet<String> = json["paths"]
        .as_object()
        .into_iter()
        .flat_map(|paths| paths.values())
        .filter_map(|item| item.as_object())
        .flat_map(|methods| methods.values())
        .filter_map(|op| op["operationId"].as_str().map(str::to_owned))
        .collect();
    let Some(paths) = json.get_mut("paths").and_then(|p| p.as_object_mut()) else {
        return spec;
    };
    for item in paths.values_mut().filter_map(|i| i.as_object_mut()) {
        for op in item.values_mut() {
            let Some(responses) = op.get_mut("responses").and_then(|r| r.as_object_mut()) else { continue };
            for response in responses.values_mut() {
                let Some(links) = response.get_mut("links").and_then(|l| l.as_object_mut()) else { continue };
                links.retain(|_, link| link["operationId"].as_str().is_none_or(|id| ids.contains(id)));
                if links.is_empty() {
                    if let Some(r) = response.as_object_mut() {
                        r.remove("links");
                    }
                }
            }
        }
    }
    serde_json::from_value(json).unwrap_or(spec)
}

/// A running service: HTTP server, admin server plus background tasks.
pub struct Application {
    port: u16,
    server: Server,
    admin_port: u16,
    /// `http.admin_listen` as configured (its host, for messages).
    pub admin_host: String,
    admin: actix_web::dev::ServerHandle,
    admin_task: JoinHandle<std::io::Result<()>>,
    shutdown: CancellationToken,
    background: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

/// Stops an [`Application`] from elsewhere (tests, signal handlers).
#[derive(Clone)]
pub struct StopHandle {
    server: actix_web::dev::ServerHandle,
    admin: actix_web::dev::ServerHandle,
}

impl StopHandle {
    /// Graceful: stop accepting, finish requests in flight, then the
    /// background tasks drain.
    pub async fn stop(&self) {
        self.server.stop(true).await;
        self.admin.stop(true).await;
    }
}

impl Application {
    /// Builds the server on `listener` with every service's routes, and the
    /// admin server (`/metrics`, health) on `http.admin_listen`. `table` is
    /// every row the API listener serves ([`crate::routes::PLATFORM`] and
    /// each service's): a request on one of its paths with a method it does
    /// not list is answered 405 with `Allow` ([`Fallback`]).
    pub fn new(
        ctx: Context,
        listener: TcpListener,
        routes: Vec<Routes>,
        table: Vec<Route>,
        apis: Vec<utoipa::openapi::OpenApi>,
        shutdown: CancellationToken,
        tasks: Vec<JoinHandle<()>>,
    ) -> std::io::Result<Self> {
        let port = listener.local_addr()?.port();
        let max_body = ctx.config.http.max_body_bytes;
        let workers = ctx.config.http.workers;
        let data = web::Data::new(ctx.clone());
        let verifier = web::Data::new(ctx.verifier.clone());
        let metrics = web::Data::new(ctx.metrics.clone());
        let spec = openapi(apis);
        let fallback = Fallback::new(&table);
        let admin_fallback = Fallback::new(crate::routes::ADMIN_LISTENER);
        let (admin_data, admin_metrics) = (data.clone(), metrics.clone());
        let mut server = HttpServer::new(move || {
            let app = App::new()
                .app_data(data.clone())
                .app_data(verifier.clone())
                .app_data(metrics.clone())
                .app_data(web::JsonConfig::default().limit(max_body).error_handler(|e, _| error::json_error(e).into()))
                .app_data(web::QueryConfig::default().error_handler(|e, _| error::query_error(e).into()))
                .app_data(web::PathConfig::default().error_handler(|e, _| error::path_error(e).into()))
                .wrap(middleware::from_fn(crate::metrics::track))
                .wrap(tracing_actix_web::TracingLogger::<crate::access_log::RedactingRootSpan>::new());
            // The OpenAPI document and Swagger UI: rows without a handler in
            // `routes::PLATFORM`.
            #[allow(clippy::disallowed_methods)]
            let mut app = app.service(SwaggerUi::new("/docs/{_:.*}").url("/openapi.json", spec.clone()));
            app = crate::routes::register_app(app, crate::routes::PLATFORM);
            for r in &routes {
                let r = r.clone();
                app = app.configure(move |cfg| r(cfg));
            }
            app.default_service(fallback.service())
        })
        .listen(listener)?
        .shutdown_timeout(20);
        if workers > 0 {
            server = server.workers(workers);
        }
        // Metrics and health for Prometheus and probes, on a listener of
        // their own that stays off the public network. It stops after the
        // API has drained (no signal handling of its own).
        let admin_listener = TcpListener::bind(&ctx.config.http.admin_listen)?;
        let admin_port = admin_listener.local_addr()?.port();
        let admin = HttpServer::new(move || {
            let app = App::new().app_data(admin_data.clone()).app_data(admin_metrics.clone());
            crate::routes::register_app(app, crate::routes::ADMIN_LISTENER).default_service(admin_fallback.service())
        })
        .listen(admin_listener)?
        .workers(1)
        .disable_signals()
        .shutdown_timeout(5)
        .run();
        let admin_handle = admin.handle();
        Ok(Application {
            port,
            server: server.run(),
            admin_port,
            admin_host: ctx.config.http.admin_listen.clone(),
            admin: admin_handle,
            admin_task: tokio::spawn(admin),
            shutdown,
            background: ctx.background.clone(),
            tasks,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of the admin listener (`/metrics`, health).
    pub fn admin_port(&self) -> u16 {
        self.admin_port
    }

    pub fn stop_handle(&self) -> StopHandle {
        StopHandle { server: self.server.handle(), admin: self.admin.clone() }
    }

    /// Serves until the server stops (SIGINT/SIGTERM or a [`StopHandle`]),
    /// then stops the background tasks: consumers finish the message in hand
    /// and commit, outbox relays publish what is pending.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = self.server.await;
        self.admin.stop(true).await;
        let _ = self.admin_task.await;
        tracing::info!("HTTP server stopped; draining background work");
        self.shutdown.cancel();
        for t in self.tasks {
            if tokio::time::timeout(Duration::from_secs(30), t).await.is_err() {
                tracing::warn!("a background task did not stop within 30 s");
            }
        }
        // Last: nothing is left that verifies a token or publishes a change.
        self.background.cancel();
        tracing::info!("stopped");
        served
    }
}
