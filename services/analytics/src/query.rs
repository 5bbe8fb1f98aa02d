//! Answering KPI queries: from the day tallies for communities and above
//! (by month, quarter or year: whole months from the month tallies, a
//! partial month at either end from its day tallies or as its month tally
//! minus the days outside the range, whichever reads fewer), from the facts
//! themselves for a grid (a grid has few cases).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use gridwork_domain::codes::{self, Level};
use gridwork_domain::kpi::{self, CaseFacts, KpiRow, Period, Tally};
use gridwork_platform::ApiError;
use gridwork_storage::entity::{kpi_cell, kpi_fact, kpi_month_cell};
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
    add_day_cells(&mut days, cells)?;
    let opening = opening(db, jurisdiction, from).await?;
    Ok((days, opening))
}

/// Day cells as tallies keyed by their day.
fn add_day_cells(days: &mut BTreeMap<NaiveDate, Tally>, cells: Vec<kpi_cell::Model>) -> Result<(), ApiError> {
    for c in cells {
        let day: NaiveDate = c.day.parse().map_err(|e| ApiError::internal(&e))?;
        let t: Tally = serde_json::from_str(&c.tally).map_err(|e| ApiError::internal(&e))?;
        days.insert(day, t);
    }
    Ok(())
}

/// The backlog of `jurisdiction` carried in from before `from`: created −
/// ended over every earlier day.
async fn opening<C: ConnectionTrait>(db: &C, jurisdiction: &str, from: NaiveDate) -> Result<i64, ApiError> {
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
    Ok(opening)
}

/// The KPI rows of `jurisdiction`, one per `period` bucket in `[from, to]`
/// with activity. By month, quarter or year (whole months nest in each
/// bucket), a community or higher unit is answered from its month tallies
/// for the whole months in range and its day tallies for the rest: the same
/// rows as [`day_rows`], from fewer and smaller reads.
pub async fn rows<C: ConnectionTrait>(
    db: &C,
    jurisdiction: &str,
    period: Period,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<KpiRow>, ApiError> {
    rows_reading(db, jurisdiction, period, from, to, Partials::Fewest).await
}

/// How [`rows_reading`] reads a partial month at an end of the range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partials {
    /// Its day cells in range, or its month cell minus the day cells out of
    /// range, whichever are fewer ([`rows`]).
    Fewest,
    /// Always its day cells in range (as before the month-minus-days read;
    /// kept to compare in the bench).
    DayCells,
}

/// [`rows`], choosing how partial months are read.
pub async fn rows_reading<C: ConnectionTrait>(
    db: &C,
    jurisdiction: &str,
    period: Period,
    from: NaiveDate,
    to: NaiveDate,
    partials: Partials,
) -> Result<Vec<KpiRow>, ApiError> {
    let level = codes::level_of(jurisdiction).map_err(|e| ApiError::internal(&e))?;
    if level != Level::Grid && matches!(period, Period::Month | Period::Quarter | Period::Year) {
        if let Some(whole) = whole_months(from, to) {
            let (days, opening) = month_tallies(db, jurisdiction, from, to, whole, partials).await?;
            return Ok(kpi::rows(&days, opening, period, from, to));
        }
    }
    day_rows(db, jurisdiction, period, from, to).await
}

/// [`rows`] from the day tallies alone (for a grid, from its facts): the
/// path month tallies must agree with.
pub async fn day_rows<C: ConnectionTrait>(
    db: &C,
    jurisdiction: &str,
    period: Period,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<KpiRow>, ApiError> {
    let (days, opening) = tallies(db, jurisdiction, from, to).await?;
    Ok(kpi::rows(&days, opening, period, from, to))
}

/// The first day of the first and the first day of the last whole calendar
/// month inside `[from, to]`, if there is one.
pub fn whole_months(from: NaiveDate, to: NaiveDate) -> Option<(NaiveDate, NaiveDate)> {
    let first = if Period::Month.start_of(from) == from {
        from
    } else {
        Period::Month.end_of(Period::Month.start_of(from)) + Duration::days(1)
    };
    let last_start = Period::Month.start_of(to);
    let last = if Period::Month.end_of(last_start) == to {
        last_start
    } else {
        Period::Month.start_of(last_start - Duration::days(1))
    };
    (first <= last).then_some((first, last))
}

/// How a partial month at one end of a range is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Partial {
    /// The month's cell minus the day cells outside the range (when those
    /// are fewer), or else the day cells inside it.
    from_month: bool,
    /// The day cells read: `[lo, hi]`.
    lo: NaiveDate,
    hi: NaiveDate,
}

impl Partial {
    /// The days `[lo, hi]` of one month, in range, against `[out_lo,
    /// out_hi]`, the rest of the month: the month cell and the outside days
    /// when that is fewer reads than the inside days (and `fewest`).
    fn choose(lo: NaiveDate, hi: NaiveDate, out_lo: NaiveDate, out_hi: NaiveDate, fewest: bool) -> Partial {
        let inside = (hi - lo).num_days() + 1;
        let outside = (out_hi - out_lo).num_days() + 1;
        if fewest && outside + 1 < inside {
            Partial { from_month: true, lo: out_lo, hi: out_hi }
        } else {
            Partial { from_month: false, lo, hi }
        }
    }
}

