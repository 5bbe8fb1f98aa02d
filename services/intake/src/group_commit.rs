//! Group commit for reports: concurrent submissions gathered for a few
//! milliseconds share one database transaction and one commit (durable:
//! a 2xx is sent only after the commit that holds the report and its outbox
//! row). A failed transaction fails every report in it, and none is
//! half-stored.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use gridwork_storage::entity::{report, report_event, report_media};
use gridwork_storage::outbox::{self, Pending, MAX_ROWS_PER_STATEMENT};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryTrait, TransactionTrait};
use tokio::sync::{mpsc, oneshot, Notify, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// A report ready to store: its row, its first timeline entry, and its
/// outbox message.
pub struct Prepared {
    pub report: report::ActiveModel,
    pub event: report_event::ActiveModel,
    pub topic: String,
    pub key: String,
    pub payload: Vec<u8>,
    /// The media the report names (rows of `report_media`, ADR 0024).
    pub media: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// Newly stored with its event.
    Created,
    /// A report with this id already existed; nothing was written.
    Existing,
}

struct Job {
    item: Prepared,
    reply: oneshot::Sender<Result<Stored, String>>,
}

/// The handle request handlers submit through.
#[derive(Clone)]
pub struct Batcher {
    mode: Mode,
}

#[derive(Clone)]
enum Mode {
    /// Through the committing task.
    Grouped(mpsc::Sender<Job>),
    /// Each report in its own transaction, committed by the request itself
    /// (`batch_max = 0`: the naive baseline).
    Single { db: DatabaseConnection, producer: &'static str, wake: Arc<Notify> },
}

#[derive(Debug, Clone, Copy)]
pub struct BatchSettings {
    /// At most this many reports per transaction; 0 = no group commit.
    pub max: usize,
    /// Gather for at most this long after the first report arrives.
    pub wait: Duration,
}

impl Batcher {
    /// Starts the committing task; it drains what was submitted before
    /// stopping on `shutdown`.
    pub fn start(
        db: DatabaseConnection,
        producer: &'static str,
        wake: Arc<Notify>,
        settings: BatchSettings,
        sizes: prometheus::Histogram,
        shutdown: CancellationToken,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        if settings.max == 0 {
            let task = tokio::spawn(async {});
            return (Batcher { mode: Mode::Single { db, producer, wake } }, task);
        }
        let (tx, rx) = mpsc::channel(settings.max * 8);
        let task = tokio::spawn(run(db, producer, wake, settings, sizes, rx, shutdown));
        (Batcher { mode: Mode::Grouped(tx) }, task)
    }

    /// Stores one report; resolves after the commit that holds it.
    pub async fn store(&self, item: Prepared) -> Result<Stored, String> {
        match &self.mode {
            Mode::Grouped(tx) => {
                let (reply, rx) = oneshot::channel();
                tx.send(Job { item, reply }).await.map_err(|_| "intake is shutting down".to_owned())?;
                rx.await.map_err(|_| "intake is shutting down".to_owned())?
            }
            Mode::Single { db, producer, wake } => {
                let stored = commit(db, producer, &[&item]).await.map_err(|e| e.to_string())?;
                let first = stored.first().copied().unwrap_or(Stored::Existing);
                if first == Stored::Created {
                    wake.notify_one();
                }
                Ok(first)
            }
        }
    }
}

/// Batches committing at once on PostgreSQL: while one waits for its WAL
/// flush the next is gathered and written. SQLite has one writer: one.
const IN_FLIGHT_POSTGRES: usize = 4;

async fn run(
    db: DatabaseConnection,
    producer: &'static str,
    wake: Arc<Notify>,
    settings: BatchSettings,
    sizes: prometheus::Histogram,
    mut rx: mpsc::Receiver<Job>,
    shutdown: CancellationToken,
) {
    let in_flight = match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => IN_FLIGHT_POSTGRES,
        _ => 1,
    };
    let permits = Arc::new(Semaphore::new(in_flight));
    let mut committing = JoinSet::new();
    loop {
        // A free committer first: meanwhile reports queue up and the batch
        // gathered next holds them all.
        let Ok(permit) = permits.clone().acquire_owned().await else { break };
        while committing.try_join_next().is_some() {}
        let first = tokio::select! {
            j = rx.recv() => match j { Some(j) => j, None => break },
            _ = shutdown.cancelled() => {
                // Stop taking new work; what is queued is still committed.
                rx.close();
                match rx.recv().await { Some(j) => j, None => break }
            }
        };
        let mut jobs = vec![first];
        let deadline = tokio::time::Instant::now() + settings.wait;
        while jobs.len() < settings.max {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(j)) => jobs.push(j),
                _ => break,
            }
        }
        sizes.observe(jobs.len() as f64);
        let (db, wake) = (db.clone(), wake.clone());
        committing.spawn(async move {
            commit_and_answer(&db, producer, &wake, jobs).await;
            drop(permit);
        });
    }
    // Every batch taken is committed and answered before the task ends.
    while committing.join_next().await.is_some() {}
}

