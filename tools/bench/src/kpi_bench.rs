//! `gridwork-bench kpi`: KPI queries at 10 million cases.
//!
//! 1. Synthesise cases deterministically (seeded) over a synthetic
//!    Shandong-like hierarchy — 16 cities × 9 counties × 12 streets × 20
//!    communities × 5 grids under province 37 — created uniformly over
//!    `--days` days ending yesterday (China time), with a realistic mix of
//!    closes (on time and late), rejections, open cases, petitions,
//!    callbacks, transfers up and reopens. Each case becomes a
//!    [`CaseFacts`] whose day contributions are folded into the day
//!    tallies of its community; a community's tallies fold into its
//!    street's, a street's into its county's and so on, and every unit's
//!    cells are written as soon as its last case is folded, so memory holds
//!    one community, street, county, city and the province at a time.
//!    Each unit's month cells (the sums of its day cells per calendar
//!    month, ADR 0036) are written with its day cells.
//! 2. Write the cells as multi-row INSERTs in large transactions (a
//!    generator thread feeds the writer, so both cores work), and the first
//!    county's cases as `kpi_case_facts` rows too.
//! 3. Check: the month and day tallies path (`query::rows`) against the day
//!    tallies alone (`query::day_rows`) on random jurisdictions, periods
//!    (month, quarter, year) and ranges, month-aligned and not.
//! 4. Time `gridwork_analytics::query::rows` — the API's path minus HTTP —
//!    per level and query shape, on random jurisdictions and days (and the
//!    year by month from the day tallies alone, for comparison).
//! 5. Peer, in the same run: the first county's year by month from the cells
//!    against reading all its facts and calling [`kpi::aggregate`]; both
//!    must give identical rows (also checked for a street and a community).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use gridwork_analytics::query;
use gridwork_domain::case::{CaseEventKind, CaseStatus, Channel, Satisfaction};
use gridwork_domain::codes::{Hierarchy, Level};
use gridwork_domain::kpi::{self, CaseFacts, KpiRow, Period, Tally};
use gridwork_domain::petition::{PetitionClass, PetitionInfo};
use gridwork_storage::entity::kpi_fact;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, IntoActiveModel,
    QueryFilter, QueryTrait, Statement, TransactionTrait, Value,
};
use tokio::sync::mpsc;

pub struct KpiBenchArgs {
    pub cases: u64,
    pub days: u32,
    /// `None`: a fresh SQLite file in a temporary directory.
    pub database_url: Option<String>,
    /// Queries per level and query shape.
    pub queries: usize,
    pub seed: u64,
    /// Keep the temporary SQLite database.
    pub keep: bool,
}

const CITIES: usize = 16;
const COUNTIES: usize = 9;
const STREETS: usize = 12;
const COMMUNITIES: usize = 20;
const GRIDS: usize = 5;
const ALL_COMMUNITIES: usize = CITIES * COUNTIES * STREETS * COMMUNITIES;
/// Rows per multi-row INSERT.
const ROWS_PER_INSERT: usize = 1000;
/// `kpi_case_facts` rows per INSERT (9 columns each).
const FACTS_PER_INSERT: usize = 500;
/// Statements per transaction.
const STATEMENTS_PER_TXN: usize = 100;
/// Runs of each side of the peer comparison.
const PEER_RUNS: usize = 20;
const DAY: i64 = 86_400;

const CATEGORIES: [&str; 16] = [
    "dispute.neighbourhood",
    "dispute.marriage_family",
    "dispute.property_management",
    "dispute.land_contract",
    "dispute.labour_wage",
    "dispute.consumer",
    "dispute.traffic",
    "dispute.medical",
    "hazard.fire",
    "hazard.building",
    "hazard.gas",
    "order.public",
    "environment.sanitation",
    "environment.pollution",
    "environment.illegal_construction",
    "environment.facilities",
];
const PETITION_CATEGORIES: [&str; 4] =
    ["petition.land_acquisition", "petition.social_security", "petition.labour", "petition.other"];
const CHANNELS: [Channel; 7] = [
    Channel::PeopleMediation,
    Channel::PeopleMediation,
    Channel::PeopleMediation,
    Channel::AdministrativeMediation,
    Channel::LegalAid,
    Channel::Emergency,
    Channel::DepartmentDispatch,
];

fn say(msg: &str) {
    eprintln!("kpi bench: {msg}");
}

fn city_code(c: usize) -> String {
    format!("37{:02}00", c + 1)
}
fn county_code(c: usize, k: usize) -> String {
    format!("37{:02}{:02}", c + 1, k + 1)
}
fn child_code(parent: &str, i: usize) -> String {
    format!("{parent}{:03}", i + 1)
}
const PROVINCE: &str = "370000";
/// The county whose cases are also stored as `kpi_case_facts`.
const PEER_COUNTY: &str = "370101";

fn secs(n: i64) -> Duration {
    Duration::seconds(n)
}

/// The first instant of a China-time day.
fn day_start(day: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&(day.and_time(NaiveTime::MIN) - Duration::hours(8)))
}

/// The synthetic world's clock.
#[derive(Clone, Copy)]
struct World {
    now: DateTime<Utc>,
    first_day: NaiveDate,
    last_day: NaiveDate,
    days: u32,
    window: Duration,
}

