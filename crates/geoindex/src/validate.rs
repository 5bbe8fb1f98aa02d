//! Validation of the grid registry: codes, geometries, counties, overlaps and
//! coverage, before a set of grids is imported.
//!
//! Every problem is reported, not just the first. Errors make a set
//! unimportable; warnings (coverage gaps) do not. Grids whose geometry is
//! invalid are left out of the spatial checks (overlap, county, coverage): the
//! result of those on a broken geometry would mean nothing.
//!
//! Areas are spherical (the Chamberlain–Duquette formula on the WGS-84
//! equatorial radius, as geo's `ChamberlainDuquetteArea`), within about
//! 0.5 % of the ellipsoidal area at China's latitudes.
//!
//! Speed: candidate pairs come from an R-tree of bounding boxes, and most are
//! cleared by an exact combinatorial test on robust orientation predicates
//! (no proper edge crossing, no vertex of one strictly inside the other, no
//! piece of an edge of one strictly inside the other, shared edges with the
//! interiors on opposite sides). Only the pairs that fail it are measured.
//! The same is done between each grid and the county edges near it.
//!
//! Measuring: the area of an overlap (or of the part of a grid outside its
//! county) is the boundary integral of the pieces of both boundaries that
//! bound it, cut at the crossing points computed in f64 and classified with
//! the exact predicates, not geo's `BooleanOps`: that rounds coordinates to a
//! fixed grid of about 1e-10 of the inputs' extent (centimetres for a county)
//! and so puts errors of several m² on a km-sized grid, as much as the 1 m²
//! threshold, while the grids it measures stick out of their county by
//! 1e-9 m.

use crate::geojson_io::GridFeature;
use geo::Validation;
use geo_types::{Coord, LineString, MultiPolygon, Polygon};
use rayon::prelude::*;
use rstar::{RTree, RTreeObject, AABB};
use std::collections::{BTreeMap, HashMap};
use std::fmt;

/// Overlaps and parts outside the county smaller than this are ignored...
pub const MIN_AREA_M2: f64 = 1.0;
/// ...and so are those smaller than this share of the (smaller) grid: a
/// sliver of a few m² along kilometres of border is rounding in the source
/// data (boolean operations snap coordinates), not a drawing error.
pub const MIN_SHARE: f64 = 1e-5;
/// A grid may stick out of its county by this share of its area: county
/// boundaries are simplified (about 100 vertices per county in the shipped
/// data), so a precise grid drawing sticks out of them here and there.
pub const OUTSIDE_SHARE: f64 = 1e-3;
/// A county whose uncovered part exceeds this share of its area is warned about...
pub const GAP_SHARE: f64 = 0.001;
/// ...or whose uncovered part exceeds this area.
pub const GAP_AREA_M2: f64 = 10_000.0;

const EARTH_RADIUS_M: f64 = 6_378_137.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// What is wrong.
#[derive(Debug, Clone, PartialEq)]
pub enum Finding {
    /// Unclosed or too short ring, self-intersection, hole outside its shell,
    /// overlapping parts, zero area, bad coordinates.
    InvalidGeometry { reason: String },
    /// The code, community or centre is malformed or inconsistent.
    BadCode { reason: String },
    /// Another grid has the same code.
    DuplicateCode,
    /// The code's first 6 digits are not a known county.
    UnknownCounty { county: String },
    /// This much of the grid lies outside its county.
    OutsideCounty { county: String, area_m2: f64 },
    /// The grid overlaps `other` by this much.
    Overlap { other: String, area_m2: f64 },
    /// This much of a county (and this share of it, 0..1) is in no grid.
    CoverageGap { county: String, area_m2: f64, share: f64 },
}

impl Finding {
    pub fn severity(&self) -> Severity {
        match self {
            Finding::CoverageGap { .. } => Severity::Warning,
            _ => Severity::Error,
        }
    }
}

/// One problem: its severity, the grid it concerns (`None` for a county's
/// coverage gap) and what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub severity: Severity,
    pub grid: Option<String>,
    pub finding: Finding,
}

impl Problem {
    fn new(grid: Option<&str>, finding: Finding) -> Self {
        Problem { severity: finding.severity(), grid: grid.map(str::to_owned), finding }
    }
}

/// `1234567.891` → `1,234,567.9`.
fn m2(area: f64) -> String {
    let s = format!("{area:.1}");
    let (int, frac) = s.split_once('.').unwrap_or((&s, "0"));
    let (sign, digits) = int.strip_prefix('-').map_or(("", int), |d| ("-", d));
    let mut grouped = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    format!("{sign}{grouped}.{frac} m²")
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let grid = self.grid.as_deref().unwrap_or("(none)");
        match &self.finding {
            Finding::InvalidGeometry { reason } => write!(f, "{level}: grid {grid}: invalid geometry: {reason}"),
            Finding::BadCode { reason } => write!(f, "{level}: grid {grid}: bad code: {reason}"),
            Finding::DuplicateCode => write!(f, "{level}: grid {grid}: the code is used by more than one grid"),
            Finding::UnknownCounty { county } => {
                write!(f, "{level}: grid {grid}: unknown county {county} (the code's first 6 digits)")
            }
            Finding::OutsideCounty { county, area_m2 } => {
                write!(f, "{level}: grid {grid}: {} lies outside its county {county}", m2(*area_m2))
            }
            Finding::Overlap { other, area_m2 } => {
                write!(f, "{level}: grids {grid} and {other} overlap by {}", m2(*area_m2))
            }
            Finding::CoverageGap { county, area_m2, share } => write!(
                f,
                "{level}: county {county}: {} ({:.2} % of the county) is not covered by any grid",
                m2(*area_m2),
                share * 100.0
            ),
        }
    }
}

/// The result of [`validate`].
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Per grid in input order, then overlaps, then coverage gaps by county.
    pub problems: Vec<Problem>,
    /// Grids checked.
    pub grids: usize,
    /// Known counties that have at least one grid (coverage is checked for
    /// those with at least one grid of valid geometry).
    pub counties: usize,
}

