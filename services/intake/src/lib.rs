//! **intake** — where grid workers' phones report incidents.
//!
//! Accepts reports over HTTP (idempotent on the client's id), stores each
//! with its report-submitted event in one transaction (outbox), and follows
//! the report through the pipeline by consuming report-assigned and
//! case-lifecycle events, so the reporter sees its status and timeline.

use std::collections::HashMap;
use std::sync::Arc;

use actix_web::web;
use gridwork_domain::petition::Keyer;
use gridwork_events::Topics;
use gridwork_platform::auth::Issuer;
use gridwork_platform::cache::Cache;
use gridwork_platform::routes::{Access, Method, Route, ADMINS, REPORTERS};
use gridwork_platform::{pipeline, Application, Config, Context, Routes, Service};
use gridwork_storage::entity::category;
use sea_orm::{DatabaseConnection, EntityTrait};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub mod auth;
mod consumer;
pub mod error;
pub mod group_commit;
mod limits;
pub mod media;
pub mod open311;
pub mod openapi;
pub mod reports;
pub mod users;

pub const PRODUCER: &str = "intake";

/// Shared state of intake's handlers.
pub struct State {
    pub db: DatabaseConnection,
    pub topics: Topics,
    pub cache: Arc<dyn Cache>,
    pub issuer: Arc<Issuer>,
    pub keyer: Keyer,
    /// Seals parties' personal information at rest.
    pub keyring: Arc<gridwork_platform::pii::Keyring>,
    /// Category code → is it a petition category.
    pub categories: HashMap<String, bool>,
    pub batcher: group_commit::Batcher,
    /// Reports per token per minute (0 = unlimited).
    pub rate_limit: u64,
    /// The most reports one `POST /v1/reports/batch` may carry.
    pub batch_max_items: usize,
    /// Photos and videos.
    pub media: media::MediaStore,
    pub accepted: prometheus::IntCounterVec,
    pub dummy_hash: String,
    /// Password sign-in's throttle and its bound on Argon2 work.
    pub signin: auth::signin::Signin,
    /// The grid registry (the assigner's, shared in one process): where a
    /// report lies, for the reporter's area and `received_by`.
    pub grids: web::Data<gridwork_assigner::State>,
    /// `intake.report_area`.
    pub report_area: gridwork_domain::auth::ReportArea,
}

/// intake's route table (ADR 0033): registered by [`routes`], walked by the
/// attack matrix. Open311's is [`open311::ROUTES`].
pub static ROUTES: &[Route] = &[
    Route::new(Method::Post, "/v1/reports", Access::Roles(REPORTERS), |r| r.to(reports::submit::submit)),
    Route::new(Method::Post, "/v1/reports/batch", Access::Roles(REPORTERS), |r| r.to(reports::batch::submit_batch)),
    Route::new(Method::Post, "/v1/media", Access::Roles(REPORTERS), |r| r.to(media::upload)),
    Route::new(Method::Get, "/v1/media/{id}", Access::SignedIn, |r| r.to(media::download)),
    Route::new(Method::Get, "/v1/reports/{id}", Access::SignedIn, |r| r.to(reports::read::get_report)),
    Route::new(Method::Get, "/v1/me/reports", Access::SignedIn, |r| r.to(reports::read::my_reports)),
    Route::new(Method::Post, "/v1/auth/token", Access::Public, |r| r.to(auth::token::token)),
    Route::new(Method::Post, "/v1/auth/revoke", Access::SignedIn, |r| r.to(auth::session::revoke)),
    Route::new(Method::Patch, "/v1/users/{id}", Access::Roles(ADMINS), |r| r.to(users::patch)),
    Route::new(Method::Get, "/.well-known/jwks.json", Access::Public, |r| r.to(auth::jwks)),
];

/// intake's rows and Open311's, in registration order.
pub fn table() -> Vec<Route> {
    ROUTES.iter().chain(open311::ROUTES).copied().collect()
}

pub fn routes(state: web::Data<State>) -> Routes {
    Arc::new(move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(state.clone());
        gridwork_platform::routes::register(cfg, ROUTES);
        open311::routes(cfg);
    })
}