/// One synthetic case of the grid `hierarchy`.
fn synth_case(rng: &mut ChaCha8Rng, w: &World, hierarchy: &Hierarchy) -> CaseFacts {
    let day = w.first_day + Duration::days(rng.gen_range(0..i64::from(w.days)));
    let created = day_start(day) + secs(rng.gen_range(0..DAY));
    let is_petition = rng.gen_bool(0.10);
    let (channel, category, petition, accept_due_at) = if is_petition {
        let class = match rng.gen_range(0..100) {
            0..80 => PetitionClass::FirstTime,
            80..95 => PetitionClass::Repeat,
            _ => PetitionClass::Escalated,
        };
        let info = PetitionInfo {
            petitioner_key: format!("p{:016x}", rng.gen::<u64>()),
            matter_key: format!("m{:016x}", rng.gen::<u64>()),
            class,
        };
        let category = PETITION_CATEGORIES[rng.gen_range(0..PETITION_CATEGORIES.len())];
        (Channel::Petition, category, Some(info), Some(created + Duration::days(15)))
    } else {
        (CHANNELS[rng.gen_range(0..CHANNELS.len())], CATEGORIES[rng.gen_range(0..CATEGORIES.len())], None, None)
    };
    let due_at = created + Duration::days(rng.gen_range(3..=15));
    let mut f = CaseFacts::opened(
        uuid::Builder::from_random_bytes(rng.gen()).into_uuid(),
        hierarchy.clone(),
        category.to_owned(),
        channel,
        created,
        due_at,
        petition,
    );
    f.accept_due_at = accept_due_at;
    // Petitions are accepted within 1 hour to 20 days (most in days, some
    // after the 15-day deadline); other cases within hours.
    let accepted = if is_petition {
        let u: f64 = rng.gen();
        created + secs(((20 * DAY) as f64 * u * u) as i64).max(secs(3600))
    } else {
        created + secs(rng.gen_range(60..6 * 3600))
    };
    let outcome = rng.gen_range(0..1000);
    if rng.gen_bool(0.02) {
        // Transferred up to a higher level's centre, soon after creation.
        let at = (created + secs(rng.gen_range(600..=DAY))).min(w.now);
        let status = f.status;
        f.apply(gridwork_domain::CaseEventKind::Escalated, at, status, None, w.window);
    }
    if (850..880).contains(&outcome) {
        let at = created + secs(rng.gen_range(3600..=5 * DAY));
        if at <= w.now {
            f.rejected_at = Some(at);
            f.status = CaseStatus::Rejected;
        }
        return finish(f, w);
    }
    if accepted > w.now {
        return finish(f, w);
    }
    f.accepted_at = Some(accepted);
    f.status = CaseStatus::Accepted;
    if outcome >= 880 {
        // Still open: somewhere between accepted and resolved.
        f.status = [CaseStatus::Accepted, CaseStatus::Claimed, CaseStatus::InProgress, CaseStatus::Suspended]
            [rng.gen_range(0..4)];
        return finish(f, w);
    }
    // Closed within 1–20 days: 88 % by the due time, the rest late.
    let due = (due_at - created).num_seconds();
    let took = if rng.gen_bool(0.88) { rng.gen_range(DAY..=due) } else { rng.gen_range(due + 1..=20 * DAY) };
    let mut closed = created + secs(took);
    if is_petition {
        closed = closed.max(accepted + secs(rng.gen_range(3600..=2 * DAY)));
    }
    if closed > w.now {
        f.status = CaseStatus::InProgress;
        return finish(f, w);
    }
    let resolved = (closed - secs(rng.gen_range(600..=DAY))).max(accepted);
    f.apply(CaseEventKind::Resolved, resolved, CaseStatus::Resolved, None, w.window);
    f.apply(CaseEventKind::Closed, closed, CaseStatus::Closed, None, w.window);
    if rng.gen_bool(0.03) {
        // Reopened within days, and closed again.
        let reopened = closed + secs(rng.gen_range(3600..=5 * DAY));
        let again = reopened + secs(rng.gen_range(3600..=5 * DAY));
        if reopened > w.now {
            return finish(callback(rng, f, w), w);
        }
        f.apply(CaseEventKind::Reopened, reopened, CaseStatus::Accepted, None, w.window);
        if again > w.now {
            f.status = CaseStatus::InProgress;
            return finish(f, w);
        }
        let resolved = (again - secs(rng.gen_range(600..=DAY))).max(reopened);
        f.apply(CaseEventKind::Resolved, resolved, CaseStatus::Resolved, None, w.window);
        f.apply(CaseEventKind::Closed, again, CaseStatus::Closed, None, w.window);
    }
    finish(callback(rng, f, w), w)
}

/// A callback on 70 % of closed cases.
fn callback(rng: &mut ChaCha8Rng, mut f: CaseFacts, w: &World) -> CaseFacts {
    if rng.gen_bool(0.70) {
        let s = match rng.gen_range(0..100) {
            0..70 => Satisfaction::Satisfied,
            70..85 => Satisfaction::BasicallySatisfied,
            85..90 => Satisfaction::Unsatisfied,
            _ => Satisfaction::Unanswered,
        };
        let status = f.status;
        f.apply(CaseEventKind::CallbackRecorded, w.now, status, Some(s), w.window);
    }
    f
}

