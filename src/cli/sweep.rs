//! `wgtrain sweep`: one `train` run per configuration of a grid or of random draws, ranked by an objective
//! (docs/cli.md). Each trial's options are the command line's with the swept values applied, and it is trained
//! exactly as `train` would (same initial weights from `--seed`, same batches), so any trial can be reproduced on
//! its own; a trial whose loss turns non-finite is recorded as diverged and the sweep goes on.

use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::backend::Backend;
use crate::cli::backend_choice::{self, BackendArgs, Chosen};
use crate::cli::train::{RunArgs, prepare};
use crate::output::{OutputKind, stdio};
use crate::sweep::{self, Spec};
use crate::train::{self, Event, MetricsLog, Session, TrainReport};
use crate::{Error, Result};

/// A trial has diverged once its loss is non-finite or above this many times its first loss (for a 10-class
/// cross-entropy that starts near ln 10 ≈ 2.3, above ~230: the logits have blown up); it stops there. Until that
/// step its losses are exactly the standalone `train` run's.
pub const DIVERGE_FACTOR: f64 = 100.0;

#[derive(clap::Args, Debug, Clone)]
pub struct SweepArgs {
    #[command(flatten)]
    pub backend: BackendArgs,
    /// Every combination of the values: `{"lr": [0.01, 0.1], "momentum": [0, 0.9]}` (train options, JSON or @FILE).
    #[arg(long, conflicts_with = "random")]
    pub grid: Option<String>,
    /// Random configurations: lists are sampled uniformly, `{"log_uniform": [LO, HI]}` / `{"uniform": [LO, HI]}`
    /// drawn with --seed. Needs --trials.
    #[arg(long, requires = "trials")]
    pub random: Option<String>,
    /// Number of random configurations.
    #[arg(long)]
    pub trials: Option<usize>,
    /// Write every trial (spec order) and the best as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write one CSV row per trial.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Draw every trial's loss curve and the objective against the first swept option (FILE.png or FILE.svg).
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Train up to P trials at once in one step (trials that differ only in optimizer hyper-parameters, schedule,
    /// clipping or early stopping share each batch); results are the same as with 1.
    #[arg(long, value_name = "P", default_value_t = 1)]
    pub parallel: usize,
    #[command(flatten)]
    pub run: RunArgs,
}

/// One trial's outcome (the `--json` schema of docs/cli.md).
#[derive(Clone, Debug, Serialize)]
pub struct Trial {
    pub params: Map<String, Value>,
    pub final_loss: Option<f64>,
    pub val_loss: Option<f64>,
    pub val_accuracy: Option<f64>,
    pub test_loss: Option<f64>,
    pub test_accuracy: Option<f64>,
    pub diverged_at_step: Option<usize>,
    pub seconds: f64,
    pub losses: Vec<f32>,
}

#[derive(Serialize)]
struct Report<'a> {
    objective: &'a str,
    trials: &'a [Trial],
    best: Option<usize>,
}

/// The objective's name and value for a trial: validation loss with --val-split, else the final test loss, else
/// (with --no-eval) the final training loss.
pub fn objective(args: &RunArgs) -> &'static str {
    if args.val_split.is_some_and(|n| n > 0) {
        "val_loss"
    } else if !args.no_eval {
        "test_loss"
    } else {
        "final_loss"
    }
}

fn objective_of(name: &str, t: &Trial) -> Option<f64> {
    match name {
        "val_loss" => t.val_loss,
        "test_loss" => t.test_loss,
        _ => t.final_loss,
    }
}

/// The command line's train options with one trial's values applied.
pub fn apply(base: &RunArgs, params: &Map<String, Value>) -> Result<RunArgs> {
    let mut v = serde_json::to_value(base).map_err(|e| Error::Usage(e.to_string()))?;
    let map = v.as_object_mut().expect("RunArgs serializes to an object");
    for (name, value) in params {
        map.insert(name.clone(), sweep::as_option_value(name, value));
    }
    serde_json::from_value(v).map_err(|e| Error::Usage(format!("sweep: a trial's options do not fit: {e}")))
}

