//! Importing a set of grids as a new version, and exporting a version.
//!
//! Used by `gridwork grids import` and `POST /v1/grids/versions` alike:
//! parse (every malformed feature named), validate against the counties the
//! database knows (every problem named; warnings do not stop an import),
//! then store the version in one transaction, valid from a time far enough
//! ahead that every assigner has loaded it before it applies.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use gridwork_geoindex::geojson_io::{self, GeoJsonError, GridFeature};
use gridwork_geoindex::validate::{self, Report};
use gridwork_storage::entity::unit;
use gridwork_storage::grids::{self, GridRow, NewVersion};
use gridwork_storage::StorageError;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};

/// What an import is asked to do.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    pub label: String,
    /// Default: now + the lead time, plus a margin for the write.
    pub valid_from: Option<DateTime<Utc>>,
    /// The counties the version covers (their old grids stop at
    /// `valid_from`); default: the counties of its grids.
    pub counties: Option<Vec<String>>,
    pub source: String,
    pub created_by: String,
    /// Validate only; store nothing.
    pub dry_run: bool,
}

#[derive(Debug)]
pub struct Outcome {
    /// `None` for a dry run.
    pub version: Option<i64>,
    pub grids: usize,
    pub counties: Vec<String>,
    pub valid_from: DateTime<Utc>,
    pub report: Report,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the file is not a valid grid FeatureCollection ({} problem(s)); first: {}", .0.len(), .0.first().map(|e| e.to_string()).unwrap_or_default())]
    Parse(Vec<GeoJsonError>),
    #[error("the grids did not validate: {} error(s)", .0.errors().count())]
    Invalid(Report),
    #[error("the file has no grids")]
    Empty,
    #[error("county {0} is not a county gridwork knows (import its boundary first)")]
    UnknownCounty(String),
    #[error("valid_from {valid_from} is too soon: a new version must be stored at least {lead_ms} ms before it applies (earliest {earliest})")]
    TooSoon { valid_from: DateTime<Utc>, earliest: DateTime<Utc>, lead_ms: u64 },
    #[error("writing took too long: the version would have been visible only after {valid_from}; nothing was stored, retry with a later valid_from")]
    TooSlow { valid_from: DateTime<Utc> },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Margin for the write itself, on top of the lead time.
const WRITE_MARGIN_MS: i64 = 10_000;

/// The counties the database knows, with their boundaries.
pub async fn counties(db: &DatabaseConnection) -> Result<HashMap<String, geo_types::MultiPolygon<f64>>, StorageError> {
    let mut out = HashMap::new();
    for u in unit::Entity::find().filter(unit::Column::Level.eq("county")).all(db).await? {
        if let Some(g) = u.geometry.and_then(|t| geojson_io::parse_geometry(&t).ok()) {
            out.insert(u.code, g);
        }
    }
    Ok(out)
}

/// Parses, validates and (unless a dry run) stores `text` as a new version.
/// `progress` gets one line per step.
pub async fn import(
    db: &DatabaseConnection,
    text: &str,
    opts: ImportOptions,
    lead_ms: u64,
    mut progress: impl FnMut(&str),
) -> Result<Outcome, ImportError> {
    let features = geojson_io::parse_grids(text).map_err(ImportError::Parse)?;
    if features.is_empty() {
        return Err(ImportError::Empty);
    }
    progress(&format!("parsed {} grids", features.len()));
    let known = counties(db).await?;
    let (features, known, report) = tokio::task::spawn_blocking(move || {
        let report = validate::validate(&features, &known);
        (features, known, report)
    })
    .await
    .map_err(|e| ImportError::Storage(StorageError::Connect(format!("validation task failed: {e}"))))?;
    progress(&format!(
        "validated {} grids in {} counties: {} errors, {} warnings",
        report.grids,
        report.counties,
        report.errors().count(),
        report.warnings().count()
    ));
    if !report.is_ok() {
        return Err(ImportError::Invalid(report));
    }
    let mut covered: BTreeSet<String> = features.iter().map(|g| g.code[..6].to_owned()).collect();
    if let Some(extra) = &opts.counties {
        for c in extra {
            if !known.contains_key(c) {
                return Err(ImportError::UnknownCounty(c.clone()));
            }
            covered.insert(c.clone());
        }
    }
    let lead = chrono::Duration::milliseconds(lead_ms as i64);
    let earliest = Utc::now() + lead;
    let valid_from = match opts.valid_from {
        Some(t) if t < earliest => return Err(ImportError::TooSoon { valid_from: t, earliest, lead_ms }),
        Some(t) => t,
        None => earliest + chrono::Duration::milliseconds(WRITE_MARGIN_MS),
    };
    let counties: Vec<String> = covered.into_iter().collect();
    if opts.dry_run {
        return Ok(Outcome { version: None, grids: features.len(), counties, valid_from, report });
    }
    let n = features.len();
    let rows: Vec<GridRow> = features.into_iter().map(row).collect();
    let version = NewVersion {
        label: if opts.label.is_empty() { format!("import of {n} grids") } else { opts.label },
        valid_from,
        counties: counties.clone(),
        source: opts.source,
        created_by: opts.created_by,
    };
    let step = (n / 10).max(1);
    let mut last = 0;
    let id = grids::insert_version(db, version, rows, valid_from - lead, |written| {
        if written - last >= step || written == n {
            last = written;
            progress(&format!("stored {written}/{n} grids"));
        }
    })
    .await?
    .ok_or(ImportError::TooSlow { valid_from })?;
    progress(&format!("version {id} stored: {n} grids in {} counties, valid from {valid_from}", counties.len()));
    Ok(Outcome { version: Some(id), grids: n, counties, valid_from, report })
}

fn row(g: GridFeature) -> GridRow {
    GridRow {
        // The street's centre unless the file names one.
        centre: g.centre.clone().unwrap_or_else(|| g.code[..9].to_owned()),
        geometry: geojson_io::geometry_to_string(&g.geometry),
        code: g.code,
        name: g.name,
        community: g.community,
    }
}

/// A stored version as a grid FeatureCollection (the import format).
pub async fn export(db: &DatabaseConnection, version_id: i64) -> Result<Option<String>, StorageError> {
    let shapes = grids::shapes(db, version_id).await?;
    if shapes.is_empty() {
        return Ok(None);
    }
    let features: Vec<GridFeature> = shapes
        .into_iter()
        .filter_map(|s| {
            let geometry = geojson_io::parse_geometry(&s.geometry).ok()?;
            Some(GridFeature { code: s.code, name: s.name, community: s.community, centre: Some(s.centre), geometry })
        })
        .collect();
    Ok(Some(geojson_io::grids_to_geojson(&features)))
}
