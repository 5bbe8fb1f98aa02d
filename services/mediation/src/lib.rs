//! **mediation** — the one-stop dispute-mediation queues of each centre.
//!
//! Consumes report-assigned, links a report to an open case of the same
//! incident ([`link`]) or applies the routing rules (data, [`routing`]) and
//! opens a case in the right channel queue of the centre that owns the grid,
//! with its clocks ([`clocks`]); dispatchers and mediators then work the
//! queues over HTTP ([`cases`], [`tasks`], [`pii`]) and watch them live
//! ([`live`]); the supervision scheduler ([`supervise`]) raises near-due
//! and overdue notices. Every change is a case-lifecycle event, published
//! through the outbox in the same transaction as the change.
//!
//! Who may see and do what is [`access`]'s, once; every error is a
//! [`error::MediationError`]; the SQL is the repository's ([`repo`]).

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use actix_web::web;
use chrono::Duration;
use gridwork_domain::routing::RoutingTable;
use gridwork_events::Topics;
use gridwork_platform::routes::{Access, Method, Route, ADMINS, GRID_WORKERS, QUEUE_WORKERS};
use gridwork_platform::{pipeline, Application, Config, Context, Routes, Service};
use gridwork_storage::entity::category;
use sea_orm::{DatabaseConnection, EntityTrait};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub mod access;
pub mod body;
pub mod cases;
pub mod clocks;
pub mod console;
mod consumer;
pub mod error;
pub mod link;
pub mod live;
pub mod openapi;
pub mod pii;
pub mod repo;
pub mod routing;
pub mod schema;
pub mod supervise;
pub mod tasks;

pub const PRODUCER: &str = "mediation";

pub struct State {
    pub db: DatabaseConnection,
    pub topics: Topics,
    pub routing: RwLock<Arc<RoutingTable>>,
    /// Categories whose reports are petitions.
    pub petition_categories: HashSet<String>,
    pub lease: Duration,
    pub cache: std::sync::Arc<dyn gridwork_platform::cache::Cache>,
    pub fanout: gridwork_platform::fanout::Fanout,
    pub wake: Arc<Notify>,
    pub cases_created: prometheus::IntCounterVec,
    pub transitions: prometheus::IntCounterVec,
    pub reports_linked: prometheus::IntCounterVec,
    pub supervisions: prometheus::IntCounterVec,
    pub clocks: clocks::Clocks,
    pub near_due_share: f64,
    pub link_distance_m: f64,
    pub link_window_minutes: i64,
    pub supervise_every_ms: u64,
    /// Opens parties' personal information (audited reads only).
    pub keyring: Arc<gridwork_platform::pii::Keyring>,
    /// How often an open live stream checks its token again.
    pub stream_recheck: std::time::Duration,
    /// At most this many missed events are replayed to a resumed stream.
    pub stream_replay_max: u64,
    /// The tolerance of token expiry (`auth.leeway_secs`), as requests have it.
    pub token_leeway: chrono::Duration,
}

impl State {
    pub fn routing(&self) -> Result<Arc<RoutingTable>, String> {
        self.routing.read().map(|r| r.clone()).map_err(|_| "routing lock poisoned".to_owned())
    }
}

/// The newest routing table in the database, if newer than `after`;
/// validated.
pub async fn newer_routing(db: &DatabaseConnection, after: u32) -> anyhow::Result<Option<RoutingTable>> {
    let Some(row) = repo::routing::newest_after(db, after).await? else {
        return Ok(None);
    };
    let table: RoutingTable = serde_json::from_str(&row.body)?;
    table.validate()?;
    Ok(Some(table))
}

/// The newest routing table in the database.
pub async fn load_routing(db: &DatabaseConnection) -> anyhow::Result<RoutingTable> {
    newer_routing(db, 0)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no routing rules in the database: seed or import them first"))
}

