//! Answering KPI queries: from the day tallies for communities and above,
//! from the facts themselves for a grid (a grid has few cases).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use gridwork_domain::codes::{self, Level};
use gridwork_domain::kpi::{self, CaseFacts, KpiRow, Period, Tally};
use gridwork_platform::ApiError;
use gridwork_storage::entity::{kpi_cell, kpi_fact};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Statement};

/// The first instant of a China-time day.
pub fn day_start(day: NaiveDate) -> Result<DateTime<Utc>, ApiError> {
    kpi::china_offset()
        .from_local_datetime(&day.and_hms_opt(0, 0, 0).unwrap_or_default())
        .single()
        .map(|d| d.with_timezone(&Utc))
        .ok_or_else(|| ApiError::internal(&format!("no start of day {day}")))
}

/// The summed day tallies of `jurisdiction` in `[from, to]`, and the backlog
/// carried in from before `from`.
pub async fn tallies<C: ConnectionTrait>(
    db: &C,
    jurisdiction: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<(BTreeMap<NaiveDate, Tally>, i64), ApiError> {
    let level = codes::level_of(jurisdiction).map_err(|e| ApiError::internal(&e))?;
    if level == Level::Grid {
        let end = day_start(to)? + Duration::days(1);
        // A grid case's place is its grid code: equality uses the
        // (place, created_at) index, where LIKE 'code%' would not.
        let rows = kpi_fact::Entity::find()
            .filter(kpi_fact::Column::Place.eq(jurisdiction))
            .filter(kpi_fact::Column::CreatedAt.lt(end))
            .all(db)
            .await
            .map_err(|e| ApiError::unavailable(&e))?;
        let mut facts: Vec<CaseFacts> = Vec::with_capacity(rows.len());
        for r in &rows {
            facts.push(serde_json::from_str(&r.facts).map_err(|e| ApiError::internal(&e))?);
        }
        return Ok(kpi::day_tallies(&facts, from, to));
    }
    let cells = kpi_cell::Entity::find()
        .filter(kpi_cell::Column::Jurisdiction.eq(jurisdiction))
        .filter(kpi_cell::Column::Day.gte(from.to_string()))
        .filter(kpi_cell::Column::Day.lte(to.to_string()))
        .order_by_asc(kpi_cell::Column::Day)
        .all(db)
        .await
        .map_err(|e| ApiError::unavailable(&e))?;
    let mut days = BTreeMap::new();
    for c in cells {
        let day: NaiveDate = c.day.parse().map_err(|e| ApiError::internal(&e))?;
        let t: Tally = serde_json::from_str(&c.tally).map_err(|e| ApiError::internal(&e))?;
        days.insert(day, t);
    }
    let backend = db.get_database_backend();
    let opening = db
        .query_one(Statement::from_sql_and_values(
            backend,
            match backend {
                sea_orm::DbBackend::Postgres => {
                    "SELECT CAST(COALESCE(SUM(net_open), 0) AS BIGINT) AS n FROM kpi_cells WHERE jurisdiction = $1 AND day < $2"
                }
                _ => "SELECT COALESCE(SUM(net_open), 0) AS n FROM kpi_cells WHERE jurisdiction = ? AND day < ?",
            },
            [jurisdiction.into(), from.to_string().into()],
        ))
        .await
        .map_err(|e| ApiError::unavailable(&e))?
        .and_then(|r| r.try_get::<i64>("", "n").ok())
        .unwrap_or(0);
    Ok((days, opening))
}

/// The KPI rows of `jurisdiction`, one per `period` bucket in `[from, to]`
/// with activity.
pub async fn rows<C: ConnectionTrait>(
    db: &C,
    jurisdiction: &str,
    period: Period,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<KpiRow>, ApiError> {
    let (days, opening) = tallies(db, jurisdiction, from, to).await?;
    Ok(kpi::rows(&days, opening, period, from, to))
}

/// The KPI row of period `[from, to]` (one bucket of `period`) of every
/// unit whose code starts with `prefix` and is published (street, county,
/// city, province: 6 or 9 digits) and had activity in it, by code: the
/// table that publication withholds from as a whole.
pub async fn unit_rows<C: ConnectionTrait>(
    db: &C,
    prefix: &str,
    period: Period,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<BTreeMap<String, KpiRow>, ApiError> {
    let backend = db.get_database_backend();
    let pg = backend == sea_orm::DbBackend::Postgres;
    let like = format!("{prefix}%");
    let cells = db
        .query_all(Statement::from_sql_and_values(
            backend,
            if pg {
                "SELECT jurisdiction, day, tally FROM kpi_cells WHERE jurisdiction LIKE $1 \
                 AND length(jurisdiction) IN (6, 9) AND day >= $2 AND day <= $3"
            } else {
                "SELECT jurisdiction, day, tally FROM kpi_cells WHERE jurisdiction LIKE ? \
                 AND length(jurisdiction) IN (6, 9) AND day >= ? AND day <= ?"
            },
            [like.clone().into(), from.to_string().into(), to.to_string().into()],
        ))
        .await
        .map_err(|e| ApiError::unavailable(&e))?;
    let mut days: BTreeMap<String, BTreeMap<NaiveDate, Tally>> = BTreeMap::new();
    for c in cells {
        let code: String = c.try_get("", "jurisdiction").map_err(|e| ApiError::internal(&e))?;
        let day: String = c.try_get("", "day").map_err(|e| ApiError::internal(&e))?;
        let tally: String = c.try_get("", "tally").map_err(|e| ApiError::internal(&e))?;
        let day: NaiveDate = day.parse().map_err(|e| ApiError::internal(&e))?;
        days.entry(code).or_default().insert(day, serde_json::from_str(&tally).map_err(|e| ApiError::internal(&e))?);
    }
    let openings = db
        .query_all(Statement::from_sql_and_values(
            backend,
            if pg {
                "SELECT jurisdiction, CAST(SUM(net_open) AS BIGINT) AS n FROM kpi_cells \
                 WHERE jurisdiction LIKE $1 AND length(jurisdiction) IN (6, 9) AND day < $2 GROUP BY jurisdiction"
            } else {
                "SELECT jurisdiction, SUM(net_open) AS n FROM kpi_cells \
                 WHERE jurisdiction LIKE ? AND length(jurisdiction) IN (6, 9) AND day < ? GROUP BY jurisdiction"
            },
            [like.into(), from.to_string().into()],
        ))
        .await
        .map_err(|e| ApiError::unavailable(&e))?;
    let mut opening: BTreeMap<String, i64> = BTreeMap::new();
    for r in openings {
        let code: String = r.try_get("", "jurisdiction").map_err(|e| ApiError::internal(&e))?;
        opening.insert(code, r.try_get::<i64>("", "n").unwrap_or(0));
    }
    let mut out = BTreeMap::new();
    for (code, d) in days {
        let open = opening.get(&code).copied().unwrap_or(0);
        if let Some(row) = kpi::rows(&d, open, period, from, to).into_iter().next() {
            out.insert(code, row);
        }
    }
    Ok(out)
}
