//! The lookup raster: a uniform lattice of cells over the grids' extent,
//! each cell answering as much of a lookup as it can without geometry.
//!
//! Each cell is one `u64` with a 3-bit tag:
//! - `GRID(i)`: the whole cell lies inside grid `i` and touches no boundary:
//!   the answer needs no geometry at all (most points of a city);
//! - `MIXED(list)`: grid boundaries cross the cell: `list` holds the grids
//!   that may contain its points, in code order; the first that contains the
//!   point (exact test on its raw coordinates) is the answer; lists of one
//!   or two grids (most of them) are kept in the cell itself;
//! - no grid reaches into the cell: `COUNTY(c)`, `COUNTY_MIXED(list)` or
//!   `OUTSIDE(list)` say which county contains the whole cell, which
//!   counties' boundaries cross it, or that it is outside every county and
//!   which few counties can be nearest to any of its points (usually one);
//!   the `NEAR` flag says a grid may be within the tolerance, so the exact
//!   nearest-grid search runs first.
//!
//! - `EDGES(block)`: a cell crossed by grid boundaries (what `MIXED` would
//!   say) with the pieces of the boundaries inside it in one small block
//!   (see `edgecell.rs`): the lookup decides from the block alone, and
//!   tests raw coordinates only for points within ~2 cm of an edge.
//! - `LINE(edge, grids)`: an edge cell whose block would hold one straight
//!   edge between two grids (or a grid and none), packed into the word: the
//!   lookup reads nothing else, and tests raw coordinates only for points
//!   within ~7 cm of the edge.
//!
//! Building is conservative: a cell is marked as crossed by a segment if it
//! may be (with a small slack), so a cell tagged `GRID` or far from grids is
//! certain, and anything uncertain falls to the exact test.

use crate::edgecell::{self, CellFrame};
use crate::flat::{Flat, METRES_PER_DEGREE};

const SHIFT: u32 = 60;
const T_GRID: u64 = 0;
const T_MIXED: u64 = 1;
const T_FEW: u64 = 2;
const T_COUNTY: u64 = 3;
const T_COUNTY_MIXED: u64 = 4;
const T_OUTSIDE: u64 = 5;
const T_OUTSIDE1: u64 = 6;
const T_EDGES: u64 = 7;
/// Added to a county tag: a grid may be within the tolerance.
const T_NEAR: u64 = 8;
/// An edge cell whose block is one straight edge, in the word itself
/// (`edgecell::line_word`); tested before the `T_NEAR` bit is masked.
const T_LINE: u64 = 15;
/// No value yet (cells) or no item (interior).
const NONE: u32 = u32::MAX;
const EMPTY: u64 = u64::MAX;
/// Items in a `T_FEW` cell: 30 bits each, `FEW_NONE` for none.
const FEW_BITS: u32 = 30;
const FEW_NONE: u64 = (1 << FEW_BITS) - 1;
/// Cells per block side for the nearest-county candidates.
const BLOCK: usize = 16;
/// The raster never exceeds this many cells (128 MiB).
const MAX_CELLS: usize = 32 << 20;

/// Which cells crossed by grid boundaries carry their edges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EdgeCells {
    /// None: the candidate grids' raw coordinates decide (the index before
    /// edge cells, kept for comparison).
    None,
    /// Blocks only, no line cells (the index before line cells, kept for
    /// comparison).
    Blocks,
    /// Blocks, and line cells where one straight edge crosses the cell.
    #[default]
    Lines,
}

/// What a cell says about the points in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell<'a> {
    Grid(u32),
    Mixed(&'a [u32]),
    /// One or two candidate grids (the second `NONE` when one).
    Few(u32, u32),
    /// One straight edge across the cell (`edgecell::line_word`), and the
    /// point in the cell's lattice.
    Line {
        word: u64,
        px: i64,
        py: i64,
    },
    /// Candidate grids with their edges in the cell (`edgecell.rs`), and
    /// the point in the cell's lattice.
    Edges {
        block: &'a [u32],
        px: i64,
        py: i64,
    },
    /// No grid reaches into the cell; `near`: one may be within tolerance.
    Far {
        county: County<'a>,
        near: bool,
    },
    /// Beyond the raster: no grid within tolerance, no county information.
    OffRaster,
}

