//! The GPU's packed sets, cursor and optimizer ops against the CPU reference, through the `Backend` trait:
//! packed views read, written and bound with their offsets; gathers and losses at changing offsets and slots
//! inside one encoder; grad_norm, sgd_update and adam_update on tensors of odd sizes (1, 7, 45·65) in several
//! groups with every option, and on seeded random sets (proptest).
//!
//! Tolerances (u = 2⁻²⁴). Copies and gathers are exact. Otherwise both backends round differently:
//! - the norm: the GPU sums the squares in f32 (per thread ≤ 16 terms, a 256-tree, then ≤ ⌈P/256⌉ partials per
//!   thread and another tree; the tests stay under 2²⁰ values so that is 1), the CPU in f64. All terms are
//!   positive, so the relative error of the sum is at most (16 + 1 + 8 + 1 + 8)·u = 34u, half that after the
//!   square root, plus WGSL's sqrt (≤ 3 ulp): [`NORM_REL`] = 24u;
//! - a clipped gradient inherits the norm's error and WGSL's division (2.5 ulp): `Clip::rel` = NORM_REL + 4u;
//! - SGD: ≤ 5 roundings per element, any a·b + c possibly fused on the GPU: rel 8u of the parameter, plus
//!   per step lr·|g|·(clip error + 8u) absolute;
//! - Adam: exp_avg is a lerp (≤ 3 roundings of values ≤ max|g|), exp_avg_sq a sum of positive terms (relative
//!   error ≤ 2·clip error + 8u per step), and the update step_size·m/denom involves sqrt (3 ulp) and two
//!   divisions (2.5 ulp each): its relative error stays below 3·clip error + 32u (v carries twice the clip error,
//!   halved by the root), and its size, lr·m̂/(√v̂ + eps), below 4·lr for gradients in [−1, 1].
mod gpu_common;

use gpu_common::{gpu_or_skip, rand_vec};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use wgtrain::backend::Backend;
use wgtrain::cpu::CpuBackend;
use wgtrain::gpu::GpuBackend;
use wgtrain::optim::{AdamGroup, AdamHyper, ClipParams, MAX_GROUPS, SgdGroup, SgdHyper};
use wgtrain::tolerance::Tolerance;

const U: f64 = 1.0 / (1u64 << 24) as f64;
const NORM_REL: f64 = 24.0 * U;
const EXACT: Tolerance = Tolerance::new(0.0, 0.0);
/// Steps every update test runs (the first with fresh state, then with state in use).
const STEPS: usize = 3;

/// Run `case` on the CPU and the GPU backend and compare output i with `tols[i]` (the last one repeats).
macro_rules! compare {
    ($gpu:expr, $what:expr, $tols:expr, $case:ident ( $($arg:expr),* )) => {{
        let want = $case(&mut CpuBackend::new(), $($arg),*);
        let got = $case($gpu, $($arg),*);
        assert_eq!(want.len(), got.len());
        let tols: &[Tolerance] = &$tols;
        for (i, (w, g)) in want.iter().zip(&got).enumerate() {
            tols[i.min(tols.len() - 1)].assert(&format!("{} output {i}", $what), g, w);
        }
    }};
}

fn packed<B: Backend>(b: &mut B, sizes: &[usize], name: &str, seed: u64) -> Vec<B::Tensor> {
    let shapes: Vec<Vec<usize>> = sizes.iter().map(|&n| vec![n]).collect();
    let labels: Vec<String> = (0..sizes.len()).map(|i| format!("{name}{i}")).collect();
    let mut set = b.zeros_packed(&shapes, &labels).unwrap();
    for (i, (t, &n)) in set.iter_mut().zip(sizes).enumerate() {
        b.write(t, &rand_vec(seed + 100 * i as u64, n)).unwrap();
    }
    set
}

fn zeros_like<B: Backend>(b: &mut B, sizes: &[usize], name: &str) -> Vec<B::Tensor> {
    let shapes: Vec<Vec<usize>> = sizes.iter().map(|&n| vec![n]).collect();
    let labels: Vec<String> = (0..sizes.len()).map(|i| format!("{name}{i}")).collect();
    b.zeros_packed(&shapes, &labels).unwrap()
}

fn read_all<B: Backend>(b: &mut B, sets: &[&[B::Tensor]]) -> Vec<Vec<f32>> {
    sets.iter().flat_map(|s| s.iter()).map(|t| b.read(t).unwrap()).collect()
}

