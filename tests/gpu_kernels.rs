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
use wgtrain::backend::{Backend, ConvGeom, PoolGeom};
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

/// One convolution: x [n, c, h, w], weight [k, c, ks, ks], geometry.
#[derive(Clone, Copy, Debug)]
struct Conv {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    k: usize,
    ks: usize,
    geom: ConvGeom,
}

/// 3×3, stride 1, no padding (the sample CNN's convolutions).
fn unit([n, c, h, w, k]: [usize; 5]) -> Conv {
    Conv { n, c, h, w, k, ks: 3, geom: ConvGeom::UNIT }
}

fn geo([n, c, h, w, k]: [usize; 5], ks: usize, stride: usize, padding: usize) -> Conv {
    Conv { n, c, h, w, k, ks, geom: ConvGeom { stride, padding } }
}

impl Conv {
    fn x(&self) -> [usize; 4] {
        [self.n, self.c, self.h, self.w]
    }
    fn wt(&self) -> [usize; 4] {
        [self.k, self.c, self.ks, self.ks]
    }
    fn y(&self) -> [usize; 4] {
        let o = |s| self.geom.out_size(s, self.ks).expect("test shapes fit");
        [self.n, self.k, o(self.h), o(self.w)]
    }
    /// Terms per dx element: every (k, u, v) with its dy index whole (stride 1 gives k·ks²; stride s about
    /// k·ks²/s², but the bound k·ks² is what the tolerance needs).
    fn tols(&self) -> [Tolerance; 4] {
        let [_, _, ho, wo] = self.y();
        let nhw = self.n * ho * wo;
        [sum_tol(self.c * self.ks * self.ks + 1), sum_tol(self.k * self.ks * self.ks), sum_tol(nhw), sum_tol(nhw)]
    }
}

fn numel(s: &[usize]) -> usize {
    s.iter().product()
}

fn conv_case<B: Backend>(b: &mut B, cv: Conv, seed: u64) -> Vec<Vec<f32>> {
    let (xs, ws, ys) = (cv.x(), cv.wt(), cv.y());
    let x = b.tensor(&rand_vec(seed, numel(&xs)), &xs, "x").unwrap();
    let wt = b.tensor(&rand_vec(seed + 1, numel(&ws)), &ws, "w").unwrap();
    let bias = b.tensor(&rand_vec(seed + 2, cv.k), &[cv.k], "b").unwrap();
    let dy = b.tensor(&rand_vec(seed + 3, numel(&ys)), &ys, "dy").unwrap();
    // Outputs start dirty: every element must be written, padding-only and never-read positions included.
    let mut dirty = |s: &[usize]| b.tensor(&vec![7.0; numel(s)], s, "out").unwrap();
    let (mut y, mut dx, mut dw, mut db) = (dirty(&ys), dirty(&xs), dirty(&ws), dirty(&[cv.k]));
    b.conv2d(&x, &wt, &bias, cv.geom, &mut y).unwrap();
    b.conv2d_backward_input(&dy, &wt, cv.geom, &mut dx).unwrap();
    b.conv2d_backward_weight(&x, &dy, cv.geom, &mut dw, &mut db).unwrap();
    vec![b.read(&y).unwrap(), b.read(&dx).unwrap(), b.read(&dw).unwrap(), b.read(&db).unwrap()]
}

fn check_conv(g: &mut GpuBackend, cv: Conv, seed: u64) {
    compare!(g, format!("conv {cv:?}"), cv.tols(), conv_case(cv, seed));
}

