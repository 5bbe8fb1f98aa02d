//! The analytics service on its own. Configuration: `GRIDWORK_CONFIG` (a TOML
//! file) and `GRIDWORK_…` environment variables; see the README.

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    gridwork_platform::http::main("analytics", gridwork_analytics::build).await
}
