//! Logging and tracing set-up.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber once (`RUST_LOG` filters; default `info`).
/// Later calls are no-ops, so tests may call it freely.
pub fn init(format: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    let _ = if format == "json" { builder.json().try_init() } else { builder.try_init() };
}
