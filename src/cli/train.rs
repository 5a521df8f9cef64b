//! `wgtrain train`: options exactly as docs/cli.md.

use std::io::IsTerminal;
use std::path::PathBuf;

use crate::backend::Backend;
use crate::cli::backend_choice::{self, BackendArgs, Chosen};
use crate::data::{self, Mnist};
use crate::nn::{self, SampleCnn};
use crate::optim::Sgd;
use crate::schedule::{ScheduleConfig, Scheduler};
use crate::train::{self, HostSplit, MetricsLog, TrainReport, TrainSetup};
use crate::{Error, Result};

#[derive(clap::Args, Debug, Clone)]
pub struct TrainArgs {
    #[command(flatten)]
    pub backend: BackendArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

/// Every `train` option except the backend choice (shared with `compare`).
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// Directory with the MNIST IDX files (raw or .gz); default: the embedded subset.
    #[arg(long)]
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
    #[arg(long)]
    pub init: Option<PathBuf>,
    /// Write the final weights here (safetensors, atomically).
    #[arg(long)]
    pub save_weights: Option<PathBuf>,
    /// The optimizer.
    #[arg(long, default_value = "sgd", value_parser = ["sgd"])]
    pub optimizer: String,
    #[arg(long, default_value_t = 0.01)]
    pub lr: f64,
    #[arg(long, default_value_t = 0.0)]
    pub momentum: f64,
    #[arg(long, default_value_t = 0.0)]
    pub dampening: f64,
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f64,
    #[arg(long)]
    pub nesterov: bool,
    /// Learning-rate schedule as JSON (docs/schedules.md section 6) or @FILE.
    #[arg(long)]
    pub schedule: Option<String>,
    /// Write per-step and per-epoch metrics as JSON Lines.
    #[arg(long)]
    pub metrics: Option<PathBuf>,
}

pub fn run(args: TrainArgs) -> Result<()> {
    let chosen = backend_choice::choose(&args.backend)?;
    match chosen {
        Chosen::Cpu(mut b) => run_on(&mut b, &args.run).map(|_| ()),
        Chosen::Gpu(mut b) => run_on(b.as_mut(), &args.run).map(|_| ()),
    }
}

/// Everything a run needs before touching the backend, validated up front (bad input → exit 2 before work).
pub struct Prepared {
    pub setup: TrainSetup,
    pub scheduler: Scheduler,
    pub weights: Vec<Vec<f32>>,
    pub source: String,
}

pub fn prepare(args: &RunArgs) -> Result<Prepared> {
    if args.batch_size == 0 {
        return Err(Error::Usage("--batch-size must be at least 1".into()));
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
        None => args.epochs * spe,
    };
    scheduler.check_run(steps)?;
    let test = if args.no_eval {
        None
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

/// Run a prepared training on one backend, with a progress bar on a terminal and a one-line summary.
pub fn run_on<B: Backend>(backend: &mut B, args: &RunArgs) -> Result<TrainReport> {
    let Prepared { setup, mut scheduler, weights, source } = prepare(args)?;
    let mut model = SampleCnn::new(backend, &weights)?;
    let mut log = MetricsLog::new(args.metrics.clone());
    log::info!("training on {} with {source}", backend.name());
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(setup.steps as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40.cyan/blue} {pos}/{len} steps {msg} [{elapsed_precise}<{eta_precise}]",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let mut progress = |done: usize, _total: usize, loss: Option<f32>| {
        if let Some(bar) = &bar {
            bar.set_position(done as u64);
            if let Some(l) = loss {
                bar.set_message(format!("loss {l:.4}"));
            }
        }
    };
    let report = train::train(backend, &mut model, &setup, &mut scheduler, &mut log, &mut progress);
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let report = report?;
    if let Some(path) = &args.save_weights {
        let tensors: Vec<(&str, &[usize], &[f32])> =
            nn::PARAMS.iter().zip(&report.weights).map(|((n, s), w)| (*n, *s, w.as_slice())).collect();
        nn::weights::save(path, &tensors)?;
    }
    let test = match report.test {
        Some((loss, acc)) => format!(", test loss {loss:.4}, test accuracy {:.2}%", acc * 100.0),
        None => String::new(),
    };
    println!(
        "trained {} steps: final loss {:.4}{test}, {:.0} images/s, backend {}",
        report.steps,
        report.final_loss,
        report.images_per_s,
        backend.name()
    );
    Ok(report)
}
