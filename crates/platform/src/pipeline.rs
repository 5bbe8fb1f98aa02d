//! The pieces every service's pipeline is made of: the outbox relay, the
//! consumer loop with decoding, de-duplication, waiting out outages and
//! dead-lettering poison (ADR 0023).

use std::sync::Arc;
use std::time::Duration;

use gridwork_bus::{Consume, ConsumerHealth, Handler, HandlerError, Message, Probe, RetryPolicy};
use gridwork_events::Event;
use gridwork_storage::outbox::{self, Relay};
use sea_orm::{ConnectionTrait, DbErr};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::context::Context;

/// Starts the outbox relay of `producer`.
pub fn spawn_relay(ctx: &Context, producer: &str, wake: Arc<Notify>, shutdown: CancellationToken) -> JoinHandle<()> {
    let relay = Relay {
        db: ctx.db.clone(),
        bus: ctx.bus.clone(),
        producer: producer.to_owned(),
        wake,
        interval: Duration::from_millis(500),
    };
    tokio::spawn(relay.run(shutdown))
}

/// Joins `group` on `topics` and runs `handler` until `shutdown`. The
/// consumer reports its state to the process (readiness, metrics).
pub async fn spawn_consumer(
    ctx: &Context,
    group: &str,
    topics: Vec<String>,
    handler: Arc<dyn Handler>,
    shutdown: CancellationToken,
) -> anyhow::Result<JoinHandle<()>> {
    let group = format!("{}{group}", ctx.config.bus.topic_prefix);
    let consumer = ctx.bus.subscribe(&group, &topics).await?;
    let health = ConsumerHealth::new(group.clone(), topics.clone());
    ctx.consumers.register(health.clone());
    let run = Consume {
        bus: ctx.bus.clone(),
        group: group.clone(),
        topics,
        dead_letter_topic: ctx.topics.dead_letter.clone(),
        policy: RetryPolicy { max_batch: ctx.config.bus.max_batch, ..RetryPolicy::default() },
        handler,
        probe: Arc::new(DatabaseProbe { db: ctx.db.clone() }),
        health,
    };
    Ok(tokio::spawn(async move {
        if let Err(e) = run.run_with(consumer, shutdown).await {
            tracing::error!(%group, error = %e, "consumer stopped with an error");
        }
    }))
}

/// Every handler's dependency: the database.
struct DatabaseProbe {
    db: sea_orm::DatabaseConnection,
}

#[async_trait::async_trait]
impl Probe for DatabaseProbe {
    async fn check(&self) -> Result<(), String> {
        self.db.ping().await.map_err(|e| format!("database: {e}"))
    }
}

/// One lane of a consumer (ordinary or emergency): the shared handler, with
/// a failpoint of the lane's own so tests can stall one lane and watch the
/// other flow.
pub struct Lane {
    pub inner: Arc<dyn Handler>,
    pub failpoint: &'static str,
}

#[async_trait::async_trait]
impl Handler for Lane {
    async fn handle(&self, msg: &gridwork_bus::Message) -> Result<(), HandlerError> {
        crate::failpoint::hit(self.failpoint).await;
        self.inner.handle(msg).await
    }

    async fn handle_batch(&self, msgs: &[gridwork_bus::Message]) -> Result<(), HandlerError> {
        crate::failpoint::hit(self.failpoint).await;
        self.inner.handle_batch(msgs).await
    }

    fn max_batch(&self) -> usize {
        self.inner.max_batch()
    }
}

/// Reads a message's envelope; anything unreadable is poison.
pub fn decode(msg: &Message) -> Result<Event, HandlerError> {
    Event::decode(&msg.payload).map_err(|e| HandlerError::Poison(e.to_string()))
}

/// A database error of a handler: an unreachable or overloaded database is
/// waited out (`Unavailable`); anything else is retried a bounded number of
/// times and then, if the database answers, dead-lettered (ADR 0023).
pub fn retryable(e: DbErr) -> HandlerError {
    if gridwork_storage::is_unavailable(&e) {
        HandlerError::Unavailable(format!("database: {e}"))
    } else {
        HandlerError::Retryable(e.to_string())
    }
}

/// A handler's error from a fallible helper: a database error anywhere in
/// its chain is classified like [`retryable`]; anything else is retried a
/// bounded number of times.
pub fn classify(e: anyhow::Error) -> HandlerError {
    for cause in e.chain() {
        if let Some(db) = cause.downcast_ref::<DbErr>() {
            if gridwork_storage::is_unavailable(db) {
                return HandlerError::Unavailable(format!("database: {e:#}"));
            }
        }
        if let Some(gridwork_storage::StorageError::Db(db)) = cause.downcast_ref::<gridwork_storage::StorageError>() {
            if gridwork_storage::is_unavailable(db) {
                return HandlerError::Unavailable(format!("database: {e:#}"));
            }
        }
    }
    HandlerError::Retryable(format!("{e:#}"))
}

/// Puts `event` into the outbox of `producer` for `topic` with `key`; call
/// inside the transaction of the state change it belongs to.
pub async fn emit<C: ConnectionTrait>(
    db: &C,
    producer: &str,
    topic: &str,
    key: &str,
    event: &Event,
) -> Result<(), DbErr> {
    outbox::enqueue(db, producer, topic, key.as_bytes(), event.encode()).await
}
