//! The assigner service on its own. Configuration: `GRIDWORK_CONFIG` (a TOML
//! file) and `GRIDWORK_…` environment variables; see the README.

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let file = std::env::var_os("GRIDWORK_CONFIG").map(std::path::PathBuf::from);
    let config = gridwork_platform::Config::load(file.as_deref())?;
    gridwork_platform::telemetry::init(&config.log.format);
    let host = config.http.listen.rsplit_once(':').map(|(h, _)| h.to_owned()).unwrap_or_default();
    let app = gridwork_assigner::build(config).await?;
    println!("gridwork-assigner listening on http://{host}:{}", app.port());
    app.run_until_stopped().await?;
    Ok(())
}
