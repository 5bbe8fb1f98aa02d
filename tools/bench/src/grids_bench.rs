//! `gridwork-bench grids`: the grid index at province scale, against
//! PostgreSQL + PostGIS on the same polygons and points, in one run.
//!
//! 1. Synthesise the area's grids (default: all of Shandong, 100,000).
//! 2. Import: parse the GeoJSON, validate, and (with a database) store the
//!    version through the real import and load it back into the index.
//! 3. Points: uniform in the area's bounding box, and near grid edges
//!    (a random point of a random edge, moved a few metres).
//! 4. gridwork on one core: lookups per second and latency percentiles.
//! 5. PostGIS on the same polygons and points: one batch join with a single
//!    worker (`ST_Contains`, GiST index) and per-point prepared queries.
//! 6. Agreement: every point where gridwork and PostGIS name different
//!    containing grids is counted and listed, with whether it lies exactly
//!    on a boundary.

use std::collections::HashMap;
use std::time::Instant;

use geo_types::MultiPolygon;
use gridwork_geoindex::geojson_io::{self, GridFeature};
use gridwork_geoindex::synth::{self, SynthParams};
use gridwork_geoindex::{validate, Area, EdgeCells, GridIndex, Hit};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sea_orm::sqlx::{self, postgres::PgPoolOptions, PgPool, Row};

pub struct BenchArgs {
    pub area: String,
    pub grids: usize,
    pub points: usize,
    pub per_point: usize,
    pub seed: u64,
    pub cells_per_grid: f64,
    /// A PostgreSQL server URL (any database on it); `None`: gridwork only.
    pub postgres: Option<String>,
}

fn say(msg: &str) {
    eprintln!("bench: {msg}");
}

/// Throughput and latency of one run.
struct Timing {
    per_second: f64,
    p50_ns: f64,
    p99_ns: f64,
    p999_ns: f64,
}

fn time_lookups(idx: &GridIndex, pts: &[(f64, f64)]) -> (Timing, Vec<Hit>) {
    // Throughput: the whole set, one thread.
    let t = Instant::now();
    let hits: Vec<Hit> = pts.iter().map(|&(x, y)| idx.lookup(x, y)).collect();
    let per_second = pts.len() as f64 / t.elapsed().as_secs_f64();
    // Latency: each lookup timed on its own (adds the clock's ~20 ns).
    let mut lat: Vec<u64> = pts
        .iter()
        .take(200_000)
        .map(|&(x, y)| {
            let t = Instant::now();
            std::hint::black_box(idx.lookup(x, y));
            t.elapsed().as_nanos() as u64
        })
        .collect();
    lat.sort_unstable();
    let q = |p: f64| lat.get(((lat.len() as f64 - 1.0) * p) as usize).copied().unwrap_or(0) as f64;
    (Timing { per_second, p50_ns: q(0.5), p99_ns: q(0.99), p999_ns: q(0.999) }, hits)
}

/// Random points near grid edges: a random point of a random edge, moved
/// up to ~5 m in a random direction.
fn near_edges(grids: &[GridFeature], n: usize, rng: &mut ChaCha8Rng) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let g = &grids[rng.gen_range(0..grids.len())];
        let Some(p) = g.geometry.0.first() else { continue };
        let ring = &p.exterior().0;
        if ring.len() < 2 {
            continue;
        }
        let e = rng.gen_range(0..ring.len() - 1);
        let (a, b) = (ring[e], ring[e + 1]);
        let t: f64 = rng.gen_range(0.0..1.0);
        let d = 5.0 / gridwork_geoindex::METRES_PER_DEGREE;
        let (dx, dy) = (rng.gen_range(-d..d) / a.y.to_radians().cos(), rng.gen_range(-d..d));
        out.push((a.x + t * (b.x - a.x) + dx, a.y + t * (b.y - a.y) + dy));
    }
    out
}