/// What a cell without grids says about counties.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum County<'a> {
    /// The whole cell is inside this county.
    In(u32),
    /// These counties' boundaries cross the cell.
    Crossed(&'a [u32]),
    /// Outside every county; this one is the nearest to all its points.
    Nearest(u32),
    /// Outside every county; one of these is the nearest.
    NearestOf(&'a [u32]),
}

#[derive(Debug, Clone, Default)]
pub struct Raster {
    frame: Frame,
    cells: Vec<u64>,
    /// Candidate lists: `[len, item…]`.
    lists: Vec<u32>,
    /// Edge cells' blocks, one after another (`edgecell.rs`).
    blocks: Vec<u32>,
}

/// Sizes the build reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RasterStats {
    pub cells: usize,
    pub grid_cells: usize,
    pub mixed_cells: usize,
    pub near_cells: usize,
    pub far_cells: usize,
    pub list_entries: usize,
    /// Cells crossed by edges that carry their edges (part of `mixed_cells`).
    pub edge_cells: usize,
    /// Bytes of those cells' blocks.
    pub edge_bytes: usize,
    /// Cells crossed by one straight edge, which carry it in the cell
    /// itself (part of `mixed_cells`, not of `edge_cells`).
    pub line_cells: usize,
}

/// Where the cells lie: origin, cell size and count.
#[derive(Debug, Clone, Default)]
struct Frame {
    x0: f64,
    y0: f64,
    dx: f64,
    dy: f64,
    nx: usize,
    ny: usize,
}

impl Frame {
    #[inline]
    fn col(&self, x: f64) -> usize {
        (((x - self.x0) / self.dx).floor().max(0.0) as usize).min(self.nx - 1)
    }
    #[inline]
    fn row(&self, y: f64) -> usize {
        (((y - self.y0) / self.dy).floor().max(0.0) as usize).min(self.ny - 1)
    }

    /// Calls `f` with every cell the closed segment a–b may touch.
    fn segment_cells(&self, a: [f64; 2], b: [f64; 2], f: impl FnMut(usize)) {
        self.segment_cells_within(a, b, 1e-6, f)
    }

    /// Calls `f` with every cell the closed segment a–b may come within
    /// `slack` cell sides of.
    fn segment_cells_within(&self, a: [f64; 2], b: [f64; 2], slack: f64, mut f: impl FnMut(usize)) {
        let (ex, ey) = (self.dx * slack, self.dy * slack);
        let (ylo, yhi) = (a[1].min(b[1]), a[1].max(b[1]));
        for r in self.row(ylo - ey)..=self.row(yhi + ey) {
            let band_lo = (self.y0 + r as f64 * self.dy - ey).clamp(ylo, yhi);
            let band_hi = (self.y0 + (r + 1) as f64 * self.dy + ey).clamp(ylo, yhi);
            let (xl, xh) = if b[1] == a[1] {
                (a[0].min(b[0]), a[0].max(b[0]))
            } else {
                let x_at = |y: f64| a[0] + ((y - a[1]) / (b[1] - a[1])).clamp(0.0, 1.0) * (b[0] - a[0]);
                let (p, q) = (x_at(band_lo), x_at(band_hi));
                (p.min(q), p.max(q))
            };
            let base = r * self.nx;
            for c in self.col(xl - ex)..=self.col(xh + ex) {
                f(base + c);
            }
        }
    }

