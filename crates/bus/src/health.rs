//! What a consumer tells the rest of its process: whether it is running,
//! blocked on a dependency (and why, since when), rejoining its group; how
//! long it has been blocked in all, what it dead-lettered, what it found
//! missing from the log, and its lag. Read by readiness and metrics.
//!
//! A consumer can also stall without knowing it (a partition that is never
//! fetched again, a handler that hangs): a partition this member holds
//! whose lag stays above zero while the group's committed offset stands
//! still for [`ConsumerHealth::set_stuck_after`] (60 s unless set) counts as
//! stalled too.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::PartitionOffsets;

/// The state of a consumer loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumerState {
    /// Reading and handling messages.
    Running,
    /// Holding a message whose handler waits for a dependency; its
    /// partitions are paused and it keeps its group membership.
    Blocked { reason: String, since: DateTime<Utc> },
    /// Its polls kept failing or the broker dropped it from the group: it
    /// is leaving and joining the group again.
    Rejoining { reason: String, since: DateTime<Utc> },
    /// The loop ended (shutdown).
    Stopped,
}

/// A consumer's health, shared between its loop and the process.
#[derive(Debug)]
pub struct ConsumerHealth {
    pub group: String,
    pub topics: Vec<String>,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    state: ConsumerState,
    blocked_at: Option<Instant>,
    blocked_before: Duration,
    processed: u64,
    units: u64,
    dead_letters: u64,
    rejoins: u64,
    revocations: u64,
    gaps: BTreeMap<(String, i32), u64>,
    lag: BTreeMap<(String, i32), i64>,
    /// Per partition: the committed offset last measured and since when the
    /// partition has had lag without that offset moving.
    progress: BTreeMap<(String, i32), (Option<i64>, Instant)>,
    /// The partitions this member holds, as last seen by its loop.
    owned: Vec<(String, i32)>,
    stuck_after: Duration,
}

/// How long a partition may lag with its committed offset standing still
/// before the member holding it counts as stalled.
pub const STUCK_AFTER: Duration = Duration::from_secs(60);

/// A copy of a consumer's health at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthSnapshot {
    pub group: String,
    pub state: ConsumerState,
    /// Seconds spent blocked on dependencies since start, the current spell
    /// included.
    pub blocked_seconds: f64,
    pub processed: u64,
    /// Units of work the handler finished: a batch of waiting messages or a
    /// single message (`processed / units` is the mean batch).
    pub units: u64,
    pub dead_letters: u64,
    pub rejoins: u64,
    /// Times the member's partitions were taken away (rebalances, drops).
    pub revocations: u64,
    /// Messages found missing per partition (the committed offset had
    /// fallen off the log's retention).
    pub gaps: BTreeMap<(String, i32), u64>,
    /// Messages not yet handled per partition, as last measured.
    pub lag: BTreeMap<(String, i32), i64>,
}

