//! The embedded event bus: a partitioned log in SQLite (a file for the
//! embedded default, memory for tests), with consumer groups coordinated
//! inside the process and committed offsets stored beside the log.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr, Statement, TransactionTrait, Value,
};
use tokio::sync::Notify;

use crate::{partition_for, BusError, Consumer, Delivery, EventBus, Message, OutMessage, TopicSpec};

const FETCH: i64 = 128;
/// A consumer looks at every partition at least this often, whatever this
/// process knows of their heads (another process may append to a file log).
const FULL_LOOK: Duration = Duration::from_millis(100);
const MAX_WRITE_RETRIES: u32 = 50;

#[derive(Default)]
struct Group {
    members: Vec<u64>,
    generation: u64,
}

struct Inner {
    db: DatabaseConnection,
    /// Serialises writes from this process.
    write: tokio::sync::Mutex<()>,
    notify: Notify,
    /// The last offset of each partition as far as this process knows (its
    /// own appends, and what it read when a consumer subscribed): a woken
    /// consumer queries only partitions that have grown past its position.
    /// Another process's appends are found by the full look every
    /// `FULL_LOOK`.
    heads: StdMutex<HashMap<(String, i32), i64>>,
    groups: StdMutex<HashMap<String, Group>>,
    topics: StdMutex<HashMap<String, i32>>,
    next_member: StdMutex<u64>,
    name: String,
}

/// The embedded bus. Cheap to clone.
#[derive(Clone)]
pub struct LogBus {
    inner: Arc<Inner>,
}

fn storage(e: DbErr) -> BusError {
    BusError::Storage(e.to_string())
}

fn stmt(sql: &str, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Sqlite, sql, values)
}

fn is_contention(e: &DbErr) -> bool {
    let s = e.to_string();
    s.contains("locked") || s.contains("busy") || s.contains("UNIQUE")
}

impl LogBus {
    /// A volatile in-process bus.
    pub async fn in_memory() -> Result<Self, BusError> {
        let mut opts = ConnectOptions::new("sqlite::memory:");
        opts.max_connections(1).min_connections(1).sqlx_logging(false);
        // The in-memory database lives as long as its one connection: never recycle it.
        let forever = Duration::from_secs(100 * 365 * 24 * 3600);
        opts.idle_timeout(forever).max_lifetime(forever);
        Self::with(opts, "memory://".into()).await
    }

    /// A durable in-process bus whose log lives in the SQLite file of `url`
    /// (`sqlite://PATH`); created if missing.
    pub async fn open(url: &str) -> Result<Self, BusError> {
        let path = url.trim_start_matches("sqlite://");
        let path = path.split('?').next().unwrap_or(path);
        if path.is_empty() {
            return Err(BusError::UnsupportedUrl(url.to_owned()));
        }
        let mut opts = ConnectOptions::new(format!("sqlite://{path}?mode=rwc"));
        opts.max_connections(4).sqlx_logging(false);
        Self::with(opts, url.to_owned()).await
    }

    async fn with(opts: ConnectOptions, name: String) -> Result<Self, BusError> {
        let db = Database::connect(opts).await.map_err(storage)?;
        for sql in [
            "PRAGMA journal_mode=WAL",
            "CREATE TABLE IF NOT EXISTS bus_topics (name TEXT PRIMARY KEY, partitions INTEGER NOT NULL)",
            "CREATE TABLE IF NOT EXISTS bus_log (topic TEXT NOT NULL, part INTEGER NOT NULL, off INTEGER NOT NULL, \
             msg_key BLOB NOT NULL, payload BLOB NOT NULL, headers TEXT NOT NULL, ts INTEGER NOT NULL, \
             PRIMARY KEY (topic, part, off))",
            "CREATE TABLE IF NOT EXISTS bus_offsets (grp TEXT NOT NULL, topic TEXT NOT NULL, part INTEGER NOT NULL, \
             next_off INTEGER NOT NULL, PRIMARY KEY (grp, topic, part))",
        ] {
            db.execute_unprepared(sql).await.map_err(storage)?;
        }
        Ok(LogBus {
            inner: Arc::new(Inner {
                db,
                write: tokio::sync::Mutex::new(()),
                notify: Notify::new(),
                heads: StdMutex::new(HashMap::new()),
                groups: StdMutex::new(HashMap::new()),
                topics: StdMutex::new(HashMap::new()),
                next_member: StdMutex::new(0),
                name,
            }),
        })
    }