    /// Turns the cells crossed by grid boundaries (`FEW`, `MIXED`) into
    /// edge cells where a block can be built; returns the blocks.
    fn edge_blocks(&self, grids: &Flat, cells: &mut [u64], lists: &[u32], lines: bool) -> Vec<u32> {
        // (cell, grid, edge) for every edge that may meet a cell grown by the
        // block's margin.
        let mut pairs: Vec<(u32, u32, u32)> = Vec::new();
        for i in 0..grids.len() {
            for k in grids.edge_starts(i) {
                let (a, b) = (grids.coords[k], grids.coords[k + 1]);
                self.segment_cells_within(a, b, edgecell::MARGIN + 1e-3, |cell| {
                    let tag = cells[cell] >> SHIFT;
                    if tag == T_FEW || tag == T_MIXED {
                        pairs.push((cell as u32, i as u32, k as u32));
                    }
                });
            }
        }
        pairs.sort_unstable();
        pairs.dedup();
        let mut blocks: Vec<u32> = Vec::new();
        let mut cands: Vec<u32> = Vec::new();
        for group in pairs.chunk_by(|p, q| p.0 == q.0) {
            let cell = group[0].0 as usize;
            let v = cells[cell];
            cands.clear();
            match v >> SHIFT {
                T_FEW => {
                    cands.push((v & FEW_NONE) as u32);
                    let b = (v >> FEW_BITS) & FEW_NONE;
                    if b != FEW_NONE {
                        cands.push(b as u32);
                    }
                }
                _ => {
                    let o = v as u32 as usize;
                    cands.extend_from_slice(&lists[o + 1..o + 1 + lists[o] as usize]);
                }
            }
            let frame = CellFrame {
                x0: self.x0,
                y0: self.y0,
                dx: self.dx,
                dy: self.dy,
                col: cell % self.nx,
                row: cell / self.nx,
            };
            let edges = group.iter().map(|&(_, g, k)| (g, grids.coords[k as usize], grids.coords[k as usize + 1]));
            if let Some(words) = edgecell::build_block(&frame, grids, &cands, edges) {
                debug_assert_eq!(edgecell::block_len(&words), words.len());
                if let Some(line) = edgecell::line_word(&words).filter(|_| lines) {
                    cells[cell] = (T_LINE << SHIFT) | line;
                    continue;
                }
                if blocks.len() + words.len() > u32::MAX as usize {
                    break;
                }
                cells[cell] = (T_EDGES << SHIFT) | blocks.len() as u64;
                blocks.extend_from_slice(&words);
            }
        }
        blocks.shrink_to_fit();
        blocks
    }

    /// Marks the cells of each polygon: `(cell, item)` pairs for cells its
    /// boundary may cross or that lie inside it next to another boundary,
    /// and `interior[cell]` (smallest item) for cells wholly inside it.
    fn rasterize(&self, polys: &Flat) -> (Vec<u64>, Vec<u32>) {
        let n = self.nx * self.ny;
        let mut pairs: Vec<u64> = Vec::new();
        let mut boundary = vec![false; n];
        for i in 0..polys.len() {
            for (a, b) in polys.edges(i) {
                self.segment_cells(a, b, |cell| {
                    boundary[cell] = true;
                    pairs.push(((cell as u64) << 32) | i as u64);
                });
            }
        }
        let mut interior = vec![NONE; n];
        let mut xs: Vec<f64> = Vec::new();
        for i in 0..polys.len() {
            let bb = polys.bboxes[i];
            for r in self.row(bb[1])..=self.row(bb[3]) {
                let yc = self.y0 + (r as f64 + 0.5) * self.dy;
                xs.clear();
                for (a, b) in polys.edges(i) {
                    if (a[1] > yc) != (b[1] > yc) {
                        xs.push(a[0] + (yc - a[1]) / (b[1] - a[1]) * (b[0] - a[0]));
                    }
                }
                xs.sort_unstable_by(f64::total_cmp);
                for span in xs.chunks_exact(2) {
                    // Cells whose centre lies in [span[0], span[1]].
                    let c0 = ((span[0] - self.x0) / self.dx - 0.5).ceil().max(0.0) as usize;
                    let c1 = ((span[1] - self.x0) / self.dx - 0.5).floor();
                    if c1 < 0.0 {
                        continue;
                    }
                    let c1 = (c1 as usize).min(self.nx - 1);
                    for c in c0..=c1 {
                        let cell = r * self.nx + c;
                        if boundary[cell] {
                            pairs.push(((cell as u64) << 32) | i as u64);
                        } else if interior[cell] == NONE || interior[cell] > i as u32 {
                            interior[cell] = i as u32;
                        }
                    }
                }
            }
        }
        pairs.sort_unstable();
        pairs.dedup();
        (pairs, interior)
    }
}

