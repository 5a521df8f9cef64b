//! Every GPU kernel against the CPU reference backend, through the `Backend` trait: batch 1, shapes that are
//! not multiples of the 64×64 tile (7, 45×65), split-K reductions, and seeded random shapes (proptest).
//!
//! Tolerances (u = 2⁻²⁴, the f32 unit roundoff). Both backends round, in different orders, so:
//! - copies, max, select (relu, pooling, gather): bit-exact, `Tolerance::new(0, 0)`;
//! - sums of K products of values in [−1, 1] (GEMM, conv, bias gradients): the worst-case bound
//!   K·u·Σ|terms| ≈ K²u/4 is useless for K in the thousands, and rounding errors are random-signed, so the
//!   error is ~u·√K·‖terms‖₂ ≈ u·K/3; [`sum_tol`] allows 30× that plus rel = K·u (the worst case relative
//!   to a sum whose terms share one sign);
//! - softmax/log/exp: WGSL lets exp and log be off by a few ULP (not correctly rounded) → rel 1e-5 over the
//!   ten-term row sums, abs 1e-6 for probabilities near 0.
//!
//! The optimizer ops (grad_norm, sgd_update, adam_update) are checked in `gpu_optim.rs`.
mod gpu_common;

use gpu_common::{gpu_or_skip, rand_vec};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use wgtrain::backend::Backend;
use wgtrain::cpu::CpuBackend;
use wgtrain::gpu::GpuBackend;
use wgtrain::tolerance::Tolerance;

const U: f64 = 1.0 / (1u64 << 24) as f64;

/// Sums of `k` products of values in [−1, 1]; see the module docs.
fn sum_tol(k: usize) -> Tolerance {
    let k = k.max(1) as f64;
    Tolerance::new(10.0 * k * U, k * U)
}
const EXACT: Tolerance = Tolerance::new(0.0, 0.0);
const SOFTMAX_TOL: Tolerance = Tolerance::new(1e-6, 1e-5);

/// Run `case` on the CPU and the GPU backend and compare every returned tensor with `tol[i]`.
macro_rules! compare {
    ($gpu:expr, $what:expr, $tols:expr, $case:ident ( $($arg:expr),* )) => {{
        let want = $case(&mut CpuBackend::new(), $($arg),*);
        let got = $case($gpu, $($arg),*);
        assert_eq!(want.len(), got.len());
        for (i, ((w, g), t)) in want.iter().zip(&got).zip($tols.iter()).enumerate() {
            t.assert(&format!("{} output {i}", $what), g, w);
        }
    }};
}

fn linear_case<B: Backend>(b: &mut B, (n, i, o): (usize, usize, usize), x_shape: &[usize], seed: u64) -> Vec<Vec<f32>> {
    let x = b.tensor(&rand_vec(seed, n * i), x_shape, "x").unwrap();
    let w = b.tensor(&rand_vec(seed + 1, o * i), &[o, i], "w").unwrap();
    let bias = b.tensor(&rand_vec(seed + 2, o), &[o], "b").unwrap();
    let dy = b.tensor(&rand_vec(seed + 3, n * o), &[n, o], "dy").unwrap();
    let mut y = b.zeros(&[n, o], "y").unwrap();
    let mut dx = b.zeros(x_shape, "dx").unwrap();
    let mut dw = b.zeros(&[o, i], "dw").unwrap();
    let mut db = b.zeros(&[o], "db").unwrap();
    b.linear(&x, &w, &bias, &mut y).unwrap();
    b.linear_backward_input(&dy, &w, &mut dx).unwrap();
    b.linear_backward_weight(&x, &dy, &mut dw, &mut db).unwrap();
    vec![b.read(&y).unwrap(), b.read(&dx).unwrap(), b.read(&dw).unwrap(), b.read(&db).unwrap()]
}

fn check_linear(g: &mut GpuBackend, (n, i, o): (usize, usize, usize), x_shape: &[usize], seed: u64) {
    let tols = [sum_tol(i + 1), sum_tol(o), sum_tol(n), sum_tol(n)];
    compare!(g, format!("linear n={n} i={i} o={o}"), tols, linear_case((n, i, o), x_shape, seed));
}

