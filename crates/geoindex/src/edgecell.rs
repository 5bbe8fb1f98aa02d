//! Edge cells: a raster cell crossed by grid boundaries, with the pieces of
//! those boundaries that lie in it, so that a lookup there reads one small
//! block instead of each candidate grid's whole rings.
//!
//! A block holds, for a cell of the raster:
//! - its candidate grids (those that may contain a point of the cell, in
//!   code order, at most [`MAX_CANDIDATES`]);
//! - the edges of those grids that meet the cell grown by [`MARGIN`] of its
//!   side, clipped to that box and rounded to a lattice of `Q` units per
//!   cell side (i16 coordinates, origin at the cell's centre), each edge
//!   once with a bit mask of the candidates whose boundary it is part of
//!   (an edge two grids share is stored once);
//! - a reference point `C` of the lattice inside the cell, far from every
//!   edge, and for each candidate whether `C` is inside it (decided at build
//!   time by the exact test on the raw coordinates).
//!
//! A point `P` of the cell is inside candidate `k` iff the segment `C–P`
//! crosses an odd number of `k`'s edges, XOR `C` inside `k`. The test runs
//! in exact integer arithmetic on the rounded edges and `P` truncated to the
//! lattice, with ties broken by a consistent symbolic perturbation (a vertex
//! exactly on the line `C–P` counts as lying on its left), so its parity is
//! exactly that of the rounded boundary. The rounded boundary lies within
//! `DELTA_Q` (half a unit's diagonal) of the true one and `P` moved by less
//! than `DELTA_P` (one unit's diagonal), so when the truncated point lies
//! farther than `GUARD` > `DELTA_Q + 2 * DELTA_P` units from every stored
//! edge, the answer is the exact answer for the raw coordinates (a homotopy
//! from the true boundary to the rounded one never passes over `P`, nor
//! over `C`). Otherwise (within ~2 cm of an edge on a 250 m cell, or
//! anything degenerate) the test says "unsure" and the caller runs the
//! exact test on the raw coordinates, so boundary points resolve exactly as
//! before.

use crate::flat::Flat;

/// Lattice units per cell side.
pub const Q: f64 = 49_152.0;
/// Edges are kept where they meet the cell grown by this share of a side.
pub const MARGIN: f64 = 0.125;
/// Half-side of the clip box, in lattice units (fits an i16 with room).
const CLIP: f64 = (0.5 + MARGIN) * Q;
/// Closer than this (lattice units) to a stored edge: unsure. Must exceed
/// DELTA_Q + 2 * DELTA_P = 0.71 + 2.83.
pub const GUARD: i64 = 4;
/// The reference point keeps at least this far from every edge.
const C_CLEARANCE: f64 = 16.0;
/// A reference point this far from every edge is good enough.
const C_COMFORT: f64 = 1024.0;
pub const MAX_CANDIDATES: usize = 8;
pub const MAX_EDGES: usize = 63;
/// Reference point positions: a 7 × 7 lattice of the cell.
const C_STEPS: i64 = 7;
const C_STEP: i64 = (Q as i64) / 8;

/// Unpacks a lattice point stored as two i16.
#[inline(always)]
fn unpack(w: u32) -> (i64, i64) {
    ((w as u16 as i16) as i64, ((w >> 16) as u16 as i16) as i64)
}

#[inline(always)]
fn pack(x: i64, y: i64) -> u32 {
    (x as i16 as u16 as u32) | ((y as i16 as u16 as u32) << 16)
}

/// The reference point of index `k` (0..49), in lattice units.
#[inline(always)]
fn reference(k: u32) -> (i64, i64) {
    let k = k as i64;
    ((k % C_STEPS + 1) * C_STEP - (Q as i64) / 2, (k / C_STEPS + 1) * C_STEP - (Q as i64) / 2)
}

/// The reference point positions from the centre outwards.
fn reference_order() -> &'static [u32] {
    static ORDER: std::sync::OnceLock<Vec<u32>> = std::sync::OnceLock::new();
    ORDER.get_or_init(|| {
        let mut order: Vec<u32> = (0..(C_STEPS * C_STEPS) as u32).collect();
        order.sort_by_key(|&k| {
            let (x, y) = reference(k);
            (x * x + y * y, k)
        });
        order
    })
}

/// A block's header word.
#[inline(always)]
fn header(words: &[u32]) -> (usize, usize, u32, u32) {
    let w = words[0];
    ((w & 0xf) as usize, ((w >> 4) & 0x3f) as usize, (w >> 10) & 0x3f, (w >> 16) & 0xff)
}