fn uniform<B: Backend, T: bytemuck::Pod>(b: &mut B, v: &T) -> B::Uniform {
    let mut u = b.uniform(std::mem::size_of::<T>(), "hyper").unwrap();
    b.write_uniform(&mut u, bytemuck::bytes_of(v)).unwrap();
    u
}

/// Views of one packed buffer keep their own contents through write and read, ops bind them at their offsets
/// (one view written by an op, one read by an op), and the gaps between them stay zero (the norm over the whole
/// buffer would see anything written there). A dispatch must not read one view of a pack and write another:
/// WebGPU tracks usage per buffer, so that is a read-only/writable conflict.
fn views_case<B: Backend>(b: &mut B, sizes: &[usize]) -> Vec<Vec<f32>> {
    let mut set = packed(b, sizes, "v", 7);
    let x = b.tensor(&rand_vec(3, sizes[1]), &[sizes[1]], "x").unwrap();
    b.relu(&x, &mut set[1]).unwrap();
    let mut y = b.zeros(&[sizes[2]], "y").unwrap();
    b.relu(&set[2], &mut y).unwrap();
    let mut norms = b.zeros(&[1], "n").unwrap();
    b.grad_norm(&set, &mut norms, 0).unwrap();
    let mut out = read_all(b, &[&set]);
    out.push(b.read(&y).unwrap());
    out.push(b.read(&norms).unwrap());
    out
}

#[test]
fn packed_views_round_trip_and_bind_at_their_offsets() {
    let Some(mut g) = gpu_or_skip("packed_views_round_trip_and_bind_at_their_offsets") else { return };
    let sizes = [1, 7, 45 * 65, 0, 64, 65, 3];
    let mut tols = vec![EXACT; sizes.len() + 1];
    tols.push(Tolerance::new(0.0, NORM_REL));
    compare!(&mut g, "packed views", tols, views_case(&sizes));
}

/// Three batches gathered at different offsets into the same `x` inside one encoder, each copied out by an op
/// before the next gather, and each batch's loss into its own slot: every op must see its own offset and slot
/// (a cursor write landing at the submit's start would give all three the last ones).
fn cursor_case<B: Backend>(b: &mut B, in_step: bool) -> Vec<Vec<f32>> {
    let (m, d, batch) = (40, 7, 5);
    let images = b.tensor(&rand_vec(1, m * d), &[m, d], "images").unwrap();
    let labels = b.indices(&(0..m as u32).map(|i| i * 3 % d as u32).collect::<Vec<_>>(), "labels").unwrap();
    let order = b.indices(&(0..m as u32).map(|i| (i * 17 + 5) % m as u32).collect::<Vec<_>>(), "order").unwrap();
    let mut x = b.zeros(&[batch, d], "x").unwrap();
    let mut y = b.indices(&vec![0; batch], "y").unwrap();
    let mut dz = b.zeros(&[batch, d], "dz").unwrap();
    let mut losses = b.zeros(&[4], "losses").unwrap();
    let mut copies: Vec<B::Tensor> = (0..3).map(|_| b.zeros(&[batch, d], "copy").unwrap()).collect();
    if in_step {
        b.begin_step().unwrap();
    }
    for (k, off) in [0, 17, 35].into_iter().enumerate() {
        b.gather_batch(&images, &labels, &order, off, &mut x, &mut y).unwrap();
        b.relu(&x, &mut copies[k]).unwrap();
        b.softmax_xent(&x, &y, &mut dz, &mut losses, k + 1).unwrap();
    }
    if in_step {
        b.end_step().unwrap();
    }
    let mut out = read_all(b, &[&copies]);
    out.push(b.read(&losses).unwrap());
    out
}

#[test]
fn ops_at_changing_offsets_and_slots_in_one_encoder_match_cpu() {
    let Some(mut g) = gpu_or_skip("ops_at_changing_offsets_and_slots_in_one_encoder_match_cpu") else { return };
    // Losses of 7-class rows: exp/log within a few ulp (the softmax tolerance of gpu_kernels.rs).
    let tols = [EXACT, EXACT, EXACT, Tolerance::new(1e-6, 1e-5)];
    for in_step in [false, true] {
        compare!(&mut g, format!("cursor in_step={in_step}"), tols, cursor_case(in_step));
    }
}

