//! 2×2 max-pool, stride 2, floor mode. Backward routes the gradient to the window's first maximum in
//! row-major order; a later element takes over only if strictly greater or NaN (PyTorch's CPU kernel rule).

use super::real::Real;

/// Index (within the input plane) of the window's winner for output (i, j).
fn argmax<T: Real>(plane: &[T], w: usize, i: usize, j: usize) -> usize {
    let mut best = 2 * i * w + 2 * j;
    for (u, v) in [(0, 1), (1, 0), (1, 1)] {
        let idx = (2 * i + u) * w + 2 * j + v;
        if plane[idx] > plane[best] || plane[idx].is_nan() {
            best = idx;
        }
    }
    best
}

/// x [planes, h, w] → y [planes, h/2, w/2].
pub fn forward<T: Real>(planes: usize, h: usize, w: usize, x: &[T], y: &mut [T]) {
    let (ho, wo) = (h / 2, w / 2);
    for p in 0..planes {
        let plane = &x[p * h * w..][..h * w];
        for i in 0..ho {
            for j in 0..wo {
                y[p * ho * wo + i * wo + j] = plane[argmax(plane, w, i, j)];
            }
        }
    }
}

/// dx = 0 except dx[winner] = dy for each window.
pub fn backward<T: Real>(planes: usize, h: usize, w: usize, x: &[T], dy: &[T], dx: &mut [T]) {
    let (ho, wo) = (h / 2, w / 2);
    dx.fill(T::ZERO);
    for p in 0..planes {
        let plane = &x[p * h * w..][..h * w];
        for i in 0..ho {
            for j in 0..wo {
                dx[p * h * w + argmax(plane, w, i, j)] = dy[p * ho * wo + i * wo + j];
            }
        }
    }
}