    async fn partitions(&self, topic: &str) -> Result<i32, BusError> {
        if let Some(p) = self.inner.topics.lock().map_err(|_| BusError::Storage("poisoned".into()))?.get(topic) {
            return Ok(*p);
        }
        let row = self
            .inner
            .db
            .query_one(stmt("SELECT partitions FROM bus_topics WHERE name = ?", vec![topic.into()]))
            .await
            .map_err(storage)?
            .ok_or_else(|| BusError::UnknownTopic(topic.to_owned()))?;
        let p: i32 = row.try_get("", "partitions").map_err(storage)?;
        if let Ok(mut t) = self.inner.topics.lock() {
            t.insert(topic.to_owned(), p);
        }
        Ok(p)
    }

    /// Runs a write, retrying while another process holds the database.
    async fn write(&self, s: Statement) -> Result<Option<sea_orm::QueryResult>, BusError> {
        self.retrying(|| self.inner.db.query_one(s.clone())).await
    }

    /// Runs `attempt` under this process's write lock, again while another
    /// process holds the database.
    async fn retrying<T, F, Fut>(&self, mut attempt: F) -> Result<T, BusError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, DbErr>>,
    {
        let _guard = self.inner.write.lock().await;
        let mut tries = 0;
        loop {
            match attempt().await {
                Ok(r) => return Ok(r),
                Err(e) if is_contention(&e) && tries < MAX_WRITE_RETRIES => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(5 * u64::from(tries))).await;
                }
                Err(e) => return Err(storage(e)),
            }
        }
    }

    /// The statement appending `msg` to `topic`, and its partition.
    async fn append(&self, topic: &str, msg: OutMessage) -> Result<(i32, Statement), BusError> {
        let partitions = self.partitions(topic).await?;
        let part = partition_for(&msg.key, partitions);
        let headers = serde_json::to_string(&msg.headers).map_err(|e| BusError::Storage(e.to_string()))?;
        let append = stmt(
            "INSERT INTO bus_log (topic, part, off, msg_key, payload, headers, ts) \
             SELECT ?, ?, COALESCE(MAX(off) + 1, 0), ?, ?, ?, ? FROM bus_log WHERE topic = ? AND part = ? \
             RETURNING off",
            vec![
                topic.into(),
                part.into(),
                msg.key.into(),
                msg.payload.into(),
                headers.into(),
                Utc::now().timestamp_millis().into(),
                topic.into(),
                part.into(),
            ],
        );
        Ok((part, append))
    }

    /// Runs appends in one transaction, retrying it whole while another
    /// process holds the database; returns their offsets.
    async fn write_all(&self, appends: &[(i32, Statement)]) -> Result<Vec<i64>, BusError> {
        self.retrying(|| self.try_write_all(appends)).await
    }

    async fn try_write_all(&self, appends: &[(i32, Statement)]) -> Result<Vec<i64>, DbErr> {
        let txn = self.inner.db.begin().await?;
        let mut offsets = Vec::with_capacity(appends.len());
        for (_, append) in appends {
            let row = txn
                .query_one(append.clone())
                .await?
                .ok_or_else(|| DbErr::Custom("append returned no offset".into()))?;
            offsets.push(row.try_get::<i64>("", "off")?);
        }
        txn.commit().await?;
        Ok(offsets)
    }

    /// Deletes the messages of `topic`/`partition` before offset `before`,
    /// as a Kafka cluster's retention does (the embedded log otherwise keeps
    /// everything); tests use it to show that a consumer notices the loss.
    pub async fn discard_before(&self, topic: &str, partition: i32, before: i64) -> Result<(), BusError> {
        let _guard = self.inner.write.lock().await;
        self.inner
            .db
            .execute(stmt(
                "DELETE FROM bus_log WHERE topic = ? AND part = ? AND off < ?",
                vec![topic.into(), partition.into(), before.into()],
            ))
            .await
            .map_err(storage)?;
        Ok(())
    }

    async fn committed_offset(&self, group: &str, topic: &str, partition: i32) -> Result<Option<i64>, BusError> {
        let row = self
            .inner
            .db
            .query_one(stmt(
                "SELECT next_off FROM bus_offsets WHERE grp = ? AND topic = ? AND part = ?",
                vec![group.into(), topic.into(), partition.into()],
            ))
            .await
            .map_err(storage)?;
        row.map(|r| r.try_get::<i64>("", "next_off").map_err(storage)).transpose()
    }

    /// Notes appended offsets (after their commit, before the wake-up).
    fn grew<'a>(&self, appended: impl IntoIterator<Item = (&'a str, i32, i64)>) {
        if let Ok(mut heads) = self.inner.heads.lock() {
            for (topic, part, off) in appended {
                let head = heads.entry((topic.to_owned(), part)).or_insert(off);
                *head = (*head).max(off);
            }
        }
    }

    /// Whether a partition may hold messages at or after `from`: not when
    /// this process knows its last offset and it is before `from`.
    fn may_have(&self, topic: &str, part: i32, from: i64) -> bool {
        match self.inner.heads.lock() {
            Ok(heads) => heads.get(&(topic.to_owned(), part)).is_none_or(|&h| h >= from),
            Err(_) => true,
        }
    }

    /// Reads the last offset of partitions this process does not know yet.
    async fn learn_heads(&self, parts: &[(String, i32)]) -> Result<(), BusError> {
        for (topic, part) in parts {
            if self.inner.heads.lock().map(|h| h.contains_key(&(topic.clone(), *part))).unwrap_or(true) {
                continue;
            }
            let row = self
                .inner
                .db
                .query_one(stmt(
                    "SELECT COALESCE(MAX(off), -1) AS head FROM bus_log WHERE topic = ? AND part = ?",
                    vec![topic.into(), (*part).into()],
                ))
                .await
                .map_err(storage)?;
            let head: i64 = row.map(|r| r.try_get("", "head")).transpose().map_err(storage)?.unwrap_or(-1);
            self.grew([(topic.as_str(), *part, head)]);
        }
        Ok(())
    }

    async fn fetch_rows(&self, topic: &str, part: i32, from: i64, max: i64) -> Result<Vec<Message>, BusError> {
        let rows = self
            .inner
            .db
            .query_all(stmt(
                "SELECT off, msg_key, payload, headers, ts FROM bus_log \
                 WHERE topic = ? AND part = ? AND off >= ? ORDER BY off LIMIT ?",
                vec![topic.into(), part.into(), from.into(), max.into()],
            ))
            .await
            .map_err(storage)?;
        rows.into_iter()
            .map(|r| {
                let headers: String = r.try_get("", "headers").map_err(storage)?;
                let ts: i64 = r.try_get("", "ts").map_err(storage)?;
                Ok(Message {
                    topic: topic.to_owned(),
                    partition: part,
                    offset: r.try_get("", "off").map_err(storage)?,
                    key: r.try_get("", "msg_key").map_err(storage)?,
                    payload: r.try_get("", "payload").map_err(storage)?,
                    headers: serde_json::from_str(&headers).unwrap_or_default(),
                    timestamp: Utc.timestamp_millis_opt(ts).single().unwrap_or_else(Utc::now),
                })
            })
            .collect()
    }

    fn leave(&self, group: &str, member: u64) {
        if let Ok(mut groups) = self.inner.groups.lock() {
            if let Some(g) = groups.get_mut(group) {
                g.members.retain(|m| *m != member);
                g.generation += 1;
            }
        }
        self.inner.notify.notify_waiters();
    }
}

