//! `gridwork dlq list|show|replay` and `gridwork lag`: what an operator
//! needs after an incident — which messages were dead-lettered and why, put
//! them back on their source topic once the cause is fixed, and see that
//! every consumer group has caught up (ADR 0023).
//!
//! Replay publishes a dead letter's key, payload and headers to the topic it
//! came from; the dead letter stays where it is (a log is append-only).
//! Consumers de-duplicate by event id, so replaying twice, or replaying a
//! message that was handled meanwhile, changes nothing.

use std::sync::Arc;

use gridwork_bus::{EventBus, Message, OutMessage};
use gridwork_events::{Event, Topics};
use serde::Serialize;

/// Which dead letters a command acts on.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Only those that came from this topic (with or without the prefix).
    pub source: Option<String>,
    /// Only this partition of the dead-letter topic.
    pub partition: Option<i32>,
    /// Offsets of the dead-letter topic, inclusive.
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// Only these event ids.
    pub event_ids: Vec<String>,
    /// Event ids in this range, inclusive (UUIDv7 ids sort by time).
    pub event_from: Option<String>,
    pub event_to: Option<String>,
    /// At most this many.
    pub limit: usize,
}

/// One dead letter as an operator sees it.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    /// Where it is in the dead-letter topic.
    pub partition: i32,
    pub offset: i64,
    pub dead_at: String,
    pub source_topic: String,
    pub source_partition: Option<i32>,
    pub source_offset: Option<i64>,
    pub group: String,
    pub reason: String,
    /// From the envelope, when it decodes.
    pub event_id: Option<String>,
    pub schema: Option<String>,
    pub producer: Option<String>,
    pub key: String,
    pub bytes: usize,
    #[serde(skip)]
    pub message: Message,
}

impl DeadLetter {
    fn of(m: Message) -> Self {
        let event = Event::decode(&m.payload).ok();
        let h = |name: &str| m.header(name).unwrap_or_default().to_owned();
        DeadLetter {
            partition: m.partition,
            offset: m.offset,
            dead_at: m.header("gridwork.dlq.at").map(str::to_owned).unwrap_or_else(|| m.timestamp.to_rfc3339()),
            source_topic: h("gridwork.dlq.source.topic"),
            source_partition: m.header("gridwork.dlq.source.partition").and_then(|v| v.parse().ok()),
            source_offset: m.header("gridwork.dlq.source.offset").and_then(|v| v.parse().ok()),
            group: h("gridwork.dlq.group"),
            reason: h("gridwork.dlq.reason"),
            event_id: event.as_ref().map(|e| e.id.to_string()),
            schema: event.as_ref().map(|e| e.payload.schema().to_owned()),
            producer: event.as_ref().map(|e| e.producer.clone()),
            key: String::from_utf8_lossy(&m.key).into_owned(),
            bytes: m.payload.len(),
            message: m,
        }
    }

    fn selected(&self, s: &Selection, topics: &Topics) -> bool {
        if let Some(src) = &s.source {
            let prefixed = format!("{}{src}", topics.dead_letter.trim_end_matches("gridwork.dead-letter"));
            if self.source_topic != *src && self.source_topic != prefixed {
                return false;
            }
        }
        let id = self.event_id.as_deref().unwrap_or_default();
        if !s.event_ids.is_empty() && !s.event_ids.iter().any(|e| e == id) {
            return false;
        }
        if s.event_from.as_deref().is_some_and(|f| id < f) || s.event_to.as_deref().is_some_and(|t| id > t) {
            return false;
        }
        true
    }

    /// One line for `dlq list`.
    pub fn line(&self) -> String {
        format!(
            "{}:{}  {}  from {}[{}]@{}  group {}  {}  event {}  — {}",
            self.partition,
            self.offset,
            self.dead_at,
            self.source_topic,
            self.source_partition.map(|p| p.to_string()).unwrap_or_else(|| "?".into()),
            self.source_offset.map(|o| o.to_string()).unwrap_or_else(|| "?".into()),
            self.group,
            self.schema.as_deref().unwrap_or("(undecodable)"),
            self.event_id.as_deref().unwrap_or("-"),
            self.reason
        )
    }
}

/// The dead letters `selection` names, in partition and offset order.
pub async fn select(bus: &dyn EventBus, topics: &Topics, selection: &Selection) -> anyhow::Result<Vec<DeadLetter>> {
    let limit = if selection.limit == 0 { usize::MAX } else { selection.limit };
    let mut out = Vec::new();
    for (partition, low, high) in bus.watermarks(&topics.dead_letter).await? {
        if selection.partition.is_some_and(|p| p != partition) {
            continue;
        }
        let mut next = selection.from.unwrap_or(low).max(low);
        let end = selection.to.map(|t| (t + 1).min(high)).unwrap_or(high);
        while next < end && out.len() < limit {
            let batch = bus.read(&topics.dead_letter, partition, next, 500).await?;
            let Some(last) = batch.last().map(|m| m.offset) else { break };
            for m in batch.into_iter().filter(|m| m.offset < end) {
                let d = DeadLetter::of(m);
                if d.selected(selection, topics) && out.len() < limit {
                    out.push(d);
                }
            }
            next = last + 1;
        }
    }
    Ok(out)
}

/// What `dlq replay` did.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Replayed {
    pub replayed: usize,
    /// Dead letters whose source topic is unknown (no header): left alone.
    pub skipped: usize,
    pub dry_run: bool,
}

/// Puts each selected dead letter back on its source topic (unless
/// `dry_run`), with its key, payload and headers and a header naming the
/// dead letter it came from.
pub async fn replay(
    bus: &Arc<dyn EventBus>,
    topics: &Topics,
    selection: &Selection,
    dry_run: bool,
    mut each: impl FnMut(&DeadLetter),
) -> anyhow::Result<Replayed> {
    let mut done = Replayed { replayed: 0, skipped: 0, dry_run };
    for d in select(bus.as_ref(), topics, selection).await? {
        if d.source_topic.is_empty() || d.source_topic == topics.dead_letter {
            done.skipped += 1;
            continue;
        }
        each(&d);
        if !dry_run {
            let mut headers: Vec<(String, String)> =
                d.message.headers.iter().filter(|(k, _)| !k.starts_with("gridwork.dlq.")).cloned().collect();
            headers.push(("gridwork.dlq.replayed_from".into(), format!("{}:{}", d.partition, d.offset)));
            bus.publish(
                &d.source_topic,
                OutMessage { key: d.message.key.clone(), payload: d.message.payload.clone(), headers },
            )
            .await?;
        }
        done.replayed += 1;
    }
    Ok(done)
}

/// A consumer group's position on one partition.
#[derive(Debug, Clone, Serialize)]
pub struct GroupLag {
    pub group: String,
    pub topic: String,
    pub partition: i32,
    pub committed: Option<i64>,
    pub high: i64,
    pub lag: i64,
}

/// Every gridwork consumer group's lag on every partition it reads.
pub async fn lag(bus: &dyn EventBus, prefix: &str, topics: &Topics) -> anyhow::Result<Vec<GroupLag>> {
    let mut out = Vec::new();
    for (group, reads) in topics.consumer_groups() {
        let group = format!("{prefix}{group}");
        for p in bus.group_offsets(&group, &reads).await? {
            out.push(GroupLag {
                group: group.clone(),
                lag: p.lag(),
                topic: p.topic,
                partition: p.partition,
                committed: p.committed,
                high: p.high,
            });
        }
    }
    Ok(out)
}
