//! The conv tiles sized per layer and the bias gradient folded into the weight-gradient GEMMs.
//!
//! - Every conv tile (`Tile`: 64×64, 32×128, 64×128, 128×128 and the narrow 32×16) sums each output's terms one
//!   at a time in ascending order, whatever its shape and slice depth, so forcing any tile must give the bits
//!   of the tile picked from the shape — in all three modes, on edges that cut every tile, with split-K. The
//!   picked tile itself is checked against the CPU reference in `gpu_kernels.rs`.
//! - When dw and db are views of one gradient set (as every model's are), the backward-weight dispatch writes
//!   db too, through one binding that spans both, summed in `bias_grad`'s order: so dw and db must equal the
//!   same op on separate tensors (the GEMM, then `bias_grad`) bit for bit, with one dispatch fewer; and the CPU
//!   within the tolerance of a sum of N terms (as in `gpu_kernels.rs`) — with and without split-K, with a member
//!   axis, with the bias placed before the weight in the set, and with the set's other tensors (inside the
//!   span, for members > 1) left untouched.
mod gpu_common;

use gpu_common::{gpu_or_skip, rand_vec};
use wgtrain::backend::{Backend, ConvGeom};
use wgtrain::cpu::CpuBackend;
use wgtrain::gpu::GpuBackend;
use wgtrain::gpu::kernels::Tile;
use wgtrain::tolerance::Tolerance;

const U: f64 = 1.0 / (1u64 << 24) as f64;

/// Sums of `k` products of values in [−1, 1] (see `gpu_kernels.rs`).
fn sum_tol(k: usize) -> Tolerance {
    let k = k.max(1) as f64;
    Tolerance::new(10.0 * k * U, k * U)
}

const TILES: [Tile; 5] = [Tile::Square64, Tile::M32, Tile::M64, Tile::Square128, Tile::Narrow];

/// x [n, c, h, w], weight [k, c, ks, ks], geometry.
type ConvShape = ([usize; 5], usize, ConvGeom);

fn out_shape(([n, _, h, w, k], ks, geom): ConvShape) -> [usize; 4] {
    [n, k, geom.out_size(h, ks).unwrap(), geom.out_size(w, ks).unwrap()]
}

/// y, dx (masked by a ReLU output), dx and dw of one conv on the GPU; outputs start dirty so every element
/// must be written.
fn conv_outputs(g: &mut GpuBackend, shape: ConvShape, seed: u64) -> Vec<Vec<f32>> {
    let ([n, c, h, w, k], ks, geom) = shape;
    let (xs, ws, ys) = ([n, c, h, w], [k, c, ks, ks], out_shape(shape));
    let numel = |s: &[usize]| s.iter().product::<usize>();
    let x = g.tensor(&rand_vec(seed, numel(&xs)), &xs, "x").unwrap();
    let wt = g.tensor(&rand_vec(seed + 1, numel(&ws)), &ws, "w").unwrap();
    let bias = g.tensor(&rand_vec(seed + 2, k), &[k], "b").unwrap();
    let dy = g.tensor(&rand_vec(seed + 3, numel(&ys)), &ys, "dy").unwrap();
    let mut dirty = |s: &[usize]| g.tensor(&vec![7.0; numel(s)], s, "out").unwrap();
    let (mut y, mut dxm, mut dx, mut dw, mut db) = (dirty(&ys), dirty(&xs), dirty(&xs), dirty(&ws), dirty(&[k]));
    g.conv2d_relu(&x, &wt, &bias, geom, &mut y).unwrap();
    g.conv2d_backward_input_relu(&dy, &wt, &x, geom, &mut dxm).unwrap();
    g.conv2d_backward_input(&dy, &wt, geom, &mut dx).unwrap();
    g.conv2d_backward_weight(&x, &dy, geom, &mut dw, &mut db).unwrap();
    [&y, &dxm, &dx, &dw].iter().map(|t| g.read(t).unwrap()).collect()
}

