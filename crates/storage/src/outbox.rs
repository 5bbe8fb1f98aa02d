//! The transactional outbox: a state change and the events it causes are
//! committed in one transaction; the relay publishes them afterwards, in
//! order, and marks them sent only once the bus confirmed delivery.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use gridwork_bus::{EventBus, OutMessage};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::entity::outbox;

/// Adds a message to the outbox; call inside the state change's transaction.
pub async fn enqueue<C: ConnectionTrait>(
    db: &C,
    producer: &str,
    topic: &str,
    key: &[u8],
    payload: Vec<u8>,
) -> Result<(), DbErr> {
    outbox::Entity::insert(outbox::ActiveModel {
        producer: Set(producer.to_owned()),
        topic: Set(topic.to_owned()),
        msg_key: Set(key.to_vec()),
        payload: Set(payload),
        created_at: Set(Utc::now()),
        sent_at: Set(None),
        ..Default::default()
    })
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Publishes one producer's outbox rows to the bus, oldest first.
pub struct Relay {
    pub db: DatabaseConnection,
    pub bus: Arc<dyn EventBus>,
    pub producer: String,
    /// Poked after a commit that enqueued something, for low latency; the
    /// relay also looks every `interval`.
    pub wake: Arc<Notify>,
    pub interval: Duration,
}

const BATCH: u64 = 256;

impl Relay {
    /// Publishes everything pending now. Returns how many were sent.
    pub async fn drain(&self) -> Result<usize, RelayError> {
        let mut sent = 0;
        loop {
            let rows = outbox::Entity::find()
                .filter(outbox::Column::Producer.eq(self.producer.as_str()))
                .filter(outbox::Column::SentAt.is_null())
                .order_by_asc(outbox::Column::Id)
                .limit(BATCH)
                .all(&self.db)
                .await?;
            if rows.is_empty() {
                return Ok(sent);
            }
            let n = rows.len();
            for row in rows {
                // Strictly in order: a failure stops the batch so nothing
                // overtakes an unsent row.
                self.bus
                    .publish(&row.topic, OutMessage { key: row.msg_key, payload: row.payload, headers: vec![] })
                    .await
                    .map_err(|e| RelayError::Bus(e.to_string()))?;
                outbox::Entity::update_many()
                    .col_expr(outbox::Column::SentAt, sea_orm::sea_query::Expr::value(Utc::now()))
                    .filter(outbox::Column::Id.eq(row.id))
                    .exec(&self.db)
                    .await?;
                sent += 1;
            }
            if (n as u64) < BATCH {
                return Ok(sent);
            }
        }
    }

    /// Runs until `shutdown`, then drains once more so nothing committed
    /// stays behind.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            if let Err(e) = self.drain().await {
                tracing::warn!(producer = %self.producer, error = %e, "outbox relay: publish failed; will retry");
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.wake.notified() => {},
                _ = tokio::time::sleep(self.interval) => {},
            }
        }
        if let Err(e) = self.drain().await {
            tracing::warn!(producer = %self.producer, error = %e, "outbox relay: final drain failed; rows stay pending");
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("database: {0}")]
    Db(#[from] DbErr),
    #[error("bus: {0}")]
    Bus(String),
}