impl Report {
    pub fn errors(&self) -> impl Iterator<Item = &Problem> {
        self.problems.iter().filter(|p| p.severity == Severity::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Problem> {
        self.problems.iter().filter(|p| p.severity == Severity::Warning)
    }

    /// No errors (warnings allowed).
    pub fn is_ok(&self) -> bool {
        self.errors().next().is_none()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.problems {
            writeln!(f, "{p}")?;
        }
        write!(
            f,
            "{} grids in {} counties: {} errors, {} warnings",
            self.grids,
            self.counties,
            self.errors().count(),
            self.warnings().count()
        )
    }
}

/// Checks a set of grids against the counties (county code → WGS-84
/// boundary). See the module docs for the rules.
pub fn validate(grids: &[GridFeature], counties: &HashMap<String, MultiPolygon<f64>>) -> Report {
    let county_of: Vec<Option<&str>> = grids.iter().map(|g| county_key(&g.code)).collect();
    let mut used: Vec<&str> = county_of.iter().flatten().copied().filter(|c| counties.contains_key(*c)).collect();
    used.sort_unstable();
    used.dedup();
    let county_data: HashMap<&str, County> = used
        .par_iter()
        .filter_map(|&code| counties.get_key_value(code).map(|(k, mp)| (k.as_str(), County::new(mp))))
        .collect();

    // A duplicated code is reported once, on its second occurrence.
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(grids.len());
    let duplicate: Vec<bool> = grids
        .iter()
        .map(|g| {
            let n = seen.entry(g.code.as_str()).or_default();
            *n += 1;
            *n == 2
        })
        .collect();

    let checks: Vec<GridCheck> = grids
        .par_iter()
        .enumerate()
        .map(|(i, g)| check_grid(g, county_of[i], duplicate[i], counties, &county_data))
        .collect();

    // Overlaps between grids with valid geometries.
    let entries: Vec<Entry> = checks
        .iter()
        .enumerate()
        .filter_map(|(idx, c)| c.shape.as_ref().map(|s| Entry { idx, bbox: s.aabb() }))
        .collect();
    let tree = RTree::bulk_load(entries);
    let areas: Vec<f64> = grids.iter().map(|g| area_m2(&g.geometry)).collect();
    let mut overlaps: Vec<(usize, usize, f64)> = checks
        .par_iter()
        .enumerate()
        .flat_map_iter(|(i, c)| {
            let mut found = Vec::new();
            if let Some(a) = &c.shape {
                for e in tree.locate_in_envelope_intersecting(&a.aabb()) {
                    let j = e.idx;
                    let Some(b) = checks[j].shape.as_ref().filter(|_| j > i) else { continue };
                    if !a.interiors_of_boxes_meet(b) || a.separates(b) || b.separates(a) || boundaries_clear(a, b) {
                        continue;
                    }
                    let area = overlap_m2(a, b);
                    if area > MIN_AREA_M2 && area > MIN_SHARE * areas[i].min(areas[j]) {
                        found.push((i, j, area));
                    }
                }
            }
            found
        })
        .collect();
    overlaps.sort_by_key(|&(i, j, _)| (i, j));

    // Coverage: each county's area against the sum of its (valid) grids' parts inside it.
    let mut covered: BTreeMap<&str, f64> = BTreeMap::new();
    for (i, c) in checks.iter().enumerate() {
        if let (Some(county), Some(inside)) = (county_of[i], c.inside_m2) {
            *covered.entry(county).or_default() += inside;
        }
    }

    let mut problems: Vec<Problem> = checks.into_iter().flat_map(|c| c.problems).collect();
    for (i, j, area) in overlaps {
        let finding = Finding::Overlap { other: grids[j].code.clone(), area_m2: area };
        problems.push(Problem::new(Some(&grids[i].code), finding));
    }
    for (&county, &sum) in &covered {
        let Some(data) = county_data.get(county) else { continue };
        let gap = data.area - sum;
        if gap > GAP_AREA_M2 || gap > GAP_SHARE * data.area {
            let share = gap / data.area;
            problems.push(Problem::new(None, Finding::CoverageGap { county: county.to_owned(), area_m2: gap, share }));
        }
    }
    Report { problems, grids: grids.len(), counties: used.len() }
}

/// What one grid's own checks found.
struct GridCheck {
    problems: Vec<Problem>,
    /// `Some` when the geometry is valid.
    shape: Option<Shape>,
    /// The grid's area inside its county, when both are known.
    inside_m2: Option<f64>,
}

fn check_grid(
    g: &GridFeature,
    county: Option<&str>,
    duplicate: bool,
    counties: &HashMap<String, MultiPolygon<f64>>,
    county_data: &HashMap<&str, County>,
) -> GridCheck {
    let code = Some(g.code.as_str());
    let mut problems: Vec<Problem> =
        code_problems(g).into_iter().map(|reason| Problem::new(code, Finding::BadCode { reason })).collect();
    if duplicate {
        problems.push(Problem::new(code, Finding::DuplicateCode));
    }
    let geometry_errors = geometry_problems(&g.geometry);
    let valid = geometry_errors.is_empty();
    problems.extend(geometry_errors.into_iter().map(|reason| Problem::new(code, Finding::InvalidGeometry { reason })));
    let shape = if valid { Some(Shape::new(&g.geometry)) } else { None };
    let mut inside_m2 = None;
    if let Some(county) = county {
        if !counties.contains_key(county) {
            problems.push(Problem::new(code, Finding::UnknownCounty { county: county.to_owned() }));
        } else if let (Some(shape), Some(data)) = (&shape, county_data.get(county)) {
            let area = area_m2(&g.geometry);
            let inside = data.inside_area(shape, area);
            let outside = area - inside;
            if outside > MIN_AREA_M2 && outside > OUTSIDE_SHARE * area {
                let finding = Finding::OutsideCounty { county: county.to_owned(), area_m2: outside };
                problems.push(Problem::new(code, finding));
            }
            inside_m2 = Some(inside);
        }
    }
    GridCheck { problems, shape, inside_m2 }
}

fn all_digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

/// The county code: the code's first 6 characters, when they are digits.
fn county_key(code: &str) -> Option<&str> {
    code.get(..6).filter(|c| all_digits(c, 6))
}

fn code_problems(g: &GridFeature) -> Vec<String> {
    let mut out = Vec::new();
    let code_ok = all_digits(&g.code, 15);
    if !code_ok {
        out.push(format!("code {:?} is not 15 digits", g.code));
    }
    if !all_digits(&g.community, 12) {
        out.push(format!("community {:?} is not 12 digits", g.community));
    } else if code_ok && !g.code.starts_with(&g.community) {
        out.push(format!("community {} is not the code's first 12 digits ({})", g.community, &g.code[..12]));
    }
    if let Some(c) = &g.centre {
        if !(all_digits(c, 9) || all_digits(c, 6)) || !g.code.starts_with(c.as_str()) {
            out.push(format!(
                "centre {c:?} is neither the code's street (its first 9 digits) nor its county (its first 6 digits)"
            ));
        }
    }
    out
}

/// Everything wrong with a grid geometry; empty when it is valid.
fn geometry_problems(mp: &MultiPolygon<f64>) -> Vec<String> {
    let mut out = Vec::new();
    if mp.0.is_empty() {
        out.push("empty geometry".to_owned());
        return out;
    }
    let mut repeated = false;
    for (i, p) in mp.0.iter().enumerate() {
        for (r, ring) in std::iter::once(p.exterior()).chain(p.interiors()).enumerate() {
            let what =
                if r == 0 { format!("polygon {i}: exterior ring") } else { format!("polygon {i}: hole {}", r - 1) };
            if ring.0.is_empty() {
                out.push(format!("{what} is empty"));
                continue;
            }
            if !ring.is_closed() {
                out.push(format!("{what} is not closed"));
            }
            if let Some(c) = ring.0.iter().find(|c| !(c.x.is_finite() && c.y.is_finite())) {
                out.push(format!("{what} has a non-finite coordinate ({}, {})", c.x, c.y));
            } else if let Some(c) =
                ring.0.iter().find(|c| !(-180.0..=180.0).contains(&c.x) || !(-90.0..=90.0).contains(&c.y))
            {
                out.push(format!("{what} has a coordinate outside lon -180..180 / lat -90..90 ({}, {})", c.x, c.y));
            }
            repeated |= ring.0.windows(2).any(|w| w[0] == w[1]);
        }
    }
    if !out.is_empty() {
        return out;
    }
    // Repeated consecutive points are harmless, but geo's self-intersection
    // test would see the zero-length edges as touching their neighbours.
    let deduped;
    let mp = if repeated {
        deduped = MultiPolygon(
            mp.0.iter()
                .map(|p| {
                    let dedup = |ls: &LineString<f64>| {
                        let mut c = ls.0.clone();
                        c.dedup();
                        LineString(c)
                    };
                    Polygon::new(dedup(p.exterior()), p.interiors().iter().map(dedup).collect())
                })
                .collect(),
        );
        &deduped
    } else {
        mp
    };
    out.extend(mp.validation_errors().into_iter().map(|e| {
        let s = e.to_string();
        // "polygon at index 0 is invalid: ..." reads badly for a one-polygon grid.
        match (mp.0.len(), s.strip_prefix("polygon at index 0 is invalid: ")) {
            (1, Some(rest)) => rest.to_owned(),
            _ => s,
        }
    }));
    if out.is_empty() {
        for (i, p) in mp.0.iter().enumerate() {
            if planar_area(p) == 0.0 {
                out.push(format!("polygon {i} has zero area"));
            }
        }
    }
    out
}

fn ring_signed_planar(ring: &LineString<f64>) -> f64 {
    ring.0.windows(2).map(|w| w[0].x * w[1].y - w[1].x * w[0].y).sum::<f64>() / 2.0
}

fn planar_area(p: &Polygon<f64>) -> f64 {
    ring_signed_planar(p.exterior()).abs() - p.interiors().iter().map(|r| ring_signed_planar(r).abs()).sum::<f64>()
}

/// The spherical area of a ring in m², unsigned (Chamberlain & Duquette 2007,
/// "Some algorithms for polygons on a sphere"; the same formula and radius as
/// geo's `ChamberlainDuquetteArea`).
fn ring_area_m2(ring: &LineString<f64>) -> f64 {
    let sum: f64 = ring
        .0
        .windows(2)
        .map(|w| (w[1].x - w[0].x).to_radians() * (2.0 + w[0].y.to_radians().sin() + w[1].y.to_radians().sin()))
        .sum();
    (sum * EARTH_RADIUS_M * EARTH_RADIUS_M / 2.0).abs()
}

/// The spherical area of a multipolygon in m²: shells minus holes, whatever
/// their orientation.
pub fn area_m2(mp: &MultiPolygon<f64>) -> f64 {
    mp.0.iter().map(|p| ring_area_m2(p.exterior()) - p.interiors().iter().map(ring_area_m2).sum::<f64>()).sum()
}

// ---------------------------------------------------------------------------
// Exact predicates on segments.

/// One boundary edge, with the side its polygon's interior is on.
#[derive(Debug, Clone, Copy)]
struct Seg {
    a: Coord<f64>,
    b: Coord<f64>,
    /// The ring's vertex before `a`.
    prev: Coord<f64>,
    /// The polygon's interior is on the left of a → b.
    left_inside: bool,
}

impl RTreeObject for Seg {
    type Envelope = AABB<[f64; 2]>;
    fn envelope(&self) -> Self::Envelope {
        AABB::from_corners([self.a.x, self.a.y], [self.b.x, self.b.y])
    }
}

impl Seg {
    fn boxes_meet(&self, o: &Seg) -> bool {
        self.a.x.min(self.b.x) <= o.a.x.max(o.b.x)
            && o.a.x.min(o.b.x) <= self.a.x.max(self.b.x)
            && self.a.y.min(self.b.y) <= o.a.y.max(o.b.y)
            && o.a.y.min(o.b.y) <= self.a.y.max(self.b.y)
    }

    /// An orientation made relative to the interior: > 0 towards it.
    fn towards_interior(&self, o: f64) -> f64 {
        if self.left_inside {
            o
        } else {
            -o
        }
    }

    /// > 0 when `d` is on the interior side of this edge's line.
    fn inward(&self, d: Coord<f64>) -> f64 {
        self.towards_interior(orient(self.a, self.b, d))
    }

    /// > 0 where the polygon is locally convex at `a`.
    fn turn(&self) -> f64 {
        self.towards_interior(orient(self.prev, self.a, self.b))
    }

    /// Whether `d` lies inside the polygon just off this edge (its interior
    /// side), exactly; `None` when `d` is on the edge's line.
    fn side(&self, d: Coord<f64>) -> Option<bool> {
        let o = orient(self.a, self.b, d);
        (o != 0.0).then_some((o > 0.0) == self.left_inside)
    }

    /// Whether the direction from the vertex `a` towards `d` enters the
    /// polygon's interior at `a`, exactly (the corner prev → a → b). The
    /// directions along the two edges themselves are the caller's business
    /// (shared pieces); on the extension of an edge beyond `a` the strict
    /// tests below still decide correctly.
    fn cone(&self, d: Coord<f64>) -> Option<bool> {
        let turn = self.turn();
        let (l1, l2) = (self.towards_interior(orient(self.prev, self.a, d)), self.inward(d));
        if l1 == 0.0 && l2 == 0.0 {
            return None;
        }
        Some(if turn > 0.0 {
            l1 > 0.0 && l2 > 0.0
        } else if turn < 0.0 {
            l1 > 0.0 || l2 > 0.0
        } else {
            l2 > 0.0
        })
    }
}

/// The sign of the orientation of r relative to p → q: > 0 left (ccw), < 0
/// right, 0 collinear. Exact (Shewchuk's adaptive predicate).
fn orient(p: Coord<f64>, q: Coord<f64>, r: Coord<f64>) -> f64 {
    let c = |c: Coord<f64>| robust::Coord { x: c.x, y: c.y };
    robust::orient2d(c(p), c(q), c(r))
}

fn opposite(o1: f64, o2: f64) -> bool {
    (o1 > 0.0 && o2 < 0.0) || (o1 < 0.0 && o2 > 0.0)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pos {
    Inside,
    Outside,
    Boundary,
}

/// Where `p` is relative to the polygon(s) bounded by `segs`, which must
/// include every edge that a ray from `p` towards +x can meet (even-odd rule,
/// exact).
fn locate<'a>(p: Coord<f64>, segs: impl IntoIterator<Item = &'a Seg>) -> Pos {
    let mut inside = false;
    for s in segs {
        let (a, b) = (s.a, s.b);
        if a == p || b == p {
            return Pos::Boundary;
        }
        if (a.y > p.y) != (b.y > p.y) {
            let o = orient(a, b, p);
            if o == 0.0 {
                return Pos::Boundary;
            }
            if (o > 0.0) == (b.y > a.y) {
                inside = !inside;
            }
        } else if a.y == p.y && b.y == p.y && (a.x.min(b.x)..=a.x.max(b.x)).contains(&p.x) {
            return Pos::Boundary;
        }
    }
    if inside {
        Pos::Inside
    } else {
        Pos::Outside
    }
}

/// The boundary of a valid multipolygon as segments.
#[derive(Debug)]
struct Shape {
    segs: Vec<Seg>,
    min: Coord<f64>,
    max: Coord<f64>,
    /// One polygon without holes that turns one way only.
    convex: bool,
}

impl Shape {
    fn new(mp: &MultiPolygon<f64>) -> Self {
        let mut segs = Vec::new();
        for p in &mp.0 {
            for (r, ring) in std::iter::once(p.exterior()).chain(p.interiors()).enumerate() {
                let ccw = ring_signed_planar(ring) > 0.0;
                // Interior on the left of a counter-clockwise shell, of a clockwise hole.
                let left_inside = if r == 0 { ccw } else { !ccw };
                let first = segs.len();
                for w in ring.0.windows(2).filter(|w| w[0] != w[1]) {
                    let prev = segs.last().filter(|_| segs.len() > first).map_or(w[0], |s: &Seg| s.a);
                    segs.push(Seg { a: w[0], b: w[1], prev, left_inside });
                }
                if segs.len() > first {
                    let last = segs[segs.len() - 1].a;
                    segs[first].prev = last;
                }
            }
        }
        let mut min = Coord { x: f64::INFINITY, y: f64::INFINITY };
        let mut max = Coord { x: f64::NEG_INFINITY, y: f64::NEG_INFINITY };
        for s in &segs {
            min = Coord { x: min.x.min(s.a.x), y: min.y.min(s.a.y) };
            max = Coord { x: max.x.max(s.a.x), y: max.y.max(s.a.y) };
        }
        let one_ring = mp.0.len() == 1 && mp.0.iter().all(|p| p.interiors().is_empty());
        let convex = one_ring && segs.iter().all(|s| s.turn() >= 0.0);
        Shape { segs, min, max, convex }
    }

    /// Whether a line through an edge of a convex shape has it on one side
    /// and every vertex of `other` on the other side or on the line: then
    /// their interiors are disjoint. Exact; the quick test for neighbours.
    fn separates(&self, other: &Shape) -> bool {
        self.convex && self.segs.iter().any(|e| other.segs.iter().all(|v| e.inward(v.a) <= 0.0))
    }

    fn aabb(&self) -> AABB<[f64; 2]> {
        AABB::from_corners([self.min.x, self.min.y], [self.max.x, self.max.y])
    }

    /// Whether the open bounding boxes intersect (boxes that only touch
    /// cannot hold overlapping interiors).
    fn interiors_of_boxes_meet(&self, o: &Shape) -> bool {
        self.min.x < o.max.x && o.min.x < self.max.x && self.min.y < o.max.y && o.min.y < self.max.y
    }

    fn locate(&self, p: Coord<f64>) -> Pos {
        locate(p, &self.segs)
    }
}

/// Where a piece of one boundary lies relative to the other polygon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Piece {
    Inside,
    Outside,
    /// Along the other's boundary, with both interiors on the same side or not.
    Shared {
        same_side: bool,
    },
    /// Undecided (degenerate configurations only).
    Unknown,
}

/// How the piece that starts at a stop is classified.
#[derive(Debug, Clone, Copy)]
enum From {
    /// The edge's start, not on the other boundary.
    Known(Pos),
    /// A proper crossing of this edge of the other boundary, or the edge's
    /// start on this edge's interior: the side of the edge.
    Edge(Seg),
    /// This vertex (`a`) of the other boundary: its corner.
    Vertex(Seg),
    Unknown,
}

/// Cuts each edge of the boundary `a` into pieces where it meets the
/// boundary of the polygon `b` and tells where each piece lies, exactly:
/// the topology comes from robust orientation predicates only (the
/// coordinates of proper crossing points are rounded, nothing else is).
/// `b_segs` must hold every edge of `b` that can touch `a` (the edges near
/// `a`'s bounding box will do) and `locate_b` must locate points exactly.
/// Stops early when `visit` returns false, and returns whether it did not.
fn for_each_piece(
    a: &[Seg],
    b_segs: &[Seg],
    locate_b: impl Fn(Coord<f64>) -> Pos,
    mut visit: impl FnMut(&Seg, Coord<f64>, Coord<f64>, Piece) -> bool,
) -> bool {
    // (parameter along the edge, point, how the piece from it is classified)
    let mut stops: Vec<(f64, Coord<f64>, From)> = Vec::new();
    // (parameter range, b's interior is on the left of a's edge)
    let mut along: Vec<(f64, f64, bool)> = Vec::new();
    for s in a {
        let use_x = (s.b.x - s.a.x).abs() >= (s.b.y - s.a.y).abs();
        let t = |c: Coord<f64>| if use_x { c.x } else { c.y };
        let (ta, tb) = (t(s.a), t(s.b));
        let (lo, hi) = (ta.min(tb), ta.max(tb));
        stops.clear();
        along.clear();
        let start = locate_b(s.a);
        let (mut at_vertex, mut vertices, mut on_edge) = (None, 0, None);
        for e in b_segs {
            if !s.boxes_meet(e) {
                continue;
            }
            let (o1, o2) = (orient(s.a, s.b, e.a), orient(s.a, s.b, e.b));
            if (o1 > 0.0 && o2 > 0.0) || (o1 < 0.0 && o2 < 0.0) {
                continue;
            }
            if o1 == 0.0 && o2 == 0.0 {
                let (t1, t2) = (t(e.a), t(e.b));
                along.push((t1.min(t2), t1.max(t2), e.left_inside == ((t2 - t1) * (tb - ta) > 0.0)));
            }
            if o1 == 0.0 {
                // b's vertex e.a on a's line (e.b is the next edge's a).
                if lo < t(e.a) && t(e.a) < hi {
                    stops.push((t(e.a), e.a, From::Vertex(*e)));
                } else if e.a == s.a {
                    at_vertex = Some(*e);
                    vertices += 1;
                }
            } else if opposite(o1, o2) {
                let (o3, o4) = (orient(e.a, e.b, s.a), orient(e.a, e.b, s.b));
                if opposite(o3, o4) {
                    let c = crossing(s, e);
                    // The rounded point keeps its place between the edge's ends.
                    let tc = t(c).clamp(lo, hi);
                    stops.push((tc, c, From::Edge(*e)));
                } else if o3 == 0.0 {
                    on_edge = Some(*e);
                }
            }
        }
        let from_start = match (start, at_vertex, on_edge) {
            (Pos::Inside | Pos::Outside, _, _) => From::Known(start),
            (Pos::Boundary, Some(e), _) if vertices == 1 => From::Vertex(e),
            (Pos::Boundary, None, Some(e)) => From::Edge(e),
            _ => From::Unknown,
        };
        stops.push((ta, s.a, from_start));
        stops.push((tb, s.b, From::Unknown));
        // In order from a to b. Of stops at the same place the first pushed
        // stays: a crossing rounded onto an end beats the end, as it
        // classifies what follows it.
        let forward = tb >= ta;
        stops.sort_by(|x, y| {
            let key = |z: &(f64, Coord<f64>, From)| if forward { z.0 } else { -z.0 };
            key(x).total_cmp(&key(y))
        });
        stops.dedup_by(|later, earlier| {
            let same = later.0 == earlier.0;
            if same && matches!((later.2, earlier.2), (From::Vertex(_), From::Vertex(_))) {
                // Rings of b meeting at one vertex: no single corner decides.
                earlier.2 = From::Unknown;
            }
            same
        });
        for w in stops.windows(2) {
            let ((t0, c0, from), (t1, c1, _)) = (w[0], w[1]);
            if t0 == t1 {
                continue;
            }
            let (l0, h0) = (t0.min(t1), t0.max(t1));
            let piece = if let Some(&(_, _, b_left)) = along.iter().find(|(l, h, _)| *l <= l0 && h0 <= *h) {
                Piece::Shared { same_side: b_left == s.left_inside }
            } else {
                let inside = match from {
                    From::Known(p) => Some(p == Pos::Inside),
                    From::Edge(e) => e.side(s.b),
                    From::Vertex(e) => e.cone(s.b),
                    From::Unknown => match locate_b(Coord { x: (c0.x + c1.x) / 2.0, y: (c0.y + c1.y) / 2.0 }) {
                        Pos::Inside => Some(true),
                        Pos::Outside => Some(false),
                        Pos::Boundary => None,
                    },
                };
                match inside {
                    Some(true) => Piece::Inside,
                    Some(false) => Piece::Outside,
                    None => Piece::Unknown,
                }
            };
            if !visit(s, c0, c1, piece) {
                return false;
            }
        }
    }
    true
}

/// The crossing point of two properly crossing segments, the same bits
/// whichever is given first: the two boundaries cut there must meet at the
/// same point, or a crossing at a shallow angle, whose place along the
/// segments is ill-conditioned, would leave a gap in the boundary integral.
fn crossing(s: &Seg, e: &Seg) -> Coord<f64> {
    let key = |c: Coord<f64>| (c.x, c.y);
    let ends = |g: &Seg| if key(g.a) <= key(g.b) { (g.a, g.b) } else { (g.b, g.a) };
    let (s, e) = (ends(s), ends(e));
    let ((p, q), (r, u)) = if (key(s.0), key(s.1)) <= (key(e.0), key(e.1)) { (s, e) } else { (e, s) };
    let (or, ou) = (orient(p, q, r), orient(p, q, u));
    let k = or / (or - ou);
    Coord { x: r.x + k * (u.x - r.x), y: r.y + k * (u.y - r.y) }
}

/// What a boundary must stay clear of in [`boundary_clear`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Forbid {
    Inside,
    Outside,
}

