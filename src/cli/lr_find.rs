//! `wgtrain lr-find`: the learning-rate range test (docs/cli.md). From the run's initial weights, step i trains
//! with lr = start·(end/start)^(i/(steps−1)) in every parameter group, written into the optimizer's uniform like
//! any schedule; losses are read back in small bulks so the test can stop soon after the smoothed loss diverges.

use std::path::PathBuf;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::backend::Backend;
use crate::cli::backend_choice::{self, BackendArgs, Chosen};
use crate::cli::train::{RunArgs, prepare};
use crate::lrfind::{self, Smoother, Suggestions};
use crate::optim::OptimizerKind;
use crate::output::{OutputKind, stdio};
use crate::plot::{Chart, Panel, Series};
use crate::schedule::Group;
use crate::train::{self, Session};
use crate::{Error, Result};

/// Steps read back at once: small, so a diverged test stops within a few steps; large enough to keep the GPU fed.
const READBACK: usize = 8;

#[derive(clap::Args, Debug, Clone)]
pub struct LrFindArgs {
    #[command(flatten)]
    pub backend: BackendArgs,
    /// Learning rate of the first step.
    #[arg(long, default_value_t = 1e-7)]
    pub start_lr: f64,
    /// Learning rate of the last step.
    #[arg(long, default_value_t = 10.0)]
    pub end_lr: f64,
    /// Smoothing factor β of the loss's exponential moving average (bias-corrected).
    #[arg(long, default_value_t = 0.98)]
    pub smoothing: f64,
    /// Stop once the smoothed loss exceeds this many times its minimum.
    #[arg(long, default_value_t = 4.0)]
    pub diverge: f64,
    /// Which suggestion the last line reports: valley (fastai's default), steepest or minimum.
    #[arg(long, default_value = "valley", value_parser = ["valley", "steepest", "minimum"])]
    pub suggest: String,
    /// Write the curve as CSV `step,lr,loss,smoothed` here (default: stdout).
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Write the curve and the suggestions as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Draw loss and smoothed loss against the learning rate (FILE.png or FILE.svg).
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Every `train` option (model, optimizer, data, batch size, …); `--steps` is the test's length (100).
    #[command(flatten)]
    pub run: RunArgs,
}

/// One step of the curve.
#[derive(Clone, Debug, Serialize)]
pub struct Point {
    pub lr: f64,
    pub loss: f64,
    pub smoothed: f64,
}

/// The test's result (`--json`).
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub suggestion: Option<f64>,
    pub method: String,
    pub suggestions: Suggestions,
    /// The lr at which the smoothed loss diverged, if the test stopped early.
    pub stopped_at_lr: Option<f64>,
    pub steps: Vec<Point>,
}

fn validate(a: &LrFindArgs) -> Result<()> {
    let bad = |m: String| Err(Error::Usage(m));
    if !(a.start_lr > 0.0 && a.start_lr.is_finite() && a.end_lr.is_finite()) {
        return bad(format!("--start-lr and --end-lr must be finite and > 0 (got {} and {})", a.start_lr, a.end_lr));
    }
    if a.start_lr >= a.end_lr {
        return bad(format!("--start-lr {} must be below --end-lr {}", a.start_lr, a.end_lr));
    }
    if !(0.0..1.0).contains(&a.smoothing) {
        return bad(format!("--smoothing must be in [0, 1) (got {})", a.smoothing));
    }
    if a.diverge.is_nan() || a.diverge <= 1.0 {
        return bad(format!("--diverge must be greater than 1 (got {})", a.diverge));
    }
    if a.run.schedule.is_some() {
        return bad("lr-find sets the learning rate itself: leave out --schedule".into());
    }
    if a.run.steps == Some(1) {
        return bad("--steps must be at least 2 for a range test".into());
    }
    Ok(())
}