/// An update, then the uniform rewritten with another learning rate, then the update again, all in one step:
/// the first update must not see the second value.
fn uniform_rewrite_case<B: Backend>(b: &mut B) -> Vec<Vec<f32>> {
    let sizes = [7, 45 * 65];
    let mut p = packed(b, &sizes, "p", 1);
    let g = packed(b, &sizes, "g", 2);
    let norms = b.zeros(&[1], "n").unwrap();
    let mut h = SgdHyper::default();
    h.group[0].lr = 0.1;
    let mut u = uniform(b, &h);
    b.begin_step().unwrap();
    b.sgd_update(&mut p, &g, &mut [], &[0, 0], &u, &norms).unwrap();
    h.group[0].lr = 0.5;
    b.write_uniform(&mut u, bytemuck::bytes_of(&h)).unwrap();
    b.sgd_update(&mut p, &g, &mut [], &[0, 0], &u, &norms).unwrap();
    b.end_step().unwrap();
    read_all(b, &[&p])
}

#[test]
fn rewriting_a_uniform_between_ops_matches_cpu() {
    let Some(mut g) = gpu_or_skip("rewriting_a_uniform_between_ops_matches_cpu") else { return };
    // Two roundings per step, possibly fused: rel 4u, abs for values cancelling to ~0.
    compare!(&mut g, "uniform rewrite", [Tolerance::new(1e-7, 4.0 * U)], uniform_rewrite_case());
}

fn norm_case<B: Backend>(b: &mut B, sizes: &[usize], scale: f32, seed: u64) -> Vec<Vec<f32>> {
    let shapes: Vec<Vec<usize>> = sizes.iter().map(|&n| vec![n]).collect();
    let labels: Vec<String> = sizes.iter().map(|n| format!("g{n}")).collect();
    let mut set = b.zeros_packed(&shapes, &labels).unwrap();
    for (i, (t, &n)) in set.iter_mut().zip(sizes).enumerate() {
        let v: Vec<f32> = rand_vec(seed + i as u64, n).iter().map(|x| x * scale).collect();
        b.write(t, &v).unwrap();
    }
    let mut norms = b.tensor(&[-1.0; 3], &[3], "norms").unwrap();
    // Two slots in one encoder (the second changes the cursor's norm slot after the first read it).
    b.grad_norm(&set, &mut norms, 2).unwrap();
    b.grad_norm(&set, &mut norms, 0).unwrap();
    vec![b.read(&norms).unwrap()]
}

#[test]
fn grad_norm_matches_cpu() {
    let Some(mut g) = gpu_or_skip("grad_norm_matches_cpu") else { return };
    // One value; odd sizes; a set crossing several 4096-value partials; one with ~150 partials.
    let cases: [(&[usize], f32); 5] =
        [(&[1], 1.0), (&[7, 45 * 65, 1], 1.0), (&[3 * 4096 + 5, 300, 0], 1e-3), (&[600_000, 13], 10.0), (&[5], 0.0)];
    for (i, (sizes, scale)) in cases.into_iter().enumerate() {
        // Untouched slot 1 stays −1 exactly.
        compare!(
            &mut g,
            format!("grad_norm {sizes:?}"),
            [Tolerance::new(0.0, NORM_REL)],
            norm_case(sizes, scale, i as u64)
        );
    }
}

/// How an update clips: off, by norm (clipping or not), by value, or both.
#[derive(Clone, Copy, Debug)]
enum Clip {
    Off,
    Norm(f32),
    Value(f32),
    Both(f32, f32),
}

impl Clip {
    /// The norm is read from slot 1 of a 2-entry norm buffer.
    fn params(self) -> ClipParams {
        let mut c = ClipParams { norm_slot: 1, ..Default::default() };
        if let Clip::Norm(n) | Clip::Both(n, _) = self {
            (c.max_norm, c.use_norm) = (n, 1);
        }
        if let Clip::Value(v) | Clip::Both(_, v) = self {
            (c.value, c.use_value) = (v, 1);
        }
        c
    }

    /// Relative error of a clipped gradient on the GPU against the CPU (see the module docs).
    fn rel(self) -> f64 {
        match self {
            Clip::Norm(_) | Clip::Both(..) => NORM_REL + 4.0 * U,
            Clip::Off | Clip::Value(_) => 0.0,
        }
    }
}

