//! The fused classifier head (`Backend::linear_softmax_xent`, head.wgsl): the last linear layer, softmax
//! cross-entropy and the layer's backward in two dispatches.
//!
//! - It does the arithmetic of the ops it replaces term for term, so on the GPU it must equal them
//!   (`linear_softmax_xent_ops`) bit for bit — logits, dlogits, the loss, dw, db and dx, masked or not, with a
//!   member axis — at shapes where those ops do not split k (batch < 512).
//! - Against the CPU reference: the tolerances of `gpu_kernels.rs` (sums of K terms: `sum_tol`; softmax:
//!   exp/log a few ULP off), at the edges: one class, 64 classes (the most it handles), one in-feature, a layer
//!   that is the model's first (no dx), and 65 classes, where the launcher falls back to the ops.
//! - Two dispatches where it applies, the four ops' where it does not.
mod gpu_common;

use gpu_common::{gpu_or_skip, rand_vec};
use wgtrain::backend::{Backend, Head, linear_softmax_xent_ops};
use wgtrain::cpu::CpuBackend;
use wgtrain::gpu::GpuBackend;
use wgtrain::tolerance::Tolerance;

const U: f64 = 1.0 / (1u64 << 24) as f64;

fn sum_tol(k: usize) -> Tolerance {
    let k = k.max(1) as f64;
    Tolerance::new(10.0 * k * U, k * U)
}
const SOFTMAX_TOL: Tolerance = Tolerance::new(1e-6, 1e-5);

#[derive(Clone, Copy, Debug)]
struct Shape {
    n: usize,
    l: usize,
    i: usize,
    members: usize,
    relu_input: bool,
    with_dx: bool,
}

/// Every output of the head on `shape`: through the backend's op (`fused`) or the ops it stands for. dw and db
/// are views of one gradient set, as a model's are; x holds negative values, so a mask matters.
fn head_case<B: Backend>(b: &mut B, s: Shape, fused: bool, seed: u64) -> Vec<Vec<f32>> {
    let (n, l, i, p) = (s.n, s.l, s.i, s.members);
    let mut x = b.zeros_members(p, &[n, i], "x").unwrap();
    b.write(&mut x, &rand_vec(seed, p * n * i)).unwrap();
    let labels: Vec<u32> = (0..n as u32).map(|r| (r * 7 + seed as u32) % l as u32).collect();
    let y = b.indices(&labels, "y").unwrap();
    let names = ["w".to_string(), "b".to_string()];
    let mut params = b.zeros_packed_members(p, &[vec![l, i], vec![l]], &names).unwrap();
    b.write(&mut params[0], &rand_vec(seed + 1, p * l * i)).unwrap();
    b.write(&mut params[1], &rand_vec(seed + 2, p * l)).unwrap();
    let grad_names = ["w.grad".to_string(), "b.grad".to_string()];
    let mut grads = b.zeros_packed_members(p, &[vec![l, i], vec![l]], &grad_names).unwrap();
    let mut logits = b.zeros_members(p, &[n, l], "logits").unwrap();
    let mut dlogits = b.zeros_members(p, &[n, l], "dlogits").unwrap();
    let mut losses = b.zeros_members(p, &[4], "losses").unwrap();
    let mut dx = b.zeros_members(p, &[n, i], "dx").unwrap();
    b.write(&mut dx, &vec![7.0; p * n * i]).unwrap();
    let [dw, db] = grads.get_disjoint_mut([0, 1]).unwrap();
    let head = Head {
        x: &x,
        w: &params[0],
        b: &params[1],
        labels: &y,
        relu_input: s.relu_input,
        logits: &mut logits,
        dlogits: &mut dlogits,
        losses: &mut losses,
        slot: 2,
        dw,
        db,
        dx: s.with_dx.then_some(&mut dx),
    };
    if fused {
        b.linear_softmax_xent(head).unwrap()
    } else {
        linear_softmax_xent_ops(b, head).unwrap()
    }
    [&logits, &dlogits, &losses, &grads[0], &grads[1], &dx].iter().map(|t| b.read(t).unwrap()).collect()
}