/// Appends `[len, items…]` to `lists` unless it equals the list at `last`;
/// returns its offset.
fn push_list(lists: &mut Vec<u32>, last: &mut Option<u32>, items: &[u32]) -> u32 {
    if let Some(off) = *last {
        let o = off as usize;
        if lists[o] as usize == items.len() && &lists[o + 1..o + 1 + items.len()] == items {
            return off;
        }
    }
    let off = lists.len() as u32;
    lists.push(items.len() as u32);
    lists.extend_from_slice(items);
    *last = Some(off);
    off
}

/// Groups sorted `(cell << 32 | item)` pairs by cell.
fn by_cell(pairs: &[u64]) -> impl Iterator<Item = (usize, Vec<u32>)> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        let first = *pairs.get(i)?;
        let cell = (first >> 32) as usize;
        let mut items = Vec::with_capacity(4);
        while let Some(&p) = pairs.get(i) {
            if (p >> 32) as usize != cell {
                break;
            }
            items.push(p as u32);
            i += 1;
        }
        Some((cell, items))
    })
}

/// Sets each cell to 1 if any cell within `rx` columns and `ry` rows is 1.
fn dilate(bits: &mut [u8], nx: usize, ny: usize, rx: usize, ry: usize) {
    let mut sums = vec![0u32; nx.max(ny) + 1];
    let mut tmp = vec![0u8; nx.max(ny)];
    for r in 0..ny {
        let row = &mut bits[r * nx..(r + 1) * nx];
        for c in 0..nx {
            sums[c + 1] = sums[c] + row[c] as u32;
        }
        for (c, t) in tmp[..nx].iter_mut().enumerate() {
            let (lo, hi) = (c.saturating_sub(rx), (c + rx + 1).min(nx));
            *t = (sums[hi] > sums[lo]) as u8;
        }
        row.copy_from_slice(&tmp[..nx]);
    }
    for c in 0..nx {
        for r in 0..ny {
            sums[r + 1] = sums[r] + bits[r * nx + c] as u32;
        }
        for (r, t) in tmp[..ny].iter_mut().enumerate() {
            let (lo, hi) = (r.saturating_sub(ry), (r + ry + 1).min(ny));
            *t = (sums[hi] > sums[lo]) as u8;
        }
        for (r, &t) in tmp[..ny].iter().enumerate() {
            bits[r * nx + c] = t;
        }
    }
}

