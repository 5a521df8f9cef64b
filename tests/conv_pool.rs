//! `conv2d_relu_pool` and its backward — a conv + ReLU with its max-pools fused in — against the ops they stand
//! for (`conv2d_relu`, `max_pool2d` per pool, `max_pool2d_backward` per pool with the ReLU mask on the inner
//! one), on each backend: the pooled values, and the gradient at the conv's pre-activation, must be the ops'
//! exactly (the same sums, the same maxima, the same tie rule), here with ties on purpose (inputs and weights
//! of a few integer values, so many windows hold equal maxima, and all-zero windows after the ReLU).
//! Also: two members, a single pool, edges 2, 4 and 8, floor mode (sizes not multiples of the edge), and the
//! errors (an edge the fused op does not take, an argmax that is not a window position).
mod gpu_common;

use gpu_common::{gpu_or_skip, rand_vec};
use wgtrain::backend::{Backend, ConvGeom, PoolChain, PoolGeom};
use wgtrain::cpu::CpuBackend;

#[derive(Clone, Copy, Debug)]
struct Case {
    /// x [n, c, h, w], k output channels, 3×3 kernel, padding 1
    dims: [usize; 5],
    pools: PoolChain,
    members: usize,
    ties: bool,
}

fn values(seed: u64, len: usize, ties: bool) -> Vec<f32> {
    let v = rand_vec(seed, len);
    // Ties: a handful of small integers (exact sums), so equal maxima are common.
    if ties { v.iter().map(|x| (x * 2.5).round()).collect() } else { v }
}

/// The fused op's (y, argmax, dx) and the composed ops' (y, dx).
fn run<B: Backend>(b: &mut B, cs: Case, seed: u64) -> [Vec<f32>; 5] {
    let [n, c, h, w, k] = cs.dims;
    let p = cs.members;
    let geom = ConvGeom { stride: 1, padding: 1 };
    let (ho, wo) = (h, w);
    let e = cs.pools.edge();
    let (hp, wp) = (ho / e, wo / e);
    let x = b.tensor(&values(seed, n * c * h * w, cs.ties), &[n, c, h, w], "x").unwrap();
    let mut wt = b.zeros_members(p, &[k, c, 3, 3], "w").unwrap();
    b.write(&mut wt, &values(seed + 1, p * k * c * 9, cs.ties)).unwrap();
    let mut bias = b.zeros_members(p, &[k], "b").unwrap();
    b.write(&mut bias, &values(seed + 2, p * k, cs.ties)).unwrap();
    let mut dy = b.zeros_members(p, &[n, k, hp, wp], "dy").unwrap();
    b.write(&mut dy, &rand_vec(seed + 3, p * n * k * hp * wp)).unwrap();
    let mut zeros = |s: &[usize]| b.zeros_members(p, s, "t").unwrap();
    let (mut y, mut arg, mut dx) = (zeros(&[n, k, hp, wp]), zeros(&[n, k, hp, wp]), zeros(&[n, k, ho, wo]));
    let (mut conv, mut mid) = (zeros(&[n, k, ho, wo]), zeros(&[n, k, ho / cs.pools.inner, wo / cs.pools.inner]));
    let (mut y2, mut dmid, mut dx2) =
        (zeros(&[n, k, hp, wp]), zeros(&[n, k, ho / cs.pools.inner, wo / cs.pools.inner]), zeros(&[n, k, ho, wo]));
    b.conv2d_relu_pool(&x, &wt, &bias, geom, cs.pools, &mut y, &mut arg).unwrap();
    b.conv2d_relu_pool_backward(&y, &arg, &dy, cs.pools, &mut dx).unwrap();
    let (inner, outer) = (
        PoolGeom { kernel: cs.pools.inner, stride: cs.pools.inner },
        PoolGeom { kernel: cs.pools.outer, stride: cs.pools.outer },
    );
    b.conv2d_relu(&x, &wt, &bias, geom, &mut conv).unwrap();
    b.max_pool2d(&conv, inner, &mut mid).unwrap();
    b.max_pool2d(&mid, outer, &mut y2).unwrap();
    b.max_pool2d_backward(&mid, &dy, outer, &mut dmid).unwrap();
    b.max_pool2d_backward_relu(&conv, &dmid, inner, &mut dx2).unwrap();
    [&y, &arg, &dx, &y2, &dx2].map(|t| b.read(t).unwrap())
}

