//! Fast paths of the f32 convolution for stride 1 without padding (the sample CNN's geometry), on the blocked
//! GEMM of [`super::gemm`] when the CPU has AVX2 and FMA. The plain formulation (im2col + GEMM, col2im) in
//! [`super::conv`] stays the definition and the path for every other geometry and for f64; the tests compare
//! the two (tests/cpu_fast.rs).
//!
//! - Forward: the GEMM's B panels are packed straight from the image (no im2col matrix), and bias and ReLU are
//!   applied in the tile epilogue. Same k-blocks and tiles as the plain path, so the same bits.
//! - Backward-input: the tiles of wᵀ·dy are added straight into dx (col2im in the epilogue, no dcols matrix),
//!   then the ReLU mask on the image's dx while it is in cache. The sums into each dx element come in tile
//!   order instead of im2col-row order: another float32 order, within rounding of the plain one.
//! - Backward-weight: B panels of colsᵀ packed straight from the image. Same k-blocks and tiles: same bits.

use super::conv::ConvDims;
use super::gemm::{self, MR, NR, Tile};

/// Whether the fast paths apply to `d`.
pub fn applies(d: &ConvDims) -> bool {
    d.stride == 1 && d.pad == 0 && gemm::fast_available()
}

/// Runs of output positions [j, j+cols) that stay within one output row: (offset in the run, i, jj, len).
fn segments(wo: usize, j: usize, cols: usize) -> ([(usize, usize, usize, usize); NR], usize) {
    let mut seg = [(0, 0, 0, 0); NR];
    let (mut p, mut count) = (j, 0);
    while p < j + cols {
        let (i, jj) = (p / wo, p % wo);
        let len = (wo - jj).min(j + cols - p);
        seg[count] = (p - j, i, jj, len);
        count += 1;
        p += len;
    }
    (seg, count)
}

/// Row kk of the im2col matrix as (c, u, v).
#[inline]
fn cuv(d: &ConvDims, kk: usize) -> (usize, usize, usize) {
    let k2 = d.ks * d.ks;
    (kk / k2, kk % k2 / d.ks, kk % d.ks)
}

/// For every im2col row kk = (c, u, v), the offset c·H·W + u·W + v of its first read in the image: computed
/// once per product, not per panel and tile (the divisions of [`cuv`] cost ~3% of a step there).
fn row_bases(d: &ConvDims) -> Vec<usize> {
    (0..d.c * d.ks * d.ks)
        .map(|kk| {
            let (c, u, v) = cuv(d, kk);
            c * d.h * d.w + u * d.w + v
        })
        .collect()
}

/// B panel of im2col rows [p0, p0+kc) × output positions [j, j+cols), read from the image x [C,H,W].
/// `bases` from [`row_bases`].
#[allow(clippy::too_many_arguments)]
fn pack_cols(d: &ConvDims, bases: &[usize], x: &[f32], p0: usize, kc: usize, j: usize, cols: usize, panel: &mut [f32]) {
    let (seg, count) = segments(d.wo(), j, cols);
    for (&base, dst) in bases[p0..p0 + kc].iter().zip(panel.chunks_exact_mut(NR)) {
        for &(o, i, jj, len) in &seg[..count] {
            let src = base + i * d.w + jj;
            gemm::copy_short(&mut dst[o..o + len], &x[src..src + len]);
        }
    }
}

/// B panel of colsᵀ: output positions [p0, p0+kc) (depth) × im2col rows [j, j+cols), read from the image:
/// per run of positions within one output row, `cols` contiguous runs of x transposed into the panel.
/// `row_base` from [`row_bases`].
#[allow(clippy::too_many_arguments)]
fn pack_cols_t(
    d: &ConvDims,
    row_base: &[usize],
    x: &[f32],
    p0: usize,
    kc: usize,
    j: usize,
    cols: usize,
    panel: &mut [f32],
) {
    let wo = d.wo();
    let mut bases = [0; NR];
    bases[..cols].copy_from_slice(&row_base[j..j + cols]);
    let mut p = p0;
    while p < p0 + kc {
        let (i, jj) = (p / wo, p % wo);
        let len = (wo - jj).min(p0 + kc - p);
        let starts = bases.map(|b| b + i * d.w + jj);
        gemm::transpose_runs(x, &starts, cols, len, panel, p - p0);
        p += len;
    }
}

/// y [K, Ho·Wo] of one image = b + w·cols(x), then max(·, 0) if `relu` (NaN kept), as [`super::conv`]'s
/// forward followed by the ReLU.
pub fn forward_image(d: &ConvDims, x: &[f32], w: &[f32], b: &[f32], y: &mut [f32], relu: bool) {
    let (rows, n) = (d.c * d.ks * d.ks, d.ho() * d.wo());
    let bases = row_bases(d);
    gemm::blocked(
        d.k,
        rows,
        n,
        |i, r, p0, kc, panel| gemm::pack_a_strided(w, (rows, 1), i, r, p0, kc, panel),
        |p0, kc, j, cols, panel| pack_cols(d, &bases, x, p0, kc, j, cols, panel),
        |t: &Tile| {
            for (r, tr) in t.t.iter().enumerate().take(t.rows) {
                let out = &mut y[(t.i + r) * n + t.j..][..t.cols];
                let bias = b[t.i + r];
                for (o, &v) in out.iter_mut().zip(tr) {
                    let mut s = if t.first { bias + v } else { *o + v };
                    if t.last && relu && !(s > 0.0 || s.is_nan()) {
                        s = 0.0;
                    }
                    *o = s;
                }
            }
        },
    );
}

