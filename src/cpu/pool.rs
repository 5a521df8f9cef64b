//! Max-pool with a kernel×kernel window and a stride, floor mode, no padding. Backward routes each window's
//! gradient to its first maximum in row-major order; a later element takes over only if strictly greater or
//! NaN (PyTorch's CPU kernel rule). Where windows overlap (stride < kernel) an input element can win several
//! windows: its gradients are summed in window (row-major) order, as PyTorch's CPU backward does.
//! Planes are independent, so both directions split them over threads without changing any result. 2×2 windows
//! at stride 2 (the common case) take a fast path; the general loop stays beside it and the tests compare them.

use rayon::prelude::*;

use super::real::Real;
use crate::backend::PoolChain;

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

/// Planes per parallel task: enough work per task that the pool's bookkeeping stays small.
fn min_planes(plane_len: usize) -> usize {
    (4096 / plane_len.max(1)).max(1)
}

/// x [planes, h, w] → y [planes, ho, wo]. Planes run in parallel.
pub fn forward<T: Real>(planes: usize, d: &PoolDims, x: &[T], y: &mut [T]) {
    let (hw, ohw) = (d.h * d.w, d.ho() * d.wo());
    if hw == 0 || ohw == 0 {
        return;
    }
    y[..planes * ohw].par_chunks_mut(ohw).zip(x[..planes * hw].par_chunks(hw)).with_min_len(min_planes(hw)).for_each(
        |(out, plane)| {
            if d.kernel == 2 && d.stride == 2 { forward_plane_2x2(d, plane, out) } else { forward_plane(d, plane, out) }
        },
    );
}

/// dx = 0, then dx[winner] += dy for each window in row-major order. Planes run in parallel.
pub fn backward<T: Real>(planes: usize, d: &PoolDims, x: &[T], dy: &[T], dx: &mut [T]) {
    let (hw, ohw) = (d.h * d.w, d.ho() * d.wo());
    if hw == 0 || ohw == 0 {
        return;
    }
    dx[..planes * hw]
        .par_chunks_mut(hw)
        .zip(x[..planes * hw].par_chunks(hw))
        .zip(dy[..planes * ohw].par_chunks(ohw))
        .with_min_len(min_planes(hw))
        .for_each(|((out, plane), g)| {
            if d.kernel == 2 && d.stride == 2 {
                backward_plane_2x2(d, plane, g, out)
            } else {
                backward_plane(d, plane, g, out)
            }
        });
}

/// One plane of [`forward`], any window and stride: the plain formulation.
pub fn forward_plane<T: Real>(d: &PoolDims, plane: &[T], out: &mut [T]) {
    for i in 0..d.ho() {
        for j in 0..d.wo() {
            out[i * d.wo() + j] = plane[winner(d, plane, i, j)];
        }
    }
}

/// One plane of [`backward`], any window and stride: the plain formulation.
pub fn backward_plane<T: Real>(d: &PoolDims, plane: &[T], g: &[T], out: &mut [T]) {
    out.fill(T::ZERO);
    for i in 0..d.ho() {
        for j in 0..d.wo() {
            out[winner(d, plane, i, j)] += g[i * d.wo() + j];
        }
    }
}

/// Index (0..4, row-major) of the winner among a 2×2 window's values a b / c e, by the rule of [`winner`]:
/// a later value takes over only if strictly greater or NaN.
#[inline(always)]
fn winner4<T: Real>(v: [T; 4]) -> usize {
    let mut best = 0;
    for (t, &x) in v.iter().enumerate().skip(1) {
        if x > v[best] || x.is_nan() {
            best = t;
        }
    }
    best
}

/// [`forward_plane`] for 2×2 windows at stride 2 (windows never overlap): two input rows per output row.
pub fn forward_plane_2x2<T: Real>(d: &PoolDims, plane: &[T], out: &mut [T]) {
    let (wo, w) = (d.wo(), d.w);
    for (i, orow) in out.chunks_exact_mut(wo).enumerate() {
        let (r0, r1) = (&plane[2 * i * w..][..2 * wo], &plane[(2 * i + 1) * w..][..2 * wo]);
        for (j, o) in orow.iter_mut().enumerate() {
            let v = [r0[2 * j], r0[2 * j + 1], r1[2 * j], r1[2 * j + 1]];
            *o = v[winner4(v)];
        }
    }
}

