//! **mediation** — the one-stop dispute-mediation queues of each centre.
//!
//! Consumes report-assigned, applies the routing rules (data) and opens a
//! case in the right channel queue of the centre that owns the grid;
//! dispatchers and mediators then list, claim, resolve and close cases over
//! HTTP. Every transition is a case-lifecycle event, published through the
//! outbox in the same transaction as the change.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use actix_web::web;
use chrono::Duration;
use gridwork_domain::routing::RoutingTable;
use gridwork_events::Topics;
use gridwork_platform::{pipeline, Application, Config, Context, Routes, Service};
use gridwork_storage::entity::{category, routing_table};
use sea_orm::{DatabaseConnection, EntityTrait, QueryOrder};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub mod api;
mod consumer;
pub mod live;
pub mod repo;

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
}

impl State {
    pub fn routing(&self) -> Result<Arc<RoutingTable>, String> {
        self.routing.read().map(|r| r.clone()).map_err(|_| "routing lock poisoned".to_owned())
    }
}

/// The newest routing table in the database.
pub async fn load_routing(db: &DatabaseConnection) -> anyhow::Result<RoutingTable> {
    let row = routing_table::Entity::find()
        .order_by_desc(routing_table::Column::Version)
        .one(db)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no routing rules in the database: seed or import them first"))?;
    let table: RoutingTable = serde_json::from_str(&row.body)?;
    table.validate()?;
    Ok(table)
}

pub async fn start(ctx: &Context, shutdown: CancellationToken) -> anyhow::Result<Service> {
    let routing = load_routing(&ctx.db).await?;
    let petition_categories =
        category::Entity::find().all(&ctx.db).await?.into_iter().filter(|c| c.petition).map(|c| c.code).collect();
    let wake = Arc::new(Notify::new());
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
    });
    let handler = Arc::new(consumer::CaseOpener { state: state.clone() });
    let tasks = vec![
        pipeline::spawn_relay(ctx, PRODUCER, wake, shutdown.clone()),
        pipeline::spawn_consumer(ctx, "mediation", vec![ctx.topics.report_assigned.clone()], handler, shutdown).await?,
    ];
    let routes: Routes = Arc::new(move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(state.clone())
            .route("/v1/cases", web::get().to(api::list))
            .route("/v1/cases/{id}", web::get().to(api::detail))
            .route("/v1/cases/{id}/{action}", web::post().to(api::act))
            .route("/v1/centres/{code}/stream", web::get().to(live::stream));
    });
    Ok(Service { routes, tasks })
}

/// mediation on its own: connects, checks the schema, binds `http.listen`.
pub async fn build(config: Config) -> anyhow::Result<Application> {
    gridwork_platform::http::standalone(config, "mediation", |ctx, shutdown| async move { start(&ctx, shutdown).await })
        .await
}