/// dx [C,H,W] of one image = col2im(wᵀ·dy), then dx = 0 where `mask` (shaped like dx) is not > 0.
pub fn backward_input_image(d: &ConvDims, dy: &[f32], w: &[f32], dx: &mut [f32], mask: Option<&[f32]>) {
    let (rows, n, wo) = (d.c * d.ks * d.ks, d.ho() * d.wo(), d.wo());
    let bases = row_bases(d);
    dx.fill(0.0);
    gemm::blocked(
        rows,
        d.k,
        n,
        |i, r, p0, kc, panel| gemm::pack_a_strided(w, (1, rows), i, r, p0, kc, panel),
        |p0, kc, j, cols, panel| gemm::pack_b_strided(dy, (n, 1), p0, kc, j, cols, panel),
        |t: &Tile| {
            let (seg, count) = segments(wo, t.j, t.cols);
            let mut r = 0;
            while r < t.rows {
                // Rows [r, e) of the tile: one (c, u), v = v₀, v₀+1, …: they add into one dx row, shifted by one.
                let mut e = r + 1;
                while e < t.rows && !(t.i + e).is_multiple_of(d.ks) {
                    e += 1;
                }
                let base = bases[t.i + r];
                for &(o, i, jj, len) in &seg[..count] {
                    let src: [&[f32]; MR] = std::array::from_fn(|q| &t.t[(r + q).min(e - 1)][o..o + len]);
                    add_shifted(&mut dx[base + i * d.w + jj..][..len + e - r - 1], &src[..e - r]);
                }
                r = e;
            }
        },
    );
    if let Some(mask) = mask {
        super::dense::mask_in_place(mask, dx);
    }
}

/// dw [K, C·k²] += dy·colsᵀ and db[k] += Σ dy[k, :] for one image (the plain path's per-image step).
pub fn backward_weight_image(d: &ConvDims, x: &[f32], dy: &[f32], dw: &mut [f32], db: &mut [f32]) {
    let (rows, n) = (d.c * d.ks * d.ks, d.ho() * d.wo());
    let bases = row_bases(d);
    gemm::blocked(
        d.k,
        n,
        rows,
        |i, r, p0, kc, panel| gemm::pack_a_strided(dy, (n, 1), i, r, p0, kc, panel),
        |p0, kc, j, cols, panel| pack_cols_t(d, &bases, x, p0, kc, j, cols, panel),
        |t: &Tile| {
            for (r, tr) in t.t.iter().enumerate().take(t.rows) {
                for (o, &v) in dw[(t.i + r) * rows + t.j..][..t.cols].iter_mut().zip(tr) {
                    *o += v;
                }
            }
        },
    );
    bias_sums(dy, n, db);
}

/// `dst[q] += src[v][q − v]` for each v in order, where 0 ≤ q − v < len (every src has length len, and
/// dst has len + src.len() − 1): the tile rows (c, u, v₀ + v) of the input gradient's col2im, added into one dx
/// row. Each dx element receives its values in row order, as when the rows are added one after another, so the
/// same bits; but each dx value is loaded and stored once per group, not once per row — adding row after row
/// reloads values just stored one element over, which the CPU cannot forward from the store (~8% of a step).
#[inline(always)]
fn add_shifted(dst: &mut [f32], src: &[&[f32]]) {
    let len = src[0].len();
    let edge = |q: usize, d: &mut f32| {
        let mut s = *d;
        for (v, r) in src.iter().enumerate() {
            if q >= v && q - v < len {
                s += r[q - v];
            }
        }
        *d = s;
    };
    if let [r0, r1, r2] = src
        && len >= 2
    {
        // The 3×3 kernel's rows: a branch-free middle the compiler vectorizes, ((d + r0) + r1) + r2 in order.
        let (head, rest) = dst.split_at_mut(2);
        let (mid, tail) = rest.split_at_mut(len - 2);
        for (q, d) in head.iter_mut().enumerate() {
            edge(q, d);
        }
        for (((d, &a), &b), &c) in mid.iter_mut().zip(&r0[2..]).zip(&r1[1..]).zip(&r2[..]) {
            *d = *d + a + b + c;
        }
        for (q, d) in tail.iter_mut().enumerate() {
            edge(len + q, d);
        }
        return;
    }
    for (q, d) in dst.iter_mut().enumerate() {
        edge(q, d);
    }
}

/// db[k] += Σ_j dy[k, j] (rows of length n), each row summed from its first element on, one add at a time: the
/// plain path's order, so the same bits. Eight rows at once, so eight independent chains of adds overlap (one
/// row at a time waits on each add's latency: ~3% of a step).
fn bias_sums(dy: &[f32], n: usize, db: &mut [f32]) {
    const LANES: usize = 8;
    if n == 0 {
        return;
    }
    let mut rows = dy.chunks_exact(n);
    let mut k = 0;
    while rows.len() >= LANES {
        let r: [&[f32]; LANES] = std::array::from_fn(|_| rows.next().expect("LANES rows left"));
        let mut s = [0.0f32; LANES];
        for j in 0..n {
            for (sl, row) in s.iter_mut().zip(&r) {
                *sl += row[j];
            }
        }
        for (o, v) in db[k..k + LANES].iter_mut().zip(s) {
            *o += v;
        }
        k += LANES;
    }
    for row in rows {
        let mut s = 0.0;
        for &g in row {
            s += g;
        }
        db[k] += s;
        k += 1;
    }
}

const _: () = assert!(MR <= NR);