pub async fn run(a: BenchArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let all = gridwork::grids::boundaries(None)?;
    let counties = gridwork::grids::select_counties(&all, &a.area)?;
    say(&format!("synthesising {} grids in {} counties of area {} …", a.grids, counties.len(), a.area));
    let t = Instant::now();
    let params = SynthParams { grids_per_community: 8, communities_per_street: 12, seed: a.seed };
    let synth = synth::partition_counties(&counties, a.grids, params)?;
    let synth_s = t.elapsed().as_secs_f64();
    let features = gridwork::grids::features(synth);
    let text = geojson_io::grids_to_geojson(&features);
    let vertices: usize = features.iter().map(|g| geo::CoordsIter::coords_count(&g.geometry)).sum();
    say(&format!(
        "{} grids, {} vertices ({:.1} per grid), {:.1} MB of GeoJSON, in {synth_s:.1} s",
        features.len(),
        vertices,
        vertices as f64 / features.len() as f64,
        text.len() as f64 / 1e6
    ));

    // Import + index build, in memory.
    let county_map: HashMap<String, MultiPolygon<f64>> =
        all.iter().filter(|b| b.level == "county").map(|b| (b.adcode.clone(), b.geometry.clone())).collect();
    let t = Instant::now();
    let parsed = geojson_io::parse_grids(&text).map_err(|e| anyhow::anyhow!("{} parse errors", e.len()))?;
    let parse_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let report = validate::validate(&parsed, &county_map);
    let validate_s = t.elapsed().as_secs_f64();
    say(&format!("validation: {} errors, {} warnings", report.errors().count(), report.warnings().count()));
    for p in report.problems.iter().take(5) {
        say(&format!("  {p}"));
    }
    let areas: Vec<Area> = parsed.iter().map(|g| Area { code: g.code.clone(), geometry: g.geometry.clone() }).collect();
    let county_areas: Vec<Area> =
        counties.iter().map(|c| Area { code: c.adcode.clone(), geometry: c.geometry.clone() }).collect();
    let t = Instant::now();
    let idx = GridIndex::with_resolution(areas.clone(), county_areas.clone(), 200.0, a.cells_per_grid)?;
    let build_s = t.elapsed().as_secs_f64();
    // The same index without edge cells (as it was before them), to time
    // side by side with the same points in the same run.
    let t = Instant::now();
    let plain = GridIndex::with_options(areas.clone(), county_areas.clone(), 200.0, a.cells_per_grid, EdgeCells::None)?;
    let plain_build_s = t.elapsed().as_secs_f64();
    // And with edge cells but no line cells (as before them).
    let blocks = GridIndex::with_options(areas, county_areas, 200.0, a.cells_per_grid, EdgeCells::Blocks)?;
    let mem = idx.memory();
    let stats = idx.raster_stats();
    let plain_mem = plain.memory();
    say(&format!(
        "import in memory: parse {parse_s:.1} s + validate {validate_s:.1} s + index build {build_s:.1} s = {:.1} s (build without edge cells: {plain_build_s:.1} s)",
        parse_s + validate_s + build_s
    ));
    say(&format!(
        "index memory: {:.1} MB beyond the raw coordinates ({:.0} bytes per grid, of which edge cells' blocks {:.0}; without edge cells {:.0}); raw coordinates {:.1} MB; raster {} cells ({} inside one grid, {} crossed by edges: {} one straight edge in the cell word, {} edge cells with blocks)",
        mem.index as f64 / 1e6,
        mem.index as f64 / idx.len() as f64,
        stats.edge_bytes as f64 / idx.len() as f64,
        plain_mem.index as f64 / idx.len() as f64,
        mem.raw_coordinates as f64 / 1e6,
        stats.cells,
        stats.grid_cells,
        stats.mixed_cells,
        stats.line_cells,
        stats.edge_cells
    ));

    // Points.
    let mut rng = ChaCha8Rng::seed_from_u64(a.seed ^ 0x9e37);
    let bbox = counties
        .iter()
        .filter_map(|c| geo::BoundingRect::bounding_rect(&c.geometry))
        .fold([f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY], |b, r| {
            [b[0].min(r.min().x), b[1].min(r.min().y), b[2].max(r.max().x), b[3].max(r.max().y)]
        });
    let uniform: Vec<(f64, f64)> =
        (0..a.points).map(|_| (rng.gen_range(bbox[0]..bbox[2]), rng.gen_range(bbox[1]..bbox[3]))).collect();
    let edges = near_edges(&parsed, a.points, &mut rng);

    // gridwork, one core: with edge cells, without them, without line
    // cells, and in batches, interleaved (twice each) so that the
    // machine's noise hits all alike.
    let mut best = [[0.0f64; 2]; 4];
    let mut timings = Vec::new();
    let mut hits = Vec::new();
    for round in 0..2 {
        for (k, pts) in [&uniform, &edges].into_iter().enumerate() {
            let (t_new, h_new) = time_lookups(&idx, pts);
            let (t_old, h_old) = time_lookups(&plain, pts);
            let (t_blocks, h_blocks) = time_lookups(&blocks, pts);
            let t = Instant::now();
            let h_batch = idx.lookup_many(pts);
            let batch = pts.len() as f64 / t.elapsed().as_secs_f64();
            if h_new != h_old || h_new != h_batch || h_new != h_blocks {
                anyhow::bail!("with and without edge cells or line cells, or batched, the answers differ");
            }
            for (b, v) in best.iter_mut().zip([t_new.per_second, t_old.per_second, batch, t_blocks.per_second]) {
                b[k] = b[k].max(v);
            }
            if round == 0 {
                timings.push((t_new, t_old));
                hits.push(h_new);
            }
        }
    }
    let e_hits = hits.pop().unwrap_or_default();
    let u_hits = hits.pop().unwrap_or_default();
    let [(u_t, u_old), (e_t, e_old)] = <[_; 2]>::try_from(timings).map_err(|_| anyhow::anyhow!("timings"))?;
    let [new_best, old_best, batch_best, blocks_best] = best;
    let inside = u_hits.iter().filter(|h| matches!(h, Hit::Inside(_))).count();
    for (set, k, t, o) in [("uniform", 0, &u_t, &u_old), ("near-edge", 1, &e_t, &e_old)] {
        say(&format!(
            "gridwork, 1 core, {set} points: {:.0} lookups/s (best of 2; {:.0} in batches), p50 {:.0} ns, p99 {:.0} ns, p99.9 {:.0} ns; without edge cells {:.0} lookups/s, p50 {:.0} ns, p99 {:.0} ns",
            new_best[k], batch_best[k], t.p50_ns, t.p99_ns, t.p999_ns, old_best[k], o.p50_ns, o.p99_ns
        ));
    }
    say(&format!("{:.1} % of uniform points inside a grid", 100.0 * inside as f64 / uniform.len() as f64));

    // One summary line per point set: single and batched rates, the old
    // path's, and the ratios.
    let rates = |set: &str, k: usize, p99_ns: f64| {
        format!(
            "gridwork {set}: {:.2} M lookups/s/core, p99 {p99_ns:.0} ns; batched {:.2} M/s; without edge cells {:.2} M/s (RATIO {:.2}x, batched {:.2}x); without line cells {:.2} M/s (RATIO {:.2}x)",
            new_best[k] / 1e6,
            batch_best[k] / 1e6,
            old_best[k] / 1e6,
            new_best[k] / old_best[k],
            batch_best[k] / old_best[k],
            blocks_best[k] / 1e6,
            new_best[k] / blocks_best[k]
        )
    };
    let mut summary = vec![
        format!(
            "grids: {} ({} vertices), points: {} uniform + {} near edges",
            idx.len(),
            vertices,
            uniform.len(),
            edges.len()
        ),
        format!("synthesis: {synth_s:.1} s"),
        format!("import in memory (parse + validate + index build): {:.1} s", parse_s + validate_s + build_s),
        format!(
            "index memory beyond raw coordinates: {:.0} bytes/grid ({:.1} MB)",
            mem.index as f64 / idx.len() as f64,
            mem.index as f64 / 1e6
        ),
        format!(
            "index memory without edge cells: {:.0} bytes/grid (edge cells' blocks: {:.0} bytes/grid); without line cells: {:.0} bytes/grid; {} line cells, {} edge cells with blocks",
            plain_mem.index as f64 / idx.len() as f64,
            stats.edge_bytes as f64 / idx.len() as f64,
            blocks.memory().index as f64 / idx.len() as f64,
            stats.line_cells,
            stats.edge_cells
        ),
        rates("uniform", 0, u_t.p99_ns),
        rates("near edges", 1, e_t.p99_ns),
    ];

    if let Some(url) = &a.postgres {
        let pg = postgis(url, &a, &parsed, &text, &uniform, &edges).await?;
        let ratio_batch = new_best[0] / pg.batch_uniform_per_s;
        let ratio_point = new_best[0] / pg.per_point_per_s;
        summary.push(format!("import into PostgreSQL through `grids import` + registry load: {:.1} s", pg.import_s));
        summary.push(format!(
            "PostGIS batch join, 1 worker: {:.0} points/s uniform, {:.0} points/s near edges",
            pg.batch_uniform_per_s, pg.batch_edges_per_s
        ));
        summary.push(format!("PostGIS per-point prepared query: {:.0} points/s", pg.per_point_per_s));
        summary.push(format!(
            "RATIO gridwork / PostGIS batch join (per core, uniform): {ratio_batch:.1}x; near edges: {:.1}x",
            new_best[1] / pg.batch_edges_per_s
        ));
        summary.push(format!("RATIO gridwork / PostGIS per-point queries: {ratio_point:.0}x"));
        let mut disagree = 0;
        let mut on_boundary = 0;
        let mut listed = Vec::new();
        for (set, pts, hits, theirs) in
            [("uniform", &uniform, &u_hits, &pg.uniform_codes), ("near-edge", &edges, &e_hits, &pg.edge_codes)]
        {
            for (k, (&(x, y), hit)) in pts.iter().zip(hits.iter()).enumerate() {
                let ours = match hit {
                    Hit::Inside(i) => Some(idx.grid_code(*i)),
                    _ => None,
                };
                let their = theirs.get(&(k as i32)).map(String::as_str);
                if ours != their {
                    disagree += 1;
                    let boundary = exactly_on_boundary(&parsed, ours, their, x, y);
                    on_boundary += boundary as usize;
                    if listed.len() < 20 {
                        listed.push(format!(
                            "  {set} point {k} ({x:.9}, {y:.9}): gridwork {:?}, PostGIS {:?}{}",
                            ours,
                            their,
                            if boundary { " — exactly on a boundary" } else { "" }
                        ));
                    }
                }
            }
        }
        summary.push(format!(
            "AGREEMENT on {} points: {} disagreements, {} of them exactly on a boundary, {} elsewhere",
            uniform.len() + edges.len(),
            disagree,
            on_boundary,
            disagree - on_boundary
        ));
        summary.extend(listed);
    }
    println!("== gridwork grids bench: area {} ==", a.area);
    for line in summary {
        println!("{line}");
    }
    say(&format!("done in {:.0} s", started.elapsed().as_secs_f64()));
    Ok(())
}