/// The tallies of `jurisdiction` in `[from, to]` keyed for [`kpi::rows`]
/// by month, quarter or year: each whole month of `whole` (first days of
/// the first and last whole month) as one tally on its first day, from
/// `kpi_month_cells`; a partial month at either end as its days from
/// `kpi_cells`, or as its month cell minus the days outside the range when
/// those are fewer (a year to yesterday: 24 days of last December become
/// one month cell minus 7 days); and the backlog carried in from before
/// `from`.
async fn month_tallies<C: ConnectionTrait>(
    db: &C,
    jurisdiction: &str,
    from: NaiveDate,
    to: NaiveDate,
    whole: (NaiveDate, NaiveDate),
    partials: Partials,
) -> Result<(BTreeMap<NaiveDate, Tally>, i64), ApiError> {
    let (first, last) = whole;
    let after = Period::Month.end_of(last);
    // The month of `from` is keyed on `from` (its first day is out of
    // range); the month of `to` on its first day.
    let head_month = Period::Month.start_of(from);
    let fewest = partials == Partials::Fewest;
    let head = (from < first)
        .then(|| Partial::choose(from, first - Duration::days(1), head_month, from - Duration::days(1), fewest));
    let tail_month = after + Duration::days(1);
    let tail = (after < to)
        .then(|| Partial::choose(tail_month, to, to + Duration::days(1), Period::Month.end_of(tail_month), fewest));
    let month_lo = if head.is_some_and(|p| p.from_month) { head_month } else { first };
    let month_hi = if tail.is_some_and(|p| p.from_month) { tail_month } else { last };
    let mut days = BTreeMap::new();
    let months = kpi_month_cell::Entity::find()
        .filter(kpi_month_cell::Column::Jurisdiction.eq(jurisdiction))
        .filter(kpi_month_cell::Column::Month.gte(crate::fold::month_of(month_lo)))
        .filter(kpi_month_cell::Column::Month.lte(crate::fold::month_of(month_hi)))
        .all(db)
        .await
        .map_err(|e| ApiError::unavailable(&e))?;
    for c in months {
        let day: NaiveDate = format!("{}-01", c.month).parse().map_err(|e| ApiError::internal(&e))?;
        let t: Tally = serde_json::from_str(&c.tally).map_err(|e| ApiError::internal(&e))?;
        days.insert(day.max(from), t);
    }
    let partials: Vec<Partial> = head.into_iter().chain(tail).collect();
    if !partials.is_empty() {
        // Both ends' day cells in one read of up to two index ranges.
        use sea_orm::Condition;
        let mut any = Condition::any();
        for p in &partials {
            any = any.add(
                Condition::all()
                    .add(kpi_cell::Column::Day.gte(p.lo.to_string()))
                    .add(kpi_cell::Column::Day.lte(p.hi.to_string())),
            );
        }
        let cells = kpi_cell::Entity::find()
            .filter(kpi_cell::Column::Jurisdiction.eq(jurisdiction))
            .filter(any)
            .all(db)
            .await
            .map_err(|e| ApiError::unavailable(&e))?;
        for c in cells {
            let day: NaiveDate = c.day.parse().map_err(|e| ApiError::internal(&e))?;
            let t: Tally = serde_json::from_str(&c.tally).map_err(|e| ApiError::internal(&e))?;
            match partials.iter().find(|p| p.lo <= day && day <= p.hi) {
                // Outside the range: taken off its month's tally.
                Some(p) if p.from_month => {
                    days.entry(Period::Month.start_of(day).max(from)).or_insert_with(Tally::default).add(&t, -1)
                }
                _ => {
                    days.insert(day, t);
                }
            }
        }
    }
    let opening = opening(db, jurisdiction, from).await?;
    Ok((days, opening))
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn whole_months_inside_a_range() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
        assert_eq!(whole_months(d(2025, 12, 7), d(2026, 12, 6)), Some((d(2026, 1, 1), d(2026, 11, 1))));
        assert_eq!(whole_months(d(2026, 1, 1), d(2026, 1, 31)), Some((d(2026, 1, 1), d(2026, 1, 1))));
        assert_eq!(whole_months(d(2026, 1, 1), d(2026, 3, 30)), Some((d(2026, 1, 1), d(2026, 2, 1))));
        assert_eq!(whole_months(d(2026, 1, 2), d(2026, 3, 31)), Some((d(2026, 2, 1), d(2026, 3, 1))));
        assert_eq!(whole_months(d(2024, 2, 1), d(2024, 2, 29)), Some((d(2024, 2, 1), d(2024, 2, 1))));
        assert_eq!(whole_months(d(2026, 1, 2), d(2026, 1, 31)), None);
        assert_eq!(whole_months(d(2026, 1, 5), d(2026, 2, 20)), None);
        assert_eq!(whole_months(d(2026, 1, 1), d(2026, 1, 30)), None);
    }

    #[test]
    fn a_partial_month_is_read_from_fewer_cells() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
        // 24 days in range, 7 outside: the month cell and 7 day cells.
        assert_eq!(
            Partial::choose(d(2025, 12, 8), d(2025, 12, 31), d(2025, 12, 1), d(2025, 12, 7), true),
            Partial { from_month: true, lo: d(2025, 12, 1), hi: d(2025, 12, 7) }
        );
        // 7 days in range, 24 outside: the 7 day cells.
        assert_eq!(
            Partial::choose(d(2026, 12, 1), d(2026, 12, 7), d(2026, 12, 8), d(2026, 12, 31), true),
            Partial { from_month: false, lo: d(2026, 12, 1), hi: d(2026, 12, 7) }
        );
        // 15 in range against 1 + 15: the days in range; 16 against 1 + 14:
        // the month.
        assert!(!Partial::choose(d(2026, 4, 1), d(2026, 4, 15), d(2026, 4, 16), d(2026, 4, 30), true).from_month);
        assert!(Partial::choose(d(2026, 4, 1), d(2026, 4, 16), d(2026, 4, 17), d(2026, 4, 30), true).from_month);
        // Day cells only, when asked.
        assert!(!Partial::choose(d(2025, 12, 8), d(2025, 12, 31), d(2025, 12, 1), d(2025, 12, 7), false).from_month);
    }
}