#[test]
fn linear_matches_cpu_on_odd_shapes() {
    let Some(mut g) = gpu_or_skip("linear_matches_cpu_on_odd_shapes") else { return };
    check_linear(&mut g, (1, 7, 7), &[1, 7], 1);
    check_linear(&mut g, (1, 1, 1), &[1, 1], 2);
    check_linear(&mut g, (45, 65, 7), &[45, 65], 3);
    check_linear(&mut g, (7, 45, 65), &[7, 45, 65 / 65], 4);
    check_linear(&mut g, (65, 130, 45), &[65, 2, 5, 13], 5); // flattened 4-d input, > 1 tile each way
    check_linear(&mut g, (3, 1100, 5), &[3, 1100], 6); // split-K forward (with bias in the reduction)
    check_linear(&mut g, (5, 13, 600), &[5, 13], 7); // split-K backward-input (K = 600)
    check_linear(&mut g, (700, 9, 3), &[700, 9], 8); // split-K backward-weight (K = batch = 700)
}

fn conv_case<B: Backend>(b: &mut B, [n, c, h, w, k]: [usize; 5], seed: u64) -> Vec<Vec<f32>> {
    let (ho, wo) = (h - 2, w - 2);
    let x = b.tensor(&rand_vec(seed, n * c * h * w), &[n, c, h, w], "x").unwrap();
    let wt = b.tensor(&rand_vec(seed + 1, k * c * 9), &[k, c, 3, 3], "w").unwrap();
    let bias = b.tensor(&rand_vec(seed + 2, k), &[k], "b").unwrap();
    let dy = b.tensor(&rand_vec(seed + 3, n * k * ho * wo), &[n, k, ho, wo], "dy").unwrap();
    let mut y = b.zeros(&[n, k, ho, wo], "y").unwrap();
    let mut dx = b.zeros(&[n, c, h, w], "dx").unwrap();
    let mut dw = b.zeros(&[k, c, 3, 3], "dw").unwrap();
    let mut db = b.zeros(&[k], "db").unwrap();
    b.conv2d(&x, &wt, &bias, &mut y).unwrap();
    b.conv2d_backward_input(&dy, &wt, &mut dx).unwrap();
    b.conv2d_backward_weight(&x, &dy, &mut dw, &mut db).unwrap();
    vec![b.read(&y).unwrap(), b.read(&dx).unwrap(), b.read(&dw).unwrap(), b.read(&db).unwrap()]
}

fn check_conv(g: &mut GpuBackend, d @ [n, c, h, w, k]: [usize; 5], seed: u64) {
    let hw = (h - 2) * (w - 2);
    let tols = [sum_tol(c * 9 + 1), sum_tol(k * 9), sum_tol(n * hw), sum_tol(n * hw)];
    compare!(g, format!("conv {d:?}"), tols, conv_case(d, seed));
}

#[test]
fn conv2d_matches_cpu_on_odd_shapes() {
    let Some(mut g) = gpu_or_skip("conv2d_matches_cpu_on_odd_shapes") else { return };
    check_conv(&mut g, [1, 1, 3, 3, 1], 10); // smallest: 1×1 output
    check_conv(&mut g, [1, 1, 7, 7, 1], 11);
    check_conv(&mut g, [1, 7, 7, 7, 7], 12);
    check_conv(&mut g, [2, 3, 45, 65, 5], 13); // dw reduces 2·43·63 = 5418 terms: split-K
    check_conv(&mut g, [2, 32, 12, 11, 65], 14); // sample-CNN-like channels, K = 65 > one tile
    // Tile choice: ≤ 32 rows take the 32×128 tile, more the 64×64 one (rows: K forward, C backward-input).
    check_conv(&mut g, [1, 33, 9, 8, 32], 15); // forward on 32×128, backward-input on 64×64
    check_conv(&mut g, [1, 32, 9, 8, 33], 16); // forward on 64×64, backward-input on 32×128
}

