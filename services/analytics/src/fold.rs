//! Folding case-lifecycle events into per-case facts and, by difference,
//! into the per-jurisdiction day and month tallies every KPI query reads.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use gridwork_bus::{Handler, HandlerError, Message};
use gridwork_domain::kpi::{self, CaseFacts, Tally};
use gridwork_domain::petition::PetitionClass;
use gridwork_domain::CaseEventKind;
use gridwork_events::convert::CaseEventView;
use gridwork_events::{Event, Payload};
use gridwork_platform::pipeline::{decode, retryable};
use gridwork_storage::dedup;
use gridwork_storage::entity::{kpi_cell, kpi_fact, kpi_month_cell};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use tracing::Instrument;

use crate::GROUP;

pub(crate) fn facts_of(row: &kpi_fact::Model) -> Result<CaseFacts, HandlerError> {
    serde_json::from_str(&row.facts)
        .map_err(|e| HandlerError::Retryable(format!("stored facts of {}: {e}", row.case_id)))
}

/// The stored row of a case's facts.
pub fn row_of(f: &CaseFacts, version: i64, window: Duration) -> Result<kpi_fact::Model, HandlerError> {
    Ok(kpi_fact::Model {
        case_id: f.case_id.to_string(),
        place: f.hierarchy.finest().to_owned(),
        created_at: f.created_at,
        closed_at: f.closed_at,
        petitioner_key: f.petition.as_ref().map(|p| p.petitioner_key.clone()),
        matter_key: f.petition.as_ref().map(|p| p.matter_key.clone()),
        version,
        facts: serde_json::to_string(f).map_err(|e| HandlerError::Poison(e.to_string()))?,
        matures_at: f.matures_at(window),
    })
}

/// The tally changes of one transaction, merged by (jurisdiction, day).
pub type Delta = std::collections::BTreeMap<(String, chrono::NaiveDate), Tally>;

/// Reads a case's fact row to change it. On PostgreSQL the row stays locked
/// (`SELECT … FOR UPDATE`) until the transaction ends, so the live fold and
/// the maturity tick, of this replica or any other, take turns on a fact and
/// each computes its difference from what the other wrote.
async fn fact_for_update<C: ConnectionTrait>(txn: &C, case_id: &str) -> Result<Option<kpi_fact::Model>, DbErr> {
    let mut q = kpi_fact::Entity::find_by_id(case_id.to_owned());
    if txn.get_database_backend() == DbBackend::Postgres {
        q = q.lock_exclusive();
    }
    q.one(txn).await
}

/// Writes a case's new facts in the caller's transaction and adds the
/// difference from its old facts to `delta`. The old row is replaced only if
/// it is still the one read (same version and facts): a write computed from
/// a stale fact fails (retryable) instead of moving the tallies twice. With
/// the row lock that never happens on PostgreSQL; SQLite has one writer.
pub(crate) async fn store<C: ConnectionTrait>(
    txn: &C,
    old: Option<(&kpi_fact::Model, &CaseFacts)>,
    new: &CaseFacts,
    version: i64,
    window: Duration,
    delta: &mut Delta,
) -> Result<(), HandlerError> {
    let row = row_of(new, version, window)?;
    match old {
        Some((was, _)) => {
            let done = kpi_fact::Entity::update_many()
                .set(row.into_active_model().reset_all())
                .filter(kpi_fact::Column::CaseId.eq(was.case_id.as_str()))
                .filter(kpi_fact::Column::Version.eq(was.version))
                .filter(kpi_fact::Column::Facts.eq(was.facts.as_str()))
                .exec(txn)
                .await
                .map_err(retryable)?;
            if done.rows_affected != 1 {
                return Err(HandlerError::Retryable(format!(
                    "the facts of case {} changed while they were being folded",
                    was.case_id
                )));
            }
        }
        None => {
            row.into_active_model().reset_all().insert(txn).await.map_err(retryable)?;
        }
    }
    for (key, t) in kpi::delta(old.map(|(_, f)| f), new) {
        delta.entry(key).or_default().add(&t, 1);
    }
    Ok(())
}

/// The month cell key (`YYYY-MM`) of a day.
pub fn month_of(day: chrono::NaiveDate) -> String {
    day.format("%Y-%m").to_string()
}

