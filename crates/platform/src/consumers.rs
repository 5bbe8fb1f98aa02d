//! The consumers a process runs, as the rest of the process sees them:
//! readiness (a consumer blocked on a dependency or rejoining its group
//! makes the process not ready, with the reason), Prometheus metrics (state,
//! seconds blocked, dead letters, lost messages, lag) and a monitor that
//! measures each group's lag from the bus every few seconds.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use gridwork_bus::{ConsumerHealth, ConsumerState, EventBus, HealthSnapshot};
use prometheus::core::{Collector, Desc, Describer};
use prometheus::proto::MetricFamily;
use prometheus::{CounterVec, GaugeVec, IntCounterVec, IntGaugeVec, Opts};
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// How often the monitor measures lag.
const LAG_EVERY: Duration = Duration::from_secs(5);

/// The registry of a process's consumers. Cheap to clone.
#[derive(Clone, Default)]
pub struct Consumers {
    all: Arc<Mutex<Vec<Arc<ConsumerHealth>>>>,
}

impl Consumers {
    pub fn register(&self, health: Arc<ConsumerHealth>) {
        self.with(|all| all.push(health));
    }

    fn with<T>(&self, f: impl FnOnce(&mut Vec<Arc<ConsumerHealth>>) -> T) -> T {
        let mut g = match self.all.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut g)
    }

    pub fn list(&self) -> Vec<Arc<ConsumerHealth>> {
        self.with(|all| all.clone())
    }

    pub fn snapshots(&self) -> Vec<HealthSnapshot> {
        self.list().iter().map(|h| h.snapshot()).collect()
    }

    /// Each consumer that cannot make progress now, with why.
    pub fn stalled(&self) -> Vec<(String, String)> {
        self.list().iter().filter_map(|h| h.stalled().map(|why| (h.group.clone(), why))).collect()
    }

    /// Registers the metrics and starts the lag monitor (until `stop`).
    pub fn install(
        &self,
        metrics: &Metrics,
        bus: Arc<dyn EventBus>,
        stop: CancellationToken,
    ) -> Result<(), prometheus::Error> {
        metrics.registry.register(Box::new(ConsumerMetrics::new(self.clone())?))?;
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(LAG_EVERY) => {}
                }
                me.measure_lag(bus.as_ref()).await;
            }
        });
        Ok(())
    }

    /// Reads every group's committed offsets and the log's watermarks.
    pub async fn measure_lag(&self, bus: &dyn EventBus) {
        for h in self.list() {
            match bus.group_offsets(&h.group, &h.topics).await {
                Ok(parts) => h.record_offsets(&parts),
                Err(e) => tracing::debug!(group = %h.group, error = %e, "lag not measured"),
            }
        }
    }
}

/// The consumers' metrics, read from their health at every scrape.
struct ConsumerMetrics {
    consumers: Consumers,
    descs: Vec<Desc>,
}

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(name, help)
}

const STATE: (&str, &str) =
    ("consumer_state", "1 for the state a consumer is in: running, blocked (on a dependency), rejoining, stopped");
const BLOCKED: (&str, &str) =
    ("consumer_blocked_seconds_total", "Seconds a consumer spent holding a message while a dependency was down");
const PROCESSED: (&str, &str) = ("consumer_messages_total", "Messages a consumer finished");
const UNITS: (&str, &str) = (
    "consumer_transactions_total",
    "Units of work a consumer finished: a batch of waiting messages in one transaction, or a single message",
);
const DEAD: (&str, &str) = ("consumer_dead_letters_total", "Poison messages a consumer sent to the dead-letter topic");
const REJOINS: (&str, &str) = ("consumer_rejoins_total", "Times a consumer left and joined its group again");
const LOST: (&str, &str) =
    ("consumer_lost_messages_total", "Messages a consumer never saw: its position had fallen off the log's retention");
const LAG: (&str, &str) = ("consumer_lag_messages", "Messages published but not yet finished by the group");

impl ConsumerMetrics {
    fn new(consumers: Consumers) -> Result<Self, prometheus::Error> {
        let descs = [STATE, BLOCKED, PROCESSED, UNITS, DEAD, REJOINS, LOST, LAG]
            .iter()
            .map(|(n, h)| opts(n, h).describe())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ConsumerMetrics { consumers, descs })
    }

    fn families(&self) -> Result<Vec<MetricFamily>, prometheus::Error> {
        let state = IntGaugeVec::new(opts(STATE.0, STATE.1), &["group", "state"])?;
        let blocked = CounterVec::new(opts(BLOCKED.0, BLOCKED.1), &["group"])?;
        let processed = IntCounterVec::new(opts(PROCESSED.0, PROCESSED.1), &["group"])?;
        let units = IntCounterVec::new(opts(UNITS.0, UNITS.1), &["group"])?;
        let dead = IntCounterVec::new(opts(DEAD.0, DEAD.1), &["group"])?;
        let rejoins = IntCounterVec::new(opts(REJOINS.0, REJOINS.1), &["group"])?;
        let lost = IntCounterVec::new(opts(LOST.0, LOST.1), &["group", "topic", "partition"])?;
        let lag = GaugeVec::new(opts(LAG.0, LAG.1), &["group", "topic", "partition"])?;
        for s in self.consumers.snapshots() {
            let g = s.group.as_str();
            let now = match s.state {
                ConsumerState::Running => "running",
                ConsumerState::Blocked { .. } => "blocked",
                ConsumerState::Rejoining { .. } => "rejoining",
                ConsumerState::Stopped => "stopped",
            };
            for st in ["running", "blocked", "rejoining", "stopped"] {
                state.with_label_values(&[g, st]).set(i64::from(st == now));
            }
            blocked.with_label_values(&[g]).inc_by(s.blocked_seconds);
            processed.with_label_values(&[g]).inc_by(s.processed);
            units.with_label_values(&[g]).inc_by(s.units);
            dead.with_label_values(&[g]).inc_by(s.dead_letters);
            rejoins.with_label_values(&[g]).inc_by(s.rejoins);
            for ((t, p), n) in &s.gaps {
                lost.with_label_values(&[g, t, &p.to_string()]).inc_by(*n);
            }
            for ((t, p), n) in &s.lag {
                lag.with_label_values(&[g, t, &p.to_string()]).set(*n as f64);
            }
        }
        let mut out = Vec::new();
        out.extend(state.collect());
        out.extend(blocked.collect());
        out.extend(processed.collect());
        out.extend(units.collect());
        out.extend(dead.collect());
        out.extend(rejoins.collect());
        out.extend(lost.collect());
        out.extend(lag.collect());
        Ok(out)
    }
}

impl Collector for ConsumerMetrics {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.families().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "consumer metrics not collected");
            Vec::new()
        })
    }
}
