//! Synthetic comprehensive grids inside real county boundaries.
//!
//! No public data set has township, community or grid polygons, so gridwork
//! makes them. The published county polygons were simplified independently
//! and overlap a little, so they are first made disjoint: in adcode order,
//! each county loses what earlier counties cover, and slivers are dropped
//! ([`disjoint_counties`]). Each county then gets random seeds, uniform inside
//! it (seeded, reproducible), and the Voronoi cells of the seeds, clipped to
//! the county, are its grids: they tile the county exactly with irregular
//! shapes and real coastlines. Every Voronoi vertex is computed once and
//! shared by the cells around it, and clipped boundaries reuse the county's
//! own coordinates, so neighbouring grids have identical vertices along their
//! common edges. Cells that lie wholly inside the county (most of them) are
//! not clipped at all. A cell the county cuts into pieces stays one grid with
//! a MultiPolygon geometry (an island grid).
//!
//! The seeds, sorted along a Hilbert curve, are cut into runs of neighbours:
//! runs of grids form communities and runs of communities form streets, each
//! with valid codes: street = county + 3 digits, community = street + 3,
//! grid = community + 3, numbered from 001.

use crate::geojson_io::Boundary;
use geo::kernels::{Kernel as _, Orientation, RobustKernel};
use geo::{Area as _, BooleanOps as _, BoundingRect as _};
use geo_types::{Coord, LineString, MultiPolygon, Polygon, Rect};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use spade::{DelaunayTriangulation, Point2, Triangulation as _};

/// The largest number a 3-digit code segment holds.
const MAX_SEGMENT: usize = 999;
/// How many seed sets a county tries before giving up on degenerate geometry.
const ATTEMPTS: usize = 8;
/// Pieces of a trimmed county smaller than this (degrees², about 10 m²) are slivers.
const SLIVER_AREA: f64 = 1e-9;
/// Pieces thinner than this isoperimetric quotient (4πA/P², 1 for a disc) and
/// smaller than [`SLIVER_SHARE`] of their county are slivers too.
const SLIVER_QUOTIENT: f64 = 0.02;
const SLIVER_SHARE: f64 = 1e-3;

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
    /// About how many neighbouring grids form a community.
    pub grids_per_community: usize,
    /// About how many neighbouring communities form a street.
    pub communities_per_street: usize,
    /// Seed of the random generator; each county uses `seed ^ adcode`.
    pub seed: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    #[error("grids_per_community and communities_per_street must be at least 1")]
    BadParams,
    #[error("county code {0:?} is not 6 digits")]
    BadCode(String),
    #[error("county {0} appears more than once")]
    Duplicate(String),
    #[error("county {county} would need {count} {what} in one 3-digit code segment (at most 999)")]
    TooMany { county: String, what: &'static str, count: usize },
    #[error("county {0}: degenerate geometry in {ATTEMPTS} attempts")]
    Degenerate(String),
}

/// A degenerate configuration (a point exactly on a line, duplicate seeds):
/// the county retries with fresh seeds.
#[derive(Debug)]
struct Degenerate;

/// Partitions every county into grids; `total_grids` is spread over the
/// counties in proportion to area (at least 1 each). The counties are made
/// disjoint first ([`disjoint_counties`]); the grids come in county order,
/// then code order.
pub fn partition_counties(
    counties: &[Boundary],
    total_grids: usize,
    params: SynthParams,
) -> Result<Vec<SynthGrid>, SynthError> {
    check_params(params)?;
    let counties = disjoint_counties(counties)?;
    let weights: Vec<f64> = counties.iter().map(|c| weighted_area(&c.geometry)).collect();
    let counts = apportion(total_grids, &weights);
    let mut out = Vec::with_capacity(counts.iter().sum());
    for (c, n) in counties.iter().zip(counts) {
        out.extend(partition_county(&c.adcode, &c.name, &c.geometry, n, params)?);
    }
    Ok(out)
}

/// The counties in adcode order, made disjoint: each loses what earlier
/// counties cover, and slivers (tiny or thin pieces) are dropped. Geometries
/// are normalised by the boolean operations (valid, no repeated points,
/// counter-clockwise exteriors, clockwise holes); a county that loses
/// everything keeps an empty geometry.
pub fn disjoint_counties(counties: &[Boundary]) -> Result<Vec<Boundary>, SynthError> {
    let mut sorted: Vec<&Boundary> = counties.iter().collect();
    sorted.sort_by(|a, b| a.adcode.cmp(&b.adcode));
    for c in &sorted {
        county_number(&c.adcode)?;
    }
    if let Some(w) = sorted.windows(2).find(|w| w[0].adcode == w[1].adcode) {
        return Err(SynthError::Duplicate(w[0].adcode.clone()));
    }
    let boxes: Vec<Option<Rect<f64>>> = sorted.iter().map(|c| c.geometry.bounding_rect()).collect();
    let mut out = Vec::with_capacity(sorted.len());
    for (i, c) in sorted.iter().enumerate() {
        let earlier: Vec<usize> = (0..i).filter(|&j| boxes_overlap(boxes[i], boxes[j])).collect();
        let mut g = if earlier.is_empty() {
            // Still through the boolean engine, so every county is normalised alike.
            c.geometry.union(&MultiPolygon::<f64>::new(vec![]))
        } else {
            c.geometry.clone()
        };
        for j in earlier {
            g = g.difference(&sorted[j].geometry);
        }
        let area = c.geometry.unsigned_area();
        let kept = g.0.into_iter().filter(|p| !is_sliver(p, area)).map(normalise_polygon).collect();
        out.push(Boundary { geometry: MultiPolygon(kept), ..(*c).clone() });
    }
    Ok(out)
}

/// Partitions one county into `grids` grids. The county should already be
/// disjoint from its neighbours (see [`disjoint_counties`]); the grids tile
/// exactly this geometry.
pub fn partition_county(
    county_code: &str,
    county_name: &str,
    county: &MultiPolygon<f64>,
    grids: usize,
    params: SynthParams,
) -> Result<Vec<SynthGrid>, SynthError> {
    check_params(params)?;
    let number = county_number(county_code)?;
    let Some(region) = Region::new(county) else {
        return Ok(Vec::new());
    };
    if grids == 0 {
        return Ok(Vec::new());
    }
    let layout = Layout::new(county_code, grids, params)?;
    let mut rng = ChaCha8Rng::seed_from_u64(params.seed ^ number);
    for _ in 0..ATTEMPTS {
        let Some(sites) = region.sample(&mut rng, grids) else {
            break;
        };
        if let Ok(cells) = voronoi_cells(&region, &sites) {
            return Ok(layout.assemble(county_code, county_name, &region, &sites, cells));
        }
    }
    Err(SynthError::Degenerate(county_code.to_owned()))
}