/// First-contact results whose window has ended are final.
fn finish(mut f: CaseFacts, w: &World) -> CaseFacts {
    f.mature(w.now, w.window);
    f
}

/// How many cases each community gets: `total` spread by seeded weights
/// between 0.5 and 1.5.
fn plan(total: u64, rng: &mut ChaCha8Rng) -> Vec<u64> {
    let weights: Vec<f64> = (0..ALL_COMMUNITIES).map(|_| rng.gen_range(0.5..1.5)).collect();
    let sum: f64 = weights.iter().sum();
    let mut out = Vec::with_capacity(ALL_COMMUNITIES);
    let (mut acc, mut given) = (0.0, 0u64);
    for w in weights {
        acc += w;
        let upto = ((total as f64) * acc / sum).round() as u64;
        let upto = upto.min(total);
        out.push(upto.saturating_sub(given));
        given = given.max(upto);
    }
    if let Some(last) = out.last_mut() {
        *last += total - given;
    }
    out
}

const DAY_CELLS: &str = "INSERT INTO kpi_cells (jurisdiction, day, net_open, tally, version, dirty) VALUES ";
const DAY_COLUMNS: usize = 6;
const MONTH_CELLS: &str = "INSERT INTO kpi_month_cells (jurisdiction, month, net_open, tally) VALUES ";
const MONTH_COLUMNS: usize = 4;

/// A multi-row INSERT of `rows` rows of `columns` placeholders each.
fn insert_sql(backend: DbBackend, head: &str, columns: usize, rows: usize) -> String {
    let mut sql = String::with_capacity(80 + rows * 40);
    sql.push_str(head);
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..columns {
            if c > 0 {
                sql.push_str(", ");
            }
            match backend {
                DbBackend::Postgres => sql.push_str(&format!("${}", r * columns + c + 1)),
                _ => sql.push('?'),
            }
        }
        sql.push(')');
    }
    sql
}

/// A statement for the writer, with the cells it writes.
struct Batch {
    stmt: Statement,
    cells: u64,
}

/// Collects cell rows into multi-row INSERTs for the writer.
struct Sink {
    backend: DbBackend,
    tx: mpsc::Sender<Batch>,
    full_sql: String,
    values: Vec<Value>,
    rows: usize,
    cells: u64,
    month_sql: String,
    month_values: Vec<Value>,
    month_rows: usize,
    month_cells: u64,
    facts: Vec<kpi_fact::ActiveModel>,
    fact_rows: u64,
}

impl Sink {
    fn send(&self, batch: Batch) -> anyhow::Result<()> {
        self.tx.blocking_send(batch).map_err(|_| anyhow::anyhow!("the database writer stopped"))
    }

    /// Writes a unit's day cells, and its month cells: each the sum of the
    /// month's day cells, as the fold keeps them.
    fn cells(&mut self, code: &str, days: &BTreeMap<NaiveDate, Tally>) -> anyhow::Result<()> {
        let mut months: BTreeMap<String, Tally> = BTreeMap::new();
        for (day, t) in days {
            if t.is_zero() {
                continue;
            }
            months.entry(gridwork_analytics::fold::month_of(*day)).or_default().add(t, 1);
            self.values.extend([
                Value::from(code),
                Value::from(day.to_string()),
                Value::from(t.created - t.ended),
                Value::from(serde_json::to_string(t)?),
                Value::from(1i64),
                Value::from(false),
            ]);
            self.rows += 1;
            self.cells += 1;
            if self.rows == ROWS_PER_INSERT {
                self.flush_cells()?;
            }
        }
        for (month, t) in months {
            self.month_values.extend([
                Value::from(code),
                Value::from(month),
                Value::from(t.created - t.ended),
                Value::from(serde_json::to_string(&t)?),
            ]);
            self.month_rows += 1;
            self.month_cells += 1;
            if self.month_rows == ROWS_PER_INSERT {
                self.flush_month_cells()?;
            }
        }
        Ok(())
    }

    fn flush_cells(&mut self) -> anyhow::Result<()> {
        if self.rows == 0 {
            return Ok(());
        }
        let sql = if self.rows == ROWS_PER_INSERT {
            self.full_sql.clone()
        } else {
            insert_sql(self.backend, DAY_CELLS, DAY_COLUMNS, self.rows)
        };
        let stmt = Statement::from_sql_and_values(self.backend, sql, std::mem::take(&mut self.values));
        let cells = self.rows as u64;
        self.rows = 0;
        self.send(Batch { stmt, cells })
    }

    fn flush_month_cells(&mut self) -> anyhow::Result<()> {
        if self.month_rows == 0 {
            return Ok(());
        }
        let sql = if self.month_rows == ROWS_PER_INSERT {
            self.month_sql.clone()
        } else {
            insert_sql(self.backend, MONTH_CELLS, MONTH_COLUMNS, self.month_rows)
        };
        let stmt = Statement::from_sql_and_values(self.backend, sql, std::mem::take(&mut self.month_values));
        self.month_rows = 0;
        self.send(Batch { stmt, cells: 0 })
    }

