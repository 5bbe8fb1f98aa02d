//! Times the grid synthesis: all of Shandong's counties at 100,000 grids and
//! Weihai's four counties at 3,000.
//!
//! ```sh
//! cargo run --release -p gridwork-geoindex --example synth_timing
//! ```

use gridwork_geoindex::geojson_io::{parse_boundaries, Boundary};
use gridwork_geoindex::synth::{disjoint_counties, partition_counties, SynthParams};
use std::collections::BTreeSet;
use std::time::Instant;

const SHANDONG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/admin-boundaries-shandong-fujian.geojson");
const WEIHAI: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/weihai-boundaries.geojson");

fn run(label: &str, counties: &[Boundary], total: usize) -> Result<(), Box<dyn std::error::Error>> {
    let params = SynthParams { grids_per_community: 4, communities_per_street: 3, seed: 20_261_122 };
    let t = Instant::now();
    let trimmed = disjoint_counties(counties)?;
    let trim = t.elapsed();
    let t = Instant::now();
    let grids = partition_counties(counties, total, params)?;
    let all = t.elapsed();
    let streets: BTreeSet<&str> = grids.iter().map(|g| g.street.as_str()).collect();
    let communities: BTreeSet<&str> = grids.iter().map(|g| g.community.as_str()).collect();
    let islands = grids.iter().filter(|g| g.geometry.0.len() > 1).count();
    println!(
        "{label}: {} counties ({} after trimming), {} grids ({islands} in pieces), {} communities, {} streets; \
         trimming {:.3} s, total {:.3} s",
        counties.len(),
        trimmed.iter().filter(|c| !c.geometry.0.is_empty()).count(),
        grids.len(),
        communities.len(),
        streets.len(),
        trim.as_secs_f64(),
        all.as_secs_f64(),
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let shandong: Vec<Boundary> = parse_boundaries(&std::fs::read_to_string(SHANDONG)?)?
        .into_iter()
        .filter(|b| b.level == "county" && b.adcode.starts_with("37"))
        .collect();
    let weihai: Vec<Boundary> =
        parse_boundaries(&std::fs::read_to_string(WEIHAI)?)?.into_iter().filter(|b| b.level == "county").collect();
    run("Weihai", &weihai, 3_000)?;
    run("Shandong", &shandong, 100_000)?;
    Ok(())
}