/// `train` options the range test does not use (see `unused.rs`).
const UNUSED: [(&str, &str); 7] = [
    ("epochs", "the test runs --steps steps (100)"),
    ("lr", "the test sweeps the learning rate itself, from --start-lr to --end-lr"),
    ("limit_test", "the test does not evaluate on the test set"),
    ("early_stop_patience", "the test stops where the loss diverges (--diverge)"),
    ("early_stop_min_delta", "the test stops where the loss diverges (--diverge)"),
    ("restore_best", "the test keeps no weights"),
    ("val_split", "the test does not evaluate"),
];

pub fn run(args: LrFindArgs) -> Result<()> {
    let given = super::resume::explicit_options("lr-find");
    super::unused::refuse("lr-find", &given, &super::unused::RUN_FILES)?;
    super::unused::refuse("lr-find", &given, &UNUSED)?;
    validate(&args)?;
    // Before the range test: a bad or colliding output path must not cost it.
    crate::cli::train::check_run_outputs(
        &args.run,
        &[
            ("--csv", args.csv.as_deref(), OutputKind::File),
            ("--json", args.json.as_deref(), OutputKind::File),
            ("--plot", args.plot.as_deref(), OutputKind::Plot),
        ],
    )?;
    let report = match backend_choice::choose(&args.backend)? {
        Chosen::Cpu(mut b) => find(&mut b, &args)?,
        Chosen::Gpu(mut b) => find(b.as_mut(), &args)?,
    };
    // Files first, then the streams: a reader that closes stdout early (`lr-find | head -3`) or a failing
    // stdout must not cost the files (see `output::stdio`).
    let csv = csv(&report);
    if let Some(path) = &args.csv {
        crate::util::write_atomic(path, csv.as_bytes())?;
    }
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report).map_err(|e| Error::Usage(e.to_string()))?;
        crate::util::write_atomic(path, text.as_bytes())?;
    }
    if let Some(path) = &args.plot {
        crate::plot::line_chart(path, &chart(&report, &args))?;
    }
    if args.csv.is_none() {
        stdio::out(&csv)?;
    }
    match report.stopped_at_lr {
        Some(lr) => {
            stdio::note(&format!("stopped at lr {lr:.3e}: the smoothed loss exceeded {}× its minimum", args.diverge))
        }
        None => stdio::note(&format!(
            "ran all {} steps without diverging (raise --end-lr to see where it does)",
            report.steps.len()
        )),
    };
    match report.suggestion {
        Some(lr) => stdio::out_line(&format!("suggested lr: {lr:e} ({})", report.method))?,
        None => return Err(Error::Usage("the curve is too short to suggest a learning rate: raise --steps".into())),
    }
    Ok(())
}