impl Raster {
    /// Builds the raster. `cells_per_grid` sets the resolution: about that
    /// many cells per grid bounding box.
    /// `edge_cells`: which cells crossed by grid boundaries carry the edges
    /// in them (more memory, faster lookups there).
    pub fn build(
        grids: &Flat,
        counties: &Flat,
        tolerance_m: f64,
        kx: f64,
        cells_per_grid: f64,
        edge_cells: EdgeCells,
    ) -> Raster {
        let all = grids.bboxes.iter().chain(counties.bboxes.iter());
        let mut b = [f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY];
        for bb in all {
            b = [b[0].min(bb[0]), b[1].min(bb[1]), b[2].max(bb[2]), b[3].max(bb[3])];
        }
        if b[0] > b[2] {
            return Raster::default();
        }
        let max_abs_lat = b[1].abs().max(b[3].abs()).min(85.0);
        let cos_max = max_abs_lat.to_radians().cos();
        // The tolerance window, in degrees, with a margin.
        let tol_lat = tolerance_m / (METRES_PER_DEGREE * 0.99);
        let tol_lon = tol_lat / cos_max;
        let cos_mid = ((b[1] + b[3]) / 2.0).to_radians().cos();
        // Square cells (in metres) sized from the grids, or the counties.
        let sized = if grids.is_empty() { counties } else { grids };
        let mean_area: f64 = sized.bboxes.iter().map(|bb| (bb[2] - bb[0]) * cos_mid * (bb[3] - bb[1])).sum::<f64>()
            / sized.len().max(1) as f64;
        let mut dy = (mean_area / cells_per_grid.max(1.0)).sqrt().max(1e-6);
        let (w, h) = (b[2] - b[0] + 2.0 * tol_lon, b[3] - b[1] + 2.0 * tol_lat);
        while (w * cos_mid / dy).ceil() * (h / dy).ceil() > MAX_CELLS as f64 {
            dy *= 1.25;
        }
        let dx = dy / cos_mid;
        let frame = Frame {
            x0: b[0] - tol_lon - dx,
            y0: b[1] - tol_lat - dy,
            dx,
            dy,
            nx: (w / dx).ceil() as usize + 2,
            ny: (h / dy).ceil() as usize + 2,
        };
        let (nx, ny) = (frame.nx, frame.ny);
        let n = nx * ny;

        let (grid_pairs, grid_interior) = frame.rasterize(grids);
        let mut cells = vec![EMPTY; n];
        let mut lists = Vec::new();
        let mut last = None;
        let mut occupied = vec![0u8; n];
        for (cell, items) in by_cell(&grid_pairs) {
            cells[cell] = match items[..] {
                [a] if (a as u64) < FEW_NONE => (T_FEW << SHIFT) | (FEW_NONE << FEW_BITS) | a as u64,
                [a, b] if (b as u64) < FEW_NONE => (T_FEW << SHIFT) | ((b as u64) << FEW_BITS) | a as u64,
                _ => (T_MIXED << SHIFT) | push_list(&mut lists, &mut last, &items) as u64,
            };
            occupied[cell] = 1;
        }
        drop(grid_pairs);
        for (cell, &g) in grid_interior.iter().enumerate() {
            if g != NONE && cells[cell] == EMPTY {
                cells[cell] = (T_GRID << SHIFT) | g as u64;
                occupied[cell] = 1;
            }
        }
        drop(grid_interior);
        let rx = (tol_lon / dx).ceil() as usize + 1;
        let ry = (tol_lat / dy).ceil() as usize + 1;
        dilate(&mut occupied, nx, ny, rx, ry);
        // Far from every grid: what the counties say.
        let (county_pairs, county_interior) = frame.rasterize(counties);
        last = None;
        for (cell, items) in by_cell(&county_pairs) {
            if cells[cell] == EMPTY {
                cells[cell] = (T_COUNTY_MIXED << SHIFT) | push_list(&mut lists, &mut last, &items) as u64;
            }
        }
        drop(county_pairs);
        for (cell, &c) in county_interior.iter().enumerate() {
            if cells[cell] == EMPTY && c != NONE {
                cells[cell] = (T_COUNTY << SHIFT) | c as u64;
            }
        }
        drop(county_interior);

        // Outside every county: the counties that can be nearest, per block
        // of cells, then per cell where the block leaves a choice.
        let (bnx, bny) = (nx.div_ceil(BLOCK), ny.div_ceil(BLOCK));
        let cell_half = ((dx * kx).powi(2) + dy.powi(2)).sqrt() / 2.0;
        let all: Vec<u32> = (0..counties.len() as u32).collect();
        last = None;
        for br in 0..bny {
            for bc in 0..bnx {
                let (r0, r1, c0, c1) = (br * BLOCK, ((br + 1) * BLOCK).min(ny), bc * BLOCK, ((bc + 1) * BLOCK).min(nx));
                let any_outside = (r0..r1).any(|r| cells[r * nx + c0..r * nx + c1].contains(&EMPTY));
                if !any_outside || counties.is_empty() {
                    continue;
                }
                let cx = frame.x0 + (c0 + c1) as f64 / 2.0 * dx;
                let cy = frame.y0 + (r0 + r1) as f64 / 2.0 * dy;
                let half = (((c1 - c0) as f64 * dx * kx).powi(2) + ((r1 - r0) as f64 * dy).powi(2)).sqrt() / 2.0;
                let block = nearest_candidates(counties, &all, cx, cy, kx, half);
                for r in r0..r1 {
                    for c in c0..c1 {
                        let cell = r * nx + c;
                        if cells[cell] != EMPTY {
                            continue;
                        }
                        let here = if block.len() == 1 {
                            block.clone()
                        } else {
                            let (x, y) = (frame.x0 + (c as f64 + 0.5) * dx, frame.y0 + (r as f64 + 0.5) * dy);
                            nearest_candidates(counties, &block, x, y, kx, cell_half)
                        };
                        cells[cell] = match here[..] {
                            [one] => (T_OUTSIDE1 << SHIFT) | one as u64,
                            _ => (T_OUTSIDE << SHIFT) | push_list(&mut lists, &mut last, &here) as u64,
                        };
                    }
                }
            }
        }
        // No counties at all: nothing to say.
        for (cell, near) in cells.iter_mut().zip(&occupied) {
            if *cell == EMPTY {
                *cell = (T_OUTSIDE << SHIFT) | push_list(&mut lists, &mut last, &[]) as u64;
            }
            if *near == 1 && (*cell >> SHIFT) >= T_COUNTY {
                *cell |= T_NEAR << SHIFT;
            }
        }
        drop(occupied);
        let blocks = match edge_cells {
            EdgeCells::None => Vec::new(),
            EdgeCells::Blocks => frame.edge_blocks(grids, &mut cells, &lists, false),
            EdgeCells::Lines => frame.edge_blocks(grids, &mut cells, &lists, true),
        };
        lists.shrink_to_fit();
        Raster { frame, cells, lists, blocks }
    }

