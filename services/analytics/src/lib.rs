//! **analytics** — governance KPIs from the case lifecycle alone.
//!
//! Folds every case-lifecycle event into one fact row per case (so KPIs can
//! be recomputed from the event log when a definition changes) and, by
//! difference, into day tallies per jurisdiction ([`fold`]); answers
//! `GET /v1/kpis` and `GET /v1/public/kpis` from them ([`query`]); publishes
//! the compacted KPI snapshot topic ([`snapshot`]); exports ledgers as CSV
//! and XLSX ([`ledger`]).

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use chrono::{Datelike, Duration, NaiveDate, Utc};
use gridwork_domain::auth::Role;
use gridwork_domain::codes;
use gridwork_domain::kpi::{self, KpiRow, Period};
use gridwork_platform::auth::Caller;
use gridwork_platform::error::responses::{BadRequest, Forbidden, Unauthorized, Unavailable};
use gridwork_platform::pipeline;
use gridwork_platform::routes::{Access, Method, Route, KPI_READERS};
use gridwork_platform::{ApiError, Application, Config, Context, Routes, Service};
use sea_orm::DatabaseConnection;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use utoipa::{IntoParams, ToSchema};

pub mod fold;
pub mod ledger;
pub mod openapi;
pub mod query;
pub mod schema;
pub mod snapshot;

pub use fold::recompute;

pub const GROUP: &str = "analytics";
/// The producer name of analytics' outbox (KPI snapshots).
pub const PRODUCER: &str = "analytics";

pub struct State {
    pub db: DatabaseConnection,
    pub window: Duration,
    /// Public KPIs suppress counts and rates resting on fewer cases.
    pub min_cell: u64,
    /// Published months by (province prefix, first day), for a minute.
    pub published: std::sync::Mutex<std::collections::HashMap<(String, NaiveDate), (std::time::Instant, PublicTable)>>,
}

/// A month's published rows of every unit of a province, by jurisdiction.
pub type PublicTable = Arc<std::collections::BTreeMap<String, serde_json::Value>>;

/// How long a computed public month is served before it is computed again
/// (the public response says `max-age=60` too).
const PUBLISHED_FOR: std::time::Duration = std::time::Duration::from_secs(60);

/// `GET /v1/kpis`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct KpiQuery {
    /// Administrative code (grid … province; 6, 9, 12 or 15 digits);
    /// default: the caller's scope.
    #[serde(default)]
    #[param(pattern = "^([0-9]{6}|[0-9]{9}|[0-9]{12}|[0-9]{15})$")]
    pub jurisdiction: Option<String>,
    /// The bucket rows are summed by (default day).
    #[serde(default)]
    #[param(value_type = Option<schema::PeriodName>, inline)]
    pub period: Option<String>,
    /// First day (China time), YYYY-MM-DD; default today. At most 3,700
    /// days before `to`, and not after it.
    #[serde(default)]
    pub from: Option<NaiveDate>,
    /// Last day (China time), YYYY-MM-DD; default today.
    #[serde(default)]
    pub to: Option<NaiveDate>,
}

/// `GET /v1/public/kpis`: the same query as [`KpiQuery`], narrowed to what
/// is published.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PublicKpiQuery {
    /// A street (9 digits), county, city or province (6 digits).
    #[serde(default)]
    #[param(required, pattern = "^([0-9]{6}|[0-9]{9})$")]
    pub jurisdiction: Option<String>,
    /// `month`, the only period published (the default).
    #[serde(default)]
    #[param(value_type = Option<schema::MonthOnly>, inline)]
    pub period: Option<String>,
    /// The first day of a month (default: the first day of last month).
    #[serde(default)]
    #[param(pattern = "^[0-9]{4}-(0[1-9]|1[0-2])-01$")]
    pub from: Option<NaiveDate>,
    /// The last day of a month before the current one (China time), not
    /// before `from`, at most 3,700 days after it (default: the last day
    /// of last month).
    #[serde(default)]
    #[param(pattern = "^[0-9]{4}-((0[13578]|1[02])-31|(0[469]|11)-30|02-2[89])$")]
    pub to: Option<NaiveDate>,
}

impl From<PublicKpiQuery> for KpiQuery {
    fn from(q: PublicKpiQuery) -> Self {
        KpiQuery { jurisdiction: q.jurisdiction, period: q.period, from: q.from, to: q.to }
    }
}

/// The KPIs of a jurisdiction: one row per period bucket with activity.
#[derive(Debug, Serialize, ToSchema)]
pub struct KpisOut {
    pub jurisdiction: String,
    #[schema(value_type = schema::LevelName)]
    pub level: codes::Level,
    #[schema(value_type = schema::PeriodName)]
    pub period: &'static str,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub computed_at: chrono::DateTime<Utc>,
    /// The observation window of first-contact resolution (days).
    pub fcr_window_days: i64,
    #[schema(value_type = Vec<schema::KpiRowSchema>)]
    pub rows: Vec<KpiRow>,
}

