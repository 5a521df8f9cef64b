//! CPU reference ops through the `Backend` trait on odd shapes and batch 1: conv against a direct
//! quadruple loop, pooling tie rule, shape errors. (The optimizer ops: `cpu_optim.rs`.)

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use wgtrain::backend::{Backend, ConvGeom, PoolGeom};
use wgtrain::cpu::CpuBackend;
use wgtrain::tolerance::Tolerance;

fn rand_vec(seed: u64, n: usize) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
}

/// A convolution's sizes for the direct loops: x [n,c,h,w], w [k,c,ks,ks], stride, padding.
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

impl Conv {
    fn out(&self) -> (usize, usize) {
        (self.geom.out_size(self.h, self.ks).unwrap(), self.geom.out_size(self.w, self.ks).unwrap())
    }

    /// Every (output index, input index, weight index) triple of the convolution, from the definition:
    /// y[n,k,i,j] += w[k,c,u,v]·x[n,c,i·s−p+u, j·s−p+v] wherever that x index is inside the image.
    fn terms(&self) -> Vec<(usize, usize, usize)> {
        let (ho, wo) = self.out();
        let (s, p) = (self.geom.stride as isize, self.geom.padding as isize);
        let mut t = Vec::new();
        for (n, k, i, j) in grid4(self.n, self.k, ho, wo) {
            for (_, c, u, v) in grid4(1, self.c, self.ks, self.ks) {
                let (hh, ww) = (i as isize * s - p + u as isize, j as isize * s - p + v as isize);
                if hh < 0 || ww < 0 || hh >= self.h as isize || ww >= self.w as isize {
                    continue;
                }
                let xi = ((n * self.c + c) * self.h + hh as usize) * self.w + ww as usize;
                t.push((((n * self.k + k) * ho + i) * wo + j, xi, ((k * self.c + c) * self.ks + u) * self.ks + v));
            }
        }
        t
    }
}

fn grid4(a: usize, b: usize, c: usize, d: usize) -> impl Iterator<Item = (usize, usize, usize, usize)> {
    (0..a).flat_map(move |a| (0..b).flat_map(move |b| (0..c).flat_map(move |c| (0..d).map(move |d| (a, b, c, d)))))
}

/// Forward and both backward ops of `cv` through the CPU backend against direct loops over `terms()` in
/// f64: y = b + Σ w·x, dx = Σ w·dy, dw = Σ dy·x, db = Σ dy.
fn check_conv_direct(be: &mut CpuBackend, cv: Conv, seed: u64) {
    let Conv { n, c, h, w, k, ks, geom } = cv;
    let (ho, wo) = cv.out();
    let (x, wt, b, dy) = (
        rand_vec(seed, n * c * h * w),
        rand_vec(seed + 1, k * c * ks * ks),
        rand_vec(seed + 2, k),
        rand_vec(seed + 3, n * k * ho * wo),
    );
    let (mut y, mut dx, mut dw) = (vec![0.0f64; dy.len()], vec![0.0f64; x.len()], vec![0.0f64; wt.len()]);
    // Output (n, k, i, j) sits at index ((n·K + k)·Ho + i)·Wo + j, so its channel is (index / (Ho·Wo)) mod K.
    let chan = |i: usize| i / (ho * wo) % k;
    for (i, v) in y.iter_mut().enumerate() {
        *v = b[chan(i)] as f64;
    }
    for (yi, xi, wi) in cv.terms() {
        y[yi] += wt[wi] as f64 * x[xi] as f64;
        dx[xi] += wt[wi] as f64 * dy[yi] as f64;
        dw[wi] += dy[yi] as f64 * x[xi] as f64;
    }
    let mut db = vec![0.0f64; k];
    for (i, &g) in dy.iter().enumerate() {
        db[chan(i)] += g as f64;
    }
    let xt = be.tensor(&x, &[n, c, h, w], "x").unwrap();
    let wtt = be.tensor(&wt, &[k, c, ks, ks], "w").unwrap();
    let bt = be.tensor(&b, &[k], "b").unwrap();
    let dyt = be.tensor(&dy, &[n, k, ho, wo], "dy").unwrap();
    let mut yt = be.zeros(&[n, k, ho, wo], "y").unwrap();
    // Outputs start dirty: every element must be overwritten (padding-only positions included).
    let mut dxt = be.tensor(&vec![7.0; x.len()], &[n, c, h, w], "dx").unwrap();
    let mut dwt = be.tensor(&vec![7.0; wt.len()], &[k, c, ks, ks], "dw").unwrap();
    let mut dbt = be.tensor(&vec![7.0; k], &[k], "db").unwrap();
    be.conv2d(&xt, &wtt, &bt, geom, &mut yt).unwrap();
    be.conv2d_backward_input(&dyt, &wtt, geom, &mut dxt).unwrap();
    be.conv2d_backward_weight(&xt, &dyt, geom, &mut dwt, &mut dbt).unwrap();
    // Sums of at most 9c (forward), 25k (dx) or n·Ho·Wo (dw, db) products of values in [-1,1]: the f32 error
    // is ~u·√terms·‖terms‖, far below 1e-5·(1 + |v|) for these sizes (the largest sum, dw of a 45×65 image,
    // has ~3000 terms: ≲ 3000·6e-8·0.3 ≈ 5e-5·|typical| worst case), while a wrong index is off by O(1).
    let tol = |terms: usize| Tolerance::new(1e-5 * (terms as f64).sqrt().max(1.0) / 4.0, 1e-5);
    let what = format!("{cv:?}");
    tol(c * ks * ks).assert(&format!("conv2d y {what}"), &be.read(&yt).unwrap(), &y);
    tol(k * ks * ks).assert(&format!("conv2d dx {what}"), &be.read(&dxt).unwrap(), &dx);
    tol(n * ho * wo).assert(&format!("conv2d dw {what}"), &be.read(&dwt).unwrap(), &dw);
    tol(n * ho * wo).assert(&format!("conv2d db {what}"), &be.read(&dbt).unwrap(), &db);
}

