//! The CPU backend's fast paths against the plain formulations beside them, over random shapes:
//! - the blocked f32 GEMM against its definition, both against an f64 evaluation;
//! - the stride-1 convolution paths (implicit im2col, bias/ReLU and col2im in the GEMM epilogue) against the
//!   im2col + GEMM + col2im formulation — bit for bit where they do the same sums in the same order (forward,
//!   weight gradient), within float32 rounding where the order differs (input gradient);
//! - the 2×2/stride-2 pooling loops against the general window loops, bit for bit, ties and NaN included.
//!
//! Rounding bounds: a float32 sum of k products, each rounded, differs from the exact value by at most
//! about k·u·Σ|terms| (u = 2⁻²⁴, the unit roundoff; the bound γ_k = k·u/(1 − k·u)). Two float32 evaluations
//! of one sum differ by at most twice that. The f64 references are exact to far below these bounds. The tests
//! use (k + 2)·ε·Σ|terms| with ε = 2⁻²³ = 2u (the +2 covers the bias/beta addition and the final rounding),
//! plus the smallest normal number for sums that cancel to ~0.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use wgtrain::cpu::conv::{self, ConvDims};
use wgtrain::cpu::{gemm, pool};

fn rand_vec(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

fn to64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

fn abs64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x.abs() as f64).collect()
}

/// |got − exact| ≤ (k + 2)·ε·mag + MIN_POSITIVE for every element.
fn assert_within(what: &str, got: &[f32], exact: &[f64], mag: &[f64], k: usize) {
    assert_eq!(got.len(), exact.len(), "{what}: lengths");
    for (i, ((&g, &e), &m)) in got.iter().zip(exact).zip(mag).enumerate() {
        let bound = (k + 2) as f64 * f32::EPSILON as f64 * m + f32::MIN_POSITIVE as f64;
        assert!((g as f64 - e).abs() <= bound, "{what}[{i}]: {g} vs exact {e} (bound {bound:e}, k {k})");
    }
}

/// c = a·b + beta·c in f64 over the same strided operands (the exact reference), and Σ|a·b| + |beta·c|.
#[allow(clippy::too_many_arguments)]
fn gemm64(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    a_s: (usize, usize),
    b: &[f32],
    b_s: (usize, usize),
    beta: f32,
    c: &[f32],
    c_s: (usize, usize),
) -> (Vec<f64>, Vec<f64>) {
    let (mut exact, mut mag) = (vec![0.0; m * n], vec![0.0; m * n]);
    for i in 0..m {
        for j in 0..n {
            let (mut s, mut sa) = (0.0f64, 0.0f64);
            for p in 0..k {
                let t = a[i * a_s.0 + p * a_s.1] as f64 * b[p * b_s.0 + j * b_s.1] as f64;
                s += t;
                sa += t.abs();
            }
            if beta != 0.0 {
                let bc = beta as f64 * c[i * c_s.0 + j * c_s.1] as f64;
                s += bc;
                sa += bc.abs();
            }
            exact[i * n + j] = s;
            mag[i * n + j] = sa;
        }
    }
    (exact, mag)
}

/// One GEMM test case: random operands with the strides of the chosen transposes, the beta of `case`, the
/// exact f64 result and its magnitudes, and the output's starting values (NaN where beta = 0 must not read c).
struct GemmCase {
    dims: (usize, usize, usize),
    a: Vec<f32>,
    b: Vec<f32>,
    a_s: (usize, usize),
    b_s: (usize, usize),
    c_s: (usize, usize),
    beta: f32,
    start: Vec<f32>,
    exact: Vec<f64>,
    mag: Vec<f64>,
    what: String,
}

impl GemmCase {
    fn new(
        rng: &mut ChaCha8Rng,
        case: usize,
        (m, k, n): (usize, usize, usize),
        (a_t, b_t, c_t): (bool, bool, bool),
    ) -> Self {
        let beta = [0.0f32, 1.0, 0.5, -1.25][case % 4];
        let a_s = if a_t { (1, m) } else { (k, 1) };
        let b_s = if b_t { (1, k) } else { (n, 1) };
        let c_s = if c_t { (1, m) } else { (n, 1) };
        let a = rand_vec(rng, m * k);
        let b = rand_vec(rng, k * n);
        let c0 = rand_vec(rng, m * n);
        let (exact, mag) = gemm64(m, k, n, &a, a_s, &b, b_s, beta, &c0, c_s);
        let start = if beta == 0.0 { vec![f32::NAN; m * n] } else { c0 };
        let what = format!("case {case}: {m}×{k}×{n}, transposed a {a_t} b {b_t} c {c_t}, beta {beta}");
        GemmCase { dims: (m, k, n), a, b, a_s, b_s, c_s, beta, start, exact, mag, what }
    }

