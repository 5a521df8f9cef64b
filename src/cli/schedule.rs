//! `wgtrain schedule`: print the learning rate (and momentum) a schedule gives at every step as CSV, and
//! optionally plot it (docs/cli.md).

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use crate::output::{OutputKind, stdio};
use crate::plot::{self, Chart, Panel, Series};
use crate::schedule::{self, ScheduleConfig, Scheduler};
use crate::{Error, Result};

#[derive(clap::Args, Debug)]
pub struct ScheduleArgs {
    /// The schedule: JSON text or @FILE, in the format of docs/schedules.md §6,
    /// e.g. '{"kind":"one_cycle","max_lr":0.1,"total_steps":1000}'.
    #[arg(long, value_name = "JSON|@FILE", long_help = super::help::SCHEDULE)]
    pub schedule: String,
    /// Base learning rate (the optimizer's lr).
    #[arg(long, default_value_t = 0.01, allow_negative_numbers = true)]
    pub lr: f64,
    /// Number of optimizer steps to print (rows 0..N−1).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub steps: u64,
    /// The optimizer's momentum (SGD); cycled by cyclic/one_cycle.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub momentum: f64,
    /// reduce_lr_on_plateau: the metric reported after each step, comma-separated or @FILE (commas or
    /// whitespace); at least one value per step.
    #[arg(long, value_name = "v0,v1,…|@FILE")]
    pub metrics_values: Option<String>,
    /// Also draw the schedule: FILE.png or FILE.svg.
    #[arg(long, value_name = "FILE.svg|FILE.png")]
    pub plot: Option<PathBuf>,
}

/// Parse `--metrics-values`: numbers separated by commas and/or whitespace, inline or from `@FILE`.
pub fn parse_metrics(arg: &str) -> Result<Vec<f64>> {
    let text = match arg.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?,
        None => arg.to_string(),
    };
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .enumerate()
        .map(|(i, t)| {
            t.parse::<f64>().map_err(|_| Error::Usage(format!("--metrics-values: value {i} ({t:?}) is not a number")))
        })
        .collect()
}

pub fn run(args: ScheduleArgs) -> Result<()> {
    // As `train` (and torch.optim.SGD): a negative lr or momentum is refused, not scheduled.
    if !(args.lr >= 0.0 && args.lr.is_finite()) {
        return Err(Error::Usage(format!("--lr must be a finite number ≥ 0 (got {})", args.lr)));
    }
    if !(args.momentum >= 0.0 && args.momentum.is_finite()) {
        return Err(Error::Usage(format!("--momentum must be a finite number ≥ 0 (got {})", args.momentum)));
    }
    // Reject a bad plot path before any work or output.
    let schedule_file = args.schedule.strip_prefix('@').map(std::path::Path::new);
    crate::output::check_files(
        &[("--plot", args.plot.as_deref(), OutputKind::Plot)],
        &[("--schedule", schedule_file)],
    )?;
    let (cfg, text) = ScheduleConfig::parse_with_text(&args.schedule)?;
    let steps =
        usize::try_from(args.steps).map_err(|_| Error::Usage(format!("--steps {} is too large", args.steps)))?;
    let metrics = args.metrics_values.as_deref().map(parse_metrics).transpose()?;
    let s = Scheduler::new(&cfg, args.lr, args.momentum)?;
    if metrics.is_some() && !s.needs_metric() {
        log::warn!("--metrics-values is ignored: {} does not step on a metric", cfg.kind());
    }
    // Everything that can fail is checked before the first line of output.
    s.check_run(steps)?;
    s.check_metrics(steps, metrics.as_deref())?;
    let cycles = s.cycles_momentum();
    let mut curve = plot_buffer(args.plot.is_some(), steps);

    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut piped_away = false;
    let wants_plot = curve.is_some();
    let mut write = |out: &mut BufWriter<std::io::StdoutLock>, line: std::fmt::Arguments| -> Result<()> {
        if piped_away {
            return Ok(());
        }
        match out.write_fmt(line).map_err(stdio::stdout_error) {
            // `wgtrain schedule … | head` closed the pipe: stop at once (`Error::Closed` exits quietly with
            // status 0), unless the values are still wanted for the plot.
            Err(Error::Closed(_)) if wants_plot => {
                piped_away = true;
                Ok(())
            }
            r => r,
        }
    };
    write(&mut out, format_args!("step,lr,momentum\n"))?;
    // `{}` prints an f64's shortest round-trip form, so the CSV holds the exact values.
    schedule::scheduler::drive(s, steps, metrics.as_deref(), |k, s| {
        let (lr, m) = (s.lr(), s.momentum());
        if let Some(c) = &mut curve {
            c.push(k, lr, m);
        }
        write(&mut out, format_args!("{k},{lr},{m}\n"))
    })?;
    if !piped_away {
        match out.flush().map_err(stdio::stdout_error) {
            Err(Error::Closed(_)) if wants_plot => {}
            r => r?,
        }
    }
    drop(out);

    if let (Some(path), Some(curve)) = (&args.plot, curve) {
        let title = format!("{} schedule — {steps} steps, base lr {}", cfg.kind(), args.lr);
        plot::line_chart(path, &chart(title, text, cycles, curve))?;
    }
    Ok(())
}