#[test]
fn conv2d_matches_direct_loops_on_odd_shapes() {
    let mut be = CpuBackend::new();
    let unit = |n, c, h, w, k| Conv { n, c, h, w, k, ks: 3, geom: ConvGeom::UNIT };
    for (i, cv) in [unit(1, 1, 3, 3, 1), unit(1, 1, 45, 65, 7), unit(2, 3, 7, 7, 5), unit(1, 32, 26, 26, 64)]
        .into_iter()
        .enumerate()
    {
        check_conv_direct(&mut be, cv, 10 * i as u64);
    }
}

#[test]
fn conv2d_with_stride_padding_and_kernel_size_matches_direct_loops() {
    let mut be = CpuBackend::new();
    let g = |stride, padding| ConvGeom { stride, padding };
    let cases = [
        Conv { n: 1, c: 7, h: 45, w: 65, k: 5, ks: 3, geom: g(2, 1) }, // stride 2 padding 1, batch 1, odd sizes
        Conv { n: 1, c: 7, h: 45, w: 65, k: 3, ks: 5, geom: g(1, 2) }, // kernel 5 padding 2
        Conv { n: 2, c: 3, h: 10, w: 9, k: 4, ks: 5, geom: g(2, 2) },
        Conv { n: 3, c: 2, h: 8, w: 11, k: 2, ks: 1, geom: g(1, 3) }, // padding wider than the kernel
        Conv { n: 1, c: 2, h: 9, w: 13, k: 3, ks: 2, geom: g(3, 0) }, // stride > kernel: skipped inputs
        Conv { n: 2, c: 1, h: 3, w: 2, k: 2, ks: 4, geom: g(1, 1) },  // kernel larger than the input
        Conv { n: 5, c: 4, h: 6, w: 6, k: 3, ks: 7, geom: g(4, 3) },  // 2×2 outputs of big windows
    ];
    for (i, cv) in cases.into_iter().enumerate() {
        check_conv_direct(&mut be, cv, 100 + 10 * i as u64);
    }
}

