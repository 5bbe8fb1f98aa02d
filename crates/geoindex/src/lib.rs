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

use geo_types::{Coord, MultiPolygon};
use rstar::{RTree, RTreeObject, AABB};

mod edgecell;
mod flat;
mod gcj02;
pub mod geojson_io;
mod raster;
pub mod synth;
pub mod validate;

pub use flat::{haversine_m, METRES_PER_DEGREE};
pub use gcj02::{gcj02_to_wgs84, wgs84_to_gcj02};
pub use raster::{EdgeCells, RasterStats};

use flat::Flat;
use raster::{Cell, County, Raster};

/// One polygon of the index: a grid or a county.
#[derive(Debug, Clone)]
pub struct Area {
    pub code: String,
    pub geometry: MultiPolygon<f64>,
}

struct Entry {
    idx: u32,
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

/// Where a point belongs, by index numbers (see [`GridIndex::lookup`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Hit {
    Inside(u32),
    Approximate { grid: u32, distance_m: f64 },
    Unassigned { county: Option<u32>, inside_county: bool },
}

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("area {0:?} has an empty geometry")]
    Empty(String),
    #[error("grid code {0:?} appears twice")]
    Duplicate(String),
    #[error("too many grids for one index: {0}")]
    TooMany(usize),
}

/// Heap memory of an index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryUse {
    /// The polygons' raw coordinates (16 bytes per vertex).
    pub raw_coordinates: usize,
    /// Everything else: raster, candidate lists, R-tree, boxes, rings, codes.
    pub index: usize,
}

/// Default resolution: raster cells per grid bounding box.
pub const DEFAULT_CELLS_PER_GRID: f64 = 32.0;

/// An immutable index of grids and counties.
///
/// [`GridIndex::locate`] answers from the raster where it can (see
/// `raster.rs`) and falls back to exact geometry otherwise;
/// [`GridIndex::locate_exact`] answers the same question from geometry
/// alone, and the two always agree (tested).
pub struct GridIndex {
    codes: Vec<String>,
    grids: Flat,
    tree: RTree<Entry>,
    county_codes: Vec<String>,
    counties: Flat,
    raster: Raster,
    tolerance_m: f64,
    /// cos(reference latitude): the plane in which the nearest county is measured.
    kx: f64,
}

impl GridIndex {
    pub fn new(grids: Vec<Area>, counties: Vec<Area>, tolerance_m: f64) -> Result<Self, IndexError> {
        Self::with_resolution(grids, counties, tolerance_m, DEFAULT_CELLS_PER_GRID)
    }

    /// As [`GridIndex::new`], with `cells_per_grid` raster cells per grid
    /// bounding box (more cells: faster lookups, more memory).
    pub fn with_resolution(
        grids: Vec<Area>,
        counties: Vec<Area>,
        tolerance_m: f64,
        cells_per_grid: f64,
    ) -> Result<Self, IndexError> {
        Self::with_options(grids, counties, tolerance_m, cells_per_grid, EdgeCells::Lines)
    }