    /// An output in row-major order, whatever its strides.
    fn row_major(&self, c: &[f32]) -> Vec<f32> {
        let (m, _, n) = self.dims;
        (0..m * n).map(|e| c[(e / n) * self.c_s.0 + (e % n) * self.c_s.1]).collect()
    }
}

#[test]
fn blocked_gemm_matches_its_definition_on_random_shapes_and_strides() {
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    for case in 0..120 {
        // Depths past the k-block size (320) and sizes off the 6×16 tile, every stride pattern, beta 0/1/other.
        let m = rng.random_range(1..40usize);
        let n = rng.random_range(1..50usize);
        let k = if case % 4 == 0 { rng.random_range(300..900usize) } else { rng.random_range(0..70usize) };
        let a_t = rng.random_range(0..2) == 1;
        let b_t = rng.random_range(0..2) == 1;
        let c_t = rng.random_range(0..2) == 1;
        let g = GemmCase::new(&mut rng, case, (m, k, n), (a_t, b_t, c_t));
        let (mut fast, mut plain) = (g.start.clone(), g.start.clone());
        gemm::sgemm(m, k, n, &g.a, g.a_s, &g.b, g.b_s, g.beta, &mut fast, g.c_s);
        gemm::naive(m, k, n, &g.a, g.a_s, &g.b, g.b_s, g.beta, &mut plain, g.c_s);
        assert_within(&format!("sgemm {}", g.what), &g.row_major(&fast), &g.exact, &g.mag, k);
        assert_within(&format!("naive {}", g.what), &g.row_major(&plain), &g.exact, &g.mag, k);
    }
}

/// The blocked kernels this CPU can run (both on an AVX-512 machine), each forced explicitly whatever
/// `WGTRAIN_CPU_ISA` and the process default say.
fn kernels() -> Vec<gemm::Isa> {
    let all = [gemm::Isa::Avx512, gemm::Isa::Avx2];
    let here: Vec<_> = all.into_iter().filter(|i| i.available()).collect();
    eprintln!("blocked GEMM kernels tested on this CPU: {here:?} (of {all:?})");
    here
}

#[test]
fn each_gemm_kernel_matches_the_definition_and_the_others_bit_for_bit() {
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    // Fixed odd shapes (1, 7, 45×65, past one packed block of rows (MC = 168) and of columns (NC = 2048), odd
    // and even counts of 6-row and 16-column panels for the 12×32 AVX-512 blocks), then random ones.
    let mut shapes = vec![
        (1, 1, 1),
        (7, 7, 7),
        (1, 7, 1),
        (7, 1, 7),
        (45, 65, 65),
        (45, 7, 65),
        (65, 45, 45),
        (12, 320, 32),
        (13, 321, 33),
        (6, 641, 16),
        (200, 30, 70),
        (3, 5, 2100),
    ];
    shapes.extend((0..60).map(|case| {
        let k = if case % 5 == 0 { rng.random_range(300..700usize) } else { rng.random_range(0..60) };
        (rng.random_range(1..60usize), k, rng.random_range(1..90usize))
    }));
    let isas = kernels();
    for (case, &(m, k, n)) in shapes.iter().enumerate() {
        let (a_t, b_t, c_t) = (case % 2 == 1, case % 3 == 1, case % 5 == 2);
        let g = GemmCase::new(&mut rng, case, (m, k, n), (a_t, b_t, c_t));
        let what = &g.what;
        let mut first: Option<(gemm::Isa, Vec<f32>)> = None;
        for &isa in &isas {
            let mut c = g.start.clone();
            gemm::sgemm_on(Some(isa), m, k, n, &g.a, g.a_s, &g.b, g.b_s, g.beta, &mut c, g.c_s);
            let c = g.row_major(&c);
            assert_within(&format!("{isa:?} {what}"), &c, &g.exact, &g.mag, k);
            // Same panels, k-blocks and FMA order per element on every kernel: the same bits.
            if let Some((isa0, c0)) = &first {
                for (e, (p, q)) in c.iter().zip(c0).enumerate() {
                    assert_eq!(p.to_bits(), q.to_bits(), "{isa:?} vs {isa0:?} {what} [{e}]: {p} vs {q}");
                }
            } else {
                first = Some((isa, c));
            }
        }
        let mut plain = g.start.clone();
        gemm::naive(m, k, n, &g.a, g.a_s, &g.b, g.b_s, g.beta, &mut plain, g.c_s);
        assert_within(&format!("naive {what}"), &g.row_major(&plain), &g.exact, &g.mag, k);
    }
}

