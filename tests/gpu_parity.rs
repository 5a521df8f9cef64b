//! CPU-vs-GPU training parity through the whole step (`train::Session`): same init, same batches, a different
//! learning rate every step, weights and loss compared after every step. A learning rate that reaches the GPU one
//! step late (the `queue.write_buffer` ordering hazard) changes every update by Δlr·g and fails at once. Covers
//! the sample CNN with SGD (both momentum modes), and a strided/padded layer list with AdamW, two parameter
//! groups and both kinds of clipping. Also: no GPU object is created after the first step; the profiler times
//! every dispatch of a step.
mod gpu_common;

use gpu_common::{gpu_or_skip, rand_vec};
use wgtrain::backend::Backend;
use wgtrain::cpu::CpuBackend;
use wgtrain::nn::{Architecture, ModelSpec};
use wgtrain::optim::{GroupHyper, GroupSpec, OptimConfig, OptimizerKind};
use wgtrain::schedule::Group;
use wgtrain::tolerance::Tolerance;
use wgtrain::train::{HostSplit, Images, Session};

const BATCH: usize = 4;
const IMAGES: usize = 8;
const STEPS: usize = 12;

/// Learning rate of step s: alternating large and small, never equal on consecutive steps.
fn lr(s: usize) -> f64 {
    [0.03, 0.01, 0.02, 0.005][s % 4] * (1.0 + s as f64 / 10.0)
}

fn sgd() -> OptimConfig {
    OptimConfig {
        kind: OptimizerKind::Sgd,
        base: GroupHyper {
            lr: 0.01,
            weight_decay: 1e-3,
            momentum: 0.9,
            dampening: 0.1,
            nesterov: false,
            betas: (0.9, 0.999),
            eps: 1e-8,
        },
        amsgrad: false,
        groups: vec![],
        clip_norm: None,
        clip_value: None,
    }
}

/// AdamW on a layer list with stride 2 + padding 1, an overlapping pool (3, stride 2) and a bias-free layer,
/// biases in their own group without decay, both clips active.
fn adamw_case() -> (Architecture, OptimConfig) {
    let spec: ModelSpec = serde_json::from_str(
        r#"{"layers": [
            {"type": "conv2d", "name": "c1", "out_channels": 7, "kernel_size": 3, "stride": 2, "padding": 1},
            {"type": "relu"},
            {"type": "max_pool2d", "kernel_size": 3, "stride": 2},
            {"type": "conv2d", "name": "c2", "out_channels": 5, "kernel_size": 2, "bias": false},
            {"type": "relu"},
            {"type": "flatten"},
            {"type": "linear", "name": "out", "out_features": 10}
        ]}"#,
    )
    .unwrap();
    let arch = Architecture::new(&spec, [1, 28, 28], 10).unwrap();
    let mut cfg = sgd();
    cfg.kind = OptimizerKind::AdamW;
    cfg.base.weight_decay = 0.05;
    cfg.amsgrad = true;
    cfg.groups = vec![GroupSpec { params: vec!["*.bias".into()], weight_decay: Some(0.0), ..Default::default() }];
    cfg.clip_norm = Some(0.5);
    cfg.clip_value = Some(0.02);
    (arch, cfg)
}

fn setup<B: Backend>(b: &mut B, arch: &Architecture, optim: &OptimConfig) -> Session<B> {
    let shapes: Vec<(&str, &[usize])> = arch.param_shapes();
    let weights = wgtrain::nn::init::pytorch_default(&shapes, 7);
    let split = HostSplit {
        images: Images::Values(rand_vec(99, IMAGES * 28 * 28)),
        labels: (0..IMAGES as u32).map(|i| i * 7 % 10).collect(),
        shape: [1, 28, 28],
    };
    let mut s = Session::new(b, arch, &weights, optim, &split, BATCH).unwrap();
    let order: Vec<u32> = (0..IMAGES as u32).map(|i| (i * 5 + 3) % IMAGES as u32).collect();
    b.write_indices(&mut s.data.order, &order).unwrap();
    s
}

