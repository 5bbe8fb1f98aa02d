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

/// Line cells: the commonest edge cell, one straight edge crossing the whole
/// block (no vertex within it) with one grid on one side and another grid,
/// or none, on the other, fits in the raster's cell word itself, so that a
/// lookup there reads one word instead of the cell and then its block.
///
/// The word's low 60 bits: the edge's two ends on the block's clip box
/// (each 2 bits of side and 13 bits of position, a step of 8 lattice units),
/// one side's grid (17 bits), the other's as a signed 12-bit difference
/// from it (`LINE_NO_GRID` for no grid there) and which side the first is.
/// The ends are moved by up to 4 units to fit the steps; the build keeps
/// a line cell only where the stored line lies within `LINE_SLACK` units
/// of the block's edge all over the cell, and the lookup answers only for
/// points farther than `GUARD + LINE_SLACK` (~7 cm on a 220 m cell) from
/// the stored line, which are then farther than `GUARD` from the block's
/// edge: the block's own guarantee (exact for the raw coordinates) holds.
/// Nearer points: the exact test on the one or two grids.
pub const LINE_SLACK: f64 = 12.0;
const LINE_GUARD: i64 = GUARD + LINE_SLACK as i64 + 1;
/// Grid numbers a line cell can hold.
const LINE_GRIDS: u32 = (1 << 17) - 1;
const LINE_NO_GRID: i64 = -2048;
const CLIP_I: i64 = CLIP as i64;
const END_STEP: i64 = 8;

/// A point on the clip box's boundary as 2 bits of side and 13 of position.
fn pack_end(x: i64, y: i64) -> Option<u64> {
    let at = |v: i64| v.abs() >= CLIP_I - 1;
    let (side, t) = if at(y) && y < 0 {
        (0, x)
    } else if at(x) && x > 0 {
        (1, y)
    } else if at(y) {
        (2, x)
    } else if at(x) {
        (3, y)
    } else {
        return None;
    };
    let pos = ((t + CLIP_I) as f64 / END_STEP as f64).round().clamp(0.0, (2 * CLIP_I / END_STEP) as f64) as u64;
    Some(side << 13 | pos)
}

#[inline(always)]
fn unpack_end(e: u64) -> (i64, i64) {
    let t = (e & 0x1fff) as i64 * END_STEP - CLIP_I;
    match (e >> 13) & 3 {
        0 => (t, -CLIP_I),
        1 => (CLIP_I, t),
        2 => (t, CLIP_I),
        _ => (-CLIP_I, t),
    }
}

/// orient(A, B, P) for the points in lattice units.
#[inline(always)]
fn orient(a: (i64, i64), b: (i64, i64), p: (i64, i64)) -> i64 {
    (b.0 - a.0) * (p.1 - a.1) - (b.1 - a.1) * (p.0 - a.0)
}

/// The line cell (low 60 bits of the cell word) a block can be turned into,
/// if it is one: one edge, crossing the clip box from side to side, of one
/// or two candidates, and no other candidate containing any of the cell.
pub fn line_word(words: &[u32]) -> Option<u64> {
    let (n, e, c, inside) = header(words);
    if e != 1 {
        return None;
    }
    let cands = &words[1..1 + n];
    let (a, b) = (unpack(words[1 + n]), unpack(words[2 + n]));
    let mask = words[3 + n] & 0xff;
    if !(1..=2).contains(&mask.count_ones()) || inside & !mask != 0 {
        return None;
    }
    // The grid on each side: the first candidate containing its points.
    let grid_of = |bits: u32| if bits == 0 { None } else { Some(cands[bits.trailing_zeros() as usize]) };
    let (ref_x, ref_y) = reference(c);
    let c_left = orient(a, b, (ref_x, ref_y)) > 0;
    let (left, right) =
        if c_left { (grid_of(inside), grid_of(inside ^ mask)) } else { (grid_of(inside ^ mask), grid_of(inside)) };
    let grids = pack_grids(left, right)?;
    let (ea, eb) = (pack_end(a.0, a.1)?, pack_end(b.0, b.1)?);
    let (qa, qb) = (unpack_end(ea), unpack_end(eb));
    // The stored line against the block's edge over the cell (their signed
    // distances differ by an affine function: the corners bound it).
    let len = |p: (i64, i64), q: (i64, i64)| (((q.0 - p.0) as f64).powi(2) + ((q.1 - p.1) as f64).powi(2)).sqrt();
    let (l, lq) = (len(a, b), len(qa, qb));
    if l < Q / 4.0 || lq < Q / 4.0 {
        return None;
    }
    let h = (Q as i64) / 2;
    for corner in [(-h, -h), (h, -h), (h, h), (-h, h)] {
        let d = orient(a, b, corner) as f64 / l - orient(qa, qb, corner) as f64 / lq;
        if d.abs() > LINE_SLACK {
            return None;
        }
    }
    Some(grids | eb << 15 | ea)
}