pub fn run(args: SweepArgs) -> Result<()> {
    let given = super::resume::explicit_options("sweep");
    super::unused::refuse("sweep", &given, &super::unused::RUN_FILES)?;
    if args.grid.is_some() && args.trials.is_some() {
        return Err(Error::Usage("sweep does not use --trials with --grid: a grid runs every combination".into()));
    }
    let known: Vec<String> = match serde_json::to_value(&args.run) {
        Ok(Value::Object(m)) => m.keys().cloned().collect(),
        _ => Vec::new(),
    };
    let (spec, random) = match (&args.grid, &args.random) {
        (Some(g), None) => (Spec::parse(g, "--grid", &known, false)?, None),
        (None, Some(r)) => (Spec::parse(r, "--random", &known, true)?, Some((args.trials.unwrap_or(0), args.run.seed))),
        _ => return Err(Error::Usage("give --grid SPEC or --random SPEC --trials N".into())),
    };
    if args.parallel == 0 {
        return Err(Error::Usage("--parallel must be at least 1".into()));
    }
    // Before any trial: a bad or colliding output path must not cost the sweep.
    crate::cli::train::check_run_outputs(
        &args.run,
        &[
            ("--json", args.json.as_deref(), OutputKind::File),
            ("--csv", args.csv.as_deref(), OutputKind::File),
            ("--plot", args.plot.as_deref(), OutputKind::Plot),
        ],
    )?;
    let configs = spec.trials(random)?;
    // Every trial's options are checked before the first one trains.
    let trial_args: Vec<RunArgs> = configs.iter().map(|c| apply(&args.run, c)).collect::<Result<_>>()?;
    for (i, a) in trial_args.iter().enumerate() {
        crate::cli::train::optim_config(a).map_err(|e| Error::Usage(format!("trial {i}: {e}")))?;
    }
    let p = args.parallel;
    let trials = match backend_choice::choose(&args.backend)? {
        Chosen::Cpu(mut b) if p > 1 => super::sweep_parallel::run_all(&mut b, &configs, &trial_args, p)?,
        Chosen::Gpu(mut b) if p > 1 => super::sweep_parallel::run_all(b.as_mut(), &configs, &trial_args, p)?,
        Chosen::Cpu(mut b) => run_all(&mut b, &configs, &trial_args)?,
        Chosen::Gpu(mut b) => run_all(b.as_mut(), &configs, &trial_args)?,
    };
    let name = objective(&args.run);
    let objectives: Vec<Option<f64>> = trials.iter().map(|t| objective_of(name, t)).collect();
    let order = sweep::rank(&objectives);
    let best = order.first().copied().filter(|&i| objectives[i].is_some_and(f64::is_finite));
    // Files first, then the table: a reader that closes stdout early (`sweep … | head`) or a failing stdout must
    // not cost the files (see `output::stdio`).
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&Report { objective: name, trials: &trials, best })
            .map_err(|e| Error::Usage(e.to_string()))?;
        crate::util::write_atomic(path, text.as_bytes())?;
    }
    if let Some(path) = &args.csv {
        crate::util::write_atomic(path, csv(&spec, &trials, &objectives, name).as_bytes())?;
    }
    if let Some(path) = &args.plot {
        crate::sweep::plot::draw(path, &spec, &trials, &objectives, name)?;
    }
    stdio::out(&table(&spec, &trials, &order, &objectives, name))
}

fn run_all<B: Backend>(b: &mut B, configs: &[Map<String, Value>], args: &[RunArgs]) -> Result<Vec<Trial>> {
    let mut out = Vec::new();
    for (i, (params, a)) in configs.iter().zip(args).enumerate() {
        let t = Instant::now();
        let trial = run_trial(b, params, a)?;
        let secs = t.elapsed().as_secs_f64();
        progress_line(i, configs.len(), &trial, secs);
        out.push(Trial { seconds: secs, ..trial });
    }
    Ok(out)
}

/// The stderr line for trial i of n once it has finished.
pub(crate) fn progress_line(i: usize, n: usize, trial: &Trial, secs: f64) {
    let outcome = match (trial.diverged_at_step, trial.test_accuracy) {
        (Some(s), _) => format!("diverged at step {s}"),
        (None, Some(acc)) => {
            format!("final loss {:.4}, test accuracy {:.2}%", trial.final_loss.unwrap_or(f64::NAN), acc * 100.0)
        }
        (None, None) => format!("final loss {:.4}", trial.final_loss.unwrap_or(f64::NAN)),
    };
    stdio::note(&format!("[{}/{n}] {}: {outcome} ({secs:.1} s)", i + 1, describe(&trial.params)));
}

/// Train one trial exactly as `train` with these options would.
fn run_trial<B: Backend>(b: &mut B, params: &Map<String, Value>, args: &RunArgs) -> Result<Trial> {
    let mut p = prepare(args)?;
    p.setup.diverge_factor = Some(DIVERGE_FACTOR);
    let mut scheduler = p.scheduler;
    let mut session = Session::new(b, &p.arch, &p.weights, &p.optim, &p.setup.train, p.setup.batch_size)?;
    let mut log = MetricsLog::new(None);
    let result = train::train(b, &mut session, &p.setup, &mut scheduler, &mut log, &mut |_, _, _| {});
    trial_of(params, &log, result)
}