fn pool_case<B: Backend>(b: &mut B, [n, c, h, w]: [usize; 4], ties: bool, seed: u64) -> Vec<Vec<f32>> {
    // Ties: values on a coarse grid, so most windows hold equal maxima and the first-max rule matters.
    let xv: Vec<f32> =
        rand_vec(seed, n * c * h * w).into_iter().map(|v| if ties { (v * 1.5).round() } else { v }).collect();
    let x = b.tensor(&xv, &[n, c, h, w], "x").unwrap();
    let dy = b.tensor(&rand_vec(seed + 1, n * c * (h / 2) * (w / 2)), &[n, c, h / 2, w / 2], "dy").unwrap();
    let mut y = b.zeros(&[n, c, h / 2, w / 2], "y").unwrap();
    // dx starts dirty: the kernel must write every element, including rows/columns the floor drops.
    let mut dx = b.tensor(&vec![7.0; n * c * h * w], &[n, c, h, w], "dx").unwrap();
    b.maxpool2(&x, &mut y).unwrap();
    b.maxpool2_backward(&x, &dy, &mut dx).unwrap();
    vec![b.read(&y).unwrap(), b.read(&dx).unwrap()]
}

#[test]
fn maxpool_matches_cpu_including_ties() {
    let Some(mut g) = gpu_or_skip("maxpool_matches_cpu_including_ties") else { return };
    for (i, d) in [[1, 1, 2, 2], [1, 1, 7, 7], [2, 3, 45, 65], [3, 5, 24, 24]].into_iter().enumerate() {
        for ties in [false, true] {
            compare!(&mut g, format!("maxpool {d:?} ties={ties}"), [EXACT, EXACT], pool_case(d, ties, 20 + i as u64));
        }
    }
}

fn relu_case<B: Backend>(b: &mut B, shape: &[usize], seed: u64) -> Vec<Vec<f32>> {
    let n: usize = shape.iter().product();
    let mut xv = rand_vec(seed, n);
    xv.iter_mut().step_by(5).for_each(|v| *v = 0.0); // the gradient at exactly 0 is 0
    let x = b.tensor(&xv, shape, "x").unwrap();
    let dy = b.tensor(&rand_vec(seed + 1, n), shape, "dy").unwrap();
    let mut y = b.zeros(shape, "y").unwrap();
    let mut dx = b.zeros(shape, "dx").unwrap();
    b.relu(&x, &mut y).unwrap();
    b.relu_backward(&y, &dy, &mut dx).unwrap();
    vec![b.read(&y).unwrap(), b.read(&dx).unwrap()]
}

#[test]
fn relu_matches_cpu() {
    let Some(mut g) = gpu_or_skip("relu_matches_cpu") else { return };
    for (i, s) in [vec![1], vec![7], vec![45, 65], vec![3, 32, 26, 26]].iter().enumerate() {
        compare!(&mut g, format!("relu {s:?}"), [EXACT, EXACT], relu_case(s, 30 + i as u64));
    }
}