#[test]
fn each_gemm_kernel_hands_the_epilogue_the_same_tiles_in_the_same_order() {
    // Epilogues that add overlapping tiles into one output (the convolution's input gradient) sum in the
    // order of the tiles: every kernel must deliver the same sequence, not just the same set.
    let mut rng = ChaCha8Rng::seed_from_u64(23);
    for (m, k, n) in [(1, 1, 1), (7, 9, 7), (45, 65, 65), (30, 700, 50), (200, 40, 100), (64, 288, 576)] {
        let a = rand_vec(&mut rng, m * k);
        let b = rand_vec(&mut rng, k * n);
        let mut runs = Vec::new();
        for isa in kernels() {
            let mut seq = Vec::new();
            gemm::blocked_on(
                isa,
                m,
                k,
                n,
                |i, rows, p0, kc, panel| gemm::pack_a_strided(&a, (k, 1), i, rows, p0, kc, panel),
                |p0, kc, j, cols, panel| gemm::pack_b_strided(&b, (n, 1), p0, kc, j, cols, panel),
                |t| {
                    let bits: Vec<u32> = t.t.iter().flatten().map(|v| v.to_bits()).collect();
                    seq.push((t.i, t.rows, t.j, t.cols, t.first, t.last, bits));
                },
            );
            runs.push((isa, seq));
        }
        for (isa, seq) in &runs[1..] {
            let (isa0, seq0) = &runs[0];
            assert_eq!(seq.len(), seq0.len(), "{m}×{k}×{n}: tile count, {isa:?} vs {isa0:?}");
            for (s, (t, t0)) in seq.iter().zip(seq0).enumerate() {
                let at = |t: &(usize, usize, usize, usize, bool, bool, Vec<u32>)| (t.0, t.1, t.2, t.3, t.4, t.5);
                assert!(t == t0, "{m}×{k}×{n}: tile {s} differs, {isa:?} {:?} vs {isa0:?} {:?}", at(t), at(t0));
            }
        }
    }
}

#[test]
fn the_isa_request_picks_avx2_when_asked_and_the_best_otherwise() {
    let best = [gemm::Isa::Avx512, gemm::Isa::Avx2].into_iter().find(|i| i.available());
    assert_eq!(gemm::Isa::choose(None), best);
    assert_eq!(gemm::Isa::choose(Some("auto")), best);
    assert_eq!(gemm::Isa::choose(Some("no-such-isa")), best);
    let avx2 = gemm::Isa::Avx2.available().then_some(gemm::Isa::Avx2);
    assert_eq!(gemm::Isa::choose(Some("avx2")), avx2.or(best));
    assert_eq!(gemm::Isa::choose(Some(" AVX2 ")), avx2.or(best));
    let avx512 = gemm::Isa::Avx512.available().then_some(gemm::Isa::Avx512);
    assert_eq!(gemm::Isa::choose(Some("avx512")), avx512.or(best));
}

/// A random stride-1, unpadded convolution shape (the fast paths' geometry), small enough for f64 references.
fn conv_shape(rng: &mut ChaCha8Rng, case: usize) -> ConvDims {
    let ks = [1, 2, 3, 3, 5][case % 5];
    let (h, w) = (rng.random_range(ks..ks + 14), rng.random_range(ks..ks + 30));
    // Some cases deep enough (C·k² > 320) for two k-blocks in the forward GEMM.
    let c = if case.is_multiple_of(6) { rng.random_range(36..48) } else { rng.random_range(1..9) };
    ConvDims { n: rng.random_range(1..5), c, h, w, k: rng.random_range(1..20), ks, stride: 1, pad: 0 }
}