/// The grids of a line cell's left and right sides in its word's bits
/// 30–59: the first grid, the other as a difference, and which side the
/// first is. `None` if they do not fit.
fn pack_grids(left: Option<u32>, right: Option<u32>) -> Option<u64> {
    let (base, other, base_right) = match (left, right) {
        (Some(l), r) => (l, r, false),
        (None, Some(r)) => (r, None, true),
        (None, None) => return None,
    };
    if base >= LINE_GRIDS {
        return None;
    }
    let delta = match other {
        Some(o) => {
            let d = o as i64 - base as i64;
            if d == 0 || !(LINE_NO_GRID + 1..2048).contains(&d) {
                return None;
            }
            d
        }
        None => LINE_NO_GRID,
    };
    Some((base_right as u64) << 59 | (base as u64) << 42 | ((delta as u64) & 0xfff) << 30)
}

/// The grids of a line cell's two sides (left of the stored edge, right
/// of it), each `u32::MAX` for no grid.
#[inline(always)]
pub fn line_grids(word: u64) -> (u32, u32) {
    let base = ((word >> 42) as u32) & LINE_GRIDS;
    // Sign-extend the 12-bit difference.
    let delta = (((word >> 30) & 0xfff) as i64) << 52 >> 52;
    let other = if delta == LINE_NO_GRID { u32::MAX } else { (base as i64 + delta) as u32 };
    if (word >> 59) & 1 == 1 {
        (other, base)
    } else {
        (base, other)
    }
}

/// Which side of a line cell's edge the lattice point (px, py) lies on
/// (`true`: left), or `None` when it is too near to say without the raw
/// coordinates.
#[inline(always)]
pub fn line_side(word: u64, px: i64, py: i64) -> Option<bool> {
    let (a, b) = (unpack_end(word & 0x7fff), unpack_end((word >> 15) & 0x7fff));
    let s = orient(a, b, (px, py)) as i128;
    let (ex, ey) = ((b.0 - a.0) as i128, (b.1 - a.1) as i128);
    if s * s <= (LINE_GUARD * LINE_GUARD) as i128 * (ex * ex + ey * ey) {
        return None;
    }
    Some(s > 0)
}