#[test]
fn conv2d_matches_cpu_on_odd_shapes() {
    let Some(mut g) = gpu_or_skip("conv2d_matches_cpu_on_odd_shapes") else { return };
    check_conv(&mut g, unit([1, 1, 3, 3, 1]), 10); // smallest: 1×1 output
    check_conv(&mut g, unit([1, 1, 7, 7, 1]), 11);
    check_conv(&mut g, unit([1, 7, 7, 7, 7]), 12);
    check_conv(&mut g, unit([2, 3, 45, 65, 5]), 13); // dw reduces 2·43·63 = 5418 terms: split-K
    check_conv(&mut g, unit([2, 32, 12, 11, 65]), 14); // sample-CNN-like channels, K = 65 > one tile
    // Tile choice: ≤ 32 rows take the 32×128 tile, more the 64×64 one (rows: K forward, C backward-input).
    check_conv(&mut g, unit([1, 33, 9, 8, 32]), 15); // forward on 32×128, backward-input on 64×64
    check_conv(&mut g, unit([1, 32, 9, 8, 33]), 16); // forward on 64×64, backward-input on 32×128
}

/// Kernel size, stride and padding in all three modes, on both tiles (rows ≤ 32 take 32×128: K in the
/// forward and dw, C in backward-input).
#[test]
fn conv2d_with_stride_padding_and_kernel_size_matches_cpu() {
    let Some(mut g) = gpu_or_skip("conv2d_with_stride_padding_and_kernel_size_matches_cpu") else { return };
    check_conv(&mut g, geo([1, 7, 45, 65, 7], 3, 2, 1), 70); // stride 2 padding 1, batch 1, 7 channels
    check_conv(&mut g, geo([1, 7, 45, 65, 7], 5, 1, 2), 71); // kernel 5 padding 2 ("same")
    check_conv(&mut g, geo([2, 3, 45, 65, 40], 5, 2, 2), 72); // forward and dw on 64×64, split-K dw
    check_conv(&mut g, geo([1, 40, 13, 11, 6], 3, 2, 1), 73); // backward-input on 64×64 with stride
    check_conv(&mut g, geo([3, 2, 9, 13, 3], 2, 3, 0), 74); // stride > kernel: inputs no window reads
    check_conv(&mut g, geo([2, 5, 8, 11, 4], 1, 1, 2), 75); // 1×1 kernel: radix-1 digits, bias-only border
    check_conv(&mut g, geo([1, 3, 3, 2, 2], 4, 1, 1), 76); // kernel larger than the input
    check_conv(&mut g, geo([2, 4, 12, 12, 9], 7, 4, 3), 77); // 7×7 stride 4 (k² = 49 > the 16-deep slice)
    check_conv(&mut g, geo([1, 2, 30, 30, 5], 11, 2, 5), 78); // 11×11: digit steps with several carries
}

fn pool_case<B: Backend>(b: &mut B, [n, c, h, w]: [usize; 4], geom: PoolGeom, ties: bool, seed: u64) -> Vec<Vec<f32>> {
    // Ties: values on a coarse grid, so most windows hold equal maxima and the first-max rule matters.
    let xv: Vec<f32> =
        rand_vec(seed, n * c * h * w).into_iter().map(|v| if ties { (v * 1.5).round() } else { v }).collect();
    let (ho, wo) = (geom.out_size(h).unwrap(), geom.out_size(w).unwrap());
    let x = b.tensor(&xv, &[n, c, h, w], "x").unwrap();
    let dy = b.tensor(&rand_vec(seed + 1, n * c * ho * wo), &[n, c, ho, wo], "dy").unwrap();
    let mut y = b.zeros(&[n, c, ho, wo], "y").unwrap();
    // dx starts dirty: the kernel must write every element, including rows/columns the floor drops.
    let mut dx = b.tensor(&vec![7.0; n * c * h * w], &[n, c, h, w], "dx").unwrap();
    let mut dxr = b.tensor(&vec![7.0; n * c * h * w], &[n, c, h, w], "dx_relu").unwrap();
    b.max_pool2d(&x, geom, &mut y).unwrap();
    b.max_pool2d_backward(&x, &dy, geom, &mut dx).unwrap();
    // x read as a ReLU output: the mask drops dx wherever x ≤ 0 (about half the elements).
    b.max_pool2d_backward_relu(&x, &dy, geom, &mut dxr).unwrap();
    vec![b.read(&y).unwrap(), b.read(&dx).unwrap(), b.read(&dxr).unwrap()]
}

