//! `gridwork grids …`: synthesise, validate, import and export grids.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{DateTime, Utc};
use gridwork_geoindex::geojson_io::{self, Boundary, GridFeature};
use gridwork_geoindex::synth::{self, SynthParams};
use gridwork_geoindex::validate;

/// The administrative boundaries of Shandong and Fujian shipped in `data/`
/// (see `data/README.md` for their provenance).
pub const ADMIN_BOUNDARIES: &str = include_str!("../../../data/admin-boundaries-shandong-fujian.geojson");

/// Reads a boundary file, or the shipped one when `path` is `None`.
pub fn boundaries(path: Option<&Path>) -> anyhow::Result<Vec<Boundary>> {
    let text = match path {
        Some(p) => std::fs::read_to_string(p).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()))?,
        None => ADMIN_BOUNDARIES.to_owned(),
    };
    Ok(geojson_io::parse_boundaries(&text)?)
}

/// The counties whose code starts with one of `areas` (comma-separated
/// codes or prefixes: `37` Shandong, `3710` Weihai, `371002` one county).
pub fn select_counties(all: &[Boundary], areas: &str) -> anyhow::Result<Vec<Boundary>> {
    let prefixes: Vec<String> = areas
        .split(',')
        .map(|a| a.trim().trim_end_matches('0').to_owned())
        .map(|a| if a.len() % 2 == 1 { format!("{a}0") } else { a })
        .filter(|a| !a.is_empty())
        .collect();
    if prefixes.is_empty() {
        anyhow::bail!("--area needs at least one code, e.g. 37 (Shandong), 3710 (Weihai) or 371002");
    }
    let chosen: Vec<Boundary> = all
        .iter()
        .filter(|b| b.level == "county" && prefixes.iter().any(|p| b.adcode.starts_with(p.as_str())))
        .cloned()
        .collect();
    if chosen.is_empty() {
        anyhow::bail!("no county in the boundary file matches {areas:?}");
    }
    Ok(chosen)
}

/// Synthetic grids as features of the import format.
pub fn features(grids: Vec<synth::SynthGrid>) -> Vec<GridFeature> {
    grids
        .into_iter()
        .map(|g| GridFeature {
            centre: Some(g.street.clone()),
            code: g.code,
            name: g.name,
            community: g.community,
            geometry: g.geometry,
        })
        .collect()
}

pub struct SynthArgs<'a> {
    pub boundaries: Option<&'a Path>,
    pub area: &'a str,
    pub grids: usize,
    pub seed: u64,
    pub per_community: usize,
    pub per_street: usize,
    pub out: &'a Path,
}

/// `gridwork grids synth`: partitions the counties of an area into grids.
pub fn synth_cmd(a: SynthArgs<'_>) -> anyhow::Result<()> {
    let t = Instant::now();
    let all = boundaries(a.boundaries)?;
    let counties = select_counties(&all, a.area)?;
    eprintln!("synth: {} counties, {} grids requested (seed {}) …", counties.len(), a.grids, a.seed);
    let params =
        SynthParams { grids_per_community: a.per_community, communities_per_street: a.per_street, seed: a.seed };
    let grids = synth::partition_counties(&counties, a.grids, params)?;
    let streets: std::collections::BTreeSet<&str> = grids.iter().map(|g| g.street.as_str()).collect();
    let communities: std::collections::BTreeSet<&str> = grids.iter().map(|g| g.community.as_str()).collect();
    eprintln!(
        "synth: {} grids in {} communities, {} streets, {} counties in {:.1} s; writing {} …",
        grids.len(),
        communities.len(),
        streets.len(),
        counties.len(),
        t.elapsed().as_secs_f64(),
        a.out.display()
    );
    let text = geojson_io::grids_to_geojson(&features(grids));
    std::fs::write(a.out, text).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", a.out.display()))?;
    eprintln!("synth: done in {:.1} s", t.elapsed().as_secs_f64());
    Ok(())
}

/// `gridwork grids validate FILE`: the import's checks, against the shipped
/// (or given) county boundaries, without a database. Returns whether the
/// file has no errors.
pub fn validate_cmd(file: &Path, boundaries_file: Option<&Path>) -> anyhow::Result<bool> {
    let t = Instant::now();
    let text = std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    let grids = match geojson_io::parse_grids(&text) {
        Ok(g) => g,
        Err(errors) => {
            for e in &errors {
                println!("error: {e}");
            }
            println!("{}: {} malformed feature(s)", file.display(), errors.len());
            return Ok(false);
        }
    };
    eprintln!("validate: parsed {} grids in {:.1} s", grids.len(), t.elapsed().as_secs_f64());
    let counties: HashMap<String, geo_types::MultiPolygon<f64>> = boundaries(boundaries_file)?
        .into_iter()
        .filter(|b| b.level == "county")
        .map(|b| (b.adcode, b.geometry))
        .collect();
    let report = validate::validate(&grids, &counties);
    println!("{report}");
    eprintln!("validate: done in {:.1} s", t.elapsed().as_secs_f64());
    Ok(report.is_ok())
}

/// Parses `--valid-from`: RFC 3339, or `now`.
pub fn parse_time(s: &str) -> anyhow::Result<DateTime<Utc>> {
    if s == "now" {
        return Ok(Utc::now());
    }
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| anyhow::anyhow!("--valid-from {s:?}: {e} (expected RFC 3339, e.g. 2027-01-01T00:00:00+08:00)"))
}

/// Default output path for exports.
pub fn export_path(version: i64) -> PathBuf {
    PathBuf::from(format!("grids-v{version}.geojson"))
}
