//! **assigner** — each report to its comprehensive grid.
//!
//! Consumes report-submitted, converts GCJ-02 to WGS-84, finds the grid (or
//! the county whose centre triages it), and publishes report-assigned with
//! the grid's whole hierarchy and the owning centre, through its outbox.
//! Serves `GET /v1/grids/locate` with the same engine.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};

use actix_web::{web, HttpRequest, HttpResponse};
use gridwork_domain::report::Crs;
use gridwork_domain::Hierarchy;
use gridwork_geoindex::{gcj02_to_wgs84, GridIndex, Located};
use gridwork_platform::auth::Caller;
use gridwork_platform::error::responses::{BadRequest, Forbidden, PayloadTooLarge, Unauthorized};
use gridwork_platform::pipeline;
use gridwork_platform::routes::{Access, Method, Route, ADMINS};
use gridwork_platform::{ApiError, Application, Config, Context, Routes, Service};
use sea_orm::DatabaseConnection;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use utoipa::{IntoParams, ToSchema};

pub mod categories;
mod consumer;
pub mod import;
pub mod openapi;
pub mod registry;
pub mod shapes;

pub use registry::Registry;

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

/// The assigner's view of the registry, shared by the consumer and HTTP.
pub struct State {
    db: DatabaseConnection,
    registry: RwLock<Arc<Registry>>,
    /// When the database was last asked for new versions (µs since epoch).
    checked_at_us: AtomicI64,
    refreshing: tokio::sync::Mutex<()>,
    cfg: gridwork_platform::config::Assigner,
    reloads: prometheus::IntCounter,
}

impl State {
    pub async fn load(
        db: DatabaseConnection,
        cfg: gridwork_platform::config::Assigner,
        reloads: prometheus::IntCounter,
    ) -> anyhow::Result<Self> {
        let registry = Registry::load(&db, cfg.tolerance_m, cfg.cells_per_grid, cfg.max_epochs).await?;
        Ok(State {
            db,
            checked_at_us: AtomicI64::new(registry.checked_at.timestamp_micros()),
            registry: RwLock::new(Arc::new(registry)),
            refreshing: tokio::sync::Mutex::new(()),
            cfg,
            reloads,
        })
    }

    pub fn current(&self) -> Result<Arc<Registry>, String> {
        self.registry.read().map(|g| g.clone()).map_err(|_| "grid registry lock poisoned".to_owned())
    }

    fn checked_at(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.checked_at_us.load(Ordering::Acquire)).unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    /// Is the registry known to be complete for reports that occurred at `t`?
    fn complete_for(&self, t: DateTime<Utc>) -> bool {
        t <= self.checked_at() + chrono::Duration::milliseconds(self.cfg.version_lead_ms as i64)
    }

    /// Looks for new versions and loads them; returns whether it reloaded.
    pub async fn refresh(&self) -> anyhow::Result<bool> {
        let _one_at_a_time = self.refreshing.lock().await;
        let started = Utc::now();
        let latest = gridwork_storage::grids::latest_id(&self.db).await?;
        let current = self.current().map_err(anyhow::Error::msg)?;
        let reloaded = latest != current.latest;
        if reloaded {
            let registry =
                Registry::load(&self.db, self.cfg.tolerance_m, self.cfg.cells_per_grid, self.cfg.max_epochs).await?;
            tracing::info!(
                version = ?registry.latest,
                epochs = registry.epochs.len(),
                grids = registry.epochs.last().map(|e| e.grids.index.len()).unwrap_or(0),
                "grid registry reloaded"
            );
            *self.registry.write().map_err(|_| anyhow::anyhow!("grid registry lock poisoned"))? = Arc::new(registry);
            self.reloads.inc();
        }
        self.checked_at_us.fetch_max(started.timestamp_micros(), Ordering::AcqRel);
        Ok(reloaded)
    }

