//! The metrics file's first line, `{"event":"run",…}`: enough to know later what produced the file.

use serde::Serialize;

use crate::cli::backend_choice::BackendArgs;
use crate::cli::train::RunArgs;
use crate::optim::{GroupHyper, OptimConfig};
use crate::train::{TrainSetup, steps_per_epoch};

/// Fields of the `run` line, in this order (the metrics log puts `event` first and `time` last): the wgtrain
/// version, every option as given or defaulted, the seed, the backend in use and as asked for, the GPU
/// adapter's name (null on the CPU), the model, the optimizer with its hyper-parameters, the data and the run's
/// length.
#[derive(Serialize)]
pub struct RunInfo<'a> {
    version: &'static str,
    options: &'a RunArgs,
    seed: u64,
    backend: &'static str,
    backend_option: &'a str,
    adapter: Option<&'a str>,
    model: &'a str,
    optimizer: Optimizer<'a>,
    data: &'a str,
    train_images: usize,
    val_images: Option<usize>,
    test_images: Option<usize>,
    batch_size: usize,
    steps: usize,
    steps_per_epoch: usize,
}

/// The optimizer as configured: its kind, the command-line values, AMSGrad, each parameter group's resolved
/// hyper-parameters with its parameter names, and the clipping.
#[derive(Serialize)]
struct Optimizer<'a> {
    name: &'a str,
    base: &'a GroupHyper,
    amsgrad: bool,
    groups: Vec<Group<'a>>,
    clip_grad_norm: Option<f64>,
    clip_grad_value: Option<f64>,
}

#[derive(Serialize)]
struct Group<'a> {
    params: &'a [String],
    #[serde(flatten)]
    hyper: &'a GroupHyper,
}

pub fn describe<'a>(
    args: &'a RunArgs,
    chosen: &'a BackendArgs,
    backend_name: &'a str,
    setup: &TrainSetup,
    optim: &'a OptimConfig,
    groups: &'a crate::optim::Groups,
    source: &'a str,
) -> RunInfo<'a> {
    let cpu = backend_name == "cpu";
    RunInfo {
        version: env!("CARGO_PKG_VERSION"),
        options: args,
        seed: args.seed,
        backend: if cpu { "cpu" } else { "gpu" },
        backend_option: &chosen.backend,
        adapter: (!cpu).then_some(backend_name),
        model: &args.model,
        optimizer: Optimizer {
            name: optim.kind.name(),
            base: &optim.base,
            amsgrad: optim.amsgrad,
            groups: groups.names.iter().zip(&groups.hyper).map(|(params, hyper)| Group { params, hyper }).collect(),
            clip_grad_norm: optim.clip_norm,
            clip_grad_value: optim.clip_value,
        },
        data: source,
        train_images: setup.train.len(),
        val_images: setup.val.as_ref().map(|v| v.len()),
        test_images: setup.test.as_ref().map(|t| t.len()),
        batch_size: setup.batch_size,
        steps: setup.steps,
        steps_per_epoch: steps_per_epoch(setup.train.len(), setup.batch_size),
    }
}
