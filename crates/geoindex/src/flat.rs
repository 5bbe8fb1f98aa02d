//! Polygons as flat coordinate arrays, and the exact predicates on them.
//!
//! Every polygon of the index (grid or county) keeps its raw coordinates in
//! one contiguous `Vec<[f64; 2]>` (lon, lat), its rings as ranges of that
//! array, and its bounding box. This is the only copy of the coordinates the
//! index holds; everything else in the index refers to polygons by number.
//!
//! Containment is *closed* (a point on the boundary is contained) and exact:
//! orientation signs come from Shewchuk's adaptive predicates (`robust`), so
//! a point exactly on an edge shared by two grids is on the boundary of both,
//! and the index's tie rule (smallest code) decides.

use geo_types::MultiPolygon;
use robust::{orient2d, Coord};

/// Metres per degree of latitude on the sphere of radius 6,371,008.8 m
/// (the radius `geo::Haversine` uses).
pub const METRES_PER_DEGREE: f64 = 111_195.08;

/// Where polygon `i` is in the arrays, with its bounding box: one cache line.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(64))]
pub struct Meta {
    /// min lon, min lat, max lon, max lat.
    pub bbox: [f64; 4],
    /// Its coordinates are `coords[start..end]`, ring after ring.
    start: u32,
    end: u32,
    /// Its rings are `ring_starts[first_ring..first_ring + rings]`.
    first_ring: u32,
    rings: u32,
}

/// Polygons (each a multipolygon with holes) as flat arrays.
#[derive(Debug, Default, Clone)]
pub struct Flat {
    /// Raw coordinates, every ring closed (first == last).
    pub coords: Vec<[f64; 2]>,
    /// Ring `r` is `coords[ring_starts[r]..ring_starts[r + 1]]`.
    ring_starts: Vec<u32>,
    meta: Vec<Meta>,
    /// The same boxes as `meta`, densely, for scans.
    pub bboxes: Vec<[f64; 4]>,
}

