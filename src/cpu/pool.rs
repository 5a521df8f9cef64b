//! 2×2 max-pool, stride 2, floor mode. Backward routes the gradient to the window's first maximum in
//! row-major order; a later element takes over only if strictly greater or NaN (PyTorch's CPU kernel rule).
//! Planes are independent, so both directions split them over threads without changing any result.

use super::real::Real;

/// Which of a window's four values (a, b: top row; c, d: bottom row) wins: 0..4 in row-major order.
#[inline(always)]
fn winner<T: Real>(v: [T; 4]) -> usize {
    let mut best = 0;
    for k in 1..4 {
        if v[k] > v[best] || v[k].is_nan() {
            best = k;
        }
    }
    best
}

/// Visit every window of a plane as (output index, offsets of its four cells, their values).
#[inline(always)]
fn windows<T: Real>(plane: &[T], h: usize, w: usize, mut f: impl FnMut(usize, [usize; 4], [T; 4])) {
    let wo = w / 2;
    for i in 0..h / 2 {
        let (top, bottom) = (2 * i * w, (2 * i + 1) * w);
        let (r0, r1) = (&plane[top..top + 2 * wo], &plane[bottom..bottom + 2 * wo]);
        for (j, (p, q)) in r0.chunks_exact(2).zip(r1.chunks_exact(2)).enumerate() {
            let o = [top + 2 * j, top + 2 * j + 1, bottom + 2 * j, bottom + 2 * j + 1];
            f(i * wo + j, o, [p[0], p[1], q[0], q[1]]);
        }
    }
}

/// Run `f(x_plane, out_plane)` for every plane, over a few threads. `xs`/`os`: values per plane.
fn par_planes<T: Real>(x: &[T], xs: usize, out: &mut [T], os: usize, f: impl Fn(&[T], &mut [T]) + Sync) {
    let planes = x.len() / xs.max(1);
    let per = planes.div_ceil(4).max(1);
    std::thread::scope(|s| {
        for (xc, oc) in x.chunks(per * xs).zip(out.chunks_mut(per * os)) {
            let f = &f;
            s.spawn(move || {
                for (xp, op) in xc.chunks(xs).zip(oc.chunks_mut(os)) {
                    f(xp, op);
                }
            });
        }
    });
}

/// x [planes, h, w] → y [planes, h/2, w/2].
pub fn forward<T: Real>(planes: usize, h: usize, w: usize, x: &[T], y: &mut [T]) {
    let (ho, wo) = (h / 2, w / 2);
    par_planes(&x[..planes * h * w], h * w, &mut y[..planes * ho * wo], ho * wo, |plane, out| {
        windows(plane, h, w, |k, _, v| out[k] = v[winner(v)]);
    });
}

/// dx = 0 except dx[winner] = dy for each window. Works plane by plane over (x, dx) and reads dy alongside.
pub fn backward<T: Real>(planes: usize, h: usize, w: usize, x: &[T], dy: &[T], dx: &mut [T]) {
    let (ho, wo) = (h / 2, w / 2);
    // Pair each input plane with its dy plane so one chunked pass can hand both to a thread.
    let per = planes.div_ceil(4).max(1);
    std::thread::scope(|s| {
        for ((xc, dyc), dxc) in x[..planes * h * w]
            .chunks(per * h * w)
            .zip(dy[..planes * ho * wo].chunks(per * ho * wo))
            .zip(dx[..planes * h * w].chunks_mut(per * h * w))
        {
            s.spawn(move || {
                dxc.fill(T::ZERO);
                for ((plane, g), d) in xc.chunks(h * w).zip(dyc.chunks(ho * wo)).zip(dxc.chunks_mut(h * w)) {
                    windows(plane, h, w, |k, o, v| d[o[winner(v)]] = g[k]);
                }
            });
        }
    });
}