/// What a stretch of boundary shared with the other polygon must look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shared {
    /// Interiors on opposite sides (neighbours).
    Opposite,
    /// Interiors on the same side (a grid along its county's border).
    Same,
    /// Either.
    Any,
}

/// Proves that the boundary `a` has no point in the forbidden region of the
/// polygon `b` (its interior or its exterior) and that where `a` runs along
/// `b`'s boundary the interiors lie as `shared` says; `false` means "not
/// proved" (see [`for_each_piece`] for `b_segs` and `locate_b`).
fn boundary_clear(
    a: &[Seg],
    b_segs: &[Seg],
    locate_b: impl Fn(Coord<f64>) -> Pos,
    forbid: Forbid,
    shared: Shared,
) -> bool {
    for_each_piece(a, b_segs, locate_b, |_, _, _, piece| match piece {
        Piece::Inside => forbid != Forbid::Inside,
        Piece::Outside => forbid != Forbid::Outside,
        Piece::Shared { same_side } => match shared {
            Shared::Opposite => !same_side,
            Shared::Same => same_side,
            Shared::Any => true,
        },
        Piece::Unknown => false,
    })
}

/// Proves that the interiors of two valid grids do not overlap.
fn boundaries_clear(a: &Shape, b: &Shape) -> bool {
    boundary_clear(&a.segs, &b.segs, |p| b.locate(p), Forbid::Inside, Shared::Opposite)
        && boundary_clear(&b.segs, &a.segs, |p| a.locate(p), Forbid::Inside, Shared::Opposite)
}

