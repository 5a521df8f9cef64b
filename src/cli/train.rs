//! `wgtrain train`: options exactly as docs/cli.md.

use std::path::PathBuf;

use crate::backend::Backend;
use crate::cli::backend_choice::{self, BackendArgs, Chosen};
use crate::cli::resume::Plan;
use crate::cli::{help, run_info};
use crate::console::{self, Console};
use crate::data::{self, Mnist};
use crate::nn::{self, Architecture, ModelSpec};
use crate::optim::{GroupHyper, GroupSpec, OptimConfig, OptimizerKind};
use crate::output::{OutputKind, stdio};
use crate::schedule::{ScheduleConfig, Scheduler};
use crate::train::{self, HostSplit, Images, TrainReport, TrainSetup};
use crate::{Error, Result};

#[derive(clap::Args, Debug, Clone)]
pub struct TrainArgs {
    #[command(flatten)]
    pub backend: BackendArgs,
    #[command(flatten)]
    pub run: RunArgs,
    /// Draw the run's curves (loss raw and smoothed, lr per group, momentum, gradient norm, per-epoch validation
    /// and test loss and accuracy) to FILE.png or FILE.svg.
    #[arg(long, value_name = "FILE")]
    pub plot: Option<PathBuf>,
    /// Without a terminal on stderr: also print a progress line at most every SECS seconds inside an epoch
    /// (the per-epoch lines are always printed; -q silences both).
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub log_every: f64,
}