/// Is (x, y) on the boundary of a grid either side names (contained in its
/// closure but not its interior)?
fn exactly_on_boundary(grids: &[GridFeature], a: Option<&str>, b: Option<&str>, x: f64, y: f64) -> bool {
    use geo::{Contains, Intersects};
    let p = geo_types::Point::new(x, y);
    [a, b].into_iter().flatten().any(|code| {
        grids.iter().find(|g| g.code == code).is_some_and(|g| g.geometry.intersects(&p) && !g.geometry.contains(&p))
    })
}

struct PostgisResult {
    import_s: f64,
    batch_uniform_per_s: f64,
    batch_edges_per_s: f64,
    per_point_per_s: f64,
    uniform_codes: HashMap<i32, String>,
    edge_codes: HashMap<i32, String>,
}

/// A throw-away database on the server of `url`, dropped afterwards.
struct Scratch {
    admin: PgPool,
    name: String,
}

impl Scratch {
    async fn create(url: &str, name: String) -> anyhow::Result<(Scratch, String)> {
        let admin = PgPoolOptions::new().max_connections(1).connect(url).await?;
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name}")).execute(&admin).await?;
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&admin).await?;
        let base = url.rsplit_once('/').map(|(b, _)| b).unwrap_or(url);
        Ok((Scratch { admin, name: name.clone() }, format!("{base}/{name}")))
    }

    async fn drop(self) {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)).execute(&self.admin).await;
    }
}