#[test]
fn conv2d_geometry_errors_are_shape_errors() {
    let mut be = CpuBackend::new();
    let x = be.zeros(&[1, 2, 5, 6], "x").unwrap();
    let b = be.zeros(&[3], "b").unwrap();
    let w7 = be.zeros(&[3, 2, 7, 7], "w7").unwrap();
    let w3 = be.zeros(&[3, 2, 3, 3], "w3").unwrap();
    let w32 = be.zeros(&[3, 2, 3, 2], "w32").unwrap();
    let err = |r: wgtrain::Result<()>| r.unwrap_err().to_string();
    // 7×7 does not fit 5×6 without padding; with padding 1 it does (→ 1×2).
    let mut y = be.zeros(&[1, 3, 1, 2], "y").unwrap();
    assert!(err(be.conv2d(&x, &w7, &b, ConvGeom::UNIT, &mut y)).contains("does not fit"));
    be.conv2d(&x, &w7, &b, ConvGeom { stride: 1, padding: 1 }, &mut y).unwrap();
    assert!(err(be.conv2d(&x, &w3, &b, ConvGeom { stride: 0, padding: 0 }, &mut y)).contains("conv2d"));
    assert!(err(be.conv2d(&x, &w32, &b, ConvGeom::UNIT, &mut y)).contains("weight"));
    // Stride 2, padding 1: 5×6 → 3×3; a 3×4 output is refused by all three ops.
    let mut y = be.zeros(&[1, 3, 3, 4], "y").unwrap();
    let geom = ConvGeom { stride: 2, padding: 1 };
    assert!(err(be.conv2d(&x, &w3, &b, geom, &mut y)).contains("expected [1, 3, 3, 3]"));
    let mut dx = be.zeros(&[1, 2, 5, 6], "dx").unwrap();
    assert!(err(be.conv2d_backward_input(&y, &w3, geom, &mut dx)).contains("conv2d_backward_input"));
    let (mut dw, mut db) = (be.zeros(&[3, 2, 3, 3], "dw").unwrap(), be.zeros(&[3], "db").unwrap());
    assert!(err(be.conv2d_backward_weight(&x, &y, geom, &mut dw, &mut db)).contains("conv2d_backward_weight"));
    // Pooling: window larger than the input, stride 0, wrong output, dx shaped unlike x.
    let mut p = be.zeros(&[1, 2, 2, 2], "p").unwrap();
    assert!(err(be.max_pool2d(&x, PoolGeom { kernel: 6, stride: 1 }, &mut p)).contains("does not fit"));
    assert!(err(be.max_pool2d(&x, PoolGeom { kernel: 2, stride: 0 }, &mut p)).contains("max_pool2d"));
    assert!(err(be.max_pool2d(&x, PoolGeom { kernel: 3, stride: 1 }, &mut p)).contains("max_pool2d"));
    be.max_pool2d(&x, PoolGeom { kernel: 3, stride: 2 }, &mut p).unwrap();
    let mut dx_bad = be.zeros(&[1, 2, 5, 5], "dx").unwrap();
    assert!(err(be.max_pool2d_backward(&x, &p, PoolGeom { kernel: 3, stride: 2 }, &mut dx_bad)).contains("dx"));
}

#[test]
fn maxpool_ties_route_to_first_max() {
    let mut be = CpuBackend::new();
    // One 2×2 window, all equal: PyTorch sends the gradient to the top-left element.
    let x = be.tensor(&[1.0; 4], &[1, 1, 2, 2], "x").unwrap();
    let dy = be.tensor(&[5.0], &[1, 1, 1, 1], "dy").unwrap();
    let mut dx = be.zeros(&[1, 1, 2, 2], "dx").unwrap();
    be.max_pool2d_backward(&x, &dy, PoolGeom::TWO, &mut dx).unwrap();
    assert_eq!(be.read(&dx).unwrap(), vec![5.0, 0.0, 0.0, 0.0]);
    // Odd sizes floor: a 5×3 plane pools to 2×1, ignoring the last row and column.
    let x = be.tensor(&(0..15).map(|v| v as f32).collect::<Vec<_>>(), &[1, 1, 5, 3], "x").unwrap();
    let mut y = be.zeros(&[1, 1, 2, 1], "y").unwrap();
    be.max_pool2d(&x, PoolGeom::TWO, &mut y).unwrap();
    assert_eq!(be.read(&y).unwrap(), vec![4.0, 10.0]);
}