/// The points to plot. Up to `MAX_POINTS` steps every step is kept; beyond, each bucket of steps keeps its
/// first, lowest and highest values, so spikes and cycles stay visible.
struct Curve {
    bucket: usize,
    lr: Vec<(f64, f64)>,
    momentum: Vec<(f64, f64)>,
    pending: Vec<(usize, f64, f64)>,
}

const MAX_POINTS: usize = 20_000;

fn plot_buffer(wanted: bool, steps: usize) -> Option<Curve> {
    wanted.then(|| Curve {
        bucket: steps.div_ceil(MAX_POINTS).max(1),
        lr: Vec::new(),
        momentum: Vec::new(),
        pending: Vec::new(),
    })
}

impl Curve {
    fn push(&mut self, k: usize, lr: f64, m: f64) {
        if self.bucket == 1 {
            self.lr.push((k as f64, lr));
            self.momentum.push((k as f64, m));
            return;
        }
        self.pending.push((k, lr, m));
        if self.pending.len() == self.bucket {
            self.flush();
        }
    }

    fn flush(&mut self) {
        let p = std::mem::take(&mut self.pending);
        if p.is_empty() {
            return;
        }
        for pick in [0usize, 1] {
            let val = |r: &(usize, f64, f64)| if pick == 0 { r.1 } else { r.2 };
            let lo = p.iter().min_by(|a, b| val(a).total_cmp(&val(b))).copied();
            let hi = p.iter().max_by(|a, b| val(a).total_cmp(&val(b))).copied();
            let mut keep: Vec<(usize, f64, f64)> =
                [Some(p[0]), lo, hi, p.last().copied()].into_iter().flatten().collect();
            keep.sort_by_key(|r| r.0);
            keep.dedup_by_key(|r| r.0);
            let dst = if pick == 0 { &mut self.lr } else { &mut self.momentum };
            dst.extend(keep.iter().map(|r| (r.0 as f64, val(r))));
        }
    }
}

fn chart(title: String, subtitle: String, cycles: bool, mut curve: Curve) -> Chart {
    curve.flush();
    let mut panels = vec![Panel {
        y_label: "learning rate".into(),
        series: vec![Series { label: "lr".into(), points: plot::stairs(curve.lr) }],
        weight: 3,
    }];
    if cycles {
        panels.push(Panel {
            y_label: "momentum".into(),
            series: vec![Series { label: "momentum".into(), points: plot::stairs(curve.momentum) }],
            weight: 2,
        });
    }
    let height = if cycles { 820 } else { 560 };
    Chart { title, subtitle: Some(subtitle), x_label: "step".into(), panels, size: (1100, height) }
}