async fn postgis(
    url: &str,
    a: &BenchArgs,
    grids: &[GridFeature],
    text: &str,
    uniform: &[(f64, f64)],
    edges: &[(f64, f64)],
) -> anyhow::Result<PostgisResult> {
    // gridwork's own import into PostgreSQL, then the registry load.
    let (scratch, db_url) = Scratch::create(url, format!("gridwork_bench_{}", std::process::id())).await?;
    let import_s = async {
        let db = gridwork_storage::connect(&db_url, 4).await?;
        gridwork_storage::migrate(&db).await?;
        gridwork::seed::admin_units(&db).await?;
        say("importing through the real import (parse, validate, store) into PostgreSQL …");
        let t = Instant::now();
        let opts = gridwork_assigner::import::ImportOptions {
            label: "bench".into(),
            source: "bench".into(),
            created_by: "bench".into(),
            ..Default::default()
        };
        gridwork_assigner::import::import(&db, text, opts, 1_000, say).await?;
        let registry = gridwork_assigner::Registry::load(&db, 200.0, a.cells_per_grid, 8).await?;
        let s = t.elapsed().as_secs_f64();
        say(&format!(
            "import + registry load from PostgreSQL: {s:.1} s ({} grids indexed)",
            registry.epochs.last().map(|e| e.grids.index.len()).unwrap_or(0)
        ));
        db.close().await?;
        anyhow::Ok(s)
    }
    .await;
    scratch.drop().await;
    let import_s = import_s?;

    let (scratch, db_url) = Scratch::create(url, format!("gridwork_postgis_{}", std::process::id())).await?;
    let r = postgis_queries(&db_url, a, grids, uniform, edges).await;
    scratch.drop().await;
    let mut r = r?;
    r.import_s = import_s;
    Ok(r)
}