/// The day changes of `delta` summed per (jurisdiction, month), leaving out
/// months whose changes cancel out. A month whose days have no cell yet only
/// gains (a count is only taken back from a day it was added to), so a
/// month cell is created exactly when the first day cell of its month is.
pub fn month_delta(delta: &Delta) -> std::collections::BTreeMap<(String, String), Tally> {
    let mut out: std::collections::BTreeMap<(String, String), Tally> = std::collections::BTreeMap::new();
    for ((code, day), t) in delta {
        out.entry((code.clone(), month_of(*day))).or_default().add(t, 1);
    }
    out.retain(|_, t| !t.is_zero());
    out
}

/// Adds each tally to its (jurisdiction, day) cell, and the same changes to
/// the (jurisdiction, month) cells, in the caller's transaction. Keys come
/// in order, day cells before month cells, so concurrent folds lock cells in
/// the same order.
async fn apply_cells<C: ConnectionTrait>(txn: &C, delta: Delta) -> Result<(), DbErr> {
    let months = month_delta(&delta);
    for ((code, day), t) in delta {
        if t.is_zero() {
            continue;
        }
        let day = day.to_string();
        let mut q = kpi_cell::Entity::find_by_id((code.clone(), day.clone()));
        if txn.get_database_backend() == DbBackend::Postgres {
            q = q.lock_exclusive();
        }
        match q.one(txn).await? {
            Some(cell) => {
                let mut tally: Tally = serde_json::from_str(&cell.tally)
                    .map_err(|e| DbErr::Custom(format!("tally of {code} on {day}: {e}")))?;
                tally.add(&t, 1);
                let mut am = cell.clone().into_active_model();
                am.net_open = Set(cell.net_open + t.created - t.ended);
                am.tally = Set(encode(&tally)?);
                am.version = Set(cell.version + 1);
                am.dirty = Set(true);
                am.update(txn).await?;
            }
            None => {
                kpi_cell::Model {
                    jurisdiction: code,
                    day,
                    net_open: t.created - t.ended,
                    tally: encode(&t)?,
                    version: 1,
                    dirty: true,
                }
                .into_active_model()
                .reset_all()
                .insert(txn)
                .await?;
            }
        }
    }
    for ((code, month), t) in months {
        let mut q = kpi_month_cell::Entity::find_by_id((code.clone(), month.clone()));
        if txn.get_database_backend() == DbBackend::Postgres {
            q = q.lock_exclusive();
        }
        match q.one(txn).await? {
            Some(cell) => {
                let mut tally: Tally = serde_json::from_str(&cell.tally)
                    .map_err(|e| DbErr::Custom(format!("tally of {code} in {month}: {e}")))?;
                tally.add(&t, 1);
                let mut am = cell.clone().into_active_model();
                am.net_open = Set(cell.net_open + t.created - t.ended);
                am.tally = Set(encode(&tally)?);
                am.update(txn).await?;
            }
            None => {
                kpi_month_cell::Model { jurisdiction: code, month, net_open: t.created - t.ended, tally: encode(&t)? }
                    .into_active_model()
                    .reset_all()
                    .insert(txn)
                    .await?;
            }
        }
    }
    Ok(())
}

fn encode(t: &Tally) -> Result<String, DbErr> {
    serde_json::to_string(t).map_err(|e| DbErr::Custom(e.to_string()))
}

/// The case-lifecycle consumer.
pub struct Folder {
    pub db: DatabaseConnection,
    pub window: Duration,
}

/// The most case events folded in one transaction: their cells are written
/// once, summed.
const MAX_BATCH: usize = 64;

#[async_trait]
impl Handler for Folder {
    async fn handle(&self, msg: &Message) -> Result<(), HandlerError> {
        self.fold_all(std::slice::from_ref(msg)).await
    }

    /// The batch in one transaction, its tally changes summed and written
    /// once: all of it or none.
    async fn handle_batch(&self, msgs: &[Message]) -> Result<(), HandlerError> {
        self.fold_all(msgs).await
    }

    fn max_batch(&self) -> usize {
        MAX_BATCH
    }
}

/// Reads a case-lifecycle event; anything else is poison.
fn view(msg: &Message) -> Result<(Event, CaseEventView), HandlerError> {
    let event = decode(msg)?;
    let Payload::CaseLifecycle(pb) = &event.payload else {
        return Err(HandlerError::Poison(format!("unexpected schema {} on case-lifecycle", event.payload.schema())));
    };
    let v = CaseEventView::try_from(pb).map_err(|e| HandlerError::Poison(e.to_string()))?;
    Ok((event, v))
}

