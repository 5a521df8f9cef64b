//! The f32 matrix product of the CPU backend: `c = a·b + beta·c` over strided row-major operands.
//!
//! [`naive`] is the definition (one dot product per output element, k ascending). [`sgemm`] computes the same
//! sums blocked the BLIS way for x86-64 with AVX2 and FMA (packed 6×k panels of `a`, k×16 panels of `b`, a
//! 6×16 register tile of accumulators, k in blocks of [`KC`]); elsewhere it calls `matrixmultiply`. Each output
//! element is still one dot product in k order — fused multiply-adds within a k-block, the blocks' sums added
//! to `c` in order — so the result depends on the shapes only, never on threads or on where a tile falls; its
//! distance from [`naive`] is float32 rounding, bounded by the usual k·ε·Σ|a·b| (tests/cpu_fast.rs).

use std::cell::RefCell;

/// Rows of the register tile.
pub const MR: usize = 6;
/// Columns of the register tile (two 8-lane vectors).
pub const NR: usize = 16;
/// Depth of one packed block: a 6×KC panel of `a` and a KC×16 panel of `b` stay in L1 together.
pub const KC: usize = 256;
/// Rows of `a` packed per block (in L2).
const MC: usize = 168;
/// Columns of `b` packed per block.
const NC: usize = 2048;

/// The definition: `c[i,j] = Σ_p a[i,p]·b[p,j] + beta·c[i,j]` (p ascending; with beta = 0, `c` is not read).
/// Strides are (row, column).
#[allow(clippy::too_many_arguments)]
pub fn naive(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    a_s: (usize, usize),
    b: &[f32],
    b_s: (usize, usize),
    beta: f32,
    c: &mut [f32],
    c_s: (usize, usize),
) {
    for i in 0..m {
        for j in 0..n {
            let mut s = 0.0f32;
            for p in 0..k {
                s += a[i * a_s.0 + p * a_s.1] * b[p * b_s.0 + j * b_s.1];
            }
            let o = &mut c[i * c_s.0 + j * c_s.1];
            *o = if beta == 0.0 { s } else { beta * *o + s };
        }
    }
}

/// `c = a·b + beta·c` (with beta = 0, `c` is not read). The caller guarantees every strided access lies inside
/// the slices (as [`super::real`] checks).
#[allow(clippy::too_many_arguments)]
pub fn sgemm(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    a_s: (usize, usize),
    b: &[f32],
    b_s: (usize, usize),
    beta: f32,
    c: &mut [f32],
    c_s: (usize, usize),
) {
    if m == 0 || n == 0 {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the features were just detected.
        unsafe { x86::blocked(m, k, n, a, a_s, b, b_s, beta, c, c_s) };
        return;
    }
    // SAFETY: the caller proved every strided access lies inside the slices; c does not alias a or b.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            a_s.0 as isize,
            a_s.1 as isize,
            b.as_ptr(),
            b_s.0 as isize,
            b_s.1 as isize,
            beta,
            c.as_mut_ptr(),
            c_s.0 as isize,
            c_s.1 as isize,
        );
    }
}