pub async fn start(ctx: &Context, shutdown: CancellationToken) -> anyhow::Result<Service> {
    let routing = load_routing(&ctx.db).await?;
    let petition_categories =
        category::Entity::find().all(&ctx.db).await?.into_iter().filter(|c| c.petition).map(|c| c.code).collect();
    let wake = Arc::new(Notify::new());
    let m = &ctx.config.mediation;
    let calendar = if m.holidays_file.is_empty() {
        gridwork_domain::calendar::Calendar::official().clone()
    } else {
        let text = std::fs::read_to_string(&m.holidays_file)
            .map_err(|e| anyhow::anyhow!("mediation.holidays_file {}: {e}", m.holidays_file))?;
        gridwork_domain::calendar::Calendar::from_json(&text)
            .map_err(|e| anyhow::anyhow!("mediation.holidays_file {}: {e}", m.holidays_file))?
    };
    // The calendar's years are Beijing years.
    let this_year = chrono::Datelike::year(&(chrono::Utc::now() + chrono::Duration::hours(8)));
    if !calendar.covers(this_year) {
        tracing::warn!(
            year = this_year,
            listed = ?calendar.years().collect::<Vec<_>>(),
            "the holiday calendar does not list this year: working days are Monday to Friday until it is added"
        );
    }
    let state = web::Data::new(State {
        db: ctx.db.clone(),
        topics: ctx.topics.clone(),
        routing: RwLock::new(Arc::new(routing)),
        petition_categories,
        lease: Duration::minutes(ctx.config.mediation.lease_minutes),
        cache: ctx.cache.clone(),
        fanout: ctx.fanout.clone(),
        wake: wake.clone(),
        cases_created: ctx.metrics.counter("cases_created_total", "Cases opened, by channel", &["channel"])?,
        transitions: ctx.metrics.counter("case_transitions_total", "Case lifecycle events, by kind", &["kind"])?,
        reports_linked: ctx.metrics.counter(
            "reports_linked_total",
            "Reports linked to an open case of the same incident",
            &[],
        )?,
        supervisions: ctx.metrics.counter(
            "supervisions_total",
            "Supervision notices (督办) raised, by clock and threshold",
            &["clock", "threshold"],
        )?,
        clocks: clocks::Clocks { calendar, petition: gridwork_domain::calendar::PetitionRules::default() },
        near_due_share: m.near_due_share,
        link_distance_m: m.link_distance_m,
        link_window_minutes: m.link_window_minutes,
        supervise_every_ms: m.supervise_interval_ms,
        keyring: ctx.keyring.clone(),
        stream_recheck: std::time::Duration::from_millis(m.stream_recheck_ms),
        stream_replay_max: m.stream_replay_max,
        token_leeway: chrono::Duration::seconds(i64::try_from(ctx.config.auth.leeway_secs.min(86_400)).unwrap_or(0)),
    });
    let handler: Arc<dyn gridwork_bus::Handler> = Arc::new(consumer::CaseOpener { state: state.clone() });
    let tasks = vec![
        pipeline::spawn_relay(ctx, PRODUCER, wake, shutdown.clone()),
        supervise::spawn(state.clone(), shutdown.clone()),
        // Two lanes, each its own consumer group: emergencies never wait
        // behind ordinary reports.
        pipeline::spawn_consumer(
            ctx,
            "mediation-emergency",
            vec![ctx.topics.report_assigned_emergency.clone()],
            Arc::new(pipeline::Lane { inner: handler.clone(), failpoint: "mediation.emergency_lane" }),
            shutdown.clone(),
        )
        .await?,
        pipeline::spawn_consumer(
            ctx,
            "mediation",
            vec![ctx.topics.report_assigned.clone()],
            Arc::new(pipeline::Lane { inner: handler, failpoint: "mediation.ordinary_lane" }),
            shutdown,
        )
        .await?,
    ];
    let routes: Routes = Arc::new(move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(state.clone());
        gridwork_platform::routes::register(cfg, ROUTES);
    });
    Ok(Service { routes, table: ROUTES.to_vec(), tasks, api: Some(openapi::spec()) })
}

/// mediation's route table (ADR 0033), in registration order: the task
/// and parties routes come before `/v1/cases/{id}/{action}`, which would
/// match them too.
pub static ROUTES: &[Route] = &[
    Route::new(Method::Get, "/v1/routing/rules", Access::Roles(QUEUE_WORKERS), |r| r.to(routing::current)),
    Route::new(Method::Put, "/v1/routing/rules", Access::Roles(ADMINS), |r| r.to(routing::replace)),
    Route::new(Method::Get, "/v1/routing/versions", Access::Roles(QUEUE_WORKERS), |r| r.to(routing::versions)),
    Route::new(Method::Post, "/v1/routing/dry-run", Access::Roles(QUEUE_WORKERS), |r| r.to(routing::dry_run)),
    Route::new(Method::Get, "/v1/cases", Access::Roles(QUEUE_WORKERS), |r| r.to(cases::list::list)),
    Route::new(Method::Get, "/v1/cases/counts", Access::Roles(QUEUE_WORKERS), |r| r.to(cases::counts::counts)),
    Route::new(Method::Get, "/v1/me/cases", Access::Roles(GRID_WORKERS), |r| r.to(cases::mine::my_grid_cases)),
    Route::new(Method::Get, "/v1/cases/{id}", Access::Roles(QUEUE_WORKERS), |r| r.to(cases::detail::detail)),
    Route::new(Method::Get, "/v1/me/tasks", Access::Roles(GRID_WORKERS), |r| r.to(tasks::phone::mine)),
    Route::new(Method::Post, "/v1/me/tasks/{id}/ack", Access::Roles(GRID_WORKERS), |r| r.to(tasks::phone::ack)),
    Route::new(Method::Post, "/v1/me/tasks/{id}/complete", Access::Roles(GRID_WORKERS), |r| {
        r.to(tasks::phone::complete)
    }),
    Route::new(Method::Get, "/v1/cases/{id}/tasks", Access::Roles(QUEUE_WORKERS), |r| {
        r.to(tasks::case_worker::of_case)
    }),
    Route::new(Method::Post, "/v1/cases/{id}/tasks", Access::Roles(QUEUE_WORKERS), |r| {
        r.to(tasks::case_worker::create)
    }),
    Route::new(Method::Post, "/v1/cases/{id}/tasks/{task}/cancel", Access::Roles(QUEUE_WORKERS), |r| {
        r.to(tasks::case_worker::cancel)
    }),
    Route::new(Method::Post, "/v1/cases/{id}/parties", Access::Roles(QUEUE_WORKERS), |r| r.to(pii::reveal)),
    Route::new(Method::Post, "/v1/cases/{id}/{action}", Access::Roles(QUEUE_WORKERS), |r| r.to(cases::act::act)),
    Route::new(Method::Get, "/v1/audit/pii-reads", Access::Roles(ADMINS), |r| r.to(pii::audit)),
    Route::new(Method::Get, "/v1/centres/{code}/stream", Access::Roles(QUEUE_WORKERS), |r| r.to(live::stream)),
    // The web console: a static page (its data come through the API above).
    Route::new(Method::Get, "/console", Access::Public, |r| r.to(console::redirect)),
    Route::new(Method::Get, "/console/{_:.*}", Access::Public, |r| r.to(console::file)),
];

/// mediation on its own: connects, checks the schema, binds `http.listen`.
pub async fn build(config: Config) -> anyhow::Result<Application> {
    gridwork_platform::http::standalone(config, "mediation", |ctx, shutdown| async move { start(&ctx, shutdown).await })
        .await
}