impl ConsumerHealth {
    pub fn new(group: impl Into<String>, topics: Vec<String>) -> Arc<Self> {
        Arc::new(ConsumerHealth {
            group: group.into(),
            topics,
            inner: Mutex::new(Inner {
                state: ConsumerState::Running,
                blocked_at: None,
                blocked_before: Duration::ZERO,
                processed: 0,
                units: 0,
                dead_letters: 0,
                rejoins: 0,
                revocations: 0,
                gaps: BTreeMap::new(),
                lag: BTreeMap::new(),
                progress: BTreeMap::new(),
                owned: Vec::new(),
                stuck_after: STUCK_AFTER,
            }),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let mut g = match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut g)
    }

    pub fn snapshot(&self) -> HealthSnapshot {
        self.with(|i| HealthSnapshot {
            group: self.group.clone(),
            state: i.state.clone(),
            blocked_seconds: (i.blocked_before + i.blocked_at.map(|t| t.elapsed()).unwrap_or_default()).as_secs_f64(),
            processed: i.processed,
            units: i.units,
            dead_letters: i.dead_letters,
            rejoins: i.rejoins,
            revocations: i.revocations,
            gaps: i.gaps.clone(),
            lag: i.lag.clone(),
        })
    }

    /// Why the consumer cannot make progress now, if it cannot: blocked on
    /// a dependency, rejoining its group, or holding a partition that lags
    /// and has not moved for the stuck-after time.
    pub fn stalled(&self) -> Option<String> {
        self.with(|i| match &i.state {
            ConsumerState::Blocked { reason, since } => Some(format!("blocked since {since}: {reason}")),
            ConsumerState::Rejoining { reason, since } => Some(format!("rejoining its group since {since}: {reason}")),
            ConsumerState::Stopped => None,
            ConsumerState::Running => {
                let stuck: Vec<String> = i
                    .owned
                    .iter()
                    .filter_map(|tp| {
                        let lag = *i.lag.get(tp)?;
                        let (_, since) = i.progress.get(tp)?;
                        let still = since.elapsed();
                        (lag > 0 && still >= i.stuck_after)
                            .then(|| format!("{}/{}: {lag} waiting, no progress for {} s", tp.0, tp.1, still.as_secs()))
                    })
                    .collect();
                (!stuck.is_empty()).then(|| format!("partitions not moving: {}", stuck.join(", ")))
            }
        })
    }

    /// How long a held partition may lag without progress before the
    /// consumer counts as stalled.
    pub fn set_stuck_after(&self, d: Duration) {
        self.with(|i| i.stuck_after = d)
    }

    /// Records the partitions this member holds now.
    pub fn set_owned(&self, mut owned: Vec<(String, i32)>) {
        owned.sort();
        self.with(|i| i.owned = owned)
    }

    pub(crate) fn blocked(&self, reason: &str) {
        self.with(|i| {
            if i.blocked_at.is_none() {
                i.blocked_at = Some(Instant::now());
            }
            let since = match &i.state {
                ConsumerState::Blocked { since, .. } => *since,
                _ => Utc::now(),
            };
            i.state = ConsumerState::Blocked { reason: reason.to_owned(), since };
        })
    }

    pub(crate) fn running(&self) {
        self.with(|i| {
            if let Some(t) = i.blocked_at.take() {
                i.blocked_before += t.elapsed();
            }
            i.state = ConsumerState::Running;
        })
    }

    pub(crate) fn rejoining(&self, reason: &str) {
        self.with(|i| {
            i.rejoins += 1;
            i.state = ConsumerState::Rejoining { reason: reason.to_owned(), since: Utc::now() };
        })
    }

    pub(crate) fn stopped(&self) {
        self.with(|i| {
            if let Some(t) = i.blocked_at.take() {
                i.blocked_before += t.elapsed();
            }
            i.state = ConsumerState::Stopped;
        })
    }

    pub(crate) fn set_revocations(&self, n: u64) {
        self.with(|i| i.revocations = n)
    }

    pub(crate) fn processed(&self) {
        self.processed_many(1)
    }

    /// A unit of work of `n` messages finished.
    pub(crate) fn processed_many(&self, n: u64) {
        self.with(|i| {
            i.processed += n;
            i.units += 1;
        })
    }

    pub(crate) fn dead_lettered(&self) {
        self.with(|i| i.dead_letters += 1)
    }

    pub(crate) fn gap(&self, topic: &str, partition: i32, lost: u64) {
        self.with(|i| *i.gaps.entry((topic.to_owned(), partition)).or_default() += lost)
    }

    /// Records where the group stands on each partition (measured by the
    /// process every few seconds from `EventBus::group_offsets`).
    pub fn record_offsets(&self, parts: &[PartitionOffsets]) {
        for p in parts {
            self.set_lag(&p.topic, p.partition, p.committed, p.lag());
        }
    }

    /// Records the group's lag and committed offset on one partition.
    pub fn set_lag(&self, topic: &str, partition: i32, committed: Option<i64>, lag: i64) {
        self.with(|i| {
            let tp = (topic.to_owned(), partition);
            let lag_before = i.lag.insert(tp.clone(), lag).unwrap_or(0);
            // The clock runs from the first measurement with lag after the
            // committed offset last moved (or the lag was last zero).
            let moved = match i.progress.get(&tp) {
                Some((before, _)) => *before != committed || lag == 0 || lag_before == 0,
                None => true,
            };
            if moved {
                i.progress.insert(tp, (committed, Instant::now()));
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocked_time_adds_up_across_spells() {
        let h = ConsumerHealth::new("g", vec![]);
        assert_eq!(h.stalled(), None);
        h.blocked("database: pool timed out");
        h.blocked("database: connection refused");
        let s = h.snapshot();
        assert!(matches!(&s.state, ConsumerState::Blocked { reason, .. } if reason == "database: connection refused"));
        assert!(h.stalled().is_some_and(|r| r.contains("connection refused")));
        std::thread::sleep(Duration::from_millis(20));
        h.running();
        let first = h.snapshot().blocked_seconds;
        assert!(first >= 0.02, "{first}");
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(h.snapshot().blocked_seconds, first, "not blocked: the total stands still");
        h.blocked("again");
        std::thread::sleep(Duration::from_millis(20));
        assert!(h.snapshot().blocked_seconds >= first + 0.02);
        h.gap("t", 1, 5);
        h.gap("t", 1, 2);
        assert_eq!(h.snapshot().gaps.get(&("t".to_owned(), 1)), Some(&7));
    }

    #[test]
    fn a_held_partition_that_lags_without_moving_is_a_stall() {
        let h = ConsumerHealth::new("g", vec!["t".into()]);
        h.set_stuck_after(Duration::from_millis(30));
        h.set_owned(vec![("t".into(), 0)]);
        h.set_lag("t", 0, Some(10), 5);
        h.set_lag("t", 1, Some(3), 7);
        assert_eq!(h.stalled(), None, "lagging, but not for long yet");
        std::thread::sleep(Duration::from_millis(40));
        h.set_lag("t", 0, Some(10), 6);
        h.set_lag("t", 1, Some(3), 7);
        let why = h.stalled().unwrap_or_default();
        assert!(why.contains("t/0: 6 waiting"), "{why}");
        assert!(!why.contains("t/1"), "another member holds t/1: {why}");
        h.set_lag("t", 0, Some(11), 6);
        assert_eq!(h.stalled(), None, "the committed offset moved");
        std::thread::sleep(Duration::from_millis(40));
        h.set_lag("t", 0, Some(11), 0);
        assert_eq!(h.stalled(), None, "no lag is no stall");
        std::thread::sleep(Duration::from_millis(40));
        h.set_lag("t", 0, Some(11), 2);
        assert_eq!(h.stalled(), None, "the clock starts when lag appears");
        h.blocked("database down");
        assert!(h.stalled().is_some_and(|w| w.contains("database down")));
    }
}
