//! The first step builds exactly the pipelines it uses, together, when it is submitted: the same loss as building
//! each pipeline at its first dispatch, one submit, no pipeline the model never uses.

mod gpu_common;

use gpu_common::{gpu_or_skip, rand_vec};
use wgtrain::backend::Backend;
use wgtrain::gpu::GpuBackend;
use wgtrain::gpu::kernels::KernelKey;
use wgtrain::optim::OptimConfig;
use wgtrain::schedule::Group;
use wgtrain::train::{HostSplit, Images, Session};

/// (first loss, pipelines built by the first step, submits of the first step, distinct kernels it dispatched).
fn first_step(g: &mut GpuBackend, defer: bool) -> (f32, usize, u64, usize) {
    g.set_defer_builds(defer);
    let batch = 4;
    let split = HostSplit {
        images: Images::Values(rand_vec(3, 2 * batch * 784)),
        labels: (0..2 * batch as u32).map(|i| i % 10).collect(),
        shape: [1, 28, 28],
    };
    let arch = wgtrain::nn::sample_cnn();
    let weights = wgtrain::nn::init::pytorch_default(&arch.param_shapes(), 0);
    let mut s = Session::new(g, &arch, &weights, &OptimConfig::sgd(0.01, 0.9), &split, batch).unwrap();
    assert_eq!(g.pipelines_built(), 0, "setting a session up builds no pipeline");
    g.start_profiling().unwrap();
    let before = g.submissions();
    s.step(g, &[Group::sgd(0.01, 0.9)], 0, 0).unwrap();
    let submits = g.submissions() - before;
    let profile = g.take_profile().unwrap();
    let kernels: std::collections::BTreeSet<&str> =
        profile.iter().map(|d| d.label.split(" → ").next().unwrap_or("")).collect();
    (g.read(&s.losses).unwrap()[0], g.pipelines_built(), submits, kernels.len())
}

#[test]
fn the_first_step_builds_only_its_pipelines_together_with_the_lazy_result() {
    let test = "the_first_step_builds_only_its_pipelines_together_with_the_lazy_result";
    let (Some(mut deferred), Some(mut lazy)) = (gpu_or_skip(test), gpu_or_skip(test)) else { return };
    let (loss, built, submits, kernels) = first_step(&mut deferred, true);
    let (lazy_loss, lazy_built, _, _) = first_step(&mut lazy, false);
    assert_eq!(loss.to_bits(), lazy_loss.to_bits(), "deferring the builds changes no number");
    assert_eq!(submits, 1, "the deferred dispatches go out with the step's one submit");
    assert_eq!((built, lazy_built), (kernels, kernels), "exactly the step's kernels are built");
    assert!(built < KernelKey::all().len(), "{built} of {} pipelines: the unused ones are not", KernelKey::all().len());
}
