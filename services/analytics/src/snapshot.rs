//! The compacted KPI snapshot topic: whenever a day tally changed, the rows
//! of every period containing that day — and the current periods, whose
//! backlog it moves — are published again, keyed
//! `<jurisdiction>|<period>|<period_start>`, so a subscriber reading the
//! compacted topic from the start holds the latest figures.

use std::collections::BTreeSet;

use chrono::{NaiveDate, Utc};
use gridwork_domain::codes;
use gridwork_domain::kpi::{self, Period};
use gridwork_events::convert::{kpi_snapshot, kpi_snapshot_key};
use gridwork_events::{Event, Payload};
use gridwork_platform::pipeline;
use gridwork_storage::entity::kpi_cell;
use sea_orm::{
    sea_query::Expr, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};

use crate::{query, PRODUCER};

/// Publishes (through the outbox) the snapshots that changed cells call
/// for, and marks those cells clean in the same transaction. Returns the
/// number of snapshots written.
pub async fn publish(db: &DatabaseConnection, topic: &str) -> anyhow::Result<usize> {
    let mut written = 0;
    loop {
        let txn = db.begin().await?;
        let dirty = kpi_cell::Entity::find()
            .filter(kpi_cell::Column::Dirty.eq(true))
            .order_by_asc(kpi_cell::Column::Jurisdiction)
            .order_by_asc(kpi_cell::Column::Day)
            .limit(500)
            .all(&txn)
            .await?;
        if dirty.is_empty() {
            return Ok(written);
        }
        let now = Utc::now();
        let today = kpi::china_day(now);
        let mut wanted: BTreeSet<(String, Period, NaiveDate)> = BTreeSet::new();
        for c in &dirty {
            let day: NaiveDate = c.day.parse()?;
            for p in Period::ALL {
                wanted.insert((c.jurisdiction.clone(), p, p.start_of(day)));
                if day < today {
                    wanted.insert((c.jurisdiction.clone(), p, p.start_of(today)));
                }
            }
        }
        for (jurisdiction, period, start) in wanted {
            let level = codes::level_of(&jurisdiction)?;
            let rows = query::rows(&txn, &jurisdiction, period, start, period.end_of(start))
                .await
                .map_err(|e| anyhow::anyhow!("KPIs of {jurisdiction}: {e:?}"))?;
            let Some(row) = rows.first() else { continue };
            let snap = kpi_snapshot(&jurisdiction, level, period, row, now);
            let key = kpi_snapshot_key(&snap);
            let event = Event::new(PRODUCER, now, Payload::KpiSnapshot(snap));
            pipeline::emit(&txn, PRODUCER, topic, &key, &event).await?;
            written += 1;
        }
        for c in &dirty {
            // Only if nothing changed it meanwhile; a newer change stays dirty.
            kpi_cell::Entity::update_many()
                .col_expr(kpi_cell::Column::Dirty, Expr::value(false))
                .filter(kpi_cell::Column::Jurisdiction.eq(c.jurisdiction.as_str()))
                .filter(kpi_cell::Column::Day.eq(c.day.as_str()))
                .filter(kpi_cell::Column::Version.eq(c.version))
                .exec(&txn)
                .await?;
        }
        txn.commit().await?;
    }
}