    /// The grids loaded for a report that occurred at `t`, without looking
    /// for new versions (never waits for a reload): for checks on a
    /// request's path, where the lead time (ADR 0009) makes the loaded
    /// registry complete unless refreshing has been failing for that long.
    pub fn loaded_at(&self, t: DateTime<Utc>) -> Result<Arc<Grids>, String> {
        Ok(self.current()?.at(t.min(Utc::now())).clone())
    }

    /// The grids for a report that occurred at `t` (looking for new
    /// versions first when the registry may not cover `t` yet).
    pub async fn grids_at(&self, t: DateTime<Utc>) -> anyhow::Result<Arc<Grids>> {
        let t = t.min(Utc::now());
        if !self.complete_for(t) {
            self.refresh().await?;
        }
        Ok(self.current().map_err(anyhow::Error::msg)?.at(t).clone())
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LocateQuery {
    /// Latitude, degrees.
    #[param(minimum = -90.0, maximum = 90.0)]
    pub lat: f64,
    /// Longitude, degrees.
    #[param(minimum = -180.0, maximum = 180.0)]
    pub lon: f64,
    /// The point's coordinate reference system (default wgs84).
    #[serde(default)]
    #[param(value_type = Option<openapi::CrsName>, inline)]
    pub crs: Crs,
    /// Locate with the grids valid at this time (RFC 3339); default now.
    pub at: Option<DateTime<Utc>>,
}

/// A WGS-84 point.
#[derive(Debug, Serialize, ToSchema)]
pub struct Point {
    pub lat: f64,
    pub lon: f64,
}

/// Where a point goes: its grid (or, outside every grid and beyond the
/// tolerance, its county's triage), the hierarchy above it and the centre
/// whose queues get its reports.
#[derive(Debug, Serialize, ToSchema)]
pub struct LocateOut {
    /// Whether the point is in (or within the tolerance of) a grid.
    pub assigned: bool,
    /// The grid's code; `null` when the point goes to its county's triage.
    pub grid: Option<String>,
    #[schema(value_type = gridwork_platform::openapi::HierarchySchema)]
    pub hierarchy: Hierarchy,
    /// The centre that owns the grid (or the county's).
    pub centre: String,
    /// In no grid, but within the tolerance of the nearest one.
    pub approximate: bool,
    /// Metres to that grid (0 inside one).
    pub distance_m: f64,
    /// The point used, in WGS-84 (converted from GCJ-02 when asked).
    pub wgs84: Point,
    /// The time whose grids were used.
    pub as_of: DateTime<Utc>,
}

/// The grid (or county triage) a point belongs to, with the same engine
/// that assigns reports.
#[utoipa::path(get, path = "/v1/grids/locate", tag = "grids", operation_id = "locate", params(LocateQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Where the point goes", body = LocateOut),
        BadRequest, Unauthorized,
        (status = 404, description = "No grid registry at all: no county is known", body = ApiError),
    ))]
pub async fn locate(
    state: web::Data<State>,
    _caller: Caller,
    q: web::Query<LocateQuery>,
) -> Result<HttpResponse, ApiError> {
    let loc = gridwork_domain::Location { lat: q.lat, lon: q.lon, accuracy_m: None, crs: q.crs };
    loc.validate()?;
    let at = q.at.unwrap_or_else(Utc::now);
    let grids = state.grids_at(at).await.map_err(|e| ApiError::internal(&e.to_string()))?;
    match grids.assign(q.lat, q.lon, q.crs) {
        Some(a) => Ok(HttpResponse::Ok().json(LocateOut {
            assigned: !a.hierarchy.grid.is_empty(),
            grid: (!a.hierarchy.grid.is_empty()).then(|| a.hierarchy.grid.clone()),
            hierarchy: a.hierarchy,
            centre: a.centre,
            approximate: a.approximate,
            distance_m: a.distance_m,
            wgs84: Point { lat: a.lat, lon: a.lon },
            as_of: at,
        })),
        None => Err(ApiError::not_found("grid registry")),
    }
}

fn admin(caller: &Caller) -> Result<(), ApiError> {
    if caller.0.role == gridwork_domain::auth::Role::Admin {
        Ok(())
    } else {
        Err(ApiError::forbidden("grid administration needs the admin role"))
    }
}

