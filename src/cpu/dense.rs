//! Linear layer (`torch.nn.Linear`: y = x·wᵀ + b) and ReLU, forward and backward.

use super::real::Real;

/// x [n, i], w [o, i], b [o] → y [n, o].
pub fn linear<T: Real>(n: usize, i: usize, o: usize, x: &[T], w: &[T], b: &[T], y: &mut [T]) {
    for row in y.chunks_mut(o) {
        row.copy_from_slice(b);
    }
    T::gemm(n, i, o, x, (i, 1), w, (1, i), T::ONE, y, (o, 1));
}

/// dx [n, i] = dy [n, o] · w [o, i].
pub fn linear_backward_input<T: Real>(n: usize, i: usize, o: usize, dy: &[T], w: &[T], dx: &mut [T]) {
    T::gemm(n, o, i, dy, (o, 1), w, (i, 1), T::ZERO, dx, (i, 1));
}

/// dw [o, i] = dyᵀ · x, db[o] = Σ_n dy[n, o].
pub fn linear_backward_weight<T: Real>(n: usize, i: usize, o: usize, x: &[T], dy: &[T], dw: &mut [T], db: &mut [T]) {
    T::gemm(o, n, i, dy, (1, o), x, (i, 1), T::ZERO, dw, (i, 1));
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