/// Overlapping windows sum up to ⌈k/s⌉² dy values per dx element, in the same (row-major window) order on
/// both backends: bit-exact as well.
fn check_pool(g: &mut GpuBackend, d: [usize; 4], geom: PoolGeom, ties: bool, seed: u64) {
    compare!(g, format!("maxpool {d:?} {geom:?} ties={ties}"), [EXACT, EXACT, EXACT], pool_case(d, geom, ties, seed));
}

#[test]
fn maxpool_matches_cpu_including_ties() {
    let Some(mut g) = gpu_or_skip("maxpool_matches_cpu_including_ties") else { return };
    for (i, d) in [[1, 1, 2, 2], [1, 1, 7, 7], [2, 3, 45, 65], [3, 5, 24, 24]].into_iter().enumerate() {
        for ties in [false, true] {
            check_pool(&mut g, d, PoolGeom::TWO, ties, 20 + i as u64);
        }
    }
}

#[test]
fn maxpool_with_kernel_and_stride_matches_cpu() {
    let Some(mut g) = gpu_or_skip("maxpool_with_kernel_and_stride_matches_cpu") else { return };
    let p = |kernel, stride| PoolGeom { kernel, stride };
    for (i, (d, geom)) in [
        ([1, 7, 45, 65], p(3, 2)), // pool 3 stride 2: overlapping windows, batch 1, odd sizes
        ([2, 3, 45, 65], p(2, 1)), // pool 2 stride 1: most elements in four windows
        ([1, 2, 13, 11], p(3, 1)),
        ([2, 2, 10, 9], p(2, 3)), // stride > kernel: elements no window covers
        ([1, 1, 5, 7], p(5, 2)),  // window as tall as the input
        ([1, 3, 4, 4], p(1, 1)),  // identity
    ]
    .into_iter()
    .enumerate()
    {
        for ties in [false, true] {
            check_pool(&mut g, d, geom, ties, 80 + i as u64);
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

/// The fused ReLU ops on one layer shape: conv2d_relu, conv2d_backward_input_relu, max_pool2d_backward_relu,
/// linear_relu, linear_backward_input_relu. Masks are ReLU outputs with exact zeros (the gradient at 0 is 0).
fn fused_case<B: Backend>(
    b: &mut B,
    cv: Conv,
    pool: PoolGeom,
    (ln, li, lo): (usize, usize, usize),
    seed: u64,
) -> Vec<Vec<f32>> {
    let relu_out = |seed: u64, len: usize| -> Vec<f32> {
        rand_vec(seed, len).into_iter().map(|v| if v > 0.0 { (v * 4.0).round() / 4.0 } else { 0.0 }).collect()
    };
    let t = |b: &mut B, v: Vec<f32>, s: &[usize]| b.tensor(&v, s, "t").unwrap();
    let (xs, ws, ys) = (cv.x(), cv.wt(), cv.y());
    let [n, c, h, w] = xs;
    let ps = [n, c, pool.out_size(h).unwrap(), pool.out_size(w).unwrap()];
    let x = t(b, rand_vec(seed, numel(&xs)), &xs);
    let wt = t(b, rand_vec(seed + 1, numel(&ws)), &ws);
    let bias = t(b, rand_vec(seed + 2, cv.k), &[cv.k]);
    let dy = t(b, rand_vec(seed + 3, numel(&ys)), &ys);
    let mask = t(b, relu_out(seed + 4, numel(&xs)), &xs);
    let pooled = t(b, relu_out(seed + 5, numel(&xs)), &xs); // ties among the rounded values
    let dp = t(b, rand_vec(seed + 6, numel(&ps)), &ps);
    let lx = t(b, rand_vec(seed + 7, ln * li), &[ln, li]);
    let lw = t(b, rand_vec(seed + 8, lo * li), &[lo, li]);
    let lb = t(b, rand_vec(seed + 9, lo), &[lo]);
    let ldy = t(b, rand_vec(seed + 10, ln * lo), &[ln, lo]);
    let lmask = t(b, relu_out(seed + 11, ln * li), &[ln, li]);
    // Outputs start dirty: every element must be written, masked ones included.
    let mut dirty = |s: &[usize]| b.tensor(&vec![7.0; numel(s)], s, "out").unwrap();
    let (mut y, mut dx, mut dpool) = (dirty(&ys), dirty(&xs), dirty(&xs));
    let (mut ly, mut ldx) = (dirty(&[ln, lo]), dirty(&[ln, li]));
    b.conv2d_relu(&x, &wt, &bias, cv.geom, &mut y).unwrap();
    b.conv2d_backward_input_relu(&dy, &wt, &mask, cv.geom, &mut dx).unwrap();
    b.max_pool2d_backward_relu(&pooled, &dp, pool, &mut dpool).unwrap();
    b.linear_relu(&lx, &lw, &lb, &mut ly).unwrap();
    b.linear_backward_input_relu(&ldy, &lw, &lmask, &mut ldx).unwrap();
    [y, dx, dpool, ly, ldx].iter().map(|t| b.read(t).unwrap()).collect()
}

#[test]
fn fused_relu_ops_match_cpu() {
    let Some(mut g) = gpu_or_skip("fused_relu_ops_match_cpu") else { return };
    // conv: both tile shapes, unit and strided/padded geometry; pool: 2×2 and overlapping windows; linear: one
    // tile, and split-K forward (K = 1100) and backward-input (K = 600), where the ReLU/mask runs in
    // reduce_splits.
    let p = |kernel, stride| PoolGeom { kernel, stride };
    for (i, (conv, pool, lin)) in [
        (unit([1, 1, 3, 3, 1]), PoolGeom::TWO, (1, 1, 1)),
        (unit([2, 3, 13, 11, 5]), p(3, 2), (7, 45, 65)),
        (unit([1, 33, 9, 8, 32]), PoolGeom::TWO, (3, 1100, 5)),
        (unit([2, 32, 10, 9, 33]), p(2, 1), (5, 13, 600)),
        (geo([1, 7, 45, 65, 7], 3, 2, 1), p(3, 2), (1, 7, 7)), // 32×128 tile both ways, stride 2 padding 1
        (geo([2, 40, 11, 9, 48], 5, 1, 2), p(2, 1), (1, 7, 7)), // 64×64 tile both ways, kernel 5 padding 2
    ]
    .into_iter()
    .enumerate()
    {
        let [ty, tdx, ..] = conv.tols();
        let tols = [ty, tdx, EXACT, sum_tol(lin.1 + 1), sum_tol(lin.2)];
        compare!(&mut g, format!("fused {conv:?} {pool:?} {lin:?}"), tols, fused_case(conv, pool, lin, 40 + i as u64));
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
    // Geometry: conv kernel 1..=6, stride 1..=3, padding 0..=2 (shapes the kernel does not fit are skipped);
    // pool kernel 1..=4 (at most the input), stride 1..=3.
    let geom = (1usize..7, 1usize..4, 0usize..3, 1usize..5, 1usize..4);
    runner
        .run(&(dims, geom), |((n, c, h, w, k, seed), (ks, stride, pad, pk, ps))| {
            let g = &mut *g.borrow_mut();
            let seed = seed % 1000;
            check_conv(g, unit([n, c, h, w, k]), seed);
            let cv = geo([n, c, h, w, k], ks, stride, pad);
            if cv.geom.out_size(h, ks).is_some() && cv.geom.out_size(w, ks).is_some() {
                check_conv(g, cv, seed);
            }
            check_linear(g, (n * h, c * w, k), &[n * h, c * w], seed);
            check_pool(g, [n, c, h, w], PoolGeom::TWO, seed % 2 == 0, seed);
            check_pool(g, [n, c, h, w], PoolGeom { kernel: pk.min(h).min(w), stride: ps }, seed % 2 == 1, seed);
            Ok(())
        })
        .unwrap();
}
