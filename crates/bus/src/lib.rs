//! gridwork's event bus: one trait with Kafka's semantics, backends chosen by
//! URL.
//!
//! - topics with partitions; a message goes to the partition of its key, so
//!   messages with one key keep their order;
//! - consumer groups share a topic's partitions among their members;
//! - delivery is at-least-once: a consumer commits a message only after its
//!   own work is durable, and a message that was not committed is delivered
//!   again (after a restart or a rebalance). Consumers de-duplicate by event
//!   id.
//!
//! Backends: `memory://` (in-process, volatile: for tests), `sqlite://PATH`
//! (in-process with a durable log in a SQLite file: the embedded default),
//! `kafka://HOST:PORT[,HOST:PORT…][?replication=N]` (rdkafka; cargo feature
//! `kafka`, on by default — without it a clear error says so).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

mod consume;
mod health;
#[cfg(feature = "kafka")]
pub mod kafka;
mod log;

pub use consume::{Consume, Handler, HandlerError, NoProbe, Probe, RetryPolicy};
pub use health::{ConsumerHealth, ConsumerState, HealthSnapshot};
pub use log::LogBus;

/// A message to publish.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OutMessage {
    pub key: Vec<u8>,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

/// A delivered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Vec<u8>,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, String)>,
    pub timestamp: DateTime<Utc>,
}

impl Message {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Where a published message landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub partition: i32,
    pub offset: i64,
}

/// A topic and its settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
    /// Keep only the latest message per key (Kafka `cleanup.policy=compact`).
    /// The embedded log keeps everything.
    pub compacted: bool,
    /// How long messages are kept; `None` is the cluster's default. The
    /// embedded log keeps everything.
    pub retention_ms: Option<i64>,
    /// Kafka `min.insync.replicas`: how many replicas must have a message
    /// before an `acks=all` publish succeeds; `None` is the cluster's
    /// default. Meaningless for the embedded log.
    pub min_insync_replicas: Option<i32>,
}

impl TopicSpec {
    pub fn new(name: impl Into<String>, partitions: i32) -> Self {
        TopicSpec { name: name.into(), partitions, compacted: false, retention_ms: None, min_insync_replicas: None }
    }
}

/// Where a consumer group stands on one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionOffsets {
    pub topic: String,
    pub partition: i32,
    /// The oldest offset still in the log.
    pub low: i64,
    /// The offset the next published message will get.
    pub high: i64,
    /// The group's committed offset (the next message it will read); `None`
    /// when the group never committed on this partition.
    pub committed: Option<i64>,
}

impl PartitionOffsets {
    /// Messages the group has yet to finish.
    pub fn lag(&self) -> i64 {
        (self.high - self.committed.unwrap_or(self.low).max(self.low)).max(0)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("the {backend} event bus is not available in this build: {hint}")]
    FeatureNotEnabled { backend: &'static str, hint: &'static str },
    #[error("unsupported event bus URL {0:?}: expected memory://, sqlite://PATH or kafka://HOST:PORT")]
    UnsupportedUrl(String),
    #[error("unknown topic {0:?}")]
    UnknownTopic(String),
    #[error("invalid topic settings: {0}")]
    InvalidTopic(String),
    #[error("event log storage: {0}")]
    Storage(String),
    #[error("the consumer was closed")]
    Closed,
    /// The partition now belongs to another member of the group (after a
    /// rebalance): the new owner reads it from the committed offset.
    #[error("{topic}/{partition} is no longer assigned to this consumer")]
    NotAssigned { topic: String, partition: i32 },
    /// The broker dropped this member from its group (for instance after
    /// `max.poll.interval.ms` without a poll); it must rejoin.
    #[error("left the consumer group: {0}")]
    LeftGroup(String),
}