/// Step s with lr(s) in every group (group g scaled by 1/(g+1), so groups differ) and, for Adam, a beta1 that
/// changes too, as a cycling schedule would.
fn step<B: Backend>(b: &mut B, r: &mut Session<B>, s: usize) {
    let kind = r.optimizer.config.kind;
    let groups: Vec<Group> = (0..r.optimizer.groups.hyper.len())
        .map(|g| match kind {
            OptimizerKind::Sgd => Group::sgd(lr(s) / (g + 1) as f64, 0.9),
            _ => Group::adam(lr(s) / (g + 1) as f64, (0.85 + 0.01 * (s % 3) as f64, 0.99)),
        })
        .collect();
    if kind == OptimizerKind::Sgd && s == STEPS / 2 {
        // Both momentum modes within one run.
        r.optimizer.groups.hyper[0].nesterov = true;
    }
    r.step(b, &groups, (s * BATCH) % IMAGES, s).unwrap();
}

fn parity(test: &str, arch: &Architecture, optim: &OptimConfig) {
    let Some(mut g) = gpu_or_skip(test) else { return };
    let mut c = CpuBackend::new();
    let mut rc = setup(&mut c, arch, optim);
    let mut rg = setup(&mut g, arch, optim);
    // Weights after s steps differ by accumulated f32 reordering (~1e-7 per step on the sums of ≤ 4·26·26
    // products of the conv1 gradient); an lr one step late moves weights by Δlr·|g| ≥ 1e-4 here.
    let tol = Tolerance::new(1e-5, 1e-4);
    let mut max_err = 0.0f64;
    let names = rc.model.names();
    for s in 0..STEPS {
        step(&mut c, &mut rc, s);
        step(&mut g, &mut rg, s);
        let wc = rc.model.read_weights(&mut c).unwrap();
        let wg = rg.model.read_weights(&mut g).unwrap();
        for (name, (a, e)) in names.iter().zip(wg.iter().zip(&wc)) {
            max_err = max_err.max(tol.check(&format!("step {s} {name}"), a, e).unwrap_or_else(|m| panic!("{m}")));
        }
    }
    let (lc, lg) = (c.read(&rc.losses).unwrap(), g.read(&rg.losses).unwrap());
    Tolerance::new(1e-5, 1e-5).assert("losses", &lg[..STEPS], &lc[..STEPS]);
    let (nc, ng) = (c.read(&rc.norms).unwrap(), g.read(&rg.norms).unwrap());
    Tolerance::new(1e-6, 1e-5).assert("gradient norms", &ng[..STEPS], &nc[..STEPS]);
    eprintln!("max |Δweight| over {STEPS} steps: {max_err:.3e}; losses {:?}", &lg[..STEPS]);
    assert!(lg[STEPS - 1] < lg[0], "the loss should fall on a repeated small set: {:?}", &lg[..STEPS]);
}

#[test]
fn sample_cnn_sgd_matches_cpu_step_by_step_with_changing_lr() {
    parity("sample_cnn_sgd_matches_cpu_step_by_step_with_changing_lr", &wgtrain::nn::sample_cnn(), &sgd());
}

#[test]
fn layer_list_adamw_groups_clipping_matches_cpu_step_by_step() {
    let (arch, optim) = adamw_case();
    parity("layer_list_adamw_groups_clipping_matches_cpu_step_by_step", &arch, &optim);
}

#[test]
fn no_gpu_allocation_after_the_first_step() {
    let Some(mut g) = gpu_or_skip("no_gpu_allocation_after_the_first_step") else { return };
    for (arch, optim) in [(wgtrain::nn::sample_cnn(), sgd()), adamw_case()] {
        let mut r = setup(&mut g, &arch, &optim);
        step(&mut g, &mut r, 0);
        g.read(&r.losses).unwrap(); // the bulk readbacks are part of the steady state too
        g.read(&r.norms).unwrap();
        let after_first = g.allocations();
        for s in 1..4 {
            step(&mut g, &mut r, s);
        }
        g.read(&r.losses).unwrap();
        g.read(&r.norms).unwrap();
        assert_eq!(g.allocations(), after_first, "GPU objects were created after the first step");
    }
}