impl Flat {
    /// Flattens the polygons; `Err(i)` when polygon `i` has no coordinates.
    pub fn new<'a>(items: impl IntoIterator<Item = &'a MultiPolygon<f64>>) -> Result<Self, usize> {
        let mut f = Flat { ring_starts: vec![0], ..Default::default() };
        for (i, mp) in items.into_iter().enumerate() {
            let mut bbox = [f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY];
            let (start, first_ring) = (f.coords.len() as u32, (f.ring_starts.len() - 1) as u32);
            for poly in &mp.0 {
                for ring in std::iter::once(poly.exterior()).chain(poly.interiors()) {
                    if ring.0.len() < 2 {
                        continue;
                    }
                    for c in &ring.0 {
                        f.coords.push([c.x, c.y]);
                        bbox = [bbox[0].min(c.x), bbox[1].min(c.y), bbox[2].max(c.x), bbox[3].max(c.y)];
                    }
                    if ring.0.first() != ring.0.last() {
                        let c = ring.0[0];
                        f.coords.push([c.x, c.y]);
                    }
                    f.ring_starts.push(f.coords.len() as u32);
                }
            }
            if bbox[0] > bbox[2] {
                return Err(i);
            }
            let rings = (f.ring_starts.len() - 1) as u32 - first_ring;
            f.meta.push(Meta { bbox, start, end: f.coords.len() as u32, first_ring, rings });
            f.bboxes.push(bbox);
        }
        f.coords.shrink_to_fit();
        f.ring_starts.shrink_to_fit();
        f.meta.shrink_to_fit();
        f.bboxes.shrink_to_fit();
        Ok(f)
    }

    pub fn len(&self) -> usize {
        self.meta.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bboxes.is_empty()
    }

    /// The rings of polygon `i`, each a closed coordinate slice.
    pub fn rings(&self, i: usize) -> impl Iterator<Item = &[[f64; 2]]> + '_ {
        let m = &self.meta[i];
        let (r0, r1) = (m.first_ring as usize, (m.first_ring + m.rings) as usize);
        (r0..r1).map(move |r| &self.coords[self.ring_starts[r] as usize..self.ring_starts[r + 1] as usize])
    }

    /// Every edge of polygon `i`.
    pub fn edges(&self, i: usize) -> impl Iterator<Item = ([f64; 2], [f64; 2])> + '_ {
        self.rings(i).flat_map(|r| r.windows(2).map(|w| (w[0], w[1])))
    }

    /// Every edge of polygon `i` as the index `k` of its first end: the
    /// edge is `coords[k]`–`coords[k + 1]`.
    pub fn edge_starts(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        let m = &self.meta[i];
        let (r0, r1) = (m.first_ring as usize, (m.first_ring + m.rings) as usize);
        (r0..r1).flat_map(move |r| self.ring_starts[r] as usize..self.ring_starts[r + 1] as usize - 1)
    }

    /// Is (x, y) inside or on the boundary of polygon `i`? Exact.
    #[inline]
    pub fn contains(&self, i: usize, x: f64, y: f64) -> bool {
        let m = &self.meta[i];
        let b = &m.bbox;
        if x < b[0] || x > b[2] || y < b[1] || y > b[3] {
            return false;
        }
        if m.rings == 1 {
            // The common case: one ring, no ring table.
            return !matches!(ring_position(&self.coords[m.start as usize..m.end as usize], x, y), Position::Even);
        }
        let mut inside = false;
        for ring in self.rings(i) {
            match ring_position(ring, x, y) {
                Position::Boundary => return true,
                Position::Odd => inside = !inside,
                Position::Even => {}
            }
        }
        inside
    }

    /// The distance in metres from (x, y) to polygon `i` (0 inside): the
    /// closest point is found in a local equirectangular plane at the
    /// point's latitude, and the distance to it is the great-circle one.
    pub fn distance_m(&self, i: usize, x: f64, y: f64) -> f64 {
        if self.contains(i, x, y) {
            return 0.0;
        }
        let kx = y.to_radians().cos();
        let (_, q) = self.closest(i, x, y, kx);
        haversine_m(x, y, q[0], q[1])
    }

    /// Squared distance in the plane (lon·kx, lat) from (x, y) to polygon
    /// `i` (0 inside), in degrees of latitude squared.
    pub fn plane_distance_sq(&self, i: usize, x: f64, y: f64, kx: f64) -> f64 {
        if self.contains(i, x, y) {
            return 0.0;
        }
        self.closest(i, x, y, kx).0
    }

    /// The closest boundary point of polygon `i` in the plane (lon·kx, lat).
    fn closest(&self, i: usize, x: f64, y: f64, kx: f64) -> (f64, [f64; 2]) {
        let mut best = (f64::INFINITY, [x, y]);
        for (a, b) in self.edges(i) {
            let (ax, ay, bx, by) = ((a[0] - x) * kx, a[1] - y, (b[0] - x) * kx, b[1] - y);
            let (ex, ey) = (bx - ax, by - ay);
            let len2 = ex * ex + ey * ey;
            let t = if len2 > 0.0 { (-(ax * ex + ay * ey) / len2).clamp(0.0, 1.0) } else { 0.0 };
            let (qx, qy) = (ax + t * ex, ay + t * ey);
            let d2 = qx * qx + qy * qy;
            if d2 < best.0 {
                best = (d2, [a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])]);
            }
        }
        best
    }

    /// Heap bytes held, split into raw coordinates and the rest.
    pub fn heap_bytes(&self) -> (usize, usize) {
        let coords = self.coords.capacity() * 16;
        let rest = self.ring_starts.capacity() * 4
            + self.meta.capacity() * std::mem::size_of::<Meta>()
            + self.bboxes.capacity() * 32;
        (coords, rest)
    }
}

enum Position {
    Boundary,
    Odd,
    Even,
}

