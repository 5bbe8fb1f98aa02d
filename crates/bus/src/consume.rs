//! The consume loop every gridwork consumer runs (ADR 0023).
//!
//! - At-least-once: an offset is committed only after the handler's work is
//!   durable; handlers de-duplicate by event id.
//! - A failure is classified. **Unavailable** (a dependency is unreachable):
//!   the loop keeps the message, pauses its partitions, keeps polling so it
//!   stays in its group, and tries again with capped exponential backoff for
//!   as long as it takes; one log line when it blocks, one when it resumes.
//!   **Poison** (undecodable, unknown schema, invalid content) goes to the
//!   dead-letter topic at once. **Retryable** (anything else) is tried a
//!   bounded number of times; then the dependencies are probed: if one is
//!   down the message is held as unavailable, otherwise it is poison.
//! - Per-partition order holds: nothing of a partition is handled while an
//!   earlier message of it waits.
//! - Messages already waiting are handled as one batch when the handler
//!   takes batches ([`Handler::max_batch`]): one transaction for many
//!   messages, one offset commit per partition after it. A batch that fails
//!   is handled again one message at a time, so each failure is classified
//!   and dead-lettered on its own as above. A quiet consumer hands over
//!   batches of one: batching adds no waiting.
//! - A consumer whose polls keep failing, or that the broker dropped from
//!   its group, leaves and joins again.
//! - A committed offset that fell off the log's retention is a loss: logged
//!   as an error and counted, never skipped silently.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::health::ConsumerHealth;
use crate::{BusError, Consumer, EventBus, Message, OutMessage};

/// Why a handler did not finish a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandlerError {
    /// A dependency is unreachable (database or pool, broker, cache, object
    /// store; a serialisation failure or deadlock): the message waits until
    /// it is back, however long that takes.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Failed for a reason that may pass: retried a bounded number of
    /// times, then poison unless a dependency turns out to be down.
    #[error("retryable: {0}")]
    Retryable(String),
    /// Will never work (undecodable, unknown schema, invalid content):
    /// straight to the dead-letter topic.
    #[error("poison: {0}")]
    Poison(String),
}

/// Handles one message. Must be idempotent per event id: the same message
/// may arrive more than once.
#[async_trait]
pub trait Handler: Send + Sync {
    async fn handle(&self, msg: &Message) -> Result<(), HandlerError>;

    /// Handles `msgs` (in arrival order; per partition in offset order) as
    /// one unit of work. On `Err` the loop handles each of them again with
    /// [`Handler::handle`], so a batch that did part of its work before
    /// failing is safe only because handlers are idempotent; a handler
    /// that overrides this does all or nothing (one transaction). The
    /// default handles them one by one.
    async fn handle_batch(&self, msgs: &[Message]) -> Result<(), HandlerError> {
        for msg in msgs {
            self.handle(msg).await?;
        }
        Ok(())
    }

    /// The most messages the loop hands to [`Handler::handle_batch`] at
    /// once; 1 (the default) never batches.
    fn max_batch(&self) -> usize {
        1
    }
}

/// Checks the dependencies a handler needs; `Err` names what is down.
#[async_trait]
pub trait Probe: Send + Sync {
    async fn check(&self) -> Result<(), String>;
}

/// A probe for handlers without dependencies.
pub struct NoProbe;

#[async_trait]
impl Probe for NoProbe {
    async fn check(&self) -> Result<(), String> {
        Ok(())
    }
}

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Tries of a `Retryable` failure before the dependencies are probed.
    pub attempts: u32,
    pub initial_backoff: Duration,
    /// Longest wait between tries of a `Retryable` failure.
    pub max_backoff: Duration,
    /// Longest wait between tries while a dependency is unavailable.
    pub max_blocked_backoff: Duration,
    /// How often a waiting consumer polls, to keep its group membership.
    pub keepalive: Duration,
    /// A consumer whose polls fail this long leaves and rejoins its group.
    pub rejoin_after: Duration,
    /// The most waiting messages handed to the handler at once (also capped
    /// by [`Handler::max_batch`]); 1 never batches.
    pub max_batch: usize,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(2),
            max_blocked_backoff: Duration::from_secs(5),
            keepalive: Duration::from_millis(500),
            rejoin_after: Duration::from_secs(30),
            max_batch: 64,
        }
    }
}