/// A stored grid version.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionView {
    pub id: i64,
    pub label: String,
    /// From when its grids apply (to reports that occurred from then on).
    pub valid_from: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    /// The counties it covers: from `valid_from` on, their grids are this
    /// version's.
    pub counties: Vec<String>,
    /// How many grids it holds.
    pub grids: i64,
    /// Where it came from (`api`, `cli`, `seed` …).
    pub source: String,
    pub created_by: String,
}

/// Every grid version, and which one each county uses now.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionsOut {
    /// Oldest first.
    pub versions: Vec<VersionView>,
    /// County code → the id of the version in force now.
    pub active: std::collections::BTreeMap<String, i64>,
}

/// Every grid version, oldest first, and which one each county uses now.
#[utoipa::path(get, path = "/v1/grids/versions", tag = "grids", operation_id = "grid_versions",
    security(("bearer" = [])),
    responses((status = 200, description = "The versions", body = VersionsOut), Unauthorized, Forbidden))]
pub async fn list_versions(state: web::Data<State>, caller: Caller) -> Result<HttpResponse, ApiError> {
    admin(&caller)?;
    let versions = gridwork_storage::grids::versions(&state.db).await.map_err(|e| ApiError::internal(&e))?;
    let registry = state.current().map_err(|e| ApiError::internal(&e))?;
    let now = Utc::now();
    let active = registry.epochs.iter().rev().find(|e| e.start <= now).map(|e| e.versions.clone()).unwrap_or_default();
    let list: Vec<VersionView> = versions
        .iter()
        .map(|v| VersionView {
            id: v.id,
            label: v.label.clone(),
            valid_from: v.valid_from,
            created_at: v.created_at,
            counties: v.county_list(),
            grids: v.grids,
            source: v.source.clone(),
            created_by: v.created_by.clone(),
        })
        .collect();
    Ok(HttpResponse::Ok().json(VersionsOut { versions: list, active }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// From when the version applies (RFC 3339): at least the lead time
    /// (`assigner.version_lead_ms`) from now; default: as soon as that
    /// allows.
    pub valid_from: Option<DateTime<Utc>>,
    /// A name for the version (default: `import of N grids`).
    #[serde(default)]
    #[param(required = false)]
    pub label: String,
    /// Comma-separated county codes the version covers besides its grids'.
    pub counties: Option<String>,
    /// Validate only; store nothing (default false).
    #[serde(default)]
    #[param(required = false)]
    pub dry_run: bool,
}

/// What an import stored (or, for a dry run, would store).
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportOut {
    /// The new version's id; `null` for a dry run.
    pub version: Option<i64>,
    pub grids: usize,
    /// The counties the version covers.
    pub counties: Vec<String>,
    pub valid_from: DateTime<Utc>,
    pub dry_run: bool,
    /// What validation found that does not stop an import.
    pub warnings: Vec<String>,
}

fn import_error(e: import::ImportError) -> ApiError {
    use actix_web::http::StatusCode;
    use import::ImportError as E;
    match e {
        E::Parse(errors) => ApiError::bad_request(
            "invalid_geojson",
            "the body is not a valid grid FeatureCollection; see details",
            "网格文件格式错误",
        )
        .with_details(errors.iter().map(|e| e.to_string()).collect()),
        E::Invalid(report) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_grids",
            format!(
                "the grids did not validate: {} error(s), {} warning(s)",
                report.errors().count(),
                report.warnings().count()
            ),
            "网格校验未通过",
        )
        .with_details(report.problems.iter().map(|p| p.to_string()).collect()),
        E::Empty => ApiError::bad_request("no_grids", "the FeatureCollection has no grids", "文件中没有网格"),
        E::UnknownCounty(c) => {
            ApiError::bad_request("unknown_county", format!("county {c} is not known"), "未知的县级行政区")
                .with_field("counties")
        }
        e @ E::TooSoon { .. } => {
            ApiError::bad_request("valid_from_too_soon", e.to_string(), "生效时间过早").with_field("valid_from")
        }
        e @ E::TooSlow { .. } => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "import_too_slow",
            e.to_string(),
            "写入超时，请改用更晚的生效时间",
        ),
        E::Storage(e) => ApiError::internal(&e),
    }
}