fn check_params(p: SynthParams) -> Result<(), SynthError> {
    if p.grids_per_community == 0 || p.communities_per_street == 0 {
        return Err(SynthError::BadParams);
    }
    Ok(())
}

fn county_number(code: &str) -> Result<u64, SynthError> {
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SynthError::BadCode(code.to_owned()));
    }
    code.parse().map_err(|_| SynthError::BadCode(code.to_owned()))
}

fn boxes_overlap(a: Option<Rect<f64>>, b: Option<Rect<f64>>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => {
            a.min().x <= b.max().x && b.min().x <= a.max().x && a.min().y <= b.max().y && b.min().y <= a.max().y
        }
        _ => false,
    }
}

fn is_sliver(p: &Polygon<f64>, county_area: f64) -> bool {
    let area = p.unsigned_area();
    if area < SLIVER_AREA {
        return true;
    }
    let perimeter: f64 = p.exterior().lines().map(|l| (l.end.x - l.start.x).hypot(l.end.y - l.start.y)).sum();
    let quotient = 4.0 * std::f64::consts::PI * area / (perimeter * perimeter);
    quotient < SLIVER_QUOTIENT && area < SLIVER_SHARE * county_area
}

/// Area in degrees² scaled by the cosine of the latitude: proportional to
/// the area on the ground.
fn weighted_area(g: &MultiPolygon<f64>) -> f64 {
    match g.bounding_rect() {
        Some(r) => g.unsigned_area() * r.center().y.to_radians().cos(),
        None => 0.0,
    }
}

/// Splits `total` in proportion to `weights` (largest remainder), at least 1
/// for every positive weight.
fn apportion(total: usize, weights: &[f64]) -> Vec<usize> {
    let sum: f64 = weights.iter().filter(|w| **w > 0.0).sum();
    if sum <= 0.0 {
        return vec![0; weights.len()];
    }
    let quotas: Vec<f64> = weights.iter().map(|w| if *w > 0.0 { total as f64 * w / sum } else { 0.0 }).collect();
    let mut counts: Vec<usize> =
        quotas.iter().zip(weights).map(|(q, w)| if *w > 0.0 { (q.floor() as usize).max(1) } else { 0 }).collect();
    let assigned: usize = counts.iter().sum();
    // Largest remainders first; ties by position, so the result is deterministic.
    let mut order: Vec<usize> = (0..weights.len()).filter(|&i| weights[i] > 0.0).collect();
    order.sort_by(|&a, &b| (quotas[b] - quotas[b].floor()).total_cmp(&(quotas[a] - quotas[a].floor())).then(a.cmp(&b)));
    if assigned < total {
        for &i in order.iter().cycle().take(total - assigned) {
            counts[i] += 1;
        }
    } else {
        let mut excess = assigned - total;
        for &i in order.iter().rev() {
            if excess == 0 {
                break;
            }
            if counts[i] > 1 && counts[i] as f64 > quotas[i] {
                counts[i] -= 1;
                excess -= 1;
            }
        }
    }
    counts
}

/// Removes repeated consecutive coordinates and the closing coordinate.
fn open_ring(ls: &LineString<f64>) -> Vec<Coord<f64>> {
    let mut v: Vec<Coord<f64>> = Vec::with_capacity(ls.0.len());
    for c in &ls.0 {
        if v.last() != Some(c) {
            v.push(*c);
        }
    }
    while v.len() > 1 && v.first() == v.last() {
        v.pop();
    }
    v
}

/// Twice the signed area of an open ring (positive when counter-clockwise).
fn signed_area2(r: &[Coord<f64>]) -> f64 {
    let n = r.len();
    (0..n).map(|i| r[i].x * r[(i + 1) % n].y - r[(i + 1) % n].x * r[i].y).sum()
}

/// An open ring as a closed LineString, or `None` if it has fewer than 3 distinct points.
fn closed(mut r: Vec<Coord<f64>>) -> Option<LineString<f64>> {
    r.dedup();
    while r.len() > 1 && r.first() == r.last() {
        r.pop();
    }
    if r.len() < 3 {
        return None;
    }
    r.push(r[0]);
    Some(LineString(r))
}

/// Counter-clockwise exterior, clockwise holes, no repeated points.
fn normalise_polygon(p: Polygon<f64>) -> Polygon<f64> {
    let (ext, holes) = p.into_inner();
    let oriented = |ls: &LineString<f64>, ccw: bool| {
        let mut r = open_ring(ls);
        if (signed_area2(&r) > 0.0) != ccw {
            r.reverse();
        }
        closed(r)
    };
    let ext = oriented(&ext, true).unwrap_or_else(|| LineString(vec![]));
    Polygon::new(ext, holes.iter().filter_map(|h| oriented(h, false)).collect())
}

fn orient(p: Coord<f64>, q: Coord<f64>, r: Coord<f64>) -> Orientation {
    RobustKernel::orient2d(p, q, r)
}

fn cross(a: Coord<f64>, b: Coord<f64>) -> f64 {
    a.x * b.y - a.y * b.x
}

/// A county prepared for clipping: open rings with the interior on their
/// left (counter-clockwise exteriors, clockwise holes) and an index of their
/// edges in horizontal strips.
struct Region {
    rings: Vec<Vec<Coord<f64>>>,
    ring_box: Vec<[f64; 4]>,
    /// Id of each ring's first edge; edge `ring_start[r] + i` runs from vertex i to i + 1.
    ring_start: Vec<usize>,
    edge_ring: Vec<(u32, u32)>,
    edge_box: Vec<[f64; 4]>,
    bbox: [f64; 4],
    strip_y0: f64,
    strip_h: f64,
    strips: Vec<Vec<u32>>,
}