#[async_trait]
impl EventBus for LogBus {
    async fn create_topic(&self, spec: &TopicSpec) -> Result<(), BusError> {
        if spec.partitions < 1 || spec.name.is_empty() {
            return Err(BusError::InvalidTopic(format!("{:?} needs a name and at least one partition", spec.name)));
        }
        self.write(stmt(
            "INSERT INTO bus_topics (name, partitions) VALUES (?, ?) ON CONFLICT (name) DO NOTHING RETURNING name",
            vec![spec.name.clone().into(), spec.partitions.into()],
        ))
        .await?;
        Ok(())
    }

    async fn publish(&self, topic: &str, msg: OutMessage) -> Result<Delivery, BusError> {
        let (part, append) = self.append(topic, msg).await?;
        let row = self.write(append).await?.ok_or_else(|| BusError::Storage("append returned no offset".into()))?;
        let offset: i64 = row.try_get("", "off").map_err(storage)?;
        self.grew([(topic, part, offset)]);
        self.inner.notify.notify_waiters();
        Ok(Delivery { partition: part, offset })
    }

    /// The whole batch in one transaction of the log, and one wake-up for
    /// its consumers: all of it is published, or none (the first result is
    /// then the error).
    async fn publish_many(&self, msgs: Vec<(String, OutMessage)>) -> Vec<Result<Delivery, BusError>> {
        let mut appends = Vec::with_capacity(msgs.len());
        let mut topics = Vec::with_capacity(msgs.len());
        for (topic, msg) in msgs {
            match self.append(&topic, msg).await {
                Ok(a) => appends.push(a),
                Err(e) => return vec![Err(e)],
            }
            topics.push(topic);
        }
        match self.write_all(&appends).await {
            Ok(offsets) => {
                self.grew(topics.iter().zip(&appends).zip(&offsets).map(|((t, (p, _)), o)| (t.as_str(), *p, *o)));
                self.inner.notify.notify_waiters();
                appends
                    .iter()
                    .zip(offsets)
                    .map(|((partition, _), offset)| Ok(Delivery { partition: *partition, offset }))
                    .collect()
            }
            Err(e) => vec![Err(e)],
        }
    }