const CASES: [Case; 6] = [
    Case { dims: [2, 3, 24, 24, 5], pools: PoolChain { inner: 2, outer: 2 }, members: 1, ties: true }, // the sample CNN's
    Case { dims: [2, 3, 24, 24, 5], pools: PoolChain { inner: 2, outer: 2 }, members: 1, ties: false },
    Case { dims: [1, 2, 13, 11, 70], pools: PoolChain { inner: 2, outer: 1 }, members: 2, ties: true }, // floor mode
    Case { dims: [1, 4, 17, 19, 33], pools: PoolChain { inner: 4, outer: 1 }, members: 1, ties: true },
    Case { dims: [3, 1, 16, 18, 6], pools: PoolChain { inner: 2, outer: 4 }, members: 2, ties: true }, // edge 8
    Case { dims: [1, 3, 9, 9, 32], pools: PoolChain { inner: 4, outer: 2 }, members: 1, ties: false },
];

fn check<B: Backend>(b: &mut B, backend: &str) {
    for (i, cs) in CASES.into_iter().enumerate() {
        let [y, arg, dx, y2, dx2] = run(b, cs, 40 + i as u64);
        assert_eq!(y, y2, "{backend} {cs:?}: pooled values differ from the ops'");
        assert_eq!(dx, dx2, "{backend} {cs:?}: dx differs from the ops'");
        let cells = (cs.pools.edge() * cs.pools.edge()) as f32;
        assert!(arg.iter().all(|&a| a >= 0.0 && a < cells && a.fract() == 0.0), "{backend} {cs:?}: {arg:?}");
        assert!(dx.iter().any(|&v| v != 0.0), "{backend} {cs:?}: no gradient at all");
    }
}

#[test]
fn cpu_fused_conv_relu_pools_equal_the_ops() {
    check(&mut CpuBackend::new(), "cpu");
}

#[test]
fn gpu_fused_conv_relu_pools_equal_the_ops() {
    let Some(mut g) = gpu_or_skip("gpu_fused_conv_relu_pools_equal_the_ops") else { return };
    check(&mut g, "gpu");
    // Every tile that can hold whole windows gives the same bits.
    for tile in [
        wgtrain::gpu::kernels::Tile::Square64,
        wgtrain::gpu::kernels::Tile::M64,
        wgtrain::gpu::kernels::Tile::Square128,
    ] {
        g.set_conv_tile(Some(tile));
        let [y, _, dx, y2, dx2] = run(&mut g, CASES[0], 7);
        assert_eq!((y, dx), (y2, dx2), "{tile:?}");
    }
}

fn errors<B: Backend>(b: &mut B) {
    let x = b.zeros(&[1, 1, 12, 12], "x").unwrap();
    let w = b.zeros(&[2, 1, 3, 3], "w").unwrap();
    let bias = b.zeros(&[2], "b").unwrap();
    let mut y = b.zeros(&[1, 2, 3, 3], "y").unwrap();
    let mut arg = b.zeros(&[1, 2, 3, 3], "argmax").unwrap();
    let three = PoolChain { inner: 3, outer: 1 };
    let e = b.conv2d_relu_pool(&x, &w, &bias, ConvGeom { stride: 1, padding: 1 }, three, &mut y, &mut arg).unwrap_err();
    assert!(e.to_string().contains("edges 2, 4 or 8"), "{e}");
    let two = PoolChain { inner: 2, outer: 1 };
    let e = b.conv2d_relu_pool(&x, &w, &bias, ConvGeom { stride: 1, padding: 1 }, two, &mut y, &mut arg).unwrap_err();
    assert!(e.to_string().contains("[1, 2, 3, 3]"), "wrong pooled shape must name it: {e}");
}

#[test]
fn bad_chains_and_shapes_are_errors_on_both_backends() {
    let mut cpu = CpuBackend::new();
    errors(&mut cpu);
    let y = cpu.tensor(&[1.0; 4], &[1, 1, 2, 2], "y").unwrap();
    let arg = cpu.tensor(&[0.0, 5.0, 1.5, 0.0], &[1, 1, 2, 2], "argmax").unwrap();
    let dy = cpu.zeros(&[1, 1, 2, 2], "dy").unwrap();
    let mut dx = cpu.zeros(&[1, 1, 4, 4], "dx").unwrap();
    let e = cpu.conv2d_relu_pool_backward(&y, &arg, &dy, PoolChain { inner: 2, outer: 1 }, &mut dx).unwrap_err();
    assert!(e.to_string().contains("not a position"), "{e}");
    if let Some(mut g) = gpu_or_skip("bad_chains_and_shapes_are_errors_on_both_backends") {
        errors(&mut g);
    }
}