/// The fused ReLU ops on one layer shape: conv2d_relu, conv2d_backward_input_relu, maxpool2_backward_relu,
/// linear_relu, linear_backward_input_relu. Masks are ReLU outputs with exact zeros (the gradient at 0 is 0).
fn fused_case<B: Backend>(
    b: &mut B,
    [n, c, h, w, k]: [usize; 5],
    (ln, li, lo): (usize, usize, usize),
    seed: u64,
) -> Vec<Vec<f32>> {
    let relu_out = |seed: u64, len: usize| -> Vec<f32> {
        rand_vec(seed, len).into_iter().map(|v| if v > 0.0 { (v * 4.0).round() / 4.0 } else { 0.0 }).collect()
    };
    let t = |b: &mut B, v: Vec<f32>, s: &[usize]| b.tensor(&v, s, "t").unwrap();
    let x = t(b, rand_vec(seed, n * c * h * w), &[n, c, h, w]);
    let wt = t(b, rand_vec(seed + 1, k * c * 9), &[k, c, 3, 3]);
    let bias = t(b, rand_vec(seed + 2, k), &[k]);
    let dy = t(b, rand_vec(seed + 3, n * k * (h - 2) * (w - 2)), &[n, k, h - 2, w - 2]);
    let mask = t(b, relu_out(seed + 4, n * c * h * w), &[n, c, h, w]);
    let pooled = t(b, relu_out(seed + 5, n * c * h * w), &[n, c, h, w]); // ties among the rounded values
    let dp = t(b, rand_vec(seed + 6, n * c * (h / 2) * (w / 2)), &[n, c, h / 2, w / 2]);
    let lx = t(b, rand_vec(seed + 7, ln * li), &[ln, li]);
    let lw = t(b, rand_vec(seed + 8, lo * li), &[lo, li]);
    let lb = t(b, rand_vec(seed + 9, lo), &[lo]);
    let ldy = t(b, rand_vec(seed + 10, ln * lo), &[ln, lo]);
    let lmask = t(b, relu_out(seed + 11, ln * li), &[ln, li]);
    // Outputs start dirty: every element must be written, masked ones included.
    let mut dirty = |s: &[usize]| b.tensor(&vec![7.0; s.iter().product()], s, "out").unwrap();
    let (mut y, mut dx, mut dpool) = (dirty(&[n, k, h - 2, w - 2]), dirty(&[n, c, h, w]), dirty(&[n, c, h, w]));
    let (mut ly, mut ldx) = (dirty(&[ln, lo]), dirty(&[ln, li]));
    b.conv2d_relu(&x, &wt, &bias, &mut y).unwrap();
    b.conv2d_backward_input_relu(&dy, &wt, &mask, &mut dx).unwrap();
    b.maxpool2_backward_relu(&pooled, &dp, &mut dpool).unwrap();
    b.linear_relu(&lx, &lw, &lb, &mut ly).unwrap();
    b.linear_backward_input_relu(&ldy, &lw, &lmask, &mut ldx).unwrap();
    [y, dx, dpool, ly, ldx].iter().map(|t| b.read(t).unwrap()).collect()
}

#[test]
fn fused_relu_ops_match_cpu() {
    let Some(mut g) = gpu_or_skip("fused_relu_ops_match_cpu") else { return };
    // conv: both tile shapes; linear: one tile, and split-K forward (K = 1100) and backward-input (K = 600),
    // where the ReLU/mask runs in reduce_splits.
    for (i, (conv, lin)) in [
        ([1, 1, 3, 3, 1], (1, 1, 1)),
        ([2, 3, 13, 11, 5], (7, 45, 65)),
        ([1, 33, 9, 8, 32], (3, 1100, 5)),
        ([2, 32, 10, 9, 33], (5, 13, 600)),
    ]
    .into_iter()
    .enumerate()
    {
        let [_, c, _, _, k] = conv;
        let tols = [sum_tol(c * 9 + 1), sum_tol(k * 9), EXACT, sum_tol(lin.1 + 1), sum_tol(lin.2)];
        compare!(&mut g, format!("fused {conv:?} {lin:?}"), tols, fused_case(conv, lin, 40 + i as u64));
    }
}

fn xent_case<B: Backend>(b: &mut B, (n, l): (usize, usize), scale: f32, seed: u64) -> Vec<Vec<f32>> {
    let z: Vec<f32> = rand_vec(seed, n * l).iter().map(|v| v * scale).collect();
    let y: Vec<u32> = (0..n).map(|r| ((r * 7 + seed as usize) % l) as u32).collect();
    let logits = b.tensor(&z, &[n, l], "logits").unwrap();
    let labels = b.indices(&y, "labels").unwrap();
    let mut dz = b.zeros(&[n, l], "dlogits").unwrap();
    let mut losses = b.zeros(&[4], "losses").unwrap();
    let mut acc = b.tensor(&[0.5, 1.0], &[2], "acc").unwrap();
    b.begin_step().unwrap();
    b.softmax_xent(&logits, &labels, &mut dz, &mut losses, 2).unwrap();
    b.eval_accumulate(&logits, &labels, &mut acc).unwrap();
    b.end_step().unwrap();
    vec![b.read(&dz).unwrap(), b.read(&losses).unwrap(), b.read(&acc).unwrap()]
}