fn ring_box(r: &[Coord<f64>]) -> [f64; 4] {
    r.iter().fold([f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY], |b, c| {
        [b[0].min(c.x), b[1].min(c.y), b[2].max(c.x), b[3].max(c.y)]
    })
}

fn box_overlap(a: &[f64; 4], b: &[f64; 4]) -> bool {
    a[0] <= b[2] && b[0] <= a[2] && a[1] <= b[3] && b[1] <= a[3]
}

impl Region {
    fn new(g: &MultiPolygon<f64>) -> Option<Region> {
        let mut rings = Vec::new();
        for p in &g.0 {
            let mut ext = open_ring(p.exterior());
            if ext.len() < 3 || signed_area2(&ext) == 0.0 {
                continue;
            }
            if signed_area2(&ext) < 0.0 {
                ext.reverse();
            }
            rings.push(ext);
            for h in p.interiors() {
                let mut h = open_ring(h);
                if h.len() < 3 || signed_area2(&h) == 0.0 {
                    continue;
                }
                if signed_area2(&h) > 0.0 {
                    h.reverse();
                }
                rings.push(h);
            }
        }
        if rings.is_empty() {
            return None;
        }
        let ring_box: Vec<[f64; 4]> = rings.iter().map(|r| ring_box(r)).collect();
        let bbox =
            ring_box.iter().fold([f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY], |b, r| {
                [b[0].min(r[0]), b[1].min(r[1]), b[2].max(r[2]), b[3].max(r[3])]
            });
        let mut ring_start = Vec::with_capacity(rings.len());
        let mut edge_ring = Vec::new();
        let mut edge_box = Vec::new();
        for (ri, r) in rings.iter().enumerate() {
            ring_start.push(edge_ring.len());
            for i in 0..r.len() {
                let (a, b) = (r[i], r[(i + 1) % r.len()]);
                edge_ring.push((ri as u32, i as u32));
                edge_box.push([a.x.min(b.x), a.y.min(b.y), a.x.max(b.x), a.y.max(b.y)]);
            }
        }
        let n_strips = edge_ring.len().clamp(1, 4096);
        let strip_y0 = bbox[1];
        let strip_h = ((bbox[3] - bbox[1]) / n_strips as f64).max(f64::MIN_POSITIVE);
        let mut strips = vec![Vec::new(); n_strips];
        for (e, b) in edge_box.iter().enumerate() {
            let (lo, hi) =
                (Self::strip(strip_y0, strip_h, n_strips, b[1]), Self::strip(strip_y0, strip_h, n_strips, b[3]));
            for s in &mut strips[lo..=hi] {
                s.push(e as u32);
            }
        }
        Some(Region { rings, ring_box, ring_start, edge_ring, edge_box, bbox, strip_y0, strip_h, strips })
    }

    fn strip(y0: f64, h: f64, n: usize, y: f64) -> usize {
        (((y - y0) / h).floor().max(0.0) as usize).min(n - 1)
    }

    fn strip_of(&self, y: f64) -> usize {
        Self::strip(self.strip_y0, self.strip_h, self.strips.len(), y)
    }

    fn edge(&self, e: u32) -> (Coord<f64>, Coord<f64>) {
        let (r, i) = self.edge_ring[e as usize];
        let ring = &self.rings[r as usize];
        (ring[i as usize], ring[(i as usize + 1) % ring.len()])
    }

    /// Ids (ascending) of the edges whose bounding box meets `b`.
    fn edges_in(&self, b: &[f64; 4], out: &mut Vec<u32>) {
        out.clear();
        if !box_overlap(b, &self.bbox) {
            return;
        }
        for s in &self.strips[self.strip_of(b[1])..=self.strip_of(b[3])] {
            out.extend(s.iter().filter(|&&e| box_overlap(b, &self.edge_box[e as usize])));
        }
        out.sort_unstable();
        out.dedup();
    }

    /// Whether `p` is inside (crossing number; a point on an edge may go either way).
    fn contains(&self, p: Coord<f64>) -> bool {
        if p.y < self.bbox[1] || p.y > self.bbox[3] || p.x < self.bbox[0] || p.x > self.bbox[2] {
            return false;
        }
        let mut inside = false;
        for &e in &self.strips[self.strip_of(p.y)] {
            let (a, b) = self.edge(e);
            if (a.y > p.y) != (b.y > p.y) && p.x < a.x + (p.y - a.y) / (b.y - a.y) * (b.x - a.x) {
                inside = !inside;
            }
        }
        inside
    }

    /// `n` points uniform inside the region (rejection sampling in its bounding box).
    fn sample(&self, rng: &mut ChaCha8Rng, n: usize) -> Option<Vec<Coord<f64>>> {
        let [x0, y0, x1, y1] = self.bbox;
        if x1 <= x0 || y1 <= y0 {
            return None;
        }
        let mut out = Vec::with_capacity(n);
        let mut tries = 0usize;
        while out.len() < n {
            tries += 1;
            if tries > 10_000 + 1_000 * n {
                return None;
            }
            let p = Coord { x: rng.gen_range(x0..x1), y: rng.gen_range(y0..y1) };
            if self.contains(p) {
                out.push(p);
            }
        }
        Some(out)
    }
}