thread_local! {
    /// Packing buffers of this thread (the pool's threads live for the process: no allocation per call).
    static PACK: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// `c ← beta·c + t` for one element, the one update rule of every tile (beta 0: c is not read).
#[inline(always)]
fn update(c: &mut f32, t: f32, beta: f32) {
    *c = if beta == 0.0 {
        t
    } else if beta == 1.0 {
        *c + t
    } else {
        beta * *c + t
    };
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::*;
    use std::arch::x86_64::*;

    /// Pack rows [i0, i0+mc) × depth [p0, p0+kc) of `a` into MR-row panels, each [kc][MR], zero-padded rows.
    fn pack_a(a: &[f32], a_s: (usize, usize), i0: usize, mc: usize, p0: usize, kc: usize, out: &mut Vec<f32>) {
        let panels = mc.div_ceil(MR);
        out.clear();
        out.resize(panels * kc * MR, 0.0);
        for (t, panel) in out.chunks_exact_mut(kc * MR).enumerate() {
            let rows = MR.min(mc - t * MR);
            for r in 0..rows {
                let base = (i0 + t * MR + r) * a_s.0 + p0 * a_s.1;
                for p in 0..kc {
                    panel[p * MR + r] = a[base + p * a_s.1];
                }
            }
        }
    }

    /// Pack depth [p0, p0+kc) × columns [j0, j0+nc) of `b` into NR-column panels, each [kc][NR], zero-padded.
    fn pack_b(b: &[f32], b_s: (usize, usize), p0: usize, kc: usize, j0: usize, nc: usize, out: &mut Vec<f32>) {
        let panels = nc.div_ceil(NR);
        out.clear();
        out.resize(panels * kc * NR, 0.0);
        for (t, panel) in out.chunks_exact_mut(kc * NR).enumerate() {
            let cols = NR.min(nc - t * NR);
            let j = j0 + t * NR;
            if b_s.1 == 1 {
                for (p, dst) in panel.chunks_exact_mut(NR).enumerate() {
                    let src = (p0 + p) * b_s.0 + j;
                    dst[..cols].copy_from_slice(&b[src..src + cols]);
                }
            } else {
                for q in 0..cols {
                    let base = p0 * b_s.0 + (j + q) * b_s.1;
                    for p in 0..kc {
                        panel[p * NR + q] = b[base + p * b_s.0];
                    }
                }
            }
        }
    }

    /// The blocked product; see the module doc.
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA; every strided access lies inside the slices.
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn blocked(
        m: usize,
        k: usize,
        n: usize,
        a: &[f32],
        a_s: (usize, usize),
        b: &[f32],
        b_s: (usize, usize),
        beta: f32,
        c: &mut [f32],
        c_s: (usize, usize),
    ) {
        if k == 0 {
            for i in 0..m {
                for j in 0..n {
                    update(&mut c[i * c_s.0 + j * c_s.1], 0.0, beta);
                }
            }
            return;
        }
        PACK.with_borrow_mut(|(pa, pb)| {
            for j0 in (0..n).step_by(NC) {
                let nc = NC.min(n - j0);
                for p0 in (0..k).step_by(KC) {
                    let kc = KC.min(k - p0);
                    // The first k-block applies beta; the later ones add their sums to c.
                    let beta = if p0 == 0 { beta } else { 1.0 };
                    pack_b(b, b_s, p0, kc, j0, nc, pb);
                    for i0 in (0..m).step_by(MC) {
                        let mc = MC.min(m - i0);
                        pack_a(a, a_s, i0, mc, p0, kc, pa);
                        for (tj, bp) in pb.chunks_exact(kc * NR).enumerate() {
                            let (j, cols) = (j0 + tj * NR, NR.min(nc - tj * NR));
                            for (ti, ap) in pa.chunks_exact(kc * MR).enumerate() {
                                let (i, rows) = (i0 + ti * MR, MR.min(mc - ti * MR));
                                // SAFETY: avx2+fma (this fn's contract); the panels hold kc·MR and kc·NR values.
                                let t = unsafe { tile(kc, ap, bp) };
                                store(&t, rows, cols, beta, c, i * c_s.0 + j * c_s.1, c_s);
                            }
                        }
                    }
                }
            }
        });
    }

    /// The MR×NR tile of one packed `a` panel times one packed `b` panel: per element, fused multiply-adds in k
    /// order from 0.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn tile(kc: usize, a: &[f32], b: &[f32]) -> [[f32; NR]; MR] {
        let (a, b) = (&a[..kc * MR], &b[..kc * NR]);
        let mut acc = [[_mm256_setzero_ps(); 2]; MR];
        for (ap, bp) in a.chunks_exact(MR).zip(b.chunks_exact(NR)) {
            // SAFETY: bp holds NR = 16 values.
            let (b0, b1) = unsafe { (_mm256_loadu_ps(bp.as_ptr()), _mm256_loadu_ps(bp.as_ptr().add(8))) };
            for r in 0..MR {
                let x = _mm256_set1_ps(ap[r]);
                acc[r][0] = _mm256_fmadd_ps(x, b0, acc[r][0]);
                acc[r][1] = _mm256_fmadd_ps(x, b1, acc[r][1]);
            }
        }
        let mut t = [[0.0f32; NR]; MR];
        for r in 0..MR {
            // SAFETY: each row of t holds 16 values.
            unsafe {
                _mm256_storeu_ps(t[r].as_mut_ptr(), acc[r][0]);
                _mm256_storeu_ps(t[r].as_mut_ptr().add(8), acc[r][1]);
            }
        }
        t
    }

    /// c[at + r·rs + q·cs] ← beta·c + t[r][q] for the tile's `rows` × `cols` live part.
    #[inline]
    fn store(t: &[[f32; NR]; MR], rows: usize, cols: usize, beta: f32, c: &mut [f32], at: usize, c_s: (usize, usize)) {
        if c_s.1 == 1 {
            for (r, tr) in t.iter().enumerate().take(rows) {
                for (o, &v) in c[at + r * c_s.0..][..cols].iter_mut().zip(tr) {
                    update(o, v, beta);
                }
            }
        } else {
            for (r, tr) in t.iter().enumerate().take(rows) {
                for (q, &v) in tr.iter().enumerate().take(cols) {
                    update(&mut c[at + r * c_s.0 + q * c_s.1], v, beta);
                }
            }
        }
    }
}