/// The published KPIs of a jurisdiction (评价结果公开): one row per whole,
/// completed calendar month with activity, small cells withheld.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublicKpisOut {
    pub jurisdiction: String,
    #[schema(value_type = schema::LevelName)]
    pub level: codes::Level,
    #[schema(value_type = schema::MonthOnly)]
    pub period: &'static str,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub computed_at: chrono::DateTime<Utc>,
    /// The observation window of first-contact resolution (days).
    pub fcr_window_days: i64,
    #[schema(value_type = Vec<schema::PublicKpiRowSchema>)]
    pub rows: Vec<serde_json::Value>,
    /// Counts below this are withheld, with what would give them away.
    pub min_cell: u64,
}

const MAX_DAYS: i64 = 3700;

/// The gauges' KPI names and values of a published row: what publication
/// withheld and rates without a denominator are left out.
fn gauge_values(row: &serde_json::Value) -> Vec<(&'static str, f64)> {
    let mut out = Vec::new();
    for name in ["volume", "closed", "backlog", "petitions", "callbacks_unanswered", "median_hours_to_close"] {
        if let Some(v) = row[name].as_f64() {
            out.push((name, v));
        }
    }
    for name in [
        "on_time_close_out",
        "on_the_spot_resolution",
        "on_time_acceptance",
        "satisfaction",
        "participation",
        "repeat_petition_rate",
        "escalation_rate",
        "transfer_up_rate",
        "first_contact_resolution",
        "first_contact_resolution_provisional",
    ] {
        if let Some(rate) = row[name]["rate"].as_f64() {
            out.push((name, rate));
        }
    }
    out
}

/// Prometheus gauges of the current month (China time) for every county,
/// city and province with cases: `gridwork_kpi_current_month{jurisdiction,
/// kpi}`, withheld by the rule of the public KPIs ([`kpi::public_table`]
/// over the counties, cities and provinces), so small cells are not
/// exported.
pub async fn refresh_gauges(state: &State, gauges: &prometheus::GaugeVec) -> Result<usize, ApiError> {
    let today = kpi::china_day(Utc::now());
    let first = today.with_day(1).unwrap_or(today);
    let mut rows = query::unit_rows(&state.db, "", Period::Month, first, today).await?;
    // Streets are not exported: the table is the units that are.
    rows.retain(|code, _| code.len() == 6);
    let table = kpi::public_table(&rows, state.min_cell);
    gauges.reset();
    for (code, row) in &table {
        for (name, v) in gauge_values(row) {
            gauges.with_label_values(&[code.as_str(), name]).set(v);
        }
    }
    Ok(table.len())
}

/// The KPI rows of `jurisdiction` for the query's period and range.
pub fn period_and_range(
    period: Option<&str>,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> Result<(Period, NaiveDate, NaiveDate), ApiError> {
    let period = match period {
        None => Period::Day,
        Some(p) => Period::parse(p).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_period",
                format!("unknown period {p:?}: day, week, month, quarter or year"),
                "统计周期无效",
            )
            .with_field("period")
        })?,
    };
    let today = kpi::china_day(Utc::now());
    let from = from.unwrap_or(today);
    let to = to.unwrap_or(today);
    if to < from || (to - from).num_days() > MAX_DAYS {
        return Err(ApiError::bad_request(
            "invalid_range",
            format!("need from <= to, at most {MAX_DAYS} days apart"),
            "统计区间无效",
        )
        .with_field("to"));
    }
    Ok((period, from, to))
}

/// The KPI rows of `jurisdiction` for the query's period and range.
async fn compute(state: &State, jurisdiction: &str, q: &KpiQuery) -> Result<KpisOut, ApiError> {
    let level = codes::level_of(jurisdiction).map_err(|e| {
        ApiError::bad_request("invalid_jurisdiction", e.to_string(), "辖区代码无效").with_field("jurisdiction")
    })?;
    let (period, from, to) = period_and_range(q.period.as_deref(), q.from, q.to)?;
    let rows = query::rows(&state.db, jurisdiction, period, from, to).await?;
    Ok(KpisOut {
        jurisdiction: jurisdiction.to_owned(),
        level,
        period: period.as_str(),
        from,
        to,
        computed_at: Utc::now(),
        fcr_window_days: state.window.num_days(),
        rows,
    })
}

