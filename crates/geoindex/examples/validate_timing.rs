//! Times the grid-registry validation on a big synthetic set: all of
//! Shandong's counties partitioned into 100,000 Voronoi grids.
//!
//! cargo run --release -p gridwork-geoindex --example validate_timing [-- GRIDS]
//!
//! Validates the clean set on 1 and 2 threads, then breaks three grids (a
//! copy under a new code, a shifted grid, a wrong community) and shows what
//! is new in the report.

use gridwork_geoindex::geojson_io::{parse_boundaries, GridFeature};
use gridwork_geoindex::synth::{disjoint_counties, partition_counties, SynthParams};
use gridwork_geoindex::validate::{validate, Report};
use std::collections::HashMap;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let total: usize = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(100_000);
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/admin-boundaries-shandong-fujian.geojson");
    let boundaries: Vec<_> = parse_boundaries(&std::fs::read_to_string(path)?)?
        .into_iter()
        .filter(|b| b.level == "county" && b.adcode.starts_with("37"))
        .collect();

    let t = Instant::now();
    let params = SynthParams { grids_per_community: 10, communities_per_street: 10, seed: 42 };
    let synth = partition_counties(&boundaries, total, params)?;
    // The grids tile the counties made disjoint, so those are what they are checked against.
    let counties: HashMap<String, _> =
        disjoint_counties(&boundaries)?.into_iter().map(|b| (b.adcode, b.geometry)).collect();
    let mut grids: Vec<GridFeature> = synth
        .into_iter()
        .map(|g| GridFeature {
            code: g.code,
            name: g.name,
            community: g.community,
            centre: Some(g.street),
            geometry: g.geometry,
        })
        .collect();
    let vertices: usize =
        grids.iter().map(|g| g.geometry.0.iter().map(|p| p.exterior().0.len() - 1).sum::<usize>()).sum();
    let county_vertices: usize =
        counties.values().map(|c| c.0.iter().map(|p| p.exterior().0.len() - 1).sum::<usize>()).sum();
    println!(
        "synthesised {} grids ({:.1} vertices each) in {} counties ({} county vertices) in {:.2?}",
        grids.len(),
        vertices as f64 / grids.len() as f64,
        counties.len(),
        county_vertices,
        t.elapsed()
    );

    let timed = |threads: usize, grids: &[GridFeature]| -> Result<Report, Box<dyn std::error::Error>> {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build()?;
        let t = Instant::now();
        let report = pool.install(|| validate(grids, &counties));
        println!(
            "validate on {threads} thread(s): {:.2?}: {} errors, {} warnings",
            t.elapsed(),
            report.errors().count(),
            report.warnings().count()
        );
        Ok(report)
    };
    let clean = timed(1, &grids)?;
    for p in clean.problems.iter().take(10) {
        println!("  {p}");
    }
    timed(2, &grids)?;

    // Break a few grids and check that the problems are found.
    let n = grids.len();
    let mut copy = grids[n / 2].clone();
    copy.code = format!("{}999", &copy.code[..12]);
    grids.push(copy); // overlaps grids[n / 2] fully
    let shifted = &mut grids[n / 3];
    for p in &mut shifted.geometry.0 {
        use geo::Translate;
        p.translate_mut(0.002, 0.0); // overlaps its neighbours, maybe leaves its county
    }
    grids[n / 4].community = "370000000000".into();
    let broken = timed(1, &grids)?;
    println!("new problems after breaking 3 grids:");
    for p in broken.problems.iter().filter(|p| !clean.problems.contains(p)) {
        println!("  {p}");
    }
    Ok(())
}
