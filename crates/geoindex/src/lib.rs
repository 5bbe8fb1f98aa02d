//! The grid index: which comprehensive grid contains a point.
//!
//! Rules (see `docs/architecture.md`):
//! - a point inside (or on the boundary of) one or more grids goes to the
//!   grid with the smallest code among them: a point on an edge shared by two
//!   grids always goes to the same one;
//! - a point outside every grid but within the tolerance (default 200 m) goes
//!   to the nearest grid, flagged approximate with its distance;
//! - anything else is unassigned and belongs to the county that contains it
//!   (or the nearest county), whose centre triages it.
//!
//! Coordinates are WGS-84 (lon, lat); [`gcj02_to_wgs84`] converts what
//! Chinese map SDKs report.

use geo::{BoundingRect, Closest, ClosestPoint, Distance, Haversine, Intersects};
use geo_types::{Coord, MultiPolygon, Point};
use rstar::{RTree, RTreeObject, AABB};

mod gcj02;
pub mod geojson_io;
pub mod synth;

pub use gcj02::{gcj02_to_wgs84, wgs84_to_gcj02};

/// One polygon of the index: a grid or a county.
#[derive(Debug, Clone)]
pub struct Area {
    pub code: String,
    pub geometry: MultiPolygon<f64>,
}

struct Entry {
    idx: usize,
    bbox: AABB<[f64; 2]>,
}

impl RTreeObject for Entry {
    type Envelope = AABB<[f64; 2]>;
    fn envelope(&self) -> Self::Envelope {
        self.bbox
    }
}

/// Where a point belongs.
#[derive(Debug, Clone, PartialEq)]
pub enum Located {
    /// Inside (or on the edge of) this grid.
    Inside { grid: String },
    /// Outside every grid, within tolerance of this one.
    Approximate { grid: String, distance_m: f64 },
    /// No grid within tolerance; `county` contains the point or is the
    /// nearest county (`None` only when the index has no counties).
    Unassigned { county: Option<String>, inside_county: bool },
}

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("area {0:?} has an empty geometry")]
    Empty(String),
}

/// An immutable index of grids and counties.
pub struct GridIndex {
    grids: Vec<Area>,
    tree: RTree<Entry>,
    counties: Vec<Area>,
    tolerance_m: f64,
}

const METRES_PER_DEGREE_LAT: f64 = 111_320.0;

fn aabb(code: &str, g: &MultiPolygon<f64>) -> Result<AABB<[f64; 2]>, IndexError> {
    let r = g.bounding_rect().ok_or_else(|| IndexError::Empty(code.to_owned()))?;
    Ok(AABB::from_corners([r.min().x, r.min().y], [r.max().x, r.max().y]))
}

/// Metres from `p` to the nearest point of `g` (0 inside).
fn distance_m(p: Point<f64>, g: &MultiPolygon<f64>) -> f64 {
    match g.closest_point(&p) {
        Closest::Intersection(_) => 0.0,
        Closest::SinglePoint(q) => Haversine.distance(p, q),
        Closest::Indeterminate => f64::INFINITY,
    }
}

impl GridIndex {
    pub fn new(mut grids: Vec<Area>, counties: Vec<Area>, tolerance_m: f64) -> Result<Self, IndexError> {
        // Sorted by code, so that the first match is the smallest code.
        grids.sort_by(|a, b| a.code.cmp(&b.code));
        let mut entries = Vec::with_capacity(grids.len());
        for (idx, g) in grids.iter().enumerate() {
            entries.push(Entry { idx, bbox: aabb(&g.code, &g.geometry)? });
        }
        for c in &counties {
            aabb(&c.code, &c.geometry)?;
        }
        Ok(GridIndex { grids, tree: RTree::bulk_load(entries), counties, tolerance_m })
    }

    pub fn len(&self) -> usize {
        self.grids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.grids.is_empty()
    }

    pub fn tolerance_m(&self) -> f64 {
        self.tolerance_m
    }

