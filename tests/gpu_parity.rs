//! CPU-vs-GPU training parity on the sample CNN: same init, same batches, a different learning rate every
//! step, weights and loss compared after every step. A learning rate that reaches the GPU one step late
//! (the `queue.write_buffer` ordering hazard) changes every update by Δlr·g and fails at once. Also: no GPU
//! object is created after the first step, and a step is one submit.
mod gpu_common;

use gpu_common::{gpu_or_skip, rand_vec};
use wgtrain::backend::Backend;
use wgtrain::cpu::CpuBackend;
use wgtrain::nn::{Activations, DeviceData, PARAMS, SampleCnn, StepArgs};
use wgtrain::optim::{SgdGroup, SgdHyper};
use wgtrain::tolerance::Tolerance;

const BATCH: usize = 4;
const IMAGES: usize = 8;
const STEPS: usize = 12;

/// Learning rate of step s: alternating large and small, never equal on consecutive steps.
fn lr(s: usize) -> f32 {
    [0.03, 0.01, 0.02, 0.005][s % 4] * (1.0 + s as f32 / 10.0)
}

struct Run<B: Backend> {
    model: SampleCnn<B>,
    act: Activations<B>,
    data: DeviceData<B>,
    losses: B::Tensor,
}

fn setup<B: Backend>(b: &mut B) -> Run<B> {
    let weights = wgtrain::nn::init::pytorch_default(&PARAMS, 7);
    let images = rand_vec(99, IMAGES * 28 * 28);
    let labels: Vec<u32> = (0..IMAGES as u32).map(|i| i * 7 % 10).collect();
    let mut data = DeviceData::upload(b, &images, &labels, "train").unwrap();
    let order: Vec<u32> = (0..IMAGES as u32).map(|i| (i * 5 + 3) % IMAGES as u32).collect();
    b.write_indices(&mut data.order, &order).unwrap();
    Run {
        model: SampleCnn::new(b, &weights).unwrap(),
        act: Activations::new(b, BATCH, true).unwrap(),
        data,
        losses: b.zeros(&[STEPS], "losses").unwrap(),
    }
}

fn step<B: Backend>(b: &mut B, r: &mut Run<B>, s: usize) {
    let mut sgd = SgdHyper::default();
    sgd.group[0] = SgdGroup {
        lr: lr(s),
        momentum: 0.9,
        dampening: 0.1,
        weight_decay: 1e-3,
        nesterov: u32::from(s >= STEPS / 2), // both modes within one run
        init_momentum: u32::from(s == 0),
        ..Default::default()
    };
    let p = StepArgs {
        batch_offset: (s * BATCH) % IMAGES, // two batches, alternating
        loss_slot: s,
        sgd,
    };
    r.model.train_step(b, &mut r.act, &r.data, &mut r.losses, &p).unwrap();
}

#[test]
fn training_matches_cpu_step_by_step_with_changing_lr() {
    let Some(mut g) = gpu_or_skip("training_matches_cpu_step_by_step_with_changing_lr") else { return };
    let mut c = CpuBackend::new();
    let mut rc = setup(&mut c);
    let mut rg = setup(&mut g);
    // Weights after s steps differ by accumulated f32 reordering (~1e-7 per step on the sums of ≤ 4·26·26
    // products of the conv1 gradient); an lr one step late moves weights by Δlr·|g| ≥ 1e-4 here.
    let tol = Tolerance::new(1e-5, 1e-4);
    let mut max_err = 0.0f64;
    for s in 0..STEPS {
        step(&mut c, &mut rc, s);
        step(&mut g, &mut rg, s);
        let wc = rc.model.read_weights(&mut c).unwrap();
        let wg = rg.model.read_weights(&mut g).unwrap();
        for ((name, _), (a, e)) in PARAMS.iter().zip(wg.iter().zip(&wc)) {
            max_err = max_err.max(tol.check(&format!("step {s} {name}"), a, e).unwrap_or_else(|m| panic!("{m}")));
        }
    }
    let lc = c.read(&rc.losses).unwrap();
    let lg = g.read(&rg.losses).unwrap();
    Tolerance::new(1e-5, 1e-5).assert("losses", &lg, &lc);
    eprintln!("max |Δweight| over {STEPS} steps: {max_err:.3e}; losses {lg:?}");
    assert!(lg[STEPS - 1] < lg[0], "the loss should fall on a repeated small set: {lg:?}");
}

#[test]
fn no_gpu_allocation_after_the_first_step() {
    let Some(mut g) = gpu_or_skip("no_gpu_allocation_after_the_first_step") else { return };
    let mut r = setup(&mut g);
    step(&mut g, &mut r, 0);
    g.read(&r.losses).unwrap(); // the bulk loss readback is part of the steady state too
    let after_first = g.allocations();
    for s in 1..4 {
        step(&mut g, &mut r, s);
    }
    g.read(&r.losses).unwrap();
    assert_eq!(g.allocations(), after_first, "GPU objects were created after the first step");
}

#[test]
fn a_training_step_is_one_submit() {
    let Some(mut g) = gpu_or_skip("a_training_step_is_one_submit") else { return };
    let mut r = setup(&mut g);
    step(&mut g, &mut r, 0);
    g.read(&r.losses).unwrap();
    // Every step changes the learning rate (the uniform), the batch offset and the loss slot (the cursor): none
    // of these writes may split the step's commands into several submits.
    let before = g.submissions();
    for s in 1..5 {
        step(&mut g, &mut r, s);
    }
    assert_eq!(g.submissions() - before, 4, "4 steps");
}

#[test]
fn profiler_times_every_dispatch_of_a_step() {
    let Some(mut g) = gpu_or_skip("profiler_times_every_dispatch_of_a_step") else { return };
    assert!(g.take_profile().is_err(), "take_profile before start_profiling must be an error");
    let mut r = setup(&mut g);
    step(&mut g, &mut r, 0); // builds pipelines outside the profile
    g.start_profiling().expect("lavapipe and desktop Vulkan drivers offer timestamps inside passes");
    step(&mut g, &mut r, 1);
    let first = g.take_profile().unwrap();
    step(&mut g, &mut r, 2);
    let second = g.take_profile().unwrap();
    let labels = |p: &[wgtrain::gpu::DispatchTime]| p.iter().map(|d| d.label.clone()).collect::<Vec<_>>();
    assert_eq!(labels(&first), labels(&second), "each take_profile covers exactly the steps since the last");
    let count = |prefix: &str| first.iter().filter(|d| d.label.starts_with(prefix)).count();
    // One multi-tensor update for all parameters, labelled with the first and last parameter's names.
    assert_eq!(count("SgdUpdate → "), 1, "one update for all parameters: {:?}", labels(&first));
    assert!(first.iter().any(|d| d.label == "SgdUpdate → conv1.weight…fc2.bias"), "{:?}", labels(&first));
    assert_eq!((count("GatherBatch → "), count("SoftmaxXent → ")), (1, 1));
    // 32 dispatches per step with one update per parameter; the multi-tensor update saves 7.
    assert!(first.len() < 32, "{} dispatches per step: {:?}", first.len(), labels(&first));
    eprintln!("{} dispatches per step: {:?}", first.len(), labels(&first));
    assert!(first.iter().all(|d| d.nanos.is_finite() && d.nanos >= 0.0), "{first:?}");
    assert!(first.iter().map(|d| d.nanos).sum::<f64>() > 0.0, "a whole step cannot take no time: {first:?}");
}