/// Crossing parity of a ray from (x, y) towards +x with a closed ring, or
/// `Boundary` when the point lies on the ring.
#[inline]
fn ring_position(ring: &[[f64; 2]], x: f64, y: f64) -> Position {
    let mut odd = false;
    for w in ring.windows(2) {
        let (a, b) = (w[0], w[1]);
        let (a_above, b_above) = (a[1] > y, b[1] > y);
        if a_above != b_above {
            // The edge straddles the ray's line (half-open at its lower end).
            let left = (a[0] - x).max(b[0] - x);
            if left < 0.0 {
                // Both ends are left of the point: no crossing, not on it.
                continue;
            }
            let o = orient2d(Coord { x: a[0], y: a[1] }, Coord { x: b[0], y: b[1] }, Coord { x, y });
            if o == 0.0 {
                return Position::Boundary;
            }
            if (o > 0.0) == b_above {
                odd = !odd;
            }
        } else if a[1] == y && (a[0] == x || (b[1] == y && (a[0] <= x) != (b[0] < x))) {
            // On a vertex, or on a horizontal edge.
            return Position::Boundary;
        }
    }
    if odd {
        Position::Odd
    } else {
        Position::Even
    }
}

/// Great-circle distance in metres (haversine, mean Earth radius).
pub fn haversine_m(x1: f64, y1: f64, x2: f64, y2: f64) -> f64 {
    const R: f64 = 6_371_008.8;
    let (p1, p2) = (y1.to_radians(), y2.to_radians());
    let (dp, dl) = ((y2 - y1).to_radians(), (x2 - x1).to_radians());
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * R * a.sqrt().min(1.0).asin()
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::Intersects;
    use geo_types::{polygon, Point};
    use rand::{Rng, SeedableRng};

    #[test]
    fn containment_matches_geo_on_random_points_including_holes_and_boundaries() {
        let shell = polygon!(
            exterior: [(x: 0.0, y: 0.0), (x: 10.0, y: 0.0), (x: 10.0, y: 10.0), (x: 5.0, y: 6.0), (x: 0.0, y: 10.0)],
            interiors: [[(x: 2.0, y: 2.0), (x: 4.0, y: 2.0), (x: 4.0, y: 4.0), (x: 2.0, y: 4.0)]],
        );
        let island = polygon![(x: 20.0, y: 0.0), (x: 22.0, y: 0.0), (x: 21.0, y: 3.0)];
        let mp = MultiPolygon(vec![shell, island]);
        let f = Flat::new([&mp]).unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        for _ in 0..20_000 {
            // Half the points on the integer lattice, which hits vertices and edges.
            let (x, y) = if rng.gen_bool(0.5) {
                (rng.gen_range(-1..24) as f64, rng.gen_range(-1..12) as f64)
            } else {
                (rng.gen_range(-1.0..24.0), rng.gen_range(-1.0..12.0))
            };
            assert_eq!(f.contains(0, x, y), mp.intersects(&Point::new(x, y)), "({x}, {y})");
        }
        // Boundary points: vertices, edge midpoints, the hole's edge, the notch.
        for (x, y) in [(0.0, 0.0), (5.0, 0.0), (10.0, 5.0), (5.0, 6.0), (3.0, 2.0), (2.0, 3.0), (21.0, 0.0), (7.5, 8.0)]
        {
            assert!(f.contains(0, x, y), "({x}, {y}) is on the boundary");
        }
        assert!(!f.contains(0, 3.0, 3.0), "inside the hole");
        assert!(!f.contains(0, 5.0, 7.0), "in the notch");
    }

    #[test]
    fn distances_are_great_circle_metres() {
        let sq = polygon![(x: 122.0, y: 37.5), (x: 122.01, y: 37.5), (x: 122.01, y: 37.51), (x: 122.0, y: 37.51)];
        let f = Flat::new([&MultiPolygon(vec![sq])]).unwrap();
        assert_eq!(f.distance_m(0, 122.005, 37.505), 0.0);
        // 0.001° of latitude south of the square.
        let d = f.distance_m(0, 122.005, 37.499);
        assert!((d - 111.195).abs() < 0.01, "{d}");
        // 0.001° of longitude east at 37.5°N.
        let d = f.distance_m(0, 122.011, 37.505);
        assert!((d - 111.195 * 37.505f64.to_radians().cos()).abs() < 0.05, "{d}");
    }
}