/// Overlapping windows, by hand. x (3×3) pooled by 2×2 windows at stride 1 into 2×2:
/// ```text
/// 1 9 1      windows: [1 9; 2 3] → 9 (x[0,1])   [9 1; 3 9] → 9 (x[0,1], first max; x[1,2] ties later)
/// 2 3 9               [2 3; 4 4] → 4 (x[2,0])   [3 9; 4 0] → 9 (x[1,2])
/// 4 4 0
/// ```
/// so dx[0,1] = dy0 + dy1, dx[1,2] = dy3, dx[2,0] = dy2 (the first of the tied 4s).
#[test]
fn maxpool_overlapping_windows_accumulate() {
    let mut be = CpuBackend::new();
    let x = be.tensor(&[1.0, 9.0, 1.0, 2.0, 3.0, 9.0, 4.0, 4.0, 0.0], &[1, 1, 3, 3], "x").unwrap();
    let geom = PoolGeom { kernel: 2, stride: 1 };
    let mut y = be.zeros(&[1, 1, 2, 2], "y").unwrap();
    be.max_pool2d(&x, geom, &mut y).unwrap();
    assert_eq!(be.read(&y).unwrap(), vec![9.0, 9.0, 4.0, 9.0]);
    let dy = be.tensor(&[1.0, 10.0, 100.0, 1000.0], &[1, 1, 2, 2], "dy").unwrap();
    let mut dx = be.tensor(&[7.0; 9], &[1, 1, 3, 3], "dx").unwrap();
    be.max_pool2d_backward(&x, &dy, geom, &mut dx).unwrap();
    assert_eq!(be.read(&dx).unwrap(), vec![0.0, 11.0, 0.0, 0.0, 0.0, 1000.0, 100.0, 0.0, 0.0]);
    // NaN wins its windows (and a later NaN replaces an earlier one, as in PyTorch's scan).
    let x = be.tensor(&[1.0, f32::NAN, 5.0, 2.0, 3.0, 9.0, 4.0, 4.0, 0.0], &[1, 1, 3, 3], "x").unwrap();
    be.max_pool2d(&x, geom, &mut y).unwrap();
    let got = be.read(&y).unwrap();
    assert!(got[0].is_nan() && got[1].is_nan() && got[2] == 4.0 && got[3] == 9.0, "{got:?}");
    // Pool 3 stride 2 over a 5×5 plane of distinct values: each window's max is its bottom-right element;
    // the centre element x[2,2] is the bottom-right of window (0,0) only.
    let xv: Vec<f32> = (0..25).map(|v| v as f32).collect();
    let x = be.tensor(&xv, &[1, 1, 5, 5], "x").unwrap();
    let geom = PoolGeom { kernel: 3, stride: 2 };
    be.max_pool2d(&x, geom, &mut y).unwrap();
    assert_eq!(be.read(&y).unwrap(), vec![12.0, 14.0, 22.0, 24.0]);
}

#[test]
fn linear_on_batch1_and_odd_sizes() {
    let mut be = CpuBackend::new();
    for (n, i, o) in [(1, 1, 1), (1, 45, 65), (7, 13, 10)] {
        let (x, w, b) = (rand_vec(4, n * i), rand_vec(5, o * i), rand_vec(6, o));
        let xt = be.tensor(&x, &[n, i], "x").unwrap();
        let wt = be.tensor(&w, &[o, i], "w").unwrap();
        let bt = be.tensor(&b, &[o], "b").unwrap();
        let mut y = be.zeros(&[n, o], "y").unwrap();
        be.linear(&xt, &wt, &bt, &mut y).unwrap();
        let want: Vec<f64> = (0..n * o)
            .map(|idx| {
                b[idx % o] as f64 + (0..i).map(|k| x[idx / o * i + k] as f64 * w[idx % o * i + k] as f64).sum::<f64>()
            })
            .collect();
        // i ≤ 45 products in [-1,1]: rounding ≤ 45·6e-8·45 ≈ 1.2e-4 worst case, typically far less.
        Tolerance::new(2e-5, 1e-5).assert("linear", &be.read(&y).unwrap(), &want);
    }
}

#[test]
fn shape_errors_are_errors_not_panics() {
    let mut be = CpuBackend::new();
    let x = be.zeros(&[1, 1, 5, 5], "x").unwrap();
    let w = be.zeros(&[2, 3, 3, 3], "w").unwrap();
    let b = be.zeros(&[2], "b").unwrap();
    let mut y = be.zeros(&[1, 2, 3, 3], "y").unwrap();
    let err = be.conv2d(&x, &w, &b, ConvGeom::UNIT, &mut y).unwrap_err().to_string();
    assert!(err.contains("conv2d"), "{err}");
    let logits = be.zeros(&[2, 3], "z").unwrap();
    let mut dz = be.zeros(&[2, 3], "dz").unwrap();
    let mut losses = be.zeros(&[1], "l").unwrap();
    let err = be.softmax_xent(&logits, &vec![0, 3], &mut dz, &mut losses, 0).unwrap_err().to_string();
    assert!(err.contains("label 3"), "{err}");
}