#[test]
fn every_conv_tile_gives_the_bits_of_the_picked_one() {
    let Some(mut g) = gpu_or_skip("every_conv_tile_gives_the_bits_of_the_picked_one") else { return };
    let unit = ConvGeom::UNIT;
    let shapes: [ConvShape; 6] = [
        ([1, 1, 3, 3, 1], 3, unit),                                  // a 1×1 output
        ([2, 3, 19, 23, 70], 3, unit),                               // 70 rows: two 64-row tiles, one 128
        ([1, 33, 9, 8, 17], 3, unit),                                // 33 channels: two 32-row tiles
        ([2, 3, 45, 65, 5], 3, unit),                                // dw reduces 5418 terms: split-K
        ([2, 4, 12, 12, 9], 7, ConvGeom { stride: 4, padding: 3 }),  // 7×7: k² = 49 spans slices
        ([1, 2, 30, 30, 5], 11, ConvGeom { stride: 2, padding: 5 }), // 11×11 with several carries
    ];
    for (i, shape) in shapes.into_iter().enumerate() {
        g.set_conv_tile(None);
        let picked = conv_outputs(&mut g, shape, 100 + i as u64);
        for tile in TILES {
            g.set_conv_tile(Some(tile));
            let got = conv_outputs(&mut g, shape, 100 + i as u64);
            for (j, (p, t)) in picked.iter().zip(&got).enumerate() {
                let same = p.iter().zip(t).all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{shape:?}, tile {tile:?}: output {j} differs from the picked tile's");
            }
        }
    }
}

/// dw and db of one layer's backward-weight, as views of a gradient set [before, dw, db, after] (or
/// [before, db, dw, after] when `bias_first`) with `members` copies, and of separate tensors when not
/// `packed`; returns every member's dw, db and the untouched `before` and `after` tensors.
struct Case {
    /// Conv ([n, c, h, w, k], ks) or, with ks = 0, linear ([n, i, _, _, o]).
    dims: [usize; 5],
    ks: usize,
    members: usize,
    packed: bool,
    bias_first: bool,
}

fn bias_case<B: Backend>(b: &mut B, cs: &Case, seed: u64) -> Vec<Vec<f32>> {
    let [n, c, h, w, k] = cs.dims;
    let p = cs.members;
    let (xs, ws, ys): (Vec<usize>, Vec<usize>, Vec<usize>) = if cs.ks == 0 {
        (vec![n, c], vec![k, c], vec![n, k])
    } else {
        let ks = cs.ks;
        (vec![n, c, h, w], vec![k, c, ks, ks], vec![n, k, h - ks + 1, w - ks + 1])
    };
    let numel = |s: &[usize]| s.iter().product::<usize>();
    // The batch is shared (one member); dy is each member's own.
    let x = b.tensor(&rand_vec(seed, numel(&xs)), &xs, "x").unwrap();
    let mut dy = b.zeros_members(p, &ys, "dy").unwrap();
    b.write(&mut dy, &rand_vec(seed + 1, p * numel(&ys))).unwrap();
    let (mut dw, mut db, fillers) = if cs.packed {
        let (wi, bi) = if cs.bias_first { (2, 1) } else { (1, 2) };
        let mut shapes = vec![vec![3], vec![], vec![], vec![5]];
        shapes[wi] = ws.clone();
        shapes[bi] = vec![k];
        let labels: Vec<String> = (0..4).map(|i| format!("g{i}")).collect();
        let mut set = b.zeros_packed_members(p, &shapes, &labels).unwrap();
        for t in set.iter_mut() {
            let len = b.read(t).unwrap().len();
            b.write(t, &vec![7.0; len]).unwrap();
        }
        let mut set: Vec<Option<B::Tensor>> = set.into_iter().map(Some).collect();
        let (dw, db) = (set[wi].take().unwrap(), set[bi].take().unwrap());
        (dw, db, vec![set[0].take().unwrap(), set[3].take().unwrap()])
    } else {
        let mut dirty = |s: &[usize]| {
            let mut t = b.zeros_members(p, s, "out").unwrap();
            b.write(&mut t, &vec![7.0; p * numel(s)]).unwrap();
            t
        };
        (dirty(&ws), dirty(&[k]), Vec::new())
    };
    if cs.ks == 0 {
        b.linear_backward_weight(&x, &dy, &mut dw, &mut db).unwrap();
    } else {
        b.conv2d_backward_weight(&x, &dy, ConvGeom::UNIT, &mut dw, &mut db).unwrap();
    }
    let mut out = vec![b.read(&dw).unwrap(), b.read(&db).unwrap()];
    out.extend(fillers.iter().map(|t| b.read(t).unwrap()));
    out
}

