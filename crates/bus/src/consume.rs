//! The consume loop every gridwork consumer runs: at-least-once, offsets
//! committed only after the handler's work is durable, bounded retries with
//! backoff, poison messages to the dead-letter topic, and a clean stop.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{BusError, Consumer, EventBus, Message, OutMessage};

/// Why a handler did not finish a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandlerError {
    /// Might work later (database busy, dependency down): retried.
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
}

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { attempts: 5, initial_backoff: Duration::from_millis(50), max_backoff: Duration::from_secs(2) }
    }
}

/// Runs `handler` over `consumer` until `shutdown` is cancelled; the message
/// in hand is finished (and committed) before returning.
pub async fn consume(
    bus: Arc<dyn EventBus>,
    mut consumer: Box<dyn Consumer>,
    dead_letter_topic: String,
    group: String,
    policy: RetryPolicy,
    shutdown: CancellationToken,
    handler: Arc<dyn Handler>,
) -> Result<(), BusError> {
    loop {
        let polled = tokio::select! {
            _ = shutdown.cancelled() => break,
            m = consumer.poll(Duration::from_millis(500)) => m,
        };
        let msg = match polled {
            Ok(Some(m)) => m,
            Ok(None) => continue,
            Err(BusError::Closed) => break,
            Err(e) => {
                tracing::warn!(error = %e, "poll failed; retrying");
                tokio::time::sleep(policy.max_backoff).await;
                continue;
            }
        };
        let span = tracing::info_span!("message", topic = %msg.topic, partition = msg.partition, offset = msg.offset, group = %group);
        async {
            let mut backoff = policy.initial_backoff;
            let mut attempt = 1;
            let failure = loop {
                match handler.handle(&msg).await {
                    Ok(()) => break None,
                    Err(HandlerError::Poison(reason)) => break Some(reason),
                    Err(HandlerError::Retryable(reason)) if attempt >= policy.attempts => {
                        break Some(format!("gave up after {attempt} attempts: {reason}"))
                    }
                    Err(HandlerError::Retryable(reason)) => {
                        tracing::warn!(attempt, %reason, "handler failed; retrying");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(policy.max_backoff);
                        attempt += 1;
                    }
                }
            };
            if let Some(reason) = failure {
                tracing::error!(%reason, "message sent to the dead-letter topic");
                let dead = OutMessage {
                    key: msg.key.clone(),
                    payload: msg.payload.clone(),
                    headers: vec![
                        ("gridwork.dlq.source.topic".into(), msg.topic.clone()),
                        ("gridwork.dlq.source.partition".into(), msg.partition.to_string()),
                        ("gridwork.dlq.source.offset".into(), msg.offset.to_string()),
                        ("gridwork.dlq.group".into(), group.clone()),
                        ("gridwork.dlq.reason".into(), reason),
                    ],
                };
                // Never drop a message: keep trying until the dead letter is durable.
                let mut wait = policy.initial_backoff;
                while let Err(e) = bus.publish(&dead_letter_topic, dead.clone()).await {
                    tracing::error!(error = %e, "dead-letter publish failed; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(policy.max_backoff);
                }
            }
            let mut wait = policy.initial_backoff;
            while let Err(e) = consumer.commit(&msg).await {
                tracing::warn!(error = %e, "offset commit failed; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(policy.max_backoff);
            }
        }
        .instrument(span)
        .await;
    }
    consumer.close().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LogBus, TopicSpec};
    use std::sync::atomic::{AtomicU32, Ordering};

    struct Flaky {
        calls: AtomicU32,
    }

    #[async_trait]
    impl Handler for Flaky {
        async fn handle(&self, msg: &Message) -> Result<(), HandlerError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            match msg.payload.as_slice() {
                b"poison" => Err(HandlerError::Poison("bad bytes".into())),
                b"always-fails" => Err(HandlerError::Retryable("db down".into())),
                _ => Ok(()),
            }
        }
    }

    #[tokio::test]
    async fn poison_and_exhausted_retries_go_to_dead_letter_and_the_partition_moves_on() {
        let bus = LogBus::in_memory().await.unwrap();
        for t in ["in", "dlq"] {
            bus.create_topic(&TopicSpec::new(t, 1)).await.unwrap();
        }
        for body in ["poison", "always-fails", "good"] {
            bus.publish("in", OutMessage { key: b"k".to_vec(), payload: body.into(), headers: vec![] }).await.unwrap();
        }
        let bus: Arc<dyn EventBus> = Arc::new(bus);
        let consumer = bus.subscribe("g", &["in".into()]).await.unwrap();
        let handler = Arc::new(Flaky { calls: AtomicU32::new(0) });
        let stop = CancellationToken::new();
        let policy = RetryPolicy {
            attempts: 3,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(2),
        };
        let task = tokio::spawn(consume(
            bus.clone(),
            consumer,
            "dlq".into(),
            "g".into(),
            policy,
            stop.clone(),
            handler.clone(),
        ));
        let mut dlq = bus.subscribe("reader", &["dlq".into()]).await.unwrap();
        let first = dlq.poll(Duration::from_secs(5)).await.unwrap().unwrap();
        let second = dlq.poll(Duration::from_secs(5)).await.unwrap().unwrap();
        assert_eq!(first.payload, b"poison");
        assert_eq!(first.header("gridwork.dlq.source.topic"), Some("in"));
        assert_eq!(first.header("gridwork.dlq.source.offset"), Some("0"));
        assert_eq!(first.header("gridwork.dlq.reason"), Some("bad bytes"));
        assert_eq!(second.payload, b"always-fails");
        assert!(second.header("gridwork.dlq.reason").unwrap().contains("after 3 attempts"));
        // 1 (poison) + 3 (retries) + 1 (good)
        for _ in 0..100 {
            if handler.calls.load(Ordering::SeqCst) == 5 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(handler.calls.load(Ordering::SeqCst), 5);
        stop.cancel();
        task.await.unwrap().unwrap();
        // Everything was committed: a new member of the group gets nothing.
        let mut again = bus.subscribe("g", &["in".into()]).await.unwrap();
        assert!(again.poll(Duration::from_millis(100)).await.unwrap().is_none());
    }
}
