//! Failpoints for crash tests: `GW_FAILPOINT=<name>` makes the process stop
//! dead at the named point (it writes `<name>.hit` into `GW_FAILPOINT_DIR`,
//! then hangs, waiting for the test to SIGKILL it). Unset, a failpoint costs
//! one environment lookup at start-up. Not a `GRIDWORK_…` variable, so it
//! never mixes with configuration.

use std::sync::OnceLock;

static ACTIVE: OnceLock<Option<String>> = OnceLock::new();

/// Whether `name` is the armed failpoint; if so, says it was hit.
fn armed(name: &str) -> bool {
    let armed = ACTIVE.get_or_init(|| std::env::var("GW_FAILPOINT").ok());
    if armed.as_deref() != Some(name) {
        return false;
    }
    tracing::warn!(failpoint = name, "failpoint hit: hanging until killed");
    if let Some(dir) = std::env::var_os("GW_FAILPOINT_DIR") {
        let _ = std::fs::write(std::path::Path::new(&dir).join(format!("{name}.hit")), b"hit");
    }
    true
}

/// Stops here if `name` is the armed failpoint.
pub async fn hit(name: &str) {
    if armed(name) {
        std::future::pending::<()>().await;
    }
}

/// [`hit`] for synchronous code: blocks the thread for good.
pub fn hit_blocking(name: &str) {
    if armed(name) {
        loop {
            std::thread::park();
        }
    }
}

static PAUSES: OnceLock<Vec<(String, u64)>> = OnceLock::new();

/// Race tests: `GW_PAUSEPOINT=<name>=<ms>[,<name>=<ms>…]` makes every pass
/// through a named point sleep that long, so a test can hold a race window
/// open instead of hoping to hit it. Unset, a pause point costs one
/// environment lookup at start-up.
pub async fn pause(name: &str) {
    let pauses = PAUSES.get_or_init(|| {
        std::env::var("GW_PAUSEPOINT")
            .unwrap_or_default()
            .split(',')
            .filter_map(|p| p.split_once('='))
            .filter_map(|(n, ms)| Some((n.trim().to_owned(), ms.trim().parse().ok()?)))
            .collect()
    });
    if let Some((_, ms)) = pauses.iter().find(|(n, _)| n == name) {
        tokio::time::sleep(std::time::Duration::from_millis(*ms)).await;
    }
}