    fn fact(&mut self, f: &CaseFacts, window: Duration) -> anyhow::Result<()> {
        let row = gridwork_analytics::fold::row_of(f, 1, window).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        self.facts.push(row.into_active_model().reset_all());
        self.fact_rows += 1;
        if self.facts.len() == FACTS_PER_INSERT {
            self.flush_facts()?;
        }
        Ok(())
    }

    fn flush_facts(&mut self) -> anyhow::Result<()> {
        if self.facts.is_empty() {
            return Ok(());
        }
        let stmt = kpi_fact::Entity::insert_many(std::mem::take(&mut self.facts)).build(self.backend);
        self.send(Batch { stmt, cells: 0 })
    }
}

/// Adds every day of `from` into `into`.
fn fold_into(into: &mut BTreeMap<NaiveDate, Tally>, from: &BTreeMap<NaiveDate, Tally>) {
    for (day, t) in from {
        into.entry(*day).or_default().add(t, 1);
    }
}

struct Generated {
    cells: u64,
    month_cells: u64,
    facts: u64,
}

/// Progress shared between the generator and the writer.
#[derive(Default)]
struct Progress {
    cases: AtomicU64,
    cells_written: AtomicU64,
}

/// Generates every case, community by community, and sends the cells (and
/// the peer county's facts) to the writer.
fn generate(
    args_cases: u64,
    seed: u64,
    w: World,
    mut sink: Sink,
    progress: &Progress,
    started: Instant,
) -> anyhow::Result<Generated> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let counts = plan(args_cases, &mut rng);
    let step = (args_cases / 20).max(1);
    let mut next_report = step;
    let mut done = 0u64;
    let mut province: BTreeMap<NaiveDate, Tally> = BTreeMap::new();
    let mut index = 0usize;
    for c in 0..CITIES {
        let city = city_code(c);
        let mut city_days: BTreeMap<NaiveDate, Tally> = BTreeMap::new();
        for k in 0..COUNTIES {
            let county = county_code(c, k);
            let peer = county == PEER_COUNTY;
            let mut county_days: BTreeMap<NaiveDate, Tally> = BTreeMap::new();
            for s in 0..STREETS {
                let street = child_code(&county, s);
                let mut street_days: BTreeMap<NaiveDate, Tally> = BTreeMap::new();
                for m in 0..COMMUNITIES {
                    let community = child_code(&street, m);
                    let grids = (0..GRIDS)
                        .map(|g| Hierarchy::from_grid_code(&child_code(&community, g)))
                        .collect::<Result<Vec<_>, _>>()?;
                    let mut days: BTreeMap<NaiveDate, Tally> = BTreeMap::new();
                    let n = counts.get(index).copied().unwrap_or(0);
                    index += 1;
                    for _ in 0..n {
                        let h = &grids[rng.gen_range(0..GRIDS)];
                        let f = synth_case(&mut rng, &w, h);
                        for (day, t) in f.contributions() {
                            days.entry(day).or_default().add(&t, 1);
                        }
                        if peer {
                            sink.fact(&f, w.window)?;
                        }
                    }
                    done += n;
                    progress.cases.store(done, Ordering::Relaxed);
                    sink.cells(&community, &days)?;
                    fold_into(&mut street_days, &days);
                    if done >= next_report {
                        say(&format!(
                            "{done}/{args_cases} cases ({:.0} %), {} cells written, {:.1} s",
                            done as f64 * 100.0 / args_cases.max(1) as f64,
                            progress.cells_written.load(Ordering::Relaxed),
                            started.elapsed().as_secs_f64()
                        ));
                        while next_report <= done {
                            next_report += step;
                        }
                    }
                }
                sink.cells(&street, &street_days)?;
                fold_into(&mut county_days, &street_days);
            }
            sink.cells(&county, &county_days)?;
            fold_into(&mut city_days, &county_days);
        }
        sink.cells(&city, &city_days)?;
        fold_into(&mut province, &city_days);
    }
    sink.cells(PROVINCE, &province)?;
    sink.flush_cells()?;
    sink.flush_month_cells()?;
    sink.flush_facts()?;
    Ok(Generated { cells: sink.cells, month_cells: sink.month_cells, facts: sink.fact_rows })
}

/// Executes the generator's statements in large transactions.
async fn write_all(db: &DatabaseConnection, mut rx: mpsc::Receiver<Batch>, progress: &Progress) -> anyhow::Result<()> {
    let mut txn = db.begin().await?;
    let mut in_txn = 0usize;
    while let Some(b) = rx.recv().await {
        txn.execute(b.stmt).await?;
        progress.cells_written.fetch_add(b.cells, Ordering::Relaxed);
        in_txn += 1;
        if in_txn >= STATEMENTS_PER_TXN {
            txn.commit().await?;
            txn = db.begin().await?;
            in_txn = 0;
        }
    }
    txn.commit().await?;
    Ok(())
}

async fn scalar(db: &DatabaseConnection, sql: &str) -> anyhow::Result<Option<i64>> {
    let row = db.query_one(Statement::from_string(db.get_database_backend(), sql)).await?;
    Ok(row.and_then(|r| r.try_get::<i64>("", "n").ok()))
}

/// Latency figures of one (level, query shape).
struct Latency {
    level: String,
    shape: &'static str,
    rows: f64,
    p50: f64,
    p95: f64,
    p99: f64,
    max: f64,
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    percentile(&v, 0.5)
}