/// The Voronoi cells of `sites`, clipped to the region: one MultiPolygon per site.
fn voronoi_cells(region: &Region, sites: &[Coord<f64>]) -> Result<Vec<MultiPolygon<f64>>, Degenerate> {
    // A local frame: centred, longitude scaled by cos(latitude) so that cells
    // are round on the ground rather than in degrees.
    let [x0, y0, x1, y1] = region.bbox;
    let (cx, cy) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0);
    let kx = cy.to_radians().cos().max(0.01);
    let local = |c: Coord<f64>| Point2::new((c.x - cx) * kx, c.y - cy);
    let world = |p: Point2<f64>| Coord { x: cx + p.x / kx, y: cy + p.y };
    let n = sites.len();
    let mut points: Vec<Point2<f64>> = sites.iter().map(|c| local(*c)).collect();
    // Four far corners close the diagram: no site is on the convex hull, so
    // every site's cell is bounded, and the corners' own cells stay far from
    // the region (every point of the region is nearer to some site).
    let d = ((x1 - x0) * kx).hypot(y1 - y0).max(1e-9);
    let r = 4.0 * d;
    points.extend([Point2::new(-r, -r), Point2::new(r, -r), Point2::new(r, r), Point2::new(-r, r)]);
    let dt = DelaunayTriangulation::<Point2<f64>>::bulk_load_stable(points).map_err(|_| Degenerate)?;
    if dt.num_vertices() != n + 4 {
        return Err(Degenerate); // duplicate sites
    }
    // Voronoi vertices: one per Delaunay face (its circumcentre); faces whose
    // circumcentres (nearly) coincide share one vertex, the smallest face index.
    let nf = dt.num_all_faces();
    let mut centre = vec![Point2::new(0.0, 0.0); nf];
    for f in dt.inner_faces() {
        centre[f.fix().index()] = f.circumcenter();
    }
    let mut root: Vec<usize> = (0..nf).collect();
    fn find(root: &mut [usize], mut i: usize) -> usize {
        while root[i] != i {
            root[i] = root[root[i]];
            i = root[i];
        }
        i
    }
    let eps2 = (1e-12 * d) * (1e-12 * d);
    for f in dt.inner_faces() {
        let fi = f.fix().index();
        for e in f.adjacent_edges() {
            if let Some(g) = e.rev().face().as_inner() {
                let gi = g.fix().index();
                let (a, b) = (centre[fi], centre[gi]);
                if gi > fi && (a.x - b.x).powi(2) + (a.y - b.y).powi(2) <= eps2 {
                    let (ra, rb) = (find(&mut root, fi), find(&mut root, gi));
                    root[ra.max(rb)] = ra.min(rb);
                }
            }
        }
    }
    let ids: Vec<u32> = (0..nf).map(|i| find(&mut root, i) as u32).collect();
    let vertices: Vec<Coord<f64>> =
        (0..nf).map(|i| if ids[i] as usize == i { world(centre[i]) } else { Coord::zero() }).collect();
    let mut scratch = Scratch::default();
    let mut out = Vec::with_capacity(n);
    for v in dt.vertices().take(n) {
        // Out-edges come counter-clockwise; their left faces' circumcentres
        // are the cell's vertices in counter-clockwise order.
        let mut cell: Vec<u32> = Vec::with_capacity(8);
        for e in v.out_edges() {
            let f = e.face().as_inner().ok_or(Degenerate)?;
            cell.push(ids[f.fix().index()]);
        }
        cell.dedup();
        while cell.len() > 1 && cell.first() == cell.last() {
            cell.pop();
        }
        if cell.len() < 3 {
            return Err(Degenerate);
        }
        out.push(clip_cell(region, &vertices, &cell, &mut scratch)?);
    }
    Ok(out)
}

/// Buffers reused across cells.
#[derive(Default)]
struct Scratch {
    edges: Vec<u32>,
    hits: Vec<Hit>,
}

/// Where a county edge crosses the cell boundary.
#[derive(Debug, Clone, Copy)]
struct Hit {
    edge: u32,
    /// Position along the county edge (0 at its start, 1 at its end).
    s: f64,
    /// Which cell edge, and the position along it in the cell's direction.
    at: Pos,
    point: Coord<f64>,
    entry: bool,
}

/// A position on the cell boundary: cell edge, then increasing key along it.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
struct Pos(usize, f64);

/// A piece of county boundary inside the cell, from an entry to an exit.
struct Chain {
    coords: Vec<Coord<f64>>,
    entry: Pos,
    exit: Pos,
}

