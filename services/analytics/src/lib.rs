//! **analytics** — governance KPIs from the case lifecycle alone.
//!
//! Folds every case-lifecycle event into one fact row per case (so KPIs can
//! be recomputed from the event log when a definition changes), marks
//! first-time petitions disqualified by a repeat on the same matter, and
//! answers `GET /v1/kpis` per jurisdiction and period.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use async_trait::async_trait;
use chrono::{Datelike, Duration, NaiveDate, TimeZone, Utc};
use gridwork_bus::{Handler, HandlerError, Message};
use gridwork_domain::auth::Role;
use gridwork_domain::codes;
use gridwork_domain::kpi::{self, CaseFacts, Period};
use gridwork_domain::petition::PetitionClass;
use gridwork_domain::CaseEventKind;
use gridwork_events::convert::CaseEventView;
use gridwork_events::Payload;
use gridwork_platform::auth::Caller;
use gridwork_platform::pipeline::{self, decode, retryable};
use gridwork_platform::{ApiError, Application, Config, Context, Routes, Service};
use gridwork_storage::dedup;
use gridwork_storage::entity::kpi_fact;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DatabaseConnection, EntityTrait, IntoActiveModel, QueryFilter,
    TransactionTrait,
};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

pub const GROUP: &str = "analytics";

pub struct State {
    pub db: DatabaseConnection,
    pub window: Duration,
    /// Public KPIs suppress counts and rates resting on fewer cases.
    pub min_cell: u64,
}

struct Folder {
    state: web::Data<State>,
}

fn facts_of(row: &kpi_fact::Model) -> Result<CaseFacts, HandlerError> {
    serde_json::from_str(&row.facts)
        .map_err(|e| HandlerError::Retryable(format!("stored facts of {}: {e}", row.case_id)))
}

fn row_of(f: &CaseFacts, version: i64) -> Result<kpi_fact::Model, HandlerError> {
    Ok(kpi_fact::Model {
        case_id: f.case_id.to_string(),
        place: f.hierarchy.finest().to_owned(),
        created_at: f.created_at,
        closed_at: f.closed_at,
        petitioner_key: f.petition.as_ref().map(|p| p.petitioner_key.clone()),
        matter_key: f.petition.as_ref().map(|p| p.matter_key.clone()),
        version,
        facts: serde_json::to_string(f).map_err(|e| HandlerError::Poison(e.to_string()))?,
    })
}

