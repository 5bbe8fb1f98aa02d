//! The grid registry in memory: every grid version, as indexes by time.
//!
//! A version covers a set of counties from its `valid_from` on. At any
//! instant, a county's grids are those of the latest version covering it
//! that is already valid. Each instant at which some version becomes valid
//! starts an *epoch*, with one [`GridIndex`] of the grids active then; a
//! report is located with the epoch of its occurrence time.
//!
//! Versions are immutable once stored, and each must be stored at least
//! `assigner.version_lead_ms` before it becomes valid. The registry knows
//! when it last looked (`checked_at`): it is complete for every instant up
//! to `checked_at + lead`. Newer reports make the assigner look again first.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use gridwork_geoindex::{geojson_io, Area, GridIndex};
use gridwork_storage::entity::{grid_version, unit};
use gridwork_storage::grids;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};

use crate::Grids;

/// The grids active from `start` on.
pub struct Epoch {
    pub start: DateTime<Utc>,
    /// Which version each county's grids come from.
    pub versions: BTreeMap<String, i64>,
    pub grids: Arc<Grids>,
}

pub struct Registry {
    /// Oldest first; never empty.
    pub epochs: Vec<Epoch>,
    /// The highest version id loaded.
    pub latest: Option<i64>,
    /// When the database was last asked for new versions.
    pub checked_at: DateTime<Utc>,
}

/// A grid of some version, parsed.
#[derive(Clone)]
struct Shape {
    code: String,
    centre: String,
    geometry: geo_types::MultiPolygon<f64>,
}

/// Which version covers each county at each instant a version starts.
/// `versions` must be ordered by (valid_from, id); the result is ordered
/// by start and keeps only instants at which something changes.
pub fn timeline(versions: &[grid_version::Model]) -> Vec<(DateTime<Utc>, BTreeMap<String, i64>)> {
    let mut out: Vec<(DateTime<Utc>, BTreeMap<String, i64>)> = Vec::new();
    let mut active: BTreeMap<String, i64> = BTreeMap::new();
    for v in versions {
        for county in v.county_list() {
            active.insert(county, v.id);
        }
        match out.last_mut() {
            Some((start, map)) if *start == v.valid_from => *map = active.clone(),
            _ => out.push((v.valid_from, active.clone())),
        }
    }
    out
}

impl Registry {
    /// The index for a report that occurred at `t`: the last epoch started
    /// by then, or the first one for reports older than every epoch kept.
    pub fn at(&self, t: DateTime<Utc>) -> &Arc<Grids> {
        let i = self.epochs.partition_point(|e| e.start <= t);
        &self.epochs[i.saturating_sub(1)].grids
    }

    /// Loads every version and builds the newest `max_epochs` epochs.
    pub async fn load(
        db: &DatabaseConnection,
        tolerance_m: f64,
        cells_per_grid: f64,
        max_epochs: usize,
    ) -> anyhow::Result<Registry> {
        let checked_at = Utc::now();
        let versions = grids::versions(db).await?;
        let latest = versions.iter().map(|v| v.id).max();
        let mut counties = Vec::new();
        for u in unit::Entity::find().filter(unit::Column::Level.eq("county")).all(db).await? {
            if let Some(text) = u.geometry {
                let geometry =
                    geojson_io::parse_geometry(&text).map_err(|e| anyhow::anyhow!("county {}: {e}", u.code))?;
                counties.push(Area { code: u.code, geometry });
            }
        }
        let mut line = timeline(&versions);
        if line.len() > max_epochs {
            line.drain(..line.len() - max_epochs);
        }
        // Parse each version's grids once, whichever epochs use them.
        let mut parsed: HashMap<i64, Vec<Shape>> = HashMap::new();
        for (_, map) in &line {
            for &id in map.values() {
                if parsed.contains_key(&id) {
                    continue;
                }
                let mut shapes = Vec::new();
                for g in grids::shapes(db, id).await? {
                    let geometry = geojson_io::parse_geometry(&g.geometry)
                        .map_err(|e| anyhow::anyhow!("grid {} of version {id}: {e}", g.code))?;
                    shapes.push(Shape { code: g.code, centre: g.centre, geometry });
                }
                parsed.insert(id, shapes);
            }
        }
        let parsed = Arc::new(parsed);
        let counties = Arc::new(counties);
        let epochs = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<Epoch>> {
            if line.is_empty() {
                // No grids yet: counties only, everything goes to triage.
                let index = GridIndex::with_resolution(vec![], counties.to_vec(), tolerance_m, cells_per_grid)?;
                let grids = Arc::new(Grids { index, centres: HashMap::new() });
                return Ok(vec![Epoch { start: DateTime::<Utc>::MIN_UTC, versions: BTreeMap::new(), grids }]);
            }
            line.into_iter()
                .map(|(start, versions)| {
                    let mut areas = Vec::new();
                    let mut centres = HashMap::new();
                    for (county, id) in &versions {
                        for s in parsed.get(id).into_iter().flatten().filter(|s| s.code.starts_with(county.as_str())) {
                            centres.insert(s.code.clone(), s.centre.clone());
                            areas.push(Area { code: s.code.clone(), geometry: s.geometry.clone() });
                        }
                    }
                    let index = GridIndex::with_resolution(areas, counties.to_vec(), tolerance_m, cells_per_grid)?;
                    Ok(Epoch { start, versions, grids: Arc::new(Grids { index, centres }) })
                })
                .collect()
        })
        .await??;
        Ok(Registry { epochs, latest, checked_at })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn v(id: i64, day: u32, counties: &str) -> grid_version::Model {
        grid_version::Model {
            id,
            label: format!("v{id}"),
            valid_from: Utc.with_ymd_and_hms(2026, 1, day, 0, 0, 0).unwrap(),
            created_at: Utc.with_ymd_and_hms(2025, 12, 1, 0, 0, 0).unwrap(),
            counties: counties.into(),
            grids: 1,
            source: "test".into(),
            created_by: "test".into(),
        }
    }

    #[test]
    fn each_county_takes_the_latest_valid_version_that_covers_it() {
        let versions = [v(1, 1, "371002,371003"), v(3, 5, "371003"), v(2, 5, "371082"), v(4, 9, "371002,371003")];
        let mut sorted = versions.to_vec();
        sorted.sort_by_key(|v| (v.valid_from, v.id));
        let line = timeline(&sorted);
        let days: Vec<u32> = line.iter().map(|(t, _)| chrono::Datelike::day(t)).collect();
        assert_eq!(days, [1, 5, 9]);
        let map = |pairs: &[(&str, i64)]| pairs.iter().map(|(c, i)| (c.to_string(), *i)).collect::<BTreeMap<_, _>>();
        assert_eq!(line[0].1, map(&[("371002", 1), ("371003", 1)]));
        assert_eq!(line[1].1, map(&[("371002", 1), ("371003", 3), ("371082", 2)]));
        assert_eq!(line[2].1, map(&[("371002", 4), ("371003", 4), ("371082", 2)]));
    }
}
