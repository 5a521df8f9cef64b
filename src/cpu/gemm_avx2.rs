//! The AVX2+FMA micro-kernel of [`super::gemm`]'s blocked product (6×16 register tiles in 12 ymm registers), and
//! the 8×8 AVX transposes that pack transposed operands for both kernels.

use super::gemm::{MC, MR, NC, NR, PACK, Tile, fill_panels, k_blocks};
use std::arch::x86_64::*;

/// [`super::gemm::blocked`] compiled for AVX2 and FMA, the packing and epilogue closures inlined into it.
///
/// # Safety
/// The CPU has AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn blocked(
    m: usize,
    k: usize,
    n: usize,
    pack_a: impl Fn(usize, usize, usize, usize, &mut [f32]),
    pack_b: impl Fn(usize, usize, usize, usize, &mut [f32]),
    mut store: impl FnMut(&Tile),
) {
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    let last_p0 = k_blocks(k).last().map_or(0, |b| b.0);
    PACK.with_borrow_mut(|(pa, pb)| {
        for j0 in (0..n).step_by(NC) {
            let nc = NC.min(n - j0);
            for (p0, kc) in k_blocks(k) {
                fill_panels(pb, nc, NR, kc, |t, cols, panel| pack_b(p0, kc, j0 + t * NR, cols, panel));
                for i0 in (0..m).step_by(MC) {
                    let mc = MC.min(m - i0);
                    fill_panels(pa, mc, MR, kc, |t, rows, panel| pack_a(i0 + t * MR, rows, p0, kc, panel));
                    for (tj, bp) in pb.chunks_exact(kc * NR).enumerate() {
                        let (j, cols) = (j0 + tj * NR, NR.min(nc - tj * NR));
                        for (ti, ap) in pa.chunks_exact(kc * MR).enumerate() {
                            let (i, rows) = (i0 + ti * MR, MR.min(mc - ti * MR));
                            // SAFETY: avx2+fma (this fn's contract); the panels hold kc·MR and kc·NR values.
                            let t = unsafe { tile(kc, ap, bp) };
                            store(&Tile { i, rows, j, cols, first: p0 == 0, last: p0 == last_p0, t: &t });
                        }
                    }
                }
            }
        }
    });
}

/// The 8×8-block part of [`super::gemm::transpose_runs`] for columns in whole groups of 8: returns how many
/// leading t (a multiple of 8) it did for every column q < cols (0 when cols is not 8 or 16).
///
/// # Safety
/// AVX2 is present; `src[starts[q] + t]` for q < cols, t < len and `panel[(o + t)·NR + q]` are in bounds.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn transpose8(
    src: &[f32],
    starts: &[usize; NR],
    cols: usize,
    len: usize,
    panel: &mut [f32],
    o: usize,
) -> usize {
    if cols != 8 && cols != 16 {
        return 0;
    }
    let full = len / 8 * 8;
    let (sp, pp) = (src.as_ptr(), panel.as_mut_ptr());
    for g in (0..cols).step_by(8) {
        for t in (0..full).step_by(8) {
            // SAFETY: the caller's bounds cover q < cols, t + 8 ≤ len.
            unsafe {
                let r: [__m256; 8] = std::array::from_fn(|q| _mm256_loadu_ps(sp.add(starts[g + q] + t)));
                let a0 = _mm256_unpacklo_ps(r[0], r[1]);
                let a1 = _mm256_unpackhi_ps(r[0], r[1]);
                let a2 = _mm256_unpacklo_ps(r[2], r[3]);
                let a3 = _mm256_unpackhi_ps(r[2], r[3]);
                let a4 = _mm256_unpacklo_ps(r[4], r[5]);
                let a5 = _mm256_unpackhi_ps(r[4], r[5]);
                let a6 = _mm256_unpacklo_ps(r[6], r[7]);
                let a7 = _mm256_unpackhi_ps(r[6], r[7]);
                let b0 = _mm256_shuffle_ps::<0x44>(a0, a2);
                let b1 = _mm256_shuffle_ps::<0xEE>(a0, a2);
                let b2 = _mm256_shuffle_ps::<0x44>(a1, a3);
                let b3 = _mm256_shuffle_ps::<0xEE>(a1, a3);
                let b4 = _mm256_shuffle_ps::<0x44>(a4, a6);
                let b5 = _mm256_shuffle_ps::<0xEE>(a4, a6);
                let b6 = _mm256_shuffle_ps::<0x44>(a5, a7);
                let b7 = _mm256_shuffle_ps::<0xEE>(a5, a7);
                let out = [
                    _mm256_permute2f128_ps::<0x20>(b0, b4),
                    _mm256_permute2f128_ps::<0x20>(b1, b5),
                    _mm256_permute2f128_ps::<0x20>(b2, b6),
                    _mm256_permute2f128_ps::<0x20>(b3, b7),
                    _mm256_permute2f128_ps::<0x31>(b0, b4),
                    _mm256_permute2f128_ps::<0x31>(b1, b5),
                    _mm256_permute2f128_ps::<0x31>(b2, b6),
                    _mm256_permute2f128_ps::<0x31>(b3, b7),
                ];
                for (i, v) in out.into_iter().enumerate() {
                    _mm256_storeu_ps(pp.add((o + t + i) * NR + g), v);
                }
            }
        }
    }
    full
}

/// The MR×NR tile of one packed `a` panel times one packed `b` panel: per element, fused multiply-adds in k
/// order from 0.
///
/// # Safety
/// The CPU has AVX2 and FMA.
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