/// Gradients of step s (new every step, in [−1, 1]).
fn write_grads<B: Backend>(b: &mut B, g: &mut [B::Tensor], sizes: &[usize], seed: u64) {
    for (i, (t, &n)) in g.iter_mut().zip(sizes).enumerate() {
        b.write(t, &rand_vec(seed + 31 * i as u64, n)).unwrap();
    }
}

/// STEPS SGD steps on one packed set, as the loop runs them: norm, then update, in one step; lr growing,
/// init_momentum on the first step where the group asks for it. Returns params, momentum buffers, norms.
fn sgd_case<B: Backend>(
    b: &mut B,
    sizes: &[usize],
    groups: &[u32],
    hyper: &[SgdGroup],
    clip: Clip,
    momentum: bool,
    seed: u64,
) -> Vec<Vec<f32>> {
    let mut p = packed(b, sizes, "p", seed);
    let mut g = packed(b, sizes, "g", seed + 1);
    let mut bufs = if momentum { packed(b, sizes, "buf", seed + 2) } else { Vec::new() };
    let mut norms = b.zeros(&[2], "norms").unwrap();
    let mut u = b.uniform(std::mem::size_of::<SgdHyper>(), "sgd").unwrap();
    for s in 0..STEPS {
        write_grads(b, &mut g, sizes, seed + 10 * s as u64);
        let mut h = SgdHyper { clip: clip.params(), ..Default::default() };
        for (k, grp) in hyper.iter().enumerate() {
            let init = grp.init_momentum * u32::from(s == 0);
            h.group[k] = SgdGroup { lr: grp.lr * (1.0 + s as f32), init_momentum: init, ..*grp };
        }
        b.write_uniform(&mut u, bytemuck::bytes_of(&h)).unwrap();
        b.begin_step().unwrap();
        b.grad_norm(&g, &mut norms, 1).unwrap();
        b.sgd_update(&mut p, &g, &mut bufs, groups, &u, &norms).unwrap();
        b.end_step().unwrap();
    }
    let mut out = read_all(b, &[&p, &bufs]);
    out.push(b.read(&norms).unwrap());
    out
}

/// Tolerances of sgd_case's outputs: params and buffers, norms. Buffers and the steps they make stay below 4
/// (|g| ≤ 1 plus weight decay, initial buffers in [−1, 1], μ ≤ 0.9); step s has lr ≤ 0.2·(s + 1), so the
/// parameters move by at most 4·Σ lr = 4·0.2·STEPS·(STEPS + 1)/2, each step with the error of its gradient.
fn sgd_tols(n: usize, clip: Clip) -> Vec<Tolerance> {
    let steps = STEPS as f64;
    let lr_sum = 0.2 * steps * (steps + 1.0) / 2.0;
    let p = Tolerance::new(1e-7 + 4.0 * lr_sum * (clip.rel() + 8.0 * U), 8.0 * U);
    let buf = Tolerance::new(1e-7 + steps * 4.0 * (clip.rel() + 8.0 * U), 8.0 * U);
    let mut t = vec![p; n];
    t.extend(vec![buf; n]);
    t.push(Tolerance::new(0.0, NORM_REL));
    t
}

fn sgd_groups() -> [SgdGroup; 4] {
    [
        SgdGroup { lr: 0.1, momentum: 0.9, dampening: 0.3, weight_decay: 5e-4, init_momentum: 1, ..Default::default() },
        SgdGroup { lr: 0.05, momentum: 0.8, nesterov: 1, weight_decay: 1e-3, init_momentum: 1, ..Default::default() },
        SgdGroup { lr: 0.2, weight_decay: 0.01, ..Default::default() },
        // A buffer already in use (random contents) on the first step.
        SgdGroup { lr: 0.1, momentum: 0.5, nesterov: 1, ..Default::default() },
    ]
}

