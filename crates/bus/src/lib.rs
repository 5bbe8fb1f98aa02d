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
#[cfg(feature = "kafka")]
pub mod kafka;
mod log;

pub use consume::{consume, Handler, HandlerError, RetryPolicy};
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
}

impl TopicSpec {
    pub fn new(name: impl Into<String>, partitions: i32) -> Self {
        TopicSpec { name: name.into(), partitions, compacted: false, retention_ms: None }
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
}

/// The event bus.
#[async_trait]
pub trait EventBus: Send + Sync + 'static {
    /// Creates the topic if it does not exist (idempotent). An existing topic
    /// keeps its partitions.
    async fn create_topic(&self, spec: &TopicSpec) -> Result<(), BusError>;

    /// Publishes one message; returns once it is durably in the log.
    async fn publish(&self, topic: &str, msg: OutMessage) -> Result<Delivery, BusError>;

    /// Joins consumer group `group` for `topics`.
    async fn subscribe(&self, group: &str, topics: &[String]) -> Result<Box<dyn Consumer>, BusError>;

    /// Whether the bus is reachable (for readiness).
    async fn check(&self) -> Result<(), BusError>;

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