/// What a line cell answers for the lattice point (px, py): the grid on
/// its side (`u32::MAX` for none), or `None` when it is too near the edge to
/// say without the raw coordinates.
#[inline(always)]
pub fn line_answer(word: u64, px: i64, py: i64) -> Option<u32> {
    let (left, right) = line_grids(word);
    line_side(word, px, py).map(|l| if l { left } else { right })
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

    /// The cell the tests build blocks for, and its lower-left corner.
    fn test_cell() -> (CellFrame, (f64, f64)) {
        let frame = CellFrame { x0: 121.0, y0: 36.0, dx: 0.003, dy: 0.0025, col: 10, row: 20 };
        let corner = (frame.x0 + frame.col as f64 * frame.dx, frame.y0 + frame.row as f64 * frame.dy);
        (frame, corner)
    }

    /// Every edge of every polygon of `flat`, as `build_block` takes them.
    fn all_edges(flat: &Flat) -> Vec<(u32, [f64; 2], [f64; 2])> {
        (0..flat.len())
            .flat_map(|i| flat.edge_starts(i).map(move |k| (i, k)).collect::<Vec<_>>())
            .map(|(i, k)| (i as u32, flat.coords[k], flat.coords[k + 1]))
            .collect()
    }

    /// (x, y)'s lattice point if it lies in the test cell, computed as the
    /// lookup computes it.
    fn in_cell(frame: &CellFrame, x: f64, y: f64) -> Option<(i64, i64)> {
        let (fx, fy) = ((x - frame.x0) / frame.dx, (y - frame.y0) / frame.dy);
        let (col, row) = (frame.col as f64, frame.row as f64);
        (fx >= col && fx < col + 1.0 && fy >= row && fy < row + 1.0)
            .then(|| lattice_point(fx, fy, frame.col, frame.row))
    }

    /// Random star-shaped polygons around a cell (vertices inside it and
    /// far outside), random points of the cell and points at every scale
    /// of distance from the edges: whenever a block answers, each
    /// candidate's bit is the exact closed containment.
    #[test]
    fn blocks_agree_with_exact_containment_on_random_polygons() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let (frame, (cx0, cy0)) = test_cell();
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
            let edges = all_edges(&flat);
            let Some(block) = build_block(&frame, &flat, &cands, edges.iter().copied()) else { continue };
            blocks += 1;
            let line = line_word(&block);
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
                let Some((px, py)) = in_cell(&frame, x, y) else { continue };
                if let Some(inside) = test(&block, px, py) {
                    decided += 1;
                    for k in 0..n_polys {
                        assert_eq!(inside >> k & 1 == 1, flat.contains(k, x, y), "polygon {k} at ({x}, {y})");
                    }
                }
                if let Some(word) = line {
                    if let Some(g) = line_answer(word, px, py) {
                        assert_eq!(g, first_containing(&flat, &cands, x, y), "line cell at ({x}, {y})");
                    }
                }
            }
        }
        assert!(blocks > 300 && decided > 50_000, "{blocks} blocks, {decided} answers");
    }

    /// The first candidate containing (x, y) by the exact test, `u32::MAX` for none.
    fn first_containing(flat: &Flat, cands: &[u32], x: f64, y: f64) -> u32 {
        cands.iter().copied().find(|&g| flat.contains(g as usize, x, y)).unwrap_or(u32::MAX)
    }

    /// One straight edge at a random angle and place across the cell, with
    /// a grid on both sides or on one: the block becomes a line cell (all
    /// but the few whose edge only cuts a corner), and wherever it answers,
    /// at every distance from the edge down to 0, the answer is the first
    /// grid that contains the point by the exact test.
    #[test]
    fn line_cells_agree_with_exact_containment() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(12);
        let (frame, (cx0, cy0)) = test_cell();
        let (mut lines, mut decided, mut unsure) = (0, 0, 0);
        for round in 0..400 {
            let (ox, oy) = (cx0 + rng.gen_range(0.0..1.0) * frame.dx, cy0 + rng.gen_range(0.0..1.0) * frame.dy);
            let angle: f64 = rng.gen_range(0.0..std::f64::consts::TAU);
            let (ux, uy) = (20.0 * frame.dx * angle.cos(), 20.0 * frame.dy * angle.sin());
            let (nx, ny) = (-20.0 * frame.dx * angle.sin(), 20.0 * frame.dy * angle.cos());
            let quad = |s: f64| {
                let ring = vec![
                    (ox - ux, oy - uy),
                    (ox + ux, oy + uy),
                    (ox + ux + s * nx, oy + uy + s * ny),
                    (ox - ux + s * nx, oy - uy + s * ny),
                    (ox - ux, oy - uy),
                ];
                MultiPolygon(vec![Polygon::new(LineString::from(ring), vec![])])
            };
            // Both sides, or one (the other side beyond every grid).
            let polys = if round % 3 == 0 { vec![quad(1.0)] } else { vec![quad(1.0), quad(-1.0)] };
            let flat = Flat::new(polys.iter()).unwrap();
            let cands: Vec<u32> = (0..polys.len() as u32).collect();
            let edges = all_edges(&flat);
            let Some(block) = build_block(&frame, &flat, &cands, edges.iter().copied()) else { continue };
            let Some(word) = line_word(&block) else { continue };
            lines += 1;
            for j in 0..400 {
                let (x, y) = if j % 2 == 0 {
                    (cx0 + rng.gen_range(0.0..1.0) * frame.dx, cy0 + rng.gen_range(0.0..1.0) * frame.dy)
                } else {
                    // Off the edge by 0 or 1e-13 .. 1e-4 degrees (~10 m).
                    let t: f64 = rng.gen_range(-0.1..0.1);
                    let d = if j % 10 == 1 { 0.0 } else { 10f64.powf(rng.gen_range(-13.0..-4.0)) };
                    let d = if rng.gen_bool(0.5) { d } else { -d };
                    let len = (nx * nx + ny * ny).sqrt();
                    (ox + t * ux + nx / len * d, oy + t * uy + ny / len * d)
                };
                let Some((px, py)) = in_cell(&frame, x, y) else { continue };
                match line_answer(word, px, py) {
                    Some(g) => {
                        decided += 1;
                        assert_eq!(g, first_containing(&flat, &cands, x, y), "round {round}: ({x}, {y})");
                    }
                    None => unsure += 1,
                }
            }
        }
        assert!(lines > 350, "{lines} of 400 cells became line cells");
        assert!(decided > 60_000 && unsure > 500, "{decided} answered, {unsure} left to the exact test");
    }

    #[test]
    fn line_cells_hold_any_grid_number_and_its_neighbour_within_2047() {
        for (left, right) in [
            (Some(0), Some(1)),
            (Some(1), Some(0)),
            (Some(131_070), Some(129_023)),
            (Some(5), None),
            (None, Some(131_070)),
            (Some(70_000), Some(72_047)),
        ] {
            let word = pack_grids(left, right).unwrap();
            assert_eq!(line_grids(word), (left.unwrap_or(u32::MAX), right.unwrap_or(u32::MAX)));
        }
        assert_eq!(pack_grids(Some(0), Some(2048)), None, "too far apart");
        assert_eq!(pack_grids(Some(131_071), Some(131_070)), None, "number too large");
        assert_eq!(pack_grids(None, None), None);
    }
}