    /// What the cell of (x, y) says.
    #[inline]
    pub fn cell(&self, x: f64, y: f64) -> Cell<'_> {
        let f = &self.frame;
        let (fx, fy) = ((x - f.x0) / f.dx, (y - f.y0) / f.dy);
        // Also false for NaN.
        if !(fx >= 0.0 && fy >= 0.0 && fx < f.nx as f64 && fy < f.ny as f64) {
            return Cell::OffRaster;
        }
        let (c, r) = (fx as usize, fy as usize);
        let v = self.cells[r * f.nx + c];
        let val = v as u32;
        let tag = v >> SHIFT;
        if tag == T_LINE {
            let (px, py) = edgecell::lattice_point(fx, fy, c, r);
            return Cell::Line { word: v, px, py };
        }
        let county = match tag & !T_NEAR {
            T_GRID => return Cell::Grid(val),
            T_FEW => {
                let b = (v >> FEW_BITS) & FEW_NONE;
                return Cell::Few(val & FEW_NONE as u32, if b == FEW_NONE { NONE } else { b as u32 });
            }
            T_MIXED => return Cell::Mixed(self.list(val)),
            T_EDGES => {
                let (px, py) = edgecell::lattice_point(fx, fy, c, r);
                return Cell::Edges { block: &self.blocks[val as usize..], px, py };
            }
            T_COUNTY => County::In(val),
            T_COUNTY_MIXED => County::Crossed(self.list(val)),
            T_OUTSIDE1 => County::Nearest(val),
            _ => County::NearestOf(self.list(val)),
        };
        Cell::Far { county, near: tag & T_NEAR != 0 }
    }

    /// Reads (x, y)'s cell word and, for an edge cell, its block, so that a
    /// lookup of the point soon after finds them in cache: a batch warms
    /// all its points first, so that their cache misses overlap. Returns a
    /// value that depends on the reads (to keep them).
    #[inline]
    pub fn warm(&self, x: f64, y: f64) -> u64 {
        let f = &self.frame;
        let (fx, fy) = ((x - f.x0) / f.dx, (y - f.y0) / f.dy);
        if !(fx >= 0.0 && fy >= 0.0 && fx < f.nx as f64 && fy < f.ny as f64) {
            return 0;
        }
        self.cells[fy as usize * f.nx + fx as usize]
    }

    /// The second step of [`Raster::warm`]: reads the block of an edge cell
    /// (its first and a later word, which may lie on the next cache line).
    #[inline]
    pub fn warm_block(&self, word: u64) -> u32 {
        if word >> SHIFT != T_EDGES {
            return 0;
        }
        let off = word as u32 as usize;
        let last = (off + 12).min(self.blocks.len().saturating_sub(1));
        self.blocks.get(off).copied().unwrap_or(0) ^ self.blocks.get(last).copied().unwrap_or(0)
    }

    #[inline]
    fn list(&self, off: u32) -> &[u32] {
        let o = off as usize;
        let len = self.lists[o] as usize;
        &self.lists[o + 1..o + 1 + len]
    }

    pub fn heap_bytes(&self) -> usize {
        self.cells.capacity() * 8 + self.lists.capacity() * 4 + self.blocks.capacity() * 4
    }

    pub fn stats(&self) -> RasterStats {
        let mut s = RasterStats {
            cells: self.cells.len(),
            list_entries: self.lists.len(),
            edge_bytes: self.blocks.len() * 4,
            ..Default::default()
        };
        for &v in &self.cells {
            match v >> SHIFT {
                T_GRID => s.grid_cells += 1,
                T_MIXED | T_FEW => s.mixed_cells += 1,
                T_EDGES => {
                    s.mixed_cells += 1;
                    s.edge_cells += 1;
                }
                T_LINE => {
                    s.mixed_cells += 1;
                    s.line_cells += 1;
                }
                t if t & T_NEAR != 0 => s.near_cells += 1,
                _ => s.far_cells += 1,
            }
        }
        s
    }
}

