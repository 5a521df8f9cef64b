//! `wgtrain train`: options exactly as docs/cli.md.

use std::path::PathBuf;

use crate::backend::Backend;
use crate::cli::backend_choice::{self, BackendArgs, Chosen};
use crate::cli::{help, run_info};
use crate::console::{self, Console};
use crate::data::{self, Mnist};
use crate::nn::{self, SampleCnn};
use crate::optim::Sgd;
use crate::output::{OutputKind, stdio};
use crate::schedule::{ScheduleConfig, Scheduler};
use crate::train::{self, HostSplit, MetricsLog, TrainReport, TrainSetup};
use crate::{Error, Result};

#[derive(clap::Args, Debug, Clone)]
pub struct TrainArgs {
    #[command(flatten)]
    pub backend: BackendArgs,
    #[command(flatten)]
    pub run: RunArgs,
    /// Without a terminal on stderr: also print a progress line at most every SECS seconds inside an epoch
    /// (the per-epoch lines are always printed; -q silences both).
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub log_every: f64,
}

/// Every `train` option except the backend choice (shared with `compare`). Serialized into the metrics
/// file's `run` line, so every field must be `Serialize`.
#[derive(clap::Args, Debug, Clone, serde::Serialize)]
pub struct RunArgs {
    /// Directory with the MNIST IDX files (raw or .gz); default: the embedded subset.
    #[arg(long, value_name = "DIR", long_help = help::DATA)]
    pub data: Option<PathBuf>,
    /// The model.
    #[arg(long, default_value = "sample-cnn", value_parser = ["sample-cnn"])]
    pub model: String,
    /// Number of epochs (ignored when --steps is given).
    #[arg(long, default_value_t = 1)]
    pub epochs: usize,
    /// Number of optimizer steps (wins over --epochs).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Images per step; the last partial batch of an epoch is dropped.
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// Use only the first N training images (file order).
    #[arg(long)]
    pub limit_train: Option<usize>,
    /// Evaluate on the first N test images.
    #[arg(long)]
    pub limit_test: Option<usize>,
    /// Skip test-set evaluation.
    #[arg(long)]
    pub no_eval: bool,
    /// Hold the last N training images out of training and report validation loss/accuracy per epoch.
    #[arg(long)]
    pub val_split: Option<usize>,
    /// Draw batches in file order: step s uses images [b·B, (b+1)·B) with b = s mod ⌊N/B⌋.
    #[arg(long)]
    pub no_shuffle: bool,
    /// Seeds init and shuffling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Initial weights (safetensors, PyTorch state_dict names, f32).
    #[arg(long, value_name = "FILE")]
    pub init: Option<PathBuf>,
    /// Write the final weights here (safetensors, atomically). The path is checked before training.
    #[arg(long, value_name = "FILE")]
    pub save_weights: Option<PathBuf>,
    /// The optimizer.
    #[arg(long, default_value = "sgd", value_parser = ["sgd"])]
    pub optimizer: String,
    /// Learning rate (≥ 0), as torch.optim.SGD's lr; a --schedule scales from it.
    #[arg(long, default_value_t = 0.01, allow_negative_numbers = true)]
    pub lr: f64,
    /// SGD momentum factor (≥ 0); cyclic and one_cycle schedules drive it.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub momentum: f64,
    /// Dampening for momentum, as torch.optim.SGD (0 with --nesterov).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub dampening: f64,
    /// L2 penalty (≥ 0) added to the gradient, as torch.optim.SGD's weight_decay.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub weight_decay: f64,
    /// Nesterov momentum (needs --momentum > 0 and --dampening 0).
    #[arg(long)]
    pub nesterov: bool,
    /// Learning-rate schedule as JSON (docs/schedules.md section 6) or @FILE.
    #[arg(long, value_name = "JSON|@FILE", long_help = help::SCHEDULE)]
    pub schedule: Option<String>,
    /// Write metrics as JSON Lines: a `run` line, one `step` line per optimizer step, `val`/`eval` lines per
    /// epoch (docs/cli.md). Appended as the run goes.
    #[arg(long, value_name = "FILE")]
    pub metrics: Option<PathBuf>,
}

