//! `sweep --plot`: every trial's loss curve (left) and the objective against the first swept numeric option
//! (right; a log axis for learning rates, weight decays and other positive values spanning a decade or more),
//! diverged trials marked at the top edge.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use serde_json::Value;

use super::Spec;
use crate::Result;
use crate::cli::sweep::{Trial, describe};
use crate::plot::{self, Chart, DrawResult, FONT, Figure, PALETTE, Panel, Series};

struct SweepFigure<'a> {
    curves: Chart,
    /// (trial index, x, objective) for trials whose swept x is numeric.
    points: Vec<(usize, f64, Option<f64>)>,
    x_name: String,
    log_x: bool,
    objective: &'a str,
}

impl Figure for SweepFigure<'_> {
    fn size(&self) -> (u32, u32) {
        (1500, 760)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        root.fill(&WHITE)?;
        let (left, right) = root.split_horizontally(960);
        plot::render(&left, &self.curves)?;
        let right = right.margin(60, 30, 10, 20);
        let tx = |x: f64| if self.log_x { x.log10() } else { x };
        let xs: Vec<f64> = self.points.iter().map(|p| tx(p.1)).collect();
        let ys: Vec<f64> = self.points.iter().filter_map(|p| p.2).filter(|v| v.is_finite()).collect();
        let (x0, x1) = xs.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
        let (y0, y1) = ys.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
        let pad = |lo: f64, hi: f64| {
            if !(lo.is_finite() && hi.is_finite()) {
                (0.0, 1.0)
            } else {
                let p = ((hi - lo) * 0.08).max(1e-3 * hi.abs().max(1e-9));
                (lo - p, hi + p)
            }
        };
        let ((x0, x1), (y0, y1)) = (pad(x0, x1), pad(y0, y1));
        let x_desc = if self.log_x { format!("log10({})", self.x_name) } else { self.x_name.clone() };
        let mut chart = ChartBuilder::on(&right)
            .caption(format!("{} by trial (lower is better)", self.objective), (FONT, 18))
            .x_label_area_size(60)
            .y_label_area_size(80)
            .build_cartesian_2d(x0..x1, y0..y1)?;
        chart
            .configure_mesh()
            .label_style((FONT, 14))
            .x_desc(x_desc)
            .y_desc(self.objective)
            .axis_desc_style((FONT, 16))
            .max_light_lines(1)
            .draw()?;
        for &(i, x, y) in &self.points {
            let color = PALETTE[i % PALETTE.len()];
            match y.filter(|v| v.is_finite()) {
                Some(y) => chart.draw_series(std::iter::once(Circle::new((tx(x), y), 6, color.filled())))?,
                // Diverged: a cross on the top edge.
                None => chart.draw_series(std::iter::once(Cross::new((tx(x), y1), 8, color.stroke_width(3))))?,
            };
        }
        Ok(())
    }
}

/// The objective drawn for each trial: `None` (a cross on the top edge) for a trial that diverged.
fn plotted(trials: &[Trial], objectives: &[Option<f64>]) -> Vec<Option<f64>> {
    trials.iter().zip(objectives).map(|(t, o)| o.filter(|_| t.diverged_at_step.is_none())).collect()
}

/// Draw the sweep to `path` (PNG or SVG), atomically.
pub fn draw(path: &Path, spec: &Spec, trials: &[Trial], objectives: &[Option<f64>], objective: &str) -> Result<()> {
    // Exploding trials would flatten every other curve: draw losses up to twice the largest first loss.
    let cap = 2.0 * trials.iter().filter_map(|t| t.losses.first()).map(|&l| l as f64).fold(0.0, f64::max);
    let cap = if cap > 0.0 { cap } else { f64::INFINITY };
    let series = trials
        .iter()
        .map(|t| Series {
            label: describe(&t.params),
            points: t
                .losses
                .iter()
                .enumerate()
                .map(|(s, &l)| (s as f64, l as f64))
                .take_while(|p| p.1 <= cap)
                .collect(),
        })
        .collect();
    let curves = Chart {
        title: "wgtrain sweep: training loss per trial".into(),
        subtitle: Some(format!(
            "{} trials; a curve ends where its loss leaves the chart (above {cap:.2}) or the trial diverged",
            trials.len()
        )),
        x_label: "step".into(),
        panels: vec![Panel { y_label: "batch loss".into(), series, weight: 1 }],
        size: (960, 760),
    };
    // The first swept option whose values are numbers is the x axis of the right panel.
    let x_name = spec
        .options
        .iter()
        .map(|(n, _)| n.clone())
        .find(|n| trials.iter().all(|t| t.params.get(n).and_then(Value::as_f64).is_some()));
    // A diverged trial's last loss (up to 100× its first) is finite but says nothing: it is drawn as a cross on
    // the top edge, like a non-finite one, instead of stretching the axis over every other trial.
    let objectives = plotted(trials, objectives);
    let (points, log_x, x_name) = match x_name {
        Some(n) => {
            let xs: Vec<f64> = trials.iter().map(|t| t.params[&n].as_f64().unwrap_or(f64::NAN)).collect();
            let (lo, hi) = xs.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
            let log_x = lo > 0.0 && hi / lo >= 10.0;
            (xs.iter().enumerate().map(|(i, &x)| (i, x, objectives[i])).collect(), log_x, n)
        }
        None => ((0..trials.len()).map(|i| (i, i as f64, objectives[i])).collect(), false, "trial".to_string()),
    };
    plot::save(path, &SweepFigure { curves, points, x_name, log_x, objective })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trial(final_loss: f64, diverged_at_step: Option<usize>) -> Trial {
        Trial {
            params: serde_json::Map::new(),
            final_loss: Some(final_loss),
            val_loss: None,
            val_accuracy: None,
            test_loss: None,
            test_accuracy: None,
            diverged_at_step,
            seconds: 0.0,
            losses: vec![2.3, final_loss as f32],
        }
    }

    #[test]
    fn a_diverged_trial_is_drawn_on_the_edge_not_at_its_last_loss() {
        let trials = [trial(0.4, None), trial(230.0, Some(1)), trial(0.6, None)];
        let objectives = [Some(0.4), Some(230.0), Some(0.6)];
        assert_eq!(plotted(&trials, &objectives), vec![Some(0.4), None, Some(0.6)]);
    }
}
