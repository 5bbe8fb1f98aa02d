//! The assignment rules of DESIGN's "Geography", one test each, and the
//! fast raster path checked against the exact reference on random points.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

use geo_types::{polygon, LineString, MultiPolygon, Polygon};
use gridwork_geoindex::{Area, EdgeCells, GridIndex, Located};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn square(code: &str, x0: f64, y0: f64, size: f64) -> Area {
    let p = polygon![(x: x0, y: y0), (x: x0 + size, y: y0), (x: x0 + size, y: y0 + size), (x: x0, y: y0 + size)];
    Area { code: code.into(), geometry: MultiPolygon(vec![p]) }
}

fn inside(code: &str) -> Located {
    Located::Inside { grid: code.into() }
}

/// Both lookups, which must agree.
fn locate(idx: &GridIndex, lon: f64, lat: f64) -> Located {
    let fast = idx.locate(lon, lat);
    assert_eq!(fast, idx.locate_exact(lon, lat), "raster and exact disagree at ({lon}, {lat})");
    fast
}

const A: &str = "371002001001001";
const B: &str = "371002001001002";
const C: &str = "371002001001003";
const D: &str = "371002001001004";

/// Four 0.01° squares meeting at (122.01, 37.51), inside county 371002.
fn four() -> GridIndex {
    let grids = vec![
        square(D, 122.01, 37.51, 0.01),
        square(C, 122.00, 37.51, 0.01),
        square(B, 122.01, 37.50, 0.01),
        square(A, 122.00, 37.50, 0.01),
    ];
    GridIndex::new(grids, vec![square("371002", 121.9, 37.4, 0.3)], 200.0).unwrap()
}

#[test]
fn a_point_inside_a_grid_goes_to_that_grid() {
    let idx = four();
    assert_eq!(locate(&idx, 122.005, 37.505), inside(A));
    assert_eq!(locate(&idx, 122.015, 37.505), inside(B));
    assert_eq!(locate(&idx, 122.005, 37.515), inside(C));
    assert_eq!(locate(&idx, 122.019, 37.519), inside(D));
}

#[test]
fn a_point_on_a_shared_edge_or_vertex_goes_to_the_smallest_code_every_time() {
    let idx = four();
    // The edge A|B, the edge B|D, the vertex all four share, a vertex B and D share.
    assert_eq!(locate(&idx, 122.01, 37.505), inside(A));
    assert_eq!(locate(&idx, 122.015, 37.51), inside(B));
    assert_eq!(locate(&idx, 122.01, 37.51), inside(A));
    assert_eq!(locate(&idx, 122.02, 37.51), inside(B));
    // The same whatever order the grids were given in.
    let shuffled = vec![square(A, 122.00, 37.50, 0.01), square(B, 122.01, 37.50, 0.01)];
    let idx = GridIndex::new(shuffled, vec![], 200.0).unwrap();
    assert_eq!(locate(&idx, 122.01, 37.505), inside(A));
    // A diagonal shared edge, with a point exactly on it.
    let t1 = polygon![(x: 0.0, y: 0.0), (x: 3.0, y: 0.0), (x: 0.0, y: 3.0)];
    let t2 = polygon![(x: 3.0, y: 0.0), (x: 3.0, y: 3.0), (x: 0.0, y: 3.0)];
    let idx = GridIndex::new(
        vec![Area { code: B.into(), geometry: t1.into() }, Area { code: A.into(), geometry: t2.into() }],
        vec![],
        200.0,
    )
    .unwrap();
    assert_eq!(locate(&idx, 1.5, 1.5), inside(A));
    assert_eq!(locate(&idx, 1.0, 1.0), inside(B));
}