/// A random jurisdiction of `level` (grids: in the peer county only).
fn random_code(rng: &mut ChaCha8Rng, level: Level) -> String {
    let (c, k) = if level == Level::Grid { (0, 0) } else { (rng.gen_range(0..CITIES), rng.gen_range(0..COUNTIES)) };
    let street = child_code(&county_code(c, k), rng.gen_range(0..STREETS));
    let community = child_code(&street, rng.gen_range(0..COMMUNITIES));
    match level {
        Level::Province => PROVINCE.to_owned(),
        Level::City => city_code(c),
        Level::County => county_code(c, k),
        Level::Street => street,
        Level::Community => community,
        Level::Grid => child_code(&community, rng.gen_range(0..GRIDS)),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    OneDay,
    MonthByDay,
    YearByMonth,
    /// The same queries as `YearByMonth`, with partial months always from
    /// their day tallies ([`query::Partials::DayCells`]): the path before
    /// a partial month could be read as its month minus the days outside.
    YearByMonthPartialDays,
    /// The same queries as `YearByMonth`, from the day tallies alone
    /// ([`query::day_rows`]): the path before month tallies, for comparison.
    YearByMonthFromDays,
}

impl Shape {
    const ALL: [Shape; 5] = [
        Shape::OneDay,
        Shape::MonthByDay,
        Shape::YearByMonth,
        Shape::YearByMonthPartialDays,
        Shape::YearByMonthFromDays,
    ];
    fn label(self) -> &'static str {
        match self {
            Shape::OneDay => "one day",
            Shape::MonthByDay => "30 days by day",
            Shape::YearByMonth => "whole range by month",
            Shape::YearByMonthPartialDays => "whole range by month, partial months from day tallies",
            Shape::YearByMonthFromDays => "whole range by month, day tallies only",
        }
    }
    fn range(self, rng: &mut ChaCha8Rng, w: &World) -> (Period, NaiveDate, NaiveDate) {
        let span = i64::from(w.days);
        match self {
            Shape::OneDay => {
                let d = w.first_day + Duration::days(rng.gen_range(0..span));
                (Period::Day, d, d)
            }
            Shape::MonthByDay => {
                let d = w.first_day + Duration::days(rng.gen_range(0..=span - 30));
                (Period::Day, d, d + Duration::days(29))
            }
            Shape::YearByMonth | Shape::YearByMonthPartialDays | Shape::YearByMonthFromDays => {
                (Period::Month, w.first_day, w.last_day)
            }
        }
    }
}

async fn time_queries(
    db: &DatabaseConnection,
    rng: &mut ChaCha8Rng,
    w: &World,
    level: Level,
    shape: Shape,
    n: usize,
) -> anyhow::Result<Latency> {
    let mut lat = Vec::with_capacity(n);
    let mut rows = 0usize;
    for _ in 0..n {
        let code = random_code(rng, level);
        let (period, from, to) = shape.range(rng, w);
        let t = Instant::now();
        let out = match shape {
            Shape::YearByMonthFromDays => query::day_rows(db, &code, period, from, to).await?,
            Shape::YearByMonthPartialDays => {
                query::rows_reading(db, &code, period, from, to, query::Partials::DayCells).await?
            }
            _ => query::rows(db, &code, period, from, to).await?,
        };
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
        rows += out.len();
    }
    lat.sort_by(f64::total_cmp);
    Ok(Latency {
        level: level.as_str().to_owned(),
        shape: shape.label(),
        rows: rows as f64 / n.max(1) as f64,
        p50: percentile(&lat, 0.5),
        p95: percentile(&lat, 0.95),
        p99: percentile(&lat, 0.99),
        max: lat.last().copied().unwrap_or(0.0),
    })
}

/// The naive way: every fact under `code`, then [`kpi::aggregate`].
async fn from_facts(
    db: &DatabaseConnection,
    code: &str,
    period: Period,
    from: NaiveDate,
    to: NaiveDate,
) -> anyhow::Result<(Vec<KpiRow>, usize)> {
    let prefix = gridwork_domain::codes::significant_prefix(code)?;
    let rows = kpi_fact::Entity::find().filter(kpi_fact::Column::Place.starts_with(prefix)).all(db).await?;
    let mut facts: Vec<CaseFacts> = Vec::with_capacity(rows.len());
    for r in &rows {
        facts.push(serde_json::from_str(&r.facts)?);
    }
    Ok((kpi::aggregate(&facts, period, from, to), facts.len()))
}

/// Both paths must give identical rows.
async fn check_same(
    db: &DatabaseConnection,
    code: &str,
    period: Period,
    from: NaiveDate,
    to: NaiveDate,
) -> anyhow::Result<usize> {
    let cells = query::rows(db, code, period, from, to).await?;
    let (facts, _) = from_facts(db, code, period, from, to).await?;
    if cells != facts {
        let first = cells.iter().zip(&facts).position(|(a, b)| a != b).unwrap_or(cells.len().min(facts.len()));
        anyhow::bail!(
            "KPI rows of {code} ({} {from}..{to}) differ between the day tallies and the facts: {} vs {} rows, first \
             difference at row {first}:\n  cells: {:?}\n  facts: {:?}",
            period.as_str(),
            cells.len(),
            facts.len(),
            cells.get(first),
            facts.get(first)
        );
    }
    Ok(cells.len())
}

