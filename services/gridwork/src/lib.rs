//! **gridwork** — the operator's CLI and the all-in-one runner.
//!
//! `gridwork up` runs every service (intake → assigner → mediation →
//! analytics) in one process on the embedded default, seeded with the demo
//! city, behind one listener that serves every route. The load generator,
//! benchmarks and fault-suite tools live in `tools/bench` (`gridwork-bench`).

use std::net::TcpListener;

use gridwork_platform::{Application, Config, Context, Schema};
use tokio_util::sync::CancellationToken;

pub mod dlq;
pub mod grids;
pub mod seed;

/// The configuration as the CLI loads it: the file (or `GRIDWORK_CONFIG`),
/// `GRIDWORK_…` variables, then the command's own `--data-dir` and
/// `--listen`.
pub fn load_config(
    file: Option<&std::path::PathBuf>,
    data_dir: Option<&std::path::PathBuf>,
    listen: Option<&String>,
) -> anyhow::Result<Config> {
    let mut overrides = Vec::new();
    if let Some(d) = data_dir {
        overrides.push(("data_dir", d.display().to_string()));
    }
    if let Some(l) = listen {
        overrides.push(("http.listen", l.clone()));
    }
    Ok(Config::load_with(file.map(std::path::PathBuf::as_path), &overrides)?)
}

/// The running all-in-one process.
pub struct AllInOne {
    pub app: Application,
    pub ctx: Context,
    pub demo: seed::Demo,
    /// Every route the API listener serves, with who may call it (ADR
    /// 0033): the platform's rows, then each service's, as registered.
    pub table: Vec<gridwork_platform::routes::Route>,
}

/// Migrates, seeds the demo city on first start, starts every service and
/// binds `http.listen` (port 0 picks a free port).
pub async fn build(config: Config) -> anyhow::Result<AllInOne> {
    let listener = TcpListener::bind(&config.http.listen)?;
    let ctx = Context::connect(config, Schema::Migrate, "up").await?;
    let demo = seed::seed_if_empty(&ctx.db).await?;
    let shutdown = CancellationToken::new();
    // Downstream first, so each stage is consuming before its input flows.
    let analytics = gridwork_analytics::start(&ctx, shutdown.clone()).await?;
    let mediation = gridwork_mediation::start(&ctx, shutdown.clone()).await?;
    let (assigner, grids) = gridwork_assigner::start_sharing(&ctx, shutdown.clone()).await?;
    // One grid registry in memory: intake checks where reports lie with the assigner's.
    let intake = gridwork_intake::start_with_grids(&ctx, shutdown.clone(), Some(grids)).await?;
    let services = [intake, assigner, mediation, analytics];
    let apis = services.iter().filter_map(|s| s.api.clone()).collect();
    let routes = services.iter().map(|s| s.routes.clone()).collect();
    let table: Vec<gridwork_platform::routes::Route> = gridwork_platform::routes::PLATFORM
        .iter()
        .copied()
        .chain(services.iter().flat_map(|s| s.table.iter().copied()))
        .collect();
    let tasks = services.into_iter().flat_map(|s| s.tasks).collect();
    let app = Application::new(ctx.clone(), listener, routes, table.clone(), apis, shutdown, tasks)?;
    Ok(AllInOne { app, ctx, demo, table })
}