    async fn subscribe(&self, group: &str, topics: &[String]) -> Result<Box<dyn Consumer>, BusError> {
        let mut parts = Vec::new();
        for t in topics {
            let n = self.partitions(t).await?;
            parts.extend((0..n).map(|p| (t.clone(), p)));
        }
        self.learn_heads(&parts).await?;
        let member = {
            let mut next = self.inner.next_member.lock().map_err(|_| BusError::Storage("poisoned".into()))?;
            *next += 1;
            *next
        };
        {
            let mut groups = self.inner.groups.lock().map_err(|_| BusError::Storage("poisoned".into()))?;
            let g = groups.entry(group.to_owned()).or_default();
            g.members.push(member);
            g.generation += 1;
        }
        self.inner.notify.notify_waiters();
        Ok(Box::new(LogConsumer {
            bus: self.clone(),
            group: group.to_owned(),
            member,
            all: parts,
            generation: 0,
            assigned: Vec::new(),
            positions: HashMap::new(),
            buffer: VecDeque::new(),
            next_part: 0,
            closed: false,
            paused: HashSet::new(),
            last_full: None,
        }))
    }

    async fn check(&self) -> Result<(), BusError> {
        self.inner.db.execute_unprepared("SELECT 1").await.map_err(storage)?;
        Ok(())
    }

    fn describe(&self) -> String {
        format!("embedded log ({})", self.inner.name)
    }

    async fn watermarks(&self, topic: &str) -> Result<Vec<(i32, i64, i64)>, BusError> {
        let partitions = self.partitions(topic).await?;
        let rows = self
            .inner
            .db
            .query_all(stmt(
                "SELECT part, MIN(off) AS low, MAX(off) AS high FROM bus_log WHERE topic = ? GROUP BY part",
                vec![topic.into()],
            ))
            .await
            .map_err(storage)?;
        let mut marks: HashMap<i32, (i64, i64)> = HashMap::new();
        for r in rows {
            let part: i32 = r.try_get("", "part").map_err(storage)?;
            let low: i64 = r.try_get("", "low").map_err(storage)?;
            let high: i64 = r.try_get("", "high").map_err(storage)?;
            marks.insert(part, (low, high + 1));
        }
        Ok((0..partitions)
            .map(|p| {
                let (low, high) = marks.get(&p).copied().unwrap_or((0, 0));
                (p, low, high)
            })
            .collect())
    }