/// Which pieces of a boundary [`boundary_integral`] sums.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keep {
    /// Pieces inside the other polygon, and shared pieces with both
    /// interiors on the same side (the boundary of A ∩ B, from A).
    InsideAndSameSide,
    /// Pieces inside the other polygon, no shared pieces (the boundary of
    /// A ∩ B, from B).
    Inside,
    /// Pieces outside the other polygon, and shared pieces with the interiors
    /// on opposite sides (the boundary of A \ B, from A).
    OutsideAndOppositeSide,
    /// Pieces inside the other polygon, reversed; no shared pieces (the
    /// boundary of A \ B, from B).
    InsideReversed,
}

/// The Chamberlain–Duquette sum of the pieces of the boundary `a` that
/// `keep` selects relative to the polygon `b`, each oriented with the
/// result's interior on its left: the pieces from both polygons close the
/// result's boundary, whose area is `-R²/2` times the two sums.
///
/// Why not geo's `BooleanOps`: it rounds every coordinate to a fixed grid
/// of about 1e-10 of the inputs' extent (centimetres for a county), which
/// puts errors of several m² on a km-sized grid. Here the pieces are
/// classified exactly ([`for_each_piece`]) and only the crossing points are
/// rounded, to f64.
fn boundary_integral(a: &[Seg], b_segs: &[Seg], locate_b: impl Fn(Coord<f64>) -> Pos, keep: Keep) -> f64 {
    let term =
        |p: Coord<f64>, q: Coord<f64>| (q.x - p.x).to_radians() * (p.y.to_radians().sin() + q.y.to_radians().sin());
    let mut sum = 0.0;
    for_each_piece(a, b_segs, locate_b, |s, c0, c1, piece| {
        let include = match (keep, piece) {
            (Keep::InsideAndSameSide, Piece::Shared { same_side }) => same_side,
            (Keep::OutsideAndOppositeSide, Piece::Shared { same_side }) => !same_side,
            (Keep::OutsideAndOppositeSide, Piece::Outside) => true,
            (Keep::InsideAndSameSide | Keep::Inside | Keep::InsideReversed, Piece::Inside) => true,
            _ => false,
        };
        if include {
            let forward = s.left_inside != (keep == Keep::InsideReversed);
            sum += if forward { term(c0, c1) } else { -term(c0, c1) };
        }
        true
    });
    sum
}

