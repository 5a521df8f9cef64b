//! Max-pool with a kernel×kernel window and a stride, floor mode, no padding. Backward routes each window's
//! gradient to its first maximum in row-major order; a later element takes over only if strictly greater or
//! NaN (PyTorch's CPU kernel rule). Where windows overlap (stride < kernel) an input element can win several
//! windows: its gradients are summed in window (row-major) order, as PyTorch's CPU backward does.
//! Planes are independent, so both directions split them over threads without changing any result.

use super::real::Real;

/// One plane's pooling sizes: input h×w, window `kernel`, `stride` (callers check kernel ≤ h, w; stride ≥ 1).
#[derive(Clone, Copy, Debug)]
pub struct PoolDims {
    pub h: usize,
    pub w: usize,
    pub kernel: usize,
    pub stride: usize,
}

impl PoolDims {
    /// 2×2 windows, stride 2.
    pub fn two(h: usize, w: usize) -> Self {
        PoolDims { h, w, kernel: 2, stride: 2 }
    }
    pub fn ho(&self) -> usize {
        (self.h - self.kernel) / self.stride + 1
    }
    pub fn wo(&self) -> usize {
        (self.w - self.kernel) / self.stride + 1
    }
}

/// Offset in the plane of the winner of output (i, j)'s window.
fn winner<T: Real>(d: &PoolDims, plane: &[T], i: usize, j: usize) -> usize {
    let mut best = (i * d.stride) * d.w + j * d.stride;
    for u in 0..d.kernel {
        for v in 0..d.kernel {
            let o = (i * d.stride + u) * d.w + j * d.stride + v;
            if plane[o] > plane[best] || plane[o].is_nan() {
                best = o;
            }
        }
    }
    best
}

/// Run `f(x_plane, out_plane, in_plane)` for every plane, over a few threads. `xs`/`os`/`is_`: values per
/// plane of `x` (read), `out` (written) and `inp` (read alongside, e.g. dy).
fn par_planes<T: Real>(
    x: &[T],
    xs: usize,
    inp: &[T],
    is_: usize,
    out: &mut [T],
    os: usize,
    f: impl Fn(&[T], &[T], &mut [T]) + Sync,
) {
    let planes = x.len() / xs.max(1);
    let per = planes.div_ceil(4).max(1);
    std::thread::scope(|s| {
        for ((xc, ic), oc) in x.chunks(per * xs).zip(inp.chunks(per * is_.max(1))).zip(out.chunks_mut(per * os)) {
            let f = &f;
            s.spawn(move || {
                for ((xp, ip), op) in xc.chunks(xs).zip(ic.chunks(is_.max(1))).zip(oc.chunks_mut(os)) {
                    f(xp, ip, op);
                }
            });
        }
    });
}

/// x [planes, h, w] → y [planes, ho, wo].
pub fn forward<T: Real>(planes: usize, d: &PoolDims, x: &[T], y: &mut [T]) {
    let (hw, ohw) = (d.h * d.w, d.ho() * d.wo());
    let x = &x[..planes * hw];
    // No third operand: pass x itself, one "plane" per x plane, unused.
    par_planes(x, hw, x, hw, &mut y[..planes * ohw], ohw, |plane, _, out| {
        for i in 0..d.ho() {
            for j in 0..d.wo() {
                out[i * d.wo() + j] = plane[winner(d, plane, i, j)];
            }
        }
    });
}

/// dx = 0, then dx[winner] += dy for each window in row-major order.
pub fn backward<T: Real>(planes: usize, d: &PoolDims, x: &[T], dy: &[T], dx: &mut [T]) {
    let (hw, ohw) = (d.h * d.w, d.ho() * d.wo());
    par_planes(&x[..planes * hw], hw, &dy[..planes * ohw], ohw, &mut dx[..planes * hw], hw, |plane, g, out| {
        out.fill(T::ZERO);
        for i in 0..d.ho() {
            for j in 0..d.wo() {
                out[winner(d, plane, i, j)] += g[i * d.wo() + j];
            }
        }
    });
}
