//! The Kafka backend (rdkafka): an idempotent producer with `acks=all`,
//! consumer groups with `enable.auto.offset.store=false` (offsets are stored
//! only when the application commits a message, after its own work is
//! durable, and committed by librdkafka in the background, on rebalance and
//! on close), topics created with partitions, replication, retention and
//! compaction from configuration.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use crate::{BusError, Consumer, Delivery, EventBus, Message, OutMessage, TopicSpec};

const ADMIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings of the Kafka backend, from the bus URL
/// (`kafka://host:port[,host:port…][?replication=3]`) and configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaSettings {
    pub brokers: String,
    pub replication: i32,
    pub client_id: String,
    /// Further librdkafka properties from the URL query (e.g.
    /// `security.protocol=ssl`, `debug=cgrp`), applied to every client.
    pub extra: Vec<(String, String)>,
}

impl KafkaSettings {
    pub fn from_url(url: &str, client_id: &str) -> Result<Self, BusError> {
        let rest = url.strip_prefix("kafka://").ok_or_else(|| BusError::UnsupportedUrl(url.to_owned()))?;
        let (brokers, query) = rest.split_once('?').unwrap_or((rest, ""));
        if brokers.is_empty() {
            return Err(BusError::UnsupportedUrl(url.to_owned()));
        }
        let mut replication = 1;
        let mut extra = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("replication", v)) => {
                    replication = v.parse().map_err(|_| BusError::UnsupportedUrl(format!("{url}: replication={v}")))?
                }
                Some((k, v)) if k.contains('.') || k == "debug" => extra.push((k.to_owned(), v.to_owned())),
                _ => return Err(BusError::UnsupportedUrl(format!("{url}: unknown parameter {pair:?}"))),
            }
        }
        Ok(KafkaSettings { brokers: brokers.to_owned(), replication, client_id: client_id.to_owned(), extra })
    }
}

impl KafkaSettings {
    fn client(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers).set("client.id", &self.client_id);
        for (k, v) in &self.extra {
            c.set(k, v);
        }
        c
    }
}

fn kerr(e: KafkaError) -> BusError {
    BusError::Storage(format!("kafka: {e}"))
}

pub struct KafkaBus {
    settings: KafkaSettings,
    producer: FutureProducer,
    admin: AdminClient<DefaultClientContext>,
}

impl KafkaBus {
    pub fn connect(settings: KafkaSettings) -> Result<Self, BusError> {
        let producer: FutureProducer = settings
            .client()
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("message.timeout.ms", "30000")
            .set("linger.ms", "2")
            // One record per produce batch, several batches in flight (the
            // relay hands over a batch at once, ADR 0035): tansu 0.6 counts
            // a batch of several records as one offset in its high
            // watermark, which the lag and the dead-letter tools read.
            .set("batch.num.messages", "1")
            .create()
            .map_err(kerr)?;
        let admin: AdminClient<DefaultClientContext> = settings.client().create().map_err(kerr)?;
        Ok(KafkaBus { settings, producer, admin })
    }
}