#[test]
fn fast_conv_forward_and_weight_gradient_equal_the_plain_formulation_bit_for_bit() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for case in 0..40 {
        let d = conv_shape(&mut rng, case);
        let (ho, wo) = (d.ho(), d.wo());
        let x = rand_vec(&mut rng, d.n * d.c * d.h * d.w);
        let w = rand_vec(&mut rng, d.k * d.c * d.ks * d.ks);
        let b = rand_vec(&mut rng, d.k);
        let dy = rand_vec(&mut rng, d.n * d.k * ho * wo);
        let what = format!("case {case}: {d:?}");

        let (mut fast, mut plain) = (vec![0.0; d.n * d.k * ho * wo], vec![f32::NAN; d.n * d.k * ho * wo]);
        conv::forward(&d, &x, &w, &b, &mut fast);
        conv::forward_serial(&d, &x, &w, &b, &mut plain);
        assert!(fast.iter().zip(&plain).all(|(p, q)| p.to_bits() == q.to_bits()), "forward {what}");

        let mut relu = vec![0.0; fast.len()];
        conv::forward_act(&d, &x, &w, &b, &mut relu, true);
        let want: Vec<f32> = plain.iter().map(|&v| if v > 0.0 { v } else { 0.0 }).collect();
        assert!(relu.iter().zip(&want).all(|(p, q)| p.to_bits() == q.to_bits()), "forward + ReLU {what}");

        // One chunk: the fast per-image sums against the plain ones.
        let (mut dw, mut db) = (vec![0.0; w.len()], vec![0.0; d.k]);
        conv::backward_weight_chunked(&d, &x, &dy, &mut dw, &mut db, 1);
        let (mut pw, mut pb) = (vec![0.0; w.len()], vec![0.0; d.k]);
        conv::backward_weight_plain(&d, &x, &dy, &mut pw, &mut pb);
        assert!(dw.iter().zip(&pw).all(|(p, q)| p.to_bits() == q.to_bits()), "weight gradient {what}");
        assert!(db.iter().zip(&pb).all(|(p, q)| p.to_bits() == q.to_bits()), "bias gradient {what}");
    }
}

#[test]
fn fast_conv_input_gradient_is_within_rounding_of_the_exact_one() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for case in 0..40 {
        let mut d = conv_shape(&mut rng, case);
        if case % 7 == 0 {
            d.k = rng.random_range(330..400); // K > 320: several k-blocks added into dx one after another
            d.n = 1;
        }
        let (ho, wo) = (d.ho(), d.wo());
        let w = rand_vec(&mut rng, d.k * d.c * d.ks * d.ks);
        let dy = rand_vec(&mut rng, d.n * d.k * ho * wo);
        let mask = rand_vec(&mut rng, d.n * d.c * d.h * d.w);
        let what = format!("case {case}: {d:?}");

        // Exact (f64, plain path) and Σ|terms| (the same op on absolute values).
        let mut exact = vec![0.0f64; mask.len()];
        conv::backward_input_serial(&d, &to64(&dy), &to64(&w), &mut exact);
        let mut mag = vec![0.0f64; mask.len()];
        conv::backward_input_serial(&d, &abs64(&dy), &abs64(&w), &mut mag);

        let mut fast = vec![f32::NAN; mask.len()];
        conv::backward_input(&d, &dy, &w, &mut fast);
        // Each dx element sums at most K·k² products.
        assert_within(&format!("input gradient {what}"), &fast, &exact, &mag, d.k * d.ks * d.ks);

        let mut plain = vec![f32::NAN; mask.len()];
        conv::backward_input_serial(&d, &dy, &w, &mut plain);
        assert_within(&format!("plain input gradient {what}"), &plain, &exact, &mag, d.k * d.ks * d.ks);

        let mut masked = vec![f32::NAN; mask.len()];
        conv::backward_input_masked(&d, &dy, &w, &mut masked, Some(&mask));
        for (i, ((&g, &f), &m)) in masked.iter().zip(&fast).zip(&mask).enumerate() {
            let want = if m > 0.0 { f } else { 0.0 };
            assert_eq!(g.to_bits(), want.to_bits(), "masked input gradient {what} [{i}]");
        }
    }
}