    /// As [`GridIndex::with_resolution`] with a choice of edge cells (raster
    /// cells crossed by grid boundaries that carry the edges in them, see
    /// `edgecell.rs`): [`EdgeCells::None`] leaves them out, so that lookups
    /// there test the candidate grids' raw coordinates, and
    /// [`EdgeCells::Blocks`] leaves out line cells: the index as it was
    /// before each, for comparison in benchmarks and tests. Answers are the
    /// same.
    pub fn with_options(
        mut grids: Vec<Area>,
        mut counties: Vec<Area>,
        tolerance_m: f64,
        cells_per_grid: f64,
        edge_cells: EdgeCells,
    ) -> Result<Self, IndexError> {
        if grids.len() >= 1 << 29 {
            return Err(IndexError::TooMany(grids.len()));
        }
        // Sorted by code, so that the first match is the smallest code.
        grids.sort_by(|a, b| a.code.cmp(&b.code));
        if let Some(w) = grids.windows(2).find(|w| w[0].code == w[1].code) {
            return Err(IndexError::Duplicate(w[0].code.clone()));
        }
        counties.sort_by(|a, b| a.code.cmp(&b.code));
        let flat =
            Flat::new(grids.iter().map(|g| &g.geometry)).map_err(|i| IndexError::Empty(grids[i].code.clone()))?;
        let cflat =
            Flat::new(counties.iter().map(|c| &c.geometry)).map_err(|i| IndexError::Empty(counties[i].code.clone()))?;
        let reference = if cflat.is_empty() { &flat } else { &cflat };
        let (lo, hi) = reference
            .bboxes
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), b| (lo.min(b[1]), hi.max(b[3])));
        let kx = if lo <= hi { ((lo + hi) / 2.0).to_radians().cos() } else { 1.0 };
        let entries = flat
            .bboxes
            .iter()
            .enumerate()
            .map(|(i, b)| Entry { idx: i as u32, bbox: AABB::from_corners([b[0], b[1]], [b[2], b[3]]) })
            .collect();
        let raster = Raster::build(&flat, &cflat, tolerance_m, kx, cells_per_grid, edge_cells);
        Ok(GridIndex {
            codes: grids.into_iter().map(|g| g.code).collect(),
            grids: flat,
            tree: RTree::bulk_load(entries),
            county_codes: counties.into_iter().map(|c| c.code).collect(),
            counties: cflat,
            raster,
            tolerance_m,
            kx,
        })
    }

    pub fn len(&self) -> usize {
        self.codes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }

    pub fn tolerance_m(&self) -> f64 {
        self.tolerance_m
    }

    /// The grid codes, in order.
    pub fn codes(&self) -> &[String] {
        &self.codes
    }

    /// Locates a WGS-84 point.
    pub fn locate(&self, lon: f64, lat: f64) -> Located {
        self.to_located(self.lookup(lon, lat))
    }

    /// Locates a WGS-84 point, answering with index numbers (no allocation):
    /// see [`GridIndex::grid_code`] and [`GridIndex::county_code`].
    #[inline]
    pub fn lookup(&self, lon: f64, lat: f64) -> Hit {
        match self.raster.cell(lon, lat) {
            Cell::Grid(i) => Hit::Inside(i),
            Cell::Few(a, b) => {
                if self.grids.contains(a as usize, lon, lat) {
                    Hit::Inside(a)
                } else if b != u32::MAX && self.grids.contains(b as usize, lon, lat) {
                    Hit::Inside(b)
                } else {
                    self.beyond_grids(lon, lat)
                }
            }
            Cell::Line { word, px, py } => match edgecell::line_answer(word, px, py) {
                Some(u32::MAX) => self.beyond_grids(lon, lat),
                Some(grid) => Hit::Inside(grid),
                // Within ~7 cm of the edge: the raw coordinates decide, the
                // smaller number first.
                None => {
                    let (left, right) = edgecell::line_grids(word);
                    let two = [left.min(right), left.max(right)];
                    let n = if two[1] == u32::MAX { 1 } else { 2 };
                    self.first_containing(&two[..n], lon, lat)
                }
            },
            Cell::Edges { block, px, py } => {
                let cands = edgecell::candidates(block);
                match edgecell::test(block, px, py) {
                    Some(0) => self.beyond_grids(lon, lat),
                    Some(inside) => Hit::Inside(cands[inside.trailing_zeros() as usize]),
                    // Within ~2 cm of an edge: the raw coordinates decide.
                    None => self.first_containing(cands, lon, lat),
                }
            }
            Cell::Mixed(list) => self.first_containing(list, lon, lat),
            Cell::Far { county, near } => {
                if near {
                    if let Some(hit) = self.near_grid(lon, lat) {
                        return hit;
                    }
                }
                match county {
                    County::In(c) => Hit::Unassigned { county: Some(c), inside_county: true },
                    County::Crossed(list) => match list.iter().find(|&&c| self.counties.contains(c as usize, lon, lat))
                    {
                        Some(&c) => Hit::Unassigned { county: Some(c), inside_county: true },
                        None => Hit::Unassigned { county: self.nearest_county(lon, lat, &[]), inside_county: false },
                    },
                    County::Nearest(c) => Hit::Unassigned { county: Some(c), inside_county: false },
                    County::NearestOf(list) => {
                        Hit::Unassigned { county: self.nearest_county(lon, lat, list), inside_county: false }
                    }
                }
            }
            Cell::OffRaster => self.beyond_grids(lon, lat),
        }
    }

    /// The first of `cands` that contains the point, else what lies beyond.
    fn first_containing(&self, cands: &[u32], lon: f64, lat: f64) -> Hit {
        match cands.iter().find(|&&i| self.grids.contains(i as usize, lon, lat)) {
            Some(&i) => Hit::Inside(i),
            None => self.beyond_grids(lon, lat),
        }
    }

    /// Looks up many WGS-84 points `(lon, lat)`, answering as
    /// [`GridIndex::lookup`] does for each, in order. Faster than one
    /// lookup after another when the points are scattered over a large
    /// index: the raster cells (and edge cells' blocks) of a few points at a
    /// time are read before any of them is needed, so that their cache
    /// misses overlap instead of following one another.
    pub fn lookup_many(&self, points: &[(f64, f64)]) -> Vec<Hit> {
        let mut out = Vec::with_capacity(points.len());
        self.lookup_into(points, &mut out);
        out
    }

    /// As [`GridIndex::lookup_many`], appending to `out`.
    pub fn lookup_into(&self, points: &[(f64, f64)], out: &mut Vec<Hit>) {
        const BATCH: usize = 16;
        out.reserve(points.len());
        for chunk in points.chunks(BATCH) {
            let mut words = [0u64; BATCH];
            for (w, &(x, y)) in words.iter_mut().zip(chunk) {
                *w = self.raster.warm(x, y);
            }
            let touched = words[..chunk.len()].iter().fold(0u32, |t, &w| t ^ self.raster.warm_block(w));
            std::hint::black_box(touched);
            out.extend(chunk.iter().map(|&(x, y)| self.lookup(x, y)));
        }
    }

    /// Locates many WGS-84 points `(lon, lat)`, as [`GridIndex::locate`]
    /// does each, with [`GridIndex::lookup_many`].
    pub fn locate_many(&self, points: &[(f64, f64)]) -> Vec<Located> {
        self.lookup_many(points).into_iter().map(|h| self.to_located(h)).collect()
    }

    /// Locates a WGS-84 point from geometry alone, without the raster: the
    /// reference [`GridIndex::locate`] is tested against.
    pub fn locate_exact(&self, lon: f64, lat: f64) -> Located {
        self.to_located(match (0..self.grids.len()).find(|&i| self.grids.contains(i, lon, lat)) {
            Some(i) => Hit::Inside(i as u32),
            None => self.beyond_grids(lon, lat),
        })
    }

    /// The code of grid number `i` of a [`Hit`].
    pub fn grid_code(&self, i: u32) -> &str {
        &self.codes[i as usize]
    }

    /// The code of county number `c` of a [`Hit`].
    pub fn county_code(&self, c: u32) -> &str {
        &self.county_codes[c as usize]
    }

    pub fn to_located(&self, hit: Hit) -> Located {
        match hit {
            Hit::Inside(i) => Located::Inside { grid: self.grid_code(i).to_owned() },
            Hit::Approximate { grid, distance_m } => {
                Located::Approximate { grid: self.grid_code(grid).to_owned(), distance_m }
            }
            Hit::Unassigned { county, inside_county } => {
                Located::Unassigned { county: county.map(|c| self.county_code(c).to_owned()), inside_county }
            }
        }
    }

    /// Outside every grid: the nearest grid within tolerance, else the county.
    fn beyond_grids(&self, lon: f64, lat: f64) -> Hit {
        if let Some(hit) = self.near_grid(lon, lat) {
            return hit;
        }
        match (0..self.counties.len()).find(|&c| self.counties.contains(c, lon, lat)) {
            Some(c) => Hit::Unassigned { county: Some(c as u32), inside_county: true },
            None => Hit::Unassigned { county: self.nearest_county(lon, lat, &[]), inside_county: false },
        }
    }

    /// The nearest grid within tolerance of a point outside every grid.
    fn near_grid(&self, lon: f64, lat: f64) -> Option<Hit> {
        let dlat = self.tolerance_m / (METRES_PER_DEGREE * 0.99);
        let dlon = dlat / (lat.abs() + dlat).min(89.0).to_radians().cos();
        let window = AABB::from_corners([lon - dlon, lat - dlat], [lon + dlon, lat + dlat]);
        let mut nearest: Option<(f64, u32)> = None;
        for e in self.tree.locate_in_envelope_intersecting(&window) {
            let d = self.grids.distance_m(e.idx as usize, lon, lat);
            if d <= self.tolerance_m && nearest.is_none_or(|(bd, bi)| d < bd || (d == bd && e.idx < bi)) {
                nearest = Some((d, e.idx));
            }
        }
        nearest.map(|(distance_m, grid)| Hit::Approximate { grid, distance_m })
    }

    /// The nearest county among `candidates` (all counties when empty), by
    /// distance in the plane (lon·cos φ₀, lat); ties go to the smaller code.
    fn nearest_county(&self, lon: f64, lat: f64, candidates: &[u32]) -> Option<u32> {
        if candidates.len() == 1 {
            return Some(candidates[0]);
        }
        if candidates.is_empty() {
            let all: Vec<u32> = (0..self.counties.len() as u32).collect();
            return raster::nearest_candidates(&self.counties, &all, lon, lat, self.kx, 0.0).first().copied();
        }
        let mut best: Option<(f64, u32)> = None;
        for &c in candidates {
            let d = self.counties.plane_distance_sq(c as usize, lon, lat, self.kx);
            if best.is_none_or(|(bd, _)| d < bd) {
                best = Some((d, c));
            }
        }
        best.map(|(_, c)| c)
    }

    /// The number of counties the index knows.
    pub fn county_count(&self) -> usize {
        self.county_codes.len()
    }

    /// Whether the WGS-84 point lies inside, or within `distance_m` of, an
    /// area `wanted` accepts the code of: a grid, or a county (the point
    /// may lie in a county outside every grid). Intake checks a report's
    /// place against the reporter's area with it (`wanted` = "is this code
    /// under the area?"), with the assignment tolerance as `distance_m`.
    pub fn near(&self, lon: f64, lat: f64, distance_m: f64, wanted: impl Fn(&str) -> bool) -> bool {
        let distance_m = distance_m.max(0.0);
        let dlat = distance_m / (METRES_PER_DEGREE * 0.99);
        let dlon = dlat / (lat.abs() + dlat).min(89.0).to_radians().cos();
        let window = AABB::from_corners([lon - dlon, lat - dlat], [lon + dlon, lat + dlat]);
        let grid_near = self.tree.locate_in_envelope_intersecting(&window).any(|e| {
            let i = e.idx as usize;
            wanted(&self.codes[i]) && self.grids.distance_m(i, lon, lat) <= distance_m
        });
        grid_near
            || (0..self.counties.len()).any(|c| {
                let b = self.counties.bboxes[c];
                wanted(&self.county_codes[c])
                    && lon >= b[0] - dlon
                    && lon <= b[2] + dlon
                    && lat >= b[1] - dlat
                    && lat <= b[3] + dlat
                    && self.counties.distance_m(c, lon, lat) <= distance_m
            })
    }

    /// The grids whose bounding boxes meet the box `[west, south, east,
    /// north]` (degrees, WGS-84), by index number, in no particular order.
    pub fn grids_in(&self, bbox: [f64; 4]) -> impl Iterator<Item = u32> + '_ {
        let window = AABB::from_corners([bbox[0], bbox[1]], [bbox[2], bbox[3]]);
        self.tree.locate_in_envelope_intersecting(&window).map(|e| e.idx)
    }

    /// The rings of grid `i` (closed: the last point repeats the first), as
    /// stored: no hole is told from an outer ring (grids have none).
    pub fn grid_rings(&self, i: u32) -> impl Iterator<Item = &[[f64; 2]]> + '_ {
        self.grids.rings(i as usize)
    }

    /// The number of the county `code`, if the index knows it.
    pub fn county_index(&self, code: &str) -> Option<u32> {
        self.county_codes.binary_search_by(|c| c.as_str().cmp(code)).ok().map(|c| c as u32)
    }

    /// The rings of county `c`, as [`GridIndex::grid_rings`].
    pub fn county_rings(&self, c: u32) -> impl Iterator<Item = &[[f64; 2]]> + '_ {
        self.counties.rings(c as usize)
    }

    /// A point inside the grid `code` (for demos and tests).
    pub fn interior_point(&self, code: &str) -> Option<(f64, f64)> {
        let i = self.codes.binary_search_by(|c| c.as_str().cmp(code)).ok()?;
        let b = self.grids.bboxes[i];
        // The centre of the box, else a lattice of candidate points.
        let n = 64;
        (0..=n * n)
            .map(|k| {
                if k == 0 {
                    ((b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0)
                } else {
                    let (u, v) = (((k - 1) % n) as f64 + 0.5, ((k - 1) / n) as f64 + 0.5);
                    (b[0] + (b[2] - b[0]) * u / n as f64, b[1] + (b[3] - b[1]) * v / n as f64)
                }
            })
            .find(|&(x, y)| self.lookup(x, y) == Hit::Inside(i as u32))
    }

    /// Heap memory held, raw coordinates apart.
    pub fn memory(&self) -> MemoryUse {
        let (gc, grest) = self.grids.heap_bytes();
        let (cc, crest) = self.counties.heap_bytes();
        let codes: usize = self.codes.iter().chain(&self.county_codes).map(|c| c.capacity() + 24).sum();
        // rstar keeps each leaf (4 + 32 bytes, padded to 40) plus inner nodes (about a tenth more).
        let tree = self.tree.size() * 44;
        MemoryUse { raw_coordinates: gc + cc, index: grest + crest + codes + tree + self.raster.heap_bytes() }
    }

    pub fn raster_stats(&self) -> RasterStats {
        self.raster.stats()
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
    fn near_an_area_inside_or_within_a_distance() {
        // Two streets' grids side by side, inside one county with room around.
        let a = square("371002001001001", 122.00, 37.50, 0.01);
        let b = square("371002002001001", 122.01, 37.50, 0.01);
        let county = square("371002", 121.9, 37.4, 0.3);
        let idx = GridIndex::new(vec![a, b], vec![county], 200.0).unwrap();
        let street = |code: &str| code.starts_with("371002001");
        assert!(idx.near(122.005, 37.505, 200.0, street), "inside");
        // In the other street's grid, ~88 m (0.001° of longitude) from the edge.
        assert!(idx.near(122.011, 37.505, 200.0, street));
        assert!(!idx.near(122.011, 37.505, 50.0, street));
        assert!(!idx.near(122.015, 37.505, 200.0, street), "~440 m away");
        // A county-level area: anywhere in the county, grids or not.
        let county_area = |code: &str| code.starts_with("371002");
        assert!(idx.near(121.95, 37.45, 200.0, county_area));
        assert!(!idx.near(121.95, 37.45, 200.0, street), "in the county, not near the street");
        // ~111 m north of the county: within the tolerance; ~1.1 km: not.
        assert!(idx.near(122.0, 37.701, 200.0, county_area));
        assert!(!idx.near(122.0, 37.71, 200.0, county_area));
    }

    #[test]
    fn edge_cells_decide_a_metre_from_an_edge_and_leave_centimetres_to_the_raw_coordinates() {
        let a = square("371002001001002", 122.00, 37.50, 0.01);
        let b = square("371002001001001", 122.01, 37.50, 0.01);
        let county = square("371002", 121.9, 37.4, 0.3);
        let idx = GridIndex::new(vec![a, b], vec![county], 200.0).unwrap();
        let metre = 1.0 / (METRES_PER_DEGREE * 37.505f64.to_radians().cos());
        let (mut decided, mut unsure, mut lines) = (0, 0, 0);
        for k in 0..1_000 {
            let y = 37.5001 + 0.0098 * k as f64 / 1_000.0;
            for (dx, far) in [(-metre, true), (metre, true), (1e-9, false), (0.0, false)] {
                let (x, y) = (122.01 + dx, y);
                // Along the straight shared edge, line cells; next to the
                // squares' corners, blocks.
                let answer = match idx.raster.cell(x, y) {
                    Cell::Line { word, px, py } => {
                        lines += 1;
                        edgecell::line_answer(word, px, py)
                    }
                    Cell::Edges { block, px, py } => edgecell::test(block, px, py)
                        .map(|inside| edgecell::candidates(block)[inside.trailing_zeros() as usize]),
                    other => panic!("({x}, {y}) is not in an edge cell: {other:?}"),
                };
                match (answer, far) {
                    (Some(grid), true) => {
                        decided += 1;
                        let want = if dx < 0.0 { "371002001001002" } else { "371002001001001" };
                        assert_eq!(idx.grid_code(grid), want);
                    }
                    (None, false) => unsure += 1,
                    (got, _) => panic!("({x}, {y}): {got:?}"),
                }
                assert_eq!(idx.locate(x, y), idx.locate_exact(x, y));
            }
        }
        assert_eq!((decided, unsure), (2_000, 2_000));
        assert!(lines > 1_000 && lines < 4_000, "{lines} of 4,000 points in line cells");
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