/// The event bus.
#[async_trait]
pub trait EventBus: Send + Sync + 'static {
    /// Creates the topic if it does not exist (idempotent). An existing topic
    /// keeps its partitions.
    async fn create_topic(&self, spec: &TopicSpec) -> Result<(), BusError>;

    /// Publishes one message; returns once it is durably in the log.
    async fn publish(&self, topic: &str, msg: OutMessage) -> Result<Delivery, BusError>;

    /// Publishes `msgs` in order and returns each one's result, in order, up
    /// to the first failure at least (what follows a failure may be missing
    /// or have succeeded: a caller treats only the prefix before the first
    /// failure as published). A backend may keep several in flight at once
    /// (Kafka: one round trip for the batch instead of one per message)
    /// and keeps their order within each partition.
    async fn publish_many(&self, msgs: Vec<(String, OutMessage)>) -> Vec<Result<Delivery, BusError>> {
        let mut out = Vec::with_capacity(msgs.len());
        for (topic, msg) in msgs {
            let r = self.publish(&topic, msg).await;
            let failed = r.is_err();
            out.push(r);
            if failed {
                break;
            }
        }
        out
    }

    /// Joins consumer group `group` for `topics`.
    async fn subscribe(&self, group: &str, topics: &[String]) -> Result<Box<dyn Consumer>, BusError>;

    /// Whether the bus is reachable (for readiness).
    async fn check(&self) -> Result<(), BusError>;

    /// The partitions of `topic` with their oldest and next offsets.
    async fn watermarks(&self, topic: &str) -> Result<Vec<(i32, i64, i64)>, BusError>;

    /// Up to `max` messages of `topic`/`partition` from offset `from` on,
    /// read outside any consumer group (operators' tools: the dead-letter
    /// topic).
    async fn read(&self, topic: &str, partition: i32, from: i64, max: usize) -> Result<Vec<Message>, BusError>;

    /// Where consumer group `group` stands on every partition of `topics`:
    /// its committed offsets beside the log's watermarks (lag).
    async fn group_offsets(&self, group: &str, topics: &[String]) -> Result<Vec<PartitionOffsets>, BusError> {
        let mut out = Vec::new();
        for t in topics {
            for (partition, low, high) in self.watermarks(t).await? {
                out.push(PartitionOffsets {
                    topic: t.clone(),
                    partition,
                    low,
                    high,
                    committed: self.committed(group, t, partition).await?,
                });
            }
        }
        Ok(out)
    }

    /// The committed offset of `group` on `topic`/`partition`.
    async fn committed(&self, group: &str, topic: &str, partition: i32) -> Result<Option<i64>, BusError>;

    /// A short human-readable name of the backend.
    fn describe(&self) -> String;
}

/// A member of a consumer group.
#[async_trait]
pub trait Consumer: Send {
    /// The next message of the partitions assigned to this member, waiting
    /// at most `timeout`; `None` when nothing arrived.
    async fn poll(&mut self, timeout: Duration) -> Result<Option<Message>, BusError>;

    /// Records that `msg` and everything before it in its partition is done.
    /// Call only once the work it caused is durable.
    async fn commit(&mut self, msg: &Message) -> Result<(), BusError>;

    /// Leaves the group; its partitions go to the other members.
    async fn close(self: Box<Self>) -> Result<(), BusError>;

    /// Stops fetching from every partition assigned now, keeping the group
    /// membership (the consumer keeps polling; polls return only messages of
    /// partitions assigned later). Messages fetched but not yet returned are
    /// fetched again after [`Consumer::resume_all`].
    async fn pause_all(&mut self) -> Result<(), BusError>;

    /// Stops fetching from one partition (one whose message arrived while
    /// the consumer was meant to be paused).
    async fn pause_partition(&mut self, topic: &str, partition: i32) -> Result<(), BusError>;

    /// Fetches from every assigned partition again, each from the message
    /// after the last one returned by `poll`.
    async fn resume_all(&mut self) -> Result<(), BusError>;

    /// Whether `topic`/`partition` is assigned to this member now.
    fn owns(&self, topic: &str, partition: i32) -> bool;

    /// The partitions assigned to this member now.
    fn assigned(&self) -> Vec<(String, i32)>;

    /// The group's committed offset on `topic`/`partition`.
    async fn committed(&mut self, topic: &str, partition: i32) -> Result<Option<i64>, BusError>;

    /// How many times this member's partitions were taken away (rebalances
    /// and drops from the group), for tests and diagnostics.
    fn revocations(&self) -> u64 {
        0
    }
}

/// Connects to the bus named by `url`; `client_id` names this process to
/// the brokers.
pub async fn connect(url: &str, client_id: &str) -> Result<Arc<dyn EventBus>, BusError> {
    let scheme = url.split("://").next().unwrap_or_default();
    match scheme {
        "memory" => Ok(Arc::new(LogBus::in_memory().await?)),
        "sqlite" => Ok(Arc::new(LogBus::open(url).await?)),
        #[cfg(feature = "kafka")]
        "kafka" => Ok(Arc::new(kafka::KafkaBus::connect(kafka::KafkaSettings::from_url(url, client_id)?)?)),
        #[cfg(not(feature = "kafka"))]
        "kafka" => {
            let _ = client_id;
            Err(BusError::FeatureNotEnabled {
                backend: "kafka",
                hint:
                    "this binary was built without the `kafka` feature of gridwork-bus; rebuild with default features",
            })
        }
        _ => Err(BusError::UnsupportedUrl(url.to_owned())),
    }
}

/// The partition of `key` among `partitions` (FNV-1a, stable across
/// processes and versions). Empty keys go to partition 0.
pub fn partition_for(key: &[u8], partitions: i32) -> i32 {
    if key.is_empty() || partitions <= 1 {
        return 0;
    }
    let mut h: u32 = 0x811c_9dc5;
    for b in key {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    (h % partitions as u32) as i32
}