#[test]
fn softmax_xent_matches_cpu() {
    let Some(mut g) = gpu_or_skip("softmax_xent_matches_cpu") else { return };
    for (i, (shape, scale)) in
        [((1, 10), 1.0), ((7, 10), 3.0), ((45, 65), 1.0), ((300, 10), 5.0), ((64, 10), 100.0)].into_iter().enumerate()
    {
        // Logits of ±100 would overflow exp without the max shift. acc sums n per-row losses (sum_tol(n)).
        let tols = [SOFTMAX_TOL, SOFTMAX_TOL, Tolerance::new(SOFTMAX_TOL.abs * shape.0 as f64, SOFTMAX_TOL.rel)];
        compare!(&mut g, format!("softmax_xent {shape:?} ×{scale}"), tols, xent_case(shape, scale, 40 + i as u64));
    }
}

fn gather_case<B: Backend>(b: &mut B, (m, d, batch, off): (usize, usize, usize, u32), seed: u64) -> Vec<Vec<f32>> {
    let images = b.tensor(&rand_vec(seed, m * d), &[m, d], "images").unwrap();
    let labels = b.indices(&(0..m as u32).map(|i| i * 3 % 10).collect::<Vec<_>>(), "labels").unwrap();
    let order: Vec<u32> = (0..m as u32).map(|i| (i * 17 + 5) % m as u32).collect();
    let order = b.indices(&order, "order").unwrap();
    let mut x = b.zeros(&[batch, d], "x").unwrap();
    let mut y = b.indices(&vec![0; batch], "y").unwrap();
    b.begin_step().unwrap();
    b.gather_batch(&images, &labels, &order, off as usize, &mut x, &mut y).unwrap();
    b.end_step().unwrap();
    // Labels come back through a 1-row linear layer with weight 1: exact for small integers.
    let yv = labels_to_f32(b, &y, batch);
    vec![b.read(&x).unwrap(), yv]
}

/// Read an index tensor through ops the trait offers: one-hot… is not available, so use gather itself:
/// y holds labels < 10; a softmax-xent row with all-zero logits has dlogits = (0.1 − [l = y]) / n,
/// whose negative entry marks the label.
fn labels_to_f32<B: Backend>(b: &mut B, y: &B::Indices, batch: usize) -> Vec<f32> {
    let z = b.zeros(&[batch, 10], "z").unwrap();
    let mut dz = b.zeros(&[batch, 10], "dz").unwrap();
    let mut losses = b.zeros(&[1], "l").unwrap();
    b.begin_step().unwrap();
    b.softmax_xent(&z, y, &mut dz, &mut losses, 0).unwrap();
    b.end_step().unwrap();
    let d = b.read(&dz).unwrap();
    (0..batch).map(|r| (0..10).find(|&l| d[r * 10 + l] < 0.0).unwrap() as f32).collect()
}

#[test]
fn gather_batch_matches_cpu() {
    let Some(mut g) = gpu_or_skip("gather_batch_matches_cpu") else { return };
    for (i, c) in [(1, 1, 1, 0), (50, 7, 7, 43), (60, 784, 13, 20), (300, 45, 65, 200)].into_iter().enumerate() {
        compare!(&mut g, format!("gather {c:?}"), [EXACT, EXACT], gather_case(c, 60 + i as u64));
    }
}

/// Seeded random shapes for the GEMM-based ops and pooling (proptest; few cases: lavapipe is slow).
#[test]
fn random_shapes_match_cpu() {
    let Some(g) = gpu_or_skip("random_shapes_match_cpu") else { return };
    let g = std::cell::RefCell::new(g);
    // No shrinking: every shrink step would rerun GPU work on a slow software adapter; the failing shape is
    // in the panic message already.
    let mut runner =
        TestRunner::new(Config { cases: 6, failure_persistence: None, max_shrink_iters: 0, ..Config::default() });
    let dims = (1usize..5, 1usize..9, 3usize..30, 3usize..30, 1usize..70, any::<u64>());
    runner
        .run(&dims, |(n, c, h, w, k, seed)| {
            let g = &mut *g.borrow_mut();
            check_conv(g, [n, c, h, w, k], seed % 1000);
            check_linear(g, (n * h, c * w, k), &[n * h, c * w], seed % 1000);
            compare!(
                g,
                format!("maxpool {:?}", [n, c, h, w]),
                [EXACT, EXACT],
                pool_case([n, c, h, w], seed % 2 == 0, seed % 1000)
            );
            Ok(())
        })
        .unwrap();
}