/// Clips the convex cell (counter-clockwise vertex ids into `vertices`) to the region.
fn clip_cell(
    region: &Region,
    vertices: &[Coord<f64>],
    cell: &[u32],
    scratch: &mut Scratch,
) -> Result<MultiPolygon<f64>, Degenerate> {
    let m = cell.len();
    let pts: Vec<Coord<f64>> = cell.iter().map(|&i| vertices[i as usize]).collect();
    let whole = |pts: &[Coord<f64>]| {
        let ring = closed(pts.to_vec()).unwrap_or_else(|| LineString(vec![]));
        MultiPolygon(vec![Polygon::new(ring, vec![])])
    };
    let cbox = ring_box(&pts);
    region.edges_in(&cbox, &mut scratch.edges);
    if scratch.edges.is_empty() {
        // No county edge comes near: the cell holds its seed, which is inside
        // the county, so the whole cell is.
        return Ok(whole(&pts));
    }
    // Crossings of county edges with the cell boundary.
    let hits = &mut scratch.hits;
    hits.clear();
    for &e in &scratch.edges {
        let (a, b) = region.edge(e);
        let first = hits.len();
        for k in 0..m {
            let (p, q) = (pts[k], pts[(k + 1) % m]);
            if p.x.max(q.x) < a.x.min(b.x)
                || b.x.max(a.x) < p.x.min(q.x)
                || p.y.max(q.y) < a.y.min(b.y)
                || b.y.max(a.y) < p.y.min(q.y)
            {
                continue;
            }
            let (o1, o2) = (orient(p, q, a), orient(p, q, b));
            if o1 == o2 && o1 != Orientation::Collinear {
                continue;
            }
            let (o3, o4) = (orient(a, b, p), orient(a, b, q));
            if o3 == o4 && o3 != Orientation::Collinear {
                continue;
            }
            if [o1, o2, o3, o4].contains(&Orientation::Collinear) {
                return Err(Degenerate);
            }
            // The point is computed from the cell edge in a canonical direction
            // (smaller vertex id first), so the neighbouring cell, which runs
            // along the same edge the other way, gets the very same coordinates.
            let forward = cell[k] < cell[(k + 1) % m];
            let (cp, cq) = if forward { (p, q) } else { (q, p) };
            let (dv, ev, w) = (cq - cp, b - a, a - cp);
            let den = cross(dv, ev);
            let t = (cross(w, ev) / den).clamp(0.0, 1.0);
            let s = cross(w, dv) / den;
            let point = Coord { x: cp.x + t * dv.x, y: cp.y + t * dv.y };
            hits.push(Hit { edge: e, s, at: Pos(k, if forward { t } else { -t }), point, entry: false });
        }
        match hits.len() - first {
            0 => {}
            1 => hits[first].entry = !inside_convex(&pts, a)?,
            2 => {
                if hits[first].s > hits[first + 1].s {
                    hits.swap(first, first + 1);
                }
                hits[first].entry = true;
            }
            _ => return Err(Degenerate),
        }
    }
    // Rings wholly inside the cell.
    let mut closed_rings: Vec<&Vec<Coord<f64>>> = Vec::new();
    for (ri, ring) in region.rings.iter().enumerate() {
        let b = &region.ring_box[ri];
        let within = cbox[0] <= b[0] && b[2] <= cbox[2] && cbox[1] <= b[1] && b[3] <= cbox[3];
        if within
            && !hits.iter().any(|h| region.edge_ring[h.edge as usize].0 as usize == ri)
            && inside_convex(&pts, ring[0])?
        {
            closed_rings.push(ring);
        }
    }
    if hits.is_empty() && closed_rings.is_empty() {
        return Ok(whole(&pts));
    }
    // Follow the county boundary from each entry to its exit.
    let hit_of = |e: u32| -> &[Hit] {
        let lo = hits.partition_point(|h| h.edge < e);
        let hi = hits.partition_point(|h| h.edge <= e);
        &hits[lo..hi]
    };
    let mut chains: Vec<Chain> = Vec::new();
    let mut exits = 0;
    for (i, h) in hits.iter().enumerate() {
        if !h.entry {
            exits += 1;
            continue;
        }
        let mut coords = vec![h.point];
        if let Some(x) = hits.get(i + 1).filter(|x| x.edge == h.edge) {
            coords.push(x.point);
            chains.push(Chain { coords, entry: h.at, exit: x.at });
            continue;
        }
        let (r, start) = region.edge_ring[h.edge as usize];
        let ring = &region.rings[r as usize];
        let mut j = start as usize;
        let exit = loop {
            j = (j + 1) % ring.len();
            if j == start as usize {
                return Err(Degenerate);
            }
            coords.push(ring[j]);
            match hit_of((region.ring_start[r as usize] + j) as u32) {
                [] => {}
                [x] if !x.entry => {
                    coords.push(x.point);
                    break x.at;
                }
                _ => return Err(Degenerate),
            }
        };
        chains.push(Chain { coords, entry: h.at, exit });
    }
    if exits != chains.len() {
        return Err(Degenerate);
    }
    let mut exteriors: Vec<Vec<Coord<f64>>> = Vec::new();
    if chains.is_empty() {
        if region.contains(pts[0]) {
            exteriors.push(pts.clone());
        }
    } else {
        // Around the cell boundary, every exit must be followed by an entry.
        let mut events: Vec<(Pos, bool, usize)> =
            chains.iter().enumerate().flat_map(|(c, ch)| [(ch.entry, true, c), (ch.exit, false, c)]).collect();
        events.sort_by(|a, b| a.0 .0.cmp(&b.0 .0).then(a.0 .1.total_cmp(&b.0 .1)));
        let mut next = vec![usize::MAX; chains.len()];
        for i in 0..events.len() {
            let (e, f) = (events[i], events[(i + 1) % events.len()]);
            if e.0 == f.0 {
                return Err(Degenerate);
            }
            if !e.1 {
                if !f.1 {
                    return Err(Degenerate);
                }
                next[e.2] = f.2;
            }
        }
        let mut used = vec![false; chains.len()];
        for start in 0..chains.len() {
            if used[start] {
                continue;
            }
            let mut ring = Vec::new();
            let mut c = start;
            loop {
                used[c] = true;
                ring.extend_from_slice(&chains[c].coords);
                let n = next[c];
                let (from, to) = (chains[c].exit, chains[n].entry);
                if from.0 != to.0 || to.1 < from.1 {
                    let mut k = from.0;
                    loop {
                        k = (k + 1) % m;
                        ring.push(pts[k]);
                        if k == to.0 {
                            break;
                        }
                    }
                }
                c = n;
                if c == start {
                    break;
                }
                if used[c] {
                    return Err(Degenerate);
                }
            }
            exteriors.push(ring);
        }
    }
    let mut holes: Vec<Vec<Coord<f64>>> = Vec::new();
    for r in closed_rings {
        if signed_area2(r) > 0.0 {
            exteriors.push(r.clone());
        } else {
            holes.push(r.clone());
        }
    }
    let mut polygons: Vec<(LineString<f64>, Vec<LineString<f64>>)> =
        exteriors.into_iter().filter_map(closed).map(|e| (e, Vec::new())).collect();
    for h in holes {
        let owner = polygons.iter().position(|(e, _)| ring_contains(&e.0, h[0])).ok_or(Degenerate)?;
        if let Some(h) = closed(h) {
            polygons[owner].1.push(h);
        }
    }
    Ok(MultiPolygon(polygons.into_iter().map(|(e, h)| Polygon::new(e, h)).collect()))
}

/// Whether `p` is strictly inside the convex counter-clockwise polygon; on its boundary is degenerate.
fn inside_convex(pts: &[Coord<f64>], p: Coord<f64>) -> Result<bool, Degenerate> {
    let m = pts.len();
    let mut inside = true;
    for k in 0..m {
        match orient(pts[k], pts[(k + 1) % m], p) {
            Orientation::CounterClockwise => {}
            Orientation::Clockwise => inside = false,
            Orientation::Collinear => {
                let (a, b) = (pts[k], pts[(k + 1) % m]);
                if p.x >= a.x.min(b.x) && p.x <= a.x.max(b.x) && p.y >= a.y.min(b.y) && p.y <= a.y.max(b.y) {
                    return Err(Degenerate);
                }
                inside = false;
            }
        }
    }
    Ok(inside)
}

/// Crossing-number test against a closed ring.
fn ring_contains(ring: &[Coord<f64>], p: Coord<f64>) -> bool {
    let mut inside = false;
    for w in ring.windows(2) {
        let (a, b) = (w[0], w[1]);
        if (a.y > p.y) != (b.y > p.y) && p.x < a.x + (p.y - a.y) / (b.y - a.y) * (b.x - a.x) {
            inside = !inside;
        }
    }
    inside
}

