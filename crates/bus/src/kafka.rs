//! The Kafka backend (rdkafka): an idempotent producer with `acks=all`,
//! consumer groups with `enable.auto.offset.store=false` (offsets are stored
//! only when the application commits a message, after its own work is
//! durable, and committed by librdkafka in the background, on rebalance and
//! on close), topics created with partitions, replication, retention and
//! compaction from configuration.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers, Message as _, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use crate::{BusError, Consumer, Delivery, EventBus, Message, OutMessage, TopicSpec};

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
        let retention = spec.retention_ms.map(|r| r.to_string());
        let mut topic = NewTopic::new(&spec.name, spec.partitions, TopicReplication::Fixed(self.settings.replication));
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

    async fn subscribe(&self, group: &str, topics: &[String]) -> Result<Box<dyn Consumer>, BusError> {
        let consumer: StreamConsumer<DrainOnRevoke> = self
            .settings
            .client()
            .set("group.id", group)
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "1000")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            // A member that died is dropped from the group after this long…
            .set("session.timeout.ms", "6000")
            // …and a rebalance waits at most this long for members to rejoin
            // (handlers finish a message well within it).
            .set("max.poll.interval.ms", "20000")
            .create_with_context(DrainOnRevoke)
            .map_err(kerr)?;
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer.subscribe(&names).map_err(kerr)?;
        Ok(Box::new(KafkaConsumer { consumer }))
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
}

/// Commits the offsets stored so far before partitions are taken away, so
/// the next owner starts right after the last message whose work is done.
pub struct DrainOnRevoke;

impl ClientContext for DrainOnRevoke {}

impl ConsumerContext for DrainOnRevoke {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(_) = rebalance {
            if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
                // "No offset stored" is not a problem.
                tracing::debug!(error = %e, "commit on revoke");
            }
        }
    }
}

struct KafkaConsumer {
    consumer: StreamConsumer<DrainOnRevoke>,
}

#[async_trait]
impl Consumer for KafkaConsumer {
    async fn poll(&mut self, timeout: Duration) -> Result<Option<Message>, BusError> {
        match tokio::time::timeout(timeout, self.consumer.recv()).await {
            Err(_) => Ok(None),
            Ok(Err(e)) => Err(kerr(e)),
            Ok(Ok(m)) => {
                let headers = m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|x| {
                                (x.key.to_owned(), String::from_utf8_lossy(x.value.unwrap_or_default()).into_owned())
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let ts = m.timestamp().to_millis().unwrap_or(0);
                Ok(Some(Message {
                    topic: m.topic().to_owned(),
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key().unwrap_or_default().to_vec(),
                    payload: m.payload().unwrap_or_default().to_vec(),
                    headers,
                    timestamp: Utc.timestamp_millis_opt(ts).single().unwrap_or_else(Utc::now),
                }))
            }
        }
    }

    async fn commit(&mut self, msg: &Message) -> Result<(), BusError> {
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
}