impl Folder {
    /// Folds case-lifecycle events into their cases' facts and the day and
    /// month tallies, in one transaction.
    async fn fold_all(&self, msgs: &[Message]) -> Result<(), HandlerError> {
        let events = msgs.iter().map(view).collect::<Result<Vec<_>, _>>()?;
        let txn = self.db.begin().await.map_err(retryable)?;
        let mut delta = Delta::new();
        for (event, v) in events {
            let span = tracing::info_span!("kpi_fold", case = %v.case_id, kind = v.kind.as_str(), version = v.version);
            // Entered only while the fold is polled: a guard held across its
            // awaits would stay entered on the thread when the fold yields, and
            // whatever ran there next (another consumer's message) would nest in it.
            self.fold(&txn, &event, v, &mut delta).instrument(span).await?;
        }
        // Cells in key order, once per transaction: concurrent folds and
        // ticks lock them in the same order.
        apply_cells(&txn, delta).await.map_err(retryable)?;
        txn.commit().await.map_err(retryable)?;
        Ok(())
    }

    /// Folds one case-lifecycle event into its case's facts, in the
    /// caller's transaction, and adds its tally changes to `delta`.
    async fn fold<C: ConnectionTrait>(
        &self,
        txn: &C,
        event: &Event,
        v: CaseEventView,
        delta: &mut Delta,
    ) -> Result<(), HandlerError> {
        if !dedup::first_delivery(txn, GROUP, &event.id.to_string()).await.map_err(retryable)? {
            return Ok(());
        }
        let existing = fact_for_update(txn, &v.case_id.to_string()).await.map_err(retryable)?;
        let (old, stored_version) = match &existing {
            Some(row) => (Some(facts_of(row)?), row.version),
            None => (None, 0),
        };
        gridwork_platform::failpoint::pause("analytics.fold.read").await;
        // Per-case order is guaranteed by the key; an older version seen
        // again (a redelivery) changes nothing.
        if v.version <= stored_version {
            return Ok(());
        }
        let mut facts = old.clone().unwrap_or_else(|| {
            CaseFacts::opened(
                v.case_id,
                v.hierarchy.clone(),
                v.category.clone(),
                v.channel,
                v.created_at,
                v.due_at,
                v.petition.clone(),
            )
        });
        facts.apply(v.kind, event.occurred_at, v.status, v.satisfaction, self.window);
        facts.due_at = v.due_at;
        facts.accept_due_at = v.accept_due_at;
        // Petitions of the same petitioner on the same matter meet here,
        // whichever is folded first: a repeat or escalated petition counts
        // against the earlier first-time ones (judged against their answer).
        let mut others_changed = Vec::new();
        if v.kind == CaseEventKind::Created {
            if let Some(p) = v.petition.as_ref() {
                let mut q = kpi_fact::Entity::find()
                    .filter(kpi_fact::Column::PetitionerKey.eq(p.petitioner_key.as_str()))
                    .filter(kpi_fact::Column::MatterKey.eq(p.matter_key.as_str()))
                    .filter(kpi_fact::Column::CaseId.ne(v.case_id.to_string()))
                    .order_by_asc(kpi_fact::Column::CaseId);
                if txn.get_database_backend() == DbBackend::Postgres {
                    q = q.lock_exclusive();
                }
                let same = q.all(txn).await.map_err(retryable)?;
                for row in same {
                    let before = facts_of(&row)?;
                    if p.class == PetitionClass::FirstTime {
                        if before.petition.as_ref().is_some_and(|o| o.class != PetitionClass::FirstTime) {
                            facts.note_later_petition(before.created_at, self.window);
                        }
                    } else {
                        let mut after = before.clone();
                        if after.note_later_petition(v.created_at, self.window) {
                            others_changed.push((row, before, after));
                        }
                    }
                }
            }
        }
        let was = existing.as_ref().zip(old.as_ref());
        store(txn, was, &facts, v.version, self.window, delta).await?;
        for (row, before, after) in &others_changed {
            store(txn, Some((row, before)), after, row.version, self.window, delta).await?;
        }
        Ok(())
    }
}