#[test]
fn sgd_update_matches_cpu_with_groups_and_clipping() {
    let Some(mut g) = gpu_or_skip("sgd_update_matches_cpu_with_groups_and_clipping") else { return };
    let sizes = [1, 7, 45 * 65, 0, 13, 300];
    let groups = [0, 1, 2, 3, 1, 0];
    // The norm of ~3300 values in [−1, 1] is ~33: max_norm 5 clips, 1e3 does not.
    let clips = [Clip::Off, Clip::Norm(5.0), Clip::Norm(1e3), Clip::Value(0.3), Clip::Both(5.0, 0.05)];
    for (i, clip) in clips.into_iter().enumerate() {
        let what = format!("sgd {clip:?}");
        let tols = sgd_tols(sizes.len(), clip);
        compare!(&mut g, what, tols, sgd_case(&sizes, &groups, &sgd_groups(), clip, true, 50 + i as u64));
    }
    // Plain SGD in every group, without momentum buffers.
    let plain: Vec<SgdGroup> = sgd_groups()
        .iter()
        .map(|h| SgdGroup { lr: h.lr, weight_decay: h.weight_decay, ..Default::default() })
        .collect();
    let mut tols = sgd_tols(sizes.len(), Clip::Value(0.3));
    tols.drain(sizes.len()..2 * sizes.len());
    compare!(&mut g, "sgd without momentum", tols, sgd_case(&sizes, &groups, &plain, Clip::Value(0.3), false, 60));
}

/// One Adam group: (lr, (beta1, beta2), eps, weight_decay).
type AdamSpec = (f64, (f64, f64), f64, f64);

/// The group at step t as the host fills it (f64 arithmetic rounded once to f32).
fn adam_group(&(lr, betas, eps, wd): &AdamSpec, t: i32) -> AdamGroup {
    AdamGroup::at_step(lr, betas, eps, wd, f64::from(t))
}

/// STEPS Adam steps (grad_norm then the update, one step each). Returns params, exp_avg, exp_avg_sq,
/// max_exp_avg_sq (amsgrad only), norms.
#[allow(clippy::too_many_arguments)]
fn adam_case<B: Backend>(
    b: &mut B,
    sizes: &[usize],
    groups: &[u32],
    specs: &[AdamSpec],
    decoupled: bool,
    amsgrad: bool,
    clip: Clip,
    seed: u64,
) -> Vec<Vec<f32>> {
    let mut p = packed(b, sizes, "p", seed);
    let mut g = zeros_like(b, sizes, "g");
    let (mut m, mut v) = (zeros_like(b, sizes, "m"), zeros_like(b, sizes, "v"));
    let mut vmax = if amsgrad { zeros_like(b, sizes, "vmax") } else { Vec::new() };
    let mut norms = b.zeros(&[2], "norms").unwrap();
    let mut u = b.uniform(std::mem::size_of::<AdamHyper>(), "adam").unwrap();
    for s in 0..STEPS {
        write_grads(b, &mut g, sizes, seed + 10 * s as u64);
        let mut h = AdamHyper {
            clip: clip.params(),
            amsgrad: amsgrad as u32,
            decoupled: decoupled as u32,
            ..Default::default()
        };
        for (k, spec) in specs.iter().enumerate() {
            h.group[k] = adam_group(spec, s as i32 + 1);
        }
        b.write_uniform(&mut u, bytemuck::bytes_of(&h)).unwrap();
        b.begin_step().unwrap();
        b.grad_norm(&g, &mut norms, 1).unwrap();
        b.adam_update(&mut p, &g, &mut m, &mut v, &mut vmax, groups, &u, &norms).unwrap();
        b.end_step().unwrap();
    }
    let mut out = read_all(b, &[&p, &m, &v, &vmax]);
    out.push(b.read(&norms).unwrap());
    out
}

/// Tolerances of adam_case's outputs (see the module docs); `lr` is the largest learning rate.
fn adam_tols(n: usize, amsgrad: bool, clip: Clip, lr: f64) -> Vec<Tolerance> {
    let (steps, c) = (STEPS as f64, clip.rel());
    let p = Tolerance::new(1e-9 + steps * 4.0 * lr * (3.0 * c + 32.0 * U), 8.0 * U);
    // |g| ≤ 1 + weight_decay·|p| ≤ 1.2.
    let m = Tolerance::new(steps * 1.2 * (c + 4.0 * U), 8.0 * U);
    let v = Tolerance::new(1e-30, 2.0 * c + steps * 8.0 * U);
    let mut t = vec![p; n];
    t.extend(vec![m; n]);
    t.extend(vec![v; if amsgrad { 2 * n } else { n }]);
    t.push(Tolerance::new(0.0, NORM_REL));
    t
}

fn adam_specs() -> [AdamSpec; 3] {
    [
        (1e-2, (0.9, 0.999), 1e-8, 0.01),
        (3e-3, (0.3, 0.99), 1e-6, 0.1), // beta1 < 0.5: torch.lerp's other formula
        (5e-2, (0.8, 0.9), 1e-8, 0.0),
    ]
}