/// Starts intake's consumer and outbox relay; returns its routes. Loads
/// the grid registry of its own (and keeps it current).
pub async fn start(ctx: &Context, shutdown: CancellationToken) -> anyhow::Result<Service> {
    start_with_grids(ctx, shutdown, None).await
}

/// As [`start`], sharing the assigner's grid registry when one is given
/// (the all-in-one runner).
pub async fn start_with_grids(
    ctx: &Context,
    shutdown: CancellationToken,
    grids: Option<web::Data<gridwork_assigner::State>>,
) -> anyhow::Result<Service> {
    let (grids, refresher) = match grids {
        Some(g) => (g, None),
        None => {
            let reloads = ctx
                .metrics
                .counter("intake_grid_registry_reloads_total", "Grid registry reloads in intake", &[])?
                .with_label_values(&[]);
            let g = web::Data::new(
                gridwork_assigner::State::load(ctx.db.clone(), ctx.config.assigner.clone(), reloads).await?,
            );
            let task = gridwork_assigner::spawn_refresher(g.clone(), shutdown.clone());
            (g, Some(task))
        }
    };
    let categories: HashMap<String, bool> =
        category::Entity::find().all(&ctx.db).await?.into_iter().map(|c| (c.code, c.petition)).collect();
    let api = openapi::spec(&categories.keys().cloned().collect::<Vec<_>>(), ctx.config.intake.batch_max_items);
    let secret = Context::secret(std::path::Path::new(&ctx.config.petition.key_file))?;
    let wake = Arc::new(Notify::new());
    let dummy_hash = {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let salt = SaltString::encode_b64(b"gridwork-dummy-salt").map_err(|e| anyhow::anyhow!("{e}"))?;
        argon2::Argon2::default().hash_password(b"no such user", &salt).map_err(|e| anyhow::anyhow!("{e}"))?.to_string()
    };
    let (batcher, batch_task) = group_commit::Batcher::start(
        ctx.db.clone(),
        PRODUCER,
        wake.clone(),
        group_commit::BatchSettings {
            max: ctx.config.intake.batch_max,
            wait: std::time::Duration::from_millis(ctx.config.intake.batch_wait_ms),
        },
        ctx.metrics.histogram(
            "intake_batch_size",
            "Reports committed per transaction (group commit)",
            vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0],
        )?,
        shutdown.clone(),
    );
    let state = web::Data::new(State {
        db: ctx.db.clone(),
        topics: ctx.topics.clone(),
        cache: ctx.cache.clone(),
        issuer: ctx.issuer.clone(),
        keyer: Keyer::new(secret),
        keyring: ctx.keyring.clone(),
        categories,
        batcher,
        rate_limit: ctx.config.intake.rate_limit_per_minute,
        batch_max_items: ctx.config.intake.batch_max_items,
        media: media::MediaStore::open(
            &ctx.config.intake.media_url,
            ctx.config.intake.max_image_bytes,
            ctx.config.intake.max_video_bytes,
        )?,
        accepted: ctx.metrics.counter("reports_accepted_total", "Reports accepted by intake", &["urgency"])?,
        dummy_hash,
        signin: auth::signin::Signin::new(&ctx.config, ctx.cache.clone()),
        grids,
        report_area: ctx.config.intake.report_area,
    });
    let mut tasks = vec![
        batch_task,
        pipeline::spawn_relay(ctx, PRODUCER, wake, shutdown.clone()),
        auth::session::spawn_pruner(ctx.db.clone(), shutdown.clone()),
    ];
    tasks.extend(refresher);
    let handler = Arc::new(consumer::StatusFollower { db: ctx.db.clone() });
    tasks.push(
        pipeline::spawn_consumer(
            ctx,
            "intake",
            vec![
                ctx.topics.report_assigned.clone(),
                ctx.topics.report_assigned_emergency.clone(),
                ctx.topics.case_lifecycle.clone(),
            ],
            handler,
            shutdown,
        )
        .await?,
    );
    Ok(Service { routes: routes(state), table: table(), tasks, api: Some(api) })
}

/// intake on its own: connects, checks the schema, binds `http.listen`.
pub async fn build(config: Config) -> anyhow::Result<Application> {
    gridwork_platform::http::standalone(config, "intake", |ctx, shutdown| async move { start(&ctx, shutdown).await })
        .await
}