#[test]
fn profiler_times_every_dispatch_of_a_step_and_the_step_stays_small() {
    let Some(mut g) = gpu_or_skip("profiler_times_every_dispatch_of_a_step_and_the_step_stays_small") else { return };
    assert!(g.take_profile().is_err(), "take_profile before start_profiling must be an error");
    let mut r = setup(&mut g, &wgtrain::nn::sample_cnn(), &sgd());
    step(&mut g, &mut r, 0); // builds pipelines outside the profile
    g.start_profiling().expect("lavapipe and desktop Vulkan drivers offer timestamps inside passes");
    step(&mut g, &mut r, 1);
    let first = g.take_profile().unwrap();
    step(&mut g, &mut r, 2);
    let second = g.take_profile().unwrap();
    let labels = |p: &[wgtrain::gpu::DispatchTime]| p.iter().map(|d| d.label.clone()).collect::<Vec<_>>();
    assert_eq!(labels(&first), labels(&second), "each take_profile covers exactly the steps since the last");
    let count = |prefix: &str| first.iter().filter(|d| d.label.starts_with(prefix)).count();
    // One multi-tensor update for all eight parameters, the gradient norm in two passes, one gather, one loss.
    assert_eq!(count("Sgd → "), 1, "{:?}", labels(&first));
    assert_eq!(count("GradNorm/"), 2, "{:?}", labels(&first));
    // fc2, the loss and fc2's backward run as the fused head: two dispatches, no separate loss.
    assert_eq!((count("Gather → "), count("Head/"), count("SoftmaxXent/")), (1, 2, 0), "{:?}", labels(&first));
    // conv2's ReLU and both pools run inside conv2 (one pooled output, no conv2 output), their backward is one
    // gather.
    assert_eq!(count("Conv2d/Forward+ReluPool"), 1, "{:?}", labels(&first));
    assert_eq!(count("MaxPool2d/Forward"), 0, "{:?}", labels(&first));
    assert_eq!(count("MaxPool2d/Backward+ReluPool"), 1, "{:?}", labels(&first));
    // Every bias gradient rides its layer's weight-gradient dispatch (fc2's the head's).
    assert_eq!(count("BiasGrad "), 0, "{:?}", labels(&first));
    // The step before the update kernel became multi-tensor took 32 dispatches (8 of them updates).
    eprintln!("sample CNN: {} dispatches per training step: {:?}", first.len(), labels(&first));
    assert!(first.len() < 32, "{} dispatches: {:?}", first.len(), labels(&first));
    assert!(first.iter().all(|d| d.nanos.is_finite() && d.nanos >= 0.0), "{first:?}");
    assert!(first.iter().map(|d| d.nanos).sum::<f64>() > 0.0, "a whole step cannot take no time: {first:?}");
    // FLOPs are noted by exactly the GEMM-shaped dispatches, and add up to the step's products, 2·M·N·K each:
    // conv1 forward and dw (32 × 9 × 26·26 per image), conv2 forward, dx and dw (64 × 288 × 24·24 and
    // 32 × 576 × 26·26), fc1 and fc2 forward, dx and dw (2304 × 128, 128 × 10; fc2's inside the fused head).
    // conv1's dx is never needed.
    for d in &first {
        let gemm = ["Conv2d/", "Matmul/", "Head/"].iter().any(|f| d.label.starts_with(f));
        assert_eq!(d.flops > 0.0, gemm, "{d:?}");
    }
    let per_image = 2 * (32 * 9 * 676) + 2 * (64 * 288 * 576) + 32 * 576 * 676 + 3 * (2304 * 128 + 128 * 10);
    let want = 2.0 * (BATCH * per_image) as f64;
    assert_eq!(first.iter().map(|d| d.flops).sum::<f64>(), want, "{first:?}");
}