#[test]
fn adam_update_matches_cpu_in_every_mode() {
    let Some(mut g) = gpu_or_skip("adam_update_matches_cpu_in_every_mode") else { return };
    let sizes = [1, 7, 45 * 65, 0, 13, 300];
    let groups = [0, 1, 2, 0, 1, 0];
    let modes = [
        (false, false, Clip::Off),
        (true, false, Clip::Norm(5.0)),
        (false, true, Clip::Value(0.3)),
        (true, true, Clip::Both(5.0, 0.05)),
    ];
    for (i, (decoupled, amsgrad, clip)) in modes.into_iter().enumerate() {
        let what = format!("adam decoupled={decoupled} amsgrad={amsgrad} {clip:?}");
        let tols = adam_tols(sizes.len(), amsgrad, clip, 5e-2);
        compare!(
            &mut g,
            what,
            tols,
            adam_case(&sizes, &groups, &adam_specs(), decoupled, amsgrad, clip, 70 + i as u64)
        );
    }
}

/// One Adam step from zero state through the optimizer's host path: exp_avg = f32(1 − 0.9)·g and exp_avg_sq =
/// (f32(1 − 0.999)·g)·g, PyTorch's Python-float weights (issue #22: 1 − f32(0.999) is 1.3e-5 smaller and biased
/// every step). Single roundings of products of zero-state moments: exact on both backends, fused or not.
fn adam_first_moments<B: Backend>(b: &mut B, g0: &[f32]) -> Vec<Vec<f32>> {
    use wgtrain::optim::{OptimConfig, Optimizer, OptimizerKind};
    let mut config = OptimConfig::sgd(1e-3, 0.0);
    config.kind = OptimizerKind::Adam;
    let (names, shapes) = (vec!["w".to_string()], vec![vec![g0.len()]]);
    let groups = config.groups(&names).unwrap();
    let sched = config.scheduler_groups(&groups);
    let mut opt = Optimizer::new(b, &config, groups, &names, &shapes).unwrap();
    let mut p = zeros_like(b, &[g0.len()], "p");
    let mut g = zeros_like(b, &[g0.len()], "g");
    b.write(&mut g[0], g0).unwrap();
    let mut norms = b.zeros(&[1], "norms").unwrap();
    opt.prepare(b, &sched, 0).unwrap();
    b.begin_step().unwrap();
    b.grad_norm(&g, &mut norms, 0).unwrap();
    opt.update(b, &mut p, &g, &norms).unwrap();
    b.end_step().unwrap();
    opt.read_state(b).unwrap().into_iter().map(|(_, set)| set[0].clone()).collect()
}

#[test]
fn adam_moments_weigh_the_gradient_by_pytorchs_one_minus_beta() {
    let Some(mut gpu) = gpu_or_skip("adam_moments_weigh_the_gradient_by_pytorchs_one_minus_beta") else { return };
    let g0 = [1.0f32, -2.0, 3e-3, 0.7];
    let (w1, w2) = ((1.0f64 - 0.9) as f32, (1.0f64 - 0.999) as f32);
    let want = [g0.map(|g| w1 * g).to_vec(), g0.map(|g| (w2 * g) * g).to_vec()];
    assert_eq!(adam_first_moments(&mut CpuBackend::new(), &g0), want, "cpu");
    assert_eq!(adam_first_moments(&mut gpu, &g0), want, "gpu");
}

/// Seeded random packed sets: 1–6 tensors of 1–5000 values in random groups, random options.
#[test]
fn random_sets_match_cpu() {
    let Some(g) = gpu_or_skip("random_sets_match_cpu") else { return };
    let g = std::cell::RefCell::new(g);
    // No shrinking (each shrink step reruns GPU work on a slow software adapter); the case is in the message.
    let mut runner =
        TestRunner::new(Config { cases: 6, failure_persistence: None, max_shrink_iters: 0, ..Config::default() });
    let set = prop::collection::vec((1usize..5000, 0u32..3), 1..7);
    runner
        .run(&(set, 0usize..4, any::<bool>(), any::<bool>(), any::<u64>()), |(set, c, decoupled, amsgrad, seed)| {
            let g = &mut *g.borrow_mut();
            let (sizes, groups): (Vec<usize>, Vec<u32>) = set.into_iter().unzip();
            let clip = [Clip::Off, Clip::Norm(3.0), Clip::Value(0.2), Clip::Both(3.0, 0.1)][c];
            let seed = seed % 1000;
            let what = format!("sizes {sizes:?} groups {groups:?} {clip:?}");
            let tols = sgd_tols(sizes.len(), clip);
            compare!(g, format!("sgd {what}"), tols, sgd_case(&sizes, &groups, &sgd_groups(), clip, true, seed));
            let tols = adam_tols(sizes.len(), amsgrad, clip, 5e-2);
            let what = format!("adam {what} decoupled={decoupled} amsgrad={amsgrad}");
            compare!(g, what, tols, adam_case(&sizes, &groups, &adam_specs(), decoupled, amsgrad, clip, seed));
            Ok(())
        })
        .unwrap();
}

