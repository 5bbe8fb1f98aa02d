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
use gridwork_domain::kpi::{self, Period};
use gridwork_platform::auth::Caller;
use gridwork_platform::pipeline;
use gridwork_platform::{ApiError, Application, Config, Context, Routes, Service};
use sea_orm::DatabaseConnection;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

pub mod fold;
pub mod ledger;
pub mod query;
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
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KpiQuery {
    /// Administrative code (grid … province); default: the caller's scope.
    #[serde(default)]
    pub jurisdiction: Option<String>,
    /// day, week, month, quarter or year (default day).
    #[serde(default)]
    pub period: Option<String>,
    /// First and last day (China time), YYYY-MM-DD; default today.
    #[serde(default)]
    pub from: Option<NaiveDate>,
    #[serde(default)]
    pub to: Option<NaiveDate>,
}

const MAX_DAYS: i64 = 3700;

/// The gauges' KPI names and values of a row; rates without a denominator
/// are left out.
fn gauge_values(row: &kpi::KpiRow) -> Vec<(&'static str, f64)> {
    let mut out = vec![
        ("volume", row.volume as f64),
        ("closed", row.closed as f64),
        ("backlog", row.backlog as f64),
        ("petitions", row.petitions as f64),
        ("callbacks_unanswered", row.callbacks_unanswered as f64),
    ];
    if let Some(h) = row.median_hours_to_close {
        out.push(("median_hours_to_close", f64::from(h)));
    }
    for (name, r) in [
        ("on_time_close_out", row.on_time_close_out),
        ("on_the_spot_resolution", row.on_the_spot_resolution),
        ("on_time_acceptance", row.on_time_acceptance),
        ("satisfaction", row.satisfaction),
        ("participation", row.participation),
        ("repeat_petition_rate", row.repeat_petition_rate),
        ("escalation_rate", row.escalation_rate),
        ("transfer_up_rate", row.transfer_up_rate),
        ("first_contact_resolution", row.first_contact_resolution),
        ("first_contact_resolution_provisional", row.first_contact_resolution_provisional),
    ] {
        if let Some(rate) = r.rate {
            out.push((name, rate));
        }
    }
    out
}

/// Prometheus gauges of the current month (China time) for every county,
/// city and province with cases: `gridwork_kpi_current_month{jurisdiction,
/// kpi}`.
pub async fn refresh_gauges(state: &State, gauges: &prometheus::GaugeVec) -> Result<usize, ApiError> {
    use sea_orm::{ConnectionTrait, Statement};
    let today = kpi::china_day(Utc::now());
    let first = today.with_day(1).unwrap_or(today);
    let backend = state.db.get_database_backend();
    let codes: Vec<String> = state
        .db
        .query_all(Statement::from_string(
            backend,
            "SELECT DISTINCT jurisdiction FROM kpi_cells WHERE length(jurisdiction) = 6",
        ))
        .await
        .map_err(|e| ApiError::unavailable(&e))?
        .iter()
        .filter_map(|r| r.try_get::<String>("", "jurisdiction").ok())
        .collect();
    for code in &codes {
        let Some(row) = query::rows(&state.db, code, Period::Month, first, today).await?.into_iter().next() else {
            continue;
        };
        for (name, v) in gauge_values(&row) {
            gauges.with_label_values(&[code.as_str(), name]).set(v);
        }
    }
    Ok(codes.len())
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
async fn compute(state: &State, jurisdiction: &str, q: &KpiQuery) -> Result<serde_json::Value, ApiError> {
    let level = codes::level_of(jurisdiction).map_err(|e| {
        ApiError::bad_request("invalid_jurisdiction", e.to_string(), "辖区代码无效").with_field("jurisdiction")
    })?;
    let (period, from, to) = period_and_range(q.period.as_deref(), q.from, q.to)?;
    let out = query::rows(&state.db, jurisdiction, period, from, to).await?;
    Ok(serde_json::json!({
        "jurisdiction": jurisdiction,
        "level": level,
        "period": period.as_str(),
        "from": from,
        "to": to,
        "computed_at": Utc::now(),
        "fcr_window_days": state.window.num_days(),
        "rows": out,
    }))
}

/// `GET /v1/kpis`.
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
/// (评价结果公开) of a street, county, city or province. No personal data;
/// counts and rates resting on fewer than `kpi.public_min_cell` cases are
/// suppressed, so no person can be singled out.
pub async fn public_kpis(state: web::Data<State>, q: web::Query<KpiQuery>) -> Result<HttpResponse, ApiError> {
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
    let mut body = compute(&state, &jurisdiction, &q).await?;
    let rows: Vec<kpi::KpiRow> = serde_json::from_value(body["rows"].take()).map_err(|e| ApiError::internal(&e))?;
    body["rows"] = serde_json::Value::Array(rows.iter().map(|r| kpi::public_row(r, state.min_cell)).collect());
    body["min_cell"] = serde_json::json!(state.min_cell);
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "public, max-age=60")).json(body))
}

pub async fn start(ctx: &Context, shutdown: CancellationToken) -> anyhow::Result<Service> {
    let state = web::Data::new(State {
        db: ctx.db.clone(),
        window: Duration::days(ctx.config.kpi.fcr_window_days),
        min_cell: ctx.config.kpi.public_min_cell,
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
        cfg.app_data(state.clone())
            .route("/v1/kpis", web::get().to(kpis))
            .route("/v1/public/kpis", web::get().to(public_kpis))
            .configure(ledger::configure);
    });
    Ok(Service { routes, tasks, api: None })
}

/// analytics on its own: connects, checks the schema, binds `http.listen`.
pub async fn build(config: Config) -> anyhow::Result<Application> {
    gridwork_platform::http::standalone(config, "analytics", |ctx, shutdown| async move { start(&ctx, shutdown).await })
        .await
}