/// Makes final every pending first-contact result whose observation window
/// has ended by `now`. Returns how many changed.
///
/// On PostgreSQL the tick locks the facts it takes (`FOR UPDATE SKIP
/// LOCKED`): a fact the live fold (or another replica's tick) holds is left
/// for the next tick, and a fact taken is read as last committed, so the
/// fold and the tick never both move the tallies from the same stale fact.
pub async fn mature(db: &DatabaseConnection, now: DateTime<Utc>, window: Duration) -> Result<usize, HandlerError> {
    use sea_orm::sea_query::{LockBehavior, LockType};
    let mut changed = 0;
    loop {
        let txn = db.begin().await.map_err(retryable)?;
        let mut q = kpi_fact::Entity::find()
            .filter(kpi_fact::Column::MaturesAt.lte(now))
            .order_by_asc(kpi_fact::Column::MaturesAt)
            .limit(200);
        if txn.get_database_backend() == DbBackend::Postgres {
            q = q.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
        }
        let rows = q.all(&txn).await.map_err(retryable)?;
        if rows.is_empty() {
            return Ok(changed);
        }
        gridwork_platform::failpoint::pause("analytics.mature.read").await;
        let mut delta = Delta::new();
        for row in &rows {
            let before = facts_of(row)?;
            let mut after = before.clone();
            after.mature(now, window);
            // Written even if unchanged, so matures_at is cleared and the
            // row not picked again.
            store(&txn, Some((row, &before)), &after, row.version, window, &mut delta).await?;
            changed += usize::from(after != before);
        }
        apply_cells(&txn, delta).await.map_err(retryable)?;
        txn.commit().await.map_err(retryable)?;
    }
}