/// Every `train` option except the backend choice (shared with `compare`, `lr-find` and `sweep`). Serializable
/// under the long option names with underscores: `sweep` specs address them so, and checkpoints store them.
#[derive(clap::Args, Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunArgs {
    /// Directory with the MNIST IDX files (raw or .gz); default: the embedded subset.
    #[arg(long, value_name = "DIR", long_help = help::DATA)]
    pub data: Option<PathBuf>,
    /// The model: a preset (sample-cnn, lenet5, mlp), a JSON layer list (docs/models.md), or @FILE.
    #[arg(long, value_name = "NAME|JSON|@FILE", default_value = "sample-cnn")]
    pub model: String,
    /// Number of epochs (ignored when --steps is given).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub epochs: usize,
    /// Number of optimizer steps (wins over --epochs).
    #[arg(long, value_name = "N")]
    pub steps: Option<usize>,
    /// Images per step; the last partial batch of an epoch is dropped.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub batch_size: usize,
    /// Use only the first N training images (file order).
    #[arg(long, value_name = "N")]
    pub limit_train: Option<usize>,
    /// Evaluate on the first N test images.
    #[arg(long, value_name = "N")]
    pub limit_test: Option<usize>,
    /// Skip test-set evaluation.
    #[arg(long)]
    pub no_eval: bool,
    /// Hold the last N training images out of training and report validation loss/accuracy per epoch.
    #[arg(long, value_name = "N")]
    pub val_split: Option<usize>,
    /// Draw batches in file order: step s uses images [b·B, (b+1)·B) with b = s mod ⌊N/B⌋.
    #[arg(long)]
    pub no_shuffle: bool,
    /// Seeds init and shuffling.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub seed: u64,
    /// Initial weights (safetensors, PyTorch state_dict names, f32).
    #[arg(long, value_name = "FILE")]
    pub init: Option<PathBuf>,
    /// Write the final weights here (safetensors, atomically).
    #[arg(long, value_name = "FILE")]
    pub save_weights: Option<PathBuf>,
    /// The optimizer: sgd (torch.optim.SGD), adam (torch.optim.Adam, L2 weight decay) or adamw (torch.optim.AdamW,
    /// decoupled weight decay).
    #[arg(long, default_value = "sgd", value_parser = ["sgd", "adam", "adamw"])]
    pub optimizer: String,
    /// Learning rate before any schedule [default: 0.01 for sgd, 0.001 for adam/adamw].
    #[arg(long, value_name = "X", allow_negative_numbers = true)]
    pub lr: Option<f64>,
    /// SGD momentum [default: 0].
    #[arg(long, value_name = "X", allow_negative_numbers = true)]
    pub momentum: Option<f64>,
    /// SGD dampening [default: 0].
    #[arg(long, value_name = "X", allow_negative_numbers = true)]
    pub dampening: Option<f64>,
    /// Weight decay: L2 added to the gradient (sgd, adam) or decoupled (adamw) [default: 0; adamw 0.01].
    #[arg(long, value_name = "X", allow_negative_numbers = true)]
    pub weight_decay: Option<f64>,
    /// SGD Nesterov momentum (needs --momentum > 0 and --dampening 0).
    #[arg(long)]
    pub nesterov: bool,
    /// Adam/AdamW coefficients for the running averages of the gradient and its square, `B1,B2` [default: 0.9,0.999].
    #[arg(long, value_name = "B1,B2", value_parser = parse_betas)]
    pub betas: Option<(f64, f64)>,
    /// Adam/AdamW term added to the denominator [default: 1e-8].
    #[arg(long, value_name = "X", allow_negative_numbers = true)]
    pub eps: Option<f64>,
    /// Adam/AdamW: use the AMSGrad variant (the maximum of past squared-gradient averages).
    #[arg(long)]
    pub amsgrad: bool,
    /// Parameter groups: JSON list or @FILE, e.g. `[{"params": ["*.bias"], "weight_decay": 0}]`. A parameter joins
    /// the first group with a glob (`*` = any characters) matching its name; the rest form a last group with the
    /// command-line values. Keys: params, lr, weight_decay, momentum, dampening, nesterov, betas, eps.
    #[arg(long, value_name = "JSON|@FILE")]
    pub param_groups: Option<String>,
    /// Clip the global L2 norm of all gradients to X before the update (torch.nn.utils.clip_grad_norm_).
    #[arg(long, value_name = "X", allow_negative_numbers = true)]
    pub clip_grad_norm: Option<f64>,
    /// Clamp every gradient element to [−X, X] before the update, after any norm clip (clip_grad_value_).
    #[arg(long, value_name = "X", allow_negative_numbers = true)]
    pub clip_grad_value: Option<f64>,
    /// Stop after N epochs without improvement of the monitored loss (validation loss with --val-split, else the
    /// epoch's mean training loss).
    #[arg(long, value_name = "N")]
    pub early_stop_patience: Option<usize>,
    /// The smallest fall of the monitored loss that counts as an improvement [default: 0].
    #[arg(long, value_name = "X", allow_negative_numbers = true)]
    pub early_stop_min_delta: Option<f64>,
    /// Save (and report) the weights of the epoch with the best monitored loss instead of the last.
    #[arg(long)]
    pub restore_best: bool,
    /// Learning-rate schedule as JSON (docs/schedules.md section 6) or @FILE.
    #[arg(long, value_name = "JSON|@FILE", long_help = help::SCHEDULE)]
    pub schedule: Option<String>,
    /// Write per-step and per-epoch metrics as JSON Lines.
    #[arg(long, value_name = "FILE")]
    pub metrics: Option<PathBuf>,
    /// Save checkpoints into DIR/step-NNNNNNNN/ after every epoch and at the end of the run (see --checkpoint-every).
    #[arg(long, value_name = "DIR")]
    pub checkpoint_dir: Option<PathBuf>,
    /// Also save a checkpoint every N optimizer steps.
    #[arg(long, value_name = "N")]
    pub checkpoint_every: Option<usize>,
    /// Keep the newest K checkpoints.
    #[arg(long, value_name = "K", default_value_t = 3)]
    pub keep_checkpoints: usize,
    /// Continue the run whose newest complete checkpoint is in DIR, with its options (options given again must
    /// agree; --steps/--epochs may extend it).
    #[arg(long, value_name = "DIR")]
    pub resume: Option<PathBuf>,
    /// Read options from a TOML or JSON file (by extension; otherwise JSON, then TOML); the command line wins.
    #[arg(long, value_name = "FILE", long_help = help::CONFIG)]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// The option ids given on the command line (filled by `run`; --resume refuses those that contradict).
    #[arg(skip)]
    #[serde(skip)]
    pub explicit: Vec<String>,
}