#[test]
fn bias_gradient_folded_into_the_weight_gradient_matches_cpu() {
    let Some(mut g) = gpu_or_skip("bias_gradient_folded_into_the_weight_gradient_matches_cpu") else { return };
    let cases = [
        Case { dims: [2, 3, 11, 9, 5], ks: 3, members: 1, packed: true, bias_first: false }, // conv, no split
        Case { dims: [4, 1, 30, 30, 32], ks: 3, members: 1, packed: true, bias_first: false }, // conv1-like, split
        Case { dims: [2, 3, 45, 65, 70], ks: 3, members: 3, packed: true, bias_first: false }, // split, 3 members
        Case { dims: [2, 3, 11, 9, 5], ks: 3, members: 2, packed: true, bias_first: true },
        Case { dims: [2, 3, 11, 9, 5], ks: 3, members: 2, packed: false, bias_first: false }, // separate: unfused
        Case { dims: [45, 65, 0, 0, 7], ks: 0, members: 1, packed: true, bias_first: false }, // linear, no split
        Case { dims: [700, 9, 0, 0, 3], ks: 0, members: 3, packed: true, bias_first: false }, // linear, split-K
        Case { dims: [700, 9, 0, 0, 3], ks: 0, members: 2, packed: true, bias_first: true },
        Case { dims: [45, 65, 0, 0, 70], ks: 0, members: 2, packed: false, bias_first: false },
    ];
    for (i, cs) in cases.iter().enumerate() {
        let seed = 200 + i as u64;
        let want = bias_case(&mut CpuBackend::new(), cs, seed);
        let got = bias_case(&mut g, cs, seed);
        let [n, _, h, w, _] = cs.dims;
        // Terms per dw and db element: every (n, i, j) of dy.
        let terms = if cs.ks == 0 { n } else { n * (h - cs.ks + 1) * (w - cs.ks + 1) };
        let what = format!("case {i} {:?} ks={} members={}", cs.dims, cs.ks, cs.members);
        sum_tol(terms).assert(&format!("{what} dw"), &got[0], &want[0]);
        sum_tol(terms).assert(&format!("{what} db"), &got[1], &want[1]);
        for (j, filler) in got.iter().enumerate().skip(2) {
            assert!(filler.iter().all(|&v| v == 7.0), "{what}: the set's tensor {j} was written");
        }
    }
}

/// Dispatches of one op, counted by the profiler (adapters without timestamps inside passes skip: lavapipe,
/// which CI runs, has them).
fn dispatches(g: &mut GpuBackend, cs: &Case) -> Option<Vec<String>> {
    if g.start_profiling().is_err() {
        eprintln!("*** no timestamp queries inside passes: dispatch count not checked ***");
        return None;
    }
    bias_case(g, cs, 1);
    Some(g.take_profile().unwrap().into_iter().map(|d| d.label).collect())
}

#[test]
fn folded_bias_gradient_equals_bias_grad_and_takes_no_dispatch_of_its_own() {
    let Some(mut g) = gpu_or_skip("folded_bias_gradient_equals_bias_grad_and_takes_no_dispatch_of_its_own") else {
        return;
    };
    for (dims, ks) in [([2, 3, 11, 9, 5], 3), ([4, 1, 30, 30, 32], 3), ([45, 65, 0, 0, 7], 0), ([700, 9, 0, 0, 3], 0)] {
        let packed = Case { dims, ks, members: 2, packed: true, bias_first: false };
        let separate = Case { packed: false, ..packed };
        let (Some(folded), Some(unfolded)) = (dispatches(&mut g, &packed), dispatches(&mut g, &separate)) else {
            return;
        };
        // Same bits as the GEMM followed by bias_grad.
        let (a, b) = (bias_case(&mut g, &packed, 5), bias_case(&mut g, &separate, 5));
        for (what, x, y) in [("dw", &a[0], &b[0]), ("db", &a[1], &b[1])] {
            let same = x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits());
            assert!(same, "{dims:?}: folded {what} differs from the separate ops'");
        }
        let bias_kernels = |l: &[String]| l.iter().filter(|l| l.starts_with("BiasGrad ")).count();
        assert_eq!(bias_kernels(&folded), 0, "{dims:?}: {folded:#?}");
        assert_eq!(bias_kernels(&unfolded), 1, "{dims:?}: {unfolded:#?}");
        assert_eq!(folded.len() + 1, unfolded.len(), "{dims:?}: {folded:#?} vs {unfolded:#?}");
        assert!(folded.iter().any(|l| l.contains("/BackwardWeight+BiasGrad")), "{dims:?}: {folded:#?}");
    }
}