/// [`backward_plane`] for 2×2 windows at stride 2: each input element belongs to at most one window, so every
/// dx entry is written once (dy or 0); rows and columns past the last window (odd sizes) stay 0.
pub fn backward_plane_2x2<T: Real>(d: &PoolDims, plane: &[T], g: &[T], out: &mut [T]) {
    let (wo, w) = (d.wo(), d.w);
    out.fill(T::ZERO);
    for (i, grow) in g.chunks_exact(wo).enumerate() {
        let (r0, r1) = (&plane[2 * i * w..][..2 * wo], &plane[(2 * i + 1) * w..][..2 * wo]);
        for (j, &gv) in grow.iter().enumerate() {
            let v = [r0[2 * j], r0[2 * j + 1], r1[2 * j], r1[2 * j + 1]];
            let t = winner4(v);
            out[(2 * i + t / 2) * w + 2 * j + t % 2] += gv; // onto 0, as the plain loop does (keeps −0 → +0)
        }
    }
}

/// Where the two pools of `pools` put the maximum of the pooled output (a, b) of one conv-output plane
/// (`h`×`w`): the inner pool's winner inside the outer pool's winner, each by [`winner`]'s rule. Returns its
/// offset in the plane.
fn chain_winner<T: Real>(plane: &[T], (h, w): (usize, usize), pools: PoolChain, a: usize, b: usize) -> usize {
    let inner = PoolDims { h, w, kernel: pools.inner, stride: pools.inner };
    let mut best = winner(&inner, plane, a * pools.outer, b * pools.outer);
    for u in 0..pools.outer {
        for v in 0..pools.outer {
            let o = winner(&inner, plane, a * pools.outer + u, b * pools.outer + v);
            if plane[o] > plane[best] || plane[o].is_nan() {
                best = o;
            }
        }
    }
    best
}

/// [`crate::backend::Backend::conv2d_relu_pool`]'s pooling, per plane: conv [planes, h, w] → y and argmax
/// [planes, hp, wp] (argmax = di·edge + dj inside the window). Planes run in parallel.
pub fn chain_forward<T: Real>(
    planes: usize,
    (h, w): (usize, usize),
    pools: PoolChain,
    conv: &[T],
    y: &mut [T],
    argmax: &mut [T],
) {
    let (e, hp, wp) = (pools.edge(), h / pools.edge(), w / pools.edge());
    let (hw, phw) = (h * w, hp * wp);
    if hw == 0 || phw == 0 {
        return;
    }
    y[..planes * phw]
        .par_chunks_mut(phw)
        .zip(argmax[..planes * phw].par_chunks_mut(phw))
        .zip(conv[..planes * hw].par_chunks(hw))
        .with_min_len(min_planes(hw))
        .for_each(|((out, arg), plane)| {
            if (pools.inner, pools.outer) == (2, 2) {
                return chain_forward_plane_2x2x2(plane, (h, w), out, arg);
            }
            for a in 0..hp {
                for b in 0..wp {
                    let o = chain_winner(plane, (h, w), pools, a, b);
                    out[a * wp + b] = plane[o];
                    let (di, dj) = (o / w - a * e, o % w - b * e);
                    arg[a * wp + b] = T::from_usize(di * e + dj);
                }
            }
        });
}