#[async_trait]
impl EventBus for KafkaBus {
    async fn create_topic(&self, spec: &TopicSpec) -> Result<(), BusError> {
        if spec.partitions < 1 || spec.name.is_empty() {
            return Err(BusError::InvalidTopic(format!("{:?} needs a name and at least one partition", spec.name)));
        }
        if let Some(min) = spec.min_insync_replicas {
            if min < 1 || min > self.settings.replication {
                return Err(BusError::InvalidTopic(format!(
                    "{}: min.insync.replicas={min} needs 1 ≤ it ≤ replication ({})",
                    spec.name, self.settings.replication
                )));
            }
        }
        let retention = spec.retention_ms.map(|r| r.to_string());
        let min_insync = spec.min_insync_replicas.map(|m| m.to_string());
        let mut topic = NewTopic::new(&spec.name, spec.partitions, TopicReplication::Fixed(self.settings.replication));
        if let Some(m) = &min_insync {
            topic = topic.set("min.insync.replicas", m);
        }
        if spec.compacted {
            topic = topic.set("cleanup.policy", "compact");
        }
        if let Some(r) = &retention {
            topic = topic.set("retention.ms", r);
        }
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(15)));
        let results = self.admin.create_topics([&topic], &opts).await.map_err(kerr)?;
        for r in results {
            match r {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((name, code)) => return Err(BusError::InvalidTopic(format!("creating {name}: {code}"))),
            }
        }
        Ok(())
    }

    async fn publish(&self, topic: &str, msg: OutMessage) -> Result<Delivery, BusError> {
        let mut headers = OwnedHeaders::new();
        for (k, v) in &msg.headers {
            headers = headers.insert(Header { key: k, value: Some(v.as_bytes()) });
        }
        let record = FutureRecord::to(topic).key(&msg.key).payload(&msg.payload).headers(headers);
        // Resolves only when the broker acknowledged (acks=all) or delivery failed.
        match self.producer.send(record, Duration::from_secs(30)).await {
            Ok(d) => Ok(Delivery { partition: d.partition, offset: d.offset }),
            Err((e, _)) => Err(kerr(e)),
        }
    }

    /// Every message enqueued before any is awaited: the idempotent
    /// producer keeps them in order per partition and sends them in a few
    /// requests; the results are awaited together.
    async fn publish_many(&self, msgs: Vec<(String, OutMessage)>) -> Vec<Result<Delivery, BusError>> {
        // join_all polls its futures in order, so each is enqueued in the
        // producer in the batch's order on the first poll.
        futures::future::join_all(msgs.into_iter().map(|(topic, msg)| async move { self.publish(&topic, msg).await }))
            .await
    }

    async fn subscribe(&self, group: &str, topics: &[String]) -> Result<Box<dyn Consumer>, BusError> {
        let revocations = Arc::new(AtomicU64::new(0));
        let mut config = self.settings.client();
        config
            .set("group.id", group)
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "1000")
            .set("enable.auto.offset.store", "false")
            // A committed offset that fell off retention restarts at the
            // oldest message; the consume loop sees the jump, logs it as a
            // loss and counts it (never silent).
            .set("auto.offset.reset", "earliest")
            // A member that died is dropped from the group after this long…
            .set("session.timeout.ms", "6000")
            // …and a rebalance waits at most this long for members to rejoin
            // (handlers finish a message well within it).
            .set("max.poll.interval.ms", "20000");
        // fetch.wait.max.ms stays librdkafka's 500 ms: tansu 0.6 sleeps out
        // part of it even with data waiting (~250 ms a hop), and a lower
        // wait (10 ms) cuts report → queue from 857 to 55 ms p50, but once
        // in two runs a second replica joining the group then waited over
        // 15 s for its partitions (ADR 0035); a deployment may set it in
        // the bus URL's query.
        // The URL's properties win over these defaults.
        for (k, v) in &self.settings.extra {
            config.set(k, v);
        }
        let consumer: StreamConsumer<DrainOnRevoke> =
            config.create_with_context(DrainOnRevoke { revocations: revocations.clone() }).map_err(kerr)?;
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer.subscribe(&names).map_err(kerr)?;
        Ok(Box::new(KafkaConsumer { consumer: Arc::new(consumer), revocations }))
    }

    async fn check(&self) -> Result<(), BusError> {
        let producer = self.producer.clone();
        tokio::task::spawn_blocking(move || {
            producer.client().fetch_metadata(None, Duration::from_secs(5)).map(|_| ()).map_err(kerr)
        })
        .await
        .map_err(|e| BusError::Storage(e.to_string()))?
    }

    fn describe(&self) -> String {
        format!("kafka ({})", self.settings.brokers)
    }

    async fn watermarks(&self, topic: &str) -> Result<Vec<(i32, i64, i64)>, BusError> {
        let reader = self.reader(None)?;
        let topic = topic.to_owned();
        blocking(move || {
            let meta = reader.fetch_metadata(Some(&topic), ADMIN_TIMEOUT).map_err(kerr)?;
            let t = meta
                .topics()
                .iter()
                .find(|t| t.name() == topic)
                .filter(|t| t.error().is_none() && !t.partitions().is_empty())
                .ok_or_else(|| BusError::UnknownTopic(topic.clone()))?;
            let mut out = Vec::new();
            for p in t.partitions() {
                let (low, high) = reader.fetch_watermarks(&topic, p.id(), ADMIN_TIMEOUT).map_err(kerr)?;
                out.push((p.id(), low, high));
            }
            out.sort_unstable();
            Ok(out)
        })
        .await
    }

    async fn read(&self, topic: &str, partition: i32, from: i64, max: usize) -> Result<Vec<Message>, BusError> {
        let reader = self.reader(None)?;
        let topic = topic.to_owned();
        blocking(move || {
            let (_, high) = reader.fetch_watermarks(&topic, partition, ADMIN_TIMEOUT).map_err(kerr)?;
            let mut out = Vec::new();
            if from >= high || max == 0 {
                return Ok(out);
            }
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(&topic, partition, Offset::Offset(from)).map_err(kerr)?;
            reader.assign(&tpl).map_err(kerr)?;
            let deadline = std::time::Instant::now() + ADMIN_TIMEOUT;
            while out.len() < max && std::time::Instant::now() < deadline {
                match reader.poll(Duration::from_millis(200)) {
                    None => continue,
                    Some(Err(e)) => return Err(kerr(e)),
                    Some(Ok(m)) => {
                        let m = owned(&m);
                        let last = m.offset + 1 >= high;
                        out.push(m);
                        if last {
                            break;
                        }
                    }
                }
            }
            Ok(out)
        })
        .await
    }

    async fn committed(&self, group: &str, topic: &str, partition: i32) -> Result<Option<i64>, BusError> {
        let reader = self.reader(Some(group))?;
        let topic = topic.to_owned();
        blocking(move || {
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition(&topic, partition);
            let got = reader.committed_offsets(tpl, ADMIN_TIMEOUT).map_err(kerr)?;
            Ok(got.find_partition(&topic, partition).and_then(|p| match p.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            }))
        })
        .await
    }
}