pub fn run(mut args: TrainArgs) -> Result<()> {
    args.run.explicit = super::resume::explicit_options("train");
    // Outputs before the (slow) backend start, so a finished run is never lost to a bad name; `prepare` checks
    // them again for other callers.
    check_run_outputs(&args.run, &[("--plot", args.plot.as_deref(), OutputKind::Plot)])?;
    if !(args.log_every >= 0.0 && args.log_every.is_finite()) {
        return Err(Error::Usage(format!("--log-every must be a finite number ≥ 0 (got {})", args.log_every)));
    }
    let log_every = std::time::Duration::from_secs_f64(args.log_every);
    let plot = args.plot.as_deref();
    let chosen = backend_choice::choose(&args.backend)?;
    let (report, name) = match chosen {
        Chosen::Cpu(mut b) => (run_console(&mut b, &args.run, &args.backend, Some(log_every), plot)?, b.name()),
        Chosen::Gpu(mut b) => (run_console(b.as_mut(), &args.run, &args.backend, Some(log_every), plot)?, b.name()),
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

/// The output paths of a run and `more` of its subcommand's, checked together before any work
/// ([`crate::output::check_files`]: also against every file the run reads, [`input_files`]); the checkpoint
/// directory too (a file in its place would otherwise fail only at the first checkpoint, after setup).
pub fn check_run_outputs(args: &RunArgs, more: &[(&str, Option<&std::path::Path>, OutputKind)]) -> Result<()> {
    let mut outputs = vec![
        ("--save-weights", args.save_weights.as_deref(), OutputKind::File),
        ("--metrics", args.metrics.as_deref(), OutputKind::File),
    ];
    outputs.extend_from_slice(more);
    let inputs = input_files(args);
    let inputs: Vec<(&str, Option<&std::path::Path>)> = inputs.iter().map(|(o, p)| (*o, Some(p.as_path()))).collect();
    crate::output::check_files(&outputs, &inputs)?;
    if let Some(dir) = &args.checkpoint_dir
        && std::fs::metadata(dir).is_ok_and(|m| !m.is_dir())
    {
        return Err(Error::Usage(format!("--checkpoint-dir {}: is a file, not a directory", dir.display())));
    }
    Ok(())
}

/// The files a run reads, by option: `--init`, `--data` (a directory: the files in it), `--config`, and
/// `--model`, `--schedule`, `--param-groups` when given as `@FILE`.
pub fn input_files(args: &RunArgs) -> Vec<(&'static str, PathBuf)> {
    let mut files: Vec<(&'static str, PathBuf)> = Vec::new();
    for (option, path) in [("--init", &args.init), ("--data", &args.data), ("--config", &args.config)] {
        if let Some(p) = path {
            files.push((option, p.clone()));
        }
    }
    let at_file = |v: Option<&str>| v.and_then(|v| v.strip_prefix('@')).map(PathBuf::from);
    for (option, value) in [
        ("--model", Some(args.model.as_str())),
        ("--schedule", args.schedule.as_deref()),
        ("--param-groups", args.param_groups.as_deref()),
    ] {
        if let Some(p) = at_file(value) {
            files.push((option, p));
        }
    }
    files
}

/// A preset's name, or "a layer list" for JSON / @FILE models (titles stay short).
fn short_model(model: &str) -> &str {
    if model.starts_with('{') { "a layer list" } else { model.trim_start_matches('@') }
}

/// `--early-stop-*` / `--restore-best` as the loop's rule (None when neither is given).
fn early_stop(args: &RunArgs) -> Result<Option<train::EarlyStop>> {
    if args.early_stop_patience == Some(0) {
        return Err(Error::Usage("--early-stop-patience must be at least 1".into()));
    }
    let min_delta = args.early_stop_min_delta.unwrap_or(0.0);
    if !(min_delta.is_finite() && min_delta >= 0.0) {
        return Err(Error::Usage(format!("--early-stop-min-delta must be a finite number ≥ 0 (got {min_delta})")));
    }
    if args.early_stop_min_delta.is_some() && args.early_stop_patience.is_none() {
        return Err(Error::Usage("--early-stop-min-delta needs --early-stop-patience".into()));
    }
    if args.early_stop_patience.is_none() && !args.restore_best {
        return Ok(None);
    }
    // The rule's state (and the best weights) are not in checkpoints yet: refuse rather than resume wrongly.
    if args.checkpoint_dir.is_some() || args.resume.is_some() {
        return Err(Error::Usage(
            "--early-stop-patience / --restore-best cannot be combined with checkpoints yet".into(),
        ));
    }
    Ok(Some(train::EarlyStop { patience: args.early_stop_patience, min_delta, restore_best: args.restore_best }))
}

/// `B1,B2` for `--betas`.
fn parse_betas(s: &str) -> std::result::Result<(f64, f64), String> {
    let parts: Vec<&str> = s.split(',').map(str::trim).collect();
    let [a, b] = parts.as_slice() else { return Err(format!("expected two numbers B1,B2, got `{s}`")) };
    let num = |x: &str| x.parse::<f64>().map_err(|_| format!("`{x}` is not a number"));
    Ok((num(a)?, num(b)?))
}

/// Everything a run needs before touching the backend, validated up front (bad input → exit 2 before work).
pub struct Prepared {
    pub setup: TrainSetup,
    pub scheduler: Scheduler,
    pub arch: Architecture,
    pub optim: OptimConfig,
    pub weights: Vec<Vec<f32>>,
    pub source: String,
    pub spec: ModelSpec,
}

/// The optimizer as the options describe it; options of the other optimizer family are refused, not ignored.
pub fn optim_config(args: &RunArgs) -> Result<OptimConfig> {
    let kind = OptimizerKind::parse(&args.optimizer)?;
    let sgd_only = [
        ("--momentum", args.momentum.is_some()),
        ("--dampening", args.dampening.is_some()),
        ("--nesterov", args.nesterov),
    ];
    let adam_only = [("--betas", args.betas.is_some()), ("--eps", args.eps.is_some()), ("--amsgrad", args.amsgrad)];
    let wrong = if kind == OptimizerKind::Sgd { &adam_only } else { &sgd_only };
    if let Some((flag, _)) = wrong.iter().find(|(_, given)| *given) {
        return Err(Error::Usage(format!("{flag} does not apply to --optimizer {}", kind.name())));
    }
    let base = GroupHyper {
        lr: args.lr.unwrap_or(kind.default_lr()),
        weight_decay: args.weight_decay.unwrap_or(kind.default_weight_decay()),
        momentum: args.momentum.unwrap_or(0.0),
        dampening: args.dampening.unwrap_or(0.0),
        nesterov: args.nesterov,
        betas: args.betas.unwrap_or(crate::optim::DEFAULT_BETAS),
        eps: args.eps.unwrap_or(crate::optim::DEFAULT_EPS),
    };
    let groups = args.param_groups.as_deref().map(GroupSpec::parse_arg).transpose()?.unwrap_or_default();
    let cfg = OptimConfig {
        kind,
        base,
        amsgrad: args.amsgrad,
        groups,
        clip_norm: args.clip_grad_norm,
        clip_value: args.clip_grad_value,
    };
    cfg.validate()?;
    Ok(cfg)
}

pub fn prepare(args: &RunArgs) -> Result<Prepared> {
    check_run_outputs(args, &[])?;
    if args.batch_size == 0 {
        return Err(Error::Usage("--batch-size must be at least 1".into()));
    }
    if args.limit_train == Some(0) {
        return Err(Error::Usage("--limit-train must be at least 1".into()));
    }
    if args.limit_test.is_some() && args.no_eval {
        return Err(Error::Usage("--limit-test has no effect with --no-eval; drop one of them".into()));
    }
    let optim = optim_config(args)?;
    let schedule = args.schedule.as_deref().map(ScheduleConfig::parse).transpose()?;
    let mnist = match &args.data {
        Some(dir) => data::load_dir(dir)?,
        None => data::embedded()?,
    };
    let (classes, input) = (mnist.classes(), mnist.image_shape());
    let spec = ModelSpec::parse_arg(&args.model, classes)?;
    let arch = Architecture::new(&spec, input, classes)?;
    let names: Vec<String> = arch.params.iter().map(|p| p.name.clone()).collect();
    let groups = optim.groups(&names)?;
    let sched_groups = optim.scheduler_groups(&groups);
    let scheduler = match &schedule {
        Some(cfg) => Scheduler::with_groups(cfg, sched_groups)?,
        None => Scheduler::fixed_groups(sched_groups),
    };
    let Mnist { train, test, source } = mnist;
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
        // A resumed run takes its weights from the checkpoint.
        _ if args.resume.is_some() => Vec::new(),
        Some(path) => nn::weights::load(path, &arch.param_shapes())?,
        None => nn::init::pytorch_default(&arch.param_shapes(), args.seed),
    };
    // The pixels stay bytes on the device (a quarter of the f32 size), each mapped to its input when gathered.
    let images = |s: &data::Split| Images::Pixels { bytes: s.pixels.clone(), table: data::pixel_table() };
    let host = |s: &data::Split| HostSplit { images: images(s), labels: s.labels_u32(), shape: input };
    let setup = TrainSetup {
        train: host(&train),
        val: val.as_ref().map(host),
        test: test.as_ref().map(host),
        batch_size: args.batch_size,
        steps,
        shuffle: !args.no_shuffle,
        seed: args.seed,
        sync_each_step: false,
        early_stop: early_stop(args)?,
        diverge_factor: None,
    };
    Ok(Prepared { setup, scheduler, arch, optim, weights, source, spec })
}

/// Run a prepared training on one backend, with a progress bar on a terminal and a one-line summary.
pub fn run_on<B: Backend>(backend: &mut B, args: &RunArgs) -> Result<TrainReport> {
    let plain = BackendArgs { backend: if backend.name() == "cpu" { "cpu" } else { "gpu" }.into(), adapter: None };
    run_console(backend, args, &plain, None, None)
}

/// Prepare (or resume), train with the console (when `log_every` is given), draw `plot` (also when the run
/// diverged: that figure explains why) and save the weights.
fn run_console<B: Backend>(
    backend: &mut B,
    args: &RunArgs,
    chosen: &BackendArgs,
    log_every: Option<std::time::Duration>,
    plot: Option<&std::path::Path>,
) -> Result<TrainReport> {
    let Plan { args, prepared, mut session, mut log, start, mut checkpointer } = super::resume::begin(backend, args)?;
    let Prepared { setup, mut scheduler, arch, optim, source, .. } = prepared;
    let args = &args;
    let name = backend.name();
    if start.is_none() {
        // A resumed run's file already starts with the run line of the run it continues.
        let info = run_info::describe(args, chosen, &name, &setup, &optim, &session.optimizer.groups, &source);
        log.start(&info)?;
    }
    log::info!("training on {name} with {source}");
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
    let report = train::train_from(
        backend,
        &mut session,
        &setup,
        &mut scheduler,
        &mut log,
        &mut |_, _, _| {},
        start.as_ref(),
        checkpointer.as_mut(),
    );
    if let Some(c) = &console {
        c.finish();
    }
    if let Some(path) = plot {
        let title = format!("wgtrain train: {} with {}", short_model(&args.model), args.optimizer);
        train::plot::draw(path, &log.events, &title)?;
    }
    let report = report?;
    if let Some(path) = &args.save_weights {
        let tensors: Vec<(&str, &[usize], &[f32])> =
            arch.param_shapes().into_iter().zip(&report.weights).map(|((n, s), w)| (n, s, w.as_slice())).collect();
        nn::weights::save(path, &tensors)?;
    }
    Ok(report)
}