/// Position of a point on a 2¹⁶ × 2¹⁶ Hilbert curve.
fn hilbert(mut x: u32, mut y: u32) -> u64 {
    const N: u32 = 1 << 16;
    let mut d = 0u64;
    let mut s = N / 2;
    while s > 0 {
        let rx = u32::from(x & s > 0);
        let ry = u32::from(y & s > 0);
        d += u64::from(s) * u64::from(s) * u64::from((3 * rx) ^ ry);
        if ry == 0 {
            if rx == 1 {
                x = N - 1 - x;
                y = N - 1 - y;
            }
            std::mem::swap(&mut x, &mut y);
        }
        s /= 2;
    }
    d
}

/// How a county's grids group into communities and streets.
struct Layout {
    grids: usize,
    communities: usize,
    streets: usize,
}

/// The start of part `j` when `n` items are cut into `k` nearly equal parts.
fn part(n: usize, k: usize, j: usize) -> usize {
    j * n / k
}

impl Layout {
    fn new(county: &str, grids: usize, p: SynthParams) -> Result<Layout, SynthError> {
        let too_many = |what, count| SynthError::TooMany { county: county.to_owned(), what, count };
        let communities = ((grids as f64 / p.grids_per_community as f64).round() as usize).max(1);
        let streets = ((communities as f64 / p.communities_per_street as f64).round() as usize).max(1);
        if streets > MAX_SEGMENT {
            return Err(too_many("streets", streets));
        }
        if communities.div_ceil(streets) > MAX_SEGMENT {
            return Err(too_many("communities per street", communities.div_ceil(streets)));
        }
        if grids.div_ceil(communities) > MAX_SEGMENT {
            return Err(too_many("grids per community", grids.div_ceil(communities)));
        }
        Ok(Layout { grids, communities, streets })
    }

