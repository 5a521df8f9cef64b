//! `wgtrain compare`: the same seeded run on several backends, with speed and numeric agreement side by side.
//!
//! Every run starts from the same weights, sees the same batches in the same order and the same schedule;
//! each step is waited for and timed, so ms/step is the real latency of a step (including one small readback).

pub mod plot;

use serde::Serialize;

use crate::Result;
use crate::backend::Backend;
use crate::nn::Architecture;
use crate::optim::OptimConfig;
use crate::schedule::Scheduler;
use crate::train::{self, Event, MetricsLog, Session, TrainSetup};

/// Steps excluded from the timing median: the first builds pipelines' bind groups and warms caches.
pub const WARMUP_STEPS: usize = 3;

/// One row of the comparison (the `--json` schema of docs/cli.md, plus the loss curve for plotting).
#[derive(Serialize, Clone, Debug)]
pub struct Row {
    pub backend: String,
    pub adapter: String,
    pub driver: String,
    pub ms_per_step: f64,
    pub images_per_s: f64,
    pub speed_vs_cpu: f64,
    pub final_loss: f64,
    pub max_abs_loss_diff_vs_cpu: f64,
    pub max_abs_weight_diff_vs_cpu: f64,
    #[serde(skip)]
    pub losses: Vec<f32>,
    #[serde(skip)]
    pub weights: Vec<Vec<f32>>,
}

/// Identity of a backend in the table.
pub struct Label {
    pub backend: String,
    pub adapter: String,
    pub driver: String,
}

/// What every run of a comparison shares: the model, its initial weights, the optimizer and the schedule.
pub struct Shared<'a> {
    pub arch: &'a Architecture,
    pub weights: &'a [Vec<f32>],
    pub optim: &'a OptimConfig,
    pub scheduler: &'a Scheduler,
}

/// Train once on `backend` with per-step timing.
pub fn run_one<B: Backend>(backend: &mut B, label: Label, setup: &TrainSetup, shared: &Shared<'_>) -> Result<Row> {
    let mut session = Session::new(backend, shared.arch, shared.weights, shared.optim, &setup.train, setup.batch_size)?;
    let mut sched = shared.scheduler.clone();
    let mut log = MetricsLog::new(None);
    let report = train::train(backend, &mut session, setup, &mut sched, &mut log, &mut |_, _, _| {})?;
    let losses: Vec<f32> =
        log.events.iter().filter_map(|e| if let Event::Step { loss, .. } = e { Some(*loss) } else { None }).collect();
    let mut timed: Vec<f64> =
        report.step_ms.iter().skip(WARMUP_STEPS.min(report.step_ms.len().saturating_sub(1))).copied().collect();
    timed.sort_by(f64::total_cmp);
    let ms = timed.get(timed.len() / 2).copied().unwrap_or(f64::NAN);
    Ok(Row {
        backend: label.backend,
        adapter: label.adapter,
        driver: label.driver,
        ms_per_step: ms,
        images_per_s: setup.batch_size as f64 / (ms / 1e3),
        speed_vs_cpu: f64::NAN,
        final_loss: report.final_loss as f64,
        max_abs_loss_diff_vs_cpu: 0.0,
        max_abs_weight_diff_vs_cpu: 0.0,
        losses,
        weights: report.weights,
    })
}

/// Fill the columns relative to the CPU row (the first row).
pub fn relate_to_cpu(rows: &mut [Row]) {
    let Some((cpu, rest)) = rows.split_first_mut() else { return };
    cpu.speed_vs_cpu = 1.0;
    for r in rest {
        r.speed_vs_cpu = cpu.ms_per_step / r.ms_per_step;
        r.max_abs_loss_diff_vs_cpu = max_abs_diff(r.losses.iter().copied(), cpu.losses.iter().copied());
        r.max_abs_weight_diff_vs_cpu =
            max_abs_diff(r.weights.iter().flatten().copied(), cpu.weights.iter().flatten().copied());
    }
}

/// Largest |a − b| (NaN anywhere counts as infinite disagreement).
fn max_abs_diff(a: impl Iterator<Item = f32>, b: impl Iterator<Item = f32>) -> f64 {
    a.zip(b)
        .map(|(x, y)| (x as f64 - y as f64).abs())
        .fold(0.0, |m, d| if d.is_nan() { f64::INFINITY } else { m.max(d) })
}

/// The table printed to stdout.
pub fn table(rows: &[Row]) -> String {
    let header =
        ["backend", "adapter", "driver", "ms/step", "images/s", "vs cpu", "final loss", "max|Δloss|", "max|Δw|"];
    let cells: Vec<[String; 9]> = rows
        .iter()
        .map(|r| {
            [
                r.backend.clone(),
                r.adapter.clone(),
                r.driver.clone(),
                format!("{:.2}", r.ms_per_step),
                format!("{:.0}", r.images_per_s),
                format!("{:.2}×", r.speed_vs_cpu),
                format!("{:.5}", r.final_loss),
                format!("{:.2e}", r.max_abs_loss_diff_vs_cpu),
                format!("{:.2e}", r.max_abs_weight_diff_vs_cpu),
            ]
        })
        .collect();
    let width: Vec<usize> = (0..9)
        .map(|c| cells.iter().map(|r| r[c].chars().count()).chain([header[c].len()]).max().unwrap_or(0))
        .collect();
    let line = |v: &[&str]| {
        v.iter().zip(&width).map(|(s, w)| format!("{s:<w$}")).collect::<Vec<_>>().join("  ").trim_end().to_string()
    };
    let mut out = line(&header) + "\n";
    for r in &cells {
        out += &line(&r.iter().map(String::as_str).collect::<Vec<_>>());
        out.push('\n');
    }
    out
}

/// `{"runs":[…]}` as docs/cli.md specifies.
pub fn to_json(rows: &[Row]) -> String {
    #[derive(Serialize)]
    struct Runs<'a> {
        runs: &'a [Row],
    }
    serde_json::to_string_pretty(&Runs { runs: rows }).unwrap_or_default()
}
