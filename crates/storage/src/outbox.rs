//! The transactional outbox: a state change and the events it causes are
//! committed in one transaction; the relay publishes them afterwards, in
//! order, and marks them sent only once the bus confirmed delivery.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use gridwork_bus::{EventBus, OutMessage};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, Statement, TransactionTrait,
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

/// One message for [`enqueue_many`]: topic, key, payload.
pub struct Pending<'a> {
    pub topic: &'a str,
    pub key: &'a [u8],
    pub payload: &'a [u8],
}

/// Adds several messages in one multi-row statement per
/// [`MAX_ROWS_PER_STATEMENT`] (in order: the relay publishes by id); call
/// inside the state change's transaction.
pub async fn enqueue_many<C: ConnectionTrait>(db: &C, producer: &str, items: &[Pending<'_>]) -> Result<(), DbErr> {
    let now = Utc::now();
    for chunk in items.chunks(MAX_ROWS_PER_STATEMENT) {
        let rows = chunk.iter().map(|m| outbox::ActiveModel {
            producer: Set(producer.to_owned()),
            topic: Set(m.topic.to_owned()),
            msg_key: Set(m.key.to_vec()),
            payload: Set(m.payload.to_vec()),
            created_at: Set(now),
            sent_at: Set(None),
            ..Default::default()
        });
        outbox::Entity::insert_many(rows).exec_without_returning(db).await?;
    }
    Ok(())
}

/// Rows per multi-row INSERT: well inside PostgreSQL's 65,535 and SQLite's
/// 32,766 bound parameters for the widest table written this way (reports,
/// 25 columns).
pub const MAX_ROWS_PER_STATEMENT: usize = 1000;

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

/// The advisory-lock key of a producer's relay (FNV-1a of its name).
fn lock_key(producer: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in format!("gridwork-outbox:{producer}").bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h as i64
}

impl Relay {
    /// Publishes everything pending now. Returns how many were sent.
    ///
    /// Replicas of a service share one outbox; only one relays at a time
    /// (on PostgreSQL a transaction-scoped advisory lock per producer), so
    /// rows are published once and in order. A replica that finds the lock
    /// taken publishes nothing this round. SQLite has one writer anyway.
    ///
    /// Each batch is its own transaction: what was published is marked sent
    /// at once, so a backlog shows its progress and a relay that stops
    /// half-way republishes one batch at most.
    pub async fn drain(&self) -> Result<usize, RelayError> {
        let mut sent = 0;
        loop {
            let (n, more) = self.drain_batch().await?;
            sent += n;
            if !more {
                return Ok(sent);
            }
        }
    }

    /// Publishes one batch of pending rows; says how many, and whether a
    /// full batch was taken (more may be pending).
    async fn drain_batch(&self) -> Result<(usize, bool), RelayError> {
        if self.db.get_database_backend() != DbBackend::Postgres {
            return self.drain_on(&self.db).await;
        }
        let txn = self.db.begin().await?;
        let row = txn
            .query_one(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_try_advisory_xact_lock($1) AS locked",
                [lock_key(&self.producer).into()],
            ))
            .await?;
        let locked = match row {
            Some(r) => r.try_get::<bool>("", "locked")?,
            None => false,
        };
        if !locked {
            txn.rollback().await?;
            return Ok((0, false));
        }
        let sent = self.drain_on(&txn).await;
        // Rows published before a failure stay marked; the rest stay pending.
        txn.commit().await?;
        sent
    }

    async fn drain_on<C: ConnectionTrait>(&self, db: &C) -> Result<(usize, bool), RelayError> {
        let rows = outbox::Entity::find()
            .filter(outbox::Column::Producer.eq(self.producer.as_str()))
            .filter(outbox::Column::SentAt.is_null())
            // The emergency lane's messages first; each topic keeps its
            // own order (per-key order is per topic anyway).
            .order_by_asc(sea_orm::sea_query::Expr::cust("CASE WHEN topic LIKE '%.emergency' THEN 0 ELSE 1 END"))
            .order_by_asc(outbox::Column::Id)
            .limit(BATCH)
            .all(db)
            .await?;
        if rows.is_empty() {
            return Ok((0, false));
        }
        let n = rows.len();
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let batch = rows
            .into_iter()
            .map(|row| (row.topic, OutMessage { key: row.msg_key, payload: row.payload, headers: vec![] }))
            .collect();
        // Strictly in order: only the prefix before the first failure
        // counts as published, so nothing overtakes an unsent row (a
        // later one that went through anyway is published again; the
        // consumers drop it by its event id).
        let mut published = Vec::with_capacity(n);
        let mut failure = None;
        for (id, result) in ids.into_iter().zip(self.bus.publish_many(batch).await) {
            match result {
                Ok(_) => published.push(id),
                Err(e) => {
                    failure = Some(RelayError::Bus(e.to_string()));
                    break;
                }
            }
        }
        if published.len() < n && failure.is_none() {
            failure = Some(RelayError::Bus("the bus answered for fewer messages than it was given".into()));
        }
        // One statement marks the whole published prefix sent.
        let sent = published.len();
        if !published.is_empty() {
            outbox::Entity::update_many()
                .col_expr(outbox::Column::SentAt, sea_orm::sea_query::Expr::value(Utc::now()))
                .filter(outbox::Column::Id.is_in(published.iter().copied()))
                .exec(db)
                .await?;
        }
        if let Some(e) = failure {
            return Err(e);
        }
        Ok((sent, n as u64 == BATCH))
    }

    /// Runs until `shutdown`, then drains once more so nothing committed
    /// stays behind.
    pub async fn run(self, shutdown: CancellationToken) {
        // One log line when publishing starts failing and one when it works
        // again, not one per try.
        let mut failing_since: Option<std::time::Instant> = None;
        loop {
            match self.drain().await {
                Err(e) if failing_since.is_none() => {
                    tracing::warn!(producer = %self.producer, error = %e, "outbox relay: cannot publish; retrying until it can");
                    failing_since = Some(std::time::Instant::now());
                }
                Err(e) => tracing::debug!(producer = %self.producer, error = %e, "outbox relay: still failing"),
                Ok(_) => {
                    if let Some(t) = failing_since.take() {
                        tracing::info!(producer = %self.producer, failed_for_secs = t.elapsed().as_secs_f64(), "outbox relay: publishing again");
                    }
                }
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
