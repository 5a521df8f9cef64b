//! CPU reference ops through the `Backend` trait on odd shapes and batch 1: conv against a direct
//! quadruple loop, pooling tie rule, shape errors. (The optimizer ops: `cpu_optim.rs`.)

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use wgtrain::backend::Backend;
use wgtrain::cpu::CpuBackend;
use wgtrain::tolerance::Tolerance;

fn rand_vec(seed: u64, n: usize) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
}

/// y[n,k,i,j] = b[k] + Σ w[k,c,u,v]·x[n,c,i+u,j+v], summed in f64.
#[allow(clippy::too_many_arguments)]
fn direct_conv(n: usize, c: usize, h: usize, w: usize, k: usize, x: &[f32], wt: &[f32], b: &[f32]) -> Vec<f64> {
    let (ho, wo) = (h - 2, w - 2);
    let mut y = vec![0.0; n * k * ho * wo];
    for ni in 0..n {
        for ki in 0..k {
            for i in 0..ho {
                for j in 0..wo {
                    let mut s = b[ki] as f64;
                    for ci in 0..c {
                        for u in 0..3 {
                            for v in 0..3 {
                                s += wt[((ki * c + ci) * 3 + u) * 3 + v] as f64
                                    * x[((ni * c + ci) * h + i + u) * w + j + v] as f64;
                            }
                        }
                    }
                    y[((ni * k + ki) * ho + i) * wo + j] = s;
                }
            }
        }
    }
    y
}

#[test]
fn conv2d_matches_direct_loops_on_odd_shapes() {
    let mut be = CpuBackend::new();
    for (n, c, h, w, k) in [(1, 1, 3, 3, 1), (1, 1, 45, 65, 7), (2, 3, 7, 7, 5), (1, 32, 26, 26, 64)] {
        let x = rand_vec(1, n * c * h * w);
        let wt = rand_vec(2, k * c * 9);
        let b = rand_vec(3, k);
        let xt = be.tensor(&x, &[n, c, h, w], "x").unwrap();
        let wtt = be.tensor(&wt, &[k, c, 3, 3], "w").unwrap();
        let bt = be.tensor(&b, &[k], "b").unwrap();
        let mut y = be.zeros(&[n, k, h - 2, w - 2], "y").unwrap();
        be.conv2d(&xt, &wtt, &bt, &mut y).unwrap();
        // Sums of 9c products of values in [-1,1]: f32 rounding error ≤ 9c·2⁻²⁴·Σ|terms| ≤ 9c·6e-8·9c;
        // 1e-5 + 1e-5·|y| covers c ≤ 32 with margin while a wrong index is off by O(1).
        Tolerance::new(1e-5, 1e-5).assert("conv2d", &be.read(&y).unwrap(), &direct_conv(n, c, h, w, k, &x, &wt, &b));
    }
}

#[test]
fn maxpool_ties_route_to_first_max() {
    let mut be = CpuBackend::new();
    // One 2×2 window, all equal: PyTorch sends the gradient to the top-left element.
    let x = be.tensor(&[1.0; 4], &[1, 1, 2, 2], "x").unwrap();
    let dy = be.tensor(&[5.0], &[1, 1, 1, 1], "dy").unwrap();
    let mut dx = be.zeros(&[1, 1, 2, 2], "dx").unwrap();
    be.maxpool2_backward(&x, &dy, &mut dx).unwrap();
    assert_eq!(be.read(&dx).unwrap(), vec![5.0, 0.0, 0.0, 0.0]);
    // Odd sizes floor: a 5×3 plane pools to 2×1, ignoring the last row and column.
    let x = be.tensor(&(0..15).map(|v| v as f32).collect::<Vec<_>>(), &[1, 1, 5, 3], "x").unwrap();
    let mut y = be.zeros(&[1, 1, 2, 1], "y").unwrap();
    be.maxpool2(&x, &mut y).unwrap();
    assert_eq!(be.read(&y).unwrap(), vec![4.0, 10.0]);
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
    let err = be.conv2d(&x, &w, &b, &mut y).unwrap_err().to_string();
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
    be.conv2d_relu(&x, &wt, &b, &mut fused).unwrap();
    be.conv2d(&x, &wt, &b, &mut pre).unwrap();
    be.relu(&pre, &mut post).unwrap();
    pairs.push(("conv2d_relu", fused.data.clone(), post.data.clone()));

    let (mut fused, mut pre, mut post) =
        (z(&mut be, &[n, c, h, w]), z(&mut be, &[n, c, h, w]), z(&mut be, &[n, c, h, w]));
    be.conv2d_backward_input_relu(&dy, &wt, &mask, &mut fused).unwrap();
    be.conv2d_backward_input(&dy, &wt, &mut pre).unwrap();
    be.relu_backward(&mask, &pre, &mut post).unwrap();
    pairs.push(("conv2d_backward_input_relu", fused.data.clone(), post.data.clone()));

    let (mut fused, mut pre, mut post) =
        (z(&mut be, &[n, c, h, w]), z(&mut be, &[n, c, h, w]), z(&mut be, &[n, c, h, w]));
    be.maxpool2_backward_relu(&mask, &dp, &mut fused).unwrap();
    be.maxpool2_backward(&mask, &dp, &mut pre).unwrap();
    be.relu_backward(&mask, &pre, &mut post).unwrap();
    pairs.push(("maxpool2_backward_relu", fused.data.clone(), post.data.clone()));

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
    let err = be.conv2d_backward_input_relu(&dy, &wt, &wrong, &mut dx).unwrap_err().to_string();
    assert!(err.contains("mask"), "{err}");
}