impl KafkaBus {
    /// A consumer outside any group membership, for reading offsets and
    /// messages (`group` only names whose committed offsets to read).
    fn reader(&self, group: Option<&str>) -> Result<BaseConsumer, BusError> {
        let mut c = self.settings.client();
        c.set("group.id", group.unwrap_or("gridwork-reader"))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false");
        c.create().map_err(kerr)
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, BusError> + Send + 'static) -> Result<T, BusError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| BusError::Storage(e.to_string()))?
}

fn owned<M: rdkafka::message::Message>(m: &M) -> Message {
    let headers = m
        .headers()
        .map(|h| {
            h.iter()
                .map(|x| (x.key.to_owned(), String::from_utf8_lossy(x.value.unwrap_or_default()).into_owned()))
                .collect()
        })
        .unwrap_or_default();
    let ts = m.timestamp().to_millis().unwrap_or(0);
    Message {
        topic: m.topic().to_owned(),
        partition: m.partition(),
        offset: m.offset(),
        key: m.key().unwrap_or_default().to_vec(),
        payload: m.payload().unwrap_or_default().to_vec(),
        headers,
        timestamp: Utc.timestamp_millis_opt(ts).single().unwrap_or_else(Utc::now),
    }
}

/// Commits the offsets stored so far before partitions are taken away, so
/// the next owner starts right after the last message whose work is done.
///
/// It also clears the pause of partitions that come and go: librdkafka keeps
/// a partition's pause across a rebalance, so a partition paused while its
/// consumer waited out an outage, taken away, and given back after the
/// consumer had resumed what it then owned would stay paused for good (the
/// fault suite saw a partition stall after a PostgreSQL restart). Here, as in
/// the embedded log, a new assignment starts unpaused; a consumer still
/// waiting pauses a partition again when its first message arrives.
pub struct DrainOnRevoke {
    revocations: Arc<AtomicU64>,
}

impl ClientContext for DrainOnRevoke {}

impl ConsumerContext for DrainOnRevoke {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            if tpl.count() > 0 {
                self.revocations.fetch_add(1, Ordering::Relaxed);
            }
            if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
                // "No offset stored" is not a problem.
                tracing::debug!(error = %e, "commit on revoke");
            }
            Self::unpause(consumer, tpl);
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            Self::unpause(consumer, tpl);
        }
    }
}

