//! The AVX-512 micro-kernel of [`super::gemm`]'s blocked product.
//!
//! Same packed panels (6×kc of `a`, kc×16 of `b`), same k-blocks, and per output element the same fused
//! multiply-adds from 0 in k order as the AVX2 kernel: a 16-lane FMA rounds each lane exactly as an 8-lane one,
//! so every tile holds the same bits. What changes is how many tiles one pass over k computes: two `a` panels
//! times two `b` panels (a 12×32 block, 24 zmm accumulators of the 32, one 16-wide load of `b` per panel and
//! one broadcast of `a` per row per k step), so each load feeds more FMAs and two FMA pipes stay busy (the
//! 6×16 tile in zmm registers would be 6 accumulators, fewer than the FMA latency × pipes needs).
//!
//! The epilogue still sees 6×16 [`Tile`]s, in the AVX2 kernel's order (column panel by column panel, row
//! panels in order within each): the right column panel of each 12×32 block waits in a stash until its
//! column's turn. Epilogues that add overlapping tiles into one output (the convolution's input gradient)
//! therefore sum in the same order on both kernels, and whole training runs are bit-identical across them.

use std::arch::x86_64::*;

use super::gemm::{MC, MR, NC, NR, PACK, Tile, fill_panels, k_blocks};

/// One 6×16 tile's sums.
type Block = [[f32; NR]; MR];

/// Row panels of one packed `a` block, at most.
const MAX_ROW_PANELS: usize = MC.div_ceil(MR);

/// [`super::gemm::blocked`] on AVX-512, the packing and epilogue closures inlined into it.
///
/// # Safety
/// The CPU has AVX-512F (and AVX2 and FMA, for the packing's transposes).
#[target_feature(enable = "avx512f,avx2,fma")]
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
    // The right-hand column panel's tiles of the current column pair, until the left one's are stored.
    let mut stash = [[[0.0f32; NR]; MR]; MAX_ROW_PANELS];
    PACK.with_borrow_mut(|(pa, pb)| {
        for j0 in (0..n).step_by(NC) {
            let nc = NC.min(n - j0);
            for (p0, kc) in k_blocks(k) {
                fill_panels(pb, nc, NR, kc, |t, cols, panel| pack_b(p0, kc, j0 + t * NR, cols, panel));
                let (first, last) = (p0 == 0, p0 == last_p0);
                let (nb, bp) = (nc.div_ceil(NR), |t: usize| &pb[t * kc * NR..][..kc * NR]);
                for i0 in (0..m).step_by(MC) {
                    let mc = MC.min(m - i0);
                    fill_panels(pa, mc, MR, kc, |t, rows, panel| pack_a(i0 + t * MR, rows, p0, kc, panel));
                    let (na, ap) = (mc.div_ceil(MR), |t: usize| &pa[t * kc * MR..][..kc * MR]);
                    let rows = |t: usize| MR.min(mc - t * MR);
                    let cols = |t: usize| NR.min(nc - t * NR);
                    let mut emit = |ti: usize, tj: usize, t: &Block| {
                        let (i, j) = (i0 + ti * MR, j0 + tj * NR);
                        store(&Tile { i, rows: rows(ti), j, cols: cols(tj), first, last, t });
                    };
                    let mut tj = 0;
                    while tj < nb {
                        let pair = tj + 1 < nb;
                        let mut ti = 0;
                        while ti < na {
                            let two = ti + 1 < na;
                            // SAFETY: avx512f (this fn's contract); each panel holds kc·MR or kc·NR values.
                            unsafe {
                                match (two, pair) {
                                    (true, true) => {
                                        let [[t00, t01], [t10, t11]] =
                                            tile::<2, 2>(kc, [ap(ti), ap(ti + 1)], [bp(tj), bp(tj + 1)]);
                                        emit(ti, tj, &t00);
                                        emit(ti + 1, tj, &t10);
                                        (stash[ti], stash[ti + 1]) = (t01, t11);
                                    }
                                    (true, false) => {
                                        let [[t00], [t10]] = tile::<2, 1>(kc, [ap(ti), ap(ti + 1)], [bp(tj)]);
                                        emit(ti, tj, &t00);
                                        emit(ti + 1, tj, &t10);
                                    }
                                    (false, true) => {
                                        let [[t00, t01]] = tile::<1, 2>(kc, [ap(ti)], [bp(tj), bp(tj + 1)]);
                                        emit(ti, tj, &t00);
                                        stash[ti] = t01;
                                    }
                                    (false, false) => {
                                        let [[t00]] = tile::<1, 1>(kc, [ap(ti)], [bp(tj)]);
                                        emit(ti, tj, &t00);
                                    }
                                }
                            }
                            ti += if two { 2 } else { 1 };
                        }
                        if pair {
                            for (ti, t) in stash[..na].iter().enumerate() {
                                emit(ti, tj + 1, t);
                            }
                        }
                        tj += if pair { 2 } else { 1 };
                    }
                }
            }
        }
    });
}

/// The (RA·6)×(CB·16) block of RA packed `a` panels times CB packed `b` panels, as RA×CB tiles: per element,
/// fused multiply-adds in k order from 0 (as the AVX2 kernel's tile).
///
/// # Safety
/// The CPU has AVX-512F.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn tile<const RA: usize, const CB: usize>(kc: usize, a: [&[f32]; RA], b: [&[f32]; CB]) -> [[Block; CB]; RA] {
    for p in &a {
        assert!(p.len() >= kc * MR, "a panel too short");
    }
    for p in &b {
        assert!(p.len() >= kc * NR, "b panel too short");
    }
    let (ap, bp) = (a.map(<[f32]>::as_ptr), b.map(<[f32]>::as_ptr));
    let mut acc = [[[_mm512_setzero_ps(); CB]; MR]; RA];
    for p in 0..kc {
        // SAFETY: p < kc, and every panel holds kc·NR (b) or kc·MR (a) values (asserted above).
        unsafe {
            let bv: [__m512; CB] = std::array::from_fn(|c| _mm512_loadu_ps(bp[c].add(p * NR)));
            for (acc, a) in acc.iter_mut().zip(ap) {
                for (r, acc) in acc.iter_mut().enumerate() {
                    let x = _mm512_set1_ps(*a.add(p * MR + r));
                    for (acc, &b) in acc.iter_mut().zip(&bv) {
                        *acc = _mm512_fmadd_ps(x, b, *acc);
                    }
                }
            }
        }
    }
    let mut t = [[[[0.0f32; NR]; MR]; CB]; RA];
    for ra in 0..RA {
        for r in 0..MR {
            for c in 0..CB {
                // SAFETY: each row of a tile holds NR = 16 values.
                unsafe { _mm512_storeu_ps(t[ra][c][r].as_mut_ptr(), acc[ra][r][c]) };
            }
        }
    }
    t
}

const _: () = assert!(NR == 16, "one zmm register per b panel row");
