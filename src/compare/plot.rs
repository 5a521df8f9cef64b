//! `compare --plot`: the loss curves of every run overlaid (left; they should lie on top of each other) and
//! images/s as bars (right), so agreement and speed read at a glance.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::Row;
use crate::Result;
use crate::plot::{self, Chart, DrawResult, FONT, Figure, PALETTE, Panel, Series};

struct CompareFigure<'a> {
    rows: &'a [Row],
    curves: Chart,
}

fn short_name(r: &Row) -> String {
    if r.backend == "cpu" {
        "cpu".into()
    } else {
        format!("{} · {}", r.backend, r.adapter.split(" (").next().unwrap_or(&r.adapter))
    }
}

impl Figure for CompareFigure<'_> {
    fn size(&self) -> (u32, u32) {
        (1400, 700)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        root.fill(&WHITE)?;
        let (left, right) = root.split_horizontally(860);
        plot::render(&left, &self.curves)?;
        let right = right.margin(60, 40, 10, 20);
        let n = self.rows.len();
        let top = self.rows.iter().map(|r| r.images_per_s).filter(|v| v.is_finite()).fold(1.0, f64::max) * 1.15;
        let mut chart = ChartBuilder::on(&right)
            .caption("throughput (images/s, higher is better)", (FONT, 18))
            .x_label_area_size(70)
            .y_label_area_size(70)
            .build_cartesian_2d(-0.5..n as f64 - 0.5, 0.0..top)?;
        let names: Vec<String> = self.rows.iter().map(short_name).collect();
        // Bars sit at integer x; only ticks that land on one get the run's name.
        let x_fmt = |v: &f64| match (v.round() - v).abs() < 1e-6 && *v >= 0.0 {
            true => names.get(v.round() as usize).cloned().unwrap_or_default(),
            false => String::new(),
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .max_light_lines(1)
            .x_labels(n)
            .x_label_formatter(&x_fmt)
            .label_style((FONT, 14))
            .y_desc("images/s")
            .axis_desc_style((FONT, 16))
            .draw()?;
        for (i, r) in self.rows.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let v = if r.images_per_s.is_finite() { r.images_per_s } else { 0.0 };
            chart.draw_series(std::iter::once(Rectangle::new(
                [(i as f64 - 0.35, 0.0), (i as f64 + 0.35, v)],
                color.mix(0.8).filled(),
            )))?;
            chart.draw_series(std::iter::once(Text::new(
                format!("{v:.0}"),
                (i as f64 - 0.1, v + top * 0.04),
                (FONT, 15).into_font().color(&BLACK),
            )))?;
        }
        Ok(())
    }
}

/// Draw the comparison to `path` (PNG or SVG), atomically.
pub fn draw(path: &Path, rows: &[Row]) -> Result<()> {
    let steps = rows.first().map_or(0, |r| r.losses.len());
    let series = rows
        .iter()
        .map(|r| Series {
            label: short_name(r),
            points: r.losses.iter().enumerate().map(|(s, &l)| (s as f64, l as f64)).collect(),
        })
        .collect();
    let worst = rows.iter().map(|r| r.max_abs_loss_diff_vs_cpu).fold(0.0, f64::max);
    let curves = Chart {
        title: "wgtrain compare: training loss".into(),
        subtitle: Some(format!("{steps} steps, same init and batches; max |Δloss| vs CPU = {worst:.2e}")),
        x_label: "step".into(),
        panels: vec![Panel { y_label: "batch loss".into(), series, weight: 1 }],
        size: (860, 700),
    };
    plot::save(path, &CompareFigure { rows, curves })
}