async fn postgis_queries(
    url: &str,
    a: &BenchArgs,
    grids: &[GridFeature],
    uniform: &[(f64, f64)],
    edges: &[(f64, f64)],
) -> anyhow::Result<PostgisResult> {
    let pool = PgPoolOptions::new().max_connections(1).connect(url).await?;
    sqlx::query("CREATE EXTENSION IF NOT EXISTS postgis")
        .execute(&pool)
        .await
        .map_err(|e| anyhow::anyhow!("PostGIS is not installed on this server ({e}); run scripts/setup-postgis.sh"))?;
    sqlx::query("CREATE TABLE grids (code text PRIMARY KEY, geom geometry(MultiPolygon, 4326) NOT NULL)")
        .execute(&pool)
        .await?;
    say(&format!("PostGIS: loading {} grids …", grids.len()));
    for chunk in grids.chunks(2_000) {
        let codes: Vec<String> = chunk.iter().map(|g| g.code.clone()).collect();
        let geoms: Vec<String> = chunk.iter().map(|g| geojson_io::geometry_to_string(&g.geometry)).collect();
        sqlx::query(
            "INSERT INTO grids SELECT c, ST_Multi(ST_SetSRID(ST_GeomFromGeoJSON(g), 4326)) FROM unnest($1::text[], $2::text[]) AS t(c, g)",
        )
        .bind(codes)
        .bind(geoms)
        .execute(&pool)
        .await?;
    }
    sqlx::query("CREATE INDEX grids_geom ON grids USING gist (geom)").execute(&pool).await?;
    for (table, pts) in [("pts_uniform", uniform), ("pts_edges", edges)] {
        sqlx::query(&format!("CREATE TABLE {table} (id int PRIMARY KEY, geom geometry(Point, 4326) NOT NULL)"))
            .execute(&pool)
            .await?;
        say(&format!("PostGIS: loading {} points into {table} …", pts.len()));
        for (c, chunk) in pts.chunks(100_000).enumerate() {
            let ids: Vec<i32> = (0..chunk.len()).map(|i| (c * 100_000 + i) as i32).collect();
            let xs: Vec<f64> = chunk.iter().map(|p| p.0).collect();
            let ys: Vec<f64> = chunk.iter().map(|p| p.1).collect();
            sqlx::query(&format!(
                "INSERT INTO {table} SELECT i, ST_SetSRID(ST_MakePoint(x, y), 4326) FROM unnest($1::int[], $2::float8[], $3::float8[]) AS t(i, x, y)"
            ))
            .bind(ids)
            .bind(xs)
            .bind(ys)
            .execute(&pool)
            .await?;
        }
    }
    sqlx::query("ANALYZE").execute(&pool).await?;
    sqlx::query("SET max_parallel_workers_per_gather = 0").execute(&pool).await?;
    let mut rates = Vec::new();
    let mut codes = Vec::new();
    for (table, n) in [("pts_uniform", uniform.len()), ("pts_edges", edges.len())] {
        say(&format!("PostGIS: batch join of {n} points ({table}), one worker …"));
        let t = Instant::now();
        let rows = sqlx::query(&format!(
            "SELECT p.id, min(g.code) AS code FROM {table} p JOIN grids g ON ST_Contains(g.geom, p.geom) GROUP BY p.id"
        ))
        .fetch_all(&pool)
        .await?;
        let s = t.elapsed().as_secs_f64();
        rates.push(n as f64 / s);
        say(&format!("PostGIS: {} points inside a grid, {s:.1} s = {:.0} points/s", rows.len(), n as f64 / s));
        let mut map = HashMap::with_capacity(rows.len());
        for r in rows {
            map.insert(r.try_get::<i32, _>("id")?, r.try_get::<String, _>("code")?);
        }
        codes.push(map);
    }
    // Per point, prepared (sqlx prepares and caches the statement).
    let n = a.per_point.min(uniform.len());
    say(&format!("PostGIS: {n} per-point prepared queries …"));
    let t = Instant::now();
    for &(x, y) in &uniform[..n] {
        let _: Option<String> = sqlx::query_scalar(
            "SELECT min(code) FROM grids WHERE ST_Contains(geom, ST_SetSRID(ST_MakePoint($1, $2), 4326))",
        )
        .bind(x)
        .bind(y)
        .fetch_one(&pool)
        .await?;
    }
    let per_point_per_s = n as f64 / t.elapsed().as_secs_f64();
    say(&format!("PostGIS: per-point queries: {per_point_per_s:.0} points/s"));
    pool.close().await;
    let edge_codes = codes.pop().unwrap_or_default();
    let uniform_codes = codes.pop().unwrap_or_default();
    Ok(PostgisResult {
        import_s: 0.0,
        batch_uniform_per_s: rates[0],
        batch_edges_per_s: rates[1],
        per_point_per_s,
        uniform_codes,
        edge_codes,
    })
}