/// Run the range test on `b`.
pub fn find<B: Backend>(b: &mut B, args: &LrFindArgs) -> Result<Report> {
    let mut run = args.run.clone();
    let steps = run.steps.unwrap_or(100);
    run.steps = Some(steps);
    let p = prepare(&run)?;
    let mut session = Session::new(b, &p.arch, &p.weights, &p.optim, &p.setup.train, p.setup.batch_size)?;
    let spe = train::steps_per_epoch(p.setup.train.len(), p.setup.batch_size);
    let mut rng = ChaCha8Rng::seed_from_u64(train::shuffle_seed(p.setup.seed));
    let mut order: Vec<u32> = (0..p.setup.train.len() as u32).collect();
    let hyper = session.optimizer.groups.hyper.clone();
    let groups_at = |lr: f64| -> Vec<Group> {
        hyper
            .iter()
            .map(|h| match p.optim.kind {
                OptimizerKind::Sgd => Group::sgd(lr, h.momentum),
                OptimizerKind::Adam | OptimizerKind::AdamW => Group::adam(lr, h.betas),
            })
            .collect()
    };
    let mut smoother = Smoother::new(args.smoothing);
    let (mut points, mut stopped_at_lr) = (Vec::new(), None);
    let mut pending = Vec::new();
    'outer: for s in 0..steps {
        let in_epoch = s % spe;
        if in_epoch == 0 && p.setup.shuffle {
            order.shuffle(&mut rng);
            b.write_indices(&mut session.data.order, &order)?;
        }
        let lr = lrfind::lr_at(s, steps, args.start_lr, args.end_lr);
        session.step(b, &groups_at(lr), in_epoch * p.setup.batch_size, pending.len())?;
        pending.push(lr);
        if pending.len() == READBACK || s + 1 == steps {
            let losses = b.read(&session.losses)?;
            for (&lr, &loss) in pending.iter().zip(&losses) {
                let smoothed = smoother.push(loss as f64);
                let diverged = smoother.diverged(smoothed, args.diverge);
                points.push(Point { lr, loss: loss as f64, smoothed });
                if diverged {
                    stopped_at_lr = Some(lr);
                    break 'outer;
                }
            }
            pending.clear();
        }
    }
    // The diverging point itself is kept in the curve but not offered to the suggestions.
    let usable = if stopped_at_lr.is_some() { points.len() - 1 } else { points.len() };
    let lrs: Vec<f64> = points[..usable].iter().map(|p| p.lr).collect();
    let smoothed: Vec<f64> = points[..usable].iter().map(|p| p.smoothed).collect();
    let suggestions = lrfind::suggest(&lrs, &smoothed);
    let suggestion = match args.suggest.as_str() {
        "steepest" => suggestions.steepest,
        "minimum" => suggestions.minimum,
        _ => suggestions.valley,
    };
    Ok(Report { suggestion, method: args.suggest.clone(), suggestions, stopped_at_lr, steps: points })
}

fn csv(r: &Report) -> String {
    let mut s = String::from("step,lr,loss,smoothed\n");
    for (i, p) in r.steps.iter().enumerate() {
        s += &format!("{i},{:?},{:?},{:?}\n", p.lr, p.loss, p.smoothed);
    }
    s
}

/// Loss and smoothed loss against log₁₀ lr, each suggestion as a vertical marker spanning the loss range.
fn chart(r: &Report, args: &LrFindArgs) -> Chart {
    // The exploding tail would flatten everything else: show values up to `diverge` × the smoothed minimum.
    let best = r.steps.iter().map(|p| p.smoothed).filter(|v| v.is_finite()).fold(f64::INFINITY, f64::min);
    let cap = if best.is_finite() { args.diverge * best } else { f64::INFINITY };
    let pts = |f: fn(&Point) -> f64| -> Vec<(f64, f64)> {
        r.steps.iter().filter(|p| f(p).is_finite() && f(p) <= cap).map(|p| (p.lr.log10(), f(p))).collect()
    };
    let finite = r.steps.iter().flat_map(|p| [p.loss, p.smoothed]).filter(|v| v.is_finite() && *v <= cap);
    let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    let mut series = vec![
        Series { label: "loss".into(), points: pts(|p| p.loss) },
        Series { label: format!("smoothed (β = {})", args.smoothing), points: pts(|p| p.smoothed) },
    ];
    let s = &r.suggestions;
    for (name, lr) in [("valley", s.valley), ("steepest", s.steepest), ("minimum/10", s.minimum)] {
        if let Some(lr) = lr.filter(|_| lo.is_finite()) {
            let x = lr.log10();
            series.push(Series { label: format!("{name}: {lr:.2e}"), points: vec![(x, lo), (x, hi)] });
        }
    }
    Chart {
        title: "Learning-rate range test".into(),
        subtitle: Some(format!(
            "{} steps from {:e} to {:e}{}",
            r.steps.len(),
            args.start_lr,
            args.end_lr,
            r.stopped_at_lr.map(|lr| format!(", stopped at {lr:.2e}")).unwrap_or_default()
        )),
        x_label: "log10(learning rate)".into(),
        panels: vec![Panel {
            y_label: format!("training loss (up to {}× the minimum)", args.diverge),
            series,
            weight: 1,
        }],
        size: (1000, 600),
    }
}
