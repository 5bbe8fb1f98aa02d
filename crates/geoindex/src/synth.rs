//! Synthetic comprehensive grids inside real county boundaries.
//!
//! No public data set has township, community or grid polygons, so gridwork
//! makes them: each county's bounding box is covered by a lattice whose
//! vertices are jittered (seeded, reproducible), each lattice cell is clipped
//! to the county polygon, and the clipped cells become grids. Neighbouring
//! cells share their jittered vertices, so the grids tile the county with
//! irregular shapes and real coastlines. Blocks of cells form communities and
//! blocks of communities form streets, each with valid codes:
//! street = county + 3 digits, community = street + 3, grid = community + 3.

use geo::{Area as _, BooleanOps, BoundingRect};
use geo_types::{Coord, LineString, MultiPolygon, Polygon};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

/// (row, column) of a block of lattice cells.
type Block = (usize, usize);

/// A synthesised grid with its place in the hierarchy.
#[derive(Debug, Clone)]
pub struct SynthGrid {
    pub code: String,
    pub name: String,
    pub community: String,
    pub community_name: String,
    pub street: String,
    pub street_name: String,
    pub county: String,
    pub geometry: MultiPolygon<f64>,
}

/// Parameters of the partition.
#[derive(Debug, Clone, Copy)]
pub struct SynthParams {
    /// Roughly how many grids the county gets.
    pub grids: usize,
    /// Lattice cells per community side (a community is side × side cells).
    pub community_side: usize,
    /// Communities per street side.
    pub street_side: usize,
    pub seed: u64,
}

/// Partitions one county into grids.
pub fn partition_county(
    county_code: &str,
    county_name: &str,
    county: &MultiPolygon<f64>,
    p: SynthParams,
) -> Vec<SynthGrid> {
    let Some(bbox) = county.bounding_rect() else {
        return Vec::new();
    };
    let area = county.unsigned_area();
    if area <= 0.0 || p.grids == 0 {
        return Vec::new();
    }
    let cell = (area / p.grids as f64).sqrt();
    let cols = ((bbox.width() / cell).ceil() as usize).max(1);
    let rows = ((bbox.height() / cell).ceil() as usize).max(1);
    let seed = p.seed ^ county_code.parse::<u64>().unwrap_or(0);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let jitter = 0.3 * cell;
    let mut vertices = vec![vec![Coord { x: 0.0, y: 0.0 }; cols + 1]; rows + 1];
    for (r, row) in vertices.iter_mut().enumerate() {
        for (c, v) in row.iter_mut().enumerate() {
            let edge = r == 0 || c == 0 || r == rows || c == cols;
            let (jx, jy) =
                if edge { (0.0, 0.0) } else { (rng.gen_range(-jitter..jitter), rng.gen_range(-jitter..jitter)) };
            *v = Coord { x: bbox.min().x + c as f64 * cell + jx, y: bbox.min().y + r as f64 * cell + jy };
        }
    }
    // Clip every cell; remember its block coordinates.
    let cs = p.community_side.max(1);
    let ss = p.street_side.max(1) * cs;
    let mut streets: BTreeMap<Block, BTreeMap<Block, Vec<MultiPolygon<f64>>>> = BTreeMap::new();
    // Rows from the north, so codes read like a map.
    for r in (0..rows).rev() {
        for c in 0..cols {
            let ring = LineString(vec![
                vertices[r][c],
                vertices[r][c + 1],
                vertices[r + 1][c + 1],
                vertices[r + 1][c],
                vertices[r][c],
            ]);
            let quad = Polygon::new(ring, vec![]);
            let piece = county.intersection(&MultiPolygon(vec![quad]));
            if piece.unsigned_area() <= 1e-12 {
                continue;
            }
            let street_key = ((rows - 1 - r) / ss, c / ss);
            let community_key = ((rows - 1 - r) / cs, c / cs);
            streets.entry(street_key).or_default().entry(community_key).or_default().push(piece);
        }
    }
    let mut out = Vec::new();
    for (si, communities) in streets.into_values().enumerate() {
        let street = format!("{county_code}{:03}", si + 1);
        let street_name = format!("{county_name}第{}街道", si + 1);
        for (ci, cells) in communities.into_values().enumerate() {
            let community = format!("{street}{:03}", ci + 1);
            let community_name = format!("{street_name}第{}社区", ci + 1);
            for (gi, geometry) in cells.into_iter().enumerate() {
                out.push(SynthGrid {
                    code: format!("{community}{:03}", gi + 1),
                    name: format!("{community_name}第{}网格", gi + 1),
                    community: community.clone(),
                    community_name: community_name.clone(),
                    street: street.clone(),
                    street_name: street_name.clone(),
                    county: county_code.to_owned(),
                    geometry,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Area, GridIndex, Located};

    fn weihai() -> Vec<crate::geojson_io::Boundary> {
        let text = include_str!("../../../data/weihai-boundaries.geojson");
        crate::geojson_io::parse_boundaries(text).unwrap()
    }

    #[test]
    fn grids_tile_the_county_with_valid_codes_and_are_reproducible() {
        let b = weihai().into_iter().find(|b| b.adcode == "371002").unwrap();
        let params = SynthParams { grids: 60, community_side: 2, street_side: 2, seed: 7 };
        let grids = partition_county(&b.adcode, &b.name, &b.geometry, params);
        assert!(grids.len() >= 40 && grids.len() <= 90, "{}", grids.len());
        let total: f64 = grids.iter().map(|g| g.geometry.unsigned_area()).sum();
        let county = b.geometry.unsigned_area();
        assert!((total - county).abs() / county < 1e-6, "grids cover the county exactly: {total} vs {county}");
        for g in &grids {
            assert_eq!(g.code.len(), 15);
            assert!(g.code.starts_with(&g.community) && g.community.starts_with(&g.street));
            assert!(g.street.starts_with("371002"));
        }
        let mut codes: Vec<_> = grids.iter().map(|g| g.code.clone()).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), grids.len());
        let again = partition_county(&b.adcode, &b.name, &b.geometry, params);
        assert_eq!(again.len(), grids.len());
        assert_eq!(again[5].geometry, grids[5].geometry);
        // Every point of the county lands in exactly the grid that contains it.
        let idx = GridIndex::new(
            grids.iter().map(|g| Area { code: g.code.clone(), geometry: g.geometry.clone() }).collect(),
            vec![Area { code: b.adcode.clone(), geometry: b.geometry.clone() }],
            200.0,
        )
        .unwrap();
        let (lon, lat) = idx.interior_point(&grids[3].code).unwrap();
        assert_eq!(idx.locate(lon, lat), Located::Inside { grid: grids[3].code.clone() });
    }
}