/// The KPIs of a jurisdiction in the caller's scope, by period, from the
/// day tallies (communities and above) or the cases' facts (a grid).
#[utoipa::path(get, path = "/v1/kpis", tag = "kpis", operation_id = "kpis", params(KpiQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "One row per period bucket with activity", body = KpisOut),
        BadRequest, Unauthorized, Forbidden, Unavailable,
    ))]
pub async fn kpis(state: web::Data<State>, caller: Caller, q: web::Query<KpiQuery>) -> Result<HttpResponse, ApiError> {
    let actor = caller.0;
    if !matches!(actor.role, Role::Analyst | Role::Dispatcher | Role::Admin) {
        return Err(ApiError::forbidden("KPIs are for analysts, dispatchers and admins"));
    }
    let jurisdiction = q.jurisdiction.clone().unwrap_or_else(|| actor.scope.clone());
    codes::level_of(&jurisdiction).map_err(|e| {
        ApiError::bad_request("invalid_jurisdiction", e.to_string(), "辖区代码无效").with_field("jurisdiction")
    })?;
    if !actor.covers(&jurisdiction) {
        return Err(ApiError::forbidden("that jurisdiction is outside your scope"));
    }
    Ok(HttpResponse::build(StatusCode::OK).json(compute(&state, &jurisdiction, &q).await?))
}

/// `GET /v1/public/kpis` (no token): the published evaluation results
/// (评价结果公开) of a street, county, city or province, by whole completed
/// calendar month. No personal data; small cells and the figures that would
/// give them away by difference are withheld (`kpi.public_min_cell`,
/// [`kpi::public_table`]). Only whole, completed months are published: the
/// running month grows day by day, and ranges that nest (a month and its
/// days, a year and its months) difference into each other.
#[utoipa::path(get, path = "/v1/public/kpis", tag = "public", operation_id = "public_kpis", params(PublicKpiQuery),
    responses(
        (status = 200, description = "The published months (served for up to a minute: `Cache-Control: public, \
            max-age=60`)", body = PublicKpisOut,
            headers(("Cache-Control" = String, description = "public, max-age=60"))),
        (status = 400, description = "Invalid request: a jurisdiction below a street (`jurisdiction_too_fine`), \
            a period other than month, or a range that is not whole, completed months (`invalid_range`)",
            body = ApiError),
        Unavailable,
    ))]
pub async fn public_kpis(state: web::Data<State>, q: web::Query<PublicKpiQuery>) -> Result<HttpResponse, ApiError> {
    let q: KpiQuery = q.into_inner().into();
    let jurisdiction = q.jurisdiction.clone().ok_or_else(|| {
        ApiError::bad_request("missing_field", "jurisdiction is required", "请填写辖区代码").with_field("jurisdiction")
    })?;
    let level = codes::level_of(&jurisdiction).map_err(|e| {
        ApiError::bad_request("invalid_jurisdiction", e.to_string(), "辖区代码无效").with_field("jurisdiction")
    })?;
    if matches!(level, codes::Level::Grid | codes::Level::Community) {
        return Err(ApiError::bad_request(
            "jurisdiction_too_fine",
            "public KPIs are published for streets and above",
            "公开指标只发布到乡镇（街道）及以上",
        )
        .with_field("jurisdiction"));
    }
    if !matches!(q.period.as_deref(), None | Some("month")) {
        return Err(ApiError::bad_request(
            "invalid_period",
            "public KPIs are published by calendar month only (period=month)",
            "公开指标只按自然月发布",
        )
        .with_field("period"));
    }
    let this_month = kpi::china_day(Utc::now()).with_day(1).ok_or_else(|| ApiError::internal(&"no first day"))?;
    let last = this_month.pred_opt().ok_or_else(|| ApiError::internal(&"no last month"))?;
    let from = q.from.unwrap_or_else(|| last.with_day(1).unwrap_or(last));
    let to = q.to.unwrap_or(last);
    let whole_months = from.day() == 1 && to.succ_opt().is_some_and(|d| d.day() == 1);
    if !whole_months || to < from || to >= this_month || (to - from).num_days() > MAX_DAYS {
        return Err(ApiError::bad_request(
            "invalid_range",
            "public KPIs cover whole, completed calendar months: from the first day of a month to the last day \
             of a month before the current one",
            "公开指标只发布已结束的完整自然月：起始日须为月初，截止日须为上月或更早月份的月末",
        )
        .with_field("to"));
    }
    let mut rows = Vec::new();
    let mut month = from;
    while month <= to {
        let next = month.checked_add_months(chrono::Months::new(1)).ok_or_else(|| ApiError::internal(&"month"))?;
        let table = published_month(&state, &jurisdiction[..2], month, next.pred_opt().unwrap_or(month)).await?;
        if let Some(row) = table.get(&jurisdiction) {
            rows.push(row.clone());
        }
        month = next;
    }
    let body = PublicKpisOut {
        jurisdiction,
        level,
        period: Period::Month.as_str(),
        from,
        to,
        computed_at: Utc::now(),
        fcr_window_days: state.window.num_days(),
        rows,
        min_cell: state.min_cell,
    };
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "public, max-age=60")).json(body))
}