#[test]
fn two_by_two_pooling_equals_the_general_window_loops_bit_for_bit() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for case in 0..60 {
        let (h, w) = (rng.random_range(2..15), rng.random_range(2..15));
        let d = pool::PoolDims::two(h, w);
        // Few distinct values, so windows tie often; some NaN; signed zeros.
        let plane: Vec<f32> = (0..h * w)
            .map(|_| match rng.random_range(0..10) {
                0 => f32::NAN,
                1 => -0.0,
                2 => 0.0,
                v => (v as f32 - 5.0) * 0.5,
            })
            .collect();
        let g = rand_vec(&mut rng, d.ho() * d.wo());
        let (mut fast, mut plain) = (vec![1.0; d.ho() * d.wo()], vec![2.0; d.ho() * d.wo()]);
        pool::forward_plane_2x2(&d, &plane, &mut fast);
        pool::forward_plane(&d, &plane, &mut plain);
        let same = |p: &[f32], q: &[f32]| p.iter().zip(q).all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same(&fast, &plain), "forward case {case}: {h}×{w}");
        let (mut fast, mut plain) = (vec![1.0; h * w], vec![2.0; h * w]);
        pool::backward_plane_2x2(&d, &plane, &g, &mut fast);
        pool::backward_plane(&d, &plane, &g, &mut plain);
        assert!(same(&fast, &plain), "backward case {case}: {h}×{w}");
    }
}

#[test]
fn two_chained_two_by_two_pools_equal_the_pools_one_after_the_other_bit_for_bit() {
    // The fused op's 4×4 fast path against the 2×2 loop run twice (itself equal to the general loops, above),
    // with ties, NaN, signed zeros and sizes that leave rows and columns out (floor mode).
    let mut rng = ChaCha8Rng::seed_from_u64(17);
    let pools = wgtrain::backend::PoolChain { inner: 2, outer: 2 };
    for case in 0..40 {
        let (h, w, planes) = (rng.random_range(4..19), rng.random_range(4..19), rng.random_range(1..4));
        let x: Vec<f32> = (0..planes * h * w)
            .map(|_| match rng.random_range(0..12) {
                0 => f32::NAN,
                1 => -0.0,
                2 => 0.0,
                v => (v as f32 - 6.0) * 0.5,
            })
            .collect();
        let (hp, wp) = (h / 4, w / 4);
        let (mut y, mut arg) = (vec![9.0; planes * hp * wp], vec![9.0; planes * hp * wp]);
        pool::chain_forward(planes, (h, w), pools, &x, &mut y, &mut arg);
        let (d1, d2) = (pool::PoolDims::two(h, w), pool::PoolDims::two(h / 2, w / 2));
        for p in 0..planes {
            let plane = &x[p * h * w..][..h * w];
            let mut mid = vec![0.0; d1.ho() * d1.wo()];
            pool::forward_plane_2x2(&d1, plane, &mut mid);
            let mut want = vec![0.0; d2.ho() * d2.wo()];
            pool::forward_plane_2x2(&d2, &mid, &mut want);
            for (e, &v) in want.iter().enumerate() {
                let (a, b, k) = (e / wp, e % wp, p * hp * wp + e);
                assert_eq!(y[k].to_bits(), v.to_bits(), "case {case} {h}×{w} plane {p} [{a},{b}]");
                // The argmax names the element the value came from.
                let at = arg[k] as usize;
                let src = plane[(4 * a + at / 4) * w + 4 * b + at % 4];
                assert_eq!(src.to_bits(), v.to_bits(), "case {case} {h}×{w} plane {p} [{a},{b}] argmax {at}");
            }
        }
        // Backward: dy at the argmax where y > 0, every other dx entry 0.
        let dy = rand_vec(&mut rng, y.len());
        let mut dx = vec![f32::NAN; x.len()];
        pool::chain_backward(planes, (h, w), pools, (&y, &arg, &dy), &mut dx);
        let mut want = vec![0.0f32; x.len()];
        for (k, (&yk, &ak)) in y.iter().zip(&arg).enumerate() {
            let (p, a, b, at) = (k / (hp * wp), k % (hp * wp) / wp, k % wp, ak as usize);
            if yk > 0.0 {
                want[p * h * w + (4 * a + at / 4) * w + 4 * b + at % 4] += dy[k];
            }
        }
        assert!(dx.iter().zip(&want).all(|(p, q)| p.to_bits() == q.to_bits()), "backward case {case} {h}×{w}");
    }
}