    async fn read(&self, topic: &str, partition: i32, from: i64, max: usize) -> Result<Vec<Message>, BusError> {
        self.partitions(topic).await?;
        self.fetch_rows(topic, partition, from, i64::try_from(max).unwrap_or(i64::MAX)).await
    }

    async fn committed(&self, group: &str, topic: &str, partition: i32) -> Result<Option<i64>, BusError> {
        self.committed_offset(group, topic, partition).await
    }
}

struct LogConsumer {
    bus: LogBus,
    group: String,
    member: u64,
    all: Vec<(String, i32)>,
    generation: u64,
    assigned: Vec<(String, i32)>,
    positions: HashMap<(String, i32), i64>,
    buffer: VecDeque<Message>,
    next_part: usize,
    closed: bool,
    /// Partitions not fetched until resumed.
    paused: HashSet<(String, i32)>,
    /// When every partition was last looked at regardless of known heads.
    last_full: Option<std::time::Instant>,
}

impl LogConsumer {
    /// Re-reads the assignment after the group changed: positions restart
    /// from the committed offsets, so nothing uncommitted is skipped.
    async fn rebalance_if_needed(&mut self) -> Result<(), BusError> {
        let (generation, index, count) = {
            let groups = self.bus.inner.groups.lock().map_err(|_| BusError::Storage("poisoned".into()))?;
            let g = groups.get(&self.group).ok_or(BusError::Closed)?;
            let index = g.members.iter().position(|m| *m == self.member).ok_or(BusError::Closed)?;
            (g.generation, index, g.members.len())
        };
        if generation == self.generation {
            return Ok(());
        }
        self.generation = generation;
        self.buffer.clear();
        self.positions.clear();
        // As with Kafka, a new assignment starts unpaused.
        self.paused.clear();
        self.assigned =
            self.all.iter().enumerate().filter(|(i, _)| i % count == index).map(|(_, tp)| tp.clone()).collect();
        for (topic, part) in &self.assigned {
            let next = self.bus.committed_offset(&self.group, topic, *part).await?.unwrap_or(0);
            self.positions.insert((topic.clone(), *part), next);
        }
        Ok(())
    }

    async fn fetch(&mut self) -> Result<(), BusError> {
        // Partitions this process knows have not grown are skipped, except
        // in a full look every FULL_LOOK (another process may append).
        let full = self.last_full.is_none_or(|t| t.elapsed() >= FULL_LOOK);
        if full {
            self.last_full = Some(std::time::Instant::now());
        }
        for _ in 0..self.assigned.len() {
            let i = self.next_part % self.assigned.len();
            self.next_part = self.next_part.wrapping_add(1);
            let (topic, part) = self.assigned[i].clone();
            if self.paused.contains(&(topic.clone(), part)) {
                continue;
            }
            let from = self.positions.get(&(topic.clone(), part)).copied().unwrap_or(0);
            if !full && !self.bus.may_have(&topic, part, from) {
                continue;
            }
            let rows = self.bus.fetch_rows(&topic, part, from, FETCH).await?;
            let Some(last) = rows.last() else { continue };
            self.positions.insert((topic.clone(), part), last.offset + 1);
            self.buffer.extend(rows);
            return Ok(());
        }
        Ok(())
    }

    /// Takes `tp`'s buffered messages back: the next fetch after a resume
    /// starts at the first of them.
    fn unbuffer(&mut self, tp: &(String, i32)) {
        let mut first = None;
        self.buffer.retain(|m| {
            let mine = m.topic == tp.0 && m.partition == tp.1;
            if mine && first.is_none() {
                first = Some(m.offset);
            }
            !mine
        });
        if let Some(off) = first {
            self.positions.insert(tp.clone(), off);
        }
    }
}