/// Rebuilds every case's facts and the day and month tallies from the event history
/// alone — the case-lifecycle messages kept in the producers' outbox, in the
/// order they were committed — through the same fold as the live consumer,
/// then makes final what has matured by `now`. Run it with analytics
/// stopped. Calls `progress` with the number of events folded so far,
/// every 10,000.
pub async fn recompute(
    db: &DatabaseConnection,
    topic: &str,
    window: Duration,
    now: DateTime<Utc>,
    progress: impl Fn(usize),
) -> anyhow::Result<usize> {
    use gridwork_storage::entity::{consumed_event, outbox};
    kpi_fact::Entity::delete_many().exec(db).await?;
    kpi_cell::Entity::delete_many().exec(db).await?;
    kpi_month_cell::Entity::delete_many().exec(db).await?;
    consumed_event::Entity::delete_many().filter(consumed_event::Column::Consumer.eq(GROUP)).exec(db).await?;
    let folder = Folder { db: db.clone(), window };
    let (mut after, mut folded) = (0i64, 0usize);
    loop {
        let rows = outbox::Entity::find()
            .filter(outbox::Column::Topic.eq(topic))
            .filter(outbox::Column::Id.gt(after))
            .order_by_asc(outbox::Column::Id)
            .limit(1000)
            .all(db)
            .await?;
        let Some(last) = rows.last() else { break };
        after = last.id;
        let msgs: Vec<Message> = rows
            .into_iter()
            .map(|row| Message {
                topic: row.topic,
                partition: 0,
                offset: row.id,
                key: row.msg_key,
                payload: row.payload,
                headers: Vec::new(),
                timestamp: row.created_at,
            })
            .collect();
        for chunk in msgs.chunks(MAX_BATCH) {
            // A batch at a time, as the live consumer folds what is waiting;
            // a batch that fails is folded again event by event.
            if folder.handle_batch(chunk).await.is_err() {
                for msg in chunk {
                    match folder.handle(msg).await {
                        Ok(()) => {}
                        // The live consumer sends these to the dead-letter
                        // topic; a rebuild skips them the same way.
                        Err(HandlerError::Poison(e)) => {
                            tracing::warn!(outbox_id = msg.offset, error = %e, "unreadable event skipped")
                        }
                        Err(HandlerError::Retryable(e) | HandlerError::Unavailable(e)) => {
                            anyhow::bail!("event {}: {e}", msg.offset)
                        }
                    }
                }
            }
            let before = folded;
            folded += chunk.len();
            if folded / 10_000 > before / 10_000 {
                progress(folded);
            }
        }
    }
    mature(db, now, window).await.map_err(|e| anyhow::anyhow!("{e:?}"))?;
    Ok(folded)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::collections::BTreeMap;

    use chrono::{NaiveDate, TimeZone};
    use gridwork_domain::case::{CaseStatus, Channel, Satisfaction};
    use gridwork_domain::codes::Hierarchy;
    use gridwork_domain::kpi::Period;
    use gridwork_domain::petition::PetitionInfo;
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn month_delta_sums_days_and_drops_what_cancels() {
        let d = |m, day| chrono::NaiveDate::from_ymd_opt(2026, m, day).unwrap();
        let t = |created, ended| Tally { created, ended, ..Tally::default() };
        let mut delta = Delta::new();
        delta.insert(("370101".into(), d(1, 31)), t(2, 0));
        delta.insert(("370101".into(), d(2, 1)), t(1, 1));
        delta.insert(("370101".into(), d(2, 3)), t(-1, -1));
        delta.insert(("370102".into(), d(2, 28)), t(0, 1));
        let months = month_delta(&delta);
        assert_eq!(
            months.into_iter().collect::<Vec<_>>(),
            vec![(("370101".into(), "2026-01".into()), t(2, 0)), (("370102".into(), "2026-02".into()), t(0, 1))]
        );
        assert_eq!(month_of(d(12, 31)), "2026-12");
    }

    const WINDOW_DAYS: i64 = 30;
    const GRIDS: [&str; 3] = ["370101001001001", "370101001002001", "370101002001001"];

    /// One step of a random history: an event on one of the cases at an
    /// offset (hours) from its creation, in whatever order the steps come
    /// (late and out-of-order events included), possibly moving its due
    /// time; or a later petition on the same matter.
    #[derive(Debug, Clone)]
    struct Step {
        case: usize,
        kind: usize,
        hours: i64,
        due_days: Option<i64>,
    }

    const KINDS: [CaseEventKind; 8] = [
        CaseEventKind::Accepted,
        CaseEventKind::Rejected,
        CaseEventKind::Resolved,
        CaseEventKind::Closed,
        CaseEventKind::Reopened,
        CaseEventKind::Escalated,
        CaseEventKind::CallbackRecorded,
        CaseEventKind::ReviewRequested,
    ];

    fn steps() -> impl Strategy<Value = (Vec<(usize, i64, bool)>, Vec<Step>)> {
        let cases = prop::collection::vec((0..GRIDS.len(), 0i64..24 * 80, any::<bool>()), 1..6);
        let steps = prop::collection::vec(
            (0usize..6, 0..KINDS.len() + 1, 0i64..24 * 70, prop::option::weighted(0.2, 1i64..20)),
            1..40,
        )
        .prop_map(|v| {
            v.into_iter().map(|(case, kind, hours, due_days)| Step { case, kind, hours, due_days }).collect()
        });
        (cases, steps)
    }

    async fn cells(db: &DatabaseConnection) -> (BTreeMap<(String, String), (i64, Tally)>, Vec<kpi_month_cell::Model>) {
        let mut sums: BTreeMap<(String, String), (i64, Tally)> = BTreeMap::new();
        for c in kpi_cell::Entity::find().all(db).await.unwrap() {
            let day: NaiveDate = c.day.parse().unwrap();
            let e = sums.entry((c.jurisdiction, month_of(day))).or_default();
            e.0 += c.net_open;
            e.1.add(&serde_json::from_str(&c.tally).unwrap(), 1);
        }
        (sums, kpi_month_cell::Entity::find().all(db).await.unwrap())
    }

    /// Folds a random history of a few cases, through the same store and
    /// cell writes as the live fold and the maturity tick, then checks
    /// every month cell against its day cells, and the query by month,
    /// quarter and year against the day tallies alone.
    async fn fold_history(cases: Vec<(usize, i64, bool)>, history: Vec<Step>) {
        let db = gridwork_storage::connect("sqlite::memory:", 1).await.unwrap();
        gridwork_storage::migrate(&db).await.unwrap();
        let window = Duration::days(WINDOW_DAYS);
        // Mid January China time: the history crosses several months.
        let base = Utc.with_ymd_and_hms(2026, 1, 20, 3, 0, 0).single().unwrap();
        let mut current: Vec<(Option<kpi_fact::Model>, CaseFacts)> = Vec::new();
        for (i, (grid, hours, petition)) in cases.iter().enumerate() {
            let created = base + Duration::hours(*hours);
            let f = CaseFacts::opened(
                uuid::Uuid::from_u128(i as u128 + 1),
                Hierarchy::from_grid_code(GRIDS[*grid]).unwrap(),
                format!("c{}", i % 2),
                if *petition { Channel::Petition } else { Channel::PeopleMediation },
                created,
                created + Duration::days(5),
                petition.then(|| PetitionInfo {
                    petitioner_key: "p".into(),
                    matter_key: format!("m{i}"),
                    class: gridwork_domain::petition::PetitionClass::FirstTime,
                }),
            );
            let txn = db.begin().await.unwrap();
            let mut delta = Delta::new();
            store(&txn, None, &f, 1, window, &mut delta).await.unwrap();
            apply_cells(&txn, delta).await.unwrap();
            txn.commit().await.unwrap();
            let row = kpi_fact::Entity::find_by_id(f.case_id.to_string()).one(&db).await.unwrap();
            current.push((row, f));
        }
        for step in history {
            let Some((Some(row), before)) = current.get(step.case % cases.len().max(1)).cloned() else { continue };
            let at = before.created_at + Duration::hours(step.hours);
            let mut after = before.clone();
            match KINDS.get(step.kind) {
                Some(kind) => {
                    let status = match kind {
                        CaseEventKind::Rejected => CaseStatus::Rejected,
                        CaseEventKind::Closed => CaseStatus::Closed,
                        CaseEventKind::Resolved => CaseStatus::Resolved,
                        CaseEventKind::CallbackRecorded => before.status,
                        _ => CaseStatus::Accepted,
                    };
                    let sat = [Satisfaction::Satisfied, Satisfaction::Unsatisfied, Satisfaction::Unanswered]
                        [(step.hours % 3) as usize];
                    after.apply(*kind, at, status, Some(sat), window);
                }
                // A repeat petition on the same matter, folded now.
                None => {
                    after.note_later_petition(at, window);
                }
            }
            if let Some(days) = step.due_days {
                // A corrected due time, as the next event carries it.
                after.due_at = after.created_at + Duration::days(days);
            }
            let txn = db.begin().await.unwrap();
            let mut delta = Delta::new();
            store(&txn, Some((&row, &before)), &after, row.version + 1, window, &mut delta).await.unwrap();
            apply_cells(&txn, delta).await.unwrap();
            txn.commit().await.unwrap();
            let row = kpi_fact::Entity::find_by_id(after.case_id.to_string()).one(&db).await.unwrap();
            current[step.case % cases.len()] = (row, after);
        }
        // The tick, once its windows have ended.
        mature(&db, base + Duration::days(200), window).await.unwrap();

        let (sums, months) = cells(&db).await;
        let months: BTreeMap<(String, String), (i64, Tally)> = months
            .into_iter()
            .map(|m| ((m.jurisdiction, m.month), (m.net_open, serde_json::from_str(&m.tally).unwrap())))
            .collect();
        assert_eq!(months, sums, "month cells are the sums of their day cells, and exist exactly where they do");

        let d = |m, day| NaiveDate::from_ymd_opt(2026, m, day).unwrap();
        // Some with partial months read as the month minus the days
        // outside the range: the head (Jan 5.., Jan 3..), the tail (..Apr
        // 28, ..Apr 29), both.
        let ranges = [
            (d(1, 1), d(6, 30)),
            (d(1, 20), d(5, 3)),
            (d(2, 1), d(4, 15)),
            (d(1, 5), d(3, 31)),
            (d(2, 3), d(2, 27)),
            (d(2, 1), d(4, 28)),
            (d(1, 3), d(4, 29)),
            (d(1, 30), d(2, 27)),
        ];
        for code in ["370101001001", "370101001002", "370101001", "370101002", "370101", "370100", "370000"] {
            for (from, to) in ranges {
                for period in [Period::Month, Period::Quarter, Period::Year] {
                    let a = crate::query::rows(&db, code, period, from, to).await.unwrap();
                    let b = crate::query::day_rows(&db, code, period, from, to).await.unwrap();
                    assert_eq!(a, b, "{code} {period:?} {from}..{to}");
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// The fold keeps each month cell equal to the sum of its day
        /// cells, whatever the order of events, corrections of the due
        /// time, later petitions and the maturity tick.
        #[test]
        fn month_cells_are_the_sum_of_their_days((cases, history) in steps()) {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(fold_history(cases, history));
        }
    }
}