/// A loop of Adam steps with the norm in a new slot each step: after the first step no GPU object is created
/// and each step is one submit.
#[test]
fn adam_steps_allocate_nothing_and_submit_once() {
    let Some(mut g) = gpu_or_skip("adam_steps_allocate_nothing_and_submit_once") else { return };
    let sizes = [7, 45 * 65, 300];
    let mut p = packed(&mut g, &sizes, "p", 1);
    let grads = packed(&mut g, &sizes, "g", 2);
    let (mut m, mut v) = (zeros_like(&mut g, &sizes, "m"), zeros_like(&mut g, &sizes, "v"));
    let mut vmax = zeros_like(&mut g, &sizes, "vmax");
    let mut norms = g.zeros(&[8], "norms").unwrap();
    let mut u = g.uniform(std::mem::size_of::<AdamHyper>(), "adam").unwrap();
    // Reading any tensor waits for all earlier submits (one queue, in order).
    let sync = g.zeros(&[1], "sync").unwrap();
    let mut step = |g: &mut GpuBackend, s: usize| {
        let mut h = AdamHyper { amsgrad: 1, ..Default::default() };
        h.clip = ClipParams { max_norm: 1.0, use_norm: 1, norm_slot: s as u32, ..Default::default() };
        h.group[0] = adam_group(&adam_specs()[0], s as i32 + 1);
        g.write_uniform(&mut u, bytemuck::bytes_of(&h)).unwrap();
        g.begin_step().unwrap();
        g.grad_norm(&grads, &mut norms, s).unwrap();
        g.adam_update(&mut p, &grads, &mut m, &mut v, &mut vmax, &[0, 0, 0], &u, &norms).unwrap();
        g.end_step().unwrap();
    };
    step(&mut g, 0);
    g.read(&sync).unwrap();
    let (created, submits) = (g.allocations(), g.submissions());
    for s in 1..5 {
        step(&mut g, s);
    }
    assert_eq!(g.submissions() - submits, 4, "one submit per step");
    g.read(&sync).unwrap();
    assert_eq!(g.allocations(), created, "GPU objects were created after the first step");
}

/// The GPU needs whole packed sets; anything else is an error before any work is recorded.
#[test]
fn unpacked_or_partial_sets_are_errors() {
    let Some(mut g) = gpu_or_skip("unpacked_or_partial_sets_are_errors") else { return };
    let mut p = packed(&mut g, &[3, 2], "p", 1);
    let grads = packed(&mut g, &[3, 2], "g", 2);
    let loose: Vec<_> = [3, 2].iter().map(|&n| g.zeros(&[n], "loose").unwrap()).collect();
    let mut norms = g.zeros(&[1], "n").unwrap();
    let u = uniform(&mut g, &SgdHyper::default());
    let e = g.sgd_update(&mut p, &loose, &mut [], &[0, 0], &u, &norms).unwrap_err().to_string();
    assert!(e.contains("packed"), "{e}");
    let e = g.grad_norm(&grads[1..], &mut norms, 0).unwrap_err().to_string();
    assert!(e.contains("packed"), "{e}");
    let e = g.sgd_update(&mut p[..1], &grads[..1], &mut [], &[0], &u, &norms).unwrap_err().to_string();
    assert!(e.contains("packed"), "{e}");
    let e = g.sgd_update(&mut p, &grads, &mut [], &[0, MAX_GROUPS as u32], &u, &norms).unwrap_err().to_string();
    assert!(e.contains("group"), "{e}");
    // Still usable.
    g.sgd_update(&mut p, &grads, &mut [], &[0, 0], &u, &norms).unwrap();
    assert_eq!(g.read(&p[1]).unwrap(), rand_vec(101, 2));
}