/// A random range for the month-tally check: month-aligned at both ends,
/// at one end, or at neither; sometimes inside one month.
fn random_range(rng: &mut ChaCha8Rng, w: &World) -> (NaiveDate, NaiveDate) {
    let span = i64::from(w.days);
    let mut from = w.first_day + Duration::days(rng.gen_range(0..span));
    let mut to = from + Duration::days(rng.gen_range(0..span));
    if rng.gen_bool(0.5) {
        from = Period::Month.start_of(from).max(w.first_day);
    }
    if rng.gen_bool(0.5) {
        to = Period::Month.end_of(Period::Month.start_of(to));
    }
    (from, to.min(w.last_day).max(from))
}

/// The month tallies' answers ([`query::rows`]) against the day tallies'
/// ([`query::day_rows`]) on `n` random jurisdictions (community to
/// province), periods (month, quarter, year) and ranges. Returns the rows
/// compared and how many ranges had a whole month.
async fn check_months(
    db: &DatabaseConnection,
    rng: &mut ChaCha8Rng,
    w: &World,
    n: usize,
) -> anyhow::Result<(usize, usize)> {
    let levels = [Level::Community, Level::Street, Level::County, Level::City, Level::Province];
    let periods = [Period::Month, Period::Quarter, Period::Year];
    let (mut compared, mut with_whole) = (0, 0);
    for i in 0..n {
        let level = levels[rng.gen_range(0..levels.len())];
        let code = random_code(rng, level);
        let period = periods[rng.gen_range(0..periods.len())];
        // The first query of each batch is the bench's own shape.
        let (from, to) = if i % 50 == 0 { (w.first_day, w.last_day) } else { random_range(rng, w) };
        with_whole += usize::from(query::whole_months(from, to).is_some());
        let months = query::rows(db, &code, period, from, to).await?;
        let days = query::day_rows(db, &code, period, from, to).await?;
        if months != days {
            let first = months.iter().zip(&days).position(|(a, b)| a != b).unwrap_or(months.len().min(days.len()));
            anyhow::bail!(
                "KPI rows of {code} ({} {from}..{to}) differ between the month and the day tallies: {} vs {} rows, \
                 first difference at row {first}:\n  months: {:?}\n  days: {:?}",
                period.as_str(),
                months.len(),
                days.len(),
                months.get(first),
                days.get(first)
            );
        }
        compared += months.len();
    }
    Ok((compared, with_whole))
}

fn human_bytes(n: i64) -> String {
    let n = n as f64;
    if n >= 1e9 {
        format!("{:.2} GB", n / 1e9)
    } else {
        format!("{:.1} MB", n / 1e6)
    }
}

pub async fn run(args: KpiBenchArgs) -> anyhow::Result<()> {
    if args.days < 30 {
        anyhow::bail!("--days must be at least 30");
    }
    if args.cases == 0 || args.queries == 0 {
        anyhow::bail!("--cases and --queries must be at least 1");
    }
    let (url, scratch): (String, Option<PathBuf>) = match &args.database_url {
        Some(u) => (u.clone(), None),
        None => {
            let dir = std::env::temp_dir().join(format!("gridwork-kpi-bench-{}", std::process::id()));
            std::fs::create_dir_all(&dir)?;
            let file = dir.join("kpi.db");
            if file.exists() {
                std::fs::remove_file(&file)?;
            }
            (format!("sqlite://{}", file.display()), Some(dir))
        }
    };
    let result = bench(&args, &url, scratch.as_ref().map(|d| d.join("kpi.db"))).await;
    if let Some(dir) = scratch {
        if args.keep {
            say(&format!("database kept in {}", dir.display()));
        } else if let Err(e) = std::fs::remove_dir_all(&dir) {
            say(&format!("could not remove {}: {e}", dir.display()));
        }
    }
    result
}

