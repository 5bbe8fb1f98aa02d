//! **assigner** — each report to its comprehensive grid.
//!
//! Consumes report-submitted, converts GCJ-02 to WGS-84, finds the grid (or
//! the county whose centre triages it), and publishes report-assigned with
//! the grid's whole hierarchy and the owning centre, through its outbox.
//! Serves `GET /v1/grids/locate` with the same engine.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use actix_web::{web, HttpResponse};
use async_trait::async_trait;
use gridwork_bus::{Handler, HandlerError, Message};
use gridwork_domain::report::Crs;
use gridwork_domain::Hierarchy;
use gridwork_events::{pb, Event, Payload, Topics};
use gridwork_geoindex::{gcj02_to_wgs84, geojson_io, Area, GridIndex, Located};
use gridwork_platform::auth::Caller;
use gridwork_platform::pipeline::{self, decode, emit, retryable};
use gridwork_platform::{ApiError, Application, Config, Context, Routes, Service};
use gridwork_storage::dedup;
use gridwork_storage::entity::{grid, unit};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, TransactionTrait};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub const PRODUCER: &str = "assigner";

/// The index and what it needs to name centres.
pub struct Grids {
    pub index: GridIndex,
    /// grid code → the centre that owns it.
    pub centres: HashMap<String, String>,
}

/// Where a point goes, in domain terms.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Assignment {
    pub hierarchy: Hierarchy,
    pub centre: String,
    pub approximate: bool,
    pub distance_m: f64,
    /// The WGS-84 point used.
    pub lat: f64,
    pub lon: f64,
}

impl Grids {
    /// Loads the grids valid now and the counties from the database.
    pub async fn load(db: &DatabaseConnection, tolerance_m: f64) -> anyhow::Result<Self> {
        let now = chrono::Utc::now();
        let mut areas = Vec::new();
        let mut centres = HashMap::new();
        for g in grid::Entity::find().filter(grid::Column::ValidFrom.lte(now)).all(db).await? {
            if g.valid_to.is_some_and(|t| t <= now) {
                continue;
            }
            let geometry =
                geojson_io::parse_geometry(&g.geometry).map_err(|e| anyhow::anyhow!("grid {}: {e}", g.code))?;
            centres.insert(g.code.clone(), g.centre.clone());
            areas.push(Area { code: g.code, geometry });
        }
        let mut counties = Vec::new();
        for u in unit::Entity::find().filter(unit::Column::Level.eq("county")).all(db).await? {
            if let Some(text) = u.geometry {
                let geometry =
                    geojson_io::parse_geometry(&text).map_err(|e| anyhow::anyhow!("county {}: {e}", u.code))?;
                counties.push(Area { code: u.code, geometry });
            }
        }
        Ok(Grids { index: GridIndex::new(areas, counties, tolerance_m)?, centres })
    }

    /// Assigns a point given in `crs`; `None` when there is no county at all.
    pub fn assign(&self, lat: f64, lon: f64, crs: Crs) -> Option<Assignment> {
        let (lon, lat) = match crs {
            Crs::Wgs84 => (lon, lat),
            Crs::Gcj02 => gcj02_to_wgs84(lon, lat),
        };
        let (grid, approximate, distance_m) = match self.index.locate(lon, lat) {
            Located::Inside { grid } => (Some(grid), false, 0.0),
            Located::Approximate { grid, distance_m } => (Some(grid), true, distance_m),
            Located::Unassigned { county, .. } => {
                let county = county?;
                let hierarchy = Hierarchy::county_only(&county).ok()?;
                // The county centre's triage queue.
                return Some(Assignment { centre: county, hierarchy, approximate: false, distance_m: 0.0, lat, lon });
            }
        };
        let grid = grid?;
        let hierarchy = Hierarchy::from_grid_code(&grid).ok()?;
        let centre = self.centres.get(&grid).cloned().unwrap_or_else(|| hierarchy.street.clone());
        Some(Assignment { hierarchy, centre, approximate, distance_m, lat, lon })
    }
}

pub struct State {
    pub grids: RwLock<Arc<Grids>>,
}

impl State {
    fn current(&self) -> Result<Arc<Grids>, String> {
        self.grids.read().map(|g| g.clone()).map_err(|_| "grid index lock poisoned".to_owned())
    }
}

struct Assigner {
    db: DatabaseConnection,
    state: web::Data<State>,
    topics: Topics,
    wake: Arc<Notify>,
    assigned: prometheus::IntCounterVec,
}