async fn commit_and_answer(db: &DatabaseConnection, producer: &str, wake: &Notify, jobs: Vec<Job>) {
    let items: Vec<&Prepared> = jobs.iter().map(|j| &j.item).collect();
    match commit(db, producer, &items).await {
        Ok(results) => {
            if results.contains(&Stored::Created) {
                wake.notify_one();
            }
            for (job, r) in jobs.into_iter().zip(results) {
                let _ = job.reply.send(Ok(r));
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, reports = jobs.len(), "report batch failed; nothing of it was stored");
            for job in jobs {
                let _ = job.reply.send(Err(e.to_string()));
            }
        }
    }
}

/// Stores a batch in one transaction with a few multi-row statements, not
/// several per report: the reports (`ON CONFLICT DO NOTHING RETURNING id`
/// tells which were new), then the new ones' timeline entries, outbox rows
/// and media links. A report whose id was already stored, or appears
/// earlier in the same batch, is [`Stored::Existing`]: the caller tells a
/// replay from a conflicting reuse by its content.
async fn commit(db: &DatabaseConnection, producer: &str, items: &[&Prepared]) -> Result<Vec<Stored>, DbErr> {
    let txn = db.begin().await?;
    let mut created: HashSet<String> = HashSet::with_capacity(items.len());
    // In id order: batches committing at once that share ids take their
    // row locks in the same order, so they wait for each other, never
    // deadlock.
    let mut by_id: Vec<&Prepared> = items.to_vec();
    by_id.sort_by(|a, b| a.key.cmp(&b.key));
    for chunk in by_id.chunks(MAX_ROWS_PER_STATEMENT) {
        let mut q = report::Entity::insert_many(chunk.iter().map(|p| p.report.clone()))
            .on_conflict(OnConflict::column(report::Column::Id).do_nothing().to_owned())
            .into_query();
        q.returning_col(report::Column::Id);
        let stmt = txn.get_database_backend().build(&q);
        for row in txn.query_all(stmt).await? {
            created.insert(row.try_get::<String>("", "id")?);
        }
    }
    // In the batch's order; a repeated id is new only the first time.
    let out: Vec<Stored> =
        items.iter().map(|p| if created.remove(&p.key) { Stored::Created } else { Stored::Existing }).collect();
    let new: Vec<&Prepared> = items.iter().zip(&out).filter(|(_, s)| **s == Stored::Created).map(|(p, _)| *p).collect();
    for chunk in new.chunks(MAX_ROWS_PER_STATEMENT) {
        report_event::Entity::insert_many(chunk.iter().map(|p| p.event.clone())).exec_without_returning(&txn).await?;
    }
    let messages: Vec<Pending> =
        new.iter().map(|p| Pending { topic: &p.topic, key: p.key.as_bytes(), payload: &p.payload }).collect();
    outbox::enqueue_many(&txn, producer, &messages).await?;
    let links: Vec<report_media::ActiveModel> = new
        .iter()
        .flat_map(|p| {
            p.media.iter().map(|m| report_media::ActiveModel {
                media_id: sea_orm::Set(m.clone()),
                // The outbox key of a report-submitted event is the report id.
                report_id: sea_orm::Set(p.key.clone()),
            })
        })
        .collect();
    for chunk in links.chunks(MAX_ROWS_PER_STATEMENT) {
        report_media::Entity::insert_many(chunk.iter().cloned())
            .on_conflict(
                OnConflict::columns([report_media::Column::MediaId, report_media::Column::ReportId])
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(out)
}