fn integral_to_m2(sum: f64) -> f64 {
    (-sum * EARTH_RADIUS_M * EARTH_RADIUS_M / 2.0).max(0.0)
}

/// The area in m² of the overlap of two valid grids.
fn overlap_m2(a: &Shape, b: &Shape) -> f64 {
    integral_to_m2(
        boundary_integral(&a.segs, &b.segs, |p| b.locate(p), Keep::InsideAndSameSide)
            + boundary_integral(&b.segs, &a.segs, |p| a.locate(p), Keep::Inside),
    )
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

/// A county's boundary, indexed by edge.
struct County {
    edges: RTree<Seg>,
    max_x: f64,
    area: f64,
}

impl County {
    fn new(geometry: &MultiPolygon<f64>) -> Self {
        let shape = Shape::new(geometry);
        County { max_x: shape.max.x, edges: RTree::bulk_load(shape.segs), area: area_m2(geometry) }
    }

    fn locate(&self, p: Coord<f64>) -> Pos {
        if p.x > self.max_x {
            return Pos::Outside;
        }
        locate(p, self.edges.locate_in_envelope_intersecting(&AABB::from_corners([p.x, p.y], [self.max_x, p.y])))
    }

    /// The area of the grid (of area `area`) inside the county: exact
    /// predicates prove most grids wholly inside or outside; for the rest,
    /// the part outside is measured.
    fn inside_area(&self, grid: &Shape, area: f64) -> f64 {
        let near: Vec<Seg> = self.edges.locate_in_envelope_intersecting(&grid.aabb()).copied().collect();
        if near.is_empty() {
            // The grid's boundary is nowhere near the county's: wholly in or out.
            match grid.segs.first().map(|s| self.locate(s.a)) {
                Some(Pos::Inside) => return area,
                Some(Pos::Outside) | None => return 0.0,
                Some(Pos::Boundary) => {}
            }
        } else if boundary_clear(&grid.segs, &near, |p| self.locate(p), Forbid::Outside, Shared::Same)
            && boundary_clear(&near, &grid.segs, |p| grid.locate(p), Forbid::Inside, Shared::Any)
        {
            return area;
        }
        let outside = integral_to_m2(
            boundary_integral(&grid.segs, &near, |p| self.locate(p), Keep::OutsideAndOppositeSide)
                + boundary_integral(&near, &grid.segs, |p| grid.locate(p), Keep::InsideReversed),
        );
        (area - outside).max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo_types::polygon;

    const X: f64 = 122.0;
    const Y: f64 = 37.5;
    const D: f64 = 0.01;

    fn rect(x0: f64, y0: f64, x1: f64, y1: f64) -> MultiPolygon<f64> {
        MultiPolygon(vec![polygon![(x: x0, y: y0), (x: x1, y: y0), (x: x1, y: y1), (x: x0, y: y1)]])
    }

    /// The square of side D whose south-west corner is (X + i·D, Y + j·D).
    fn cell(i: f64, j: f64) -> MultiPolygon<f64> {
        rect(X + i * D, Y + j * D, X + (i + 1.0) * D, Y + (j + 1.0) * D)
    }

    fn grid(code: &str, geometry: MultiPolygon<f64>) -> GridFeature {
        GridFeature {
            code: code.into(),
            name: format!("网格{code}"),
            community: code.get(..12).unwrap_or("").into(),
            centre: None,
            geometry,
        }
    }

    /// County 371002: the rectangle of cells 0..w × 0..h.
    fn county(w: f64, h: f64) -> HashMap<String, MultiPolygon<f64>> {
        HashMap::from([("371002".to_owned(), rect(X, Y, X + w * D, Y + h * D))])
    }

    /// Hand computation on the WGS-84 ellipsoid: metres per degree of
    /// latitude and longitude at latitude `lat`, times the degrees.
    fn hand_area(dlon: f64, dlat: f64, lat: f64) -> f64 {
        let phi = lat.to_radians();
        let m_lat = 111_132.92 - 559.82 * (2.0 * phi).cos() + 1.175 * (4.0 * phi).cos();
        let m_lon = 111_412.84 * phi.cos() - 93.5 * (3.0 * phi).cos();
        dlon * m_lon * dlat * m_lat
    }

    fn close(got: f64, want: f64, rel: f64) {
        assert!((got - want).abs() <= rel * want, "{got} vs {want}");
    }

    fn findings(r: &Report) -> Vec<&Finding> {
        r.problems.iter().map(|p| &p.finding).collect()
    }

    #[test]
    fn valid_neighbours_sharing_an_edge_have_no_problems() {
        let grids = [grid("371002001001001", cell(0.0, 0.0)), grid("371002001001002", cell(1.0, 0.0))];
        let r = validate(&grids, &county(2.0, 1.0));
        assert!(r.problems.is_empty(), "{r}");
        assert!(r.is_ok());
        assert_eq!((r.grids, r.counties), (2, 1));
    }

    #[test]
    fn bowtie_is_invalid() {
        let bowtie =
            MultiPolygon(vec![polygon![(x: X, y: Y), (x: X + D, y: Y + D), (x: X + D, y: Y), (x: X, y: Y + D)]]);
        let r = validate(&[grid("371002001001001", bowtie)], &county(1.0, 1.0));
        assert!(
            matches!(findings(&r)[..], [Finding::InvalidGeometry { reason }] if reason.contains("self-intersection")),
            "{r}"
        );
        assert!(!r.is_ok());
    }

    #[test]
    fn too_short_ring_is_invalid() {
        // geo-types closes every ring, so an "unclosed" two-point ring becomes a -> b -> a.
        let short = MultiPolygon(vec![Polygon::new(LineString::from(vec![(X, Y), (X + D, Y)]), vec![])]);
        let r = validate(&[grid("371002001001001", short)], &county(1.0, 1.0));
        assert!(
            matches!(findings(&r)[..], [Finding::InvalidGeometry { reason }] if reason.contains("at least 3 distinct points")),
            "{r}"
        );
        let empty = MultiPolygon(vec![]);
        let r = validate(&[grid("371002001001001", empty)], &county(1.0, 1.0));
        assert!(matches!(findings(&r)[..], [Finding::InvalidGeometry { .. }]), "{r}");
    }

    #[test]
    fn hole_outside_its_shell_is_invalid() {
        let shell = LineString::from(vec![(X, Y), (X + D, Y), (X + D, Y + D), (X, Y + D), (X, Y)]);
        let hole =
            LineString::from(vec![(X + 2.0 * D, Y), (X + 2.5 * D, Y), (X + 2.5 * D, Y + 0.5 * D), (X + 2.0 * D, Y)]);
        let r = validate(
            &[grid("371002001001001", MultiPolygon(vec![Polygon::new(shell, vec![hole])]))],
            &county(3.0, 1.0),
        );
        let errors: Vec<_> = r.errors().collect();
        assert!(
            matches!(&errors[..], [Problem { finding: Finding::InvalidGeometry { reason }, .. }] if reason.contains("not contained")),
            "{r}"
        );
    }

    #[test]
    fn overlapping_parts_of_one_multipolygon_are_invalid() {
        let mut mp = cell(0.0, 0.0);
        mp.0.extend(rect(X + 0.5 * D, Y, X + 1.5 * D, Y + D).0);
        let r = validate(&[grid("371002001001001", mp)], &county(2.0, 1.0));
        assert!(
            r.errors().any(|p| matches!(&p.finding, Finding::InvalidGeometry { reason } if reason.contains("overlap"))),
            "{r}"
        );
    }

    #[test]
    fn zero_area_is_invalid() {
        let flat = MultiPolygon(vec![polygon![(x: X, y: Y), (x: X + D, y: Y), (x: X + 2.0 * D, y: Y)]]);
        let r = validate(&[grid("371002001001001", flat)], &county(2.0, 1.0));
        assert!(r.errors().any(|p| matches!(p.finding, Finding::InvalidGeometry { .. })), "{r}");
    }

    #[test]
    fn duplicate_code_is_reported_once() {
        let grids = [
            grid("371002001001001", cell(0.0, 0.0)),
            grid("371002001001001", cell(1.0, 0.0)),
            grid("371002001001001", cell(2.0, 0.0)),
        ];
        let r = validate(&grids, &county(3.0, 1.0));
        assert_eq!(findings(&r), vec![&Finding::DuplicateCode], "{r}");
        assert_eq!(r.problems[0].grid.as_deref(), Some("371002001001001"));
    }

    #[test]
    fn bad_codes_of_each_kind() {
        let c = county(1.0, 1.0);
        let bad = |g: GridFeature| -> Vec<String> {
            validate(&[g], &c)
                .problems
                .into_iter()
                .filter_map(|p| match p.finding {
                    Finding::BadCode { reason } => Some(reason),
                    _ => None,
                })
                .collect()
        };
        let ok = grid("371002001001001", cell(0.0, 0.0));
        assert!(bad(ok.clone()).is_empty());
        assert!(bad(GridFeature { centre: Some("371002001".into()), ..ok.clone() }).is_empty());
        assert!(bad(GridFeature { centre: Some("371002".into()), ..ok.clone() }).is_empty());
        // Too short, letters, non-ASCII digits.
        for code in ["37100200100100", "37100200100100a", "37100200100100１"] {
            let reasons = bad(GridFeature { code: code.into(), ..ok.clone() });
            assert!(reasons.iter().any(|r| r.contains("is not 15 digits")), "{code}: {reasons:?}");
        }
        let reasons = bad(GridFeature { community: "37100200100".into(), ..ok.clone() });
        assert!(matches!(&reasons[..], [r] if r.contains("not 12 digits")), "{reasons:?}");
        let reasons = bad(GridFeature { community: "371002001002".into(), ..ok.clone() });
        assert!(matches!(&reasons[..], [r] if r.contains("not the code's first 12 digits")), "{reasons:?}");
        for centre in ["371002002", "37100200", "371003", "3710020010", "37100a"] {
            let reasons = bad(GridFeature { centre: Some(centre.into()), ..ok.clone() });
            assert!(matches!(&reasons[..], [r] if r.contains("centre")), "{centre}: {reasons:?}");
        }
    }

    #[test]
    fn unknown_county() {
        let r = validate(&[grid("371099001001001", cell(0.0, 0.0))], &county(1.0, 1.0));
        assert_eq!(findings(&r), vec![&Finding::UnknownCounty { county: "371099".into() }], "{r}");
        assert_eq!(r.counties, 0);
    }

    #[test]
    fn grid_sticking_out_of_its_county() {
        // The county is cells 0..2 × 0..1; the grid is 1.5 cells wide: half a cell sticks out.
        let g = rect(X + D, Y, X + 2.5 * D, Y + D);
        let r = validate(&[grid("371002001001001", g)], &county(2.0, 1.0));
        let outside: Vec<_> = r
            .problems
            .iter()
            .filter_map(|p| match &p.finding {
                Finding::OutsideCounty { county, area_m2 } => Some((county.as_str(), *area_m2)),
                _ => None,
            })
            .collect();
        assert_eq!(outside.len(), 1, "{r}");
        assert_eq!(outside[0].0, "371002");
        close(outside[0].1, hand_area(0.5 * D, D, Y + 0.5 * D), 0.01);
        assert!(r.to_string().contains("lies outside its county 371002"), "{r}");
        // Grids on the county border (sharing its coordinates) are inside.
        let r = validate(&[grid("371002001001001", cell(1.0, 0.0))], &county(2.0, 1.0));
        assert!(r.is_ok(), "{r}");
        // A grid wholly outside.
        let r = validate(&[grid("371002001001001", cell(5.0, 5.0))], &county(2.0, 1.0));
        assert!(r.errors().any(|p| matches!(p.finding, Finding::OutsideCounty { .. })), "{r}");
    }

    #[test]
    fn county_border_not_sharing_coordinates_is_exact() {
        // The county's west edge has extra vertices that the grid does not have, and the
        // grid's south edge runs along the county's with different vertices.
        let county_shape = MultiPolygon(vec![Polygon::new(
            LineString::from(vec![
                (X, Y),
                (X + 0.3 * D, Y),
                (X + 2.0 * D, Y),
                (X + 2.0 * D, Y + D),
                (X, Y + D),
                (X, Y + 0.7 * D),
                (X, Y + 0.2 * D),
                (X, Y),
            ]),
            vec![],
        )]);
        let counties = HashMap::from([("371002".to_owned(), county_shape)]);
        let grids = [grid("371002001001001", cell(0.0, 0.0)), grid("371002001001002", cell(1.0, 0.0))];
        let r = validate(&grids, &counties);
        assert!(r.problems.is_empty(), "{r}");
    }

    #[test]
    fn clipped_vertices_a_hair_off_a_slanted_border_are_inside() {
        // Grids cut from a county with a slanted north edge: their corners on that edge are
        // rounded, a few ulps inside or outside it, so their north edges cross the county's
        // at shallow angles. Nothing lies outside, and the county is covered.
        let (y0, y1) = (Y + D, Y + 1.3 * D);
        let top = |x: f64| y0 + (y1 - y0) * (x - X) / (2.0 * D);
        let counties = HashMap::from([(
            "371002".to_owned(),
            MultiPolygon(vec![polygon![(x: X, y: Y), (x: X + 2.0 * D, y: Y), (x: X + 2.0 * D, y: y1), (x: X, y: y0)]]),
        )]);
        for nudge in [-3.0, -1.0, 0.0, 1.0, 2.0, 4.0] {
            let cuts = [X, X + 0.3713 * D, X + 0.9127 * D, X + 1.5551 * D, X + 2.0 * D];
            let corner = |i: usize| {
                let y = top(cuts[i]);
                let alternate = if i.is_multiple_of(2) { 1.0 } else { -1.0 };
                let off = if i == 0 || i == cuts.len() - 1 { 0.0 } else { alternate * nudge * f64::EPSILON * y };
                y + off
            };
            let grids: Vec<GridFeature> = (0..cuts.len() - 1)
                .map(|i| {
                    let g = MultiPolygon(vec![polygon![
                        (x: cuts[i], y: Y), (x: cuts[i + 1], y: Y), (x: cuts[i + 1], y: corner(i + 1)), (x: cuts[i], y: corner(i))
                    ]]);
                    grid(&format!("37100200100100{}", i + 1), g)
                })
                .collect();
            let r = validate(&grids, &counties);
            assert!(r.problems.is_empty(), "nudge {nudge}: {r}");
        }
    }

    #[test]
    fn overlapping_squares() {
        let a = cell(0.0, 0.0);
        let b = rect(X + 0.75 * D, Y, X + 1.75 * D, Y + D);
        let r = validate(&[grid("371002001001001", a), grid("371002001001002", b)], &county(2.0, 1.0));
        let overlaps: Vec<_> = r
            .problems
            .iter()
            .filter_map(|p| match &p.finding {
                Finding::Overlap { other, area_m2 } => Some((p.grid.clone(), other.as_str(), *area_m2)),
                _ => None,
            })
            .collect();
        assert_eq!(overlaps.len(), 1, "{r}");
        assert_eq!(overlaps[0].0.as_deref(), Some("371002001001001"));
        assert_eq!(overlaps[0].1, "371002001001002");
        close(overlaps[0].2, hand_area(0.25 * D, D, Y + 0.5 * D), 0.01);
        assert!(r.to_string().contains("grids 371002001001001 and 371002001001002 overlap by"), "{r}");
    }

    /// The areas of the overlaps a report names.
    fn overlap_areas(r: &Report) -> Vec<f64> {
        r.problems
            .iter()
            .filter_map(|p| match &p.finding {
                Finding::Overlap { area_m2, .. } => Some(*area_m2),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn identical_geometry_under_two_codes_overlaps_fully() {
        let r = validate(
            &[grid("371002001001001", cell(0.0, 0.0)), grid("371002001001002", cell(0.0, 0.0))],
            &county(1.0, 1.0),
        );
        let areas = overlap_areas(&r);
        assert_eq!(areas.len(), 1, "{r}");
        close(areas[0], area_m2(&cell(0.0, 0.0)), 1e-6);
        close(areas[0], hand_area(D, D, Y + 0.5 * D), 0.01);
        // Same shape, ring starting elsewhere and running the other way.
        let reversed =
            MultiPolygon(vec![polygon![(x: X + D, y: Y + D), (x: X + D, y: Y), (x: X, y: Y), (x: X, y: Y + D)]]);
        let r =
            validate(&[grid("371002001001001", cell(0.0, 0.0)), grid("371002001001002", reversed)], &county(1.0, 1.0));
        assert_eq!(r.errors().count(), 1, "{r}");
    }

    #[test]
    fn square_inside_another_overlaps() {
        let inner = rect(X + 0.25 * D, Y + 0.25 * D, X + 0.75 * D, Y + 0.75 * D);
        let r = validate(
            &[grid("371002001001001", cell(0.0, 0.0)), grid("371002001001002", inner.clone())],
            &county(1.0, 1.0),
        );
        let areas = overlap_areas(&r);
        assert_eq!(areas.len(), 1, "{r}");
        close(areas[0], area_m2(&inner), 1e-6);
        // Inside and sharing a corner and two edge stretches.
        let corner = rect(X, Y, X + 0.5 * D, Y + 0.5 * D);
        let r =
            validate(&[grid("371002001001001", cell(0.0, 0.0)), grid("371002001001002", corner)], &county(1.0, 1.0));
        assert!(r.errors().any(|p| matches!(p.finding, Finding::Overlap { .. })), "{r}");
    }

    #[test]
    fn t_junction_neighbours_do_not_overlap() {
        // A is two cells wide; above it, B and C are one cell each: B's and C's shared
        // corner lies on A's top edge, which has no vertex there.
        let a = rect(X, Y, X + 2.0 * D, Y + D);
        let b = cell(0.0, 1.0);
        let c = cell(1.0, 1.0);
        // D touches A at a corner only.
        let d = cell(2.0, 1.0);
        let grids = [
            grid("371002001001001", a),
            grid("371002001001002", b),
            grid("371002001001003", c),
            grid("371002001001004", d),
            grid("371002001001005", cell(2.0, 0.0)),
        ];
        let r = validate(&grids, &county(3.0, 2.0));
        assert!(r.problems.is_empty(), "{r}");
    }

    #[test]
    fn near_miss_neighbours_are_measured_not_flagged() {
        // Real data: a neighbour whose shared edge is off by 1e-9° (~0.1 mm): < 1 m².
        let a = cell(0.0, 0.0);
        let b = rect(X + D - 1e-9, Y, X + 2.0 * D, Y + D);
        let r = validate(&[grid("371002001001001", a), grid("371002001001002", b)], &county(2.0, 1.0));
        assert!(r.is_ok(), "{r}");
    }

    #[test]
    fn coverage_gap_is_a_warning_with_its_area() {
        // Two cells of a 2 × 2 county: half of it uncovered.
        let grids = [grid("371002001001001", cell(0.0, 0.0)), grid("371002001001002", cell(1.0, 0.0))];
        let r = validate(&grids, &county(2.0, 2.0));
        assert!(r.is_ok(), "{r}");
        let warnings: Vec<_> = r.warnings().collect();
        match &warnings[..] {
            [Problem { grid: None, finding: Finding::CoverageGap { county, area_m2, share }, .. }] => {
                assert_eq!(county, "371002");
                close(*area_m2, hand_area(2.0 * D, D, Y + 1.5 * D), 0.01);
                close(*share, 0.5, 0.01);
            }
            other => panic!("{other:?}"),
        }
        assert!(r.to_string().contains("is not covered by any grid"), "{r}");
    }

    #[test]
    fn area_matches_geo_chamberlain_duquette() {
        use geo::ChamberlainDuquetteArea;
        let g = rect(X, Y, X + 0.3, Y + 0.2);
        close(area_m2(&g), g.chamberlain_duquette_unsigned_area(), 1e-12);
    }

    #[test]
    fn cheap_test_clears_neighbours_without_boolean_ops() {
        let shape = |mp: MultiPolygon<f64>| Shape::new(&mp);
        // Shared edge, T-junction, neighbour ring running the other way.
        assert!(boundaries_clear(&shape(cell(0.0, 0.0)), &shape(cell(1.0, 0.0))));
        assert!(boundaries_clear(&shape(rect(X, Y, X + 2.0 * D, Y + D)), &shape(cell(1.0, 1.0))));
        let cw = MultiPolygon(vec![
            polygon![(x: X + D, y: Y), (x: X + D, y: Y + D), (x: X + 2.0 * D, y: Y + D), (x: X + 2.0 * D, y: Y)],
        ]);
        assert!(boundaries_clear(&shape(cell(0.0, 0.0)), &shape(cw)));
        // Overlapping, nested, identical: not cleared.
        assert!(!boundaries_clear(&shape(cell(0.0, 0.0)), &shape(rect(X + 0.5 * D, Y, X + 1.5 * D, Y + D))));
        assert!(!boundaries_clear(
            &shape(cell(0.0, 0.0)),
            &shape(rect(X + 0.2 * D, Y + 0.2 * D, X + 0.8 * D, Y + 0.8 * D))
        ));
        assert!(!boundaries_clear(&shape(cell(0.0, 0.0)), &shape(cell(0.0, 0.0))));
        // A grid on its county's border is proved inside without intersecting.
        let county_mp = rect(X, Y, X + 2.0 * D, Y + D);
        let c = County::new(&county_mp);
        let g = shape(cell(1.0, 0.0));
        let near: Vec<Seg> = c.edges.locate_in_envelope_intersecting(&g.aabb()).copied().collect();
        assert!(!near.is_empty());
        assert!(boundary_clear(&g.segs, &near, |p| c.locate(p), Forbid::Outside, Shared::Same));
        assert!(boundary_clear(&near, &g.segs, |p| g.locate(p), Forbid::Inside, Shared::Any));
    }

    #[test]
    fn measured_areas_match_boolean_ops() {
        use geo::BooleanOps;
        // Irregular, non-convex shapes with a hole, in both orientations.
        let a = MultiPolygon(vec![Polygon::new(
            LineString::from(vec![
                (X, Y),
                (X + 3.0 * D, Y + 0.2 * D),
                (X + 2.0 * D, Y + 1.0 * D),
                (X + 2.6 * D, Y + 2.5 * D),
                (X + 0.3 * D, Y + 2.0 * D),
                (X, Y),
            ]),
            vec![LineString::from(vec![
                (X + 0.8 * D, Y + 0.6 * D),
                (X + 1.2 * D, Y + 1.4 * D),
                (X + 1.6 * D, Y + 0.5 * D),
                (X + 0.8 * D, Y + 0.6 * D),
            ])],
        )]);
        let b = MultiPolygon(vec![polygon![
            (x: X + 1.0 * D, y: Y - 0.5 * D), (x: X + 1.4 * D, y: Y + 3.0 * D), (x: X + 4.0 * D, y: Y + 1.1 * D), (x: X + 2.0 * D, y: Y + 0.2 * D)
        ]]);
        let (sa, sb) = (Shape::new(&a), Shape::new(&b));
        let want = area_m2(&a.intersection(&b));
        assert!(want > 1e5);
        close(overlap_m2(&sa, &sb), want, 1e-6);
        close(overlap_m2(&sb, &sa), want, 1e-6);
        // b as a county: the part of a outside it.
        let c = County::new(&b);
        let outside = area_m2(&a) - c.inside_area(&sa, area_m2(&a));
        close(outside, area_m2(&a.difference(&b)), 1e-6);
        // Disjoint, and sharing an edge: nothing.
        assert_eq!(overlap_m2(&Shape::new(&cell(0.0, 0.0)), &Shape::new(&cell(1.0, 0.0))), 0.0);
        assert_eq!(overlap_m2(&Shape::new(&cell(0.0, 0.0)), &Shape::new(&cell(5.0, 0.0))), 0.0);
    }

    #[test]
    fn locate_is_exact_on_edges_and_vertices() {
        let s = Shape::new(&cell(0.0, 0.0));
        assert_eq!(s.locate(Coord { x: X + 0.5 * D, y: Y + 0.5 * D }), Pos::Inside);
        assert_eq!(s.locate(Coord { x: X, y: Y }), Pos::Boundary);
        assert_eq!(s.locate(Coord { x: X + 0.5 * D, y: Y }), Pos::Boundary);
        assert_eq!(s.locate(Coord { x: X, y: Y + 0.3 * D }), Pos::Boundary);
        assert_eq!(s.locate(Coord { x: X - 0.5 * D, y: Y }), Pos::Outside);
        assert_eq!(s.locate(Coord { x: X + 2.0 * D, y: Y + 0.5 * D }), Pos::Outside);
    }

    #[test]
    fn problems_read_as_english() {
        let p = Problem::new(
            Some("371002001001001"),
            Finding::Overlap { other: "371002001001002".into(), area_m2: 1234567.89 },
        );
        assert_eq!(p.to_string(), "error: grids 371002001001001 and 371002001001002 overlap by 1,234,567.9 m²");
        let p = Problem::new(None, Finding::CoverageGap { county: "371002".into(), area_m2: 20_000.0, share: 0.0123 });
        assert_eq!(
            p.to_string(),
            "warning: county 371002: 20,000.0 m² (1.23 % of the county) is not covered by any grid"
        );
    }
}