#[async_trait]
impl Handler for Assigner {
    async fn handle(&self, msg: &Message) -> Result<(), HandlerError> {
        let event = decode(msg)?;
        let Payload::ReportSubmitted(r) = &event.payload else {
            return Err(HandlerError::Poison(format!(
                "unexpected schema {} on report-submitted",
                event.payload.schema()
            )));
        };
        let loc = r.location.clone().ok_or_else(|| HandlerError::Poison("report without location".into()))?;
        let crs = match loc.crs.as_str() {
            "gcj02" => Crs::Gcj02,
            "wgs84" | "" => Crs::Wgs84,
            other => return Err(HandlerError::Poison(format!("unknown crs {other:?}"))),
        };
        let grids = self.state.current().map_err(HandlerError::Retryable)?;
        let a = grids
            .assign(loc.lat, loc.lon, crs)
            .ok_or_else(|| HandlerError::Poison("no county known: the grid registry is empty".into()))?;
        let h = &a.hierarchy;
        let key = h.finest().to_owned();
        let out = Event::new(
            PRODUCER,
            event.occurred_at,
            Payload::ReportAssigned(pb::report::ReportAssigned {
                report_id: r.report_id.clone(),
                reporter_id: r.reporter_id.clone(),
                occurred_at: r.occurred_at,
                category: r.category.clone(),
                urgency: r.urgency.clone(),
                assignment: Some(pb::report::Assignment {
                    grid: h.grid.clone(),
                    community: h.community.clone(),
                    street: h.street.clone(),
                    county: h.county.clone(),
                    city: h.city.clone(),
                    province: h.province.clone(),
                    approximate: a.approximate,
                    distance_m: a.distance_m,
                    centre: a.centre.clone(),
                    lat: a.lat,
                    lon: a.lon,
                }),
                petitioner_key: r.petitioner_key.clone(),
                matter_key: r.matter_key.clone(),
            }),
        );
        let txn = self.db.begin().await.map_err(retryable)?;
        if !dedup::first_delivery(&txn, PRODUCER, &event.id.to_string()).await.map_err(retryable)? {
            return Ok(());
        }
        emit(&txn, PRODUCER, &self.topics.report_assigned, &key, &out).await.map_err(retryable)?;
        txn.commit().await.map_err(retryable)?;
        self.wake.notify_one();
        let outcome = if h.grid.is_empty() {
            "triage"
        } else if a.approximate {
            "approximate"
        } else {
            "inside"
        };
        self.assigned.with_label_values(&[outcome]).inc();
        tracing::info!(report = %r.report_id, grid = %h.grid, centre = %a.centre, outcome, "report assigned");
        Ok(())
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocateQuery {
    pub lat: f64,
    pub lon: f64,
    #[serde(default)]
    pub crs: Crs,
}

/// `GET /v1/grids/locate?lat=&lon=&crs=`
pub async fn locate(
    state: web::Data<State>,
    _caller: Caller,
    q: web::Query<LocateQuery>,
) -> Result<HttpResponse, ApiError> {
    let loc = gridwork_domain::Location { lat: q.lat, lon: q.lon, accuracy_m: None, crs: q.crs };
    loc.validate()?;
    let grids = state.current().map_err(|e| ApiError::internal(&e))?;
    match grids.assign(q.lat, q.lon, q.crs) {
        Some(a) => Ok(HttpResponse::Ok().json(serde_json::json!({
            "assigned": !a.hierarchy.grid.is_empty(),
            "grid": (!a.hierarchy.grid.is_empty()).then_some(&a.hierarchy.grid),
            "hierarchy": a.hierarchy,
            "centre": a.centre,
            "approximate": a.approximate,
            "distance_m": a.distance_m,
            "wgs84": {"lat": a.lat, "lon": a.lon},
        }))),
        None => Err(ApiError::not_found("grid registry")),
    }
}

pub async fn start(ctx: &Context, shutdown: CancellationToken) -> anyhow::Result<Service> {
    let grids = Grids::load(&ctx.db, ctx.config.assigner.tolerance_m).await?;
    tracing::info!(grids = grids.index.len(), "grid index loaded");
    let state = web::Data::new(State { grids: RwLock::new(Arc::new(grids)) });
    let wake = Arc::new(Notify::new());
    let handler = Arc::new(Assigner {
        db: ctx.db.clone(),
        state: state.clone(),
        topics: ctx.topics.clone(),
        wake: wake.clone(),
        assigned: ctx.metrics.counter("reports_assigned_total", "Reports assigned, by outcome", &["outcome"])?,
    });
    let tasks = vec![
        pipeline::spawn_relay(ctx, PRODUCER, wake, shutdown.clone()),
        pipeline::spawn_consumer(ctx, "assigner", vec![ctx.topics.report_submitted.clone()], handler, shutdown).await?,
    ];
    let routes: Routes = Arc::new(move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(state.clone()).route("/v1/grids/locate", web::get().to(locate));
    });
    Ok(Service { routes, tasks })
}

/// assigner on its own: connects, checks the schema, binds `http.listen`.
pub async fn build(config: Config) -> anyhow::Result<Application> {
    gridwork_platform::http::standalone(config, "assigner", |ctx, shutdown| async move { start(&ctx, shutdown).await })
        .await
}