/// One plane of [`chain_forward`] for two 2×2 pools (the sample CNN's): the same comparisons in the same order
/// as [`chain_winner`], with the window sizes known to the compiler and the winner found as (row, column) in
/// its 4×4 window rather than as an offset divided back by the width (the generic loop spent ~8% of a training
/// step here).
fn chain_forward_plane_2x2x2<T: Real>(plane: &[T], (h, w): (usize, usize), out: &mut [T], arg: &mut [T]) {
    let (hp, wp) = (h / 4, w / 4);
    for a in 0..hp {
        let rows: [&[T]; 4] = std::array::from_fn(|r| &plane[(4 * a + r) * w..][..4 * wp]);
        for b in 0..wp {
            // The window's values, v[r][c] at plane row 4a + r, column 4b + c.
            let v: [[T; 4]; 4] = std::array::from_fn(|r| std::array::from_fn(|c| rows[r][4 * b + c]));
            // Inner 2×2 winner of quarter (u, t): (value, row·4 + column in the window), by winner's rule. The
            // value rides along so no comparison indexes the window by a variable.
            let inner = |u: usize, t: usize| {
                let mut best = (v[2 * u][2 * t], 4 * (2 * u) + 2 * t);
                for (r, c) in [(0, 1), (1, 0), (1, 1)] {
                    let (r, c) = (2 * u + r, 2 * t + c);
                    if v[r][c] > best.0 || v[r][c].is_nan() {
                        best = (v[r][c], 4 * r + c);
                    }
                }
                best
            };
            let mut best = inner(0, 0);
            for (u, t) in [(0, 1), (1, 0), (1, 1)] {
                let x = inner(u, t);
                if x.0 > best.0 || x.0.is_nan() {
                    best = x;
                }
            }
            out[a * wp + b] = best.0;
            arg[a * wp + b] = T::from_usize(best.1);
        }
    }
}

/// [`crate::backend::Backend::conv2d_relu_pool_backward`] per plane: dx [planes, h, w] = 0, then dy at each
/// window's argmax where y > 0 (added to the 0, as the pools' backward does). Planes run in parallel; the
/// caller checks that every argmax is a position in its window (< edge²).
pub fn chain_backward<T: Real>(
    planes: usize,
    (h, w): (usize, usize),
    pools: PoolChain,
    (y, argmax, dy): (&[T], &[T], &[T]),
    dx: &mut [T],
) {
    let (e, hp, wp) = (pools.edge(), h / pools.edge(), w / pools.edge());
    let (hw, phw) = (h * w, hp * wp);
    if hw == 0 {
        return;
    }
    dx[..planes * hw].par_chunks_mut(hw).enumerate().with_min_len(min_planes(hw)).for_each(|(pl, out)| {
        let at = pl * phw;
        let ins = (&y[at..at + phw], &argmax[at..at + phw], &dy[at..at + phw]);
        // The window edge as a constant where it is one of the fused op's (the divisions by it then cost
        // nothing); the same loop either way.
        match e {
            2 => chain_backward_plane::<T, 2>(w, wp, ins, out),
            4 => chain_backward_plane::<T, 4>(w, wp, ins, out),
            8 => chain_backward_plane::<T, 8>(w, wp, ins, out),
            _ => chain_backward_plane_any(e, w, wp, ins, out),
        }
    });
}

/// One plane of [`chain_backward`] with window edge `E`.
fn chain_backward_plane<T: Real, const E: usize>(w: usize, wp: usize, ins: (&[T], &[T], &[T]), out: &mut [T]) {
    chain_backward_plane_any(E, w, wp, ins, out)
}

/// One plane of [`chain_backward`]: `ins` = this plane's (y, argmax, dy), `out` its dx.
#[inline(always)]
fn chain_backward_plane_any<T: Real>(
    e: usize,
    w: usize,
    wp: usize,
    (y, argmax, dy): (&[T], &[T], &[T]),
    out: &mut [T],
) {
    out.fill(T::ZERO);
    if wp == 0 {
        return;
    }
    for (a, ((ya, aa), ga)) in y.chunks_exact(wp).zip(argmax.chunks_exact(wp)).zip(dy.chunks_exact(wp)).enumerate() {
        for (b, ((&yk, &ak), &g)) in ya.iter().zip(aa).zip(ga).enumerate() {
            if yk > T::ZERO {
                let at = ak.to_f64() as usize;
                out[(a * e + at / e) * w + b * e + at % e] += g;
            }
        }
    }
}
