use super::*;
use crate::{ConsumerState, LogBus, TopicSpec};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Mutex;

fn fast() -> RetryPolicy {
    RetryPolicy {
        attempts: 3,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(2),
        max_blocked_backoff: Duration::from_millis(20),
        keepalive: Duration::from_millis(10),
        rejoin_after: Duration::from_millis(200),
        max_batch: 64,
    }
}

async fn bus(partitions: i32) -> Arc<LogBus> {
    let bus = LogBus::in_memory().await.unwrap();
    for t in ["in", "dlq"] {
        bus.create_topic(&TopicSpec::new(t, partitions)).await.unwrap();
    }
    Arc::new(bus)
}

async fn publish(bus: &LogBus, key: &str, body: &str) {
    bus.publish("in", OutMessage { key: key.into(), payload: body.into(), headers: vec![] }).await.unwrap();
}

/// A handler whose database is up or down at the flip of a switch; it
/// records what it handled, in order.
struct Db {
    up: AtomicBool,
    /// How the handler reports the outage.
    outage: fn(String) -> HandlerError,
    calls: AtomicU32,
    handled: Mutex<Vec<String>>,
    /// Batches it takes (1: none), handled all or nothing, as one
    /// transaction would; the sizes of the batches that succeeded.
    max_batch: usize,
    batches: Mutex<Vec<usize>>,
    batch_calls: AtomicU32,
}

impl Db {
    fn new(up: bool, outage: fn(String) -> HandlerError) -> Arc<Self> {
        Self::batching(up, outage, 1)
    }
    fn batching(up: bool, outage: fn(String) -> HandlerError, max_batch: usize) -> Arc<Self> {
        Arc::new(Db {
            up: AtomicBool::new(up),
            outage,
            calls: AtomicU32::new(0),
            handled: Mutex::new(vec![]),
            max_batch,
            batches: Mutex::new(vec![]),
            batch_calls: AtomicU32::new(0),
        })
    }
    fn batches(&self) -> Vec<usize> {
        self.batches.lock().unwrap().clone()
    }
    fn handled(&self) -> Vec<String> {
        self.handled.lock().unwrap().clone()
    }
}

#[async_trait]
impl Handler for Db {
    async fn handle(&self, msg: &Message) -> Result<(), HandlerError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let body = String::from_utf8_lossy(&msg.payload).into_owned();
        match body.as_str() {
            "poison" => return Err(HandlerError::Poison("bad bytes".into())),
            "always-fails" => return Err(HandlerError::Retryable("constraint violated".into())),
            _ => {}
        }
        if !self.up.load(Ordering::SeqCst) {
            return Err((self.outage)("pool timed out while waiting for an open connection".into()));
        }
        self.handled.lock().unwrap().push(body);
        Ok(())
    }

    async fn handle_batch(&self, msgs: &[Message]) -> Result<(), HandlerError> {
        assert!(msgs.len() <= self.max_batch, "a batch of {} beyond {}", msgs.len(), self.max_batch);
        self.batch_calls.fetch_add(1, Ordering::SeqCst);
        let mut done = Vec::new();
        for msg in msgs {
            let body = String::from_utf8_lossy(&msg.payload).into_owned();
            if ["poison", "always-fails"].contains(&body.as_str()) {
                return Err(HandlerError::Retryable(format!("{body} in the batch")));
            }
            if !self.up.load(Ordering::SeqCst) {
                return Err((self.outage)("pool timed out while waiting for an open connection".into()));
            }
            done.push(body);
        }
        self.handled.lock().unwrap().extend(done);
        self.batches.lock().unwrap().push(msgs.len());
        Ok(())
    }

    fn max_batch(&self) -> usize {
        self.max_batch
    }
}

#[async_trait]
impl Probe for Db {
    async fn check(&self) -> Result<(), String> {
        if self.up.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err("database: connection refused".into())
        }
    }
}

fn looped(bus: &Arc<LogBus>, db: &Arc<Db>, policy: RetryPolicy) -> (Consume, Arc<ConsumerHealth>) {
    let health = ConsumerHealth::new("g", vec!["in".into()]);
    let c = Consume {
        bus: bus.clone(),
        group: "g".into(),
        topics: vec!["in".into()],
        dead_letter_topic: "dlq".into(),
        policy,
        handler: db.clone(),
        probe: db.clone(),
        health: health.clone(),
    };
    (c, health)
}

