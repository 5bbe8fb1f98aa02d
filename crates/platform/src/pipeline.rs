//! The pieces every service's pipeline is made of: the outbox relay, the
//! consumer loop with decoding, de-duplication and dead-lettering.

use std::sync::Arc;
use std::time::Duration;

use gridwork_bus::{Handler, HandlerError, Message, RetryPolicy};
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

/// Joins `group` on `topics` and runs `handler` until `shutdown`.
pub async fn spawn_consumer(
    ctx: &Context,
    group: &str,
    topics: Vec<String>,
    handler: Arc<dyn Handler>,
    shutdown: CancellationToken,
) -> anyhow::Result<JoinHandle<()>> {
    let group = format!("{}{group}", ctx.config.bus.topic_prefix);
    let consumer = ctx.bus.subscribe(&group, &topics).await?;
    let bus = ctx.bus.clone();
    let dlq = ctx.topics.dead_letter.clone();
    Ok(tokio::spawn(async move {
        if let Err(e) =
            gridwork_bus::consume(bus, consumer, dlq, group.clone(), RetryPolicy::default(), shutdown, handler).await
        {
            tracing::error!(%group, error = %e, "consumer stopped with an error");
        }
    }))
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
}

/// Reads a message's envelope; anything unreadable is poison.
pub fn decode(msg: &Message) -> Result<Event, HandlerError> {
    Event::decode(&msg.payload).map_err(|e| HandlerError::Poison(e.to_string()))
}

/// Database trouble is worth retrying.
pub fn retryable(e: DbErr) -> HandlerError {
    HandlerError::Retryable(e.to_string())
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