/// The counties among `among` that can be nearest to some point within
/// `half` (plane units) of (x, y): those whose distance from (x, y) is at
/// most the smallest distance plus `2 * half` (triangle inequality), in
/// order. With `half` 0: the nearest (ties: all of them).
pub fn nearest_candidates(counties: &Flat, among: &[u32], x: f64, y: f64, kx: f64, half: f64) -> Vec<u32> {
    // Lower bounds from the bounding boxes, to skip far counties.
    let mut order: Vec<(f64, u32)> = among
        .iter()
        .map(|&i| {
            let b = counties.bboxes[i as usize];
            let ddx = ((b[0] - x).max(x - b[2]).max(0.0)) * kx;
            let ddy = (b[1] - y).max(y - b[3]).max(0.0);
            ((ddx * ddx + ddy * ddy).sqrt(), i)
        })
        .collect();
    order.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut exact: Vec<(f64, u32)> = Vec::new();
    let mut best = f64::INFINITY;
    for (lb, i) in order {
        if lb > best + 2.0 * half {
            break;
        }
        let d = counties.plane_distance_sq(i as usize, x, y, kx).sqrt();
        best = best.min(d);
        exact.push((d, i));
    }
    let mut out: Vec<u32> = exact.into_iter().filter(|(d, _)| *d <= best + 2.0 * half).map(|(_, i)| i).collect();
    out.sort_unstable();
    out
}