/// A trial's record from its run's log and result (`train`'s, or a population member's, which is the same).
pub(crate) fn trial_of(params: &Map<String, Value>, log: &MetricsLog, result: Result<TrainReport>) -> Result<Trial> {
    let losses: Vec<f32> =
        log.events.iter().filter_map(|e| if let Event::Step { loss, .. } = e { Some(*loss) } else { None }).collect();
    let last_val = log.events.iter().rev().find_map(|e| match e {
        Event::Val { val_loss, val_accuracy, .. } => Some((*val_loss, *val_accuracy)),
        _ => None,
    });
    let mut trial = Trial {
        params: params.clone(),
        final_loss: losses.last().map(|&l| l as f64),
        val_loss: last_val.map(|v| v.0),
        val_accuracy: last_val.map(|v| v.1),
        test_loss: None,
        test_accuracy: None,
        diverged_at_step: None,
        seconds: 0.0,
        losses,
    };
    match result {
        Ok(report) => {
            trial.test_loss = report.test.map(|t| t.0);
            trial.test_accuracy = report.test.map(|t| t.1);
        }
        Err(Error::NonFinite { step, .. } | Error::Diverged { step, .. }) => trial.diverged_at_step = Some(step),
        Err(Error::NonFiniteWeights { steps, .. }) => trial.diverged_at_step = Some(steps),
        Err(e) => return Err(e),
    }
    Ok(trial)
}

/// `lr=0.1 momentum=0.9`, for progress lines and legends.
pub fn describe(params: &Map<String, Value>) -> String {
    params.iter().map(|(k, v)| format!("{k}={}", compact(v))).collect::<Vec<_>>().join(" ")
}

fn compact(v: &Value) -> String {
    match v {
        Value::Number(n) => match n.as_f64() {
            Some(x) if x != 0.0 && (x.abs() < 1e-3 || x.abs() >= 1e4) => format!("{x:.3e}"),
            Some(x) if n.is_f64() => format!("{}", (x * 1e6).round() / 1e6),
            _ => n.to_string(),
        },
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn fmt_opt(v: Option<f64>, scale: f64, digits: usize) -> String {
    v.filter(|x| x.is_finite()).map_or("-".into(), |x| format!("{:.*}", digits, x * scale))
}

fn table(spec: &Spec, trials: &[Trial], order: &[usize], objectives: &[Option<f64>], name: &str) -> String {
    let mut header: Vec<String> = vec!["rank".into()];
    header.extend(spec.options.iter().map(|(n, _)| n.clone()));
    header.extend([name.to_string(), "test acc %".into(), "diverged at".into(), "seconds".into()]);
    let mut rows = vec![header];
    for (rank, &i) in order.iter().enumerate() {
        let t = &trials[i];
        let mut row = vec![(rank + 1).to_string()];
        row.extend(spec.options.iter().map(|(n, _)| t.params.get(n).map(compact).unwrap_or_default()));
        row.push(fmt_opt(objectives[i], 1.0, 5));
        row.push(fmt_opt(t.test_accuracy, 100.0, 2));
        row.push(t.diverged_at_step.map_or("-".into(), |s| format!("step {s}")));
        row.push(format!("{:.1}", t.seconds));
        rows.push(row);
    }
    let widths: Vec<usize> =
        (0..rows[0].len()).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    let mut s = String::new();
    for r in &rows {
        let cells: Vec<String> = r.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        s += cells.join("  ").trim_end();
        s.push('\n');
    }
    s
}

fn csv(spec: &Spec, trials: &[Trial], objectives: &[Option<f64>], name: &str) -> String {
    let quote = |s: String| if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s };
    let opt = |v: Option<f64>| v.map_or(String::new(), |x| format!("{x:?}"));
    let mut s = String::from("trial");
    for (n, _) in &spec.options {
        s += &format!(",{n}");
    }
    s += &format!(",{name},test_accuracy,diverged_at_step,seconds\n");
    for (i, t) in trials.iter().enumerate() {
        s += &i.to_string();
        for (n, _) in &spec.options {
            s += &format!(",{}", quote(t.params.get(n).map(compact).unwrap_or_default()));
        }
        s += &format!(
            ",{},{},{},{:.3}\n",
            opt(objectives[i]),
            opt(t.test_accuracy),
            t.diverged_at_step.map_or(String::new(), |s| s.to_string()),
            t.seconds
        );
    }
    s
}