impl DrainOnRevoke {
    fn unpause(consumer: &BaseConsumer<Self>, tpl: &TopicPartitionList) {
        if tpl.count() > 0 {
            if let Err(e) = consumer.resume(tpl) {
                tracing::warn!(error = %e, "could not clear the pause of partitions changing hands");
            }
        }
    }
}

struct KafkaConsumer {
    consumer: Arc<StreamConsumer<DrainOnRevoke>>,
    revocations: Arc<AtomicU64>,
}

impl KafkaConsumer {
    fn one(topic: &str, partition: i32) -> TopicPartitionList {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(topic, partition);
        tpl
    }
}

#[async_trait]
impl Consumer for KafkaConsumer {
    async fn poll(&mut self, timeout: Duration) -> Result<Option<Message>, BusError> {
        match tokio::time::timeout(timeout, self.consumer.recv()).await {
            Err(_) => Ok(None),
            Ok(Err(KafkaError::MessageConsumption(RDKafkaErrorCode::PollExceeded))) => {
                Err(BusError::LeftGroup("max.poll.interval.ms exceeded".into()))
            }
            Ok(Err(e)) => Err(kerr(e)),
            Ok(Ok(m)) => Ok(Some(owned(&m))),
        }
    }

    async fn commit(&mut self, msg: &Message) -> Result<(), BusError> {
        if !self.owns(&msg.topic, msg.partition) {
            return Err(BusError::NotAssigned { topic: msg.topic.clone(), partition: msg.partition });
        }
        // Stored offsets are the next message to read.
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&msg.topic, msg.partition, Offset::Offset(msg.offset + 1)).map_err(kerr)?;
        self.consumer.store_offsets(&tpl).map_err(kerr)
    }

    async fn close(self: Box<Self>) -> Result<(), BusError> {
        let consumer = self.consumer;
        tokio::task::spawn_blocking(move || {
            match consumer.commit_consumer_state(CommitMode::Sync) {
                Ok(()) => Ok(()),
                Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => Ok(()),
                Err(e) => Err(kerr(e)),
            }
            .map(|_| consumer.unsubscribe())
        })
        .await
        .map_err(|e| BusError::Storage(e.to_string()))?
    }

    async fn pause_all(&mut self) -> Result<(), BusError> {
        let tpl = self.consumer.assignment().map_err(kerr)?;
        if tpl.count() > 0 {
            self.consumer.pause(&tpl).map_err(kerr)?;
        }
        Ok(())
    }

    async fn pause_partition(&mut self, topic: &str, partition: i32) -> Result<(), BusError> {
        self.consumer.pause(&Self::one(topic, partition)).map_err(kerr)
    }

    async fn resume_all(&mut self) -> Result<(), BusError> {
        let tpl = self.consumer.assignment().map_err(kerr)?;
        if tpl.count() > 0 {
            self.consumer.resume(&tpl).map_err(kerr)?;
        }
        Ok(())
    }

    fn owns(&self, topic: &str, partition: i32) -> bool {
        self.consumer.assignment().map(|a| a.find_partition(topic, partition).is_some()).unwrap_or(false)
    }

    fn assigned(&self) -> Vec<(String, i32)> {
        self.consumer
            .assignment()
            .map(|a| a.elements().iter().map(|e| (e.topic().to_owned(), e.partition())).collect())
            .unwrap_or_default()
    }

    async fn committed(&mut self, topic: &str, partition: i32) -> Result<Option<i64>, BusError> {
        let consumer = self.consumer.clone();
        let tpl = Self::one(topic, partition);
        let (topic, partition) = (topic.to_owned(), partition);
        blocking(move || {
            let got = consumer.committed_offsets(tpl, ADMIN_TIMEOUT).map_err(kerr)?;
            Ok(got.find_partition(&topic, partition).and_then(|p| match p.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            }))
        })
        .await
    }

    fn revocations(&self) -> u64 {
        self.revocations.load(Ordering::Relaxed)
    }
}
