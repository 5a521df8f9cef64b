//! Linear layer (`torch.nn.Linear`: y = x·wᵀ + b) and ReLU, forward and backward.
//!
//! Each product's output rows are split over the worker pool ([`par_rows`]): a row of a product depends on
//! that row of the left operand alone, and the GEMM sums every element in an order fixed by the depth, so the
//! split changes no bit.

use rayon::prelude::*;

use super::real::Real;

/// Run `f(first row, rows of out)` over blocks of an [rows, width] output in parallel (blocks of at least
/// 8 rows, so small products stay on one thread).
fn par_rows<T: Real>(out: &mut [T], width: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    let rows = out.len().checked_div(width).unwrap_or(0);
    if width == 0 || rows < 16 {
        return f(0, out);
    }
    let per = rows.div_ceil(rayon::current_num_threads().max(1)).max(8);
    out.par_chunks_mut(per * width).enumerate().for_each(|(t, block)| f(t * per, block));
}

/// x [n, i], w [o, i], b [o] → y [n, o].
pub fn linear<T: Real>(n: usize, i: usize, o: usize, x: &[T], w: &[T], b: &[T], y: &mut [T]) {
    par_rows(&mut y[..n * o], o, |r0, y| {
        let rows = y.len().checked_div(o).unwrap_or(0);
        for row in y.chunks_mut(o) {
            row.copy_from_slice(b);
        }
        T::gemm(rows, i, o, &x[r0 * i..], (i, 1), w, (1, i), T::ONE, y, (o, 1));
    });
}

/// dx [n, i] = dy [n, o] · w [o, i].
pub fn linear_backward_input<T: Real>(n: usize, i: usize, o: usize, dy: &[T], w: &[T], dx: &mut [T]) {
    par_rows(&mut dx[..n * i], i, |r0, dx| {
        T::gemm(dx.len().checked_div(i).unwrap_or(0), o, i, &dy[r0 * o..], (o, 1), w, (i, 1), T::ZERO, dx, (i, 1));
    });
}

/// dw [o, i] = dyᵀ · x, db[o] = Σ_n dy[n, o].
pub fn linear_backward_weight<T: Real>(n: usize, i: usize, o: usize, x: &[T], dy: &[T], dw: &mut [T], db: &mut [T]) {
    par_rows(&mut dw[..o * i], i, |r0, dw| {
        T::gemm(dw.len().checked_div(i).unwrap_or(0), n, i, &dy[r0..], (1, o), x, (i, 1), T::ZERO, dw, (i, 1));
    });
    db.fill(T::ZERO);
    for row in dy.chunks(o) {
        for (d, &g) in db.iter_mut().zip(row) {
            *d += g;
        }
    }
}

/// y = max(x, 0). NaN stays NaN, as in PyTorch.
pub fn relu<T: Real>(x: &[T], y: &mut [T]) {
    for (o, &v) in y.iter_mut().zip(x) {
        *o = if v > T::ZERO || v.is_nan() { v } else { T::ZERO };
    }
}

/// y = max(y, 0) in place (NaN propagates, as in PyTorch).
pub fn relu_in_place<T: Real>(y: &mut [T]) {
    for v in y.iter_mut() {
        if !(*v > T::ZERO || v.is_nan()) {
            *v = T::ZERO;
        }
    }
}

/// dx = dx where mask > 0, else 0 (the ReLU backward applied in place).
pub fn mask_in_place<T: Real>(mask: &[T], dx: &mut [T]) {
    for (o, &m) in dx.iter_mut().zip(mask) {
        *o = if m > T::ZERO { *o } else { T::ZERO }; // NaN or ≤ 0: no gradient
    }
}

/// dx = dy where y > 0, else 0.
pub fn relu_backward<T: Real>(y: &[T], dy: &[T], dx: &mut [T]) {
    for ((o, &v), &g) in dx.iter_mut().zip(y).zip(dy) {
        *o = if v > T::ZERO { g } else { T::ZERO };
    }
}
