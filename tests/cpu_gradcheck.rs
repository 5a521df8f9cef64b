//! Every backward op of the CPU reference, checked against central differences in f64.
//!
//! Loss = Σ r ⊙ forward(θ) with fixed random r, so the analytic gradient is backward(dy = r). With h = 1e-5 the
//! central difference has truncation error O(h²·|f'''|) ≈ 1e-10 and rounding error ≈ ε·|f|/h ≈ 1e-16·1e2/1e-5 ≈
//! 1e-9, so agreement to 1e-6·(1 + |g|) separates a right gradient from a wrong one by orders of magnitude.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use wgtrain::cpu::conv::{self, ConvDims};
use wgtrain::cpu::pool::PoolDims;
use wgtrain::cpu::{dense, loss, pool};
use wgtrain::tolerance::Tolerance;

const H: f64 = 1e-5;
const TOL: Tolerance = Tolerance::new(1e-6, 1e-6);

fn rand_vec(rng: &mut ChaCha8Rng, n: usize) -> Vec<f64> {
    (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Numeric gradient of f at x by central differences.
fn numeric(x: &[f64], f: &mut dyn FnMut(&[f64]) -> f64) -> Vec<f64> {
    let mut x = x.to_vec();
    (0..x.len())
        .map(|i| {
            let orig = x[i];
            x[i] = orig + H;
            let up = f(&x);
            x[i] = orig - H;
            let down = f(&x);
            x[i] = orig;
            (up - down) / (2.0 * H)
        })
        .collect()
}

fn check_conv(d: ConvDims, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let x = rand_vec(&mut rng, d.n * d.c * d.h * d.w);
    let w = rand_vec(&mut rng, d.k * d.c * d.ks * d.ks);
    let b = rand_vec(&mut rng, d.k);
    let ny = d.n * d.k * d.ho() * d.wo();
    let r = rand_vec(&mut rng, ny);
    let f = |x: &[f64], w: &[f64], b: &[f64]| {
        let mut y = vec![0.0; ny];
        conv::forward(&d, x, w, b, &mut y);
        dot(&y, &r)
    };
    let mut dx = vec![0.0; x.len()];
    conv::backward_input(&d, &r, &w, &mut dx);
    let (mut dw, mut db) = (vec![0.0; w.len()], vec![0.0; b.len()]);
    conv::backward_weight(&d, &x, &r, &mut dw, &mut db);
    TOL.assert("conv dx", &dx, &numeric(&x, &mut |x| f(x, &w, &b)));
    TOL.assert("conv dw", &dw, &numeric(&w, &mut |w| f(&x, w, &b)));
    TOL.assert("conv db", &db, &numeric(&b, &mut |b| f(&x, &w, b)));
}

#[test]
fn conv2d_backward_batch1_odd() {
    check_conv(ConvDims::unit(1, 1, 3, 3, 1), 1);
    check_conv(ConvDims::unit(1, 3, 7, 5, 2), 2);
}

#[test]
fn conv2d_backward_batched() {
    check_conv(ConvDims::unit(3, 2, 9, 6, 4), 3);
}

/// Stride, padding and other kernel sizes: padding and stride change which input elements each output reads
/// (and, with stride > kernel, leave some unread: their gradient must be exactly 0, which the central
/// difference confirms).
#[test]
fn conv2d_backward_with_stride_and_padding() {
    let geo = |n, c, h, w, k, ks, stride, pad| ConvDims { n, c, h, w, k, ks, stride, pad };
    check_conv(geo(1, 7, 45, 65, 3, 3, 2, 1), 20); // stride 2, padding 1, odd sizes, 7 channels, batch 1
    check_conv(geo(1, 2, 45, 65, 2, 5, 1, 2), 21); // kernel 5, padding 2 ("same")
    check_conv(geo(2, 3, 8, 7, 2, 5, 3, 2), 22); // stride 3 with padding: uneven coverage
    check_conv(geo(1, 2, 9, 10, 3, 2, 3, 0), 23); // stride > kernel: skipped inputs
    check_conv(geo(3, 2, 4, 5, 2, 1, 1, 1), 24); // 1×1 kernel with padding: a border of bias-only outputs
    check_conv(geo(1, 1, 2, 3, 1, 5, 2, 2), 25); // kernel larger than the input, fits only with padding
}

fn check_pool(planes: usize, d: PoolDims, seed: u64) {
    let (h, w) = (d.h, d.w);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // Distinct values spaced far more than 2h apart, so no window's winner changes under ±h.
    let mut x: Vec<f64> = (0..planes * h * w).map(|i| i as f64 * 0.01).collect();
    for i in (1..x.len()).rev() {
        x.swap(i, rng.random_range(0..=i));
    }
    let ny = planes * d.ho() * d.wo();
    let r = rand_vec(&mut rng, ny);
    let mut dx = vec![0.0; x.len()];
    pool::backward(planes, &d, &x, &r, &mut dx);
    let g = numeric(&x, &mut |x| {
        let mut y = vec![0.0; ny];
        pool::forward(planes, &d, x, &mut y);
        dot(&y, &r)
    });
    TOL.assert(&format!("maxpool dx {d:?}"), &dx, &g);
}

#[test]
fn maxpool_backward() {
    for (planes, h, w, seed) in [(1, 2, 2, 4), (3, 7, 9, 5), (2, 6, 4, 6)] {
        check_pool(planes, PoolDims::two(h, w), seed);
    }
}

/// Overlapping windows (stride < kernel) sum the gradients of every window an element wins; stride > kernel
/// skips elements.
#[test]
fn maxpool_backward_with_kernel_and_stride() {
    let geo = |h, w, kernel, stride| PoolDims { h, w, kernel, stride };
    check_pool(1, geo(45, 65, 3, 2), 30); // pool 3 stride 2 (overlapping), odd sizes
    check_pool(7, geo(9, 8, 2, 1), 31); // pool 2 stride 1: most elements in 4 windows
    check_pool(2, geo(11, 10, 3, 1), 32);
    check_pool(3, geo(7, 8, 2, 3), 33); // stride > kernel
    check_pool(1, geo(5, 6, 5, 2), 34); // window as tall as the input
}

#[test]
fn linear_and_relu_backward() {
    for (n, i, o, seed) in [(1, 1, 1, 7), (1, 7, 3, 8), (5, 13, 6, 9)] {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let x = rand_vec(&mut rng, n * i);
        let w = rand_vec(&mut rng, o * i);
        let b = rand_vec(&mut rng, o);
        let r = rand_vec(&mut rng, n * o);
        // loss = Σ r ⊙ relu(linear(x)); relu inputs kept away from 0 by checking the margin below.
        let f = |x: &[f64], w: &[f64], b: &[f64]| {
            let (mut y, mut z) = (vec![0.0; n * o], vec![0.0; n * o]);
            dense::linear(n, i, o, x, w, b, &mut y);
            dense::relu(&y, &mut z);
            dot(&z, &r)
        };
        let mut y = vec![0.0; n * o];
        dense::linear(n, i, o, &x, &w, &b, &mut y);
        assert!(y.iter().all(|v| v.abs() > 1e-3), "a pre-activation is too close to the ReLU kink for this seed");
        let mut z = vec![0.0; n * o];
        dense::relu(&y, &mut z);
        let mut dy = vec![0.0; n * o];
        dense::relu_backward(&z, &r, &mut dy);
        let mut dx = vec![0.0; n * i];
        dense::linear_backward_input(n, i, o, &dy, &w, &mut dx);
        let (mut dw, mut db) = (vec![0.0; o * i], vec![0.0; o]);
        dense::linear_backward_weight(n, i, o, &x, &dy, &mut dw, &mut db);
        TOL.assert("linear dx", &dx, &numeric(&x, &mut |x| f(x, &w, &b)));
        TOL.assert("linear dw", &dw, &numeric(&w, &mut |w| f(&x, w, &b)));
        TOL.assert("linear db", &db, &numeric(&b, &mut |b| f(&x, &w, b)));
    }
}

#[test]
fn softmax_xent_backward() {
    for (n, l, seed) in [(1, 1, 10), (1, 10, 11), (7, 3, 12), (4, 10, 13)] {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let z: Vec<f64> = (0..n * l).map(|_| rng.random_range(-5.0..5.0)).collect();
        let y: Vec<u32> = (0..n).map(|_| rng.random_range(0..l as u32)).collect();
        let mut dz = vec![0.0; n * l];
        loss::softmax_xent(n, l, &z, &y, &mut dz);
        let g = numeric(&z, &mut |z| loss::softmax_xent(n, l, z, &y, &mut vec![0.0; n * l]));
        TOL.assert("softmax_xent dz", &dz, &g);
    }
}

#[test]
fn softmax_xent_is_stable_for_huge_logits() {
    let z = [1000.0f32, 0.0, -1000.0, 3.0e38, 3.0e38, -3.0e38];
    let mut dz = [0.0f32; 6];
    let l = loss::softmax_xent(2, 3, &z, &[0, 1], &mut dz);
    assert!(l.is_finite() && dz.iter().all(|v| v.is_finite()), "loss {l}, dz {dz:?}");
    // Row 0: label is the max by a huge margin, so loss ≈ 0; row 1: two equal maxima, label is one: ln 2.
    assert!((l - std::f32::consts::LN_2 / 2.0).abs() < 1e-6, "mean loss {l}");
}