/// The largest grid import: a province's grids are tens of megabytes of
/// GeoJSON.
pub const MAX_IMPORT_BYTES: usize = 512 << 20;

/// `POST /v1/grids/versions?valid_from=&label=&counties=&dry_run=`, body:
/// a grid FeatureCollection. 201 with the version; 422 with every problem.
/// The body is read only after the caller proved to be an admin.
#[utoipa::path(post, path = "/v1/grids/versions", tag = "grids", operation_id = "import_grid_version",
    params(ImportQuery),
    request_body(content = openapi::GridCollection, description = "A grid FeatureCollection (up to 512 MiB)",
        content_type = "application/geo+json"),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Stored as a new version", body = ImportOut, links(
            ("export" = (operation_id = "export_grid_version", parameters(("id" = "$response.body#/version")),
                description = "The version's grids, as stored")),
        )),
        (status = 200, description = "A dry run: valid, nothing stored", body = ImportOut),
        (status = 400, description = "Not a grid FeatureCollection (`invalid_geojson`, every problem in `details`), \
            no grids (`no_grids`), an unknown county (`unknown_county`), `valid_from` within the lead time \
            (`valid_from_too_soon`), or a bad query", body = ApiError),
        Unauthorized, Forbidden, PayloadTooLarge,
        (status = 422, description = "The grids did not validate (`invalid_grids`): every problem in `details`",
            body = ApiError),
        (status = 503, description = "Writing took longer than the lead time allows (`import_too_slow`): nothing \
            stored, retry with a later `valid_from`", body = ApiError),
    ))]
pub async fn import_version(
    state: web::Data<State>,
    caller: Caller,
    q: web::Query<ImportQuery>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    admin(&caller)?;
    let body = gridwork_platform::body::read(&req, body, MAX_IMPORT_BYTES).await?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::bad_request("invalid_geojson", "the body is not UTF-8", "文件不是 UTF-8 编码"))?;
    let q = q.into_inner();
    let opts = import::ImportOptions {
        label: q.label,
        valid_from: q.valid_from,
        counties: q.counties.map(|c| c.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect()),
        source: "api".into(),
        created_by: caller.0.id.clone(),
        dry_run: q.dry_run,
    };
    let out = import::import(&state.db, text, opts, state.cfg.version_lead_ms, |line| tracing::info!("{line}"))
        .await
        .map_err(import_error)?;
    let body = ImportOut {
        version: out.version,
        grids: out.grids,
        counties: out.counties,
        valid_from: out.valid_from,
        dry_run: out.version.is_none(),
        warnings: out.report.warnings().map(|p| p.to_string()).collect(),
    };
    if out.version.is_some() {
        // Load it now rather than at the next periodic look.
        if let Err(e) = state.refresh().await {
            tracing::warn!(error = %e, "stored the version but could not reload yet");
        }
        Ok(HttpResponse::Created().json(body))
    } else {
        Ok(HttpResponse::Ok().json(body))
    }
}

/// A version's grids in the import format.
#[utoipa::path(get, path = "/v1/grids/versions/{id}/geojson", tag = "grids", operation_id = "export_grid_version",
    params(("id" = i64, Path, description = "The version's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A grid FeatureCollection",
            content((openapi::GridCollection = "application/geo+json"))),
        BadRequest, Unauthorized, Forbidden,
        (status = 404, description = "No such version", body = ApiError),
    ))]
pub async fn export_version(
    state: web::Data<State>,
    caller: Caller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    admin(&caller)?;
    match import::export(&state.db, id.into_inner()).await.map_err(|e| ApiError::internal(&e))? {
        Some(text) => Ok(HttpResponse::Ok().content_type("application/geo+json").body(text)),
        None => Err(ApiError::not_found("grid version")),
    }
}

