//! Live fan-out of changes to every replica: a change published on one
//! process reaches the subscribers of every process. In-process
//! (`memory://`) in the embedded default; Redis pub/sub when the cache is
//! Redis. Best effort by nature: a subscriber that is not connected misses
//! changes (the durable record is the event log); Redis down means each
//! replica hears only its own changes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

const BUFFER: usize = 1024;

/// Per-process hub of channels. A channel exists only while someone
/// listens: subscribing makes it, the last [`Subscription`] dropped removes
/// it, and delivering to a channel nobody listens to makes nothing. So the
/// map holds the codes being watched, not every code ever published to.
#[derive(Clone, Default)]
struct Hub {
    channels: Arc<Mutex<HashMap<String, broadcast::Sender<String>>>>,
}

impl Hub {
    fn subscribe(&self, channel: &str) -> Option<Subscription> {
        let mut map = self.channels.lock().ok()?;
        let rx = map.entry(channel.to_owned()).or_insert_with(|| broadcast::channel(BUFFER).0).subscribe();
        Some(Subscription { rx, channel: channel.to_owned(), hub: self.clone() })
    }

    fn deliver(&self, channel: &str, payload: String) {
        let tx = self.channels.lock().ok().and_then(|map| map.get(channel).cloned());
        if let Some(tx) = tx {
            // A listener may have just gone: fine.
            let _ = tx.send(payload);
        }
    }
}

/// A listener on one channel; dropping the last one removes the channel.
pub struct Subscription {
    rx: broadcast::Receiver<String>,
    channel: String,
    hub: Hub,
}

impl Subscription {
    /// The next payload; `Lagged` if this listener fell behind the buffer.
    pub async fn recv(&mut self) -> Result<String, broadcast::error::RecvError> {
        self.rx.recv().await
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        // Subscribing happens under the same lock, so nobody can join
        // between the count and the removal.
        if let Ok(mut map) = self.hub.channels.lock() {
            // This listener's receiver is still alive here: it is the last if it is the only one.
            if map.get(&self.channel).is_some_and(|tx| tx.receiver_count() <= 1) {
                map.remove(&self.channel);
            }
        }
    }
}

/// Publishes to and subscribes on named channels.
#[derive(Clone)]
pub struct Fanout {
    hub: Hub,
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    Local,
    #[cfg(feature = "redis")]
    Redis {
        client: redis::Client,
        prefix: String,
        conn: Arc<tokio::sync::Mutex<Option<redis::aio::MultiplexedConnection>>>,
    },
}

impl Fanout {
    /// In-process only.
    pub fn local() -> Self {
        Fanout { hub: Hub::default(), backend: Backend::Local }
    }

    /// Chosen like the cache: `redis://…` fans out through Redis pub/sub,
    /// anything else stays in the process. Starts the Redis listener, which
    /// reconnects until `shutdown`.
    pub fn connect(cache_url: &str, prefix: &str, shutdown: CancellationToken) -> Self {
        #[cfg(feature = "redis")]
        if cache_url.starts_with("redis://") || cache_url.starts_with("rediss://") {
            if let Ok(client) = redis::Client::open(cache_url) {
                let f = Fanout {
                    hub: Hub::default(),
                    backend: Backend::Redis {
                        client: client.clone(),
                        prefix: format!("{prefix}fanout:"),
                        conn: Arc::new(tokio::sync::Mutex::new(None)),
                    },
                };
                tokio::spawn(listen(client, format!("{prefix}fanout:"), f.hub.clone(), shutdown));
                return f;
            }
        }
        let _ = (cache_url, prefix, shutdown);
        Fanout::local()
    }

    /// How many channels this process holds: those someone listens to.
    pub fn channel_count(&self) -> usize {
        self.hub.channels.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// Listens on `channel` until the subscription is dropped.
    pub fn subscribe(&self, channel: &str) -> Option<Subscription> {
        self.hub.subscribe(channel)
    }

    /// Publishes `payload` on `channel` to every replica (this one included).
    pub async fn publish(&self, channel: &str, payload: String) {
        match &self.backend {
            Backend::Local => self.hub.deliver(channel, payload),
            #[cfg(feature = "redis")]
            Backend::Redis { client, prefix, conn } => {
                use redis::AsyncCommands;
                let mut guard = conn.lock().await;
                if guard.is_none() {
                    let made = tokio::time::timeout(
                        std::time::Duration::from_secs(1),
                        client.get_multiplexed_async_connection(),
                    )
                    .await;
                    if let Ok(Ok(c)) = made {
                        *guard = Some(c);
                    }
                }
                let sent = match guard.as_mut() {
                    Some(c) => tokio::time::timeout(
                        std::time::Duration::from_millis(500),
                        c.publish::<_, _, i64>(format!("{prefix}{channel}"), &payload),
                    )
                    .await
                    .map(|r| r.is_ok())
                    .unwrap_or(false),
                    None => false,
                };
                if !sent {
                    *guard = None;
                    tracing::debug!(channel, "fan-out through Redis failed; delivering locally only");
                    self.hub.deliver(channel, payload);
                }
            }
        }
    }
}

#[cfg(feature = "redis")]
async fn listen(client: redis::Client, prefix: String, hub: Hub, shutdown: CancellationToken) {
    use futures::StreamExt;
    loop {
        if shutdown.is_cancelled() {
            return;
        }
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => {
                if pubsub.psubscribe(format!("{prefix}*")).await.is_ok() {
                    let mut messages = pubsub.on_message();
                    loop {
                        tokio::select! {
                            _ = shutdown.cancelled() => return,
                            m = messages.next() => match m {
                                Some(m) => {
                                    let channel = m.get_channel_name().strip_prefix(&prefix).unwrap_or_default().to_owned();
                                    if let Ok(payload) = m.get_payload::<String>() {
                                        hub.deliver(&channel, payload);
                                    }
                                }
                                None => break,
                            },
                        }
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "fan-out listener: Redis unavailable; retrying"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(std::time::Duration::from_secs(2)) => {}
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_channel_lives_as_long_as_its_listeners() {
        let f = Fanout::local();
        f.publish("queue:371002", "nobody listens".into()).await;
        assert_eq!(f.channel_count(), 0, "publishing to a code nobody listens to keeps nothing");
        let mut a = f.subscribe("queue:371002").unwrap();
        let b = f.subscribe("queue:371002").unwrap();
        let c = f.subscribe("queue:371002001").unwrap();
        assert_eq!(f.channel_count(), 2);
        f.publish("queue:371002", "x".into()).await;
        assert_eq!(a.recv().await.unwrap(), "x");
        drop(b);
        assert_eq!(f.channel_count(), 2, "one listener left");
        drop(a);
        assert_eq!(f.channel_count(), 1, "the last listener took its channel with it");
        drop(c);
        assert_eq!(f.channel_count(), 0);
        let mut again = f.subscribe("queue:371002").unwrap();
        f.publish("queue:371002", "y".into()).await;
        assert_eq!(again.recv().await.unwrap(), "y", "a channel made again works");
    }
}