    /// Locates a WGS-84 point.
    pub fn locate(&self, lon: f64, lat: f64) -> Located {
        let p = Point::new(lon, lat);
        let mut best: Option<usize> = None;
        for e in self.tree.locate_in_envelope_intersecting(&AABB::from_point([lon, lat])) {
            if best.is_some_and(|b| b < e.idx) {
                continue;
            }
            if self.grids[e.idx].geometry.intersects(&p) {
                best = Some(e.idx);
            }
        }
        if let Some(i) = best {
            return Located::Inside { grid: self.grids[i].code.clone() };
        }
        // Within tolerance: search the boxes near the point.
        let dlat = self.tolerance_m / METRES_PER_DEGREE_LAT;
        let dlon = dlat / lat.to_radians().cos().abs().max(0.01);
        let window = AABB::from_corners([lon - dlon, lat - dlat], [lon + dlon, lat + dlat]);
        let mut nearest: Option<(f64, usize)> = None;
        for e in self.tree.locate_in_envelope_intersecting(&window) {
            let d = distance_m(p, &self.grids[e.idx].geometry);
            if d <= self.tolerance_m && nearest.is_none_or(|(bd, bi)| d < bd || (d == bd && e.idx < bi)) {
                nearest = Some((d, e.idx));
            }
        }
        if let Some((d, i)) = nearest {
            return Located::Approximate { grid: self.grids[i].code.clone(), distance_m: d };
        }
        if let Some(c) = self.counties.iter().find(|c| c.geometry.intersects(&p)) {
            return Located::Unassigned { county: Some(c.code.clone()), inside_county: true };
        }
        let county = self
            .counties
            .iter()
            .map(|c| (distance_m(p, &c.geometry), &c.code))
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, code)| code.clone());
        Located::Unassigned { county, inside_county: false }
    }

    /// A point inside the grid `code` (for demos and tests).
    pub fn interior_point(&self, code: &str) -> Option<(f64, f64)> {
        use geo::InteriorPoint;
        let g = self.grids.iter().find(|g| g.code == code)?;
        let p = g.geometry.interior_point()?;
        Some((p.x(), p.y()))
    }

    pub fn grids(&self) -> &[Area] {
        &self.grids
    }
}

/// A coordinate helper for tests and tools.
pub fn coord(lon: f64, lat: f64) -> Coord<f64> {
    Coord { x: lon, y: lat }
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo_types::{polygon, MultiPolygon};

    fn square(code: &str, x0: f64, y0: f64, size: f64) -> Area {
        let p = polygon![(x: x0, y: y0), (x: x0 + size, y: y0), (x: x0 + size, y: y0 + size), (x: x0, y: y0 + size)];
        Area { code: code.into(), geometry: MultiPolygon(vec![p]) }
    }

    #[test]
    fn inside_edge_tolerance_and_outside() {
        // Two grids side by side sharing the edge x = 122.01, inside one county.
        let a = square("371002001001002", 122.00, 37.50, 0.01);
        let b = square("371002001001001", 122.01, 37.50, 0.01);
        let county = square("371002", 121.9, 37.4, 0.3);
        let idx = GridIndex::new(vec![a, b], vec![county], 200.0).unwrap();
        assert_eq!(idx.locate(122.005, 37.505), Located::Inside { grid: "371002001001002".into() });
        assert_eq!(idx.locate(122.015, 37.505), Located::Inside { grid: "371002001001001".into() });
        // On the shared edge: the smaller code, every time.
        assert_eq!(idx.locate(122.01, 37.505), Located::Inside { grid: "371002001001001".into() });
        // 0.001° south of the grids (~111 m): approximate.
        match idx.locate(122.005, 37.499) {
            Located::Approximate { grid, distance_m } => {
                assert_eq!(grid, "371002001001002");
                assert!((distance_m - 111.0).abs() < 2.0, "{distance_m}");
            }
            other => panic!("{other:?}"),
        }
        // 0.01° south (~1.1 km): unassigned, in the county.
        assert_eq!(
            idx.locate(122.005, 37.49),
            Located::Unassigned { county: Some("371002".into()), inside_county: true }
        );
        // Far away: the nearest county.
        assert_eq!(
            idx.locate(100.0, 30.0),
            Located::Unassigned { county: Some("371002".into()), inside_county: false }
        );
    }
}
