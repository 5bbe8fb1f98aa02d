//! Criterion benches of the grid index: lookups on synthetic grids of
//! Weihai (3,000) and all of Shandong (100,000), uniform points in the
//! area's bounding box and points near grid edges, one at a time with and
//! without edge cells (the index before them, built from the same grids)
//! and in batches (`lookup_many`), with the exact geometry-only path beside
//! the raster for comparison; and the build.
//!   cargo bench -p gridwork-geoindex --bench locate
//! `gridwork grids bench` (scripts/bench-grids.sh) adds latency percentiles
//! and PostGIS on the same polygons and points.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench: failing loudly is the point

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use gridwork_geoindex::geojson_io::parse_boundaries;
use gridwork_geoindex::synth::{partition_counties, SynthParams};
use gridwork_geoindex::{Area, EdgeCells, GridIndex, DEFAULT_CELLS_PER_GRID};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const BOUNDARIES: &str = include_str!("../../../data/admin-boundaries-shandong-fujian.geojson");

struct Setup {
    grids: Vec<Area>,
    counties: Vec<Area>,
    uniform: Vec<(f64, f64)>,
    edges: Vec<(f64, f64)>,
}

fn setup(prefix: &str, n: usize) -> Setup {
    let all = parse_boundaries(BOUNDARIES).unwrap();
    let counties: Vec<_> = all.into_iter().filter(|b| b.level == "county" && b.adcode.starts_with(prefix)).collect();
    let params = SynthParams { grids_per_community: 8, communities_per_street: 12, seed: 1 };
    let synth = partition_counties(&counties, n, params).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for c in &counties {
        for p in &c.geometry.0 {
            for q in &p.exterior().0 {
                (x0, y0, x1, y1) = (x0.min(q.x), y0.min(q.y), x1.max(q.x), y1.max(q.y));
            }
        }
    }
    let uniform = (0..100_000).map(|_| (rng.gen_range(x0..x1), rng.gen_range(y0..y1))).collect();
    let edges = (0..100_000)
        .map(|_| {
            let ring = &synth[rng.gen_range(0..synth.len())].geometry.0[0].exterior().0;
            let e = rng.gen_range(0..ring.len() - 1);
            let t: f64 = rng.gen_range(0.0..1.0);
            let d = 5.0 / 111_195.0;
            (
                ring[e].x + t * (ring[e + 1].x - ring[e].x) + rng.gen_range(-d..d),
                ring[e].y + t * (ring[e + 1].y - ring[e].y) + rng.gen_range(-d..d),
            )
        })
        .collect();
    Setup {
        grids: synth.into_iter().map(|g| Area { code: g.code, geometry: g.geometry }).collect(),
        counties: counties.into_iter().map(|c| Area { code: c.adcode, geometry: c.geometry }).collect(),
        uniform,
        edges,
    }
}

fn lookups(c: &mut Criterion) {
    for (name, prefix, n) in [("weihai-3k", "3710", 3_000), ("shandong-100k", "37", 100_000)] {
        let s = setup(prefix, n);
        let idx = GridIndex::new(s.grids.clone(), s.counties.clone(), 200.0).unwrap();
        // The same index without line cells and without edge cells (as
        // before each), side by side.
        let with = |e| GridIndex::with_options(s.grids.clone(), s.counties.clone(), 200.0, DEFAULT_CELLS_PER_GRID, e);
        let (blocks, old) = (with(EdgeCells::Blocks).unwrap(), with(EdgeCells::None).unwrap());
        for (label, i) in [("edge cells", &idx), ("blocks only", &blocks), ("no edge cells", &old)] {
            let (m, st) = (i.memory(), i.raster_stats());
            eprintln!(
                "{name}, {label}: {:.0} bytes/grid beyond coordinates; {} cells, {} crossed by edges, {} line cells, {} edge cells with blocks ({:.0} bytes/grid)",
                m.index as f64 / i.len() as f64,
                st.cells,
                st.mixed_cells,
                st.line_cells,
                st.edge_cells,
                st.edge_bytes as f64 / i.len() as f64
            );
        }
        let mut g = c.benchmark_group(format!("lookup/{name}"));
        g.throughput(Throughput::Elements(s.uniform.len() as u64));
        for (label, i) in [("", &idx), ("/blocks-only", &blocks), ("/no-edge-cells", &old)] {
            g.bench_function(format!("uniform{label}"), |b| {
                b.iter(|| {
                    s.uniform.iter().for_each(|&(x, y)| {
                        black_box(i.lookup(x, y));
                    })
                })
            });
            g.bench_function(format!("near-edges{label}"), |b| {
                b.iter(|| {
                    s.edges.iter().for_each(|&(x, y)| {
                        black_box(i.lookup(x, y));
                    })
                })
            });
        }
        g.bench_function("uniform/batch", |b| b.iter(|| black_box(idx.lookup_many(&s.uniform))));
        g.bench_function("near-edges/batch", |b| b.iter(|| black_box(idx.lookup_many(&s.edges))));
        g.finish();
        drop((blocks, old));
        let mut g = c.benchmark_group(format!("exact/{name}"));
        // The geometry-only reference scans every grid: a small sample.
        g.throughput(Throughput::Elements(100));
        g.sample_size(10);
        g.bench_function("uniform", |b| {
            b.iter(|| {
                s.uniform[..100].iter().for_each(|&(x, y)| {
                    black_box(idx.locate_exact(x, y));
                })
            })
        });
        g.finish();
        let mut g = c.benchmark_group(format!("build/{name}"));
        g.sample_size(10);
        g.bench_function("index", |b| {
            b.iter_batched(
                || (s.grids.clone(), s.counties.clone()),
                |(grids, counties)| GridIndex::new(grids, counties, 200.0).unwrap(),
                BatchSize::LargeInput,
            )
        });
        g.finish();
    }
}

criterion_group!(benches, lookups);
criterion_main!(benches);