async fn until(what: &str, mut f: impl FnMut() -> bool) {
    // Generous: the machines running the suite are shared and busy.
    for _ in 0..3000 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn dead_letters(bus: &LogBus) -> Vec<Message> {
    bus.read("dlq", 0, 0, 100).await.unwrap()
}

#[tokio::test]
async fn poison_and_exhausted_retries_on_a_healthy_dependency_go_to_dead_letter_and_the_partition_moves_on() {
    let bus = bus(1).await;
    for body in ["poison", "always-fails", "good"] {
        publish(&bus, "k", body).await;
    }
    let db = Db::new(true, HandlerError::Unavailable);
    let (c, health) = looped(&bus, &db, fast());
    let stop = CancellationToken::new();
    let task = tokio::spawn(c.run(stop.clone()));
    until("the good message", || db.handled() == ["good"]).await;
    let dead = dead_letters(&bus).await;
    assert_eq!(dead.len(), 2);
    assert_eq!(dead[0].payload, b"poison");
    assert_eq!(dead[0].header("gridwork.dlq.source.topic"), Some("in"));
    assert_eq!(dead[0].header("gridwork.dlq.source.offset"), Some("0"));
    assert_eq!(dead[0].header("gridwork.dlq.reason"), Some("bad bytes"));
    assert_eq!(dead[1].payload, b"always-fails");
    assert!(dead[1].header("gridwork.dlq.reason").unwrap().contains("after 3 attempts"));
    // 1 (poison) + 3 (bounded retries) + 1 (good)
    assert_eq!(db.calls.load(Ordering::SeqCst), 5);
    assert_eq!(health.snapshot().dead_letters, 2);
    stop.cancel();
    task.await.unwrap().unwrap();
    // Everything was committed: a new member of the group gets nothing.
    let mut again = bus.subscribe("g", &["in".into()]).await.unwrap();
    assert!(again.poll(Duration::from_millis(100)).await.unwrap().is_none());
}

/// The database is down far longer than the bounded retries last: nothing is
/// dead-lettered, the consumer says it is blocked and why, and once the
/// database is back everything is handled, in order per partition.
async fn an_outage_holds_messages_until_the_dependency_is_back(outage: fn(String) -> HandlerError, batch: usize) {
    let bus = bus(2).await;
    let db = Db::batching(false, outage, batch);
    for i in 0..20 {
        publish(&bus, &format!("k{}", i % 4), &format!("{}-{i}", i % 4)).await;
    }
    let (c, health) = looped(&bus, &db, fast());
    let stop = CancellationToken::new();
    let task = tokio::spawn(c.run(stop.clone()));
    until("blocked", || matches!(health.snapshot().state, ConsumerState::Blocked { .. })).await;
    // Many times the bounded retries' length.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(db.calls.load(Ordering::SeqCst) > 10, "it keeps trying");
    let snap = health.snapshot();
    match &snap.state {
        ConsumerState::Blocked { reason, .. } => assert!(reason.contains("pool timed out"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert!(health.stalled().is_some());
    assert!(snap.blocked_seconds >= 0.3, "{}", snap.blocked_seconds);
    assert!(db.handled().is_empty());
    assert!(dead_letters(&bus).await.is_empty(), "an outage is not poison");

    db.up.store(true, Ordering::SeqCst);
    until("every message", || db.handled().len() == 20).await;
    assert_eq!(health.snapshot().state, ConsumerState::Running);
    assert_eq!(health.stalled(), None);
    let handled = db.handled();
    for k in 0..4 {
        let of_key: Vec<&String> = handled.iter().filter(|b| b.starts_with(&format!("{k}-"))).collect();
        let expected: Vec<String> = (0..20).filter(|i| i % 4 == k).map(|i| format!("{k}-{i}")).collect();
        assert_eq!(of_key, expected.iter().collect::<Vec<_>>(), "per-key order holds");
    }
    assert!(dead_letters(&bus).await.is_empty());
    stop.cancel();
    task.await.unwrap().unwrap();
    let offsets = bus.group_offsets("g", &["in".into()]).await.unwrap();
    assert_eq!(offsets.iter().map(|p| p.lag()).sum::<i64>(), 0, "{offsets:?}");
}

#[tokio::test]
async fn an_unavailable_dependency_holds_messages_however_long_it_takes() {
    an_outage_holds_messages_until_the_dependency_is_back(HandlerError::Unavailable, 1).await;
}

/// The same with a handler that takes batches: the failed batch is handled
/// again one message at a time, held like any other.
#[tokio::test]
async fn an_outage_holds_a_batch_until_the_dependency_is_back() {
    an_outage_holds_messages_until_the_dependency_is_back(HandlerError::Unavailable, 8).await;
}

/// An error the handler could not classify, while the probe finds the
/// database down, is an outage too.
#[tokio::test]
async fn an_unclassified_failure_while_the_probe_finds_a_dependency_down_is_held_not_dead_lettered() {
    an_outage_holds_messages_until_the_dependency_is_back(HandlerError::Retryable, 1).await;
}

/// Messages already waiting go to the handler together, up to its batch
/// size, in order per partition; each partition's offset is committed after
/// the batch, and nothing is handled twice.
#[tokio::test]
async fn waiting_messages_are_handled_in_batches_in_order() {
    let bus = bus(2).await;
    for i in 0..60 {
        publish(&bus, &format!("k{}", i % 3), &format!("{}-{i}", i % 3)).await;
    }
    let db = Db::batching(true, HandlerError::Unavailable, 16);
    let (c, health) = looped(&bus, &db, fast());
    let stop = CancellationToken::new();
    let task = tokio::spawn(c.run(stop.clone()));
    until("every message", || db.handled().len() == 60).await;
    let handled = db.handled();
    for k in 0..3 {
        let of_key: Vec<&String> = handled.iter().filter(|b| b.starts_with(&format!("{k}-"))).collect();
        let expected: Vec<String> = (0..60).filter(|i| i % 3 == k).map(|i| format!("{k}-{i}")).collect();
        assert_eq!(of_key, expected.iter().collect::<Vec<_>>(), "per-key order holds");
    }
    let batches = db.batches();
    assert!(batches.iter().any(|&n| n > 1), "the waiting messages were batched: {batches:?}");
    let singles = db.calls.load(Ordering::SeqCst) as usize;
    assert_eq!(batches.iter().sum::<usize>() + singles, 60, "each message once: {batches:?} and {singles} single");
    assert_eq!(health.snapshot().processed, 60);
    assert_eq!(health.snapshot().units as usize, batches.len() + singles, "one unit of work per transaction");
    stop.cancel();
    task.await.unwrap().unwrap();
    assert_eq!(db.handled().len(), 60, "nothing handled twice");
    let offsets = bus.group_offsets("g", &["in".into()]).await.unwrap();
    assert_eq!(offsets.iter().map(|p| p.lag()).sum::<i64>(), 0, "{offsets:?}");
}

/// One bad message fails its batch: the batch is handled again message by
/// message, the bad one goes to the dead-letter topic alone and the others
/// are handled once each, in order.
#[tokio::test]
async fn a_poison_message_in_a_batch_is_dead_lettered_alone() {
    let bus = bus(1).await;
    let bodies = ["a", "b", "poison", "c", "always-fails", "d", "e"];
    for body in bodies {
        publish(&bus, "k", body).await;
    }
    let db = Db::batching(true, HandlerError::Unavailable, 16);
    let (c, health) = looped(&bus, &db, fast());
    let stop = CancellationToken::new();
    let task = tokio::spawn(c.run(stop.clone()));
    until("the good messages", || db.handled().len() == 5).await;
    assert_eq!(db.handled(), ["a", "b", "c", "d", "e"]);
    assert!(db.batch_calls.load(Ordering::SeqCst) >= 1, "a batch was tried first");
    let dead: Vec<Vec<u8>> = dead_letters(&bus).await.into_iter().map(|m| m.payload).collect();
    assert_eq!(dead, [b"poison".to_vec(), b"always-fails".to_vec()]);
    assert_eq!(health.snapshot().dead_letters, 2);
    assert_eq!(health.snapshot().processed, 5);
    stop.cancel();
    task.await.unwrap().unwrap();
    let mut again = bus.subscribe("g", &["in".into()]).await.unwrap();
    assert!(again.poll(Duration::from_millis(100)).await.unwrap().is_none(), "all committed");
}

#[tokio::test]
async fn shutdown_while_blocked_leaves_the_message_uncommitted() {
    let bus = bus(1).await;
    publish(&bus, "k", "a").await;
    publish(&bus, "k", "b").await;
    let db = Db::new(false, HandlerError::Unavailable);
    let (c, health) = looped(&bus, &db, fast());
    let stop = CancellationToken::new();
    let task = tokio::spawn(c.run(stop.clone()));
    until("blocked", || health.stalled().is_some()).await;
    stop.cancel();
    task.await.unwrap().unwrap();
    assert_eq!(health.snapshot().state, ConsumerState::Stopped);
    db.up.store(true, Ordering::SeqCst);
    let (c, _) = looped(&bus, &db, fast());
    let stop = CancellationToken::new();
    let task = tokio::spawn(c.run(stop.clone()));
    until("both, after a restart", || db.handled() == ["a", "b"]).await;
    stop.cancel();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_position_that_fell_off_retention_is_counted_as_lost_not_skipped_silently() {
    let bus = bus(1).await;
    for i in 0..10 {
        publish(&bus, "k", &i.to_string()).await;
    }
    let db = Db::new(true, HandlerError::Unavailable);
    // The group handled 0 and 1, then was away while retention deleted 0..6.
    let mut first = bus.subscribe("g", &["in".into()]).await.unwrap();
    for _ in 0..2 {
        let m = first.poll(Duration::from_secs(1)).await.unwrap().unwrap();
        first.commit(&m).await.unwrap();
    }
    first.close().await.unwrap();
    bus.discard_before("in", 0, 6).await.unwrap();
    let (c, health) = looped(&bus, &db, fast());
    let stop = CancellationToken::new();
    let task = tokio::spawn(c.run(stop.clone()));
    until("the rest", || db.handled().len() == 4).await;
    assert_eq!(db.handled(), ["6", "7", "8", "9"]);
    assert_eq!(health.snapshot().gaps.get(&("in".to_owned(), 0)), Some(&4), "offsets 2..6 were lost");
    stop.cancel();
    task.await.unwrap().unwrap();

    // A group that starts on a trimmed log with nothing committed lost nothing.
    let (mut c, health) = looped(&bus, &db, fast());
    c.group = "new".into();
    let stop = CancellationToken::new();
    let task = tokio::spawn(c.run(stop.clone()));
    until("a new group's messages", || db.handled().len() >= 8).await;
    assert_eq!(db.handled(), ["6", "7", "8", "9", "6", "7", "8", "9"], "{:?}", health.snapshot());
    assert!(health.snapshot().gaps.is_empty());
    stop.cancel();
    task.await.unwrap().unwrap();
}

/// A bus whose first member is dropped from its group at its first poll,
/// as Kafka drops a member that did not poll within `max.poll.interval.ms`.
struct Dropping {
    inner: Arc<LogBus>,
    subscriptions: AtomicU32,
}

struct DroppedMember(Box<dyn Consumer>);

#[async_trait]
impl Consumer for DroppedMember {
    async fn poll(&mut self, _: Duration) -> Result<Option<Message>, BusError> {
        Err(BusError::LeftGroup("max.poll.interval.ms exceeded".into()))
    }
    async fn commit(&mut self, msg: &Message) -> Result<(), BusError> {
        self.0.commit(msg).await
    }
    async fn close(self: Box<Self>) -> Result<(), BusError> {
        self.0.close().await
    }
    async fn pause_all(&mut self) -> Result<(), BusError> {
        Ok(())
    }
    async fn pause_partition(&mut self, _: &str, _: i32) -> Result<(), BusError> {
        Ok(())
    }
    async fn resume_all(&mut self) -> Result<(), BusError> {
        Ok(())
    }
    fn owns(&self, _: &str, _: i32) -> bool {
        false
    }
    fn assigned(&self) -> Vec<(String, i32)> {
        Vec::new()
    }
    async fn committed(&mut self, _: &str, _: i32) -> Result<Option<i64>, BusError> {
        Ok(None)
    }
}

#[async_trait]
impl EventBus for Dropping {
    async fn create_topic(&self, spec: &TopicSpec) -> Result<(), BusError> {
        self.inner.create_topic(spec).await
    }
    async fn publish(&self, topic: &str, msg: OutMessage) -> Result<crate::Delivery, BusError> {
        self.inner.publish(topic, msg).await
    }
    async fn subscribe(&self, group: &str, topics: &[String]) -> Result<Box<dyn Consumer>, BusError> {
        let c = self.inner.subscribe(group, topics).await?;
        if self.subscriptions.fetch_add(1, Ordering::SeqCst) == 0 {
            Ok(Box::new(DroppedMember(c)))
        } else {
            Ok(c)
        }
    }
    async fn check(&self) -> Result<(), BusError> {
        Ok(())
    }
    fn describe(&self) -> String {
        "dropping".into()
    }
    async fn watermarks(&self, topic: &str) -> Result<Vec<(i32, i64, i64)>, BusError> {
        self.inner.watermarks(topic).await
    }
    async fn read(&self, topic: &str, partition: i32, from: i64, max: usize) -> Result<Vec<Message>, BusError> {
        self.inner.read(topic, partition, from, max).await
    }
    async fn committed(&self, group: &str, topic: &str, partition: i32) -> Result<Option<i64>, BusError> {
        self.inner.committed(group, topic, partition).await
    }
}

#[tokio::test]
async fn a_member_dropped_from_its_group_rejoins_and_goes_on() {
    let log = bus(1).await;
    publish(&log, "k", "a").await;
    let bus = Arc::new(Dropping { inner: log.clone(), subscriptions: AtomicU32::new(0) });
    let db = Db::new(true, HandlerError::Unavailable);
    let health = ConsumerHealth::new("g", vec!["in".into()]);
    let c = Consume {
        bus: bus.clone(),
        group: "g".into(),
        topics: vec!["in".into()],
        dead_letter_topic: "dlq".into(),
        policy: fast(),
        handler: db.clone(),
        probe: db.clone(),
        health: health.clone(),
    };
    let stop = CancellationToken::new();
    let task = tokio::spawn(c.run(stop.clone()));
    until("the message, after rejoining", || db.handled() == ["a"]).await;
    assert_eq!(bus.subscriptions.load(Ordering::SeqCst), 2);
    assert_eq!(health.snapshot().rejoins, 1);
    assert_eq!(health.snapshot().state, ConsumerState::Running);
    stop.cancel();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn the_embedded_log_pauses_and_resumes_without_losing_or_reordering() {
    let bus = bus(1).await;
    for i in 0..5 {
        publish(&bus, "k", &i.to_string()).await;
    }
    let mut c = bus.subscribe("g", &["in".into()]).await.unwrap();
    let first = c.poll(Duration::from_secs(1)).await.unwrap().unwrap();
    assert_eq!(first.payload, b"0");
    c.pause_all().await.unwrap();
    assert!(c.poll(Duration::from_millis(50)).await.unwrap().is_none(), "paused: nothing more");
    c.resume_all().await.unwrap();
    let mut rest = Vec::new();
    while let Some(m) = c.poll(Duration::from_millis(50)).await.unwrap() {
        rest.push(String::from_utf8(m.payload).unwrap());
    }
    assert_eq!(rest, ["1", "2", "3", "4"]);
    assert!(c.owns("in", 0));
    assert!(!c.owns("in", 1));
}

/// A handler that hangs on the message "hangs" until released, as a handler
/// stuck on a call with no timeout would.
struct Hangs {
    release: tokio::sync::Notify,
    handled: Mutex<Vec<String>>,
}

#[async_trait]
impl Handler for Hangs {
    async fn handle(&self, msg: &Message) -> Result<(), HandlerError> {
        let body = String::from_utf8_lossy(&msg.payload).into_owned();
        if body == "hangs" {
            self.release.notified().await;
        }
        self.handled.lock().unwrap().push(body);
        Ok(())
    }
}

#[async_trait]
impl Probe for Hangs {
    async fn check(&self) -> Result<(), String> {
        Ok(())
    }
}

async fn measure(bus: &LogBus, health: &ConsumerHealth) {
    health.record_offsets(&bus.group_offsets("g", &["in".to_owned()]).await.unwrap());
}

#[tokio::test]
async fn a_partition_that_lags_and_does_not_move_makes_the_consumer_stalled_until_it_moves() {
    let bus = bus(1).await;
    for body in ["first", "hangs", "after"] {
        publish(&bus, "k", body).await;
    }
    let hangs = Arc::new(Hangs { release: tokio::sync::Notify::new(), handled: Mutex::new(vec![]) });
    let health = ConsumerHealth::new("g", vec!["in".into()]);
    health.set_stuck_after(Duration::from_millis(300));
    let c = Consume {
        bus: bus.clone(),
        group: "g".into(),
        topics: vec!["in".into()],
        dead_letter_topic: "dlq".into(),
        policy: fast(),
        handler: hangs.clone(),
        probe: hangs.clone(),
        health: health.clone(),
    };
    let stop = CancellationToken::new();
    let task = tokio::spawn(c.run(stop.clone()));
    until("the first message", || hangs.handled.lock().unwrap().len() == 1).await;
    measure(&bus, &health).await;
    assert_eq!(health.stalled(), None, "lagging for a moment is not a stall");
    for _ in 0..3000 {
        measure(&bus, &health).await;
        if health.stalled().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let why = health.stalled().unwrap_or_default();
    assert!(why.contains("in/0: 2 waiting"), "{why:?}");
    assert_eq!(health.snapshot().state, ConsumerState::Running, "the loop itself does not know it is stuck");

    hangs.release.notify_one();
    until("the rest", || hangs.handled.lock().unwrap().len() == 3).await;
    for _ in 0..3000 {
        measure(&bus, &health).await;
        if health.stalled().is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(health.stalled(), None);
    stop.cancel();
    task.await.unwrap().unwrap();
}