/// A consumer group member's loop: what it reads, what handles it, where
/// poison goes, how dependencies are probed and where it reports.
pub struct Consume {
    pub bus: Arc<dyn EventBus>,
    pub group: String,
    pub topics: Vec<String>,
    pub dead_letter_topic: String,
    pub policy: RetryPolicy,
    pub handler: Arc<dyn Handler>,
    pub probe: Arc<dyn Probe>,
    pub health: Arc<ConsumerHealth>,
}

/// What became of a message.
enum Verdict {
    Done,
    Dead(String),
    /// Shutdown came while it waited: not committed, redelivered later.
    Abandoned,
}

struct Stopped;

/// The loop's per-member state: the consumer, messages that arrived while
/// it was paused (handled next, in arrival order, so per-partition order
/// holds), and the next offset expected per partition (gap detection).
struct Member {
    consumer: Box<dyn Consumer>,
    held: VecDeque<Message>,
    expected: HashMap<(String, i32), i64>,
    poll_failing_since: Option<Instant>,
    /// Revocations of members this loop closed.
    revoked_before: u64,
    /// When the partitions held were last reported to the health.
    owned_at: Option<Instant>,
}

impl Consume {
    /// Joins the group and runs until `shutdown` is cancelled; the message
    /// in hand is finished (and committed) before returning, unless it is
    /// waiting for a dependency, in which case it stays uncommitted.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), BusError> {
        let consumer = self.subscribe(&shutdown).await?;
        self.run_with(consumer, shutdown).await
    }

    /// Like [`Consume::run`], with a consumer already subscribed.
    pub async fn run_with(self, consumer: Box<dyn Consumer>, shutdown: CancellationToken) -> Result<(), BusError> {
        let mut m = Member {
            consumer,
            held: VecDeque::new(),
            expected: HashMap::new(),
            poll_failing_since: None,
            revoked_before: 0,
            owned_at: None,
        };
        self.health.running();
        let result = self.run_member(&mut m, &shutdown).await;
        self.health.stopped();
        let closed = m.consumer.close().await;
        result.and(closed)
    }

    async fn run_member(&self, m: &mut Member, shutdown: &CancellationToken) -> Result<(), BusError> {
        loop {
            // A message held (from a failed batch, or fetched while waiting)
            // is handled on its own.
            let fresh = m.held.is_empty();
            let mut msg = match m.held.pop_front() {
                // The partition went to another member meanwhile: it reads
                // the message again from the committed offset.
                Some(msg) if !m.consumer.owns(&msg.topic, msg.partition) => continue,
                Some(msg) => msg,
                None => {
                    if shutdown.is_cancelled() {
                        return Ok(());
                    }
                    // Never cancelled half-way (a poll may be inside a query
                    // of the embedded log): shutdown waits for it to time out.
                    let polled = m.consumer.poll(self.policy.keepalive).await;
                    self.health.set_revocations(m.revoked_before + m.consumer.revocations());
                    if m.owned_at.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                        self.health.set_owned(m.consumer.assigned());
                        m.owned_at = Some(Instant::now());
                    }
                    match polled {
                        Ok(p) => {
                            self.poll_recovered(m);
                            match p {
                                Some(msg) => msg,
                                None => continue,
                            }
                        }
                        Err(BusError::Closed) => return Ok(()),
                        Err(e) => {
                            if self.poll_failed(m, e, shutdown).await.is_err() {
                                return Ok(());
                            }
                            continue;
                        }
                    }
                }
            };
            self.check_gap(m, &msg).await;
            // Whatever else is already waiting joins it, up to the handler's
            // batch size.
            let max = self.handler.max_batch().min(self.policy.max_batch);
            if max > 1 && fresh {
                let mut batch = vec![msg];
                while batch.len() < max {
                    match m.consumer.poll(Duration::ZERO).await {
                        Ok(Some(next)) => {
                            self.check_gap(m, &next).await;
                            batch.push(next);
                        }
                        // An error shows again at the next poll.
                        Ok(None) | Err(_) => break,
                    }
                }
                if batch.len() > 1 {
                    self.handle_batch(m, batch, shutdown).await;
                    continue;
                }
                let Some(one) = batch.pop() else { continue };
                msg = one;
            }
            let span = tracing::info_span!("message", topic = %msg.topic, partition = msg.partition, offset = msg.offset, group = %self.group);
            let verdict = self.handle(m, &msg, shutdown).instrument(span.clone()).await;
            match verdict {
                Verdict::Abandoned => return Ok(()),
                Verdict::Done => self.health.processed(),
                Verdict::Dead(reason) => self.dead_letter(&msg, reason).instrument(span.clone()).await,
            }
            self.commit(m, &msg, shutdown).instrument(span).await;
        }
    }

    /// Hands `batch` to the handler at once; on success commits each
    /// partition's last message. On failure the messages go back, in order,
    /// to the front of the held queue, and the loop handles them one at a
    /// time (each failure classified on its own).
    async fn handle_batch(&self, m: &mut Member, batch: Vec<Message>, shutdown: &CancellationToken) {
        let span = tracing::info_span!("batch", size = batch.len(), group = %self.group);
        match self.handler.handle_batch(&batch).instrument(span.clone()).await {
            Ok(()) => {
                self.health.processed_many(batch.len() as u64);
                let mut last: Vec<&Message> = Vec::new();
                for msg in batch.iter().rev() {
                    if !last.iter().any(|l| l.topic == msg.topic && l.partition == msg.partition) {
                        last.push(msg);
                    }
                }
                for msg in last {
                    self.commit(m, msg, shutdown).instrument(span.clone()).await;
                }
            }
            Err(e) => {
                tracing::debug!(parent: &span, error = %e, "the batch failed; handling its messages one at a time");
                for msg in batch.into_iter().rev() {
                    m.held.push_front(msg);
                }
            }
        }
    }

    async fn subscribe(&self, shutdown: &CancellationToken) -> Result<Box<dyn Consumer>, BusError> {
        let mut wait = self.policy.initial_backoff;
        let mut logged = false;
        loop {
            match self.bus.subscribe(&self.group, &self.topics).await {
                Ok(c) => return Ok(c),
                Err(e) => {
                    if !logged {
                        tracing::warn!(group = %self.group, error = %e, "cannot join the consumer group; retrying");
                        logged = true;
                    }
                    tokio::select! {
                        _ = shutdown.cancelled() => return Err(BusError::Closed),
                        _ = tokio::time::sleep(wait) => {}
                    }
                    wait = (wait * 2).min(self.policy.max_blocked_backoff);
                }
            }
        }
    }

    fn poll_recovered(&self, m: &mut Member) {
        if m.poll_failing_since.take().is_some() {
            tracing::info!(group = %self.group, "polling works again");
        }
    }

    /// A failed poll: wait a little; after `rejoin_after` of failures, or at
    /// once when the broker dropped the member, leave and join again.
    async fn poll_failed(&self, m: &mut Member, e: BusError, shutdown: &CancellationToken) -> Result<(), Stopped> {
        let since = *m.poll_failing_since.get_or_insert_with(|| {
            tracing::warn!(group = %self.group, error = %e, "poll failed; retrying");
            Instant::now()
        });
        let dropped = matches!(e, BusError::LeftGroup(_));
        if dropped || since.elapsed() >= self.policy.rejoin_after {
            let reason = e.to_string();
            tracing::warn!(group = %self.group, %reason, "leaving and rejoining the consumer group");
            self.health.rejoining(&reason);
            let fresh = self.subscribe(shutdown).await.map_err(|_| Stopped)?;
            let old = std::mem::replace(&mut m.consumer, fresh);
            m.revoked_before += old.revocations();
            if tokio::time::timeout(Duration::from_secs(10), old.close()).await.is_err() {
                tracing::warn!(group = %self.group, "the old member did not close within 10 s");
            }
            // The new member reads from the committed offsets.
            m.held.clear();
            m.expected.clear();
            m.poll_failing_since = None;
            self.health.running();
            tracing::info!(group = %self.group, "rejoined the consumer group");
            return Ok(());
        }
        tokio::select! {
            _ = shutdown.cancelled() => Err(Stopped),
            _ = tokio::time::sleep(self.policy.max_backoff.min(Duration::from_secs(1))) => Ok(()),
        }
    }

    /// Counts messages that were never delivered: the first message of a
    /// partition (or one after a jump) lies beyond both the next offset this
    /// member expected and the group's committed offset.
    async fn check_gap(&self, m: &mut Member, msg: &Message) {
        let key = (msg.topic.clone(), msg.partition);
        let expected = m.expected.insert(key, msg.offset + 1);
        if expected.is_some_and(|e| msg.offset <= e) {
            return;
        }
        let committed = m.consumer.committed(&msg.topic, msg.partition).await.ok().flatten();
        let from = match (expected, committed) {
            (Some(e), Some(c)) => e.max(c),
            (Some(e), None) => e,
            (None, Some(c)) => c,
            (None, None) => return,
        };
        if msg.offset > from {
            let lost = msg.offset - from;
            tracing::error!(
                group = %self.group, topic = %msg.topic, partition = msg.partition, from, to = msg.offset, lost,
                "MESSAGES LOST: the group's position fell off the log's retention; offsets {from}..{} were never handled",
                msg.offset
            );
            self.health.gap(&msg.topic, msg.partition, u64::try_from(lost).unwrap_or_default());
        }
    }

    async fn handle(&self, m: &mut Member, msg: &Message, shutdown: &CancellationToken) -> Verdict {
        let mut attempt = 1;
        let mut backoff = self.policy.initial_backoff;
        let mut blocked_at: Option<Instant> = None;
        let verdict = loop {
            let reason = match self.handler.handle(msg).await {
                Ok(()) => break Verdict::Done,
                Err(HandlerError::Poison(reason)) => break Verdict::Dead(reason),
                Err(HandlerError::Unavailable(reason)) => reason,
                Err(HandlerError::Retryable(reason)) if attempt < self.policy.attempts => {
                    if blocked_at.is_none() {
                        tracing::warn!(attempt, %reason, "handler failed; retrying");
                    }
                    attempt += 1;
                    if self.wait(m, backoff, shutdown).await.is_err() {
                        break Verdict::Abandoned;
                    }
                    backoff = (backoff * 2).min(self.policy.max_backoff);
                    continue;
                }
                Err(HandlerError::Retryable(reason)) => match self.probe.check().await {
                    Ok(()) => break Verdict::Dead(format!("gave up after {attempt} attempts: {reason}")),
                    Err(down) => format!("{down} ({reason})"),
                },
            };
            // A dependency is unavailable: hold the message, pause, wait.
            if blocked_at.is_none() {
                blocked_at = Some(Instant::now());
                tracing::warn!(%reason, "a dependency is unavailable: partitions paused, message held until it is back");
                if let Err(e) = m.consumer.pause_all().await {
                    tracing::warn!(error = %e, "pausing the partitions failed");
                }
                backoff = self.policy.initial_backoff;
            }
            self.health.blocked(&reason);
            // A spell of bounded retries again once the dependency answers.
            attempt = 1;
            if self.wait(m, backoff, shutdown).await.is_err() {
                break Verdict::Abandoned;
            }
            backoff = (backoff * 2).min(self.policy.max_blocked_backoff);
        };
        if let Some(at) = blocked_at {
            if !matches!(verdict, Verdict::Abandoned) {
                tracing::info!(blocked_secs = at.elapsed().as_secs_f64(), "dependency back: partitions resumed");
                self.health.running();
            }
            if let Err(e) = m.consumer.resume_all().await {
                tracing::warn!(error = %e, "resuming the partitions failed");
            }
        }
        verdict
    }

    /// Waits `duration` while polling, so the member keeps its place in the
    /// group. A message that arrives meanwhile (fetched before the pause, or
    /// of a partition assigned since) is held and its partition paused.
    async fn wait(&self, m: &mut Member, duration: Duration, shutdown: &CancellationToken) -> Result<(), Stopped> {
        let deadline = Instant::now() + duration;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Ok(());
            }
            let slice = (deadline - now).min(self.policy.keepalive);
            if shutdown.is_cancelled() {
                return Err(Stopped);
            }
            let polled = m.consumer.poll(slice).await;
            match polled {
                Ok(Some(msg)) => {
                    if let Err(e) = m.consumer.pause_partition(&msg.topic, msg.partition).await {
                        tracing::debug!(error = %e, "pausing a partition failed");
                    }
                    m.held.push_back(msg);
                }
                Ok(None) => {}
                Err(BusError::Closed) => return Err(Stopped),
                Err(e) => {
                    tracing::debug!(error = %e, "poll failed while waiting");
                    tokio::select! {
                        _ = shutdown.cancelled() => return Err(Stopped),
                        _ = tokio::time::sleep(slice) => {}
                    }
                }
            }
        }
    }

    async fn dead_letter(&self, msg: &Message, reason: String) {
        tracing::error!(%reason, "message sent to the dead-letter topic");
        let mut headers: Vec<(String, String)> =
            msg.headers.iter().filter(|(k, _)| !k.starts_with("gridwork.dlq.")).cloned().collect();
        headers.extend([
            ("gridwork.dlq.source.topic".into(), msg.topic.clone()),
            ("gridwork.dlq.source.partition".into(), msg.partition.to_string()),
            ("gridwork.dlq.source.offset".into(), msg.offset.to_string()),
            ("gridwork.dlq.group".into(), self.group.clone()),
            ("gridwork.dlq.reason".into(), reason),
            ("gridwork.dlq.at".into(), chrono::Utc::now().to_rfc3339()),
        ]);
        let dead = OutMessage { key: msg.key.clone(), payload: msg.payload.clone(), headers };
        // Never drop a message: keep trying until the dead letter is durable.
        let mut wait = self.policy.initial_backoff;
        let mut logged = false;
        while let Err(e) = self.bus.publish(&self.dead_letter_topic, dead.clone()).await {
            if !logged {
                tracing::error!(error = %e, "dead-letter publish failed; retrying until it succeeds");
                logged = true;
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(self.policy.max_blocked_backoff);
        }
        self.health.dead_lettered();
    }

    async fn commit(&self, m: &mut Member, msg: &Message, shutdown: &CancellationToken) {
        let mut wait = self.policy.initial_backoff;
        let mut logged = false;
        loop {
            match m.consumer.commit(msg).await {
                Ok(()) => return,
                // Its new owner starts from the committed offset and finds
                // the work done (event ids are de-duplicated).
                Err(BusError::NotAssigned { .. }) | Err(BusError::Closed) => return,
                Err(e) => {
                    if !logged {
                        tracing::warn!(error = %e, "offset commit failed; retrying");
                        logged = true;
                    }
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(wait) => {}
                    }
                    wait = (wait * 2).min(self.policy.max_blocked_backoff);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