/// The published table of the month `[first, last]` of the province whose
/// codes start with `province`: every unit's row, withheld as a whole.
async fn published_month(
    state: &State,
    province: &str,
    first: NaiveDate,
    last: NaiveDate,
) -> Result<PublicTable, ApiError> {
    let key = (province.to_owned(), first);
    if let Ok(cache) = state.published.lock() {
        if let Some((at, table)) = cache.get(&key) {
            if at.elapsed() < PUBLISHED_FOR {
                return Ok(table.clone());
            }
        }
    }
    let rows = query::unit_rows(&state.db, province, Period::Month, first, last).await?;
    let table: PublicTable = Arc::new(kpi::public_table(&rows, state.min_cell));
    if let Ok(mut cache) = state.published.lock() {
        cache.retain(|_, (at, _)| at.elapsed() < PUBLISHED_FOR);
        cache.insert(key, (std::time::Instant::now(), table.clone()));
    }
    Ok(table)
}

pub async fn start(ctx: &Context, shutdown: CancellationToken) -> anyhow::Result<Service> {
    let state = web::Data::new(State {
        db: ctx.db.clone(),
        window: Duration::days(ctx.config.kpi.fcr_window_days),
        min_cell: ctx.config.kpi.public_min_cell,
        published: Default::default(),
    });
    let handler = Arc::new(fold::Folder { db: ctx.db.clone(), window: state.window });
    let gauges = prometheus::GaugeVec::new(
        prometheus::Opts::new("kpi_current_month", "KPIs of the current month (China time), by jurisdiction and KPI"),
        &["jurisdiction", "kpi"],
    )?;
    ctx.metrics.registry.register(Box::new(gauges.clone()))?;
    let every = std::time::Duration::from_millis(ctx.config.kpi.gauge_refresh_ms);
    let wake = Arc::new(tokio::sync::Notify::new());
    let tick_state = state.clone();
    let tick_stop = shutdown.clone();
    let tick_wake = wake.clone();
    let topic = ctx.topics.kpi_snapshot.clone();
    // Every tick: pending first-contact results whose window ended become
    // final, changed KPIs go to the snapshot topic, the gauges are refreshed.
    let tick_task = tokio::spawn(async move {
        loop {
            match fold::mature(&tick_state.db, Utc::now(), tick_state.window).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(petitions = n, "first-contact results became final"),
                Err(e) => tracing::warn!(error = ?e, "first-contact results not matured"),
            }
            match snapshot::publish(&tick_state.db, &topic).await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::debug!(snapshots = n, "KPI snapshots queued");
                    tick_wake.notify_one();
                }
                Err(e) => tracing::warn!(error = %e, "KPI snapshots not published"),
            }
            if let Err(e) = refresh_gauges(&tick_state, &gauges).await {
                tracing::warn!(error = %e, "KPI gauges not refreshed");
            }
            tokio::select! {
                _ = tick_stop.cancelled() => break,
                _ = tokio::time::sleep(every) => {}
            }
        }
    });
    let tasks = vec![
        pipeline::spawn_consumer(ctx, GROUP, vec![ctx.topics.case_lifecycle.clone()], handler, shutdown.clone())
            .await?,
        pipeline::spawn_relay(ctx, PRODUCER, wake, shutdown),
        tick_task,
    ];
    let routes: Routes = Arc::new(move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(state.clone());
        gridwork_platform::routes::register(cfg, ROUTES);
    });
    Ok(Service { routes, table: ROUTES.to_vec(), tasks, api: Some(openapi::spec()) })
}

/// analytics' route table (ADR 0033). Public KPIs obey the small-cell rule.
pub static ROUTES: &[Route] = &[
    Route::new(Method::Get, "/v1/kpis", Access::Roles(KPI_READERS), |r| r.to(kpis)),
    Route::new(Method::Get, "/v1/public/kpis", Access::Public, |r| r.to(public_kpis)),
    Route::new(Method::Get, "/v1/ledgers/cases", Access::Roles(KPI_READERS), |r| r.to(ledger::case_ledger)),
    Route::new(Method::Get, "/v1/ledgers/kpis", Access::Roles(KPI_READERS), |r| r.to(ledger::kpi_ledger)),
];

/// analytics on its own: connects, checks the schema, binds `http.listen`.
pub async fn build(config: Config) -> anyhow::Result<Application> {
    gridwork_platform::http::standalone(config, "analytics", |ctx, shutdown| async move { start(&ctx, shutdown).await })
        .await
}