const NAMES: [&str; 6] = ["logits", "dlogits", "losses", "dw", "db", "dx"];

#[test]
fn fused_head_equals_the_ops_it_replaces_bit_for_bit() {
    let Some(mut g) = gpu_or_skip("fused_head_equals_the_ops_it_replaces_bit_for_bit") else { return };
    let shapes = [
        Shape { n: 128, l: 10, i: 128, members: 1, relu_input: true, with_dx: true }, // the sample CNN's fc2
        Shape { n: 37, l: 10, i: 128, members: 3, relu_input: true, with_dx: true },
        Shape { n: 300, l: 3, i: 20, members: 2, relu_input: false, with_dx: true }, // > 256 rows: strided loss
        Shape { n: 17, l: 64, i: 5, members: 1, relu_input: false, with_dx: false },
    ];
    for (k, s) in shapes.into_iter().enumerate() {
        let want = head_case(&mut g, s, false, 10 + k as u64);
        let got = head_case(&mut g, s, true, 10 + k as u64);
        for ((name, w), gv) in NAMES.iter().zip(&want).zip(&got) {
            let same = w.len() == gv.len() && w.iter().zip(gv).all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{s:?}: fused {name} differs from the unfused ops'");
        }
    }
}

#[test]
fn fused_head_matches_cpu_at_the_edges() {
    let Some(mut g) = gpu_or_skip("fused_head_matches_cpu_at_the_edges") else { return };
    let shapes = [
        Shape { n: 5, l: 1, i: 1, members: 1, relu_input: true, with_dx: true },
        Shape { n: 7, l: 64, i: 33, members: 2, relu_input: true, with_dx: true },
        Shape { n: 9, l: 10, i: 784, members: 1, relu_input: false, with_dx: false }, // the model's first layer
        Shape { n: 33, l: 65, i: 12, members: 2, relu_input: true, with_dx: true },   // too many classes: the ops
    ];
    for (k, s) in shapes.into_iter().enumerate() {
        let seed = 30 + k as u64;
        let want = head_case(&mut CpuBackend::new(), s, true, seed);
        let got = head_case(&mut g, s, true, seed);
        // logits: i + 1 terms; dlogits, loss: softmax; dw, db: n terms (of dlogits ≤ 1/n); dx: l terms.
        let tols = [sum_tol(s.i + 1), SOFTMAX_TOL, SOFTMAX_TOL, sum_tol(s.n), sum_tol(s.n), sum_tol(s.l)];
        for ((name, t), (w, gv)) in NAMES.iter().zip(tols).zip(want.iter().zip(&got)) {
            t.assert(&format!("{s:?} {name}"), gv, w);
        }
    }
}

#[test]
fn fused_head_is_two_dispatches_where_it_applies() {
    let Some(mut g) = gpu_or_skip("fused_head_is_two_dispatches_where_it_applies") else { return };
    if g.start_profiling().is_err() {
        return eprintln!("*** no timestamp queries inside passes: dispatch count not checked ***");
    }
    let labels = |g: &mut GpuBackend, s: Shape| {
        head_case(g, s, true, 1);
        g.take_profile().unwrap().into_iter().map(|d| d.label).collect::<Vec<_>>()
    };
    let fits = Shape { n: 37, l: 10, i: 128, members: 2, relu_input: true, with_dx: true };
    let fused = labels(&mut g, fits);
    let heads: Vec<&String> = fused.iter().filter(|l| l.starts_with("Head/")).collect();
    assert_eq!(heads.len(), 2, "{fused:#?}");
    assert!(heads[0].starts_with("Head/Forward+Mask ") && heads[1].starts_with("Head/BackwardWeight "), "{heads:?}");
    let wide = labels(&mut g, Shape { l: 65, ..fits });
    assert!(wide.iter().all(|l| !l.starts_with("Head/")), "{wide:#?}");
    assert!(wide.iter().any(|l| l.starts_with("SoftmaxXent/Forward ")), "{wide:#?}");
}
