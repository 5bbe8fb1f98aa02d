//! The area an Open311 endpoint serves: the counties of gridwork's grid
//! versions with their boundaries, and the `jurisdiction_id` checked
//! against them.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use geo::{BoundingRect, Closest, ClosestPoint, Distance, Haversine, Intersects};
use gridwork_domain::codes::{self, Level};
use gridwork_storage::entity::{grid_version, unit};
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter};

use super::params::Params;
use crate::error::Open311Error;
use crate::State;

/// How often each worker reloads the counties gridwork serves.
const AREAS_REFRESH: Duration = Duration::from_secs(60);

/// The counties gridwork serves (those of its grid versions) with their
/// boundaries: what `jurisdiction_id`, a key's area and a request's lat/long
/// are checked against. One per worker, reloaded every minute.
#[derive(Default)]
pub struct Areas {
    cached: Mutex<Option<Arc<Served>>>,
}

pub(super) struct Served {
    loaded: Instant,
    counties: Vec<String>,
    shapes: Vec<Shape>,
}

pub(super) struct Shape {
    county: String,
    area: geo::MultiPolygon<f64>,
    bbox: geo::Rect<f64>,
}

impl Areas {
    pub(super) async fn get(&self, db: &DatabaseConnection) -> Result<Arc<Served>, Open311Error> {
        let cached = self.cached.lock().ok().and_then(|g| g.clone());
        if let Some(s) = cached.filter(|s| s.loaded.elapsed() < AREAS_REFRESH) {
            return Ok(s);
        }
        let fresh = Arc::new(Served::load(db).await?);
        if let Ok(mut g) = self.cached.lock() {
            *g = Some(fresh.clone());
        }
        Ok(fresh)
    }
}

impl Served {
    async fn load(db: &DatabaseConnection) -> Result<Served, DbErr> {
        let counties: BTreeSet<String> =
            grid_version::Entity::find().all(db).await?.iter().flat_map(|v| v.county_list()).collect();
        let units = unit::Entity::find().filter(unit::Column::Code.is_in(counties.iter().cloned())).all(db).await?;
        let shapes = units
            .into_iter()
            .filter_map(|u| {
                let area = gridwork_geoindex::geojson_io::parse_geometry(u.geometry.as_deref()?).ok()?;
                let bbox = area.bounding_rect()?;
                Some(Shape { county: u.code, area, bbox })
            })
            .collect();
        Ok(Served { loaded: Instant::now(), counties: counties.into_iter().collect(), shapes })
    }

    /// The cities (or provinces) served, to name in an error.
    pub(super) fn summary(&self) -> String {
        let cities: BTreeSet<String> =
            self.counties.iter().filter_map(|c| c.get(..4)).map(|c| format!("{c}00")).collect();
        if cities.is_empty() {
            "nothing yet (no grids imported)".to_owned()
        } else {
            cities.into_iter().collect::<Vec<_>>().join(", ")
        }
    }

    /// Whether `code` names a province, city or county that covers a
    /// county gridwork serves.
    fn serves(&self, code: &str) -> bool {
        matches!(codes::level_of(code), Ok(Level::Province | Level::City | Level::County))
            && self.counties.iter().any(|c| codes::covers(code, c))
    }

    /// The served county a point lies in, or failing that the nearest
    /// within `tolerance_m` (the assigner's tolerance).
    pub(super) fn locate(&self, lon: f64, lat: f64, tolerance_m: f64) -> Option<&str> {
        let p = geo::Point::new(lon, lat);
        if let Some(s) = self.shapes.iter().find(|s| s.bbox.intersects(&p) && s.area.intersects(&p)) {
            return Some(&s.county);
        }
        self.shapes
            .iter()
            .filter_map(|s| {
                let d = match s.area.closest_point(&p) {
                    Closest::Intersection(_) => 0.0,
                    Closest::SinglePoint(q) => Haversine.distance(p, q),
                    Closest::Indeterminate => return None,
                };
                (d <= tolerance_m).then_some((s, d))
            })
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(s, _)| s.county.as_str())
    }
}

/// The `jurisdiction_id`, checked: absent, or a province, city or county
/// code over counties gridwork serves (404 otherwise, as the spec says).
pub(super) async fn jurisdiction(state: &State, areas: &Areas, p: &Params) -> Result<Option<String>, Open311Error> {
    let Some(j) = p.get("jurisdiction_id") else {
        return Ok(None);
    };
    let served = areas.get(&state.db).await?;
    if !served.serves(j) {
        return Err(Open311Error::not_found(format!(
            "jurisdiction_id {j:?} not found: this endpoint serves {} (a province, city or county code)",
            served.summary()
        )));
    }
    Ok(Some(j.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn served_counties_locate_points_inside_and_near() {
        let square = r#"{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,1],[0,0]],[[0.4,0.4],[0.6,0.4],[0.6,0.6],[0.4,0.6],[0.4,0.4]]]}"#;
        let area = gridwork_geoindex::geojson_io::parse_geometry(square).unwrap();
        let bbox = area.bounding_rect().unwrap();
        let served = Served {
            loaded: Instant::now(),
            counties: vec!["370100".into()],
            shapes: vec![Shape { county: "370100".into(), area, bbox }],
        };
        assert_eq!(served.locate(0.2, 0.2, 200.0), Some("370100"));
        assert_eq!(served.locate(0.5, 0.5, 200.0), None, "in the hole, 11 km from any edge");
        // 0.001° east of the edge at the equator: about 111 m.
        assert_eq!(served.locate(1.001, 0.5, 200.0), Some("370100"));
        assert_eq!(served.locate(1.001, 0.5, 100.0), None);
    }
}