pub fn run(args: TrainArgs) -> Result<()> {
    // Outputs before the (slow) backend start; `prepare` checks them again for other callers.
    check_outputs(&args.run)?;
    if !(args.log_every >= 0.0 && args.log_every.is_finite()) {
        return Err(Error::Usage(format!("--log-every must be a finite number ≥ 0 (got {})", args.log_every)));
    }
    let log_every = std::time::Duration::from_secs_f64(args.log_every);
    let chosen = backend_choice::choose(&args.backend)?;
    let (report, name) = match chosen {
        Chosen::Cpu(mut b) => (run_console(&mut b, &args.run, &args.backend, Some(log_every))?, b.name()),
        Chosen::Gpu(mut b) => (run_console(b.as_mut(), &args.run, &args.backend, Some(log_every))?, b.name()),
    };
    let test = match report.test {
        Some((loss, acc)) => format!(", test loss {loss:.4}, test accuracy {:.2}%", acc * 100.0),
        None => String::new(),
    };
    stdio::out_line(&format!(
        "trained {} steps: final loss {:.4}{test}, {:.0} images/s, backend {name}",
        report.steps, report.final_loss, report.images_per_s,
    ))
}

/// The output paths of a run, checked before any work ([`crate::output::check_outputs`]).
pub fn check_outputs(args: &RunArgs) -> Result<()> {
    crate::output::check_outputs(&[
        ("--save-weights", args.save_weights.as_deref(), OutputKind::File),
        ("--metrics", args.metrics.as_deref(), OutputKind::File),
    ])
}

/// Everything a run needs before touching the backend, validated up front (bad input → exit 2 before work).
pub struct Prepared {
    pub setup: TrainSetup,
    pub scheduler: Scheduler,
    pub weights: Vec<Vec<f32>>,
    pub source: String,
}

pub fn prepare(args: &RunArgs) -> Result<Prepared> {
    check_outputs(args)?;
    if args.batch_size == 0 {
        return Err(Error::Usage("--batch-size must be at least 1".into()));
    }
    if args.limit_train == Some(0) {
        return Err(Error::Usage("--limit-train must be at least 1".into()));
    }
    if args.limit_test.is_some() && args.no_eval {
        return Err(Error::Usage("--limit-test has no effect with --no-eval; drop one of them".into()));
    }
    let sgd = Sgd {
        lr: args.lr,
        momentum: args.momentum,
        dampening: args.dampening,
        weight_decay: args.weight_decay,
        nesterov: args.nesterov,
    };
    sgd.validate()?;
    let scheduler = match &args.schedule {
        Some(s) => Scheduler::new(&ScheduleConfig::parse(s)?, args.lr, args.momentum)?,
        None => Scheduler::fixed(args.lr, args.momentum),
    };
    let Mnist { train, test, source } = match &args.data {
        Some(dir) => data::load_dir(dir)?,
        None => data::embedded()?,
    };
    if train.is_empty() {
        return Err(Error::Usage(format!("the training set in {source} is empty")));
    }
    let mut train = match args.limit_train {
        Some(n) if n > train.len() => {
            return Err(Error::Usage(format!(
                "--limit-train {n} exceeds the {} training images in {source}",
                train.len()
            )));
        }
        Some(n) => train.take(n),
        None => train,
    };
    let val = match args.val_split {
        Some(n) if n >= train.len() => {
            return Err(Error::Usage(format!(
                "--val-split {n} must be smaller than the {} training images",
                train.len()
            )));
        }
        Some(0) | None => None,
        Some(n) => {
            let (t, v) = train.split_off_last(n);
            train = t;
            Some(v)
        }
    };
    if args.batch_size > train.len() {
        return Err(Error::Usage(format!(
            "--batch-size {} is larger than the {} training images",
            args.batch_size,
            train.len()
        )));
    }
    let spe = train::steps_per_epoch(train.len(), args.batch_size);
    let steps = match args.steps {
        Some(0) => return Err(Error::Usage("--steps must be at least 1".into())),
        Some(s) => s,
        None if args.epochs == 0 => return Err(Error::Usage("--epochs must be at least 1".into())),
        None => args.epochs.checked_mul(spe).ok_or_else(|| {
            Error::Usage(format!("--epochs {} × {spe} steps per epoch is too many steps to count", args.epochs))
        })?,
    };
    // The loop counts images as steps × batch size; refuse a run whose count would overflow.
    if steps.checked_mul(args.batch_size).is_none() {
        return Err(Error::Usage(format!("{steps} steps of {} images are too many to count", args.batch_size)));
    }
    scheduler.check_run(steps)?;
    let test = if args.no_eval {
        None
    } else if test.is_empty() {
        return Err(Error::Usage(format!("the test set in {source} is empty; pass --no-eval to train without it")));
    } else {
        let n = args.limit_test.unwrap_or(test.len());
        if n == 0 || n > test.len() {
            return Err(Error::Usage(format!("--limit-test {n} must be between 1 and the {} test images", test.len())));
        }
        Some(test.take(n))
    };
    let weights = match &args.init {
        Some(path) => nn::weights::load(path, &nn::PARAMS)?,
        None => nn::init::pytorch_default(&nn::PARAMS, args.seed),
    };
    let host = |s: &data::Split| HostSplit { images: s.normalized(), labels: s.labels_u32() };
    let setup = TrainSetup {
        train: host(&train),
        val: val.as_ref().map(host),
        test: test.as_ref().map(host),
        batch_size: args.batch_size,
        steps,
        shuffle: !args.no_shuffle,
        seed: args.seed,
        sgd,
        sync_each_step: false,
    };
    Ok(Prepared { setup, scheduler, weights, source })
}