/// The candidate grids of the block at the start of `words`.
#[inline]
pub fn candidates(words: &[u32]) -> &[u32] {
    let (n, _, _, _) = header(words);
    &words[1..1 + n]
}

/// Number of words of the block at the start of `words`.
pub fn block_len(words: &[u32]) -> usize {
    let (n, e, _, _) = header(words);
    1 + n + 2 * e + e.div_ceil(4)
}

/// Which candidates of the block contain the lattice point (px, py): a bit
/// per candidate, or `None` when the point is too near an edge to say
/// without the raw coordinates.
#[inline]
pub fn test(words: &[u32], px: i64, py: i64) -> Option<u32> {
    let (n, e, c, mut inside) = header(words);
    let (cx, cy) = reference(c);
    let edges = &words[1 + n..1 + n + 2 * e];
    let masks = &words[1 + n + 2 * e..1 + n + 2 * e + e.div_ceil(4)];
    let (dpx, dpy) = (px - cx, py - cy);
    for (k, ab) in edges.chunks_exact(2).enumerate() {
        let (ax, ay) = unpack(ab[0]);
        let (bx, by) = unpack(ab[1]);
        let (ex, ey) = (bx - ax, by - ay);
        // orient(A, B, P): which side of the edge's line P is on.
        let s_p = ex * (py - ay) - ey * (px - ax);
        if px + GUARD >= ax.min(bx) && px - GUARD <= ax.max(bx) && py + GUARD >= ay.min(by) && py - GUARD <= ay.max(by)
        {
            // Within the edge's box grown by GUARD: far enough from its line?
            let len2 = (ex * ex + ey * ey) as i128;
            if (s_p as i128) * (s_p as i128) <= (GUARD * GUARD) as i128 * len2 {
                return None;
            }
        }
        // Do A and B lie on different sides of the line C–P (0 counts as left)?
        let t_a = dpx * (ay - cy) - dpy * (ax - cx);
        let t_b = dpx * (by - cy) - dpy * (bx - cx);
        if (t_a >= 0) != (t_b >= 0) {
            let s_c = ex * (cy - ay) - ey * (cx - ax);
            if s_c == 0 || s_p == 0 {
                // Impossible with C and P away from the edge; be safe.
                return None;
            }
            if (s_c > 0) != (s_p > 0) {
                inside ^= (masks[k / 4] >> (8 * (k % 4))) & 0xff;
            }
        }
    }
    Some(inside)
}

/// Where a cell is: the affine map from (lon, lat) to its lattice.
#[derive(Debug, Clone, Copy)]
pub struct CellFrame {
    /// Raster origin and cell size.
    pub x0: f64,
    pub y0: f64,
    pub dx: f64,
    pub dy: f64,
    pub col: usize,
    pub row: usize,
}

impl CellFrame {
    /// (lon, lat) in lattice units of this cell (not rounded).
    fn lattice(&self, x: f64, y: f64) -> (f64, f64) {
        (((x - self.x0) / self.dx - self.col as f64 - 0.5) * Q, ((y - self.y0) / self.dy - self.row as f64 - 0.5) * Q)
    }

    /// A lattice point back in (lon, lat).
    fn world(&self, lx: i64, ly: i64) -> (f64, f64) {
        (
            self.x0 + (self.col as f64 + 0.5 + lx as f64 / Q) * self.dx,
            self.y0 + (self.row as f64 + 0.5 + ly as f64 / Q) * self.dy,
        )
    }
}

/// The lattice point of (lon, lat) in the cell whose fractional raster
/// position is (fx, fy) (as the lookup computes it), truncated.
#[inline(always)]
pub fn lattice_point(fx: f64, fy: f64, col: usize, row: usize) -> (i64, i64) {
    ((((fx - col as f64) - 0.5) * Q) as i64, (((fy - row as f64) - 0.5) * Q) as i64)
}

/// Clips the segment a–b (lattice units) to the clip box (Liang–Barsky).
fn clip(a: (f64, f64), b: (f64, f64)) -> Option<((f64, f64), (f64, f64))> {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    for (p, q) in [(-dx, a.0 + CLIP), (dx, CLIP - a.0), (-dy, a.1 + CLIP), (dy, CLIP - a.1)] {
        if p == 0.0 {
            if q < 0.0 {
                return None;
            }
        } else {
            let r = q / p;
            if p < 0.0 {
                t0 = t0.max(r);
            } else {
                t1 = t1.min(r);
            }
        }
    }
    if t0 > t1 {
        return None;
    }
    Some(((a.0 + t0 * dx, a.1 + t0 * dy), (a.0 + t1 * dx, a.1 + t1 * dy)))
}