#[async_trait]
impl Handler for Folder {
    async fn handle(&self, msg: &Message) -> Result<(), HandlerError> {
        let event = decode(msg)?;
        let Payload::CaseLifecycle(pb) = &event.payload else {
            return Err(HandlerError::Poison(format!(
                "unexpected schema {} on case-lifecycle",
                event.payload.schema()
            )));
        };
        let v = CaseEventView::try_from(pb).map_err(|e| HandlerError::Poison(e.to_string()))?;
        let txn = self.state.db.begin().await.map_err(retryable)?;
        if !dedup::first_delivery(&txn, GROUP, &event.id.to_string()).await.map_err(retryable)? {
            return Ok(());
        }
        let existing = kpi_fact::Entity::find_by_id(v.case_id.to_string()).one(&txn).await.map_err(retryable)?;
        let (mut facts, stored_version) = match &existing {
            Some(row) => (facts_of(row)?, row.version),
            None => (
                CaseFacts {
                    case_id: v.case_id,
                    hierarchy: v.hierarchy.clone(),
                    category: v.category.clone(),
                    channel: v.channel,
                    status: v.status,
                    created_at: v.created_at,
                    due_at: v.due_at,
                    accepted_at: None,
                    resolved_at: None,
                    closed_at: None,
                    satisfaction: None,
                    petition: v.petition.clone(),
                    transferred_up: false,
                    disqualified_at: None,
                },
                0,
            ),
        };
        // Per-case order is guaranteed by the key; an older version seen
        // again (a redelivery) changes nothing.
        if v.version <= stored_version {
            txn.commit().await.map_err(retryable)?;
            return Ok(());
        }
        facts.apply(v.kind, event.occurred_at, v.status, v.satisfaction);
        facts.due_at = v.due_at;
        let row = row_of(&facts, v.version)?;
        match existing {
            Some(_) => {
                row.into_active_model().reset_all().update(&txn).await.map_err(retryable)?;
            }
            None => {
                row.into_active_model().reset_all().insert(&txn).await.map_err(retryable)?;
            }
        }
        // A repeat petition disqualifies earlier first-time petitions on the
        // same matter from first-contact resolution.
        if v.kind == CaseEventKind::Created {
            if let Some(p) = v.petition.as_ref().filter(|p| p.class == PetitionClass::Repeat) {
                let earlier = kpi_fact::Entity::find()
                    .filter(kpi_fact::Column::PetitionerKey.eq(p.petitioner_key.as_str()))
                    .filter(kpi_fact::Column::MatterKey.eq(p.matter_key.as_str()))
                    .filter(kpi_fact::Column::CaseId.ne(v.case_id.to_string()))
                    .all(&txn)
                    .await
                    .map_err(retryable)?;
                for row in earlier {
                    let mut f = facts_of(&row)?;
                    if f.is_first_time_petition()
                        && f.disqualified_at.is_none()
                        && f.disqualified_by(v.created_at, self.state.window)
                    {
                        f.disqualified_at = Some(v.created_at);
                        row_of(&f, row.version)?
                            .into_active_model()
                            .reset_all()
                            .update(&txn)
                            .await
                            .map_err(retryable)?;
                    }
                }
            }
        }
        txn.commit().await.map_err(retryable)?;
        Ok(())
    }
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

/// The facts of cases under `prefix` created or closed in `[start, end)`.
async fn facts_between(
    state: &State,
    prefix: &str,
    start: chrono::DateTime<Utc>,
    end: chrono::DateTime<Utc>,
) -> Result<Vec<CaseFacts>, ApiError> {
    let rows = kpi_fact::Entity::find()
        .filter(kpi_fact::Column::Place.starts_with(prefix))
        .filter(
            Condition::any()
                .add(
                    Condition::all()
                        .add(kpi_fact::Column::CreatedAt.gte(start))
                        .add(kpi_fact::Column::CreatedAt.lt(end)),
                )
                .add(
                    Condition::all().add(kpi_fact::Column::ClosedAt.gte(start)).add(kpi_fact::Column::ClosedAt.lt(end)),
                ),
        )
        .all(&state.db)
        .await
        .map_err(|e| ApiError::unavailable(&e))?;
    let mut facts = Vec::with_capacity(rows.len());
    for r in &rows {
        facts.push(serde_json::from_str::<CaseFacts>(&r.facts).map_err(|e| ApiError::internal(&e))?);
    }
    Ok(facts)
}

/// Prometheus gauges of the current month (China time) for every county,
/// city and province with cases: `gridwork_kpi_current_month{jurisdiction,
/// kpi}`; rates without a denominator are left out.
pub async fn refresh_gauges(state: &State, gauges: &prometheus::GaugeVec) -> Result<usize, ApiError> {
    use sea_orm::{ConnectionTrait, Statement};
    let off = kpi::china_offset();
    let now = Utc::now();
    let today = now.with_timezone(&off).date_naive();
    let first = today.with_day(1).unwrap_or(today);
    let start = off
        .from_local_datetime(&first.and_hms_opt(0, 0, 0).unwrap_or_default())
        .single()
        .map(|d| d.with_timezone(&Utc))
        .ok_or_else(|| ApiError::internal(&"month start"))?;
    let backend = state.db.get_database_backend();
    let counties: Vec<String> = state
        .db
        .query_all(Statement::from_string(backend, "SELECT DISTINCT substr(place, 1, 6) AS county FROM kpi_case_facts"))
        .await
        .map_err(|e| ApiError::unavailable(&e))?
        .iter()
        .filter_map(|r| r.try_get::<String>("", "county").ok())
        .filter(|c| c.len() == 6)
        .collect();
    let mut codes: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    for c in counties {
        codes.insert(format!("{}0000", &c[..2]));
        codes.insert(format!("{}00", &c[..4]));
        codes.insert(c);
    }
    for code in &codes {
        let prefix = codes::significant_prefix(code).map_err(|e| ApiError::internal(&e))?;
        let facts = facts_between(state, prefix, start, now + Duration::seconds(1)).await?;
        let Some(row) = kpi::aggregate(&facts, Period::Month, first, today, now, state.window).into_iter().next()
        else {
            continue;
        };
        let set = |kpi: &str, v: f64| gauges.with_label_values(&[code.as_str(), kpi]).set(v);
        set("volume", row.volume as f64);
        set("closed", row.closed as f64);
        set("backlog", row.backlog as f64);
        for (name, r) in [
            ("on_time_close_out", row.on_time_close_out),
            ("satisfaction", row.satisfaction),
            ("participation", row.participation),
            ("first_contact_resolution", row.first_contact_resolution),
            ("first_contact_resolution_provisional", row.first_contact_resolution_provisional),
        ] {
            if let Some(rate) = r.rate {
                set(name, rate);
            }
        }
    }
    Ok(codes.len())
}

/// The KPI rows of `jurisdiction` for the query's period and range.
async fn compute(state: &State, jurisdiction: &str, q: &KpiQuery) -> Result<serde_json::Value, ApiError> {
    let level = codes::level_of(jurisdiction).map_err(|e| {
        ApiError::bad_request("invalid_jurisdiction", e.to_string(), "辖区代码无效").with_field("jurisdiction")
    })?;
    let period = match q.period.as_deref() {
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
    let today = Utc::now().with_timezone(&kpi::china_offset()).date_naive();
    let from = q.from.unwrap_or(today);
    let to = q.to.unwrap_or(today);
    if to < from || (to - from).num_days() > MAX_DAYS {
        return Err(ApiError::bad_request(
            "invalid_range",
            format!("need from <= to, at most {MAX_DAYS} days apart"),
            "统计区间无效",
        )
        .with_field("to"));
    }
    let off = kpi::china_offset();
    let start = off
        .from_local_datetime(&from.and_hms_opt(0, 0, 0).unwrap_or_default())
        .single()
        .map(|d| d.with_timezone(&Utc))
        .ok_or_else(|| ApiError::bad_request("invalid_range", "bad from date", "日期无效"))?;
    let end = start + Duration::days((to - from).num_days() + 1);
    let prefix = codes::significant_prefix(jurisdiction).map_err(|e| ApiError::internal(&e))?;
    let facts = facts_between(state, prefix, start, end).await?;
    let now = Utc::now();
    let out = kpi::aggregate(&facts, period, from, to, now, state.window);
    Ok(serde_json::json!({
        "jurisdiction": jurisdiction,
        "level": level,
        "period": period.as_str(),
        "from": from,
        "to": to,
        "computed_at": now,
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
    let handler = Arc::new(Folder { state: state.clone() });
    let gauges = prometheus::GaugeVec::new(
        prometheus::Opts::new("kpi_current_month", "KPIs of the current month (China time), by jurisdiction and KPI"),
        &["jurisdiction", "kpi"],
    )?;
    ctx.metrics.registry.register(Box::new(gauges.clone()))?;
    let every = std::time::Duration::from_millis(ctx.config.kpi.gauge_refresh_ms);
    let gauge_state = state.clone();
    let gauge_stop = shutdown.clone();
    let gauge_task = tokio::spawn(async move {
        loop {
            if let Err(e) = refresh_gauges(&gauge_state, &gauges).await {
                tracing::warn!(error = %e, "KPI gauges not refreshed");
            }
            tokio::select! {
                _ = gauge_stop.cancelled() => break,
                _ = tokio::time::sleep(every) => {}
            }
        }
    });
    let tasks = vec![
        pipeline::spawn_consumer(ctx, GROUP, vec![ctx.topics.case_lifecycle.clone()], handler, shutdown).await?,
        gauge_task,
    ];
    let routes: Routes = Arc::new(move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(state.clone())
            .route("/v1/kpis", web::get().to(kpis))
            .route("/v1/public/kpis", web::get().to(public_kpis));
    });
    Ok(Service { routes, tasks })
}

/// analytics on its own: connects, checks the schema, binds `http.listen`.
pub async fn build(config: Config) -> anyhow::Result<Application> {
    gridwork_platform::http::standalone(config, "analytics", |ctx, shutdown| async move { start(&ctx, shutdown).await })
        .await
}

/// `gridwork kpi recompute`: rebuilds every case's KPI facts from the event
/// history alone — the case-lifecycle messages kept in the producers'
/// outbox, in the order they were committed — by running them through the
/// same fold as the live consumer. Run it with analytics stopped. Calls
/// `progress` with the number of events folded so far, every 10,000.
pub async fn recompute(
    db: &DatabaseConnection,
    topic: &str,
    window: Duration,
    progress: impl Fn(usize),
) -> anyhow::Result<usize> {
    use gridwork_storage::entity::{consumed_event, outbox};
    use sea_orm::{QueryOrder, QuerySelect};
    kpi_fact::Entity::delete_many().exec(db).await?;
    consumed_event::Entity::delete_many().filter(consumed_event::Column::Consumer.eq(GROUP)).exec(db).await?;
    let folder = Folder { state: web::Data::new(State { db: db.clone(), window, min_cell: 0 }) };
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
        for row in rows {
            let msg = Message {
                topic: row.topic,
                partition: 0,
                offset: row.id,
                key: row.msg_key,
                payload: row.payload,
                headers: Vec::new(),
                timestamp: row.created_at,
            };
            match folder.handle(&msg).await {
                Ok(()) => {}
                // The live consumer sends these to the dead-letter topic; a
                // rebuild skips them the same way.
                Err(HandlerError::Poison(e)) => {
                    tracing::warn!(outbox_id = row.id, error = %e, "unreadable event skipped")
                }
                Err(HandlerError::Retryable(e)) => anyhow::bail!("event {}: {e}", row.id),
            }
            folded += 1;
            if folded % 10_000 == 0 {
                progress(folded);
            }
        }
    }
    Ok(folded)
}