/// Run a prepared training on one backend without console output (the API behind `train`, for tests and
/// examples): the metrics file, the saved weights and the report.
pub fn run_on<B: Backend>(backend: &mut B, args: &RunArgs) -> Result<TrainReport> {
    let plain = BackendArgs { backend: if backend.name() == "cpu" { "cpu" } else { "gpu" }.into(), adapter: None };
    run_console(backend, args, &plain, None)
}

/// Prepare, train with the console (when `log_every` is given) and save the weights.
fn run_console<B: Backend>(
    backend: &mut B,
    args: &RunArgs,
    chosen: &BackendArgs,
    log_every: Option<std::time::Duration>,
) -> Result<TrainReport> {
    let Prepared { setup, mut scheduler, weights, source } = prepare(args)?;
    let mut model = SampleCnn::new(backend, &weights)?;
    let mut log = MetricsLog::new(args.metrics.clone());
    let name = backend.name();
    log.start(&run_info::describe(args, chosen, &name, &setup, &source))?;
    log::info!("training on {} with {source}", backend.name());
    let console = log_every.map(|every| {
        let plan = console::Plan {
            steps: setup.steps,
            steps_per_epoch: train::steps_per_epoch(setup.train.len(), setup.batch_size),
            batch_size: setup.batch_size,
            val: setup.val.is_some(),
            test: setup.test.is_some(),
            log_every: every,
        };
        Console::new(plan, console::Mode::detect())
    });
    if let Some(c) = &console {
        log.set_observer(c.observer());
    }
    let report = train::train(backend, &mut model, &setup, &mut scheduler, &mut log, &mut |_, _, _| {});
    if let Some(c) = &console {
        c.finish();
    }
    let report = report?;
    if let Some(path) = &args.save_weights {
        let tensors: Vec<(&str, &[usize], &[f32])> =
            nn::PARAMS.iter().zip(&report.weights).map(|((n, s), w)| (*n, *s, w.as_slice())).collect();
        nn::weights::save(path, &tensors)?;
    }
    Ok(report)
}