#[async_trait]
impl Consumer for LogConsumer {
    async fn poll(&mut self, timeout: Duration) -> Result<Option<Message>, BusError> {
        if self.closed {
            return Err(BusError::Closed);
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Register for wake-ups before looking, so no publish is missed.
            let inner = self.bus.inner.clone();
            let notified = inner.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            self.rebalance_if_needed().await?;
            if let Some(m) = self.buffer.pop_front() {
                return Ok(Some(m));
            }
            self.fetch().await?;
            if let Some(m) = self.buffer.pop_front() {
                return Ok(Some(m));
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            // Another process may append to a file log: look again soon.
            let wait = (deadline - now).min(Duration::from_millis(100));
            let _ = tokio::time::timeout(wait, notified).await;
        }
    }

    async fn commit(&mut self, msg: &Message) -> Result<(), BusError> {
        self.bus
            .write(stmt(
                "INSERT INTO bus_offsets (grp, topic, part, next_off) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (grp, topic, part) DO UPDATE SET next_off = MAX(next_off, excluded.next_off) \
                 RETURNING next_off",
                vec![
                    self.group.clone().into(),
                    msg.topic.clone().into(),
                    msg.partition.into(),
                    (msg.offset + 1).into(),
                ],
            ))
            .await?;
        Ok(())
    }

    async fn close(mut self: Box<Self>) -> Result<(), BusError> {
        self.closed = true;
        self.bus.leave(&self.group, self.member);
        Ok(())
    }

    async fn pause_all(&mut self) -> Result<(), BusError> {
        for tp in self.assigned.clone() {
            self.unbuffer(&tp);
            self.paused.insert(tp);
        }
        Ok(())
    }

    async fn pause_partition(&mut self, topic: &str, partition: i32) -> Result<(), BusError> {
        let tp = (topic.to_owned(), partition);
        self.unbuffer(&tp);
        self.paused.insert(tp);
        Ok(())
    }

    async fn resume_all(&mut self) -> Result<(), BusError> {
        self.paused.clear();
        Ok(())
    }

    fn owns(&self, topic: &str, partition: i32) -> bool {
        self.assigned.iter().any(|(t, p)| t == topic && *p == partition)
    }

    fn assigned(&self) -> Vec<(String, i32)> {
        self.assigned.clone()
    }

    async fn committed(&mut self, topic: &str, partition: i32) -> Result<Option<i64>, BusError> {
        self.bus.committed_offset(&self.group, topic, partition).await
    }
}

impl Drop for LogConsumer {
    fn drop(&mut self) {
        if !self.closed {
            self.bus.leave(&self.group, self.member);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(key: &str, body: &str) -> OutMessage {
        OutMessage { key: key.into(), payload: body.into(), headers: vec![("h".into(), "v".into())] }
    }

    async fn bus_with_topic(partitions: i32) -> LogBus {
        let bus = LogBus::in_memory().await.unwrap();
        bus.create_topic(&TopicSpec::new("t", partitions)).await.unwrap();
        bus
    }

    #[tokio::test]
    async fn a_batch_is_appended_whole_in_order_after_what_was_there() {
        let bus = bus_with_topic(2).await;
        bus.publish("t", msg("k0", "before")).await.unwrap();
        let batch: Vec<(String, OutMessage)> =
            (0..10).map(|i| ("t".to_owned(), msg(&format!("k{}", i % 3), &i.to_string()))).collect();
        let out = bus.publish_many(batch).await;
        assert_eq!(out.len(), 10);
        let deliveries: Vec<Delivery> = out.into_iter().map(|r| r.unwrap()).collect();
        for (i, d) in deliveries.iter().enumerate() {
            assert_eq!(d.partition, partition_for(format!("k{}", i % 3).as_bytes(), 2));
        }
        for p in 0..2 {
            let offsets: Vec<i64> = deliveries.iter().filter(|d| d.partition == p).map(|d| d.offset).collect();
            let read = bus.read("t", p, 0, 100).await.unwrap();
            let after: Vec<i64> = read.iter().filter(|m| m.payload != b"before").map(|m| m.offset).collect();
            assert_eq!(offsets, after, "partition {p}: the batch's offsets, in order, after what was there");
        }
        assert!(bus.publish_many(vec![("nope".into(), msg("k", "x"))]).await[0].is_err(), "an unknown topic fails");
    }

    #[tokio::test]
    async fn per_key_order_and_redelivery_of_uncommitted() {
        let bus = bus_with_topic(4).await;
        for i in 0..20 {
            bus.publish("t", msg(&format!("k{}", i % 3), &i.to_string())).await.unwrap();
        }
        let mut c = bus.subscribe("g", &["t".into()]).await.unwrap();
        let mut seen = Vec::new();
        while let Some(m) = c.poll(Duration::from_millis(50)).await.unwrap() {
            seen.push(m);
        }
        assert_eq!(seen.len(), 20);
        for k in 0..3 {
            let bodies: Vec<i32> = seen
                .iter()
                .filter(|m| m.key == format!("k{k}").as_bytes())
                .map(|m| String::from_utf8_lossy(&m.payload).parse().unwrap())
                .collect();
            let mut sorted = bodies.clone();
            sorted.sort();
            assert_eq!(bodies, sorted, "messages of one key keep their order");
        }
        assert_eq!(seen[0].header("h"), Some("v"));
        // Commit only the first half of what we saw; a new member sees the rest again.
        for m in &seen[..10] {
            c.commit(m).await.unwrap();
        }
        c.close().await.unwrap();
        let mut c2 = bus.subscribe("g", &["t".into()]).await.unwrap();
        let mut again = 0;
        while c2.poll(Duration::from_millis(50)).await.unwrap().is_some() {
            again += 1;
        }
        assert!(again >= 10, "uncommitted messages are delivered again, got {again}");
        // Another group reads everything independently.
        let mut other = bus.subscribe("other", &["t".into()]).await.unwrap();
        let mut n = 0;
        while other.poll(Duration::from_millis(50)).await.unwrap().is_some() {
            n += 1;
        }
        assert_eq!(n, 20);
    }

    #[tokio::test]
    async fn group_members_split_partitions() {
        let bus = bus_with_topic(4).await;
        for i in 0..40 {
            bus.publish("t", msg(&format!("key-{i}"), "x")).await.unwrap();
        }
        let mut a = bus.subscribe("g", &["t".into()]).await.unwrap();
        let mut b = bus.subscribe("g", &["t".into()]).await.unwrap();
        let mut pa = std::collections::HashSet::new();
        let mut pb = std::collections::HashSet::new();
        let mut total = 0;
        loop {
            let ma = a.poll(Duration::from_millis(20)).await.unwrap();
            let mb = b.poll(Duration::from_millis(20)).await.unwrap();
            if ma.is_none() && mb.is_none() {
                break;
            }
            if let Some(m) = ma {
                pa.insert(m.partition);
                a.commit(&m).await.unwrap();
                total += 1;
            }
            if let Some(m) = mb {
                pb.insert(m.partition);
                b.commit(&m).await.unwrap();
                total += 1;
            }
        }
        assert_eq!(total, 40);
        assert!(pa.is_disjoint(&pb), "a partition belongs to one member: {pa:?} {pb:?}");
    }

    #[tokio::test]
    async fn waiting_consumer_wakes_on_publish_and_durable_log_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("bus.db").display());
        let bus = LogBus::open(&url).await.unwrap();
        bus.create_topic(&TopicSpec::new("t", 2)).await.unwrap();
        let mut c = bus.subscribe("g", &["t".into()]).await.unwrap();
        let b2 = bus.clone();
        let h = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            b2.publish("t", msg("k", "hello")).await.unwrap();
        });
        let m = c.poll(Duration::from_secs(5)).await.unwrap().expect("woken by the publish");
        assert_eq!(m.payload, b"hello");
        h.await.unwrap();
        drop(c);
        drop(bus);
        let reopened = LogBus::open(&url).await.unwrap();
        let mut c = reopened.subscribe("g", &["t".into()]).await.unwrap();
        let m = c.poll(Duration::from_secs(1)).await.unwrap().expect("uncommitted message survives");
        assert_eq!(m.payload, b"hello");
        assert!(matches!(reopened.publish("nope", msg("k", "x")).await, Err(BusError::UnknownTopic(_))));
    }

    #[tokio::test]
    async fn bad_urls_are_clear_errors() {
        let bad = |r: Result<std::sync::Arc<dyn EventBus>, BusError>| matches!(r, Err(BusError::UnsupportedUrl(_)));
        assert!(bad(crate::connect("ftp://x", "t").await));
        assert!(bad(crate::connect("kafka://", "t").await));
        assert!(bad(crate::connect("kafka://h:1?colour=red", "t").await));
    }
}
