//! The mediation service on its own.

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let config = gridwork_platform::Config::load(
        std::env::var_os("GRIDWORK_CONFIG")
            .as_deref()
            .map(std::path::Path::new),
    )?;
    gridwork_platform::telemetry::init(&config.log.format);
    let app = gridwork_mediation::build(config).await?;
    tracing::info!(port = app.port(), "mediation listening");
    app.run_until_stopped().await?;
    Ok(())
}