async fn bench(args: &KpiBenchArgs, url: &str, sqlite_file: Option<PathBuf>) -> anyhow::Result<()> {
    let db = gridwork_storage::connect(url, 4).await?;
    let backend = db.get_database_backend();
    gridwork_storage::migrate(&db).await?;
    for table in ["kpi_cells", "kpi_month_cells", "kpi_case_facts"] {
        if scalar(&db, &format!("SELECT 1 AS n FROM {table} LIMIT 1")).await?.is_some() {
            anyhow::bail!(
                "{table} in {url} already has rows: the bench only runs on an empty database (it would mix its \
                 synthetic cases with real ones); point --database-url at a fresh database"
            );
        }
    }
    let now = Utc::now();
    let today = kpi::china_day(now);
    let last_day = today - Duration::days(1);
    let w = World {
        now,
        first_day: last_day - Duration::days(i64::from(args.days) - 1),
        last_day,
        days: args.days,
        window: Duration::days(30),
    };
    let what = if backend == DbBackend::Postgres { "postgresql" } else { "sqlite" };
    say(&format!(
        "{} cases over {} days ({} .. {}), seed {}, into {what} {url}",
        args.cases, args.days, w.first_day, w.last_day, args.seed
    ));

    // Build: the generator thread folds cases into cells; this task writes.
    let started = Instant::now();
    let progress = Arc::new(Progress::default());
    let (tx, rx) = mpsc::channel::<Batch>(32);
    let sink = Sink {
        backend,
        tx,
        full_sql: insert_sql(backend, DAY_CELLS, DAY_COLUMNS, ROWS_PER_INSERT),
        values: Vec::with_capacity(ROWS_PER_INSERT * DAY_COLUMNS),
        rows: 0,
        cells: 0,
        month_sql: insert_sql(backend, MONTH_CELLS, MONTH_COLUMNS, ROWS_PER_INSERT),
        month_values: Vec::with_capacity(ROWS_PER_INSERT * MONTH_COLUMNS),
        month_rows: 0,
        month_cells: 0,
        facts: Vec::new(),
        fact_rows: 0,
    };
    let gen_progress = progress.clone();
    let (cases, seed) = (args.cases, args.seed);
    let generator = std::thread::spawn(move || generate(cases, seed, w, sink, &gen_progress, started));
    let written = write_all(&db, rx, &progress).await;
    let generated = generator.join().map_err(|_| anyhow::anyhow!("the generator thread panicked"))?;
    written?;
    let generated = generated?;
    let load_s = started.elapsed().as_secs_f64();
    say(&format!(
        "{} cells, {} month cells and {} fact rows written in {load_s:.1} s; ANALYZE …",
        generated.cells, generated.month_cells, generated.facts
    ));
    db.execute_unprepared("ANALYZE").await?;
    let build_s = started.elapsed().as_secs_f64();

    // Size on disk.
    let (cells_bytes, month_bytes, db_bytes) = match backend {
        DbBackend::Postgres => (
            scalar(&db, "SELECT CAST(pg_total_relation_size('kpi_cells') AS BIGINT) AS n").await?,
            scalar(&db, "SELECT CAST(pg_total_relation_size('kpi_month_cells') AS BIGINT) AS n").await?,
            scalar(&db, "SELECT CAST(pg_database_size(current_database()) AS BIGINT) AS n").await?,
        ),
        _ => {
            db.execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)").await?;
            let table_bytes = |t: &str| {
                format!(
                    "SELECT SUM(pgsize) AS n FROM dbstat WHERE name IN \
                     (SELECT name FROM sqlite_master WHERE tbl_name = '{t}')"
                )
            };
            let cells = scalar(&db, &table_bytes("kpi_cells")).await.unwrap_or(None);
            let months = scalar(&db, &table_bytes("kpi_month_cells")).await.unwrap_or(None);
            let file = match &sqlite_file {
                Some(f) => std::fs::metadata(f).ok().map(|m| m.len() as i64),
                None => url.strip_prefix("sqlite://").and_then(|p| std::fs::metadata(p).ok()).map(|m| m.len() as i64),
            };
            (cells, months, file)
        }
    };

    // Correctness at scale: the peer county, one street and one community
    // in it, from the cells and from the facts.
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed ^ 0x6b70_6962_656e_6368);
    let street = child_code(PEER_COUNTY, rng.gen_range(0..STREETS));
    let community = child_code(&street, rng.gen_range(0..COMMUNITIES));
    let month_from = w.first_day + Duration::days(rng.gen_range(0..=i64::from(w.days) - 30));
    let month_to = month_from + Duration::days(29);
    let mut checked = 0;
    for code in [PEER_COUNTY, street.as_str(), community.as_str()] {
        checked += check_same(&db, code, Period::Month, w.first_day, w.last_day).await?;
        checked += check_same(&db, code, Period::Day, month_from, month_to).await?;
    }
    say(&format!(
        "day tallies and facts agree on {checked} KPI rows ({PEER_COUNTY}, {street}, {community}; by month and by day)"
    ));
    let (month_rows, with_whole) = check_months(&db, &mut rng, &w, args.queries).await?;
    say(&format!(
        "month and day tallies agree on {month_rows} KPI rows ({} random queries by month, quarter or year, \
         {with_whole} with a whole month)",
        args.queries
    ));

    // Latency per level and shape.
    let mut table = Vec::new();
    for level in [Level::Community, Level::Street, Level::County, Level::City, Level::Province, Level::Grid] {
        for shape in Shape::ALL {
            let l = time_queries(&db, &mut rng, &w, level, shape, args.queries).await?;
            say(&format!(
                "{} / {}: p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                l.level, l.shape, l.p50, l.p95, l.p99, l.max
            ));
            table.push(l);
        }
    }

    // Peer: the county's year by month, cells against facts.
    let (mut cells_ms, mut days_ms, mut facts_ms) = (Vec::new(), Vec::new(), Vec::new());
    let mut fact_count = 0;
    for _ in 0..PEER_RUNS {
        let t = Instant::now();
        let a = query::rows(&db, PEER_COUNTY, Period::Month, w.first_day, w.last_day).await?;
        cells_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        let d = query::day_rows(&db, PEER_COUNTY, Period::Month, w.first_day, w.last_day).await?;
        days_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        if a != d {
            anyhow::bail!("KPI rows of {PEER_COUNTY} differ between the month and the day tallies");
        }
        let t = Instant::now();
        let (b, n) = from_facts(&db, PEER_COUNTY, Period::Month, w.first_day, w.last_day).await?;
        facts_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        fact_count = n;
        if a != b {
            anyhow::bail!("KPI rows of {PEER_COUNTY} differ between the day tallies and the facts");
        }
    }
    let (cells_med, days_med, facts_med) = (median(cells_ms), median(days_ms), median(facts_ms));

    // Report.
    let size = |b: Option<i64>| b.map(human_bytes).unwrap_or_else(|| "?".into());
    println!(
        "### kpi bench: {} cases, {} days ({} .. {}), seed {}, {what}\n",
        args.cases, args.days, w.first_day, w.last_day, args.seed
    );
    println!(
        "| cases | cells | month cells | kpi_cells on disk | kpi_month_cells on disk | database on disk | load s | \
         build s (with ANALYZE) |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {} | {} | {} | {} | {} | {} | {load_s:.0} | {build_s:.0} |\n",
        args.cases,
        generated.cells,
        generated.month_cells,
        size(cells_bytes),
        size(month_bytes),
        size(db_bytes)
    );
    println!("Query latency, `gridwork_analytics::query::rows` ({} random queries each):\n", args.queries);
    println!("| level | query | rows (avg) | p50 ms | p95 ms | p99 ms | max ms |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    for l in &table {
        let level =
            if l.level == "grid" { format!("grid¹ (from {} facts)", generated.facts) } else { l.level.clone() };
        println!(
            "| {level} | {} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} |",
            l.shape, l.rows, l.p50, l.p95, l.p99, l.max
        );
    }
    println!(
        "\n¹ grids of county {PEER_COUNTY} only, answered from kpi_case_facts, which the bench fills for that county \
         alone ({} rows), not for all {} cases.\n",
        generated.facts, args.cases
    );
    println!(
        "Peer, county {PEER_COUNTY} ({fact_count} cases), {} .. {} by month, median of {PEER_RUNS} runs, identical rows:\n",
        w.first_day, w.last_day
    );
    println!("| path | median ms |");
    println!("|---|---:|");
    println!("| month + day tallies (`query::rows`) | {cells_med:.2} |");
    println!("| day tallies only (`query::day_rows`) | {days_med:.2} |");
    println!("| facts (read {fact_count} `kpi_case_facts` rows + `kpi::aggregate`) | {facts_med:.2} |");
    println!("| ratio facts ÷ `query::rows` | **{:.0}×** |", facts_med / cells_med.max(1e-9));
    println!("| ratio facts ÷ day tallies only | {:.0}× |", facts_med / days_med.max(1e-9));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world() -> World {
        let last_day = NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
        World {
            now: day_start(last_day + Duration::days(1)) + Duration::hours(10),
            first_day: last_day - Duration::days(364),
            last_day,
            days: 365,
            window: Duration::days(30),
        }
    }

    #[test]
    fn plan_spreads_every_case() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for total in [1, 7, 34_560, 1_000_003] {
            let p = plan(total, &mut rng);
            assert_eq!(p.len(), ALL_COMMUNITIES);
            assert_eq!(p.iter().sum::<u64>(), total);
        }
    }

    #[test]
    fn codes_are_valid() {
        use gridwork_domain::codes::level_of;
        assert_eq!(level_of(&city_code(15)), Ok(Level::City));
        assert_eq!(city_code(9), "371000");
        assert_eq!(level_of(&county_code(15, 8)), Ok(Level::County));
        let grid = child_code(&child_code(&child_code(&county_code(0, 0), 11), 19), 4);
        assert_eq!(grid, "370101012020005");
        let h = Hierarchy::from_grid_code(&grid).unwrap();
        assert_eq!((h.city.as_str(), h.province.as_str()), ("370100", PROVINCE));
    }

    #[test]
    fn the_mix_is_realistic_and_deterministic() {
        let w = world();
        let h = Hierarchy::from_grid_code("370101001001001").unwrap();
        let gen = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            (0..20_000).map(|_| synth_case(&mut rng, &w, &h)).collect::<Vec<_>>()
        };
        let cases = gen(3);
        assert_eq!(cases, gen(3));
        let share = |p: &dyn Fn(&CaseFacts) -> bool| cases.iter().filter(|f| p(f)).count() as f64 / 20_000.0;
        let closed = share(&|f| f.status == CaseStatus::Closed);
        assert!((0.75..0.86).contains(&closed), "closed {closed}");
        let rejected = share(&|f| f.status == CaseStatus::Rejected);
        assert!((0.02..0.04).contains(&rejected), "rejected {rejected}");
        let petitions = share(&|f| f.petition.is_some());
        assert!((0.08..0.12).contains(&petitions), "petitions {petitions}");
        assert!(share(&|f| f.reopened) > 0.01);
        assert!(share(&|f| f.transferred_up) > 0.01);
        assert!(share(&|f| f.closed_on_time() == Some(false)) > 0.05);
        for f in &cases {
            assert!(f.created_at <= w.now);
            for t in [f.accepted_at, f.rejected_at, f.resolved_at, f.closed_at].into_iter().flatten() {
                assert!(t >= f.created_at && t <= w.now, "{f:?}");
            }
        }
        let row = kpi::aggregate(&cases, Period::Year, w.first_day, w.last_day);
        assert!(!row.is_empty());
    }
}