/// Distance from (px, py) to the segment a–b, in lattice units.
fn seg_distance(px: f64, py: f64, a: (i64, i64), b: (i64, i64)) -> f64 {
    let (ax, ay, bx, by) = (a.0 as f64, a.1 as f64, b.0 as f64, b.1 as f64);
    let (ex, ey) = (bx - ax, by - ay);
    let len2 = ex * ex + ey * ey;
    let t = if len2 > 0.0 { (((px - ax) * ex + (py - ay) * ey) / len2).clamp(0.0, 1.0) } else { 0.0 };
    let (qx, qy) = (ax + t * ex - px, ay + t * ey - py);
    (qx * qx + qy * qy).sqrt()
}

/// Builds the block of a cell from its candidates (in code order) and the
/// edges `(grid, a, b)` that may meet it (any order; edges of grids that
/// are not candidates are ignored). `None` when the cell is not worth a
/// block (too many candidates or edges, or no reference point far enough
/// from the edges): the lookup then tests the raw coordinates.
pub fn build_block(
    frame: &CellFrame,
    grids: &Flat,
    cands: &[u32],
    edges: impl Iterator<Item = (u32, [f64; 2], [f64; 2])>,
) -> Option<Vec<u32>> {
    if cands.is_empty() || cands.len() > MAX_CANDIDATES {
        return None;
    }
    // (ax, ay, bx, by) with A before B, and the candidates' bits.
    let mut segs: Vec<((i64, i64, i64, i64), u32)> = Vec::new();
    for (g, a, b) in edges {
        let Some(k) = cands.iter().position(|&c| c == g) else { continue };
        // The same orientation for an edge whichever grid it comes from.
        let (a, b) = if (a[0], a[1]) <= (b[0], b[1]) { (a, b) } else { (b, a) };
        let (la, lb) = (frame.lattice(a[0], a[1]), frame.lattice(b[0], b[1]));
        // An end inside the box is a vertex that the next edge shares: keep
        // it exactly as computed (not as a + 1 * (b - a)), so that both
        // edges round it to the same lattice point and the rounded boundary
        // stays closed (and never lose an edge with an end inside).
        let within = |v: (f64, f64)| v.0.abs() <= CLIP && v.1.abs() <= CLIP;
        let (p, q) = match clip(la, lb) {
            Some((p, q)) => (if within(la) { la } else { p }, if within(lb) { lb } else { q }),
            None if within(la) => (la, la),
            None if within(lb) => (lb, lb),
            None => continue,
        };
        let (p, q) = ((p.0.round() as i64, p.1.round() as i64), (q.0.round() as i64, q.1.round() as i64));
        // Kept even when it rounds to a point: the guard must see it.
        segs.push(((p.0, p.1, q.0, q.1), 1 << k));
    }
    segs.sort_unstable();
    // One entry per distinct edge, with the grids it is an edge of an odd
    // number of times (an edge a grid has twice stays, with mask 0, for
    // the guard: a point on it is on that grid's boundary).
    let mut merged: Vec<((i64, i64, i64, i64), u32)> = Vec::with_capacity(segs.len());
    for (s, m) in segs {
        match merged.last_mut() {
            Some(last) if last.0 == s => last.1 ^= m,
            _ => merged.push((s, m)),
        }
    }
    if merged.len() > MAX_EDGES {
        return None;
    }
    // The reference point: the lattice position farthest from the edges
    // (the first far enough, from the centre outwards).
    let mut best: Option<(f64, u32)> = None;
    for &k in reference_order() {
        let (x, y) = reference(k);
        let d = merged
            .iter()
            .map(|((ax, ay, bx, by), _)| seg_distance(x as f64, y as f64, (*ax, *ay), (*bx, *by)))
            .fold(f64::INFINITY, f64::min);
        if best.is_none_or(|(bd, _)| d > bd) {
            best = Some((d, k));
        }
        if d >= C_COMFORT {
            break;
        }
    }
    let (d, c) = best?;
    if d < C_CLEARANCE {
        return None;
    }
    let (cx, cy) = reference(c);
    let (wx, wy) = frame.world(cx, cy);
    let mut inside = 0u32;
    for (k, &g) in cands.iter().enumerate() {
        if grids.contains(g as usize, wx, wy) {
            inside |= 1 << k;
        }
    }
    let e = merged.len();
    let mut words = Vec::with_capacity(1 + cands.len() + 2 * e + e.div_ceil(4));
    words.push(cands.len() as u32 | (e as u32) << 4 | c << 10 | inside << 16);
    words.extend_from_slice(cands);
    for ((ax, ay, bx, by), _) in &merged {
        words.push(pack(*ax, *ay));
        words.push(pack(*bx, *by));
    }
    for chunk in merged.chunks(4) {
        words.push(chunk.iter().enumerate().fold(0u32, |w, (i, s)| w | (s.1 << (8 * i))));
    }
    Some(words)
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo_types::{LineString, MultiPolygon, Polygon};
    use rand::{Rng, SeedableRng};

    /// Random star-shaped polygons around a cell (vertices inside it and
    /// far outside), random points of the cell and points at every scale
    /// of distance from the edges: whenever a block answers, each
    /// candidate's bit is the exact closed containment.
    #[test]
    fn blocks_agree_with_exact_containment_on_random_polygons() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let (col, row) = (10usize, 20usize);
        let frame = CellFrame { x0: 121.0, y0: 36.0, dx: 0.003, dy: 0.0025, col, row };
        let (cx0, cy0) = (frame.x0 + col as f64 * frame.dx, frame.y0 + row as f64 * frame.dy);
        let (mut decided, mut blocks) = (0, 0);
        for _ in 0..400 {
            let n_polys = rng.gen_range(1..=3usize);
            let polys: Vec<MultiPolygon<f64>> = (0..n_polys)
                .map(|_| {
                    let (ox, oy) =
                        (cx0 + rng.gen_range(-0.5..1.5) * frame.dx, cy0 + rng.gen_range(-0.5..1.5) * frame.dy);
                    let n = rng.gen_range(3..12);
                    let mut angles: Vec<f64> = (0..n).map(|_| rng.gen_range(0.0..std::f64::consts::TAU)).collect();
                    angles.sort_by(f64::total_cmp);
                    let mut ring: Vec<(f64, f64)> = angles
                        .iter()
                        .map(|&a| {
                            let r = rng.gen_range(0.05..3.0);
                            (ox + r * frame.dx * a.cos(), oy + r * frame.dy * a.sin())
                        })
                        .collect();
                    ring.push(ring[0]);
                    MultiPolygon(vec![Polygon::new(LineString::from(ring), vec![])])
                })
                .collect();
            let flat = Flat::new(polys.iter()).unwrap();
            let cands: Vec<u32> = (0..n_polys as u32).collect();
            let edges: Vec<(u32, [f64; 2], [f64; 2])> = (0..n_polys)
                .flat_map(|i| flat.edge_starts(i).map(move |k| (i, k)).collect::<Vec<_>>())
                .map(|(i, k)| (i as u32, flat.coords[k], flat.coords[k + 1]))
                .collect();
            let Some(block) = build_block(&frame, &flat, &cands, edges.iter().copied()) else { continue };
            blocks += 1;
            assert_eq!(block_len(&block), block.len());
            assert_eq!(candidates(&block), &cands[..]);
            for j in 0..400 {
                let (x, y) = if j % 2 == 0 {
                    (cx0 + rng.gen_range(0.0..1.0) * frame.dx, cy0 + rng.gen_range(0.0..1.0) * frame.dy)
                } else {
                    let (_, a, b) = edges[rng.gen_range(0..edges.len())];
                    let t: f64 = rng.gen_range(0.0..1.0);
                    let (ex, ey) = (b[0] - a[0], b[1] - a[1]);
                    let len = (ex * ex + ey * ey).sqrt();
                    let d = if j % 10 == 1 { 0.0 } else { 10f64.powf(rng.gen_range(-13.0..-4.0)) };
                    let d = if rng.gen_bool(0.5) { d } else { -d };
                    (a[0] + t * ex - ey / len * d, a[1] + t * ey + ex / len * d)
                };
                // As the lookup computes it.
                let (fx, fy) = ((x - frame.x0) / frame.dx, (y - frame.y0) / frame.dy);
                if !(fx >= col as f64 && fx < (col + 1) as f64 && fy >= row as f64 && fy < (row + 1) as f64) {
                    continue;
                }
                let (px, py) = lattice_point(fx, fy, col, row);
                if let Some(inside) = test(&block, px, py) {
                    decided += 1;
                    for k in 0..n_polys {
                        assert_eq!(inside >> k & 1 == 1, flat.contains(k, x, y), "polygon {k} at ({x}, {y})");
                    }
                }
            }
        }
        assert!(blocks > 300 && decided > 50_000, "{blocks} blocks, {decided} answers");
    }
}