/// Looks for new grid versions every `assigner.refresh_ms`.
pub fn spawn_refresher(state: web::Data<State>, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let every = std::time::Duration::from_millis(state.cfg.refresh_ms);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            if let Err(e) = state.refresh().await {
                tracing::warn!(error = %e, "could not look for new grid versions; retrying");
            }
        }
    })
}

pub async fn start(ctx: &Context, shutdown: CancellationToken) -> anyhow::Result<Service> {
    Ok(start_sharing(ctx, shutdown).await?.0)
}

/// Starts the assigner and returns its grid registry too, for another
/// service of the same process to share (intake checks where reports lie
/// with it in the all-in-one runner, rather than load the grids twice).
pub async fn start_sharing(ctx: &Context, shutdown: CancellationToken) -> anyhow::Result<(Service, web::Data<State>)> {
    let reloads =
        ctx.metrics.counter("grid_registry_reloads_total", "Grid registry reloads", &[])?.with_label_values(&[]);
    let state = State::load(ctx.db.clone(), ctx.config.assigner.clone(), reloads).await?;
    {
        let r = state.current().map_err(anyhow::Error::msg)?;
        let last = r.epochs.last().map(|e| e.grids.index.len()).unwrap_or(0);
        tracing::info!(version = ?r.latest, epochs = r.epochs.len(), grids = last, "grid registry loaded");
    }
    let state = web::Data::new(state);
    let wake = Arc::new(Notify::new());
    let handler = Arc::new(consumer::Assigner {
        db: ctx.db.clone(),
        state: state.clone(),
        topics: ctx.topics.clone(),
        wake: wake.clone(),
        assigned: ctx.metrics.counter("reports_assigned_total", "Reports assigned, by outcome", &["outcome"])?,
    });
    let tasks = vec![
        spawn_refresher(state.clone(), shutdown.clone()),
        pipeline::spawn_relay(ctx, PRODUCER, wake, shutdown.clone()),
        // Two lanes, each its own consumer group: emergencies never wait
        // behind ordinary reports.
        pipeline::spawn_consumer(
            ctx,
            "assigner-emergency",
            vec![ctx.topics.report_submitted_emergency.clone()],
            Arc::new(pipeline::Lane { inner: handler.clone(), failpoint: "assigner.emergency_lane" }),
            shutdown.clone(),
        )
        .await?,
        pipeline::spawn_consumer(
            ctx,
            "assigner",
            vec![ctx.topics.report_submitted.clone()],
            Arc::new(pipeline::Lane { inner: handler, failpoint: "assigner.ordinary_lane" }),
            shutdown,
        )
        .await?,
    ];
    let shared = state.clone();
    let routes: Routes = Arc::new(move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(state.clone());
        gridwork_platform::routes::register(cfg, ROUTES);
    });
    Ok((Service { routes, table: ROUTES.to_vec(), tasks, api: Some(openapi::spec()) }, shared))
}

/// The assigner's route table (ADR 0033).
pub static ROUTES: &[Route] = &[
    Route::new(Method::Get, "/v1/categories", Access::SignedIn, |r| r.to(categories::list)),
    Route::new(Method::Get, "/v1/grids/locate", Access::SignedIn, |r| r.to(locate)),
    Route::new(Method::Get, "/v1/grids/shapes", Access::SignedIn, |r| r.to(shapes::shapes)),
    Route::new(Method::Get, "/v1/grids/versions", Access::Roles(ADMINS), |r| r.to(list_versions)),
    Route::new(Method::Post, "/v1/grids/versions", Access::Roles(ADMINS), |r| r.to(import_version)),
    Route::new(Method::Get, "/v1/grids/versions/{id}/geojson", Access::Roles(ADMINS), |r| r.to(export_version)),
];

/// assigner on its own: connects, checks the schema, binds `http.listen`.
pub async fn build(config: Config) -> anyhow::Result<Application> {
    gridwork_platform::http::standalone(config, "assigner", |ctx, shutdown| async move { start(&ctx, shutdown).await })
        .await
}