    fn assemble(
        &self,
        county_code: &str,
        county_name: &str,
        region: &Region,
        sites: &[Coord<f64>],
        mut cells: Vec<MultiPolygon<f64>>,
    ) -> Vec<SynthGrid> {
        let [x0, y0, x1, y1] = region.bbox;
        let scale = |v: f64, lo: f64, hi: f64| (((v - lo) / (hi - lo)).clamp(0.0, 1.0) * 65_535.0) as u32;
        let mut order: Vec<(u64, usize)> =
            sites.iter().enumerate().map(|(i, c)| (hilbert(scale(c.x, x0, x1), scale(c.y, y0, y1)), i)).collect();
        order.sort_unstable();
        let mut out = Vec::with_capacity(self.grids);
        for si in 0..self.streets {
            let street = format!("{county_code}{:03}", si + 1);
            let street_name = format!("{county_name}第{}街道", si + 1);
            let (c0, c1) = (part(self.communities, self.streets, si), part(self.communities, self.streets, si + 1));
            for (ci, cj) in (c0..c1).enumerate() {
                let community = format!("{street}{:03}", ci + 1);
                let community_name = format!("{street_name}第{}社区", ci + 1);
                let (g0, g1) = (part(self.grids, self.communities, cj), part(self.grids, self.communities, cj + 1));
                for (gi, &(_, site)) in order[g0..g1].iter().enumerate() {
                    out.push(SynthGrid {
                        code: format!("{community}{:03}", gi + 1),
                        name: format!("{community_name}第{}网格", gi + 1),
                        community: community.clone(),
                        community_name: community_name.clone(),
                        street: street.clone(),
                        street_name: street_name.clone(),
                        county: county_code.to_owned(),
                        geometry: std::mem::replace(&mut cells[site], MultiPolygon(Vec::new())),
                    });
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::{BooleanOps, Contains, Validation};
    use std::collections::{BTreeMap, HashMap, HashSet};

    const PARAMS: SynthParams = SynthParams { grids_per_community: 4, communities_per_street: 3, seed: 7 };

    fn weihai() -> Vec<Boundary> {
        let text = include_str!("../../../data/weihai-boundaries.geojson");
        crate::geojson_io::parse_boundaries(text).unwrap().into_iter().filter(|b| b.level == "county").collect()
    }

    fn weihai_grids(total: usize) -> Vec<SynthGrid> {
        partition_counties(&weihai(), total, PARAMS).unwrap()
    }

    fn rings(g: &MultiPolygon<f64>) -> impl Iterator<Item = &LineString<f64>> {
        g.0.iter().flat_map(|p| std::iter::once(p.exterior()).chain(p.interiors()))
    }

    fn square(x0: f64, y0: f64, x1: f64, y1: f64) -> Vec<Coord<f64>> {
        vec![Coord { x: x0, y: y0 }, Coord { x: x1, y: y0 }, Coord { x: x1, y: y1 }, Coord { x: x0, y: y1 }]
    }

    fn polygon(ext: Vec<Coord<f64>>, holes: Vec<Vec<Coord<f64>>>) -> Polygon<f64> {
        Polygon::new(closed(ext).unwrap(), holes.into_iter().map(|h| closed(h).unwrap()).collect())
    }

    #[test]
    fn grids_tile_each_trimmed_county_exactly_with_the_requested_count() {
        let grids = weihai_grids(400);
        assert!((360..=440).contains(&grids.len()), "{}", grids.len());
        for c in disjoint_counties(&weihai()).unwrap() {
            let total: f64 = grids.iter().filter(|g| g.county == c.adcode).map(|g| g.geometry.unsigned_area()).sum();
            let area = c.geometry.unsigned_area();
            assert!((total - area).abs() / area < 1e-9, "{}: {total} vs {area}", c.adcode);
        }
    }

    #[test]
    fn no_two_grids_overlap_within_or_across_counties() {
        let grids = weihai_grids(400);
        let boxes: Vec<Rect<f64>> = grids.iter().map(|g| g.geometry.bounding_rect().unwrap()).collect();
        let mut across = 0;
        for i in 0..grids.len() {
            for j in i + 1..grids.len() {
                if !boxes_overlap(Some(boxes[i]), Some(boxes[j])) {
                    continue;
                }
                let overlap = grids[i].geometry.intersection(&grids[j].geometry).unsigned_area();
                let smaller = grids[i].geometry.unsigned_area().min(grids[j].geometry.unsigned_area());
                if grids[i].county == grids[j].county {
                    assert!(overlap <= 1e-12 * smaller, "{} and {} overlap by {overlap}", grids[i].code, grids[j].code);
                } else {
                    // The counties were trimmed by geo's boolean operations,
                    // which snap to a fixed grid (about 1e-9°): what remains
                    // is well under a square metre.
                    across += 1;
                    assert!(overlap <= 1e-5 * smaller, "{} and {} overlap by {overlap}", grids[i].code, grids[j].code);
                }
            }
        }
        assert!(across > 0, "neighbouring counties' grids were compared");
    }

    #[test]
    fn trimmed_counties_are_disjoint_and_sorted() {
        let mut input = weihai();
        input.reverse();
        let trimmed = disjoint_counties(&input).unwrap();
        let codes: Vec<_> = trimmed.iter().map(|c| c.adcode.as_str()).collect();
        assert_eq!(codes, ["371002", "371003", "371082", "371083"]);
        for i in 0..trimmed.len() {
            assert!(trimmed[i].geometry.is_valid(), "{}", trimmed[i].adcode);
            for j in i + 1..trimmed.len() {
                let overlap = trimmed[i].geometry.intersection(&trimmed[j].geometry).unsigned_area();
                assert!(overlap < 1e-9, "{} and {}: {overlap}", trimmed[i].adcode, trimmed[j].adcode);
            }
        }
    }

    #[test]
    fn neighbouring_grids_share_vertices_and_the_county_border() {
        let grids = weihai_grids(400);
        for c in disjoint_counties(&weihai()).unwrap() {
            let key = |a: Coord<f64>, b: Coord<f64>| [a.x.to_bits(), a.y.to_bits(), b.x.to_bits(), b.y.to_bits()];
            let mut segments: HashMap<[u64; 4], &str> = HashMap::new();
            let mut coords: HashSet<[u64; 2]> = HashSet::new();
            for g in grids.iter().filter(|g| g.county == c.adcode) {
                for l in rings(&g.geometry).flat_map(|r| r.lines()) {
                    assert!(segments.insert(key(l.start, l.end), &g.code).is_none(), "segment used twice");
                    coords.insert([l.start.x.to_bits(), l.start.y.to_bits()]);
                }
            }
            let border: Vec<_> = rings(&c.geometry).flat_map(|r| r.lines()).collect();
            let on_border = |p: Coord<f64>| {
                border.iter().any(|l| {
                    let d = l.end - l.start;
                    let t = (((p - l.start).x * d.x + (p - l.start).y * d.y) / (d.x * d.x + d.y * d.y)).clamp(0.0, 1.0);
                    (l.start.x + t * d.x - p.x).hypot(l.start.y + t * d.y - p.y) < 1e-12
                })
            };
            let mut shared = 0;
            for (k, code) in &segments {
                match segments.get(&[k[2], k[3], k[0], k[1]]) {
                    // An interior edge: the neighbour runs along the very same coordinates.
                    Some(other) => {
                        assert_ne!(code, other);
                        shared += 1;
                    }
                    None => {
                        let (a, b) = (
                            Coord { x: f64::from_bits(k[0]), y: f64::from_bits(k[1]) },
                            Coord { x: f64::from_bits(k[2]), y: f64::from_bits(k[3]) },
                        );
                        assert!(
                            on_border(a) && on_border(b),
                            "{code}: edge {a:?}-{b:?} is neither shared nor on the border"
                        );
                    }
                }
            }
            assert!(shared > 100, "{}: {shared}", c.adcode);
            // The border is made of the county's own coordinates.
            for p in rings(&c.geometry).flat_map(|r| r.0.iter()) {
                assert!(coords.contains(&[p.x.to_bits(), p.y.to_bits()]), "{}: county vertex {p:?} unused", c.adcode);
            }
        }
    }

    #[test]
    fn polygons_are_valid_closed_and_counter_clockwise() {
        for g in weihai_grids(400) {
            assert!(g.geometry.is_valid(), "{}: {:?}", g.code, g.geometry.validation_errors());
            for p in &g.geometry.0 {
                for (k, r) in std::iter::once(p.exterior()).chain(p.interiors()).enumerate() {
                    assert!(r.0.len() >= 4 && r.is_closed(), "{}", g.code);
                    assert!(r.0.windows(2).all(|w| w[0] != w[1]), "{}: repeated coordinate", g.code);
                    assert_eq!(signed_area2(&r.0[1..]) > 0.0, k == 0, "{}: orientation", g.code);
                }
            }
        }
    }

    #[test]
    fn codes_are_valid_nested_and_numbered_from_one() {
        let grids = weihai_grids(400);
        let mut children: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for g in &grids {
            assert_eq!(g.code.len(), 15);
            assert!(g.code.bytes().all(|b| b.is_ascii_digit()));
            assert_eq!(g.community, g.code[..12]);
            assert_eq!(g.street, g.code[..9]);
            assert_eq!(g.county, g.code[..6]);
            assert!(g.name.starts_with(&g.community_name) && g.community_name.starts_with(&g.street_name));
            assert!(g.name.ends_with("网格") && g.community_name.ends_with("社区") && g.street_name.ends_with("街道"));
            for (parent, child) in [(&g.county, &g.street), (&g.street, &g.community), (&g.community, &g.code)] {
                let siblings = children.entry(parent).or_default();
                if siblings.last() != Some(&child.as_str()) {
                    siblings.push(child);
                }
            }
        }
        for (parent, kids) in &children {
            let numbers: Vec<usize> = kids.iter().map(|k| k[parent.len()..].parse().unwrap()).collect();
            assert_eq!(numbers, (1..=kids.len()).collect::<Vec<_>>(), "children of {parent}");
        }
        let codes: HashSet<&str> = grids.iter().map(|g| g.code.as_str()).collect();
        assert_eq!(codes.len(), grids.len());
        // About 4 grids per community and 3 communities per street.
        let communities = grids.iter().map(|g| &g.community).collect::<HashSet<_>>().len();
        let streets = grids.iter().map(|g| &g.street).collect::<HashSet<_>>().len();
        assert!((90..=110).contains(&communities), "{communities}");
        assert!((28..=38).contains(&streets), "{streets}");
    }

    #[test]
    fn same_input_gives_identical_output() {
        let a = weihai_grids(200);
        let b = weihai_grids(200);
        assert_eq!(a.len(), b.len());
        for (a, b) in a.iter().zip(&b) {
            assert_eq!((&a.code, &a.name), (&b.code, &b.name));
            assert_eq!(
                crate::geojson_io::geometry_to_string(&a.geometry),
                crate::geojson_io::geometry_to_string(&b.geometry)
            );
        }
        let other = partition_counties(&weihai(), 200, SynthParams { seed: 8, ..PARAMS }).unwrap();
        assert_ne!(a[0].geometry, other[0].geometry, "another seed, other grids");
    }

    #[test]
    fn a_cell_the_county_cuts_in_two_stays_one_grid() {
        // A U-shaped county; the cell spans both arms.
        let u = vec![
            Coord { x: 0.0, y: 0.0 },
            Coord { x: 3.0, y: 0.0 },
            Coord { x: 3.0, y: 3.0 },
            Coord { x: 2.0, y: 3.0 },
            Coord { x: 2.0, y: 1.0 },
            Coord { x: 1.0, y: 1.0 },
            Coord { x: 1.0, y: 3.0 },
            Coord { x: 0.0, y: 3.0 },
        ];
        let region = Region::new(&MultiPolygon(vec![polygon(u, vec![])])).unwrap();
        let cell = square(0.5, 1.5, 2.5, 2.5);
        let ids: Vec<u32> = (0..4).collect();
        let got = clip_cell(&region, &cell, &ids, &mut Scratch::default()).unwrap();
        assert_eq!(got.0.len(), 2);
        assert!((got.unsigned_area() - 1.0).abs() < 1e-12);
        assert!(got.is_valid());
    }

    #[test]
    fn holes_and_islands_inside_a_cell_are_kept() {
        // A county with a lake, and an islet in the lake; the cell holds both.
        let lake = {
            let mut r = square(1.0, 1.0, 2.0, 2.0);
            r.reverse();
            r
        };
        let county = MultiPolygon(vec![
            polygon(square(0.0, 0.0, 3.0, 3.0), vec![lake]),
            polygon(square(1.4, 1.4, 1.6, 1.6), vec![]),
        ]);
        let region = Region::new(&county).unwrap();
        let ids: Vec<u32> = (0..4).collect();
        let inside = clip_cell(&region, &square(0.5, 0.5, 2.5, 2.5), &ids, &mut Scratch::default()).unwrap();
        assert!((inside.unsigned_area() - (4.0 - 1.0 + 0.04)).abs() < 1e-12);
        assert_eq!(inside.0.len(), 2);
        assert!(inside.is_valid());
        // A cell crossing the lake shore keeps the lake's outline.
        let across = clip_cell(&region, &square(1.5, 0.5, 2.5, 1.5), &ids, &mut Scratch::default()).unwrap();
        // The cell less the lake, plus the islet's corner.
        assert!((across.unsigned_area() - (0.75 + 0.01)).abs() < 1e-12);
        assert!(across.contains(&geo::Point::new(1.7, 0.9)) && !across.contains(&geo::Point::new(1.7, 1.1)));
    }

    #[test]
    fn bad_parameters_and_oversized_code_segments_are_errors() {
        let w = weihai();
        let p = SynthParams { grids_per_community: 0, ..PARAMS };
        assert!(matches!(partition_counties(&w, 100, p), Err(SynthError::BadParams)));
        let one = SynthParams { grids_per_community: 1, communities_per_street: 1, seed: 1 };
        let err = partition_county("371002", "环翠区", &w[1].geometry, 1_000, one).unwrap_err();
        assert!(matches!(err, SynthError::TooMany { what: "streets", count: 1_000, .. }), "{err}");
        let mut bad = w.clone();
        bad[0].adcode = "3710".into();
        assert!(matches!(partition_counties(&bad, 10, PARAMS), Err(SynthError::BadCode(_))));
        let mut twice = w.clone();
        twice.push(w[0].clone());
        assert!(matches!(partition_counties(&twice, 10, PARAMS), Err(SynthError::Duplicate(_))));
    }

    #[test]
    fn grids_are_apportioned_by_area_with_at_least_one_each() {
        assert_eq!(apportion(10, &[1.0, 1.0, 2.0]), [3, 2, 5]);
        assert_eq!(apportion(100, &[1e-6, 1.0, 0.0]), [1, 99, 0]);
        assert_eq!(apportion(2, &[1.0, 1.0, 1.0]), [1, 1, 1]);
        let counts = apportion(100_000, &[0.3, 0.2, 0.5, 0.123]);
        assert_eq!(counts.iter().sum::<usize>(), 100_000);
    }

    #[test]
    fn the_demo_point_lands_in_the_readme_grid() {
        // services/gridwork/src/seed.rs seeds Weihai like this; README.md's
        // walk-through uses the grid and street centre of its demo point.
        let params = SynthParams { grids_per_community: 4, communities_per_street: 3, seed: 20_261_122 };
        let grids = partition_counties(&weihai(), 439, params).unwrap();
        assert_eq!(grids.len(), 439);
        let streets = grids.iter().map(|g| &g.street).collect::<HashSet<_>>().len();
        let communities = grids.iter().map(|g| &g.community).collect::<HashSet<_>>().len();
        assert_eq!((streets, communities), (37, 110), "README.md: 37 street centres");
        let point = geo::Point::new(122.115, 37.5095);
        let hits: Vec<_> = grids.iter().filter(|g| g.geometry.contains(&point)).map(|g| (&g.code, &g.street)).collect();
        assert_eq!(hits, [(&"371002003003004".to_owned(), &"371002003".to_owned())]);
    }

    #[test]
    fn hilbert_order_visits_neighbours() {
        // The curve fills the 4 × 4 corner first, one step to a neighbour at a time.
        let mut corner: Vec<(u64, u32, u32)> = (0..16).map(|i| (hilbert(i % 4, i / 4), i % 4, i / 4)).collect();
        corner.sort_unstable();
        assert_eq!(corner.iter().map(|c| c.0).collect::<Vec<_>>(), (0..16).collect::<Vec<_>>());
        for w in corner.windows(2) {
            assert_eq!(w[0].1.abs_diff(w[1].1) + w[0].2.abs_diff(w[1].2), 1, "{w:?}");
        }
    }
}