/// Each fused ReLU op equals its unfused sequence bit for bit (the ReLU only selects values), NaN included.
#[test]
fn fused_relu_ops_equal_the_unfused_sequence() {
    let mut be = CpuBackend::new();
    let (n, c, h, w, k) = (2, 3, 9, 8, 4);
    let mut xv = rand_vec(1, n * c * h * w);
    xv[5] = f32::NAN; // PyTorch's ReLU propagates NaN
    let relu_out: Vec<f32> = rand_vec(2, n * c * h * w).into_iter().map(|v| v.max(0.0)).collect();
    let mut t = |v: &[f32], s: &[usize]| be.tensor(v, s, "t").unwrap();
    let x = t(&xv, &[n, c, h, w]);
    let wt = t(&rand_vec(3, k * c * 9), &[k, c, 3, 3]);
    let b = t(&rand_vec(4, k), &[k]);
    let dy = t(&rand_vec(5, n * k * (h - 2) * (w - 2)), &[n, k, h - 2, w - 2]);
    let mask = t(&relu_out, &[n, c, h, w]);
    let dp = t(&rand_vec(6, n * c * (h / 2) * (w / 2)), &[n, c, h / 2, w / 2]);
    let (lx, lw, lb, ldy) =
        (t(&xv[..12], &[3, 4]), t(&rand_vec(7, 20), &[5, 4]), t(&rand_vec(8, 5), &[5]), t(&rand_vec(9, 15), &[3, 5]));
    let lmask = t(&relu_out[..12], &[3, 4]);
    let z = |be: &mut CpuBackend, s: &[usize]| be.zeros(s, "z").unwrap();
    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
    let mut pairs: Vec<(&str, Vec<f32>, Vec<f32>)> = Vec::new();

    let (mut fused, mut pre, mut post) =
        (z(&mut be, &[n, k, h - 2, w - 2]), z(&mut be, &[n, k, h - 2, w - 2]), z(&mut be, &[n, k, h - 2, w - 2]));
    be.conv2d_relu(&x, &wt, &b, ConvGeom::UNIT, &mut fused).unwrap();
    be.conv2d(&x, &wt, &b, ConvGeom::UNIT, &mut pre).unwrap();
    be.relu(&pre, &mut post).unwrap();
    pairs.push(("conv2d_relu", fused.data.clone(), post.data.clone()));

    let (mut fused, mut pre, mut post) =
        (z(&mut be, &[n, c, h, w]), z(&mut be, &[n, c, h, w]), z(&mut be, &[n, c, h, w]));
    be.conv2d_backward_input_relu(&dy, &wt, &mask, ConvGeom::UNIT, &mut fused).unwrap();
    be.conv2d_backward_input(&dy, &wt, ConvGeom::UNIT, &mut pre).unwrap();
    be.relu_backward(&mask, &pre, &mut post).unwrap();
    pairs.push(("conv2d_backward_input_relu", fused.data.clone(), post.data.clone()));

    let (mut fused, mut pre, mut post) =
        (z(&mut be, &[n, c, h, w]), z(&mut be, &[n, c, h, w]), z(&mut be, &[n, c, h, w]));
    be.max_pool2d_backward_relu(&mask, &dp, PoolGeom::TWO, &mut fused).unwrap();
    be.max_pool2d_backward(&mask, &dp, PoolGeom::TWO, &mut pre).unwrap();
    be.relu_backward(&mask, &pre, &mut post).unwrap();
    pairs.push(("max_pool2d_backward_relu", fused.data.clone(), post.data.clone()));

    let (mut fused, mut pre, mut post) = (z(&mut be, &[3, 5]), z(&mut be, &[3, 5]), z(&mut be, &[3, 5]));
    be.linear_relu(&lx, &lw, &lb, &mut fused).unwrap();
    be.linear(&lx, &lw, &lb, &mut pre).unwrap();
    be.relu(&pre, &mut post).unwrap();
    assert!(post.data.iter().any(|v| v.is_nan()), "the NaN input should reach the linear output");
    pairs.push(("linear_relu", fused.data.clone(), post.data.clone()));

    let (mut fused, mut pre, mut post) = (z(&mut be, &[3, 4]), z(&mut be, &[3, 4]), z(&mut be, &[3, 4]));
    be.linear_backward_input_relu(&ldy, &lw, &lmask, &mut fused).unwrap();
    be.linear_backward_input(&ldy, &lw, &mut pre).unwrap();
    be.relu_backward(&lmask, &pre, &mut post).unwrap();
    pairs.push(("linear_backward_input_relu", fused.data.clone(), post.data.clone()));

    for (op, fused, unfused) in pairs {
        assert_eq!(bits(&fused), bits(&unfused), "{op}");
        assert!(fused.contains(&0.0) && fused.iter().any(|&v| v != 0.0), "{op}: the mask should bite");
    }
    let wrong = z(&mut be, &[n, c, h, w - 1]);
    let mut dx = z(&mut be, &[n, c, h, w]);
    let err = be.conv2d_backward_input_relu(&dy, &wt, &wrong, ConvGeom::UNIT, &mut dx).unwrap_err().to_string();
    assert!(err.contains("mask"), "{err}");
}
