//! Failpoints for crash tests: `GW_FAILPOINT=<name>` makes the process stop
//! dead at the named point (it writes `<name>.hit` into `GW_FAILPOINT_DIR`,
//! then hangs, waiting for the test to SIGKILL it). Unset, a failpoint costs
//! one environment lookup at start-up. Not a `GRIDWORK_…` variable, so it
//! never mixes with configuration.

use std::sync::OnceLock;

static ACTIVE: OnceLock<Option<String>> = OnceLock::new();

/// Stops here if `name` is the armed failpoint.
pub async fn hit(name: &str) {
    let armed = ACTIVE.get_or_init(|| std::env::var("GW_FAILPOINT").ok());
    if armed.as_deref() != Some(name) {
        return;
    }
    tracing::warn!(failpoint = name, "failpoint hit: hanging until killed");
    if let Some(dir) = std::env::var_os("GW_FAILPOINT_DIR") {
        let _ = std::fs::write(std::path::Path::new(&dir).join(format!("{name}.hit")), b"hit");
    }
    std::future::pending::<()>().await;
}