#[test]
fn a_hole_belongs_to_the_grid_that_fills_it_or_to_nobody() {
    let shell = polygon!(
        exterior: [(x: 122.0, y: 37.5), (x: 122.03, y: 37.5), (x: 122.03, y: 37.53), (x: 122.0, y: 37.53)],
        interiors: [[(x: 122.01, y: 37.51), (x: 122.02, y: 37.51), (x: 122.02, y: 37.52), (x: 122.01, y: 37.52)]],
    );
    let county = square("371002", 121.9, 37.4, 0.3);
    let ring = Area { code: B.into(), geometry: shell.into() };
    // A grid fills the hole: points in the hole are in it.
    let idx = GridIndex::new(vec![ring.clone(), square(C, 122.01, 37.51, 0.01)], vec![county.clone()], 200.0).unwrap();
    assert_eq!(locate(&idx, 122.015, 37.515), inside(C));
    assert_eq!(locate(&idx, 122.005, 37.505), inside(B));
    // The hole's edge is shared: the smaller code.
    assert_eq!(locate(&idx, 122.01, 37.515), inside(B));
    // Nothing fills it: the centre of a 1.1 km hole is ~550 m from the ring,
    // beyond the tolerance; near its edge, the ring is within tolerance.
    let idx = GridIndex::new(vec![ring], vec![county], 200.0).unwrap();
    assert_eq!(
        locate(&idx, 122.015, 37.515),
        Located::Unassigned { county: Some("371002".into()), inside_county: true }
    );
    match locate(&idx, 122.0105, 37.515) {
        Located::Approximate { grid, distance_m } => {
            assert_eq!(grid, B);
            assert!((distance_m - 44.2).abs() < 1.0, "{distance_m}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_island_of_a_multipolygon_grid_is_part_of_that_grid() {
    let main = polygon![(x: 122.0, y: 37.5), (x: 122.01, y: 37.5), (x: 122.01, y: 37.51), (x: 122.0, y: 37.51)];
    let island = polygon![(x: 122.05, y: 37.5), (x: 122.052, y: 37.5), (x: 122.051, y: 37.502)];
    let g = Area { code: C.into(), geometry: MultiPolygon(vec![main, island]) };
    let idx = GridIndex::new(vec![g, square(A, 122.01, 37.5, 0.01)], vec![square("371002", 121.9, 37.4, 0.3)], 200.0)
        .unwrap();
    assert_eq!(locate(&idx, 122.051, 37.5008), inside(C));
    assert_eq!(locate(&idx, 122.005, 37.505), inside(C));
    // The island's tip vertex is on its boundary.
    assert_eq!(locate(&idx, 122.051, 37.502), inside(C));
}

#[test]
fn just_outside_within_tolerance_is_approximate_with_its_distance_and_farther_is_triage() {
    let idx = four();
    // 0.001° south of A (111.2 m): approximate.
    match locate(&idx, 122.005, 37.499) {
        Located::Approximate { grid, distance_m } => {
            assert_eq!(grid, A);
            assert!((distance_m - 111.2).abs() < 0.5, "{distance_m}");
        }
        other => panic!("{other:?}"),
    }
    // Equidistant from A and B below their shared edge: the smaller code.
    match locate(&idx, 122.01, 37.4995) {
        Located::Approximate { grid, .. } => assert_eq!(grid, A),
        other => panic!("{other:?}"),
    }
    // 199 m and 201 m east of B.
    let metre_lon = 1.0 / (gridwork_geoindex::METRES_PER_DEGREE * 37.505f64.to_radians().cos());
    assert!(matches!(locate(&idx, 122.02 + 199.0 * metre_lon, 37.505), Located::Approximate { .. }));
    assert_eq!(
        locate(&idx, 122.02 + 201.0 * metre_lon, 37.505),
        Located::Unassigned { county: Some("371002".into()), inside_county: true }
    );
    // A tolerance of 0 turns the approximate point into triage.
    let strict =
        GridIndex::new(vec![square(A, 122.0, 37.5, 0.01)], vec![square("371002", 121.9, 37.4, 0.3)], 0.0).unwrap();
    assert_eq!(
        locate(&strict, 122.005, 37.499),
        Located::Unassigned { county: Some("371002".into()), inside_county: true }
    );
}

#[test]
fn far_outside_every_grid_goes_to_the_county_that_contains_it_or_the_nearest_one() {
    let counties = vec![square("371002", 121.9, 37.4, 0.3), square("371003", 121.6, 37.0, 0.3)];
    let idx = GridIndex::new(vec![square(A, 122.0, 37.5, 0.01)], counties, 200.0).unwrap();
    assert_eq!(locate(&idx, 121.7, 37.1), Located::Unassigned { county: Some("371003".into()), inside_county: true });
    // At sea, north-east: 371002 is nearer.
    assert_eq!(locate(&idx, 122.5, 38.0), Located::Unassigned { county: Some("371002".into()), inside_county: false });
    // South-west: 371003 is nearer.
    assert_eq!(locate(&idx, 121.0, 36.5), Located::Unassigned { county: Some("371003".into()), inside_county: false });
    // Far away, off the raster.
    assert_eq!(locate(&idx, 100.0, 30.0), Located::Unassigned { county: Some("371003".into()), inside_county: false });
    // No counties at all.
    let bare = GridIndex::new(vec![square(A, 122.0, 37.5, 0.01)], vec![], 200.0).unwrap();
    assert_eq!(locate(&bare, 121.0, 36.5), Located::Unassigned { county: None, inside_county: false });
}

/// A jittered lattice of quads sharing their vertices, split into counties
/// by column, some cells left out (gaps) and the county boxes overlapping a
/// little, as real simplified boundaries do.
fn lattice(n: usize, seed: u64) -> (Vec<Area>, Vec<Area>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (x0, y0, s) = (121.5, 36.8, 0.01);
    let mut v = vec![vec![(0.0, 0.0); n + 1]; n + 1];
    for (r, row) in v.iter_mut().enumerate() {
        for (c, p) in row.iter_mut().enumerate() {
            let inner = r > 0 && c > 0 && r < n && c < n;
            let j = if inner { 0.35 * s } else { 0.0 };
            *p = (x0 + c as f64 * s + rng.gen_range(-j..=j), y0 + r as f64 * s + rng.gen_range(-j..=j));
        }
    }
    let mut grids = Vec::new();
    for r in 0..n {
        for c in 0..n {
            if rng.gen_bool(0.03) {
                continue;
            }
            let ring: Vec<(f64, f64)> = vec![v[r][c], v[r][c + 1], v[r + 1][c + 1], v[r + 1][c], v[r][c]];
            let county = 371002 + (c * 3 / n) as u32;
            let code = format!("{county}{:03}{:03}001", r + 1, c + 1);
            grids.push(Area { code, geometry: MultiPolygon(vec![Polygon::new(LineString::from(ring), vec![])]) });
        }
    }
    let w = n as f64 * s / 3.0;
    let counties = (0..3)
        .map(|k| {
            let x = x0 + k as f64 * w - 0.002;
            let p = polygon![(x: x, y: y0 - 0.002), (x: x + w + 0.004, y: y0 - 0.002), (x: x + w + 0.004, y: y0 + n as f64 * s + 0.002), (x: x, y: y0 + n as f64 * s + 0.002)];
            Area { code: format!("{}", 371002 + k), geometry: p.into() }
        })
        .collect();
    (grids, counties)
}

#[test]
fn the_raster_agrees_with_exact_geometry_on_random_edge_vertex_and_far_points() {
    let (grids, counties) = lattice(60, 42);
    let shapes: Vec<Vec<(f64, f64)>> =
        grids.iter().map(|g| g.geometry.0[0].exterior().0.iter().map(|c| (c.x, c.y)).collect()).collect();
    for cells_per_grid in [2.0, 16.0, 64.0] {
        let idx = GridIndex::with_resolution(grids.clone(), counties.clone(), 200.0, cells_per_grid).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(cells_per_grid as u64);
        let mut kinds = std::collections::HashMap::new();
        for k in 0..30_000 {
            let (x, y) = match k % 4 {
                // Anywhere around the lattice, sea included.
                0 => (rng.gen_range(121.3..122.3), rng.gen_range(36.6..37.6)),
                // Exactly on a vertex.
                1 => shapes[rng.gen_range(0..shapes.len())][rng.gen_range(0..4)],
                // On or very near an edge.
                2 => {
                    let s = &shapes[rng.gen_range(0..shapes.len())];
                    let e = rng.gen_range(0..4);
                    let t: f64 = rng.gen_range(0.0..1.0);
                    let j = if rng.gen_bool(0.5) { 0.0 } else { rng.gen_range(-1e-6..1e-6) };
                    (s[e].0 + t * (s[e + 1].0 - s[e].0) + j, s[e].1 + t * (s[e + 1].1 - s[e].1))
                }
                // Near the lattice's rim, where the tolerance decides.
                _ => (rng.gen_range(121.49..121.51), rng.gen_range(36.79..37.41)),
            };
            let got = locate(&idx, x, y);
            let kind = match got {
                Located::Inside { .. } => "inside",
                Located::Approximate { .. } => "approximate",
                Located::Unassigned { inside_county: true, .. } => "triage",
                Located::Unassigned { .. } => "outside",
            };
            *kinds.entry(kind).or_insert(0) += 1;
        }
        // Every rule was exercised.
        for kind in ["inside", "approximate", "triage", "outside"] {
            assert!(kinds.get(kind).copied().unwrap_or(0) > 20, "{cells_per_grid}: {kinds:?}");
        }
        let m = idx.memory();
        assert!(m.index > 0 && m.raw_coordinates == grids.len() * 5 * 16 + 3 * 5 * 16, "{m:?}");
    }
}

/// A point at `dist` degrees (either side) from a random point of a random
/// edge of `shapes`, or exactly on it when `dist` is 0.
fn near_edge(shapes: &[Vec<(f64, f64)>], rng: &mut ChaCha8Rng, dist: f64) -> (f64, f64) {
    let s = &shapes[rng.gen_range(0..shapes.len())];
    let e = rng.gen_range(0..s.len() - 1);
    let t: f64 = rng.gen_range(0.0..1.0);
    let (ex, ey) = (s[e + 1].0 - s[e].0, s[e + 1].1 - s[e].1);
    let len = (ex * ex + ey * ey).sqrt();
    let side = if rng.gen_bool(0.5) { dist } else { -dist };
    (s[e].0 + t * ex - ey / len * side, s[e].1 + t * ey + ex / len * side)
}

#[test]
fn edge_cells_agree_with_the_index_without_them_and_with_exact_geometry() {
    let (grids, counties) = lattice(40, 7);
    let shapes: Vec<Vec<(f64, f64)>> =
        grids.iter().map(|g| g.geometry.0[0].exterior().0.iter().map(|c| (c.x, c.y)).collect()).collect();
    for cells_per_grid in [4.0, 32.0, 128.0] {
        let new =
            GridIndex::with_options(grids.clone(), counties.clone(), 200.0, cells_per_grid, EdgeCells::Lines).unwrap();
        let old =
            GridIndex::with_options(grids.clone(), counties.clone(), 200.0, cells_per_grid, EdgeCells::None).unwrap();
        let blocks =
            GridIndex::with_options(grids.clone(), counties.clone(), 200.0, cells_per_grid, EdgeCells::Blocks).unwrap();
        assert_eq!(blocks.raster_stats().line_cells, 0);
        let stats = new.raster_stats();
        // Both kinds: one straight edge in the cell word, blocks elsewhere.
        assert!(stats.edge_cells + stats.line_cells > stats.mixed_cells / 2, "{cells_per_grid}: {stats:?}");
        assert!(stats.line_cells > 0 && stats.edge_cells > 0, "{cells_per_grid}: {stats:?}");
        assert_eq!(old.raster_stats().edge_cells + old.raster_stats().line_cells, 0);
        let mut rng = ChaCha8Rng::seed_from_u64(cells_per_grid as u64);
        for k in 0..40_000 {
            // From exactly on the edge to ~100 m away, every scale between,
            // with the lattice's vertices (exactly) now and then.
            let (x, y) = if k % 10 == 0 {
                shapes[rng.gen_range(0..shapes.len())][rng.gen_range(0..4)]
            } else {
                let dist = if k % 10 == 1 { 0.0 } else { 10f64.powf(rng.gen_range(-12.0..-3.0)) };
                near_edge(&shapes, &mut rng, dist)
            };
            let got = new.lookup(x, y);
            assert_eq!(got, old.lookup(x, y), "with and without edge cells at ({x}, {y}), {cells_per_grid}");
            assert_eq!(got, blocks.lookup(x, y), "with and without line cells at ({x}, {y}), {cells_per_grid}");
            if k % 20 == 0 {
                assert_eq!(new.to_located(got), new.locate_exact(x, y), "({x}, {y}), {cells_per_grid}");
            }
        }
    }
}

mod prop {
    use super::*;
    use proptest::prelude::{prop_assert_eq, proptest, ProptestConfig};

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        /// On jittered lattices of any seed and resolution, points at any
        /// distance from edges (including on them) get the same answer with
        /// and without edge cells, and the exact reference's.
        #[test]
        fn edge_cells_agree_on_random_lattices(seed in 0u64..1_000, cells in 1.0f64..200.0, pts in 0u64..u64::MAX) {
            let (grids, counties) = lattice(8, seed);
            let shapes: Vec<Vec<(f64, f64)>> =
                grids.iter().map(|g| g.geometry.0[0].exterior().0.iter().map(|c| (c.x, c.y)).collect()).collect();
            let new = GridIndex::with_options(grids.clone(), counties.clone(), 200.0, cells, EdgeCells::Lines).unwrap();
            let old = GridIndex::with_options(grids, counties, 200.0, cells, EdgeCells::None).unwrap();
            let mut rng = ChaCha8Rng::seed_from_u64(pts);
            for k in 0..400 {
                let dist = if k % 8 == 0 { 0.0 } else { 10f64.powf(rng.gen_range(-13.0..-2.5)) };
                let (x, y) = near_edge(&shapes, &mut rng, dist);
                let got = new.lookup(x, y);
                prop_assert_eq!(got, old.lookup(x, y), "({}, {})", x, y);
                prop_assert_eq!(new.to_located(got), new.locate_exact(x, y), "({}, {})", x, y);
            }
        }
    }
}

#[test]
fn many_points_at_once_get_the_answers_of_one_at_a_time() {
    let (grids, counties) = lattice(30, 3);
    let idx = GridIndex::new(grids, counties, 200.0).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    // Batches of every length around the internal group size, NaN and far points included.
    for n in [0, 1, 15, 16, 17, 100, 1_000] {
        let mut pts: Vec<(f64, f64)> =
            (0..n).map(|_| (rng.gen_range(121.3..122.0), rng.gen_range(36.6..37.3))).collect();
        if n > 3 {
            pts[1] = (f64::NAN, 37.0);
            pts[2] = (100.0, 30.0);
        }
        let one_by_one: Vec<_> = pts.iter().map(|&(x, y)| idx.lookup(x, y)).collect();
        assert_eq!(idx.lookup_many(&pts), one_by_one);
        let located: Vec<_> = pts.iter().map(|&(x, y)| idx.locate(x, y)).collect();
        assert_eq!(idx.locate_many(&pts), located);
    }
}
