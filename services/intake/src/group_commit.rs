//! Group commit for reports: concurrent submissions gathered for a few
//! milliseconds share one database transaction and one commit (durable:
//! a 2xx is sent only after the commit that holds the report and its outbox
//! row). A failed transaction fails every report in it, and none is
//! half-stored.

use std::sync::Arc;
use std::time::Duration;

use gridwork_storage::entity::{report, report_event, report_media};
use gridwork_storage::outbox;
use sea_orm::sea_query::OnConflict;
use sea_orm::{DatabaseConnection, DbErr, EntityTrait, TransactionTrait};
use tokio::sync::{mpsc, oneshot, Notify};
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

async fn run(
    db: DatabaseConnection,
    producer: &'static str,
    wake: Arc<Notify>,
    settings: BatchSettings,
    sizes: prometheus::Histogram,
    mut rx: mpsc::Receiver<Job>,
    shutdown: CancellationToken,
) {
    loop {
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
        let items: Vec<&Prepared> = jobs.iter().map(|j| &j.item).collect();
        sizes.observe(items.len() as f64);
        match commit(&db, producer, &items).await {
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
}

async fn commit(db: &DatabaseConnection, producer: &str, items: &[&Prepared]) -> Result<Vec<Stored>, DbErr> {
    let txn = db.begin().await?;
    let mut out = Vec::with_capacity(items.len());
    for p in items {
        let inserted = report::Entity::insert(p.report.clone())
            .on_conflict(OnConflict::column(report::Column::Id).do_nothing().to_owned())
            .exec_without_returning(&txn)
            .await?;
        if inserted == 0 {
            out.push(Stored::Existing);
            continue;
        }
        report_event::Entity::insert(p.event.clone()).exec_without_returning(&txn).await?;
        outbox::enqueue(&txn, producer, &p.topic, p.key.as_bytes(), p.payload.clone()).await?;
        if !p.media.is_empty() {
            let rows = p.media.iter().map(|m| report_media::ActiveModel {
                media_id: sea_orm::Set(m.clone()),
                // The outbox key of a report-submitted event is the report id.
                report_id: sea_orm::Set(p.key.clone()),
            });
            report_media::Entity::insert_many(rows)
                .on_conflict(
                    OnConflict::columns([report_media::Column::MediaId, report_media::Column::ReportId])
                        .do_nothing()
                        .to_owned(),
                )
                .exec_without_returning(&txn)
                .await?;
        }
        out.push(Stored::Created);
    }
    txn.commit().await?;
    Ok(out)
}
