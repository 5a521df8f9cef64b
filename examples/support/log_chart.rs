//! A line chart with logarithmic y axes for the examples, drawn through the crate's [`wgtrain::plot::Figure`] (so
//! it gets the embedded font and the one atomic PNG/SVG writer). The crate's own `Chart` has linear axes only; a
//! loss that spans ten orders of magnitude (a diverging run beside a converging one) needs a log scale.

use std::ops::Range;

use plotters::coord::Shift;
use plotters::prelude::*;
use wgtrain::plot::{DrawResult, FONT, Figure, PALETTE};

/// One curve; non-finite and non-positive values are left out (a log axis cannot show them). `mark_end` draws a
/// cross at the last point (where a run stopped); `dashed` is for reference lines, so a curve under one shows.
pub struct Line {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    pub mark_end: bool,
    pub dashed: bool,
}

/// One panel: its y label and lines, on a log₁₀ y axis; `weight` is its share of the height, `legend` whether it
/// names its lines (panels that repeat the same runs need it once).
pub struct LogPanel {
    pub y_label: String,
    pub lines: Vec<Line>,
    pub weight: u32,
    pub legend: bool,
}

/// Panels stacked top to bottom, sharing the x axis.
pub struct LogChart {
    pub title: String,
    pub subtitle: String,
    pub x_label: String,
    pub panels: Vec<LogPanel>,
    pub size: (u32, u32),
    /// Where the legend goes: a corner the curves leave empty.
    pub legend_at: SeriesLabelPosition,
}

fn drawable(p: &(f64, f64)) -> bool {
    p.0.is_finite() && p.1.is_finite() && p.1 > 0.0
}

/// The y range of a panel in powers of ten just outside its data (at least one decade).
fn y_range(panel: &LogPanel) -> Range<f64> {
    let ys = panel.lines.iter().flat_map(|l| l.points.iter().filter(|p| drawable(p)).map(|p| p.1));
    let (lo, hi) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| (a.min(y), b.max(y)));
    if !lo.is_finite() {
        return 0.1..10.0;
    }
    let (lo, hi) = (10f64.powf(lo.log10().floor()), 10f64.powf(hi.log10().ceil()));
    if hi > lo { lo..hi } else { lo..lo * 10.0 }
}

/// Tick label for a log axis: `1e-3`, `0.1`, `10`, `1e6`.
fn log_label(v: f64) -> String {
    if (1e-2..1e4).contains(&v.abs()) { format!("{}", (v * 1e6).round() / 1e6) } else { format!("{v:.0e}") }
}

impl Figure for LogChart {
    fn size(&self) -> (u32, u32) {
        self.size
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        root.fill(&WHITE)?;
        root.draw_text(&self.title, &TextStyle::from((FONT, 26)).color(&BLACK), (20, 12))?;
        root.draw_text(&self.subtitle, &TextStyle::from((FONT, 15)).color(&RGBColor(90, 90, 90)), (20, 46))?;
        let x_max = self.panels.iter().flat_map(|p| &p.lines).flat_map(|l| &l.points).map(|p| p.0).fold(1.0, f64::max);
        let body = root.margin(70, 10, 10, 25);
        let total: u32 = self.panels.iter().map(|p| p.weight.max(1)).sum();
        let height = body.dim_in_pixel().1 as f64;
        let mut cuts = Vec::new();
        let mut acc = 0;
        for p in &self.panels[..self.panels.len().saturating_sub(1)] {
            acc += p.weight.max(1);
            cuts.push((height * acc as f64 / total as f64) as i32);
        }
        let areas = body.split_by_breakpoints([] as [i32; 0], cuts);
        for (i, (area, panel)) in areas.iter().zip(&self.panels).enumerate() {
            let bottom = i + 1 == self.panels.len();
            let mut chart = ChartBuilder::on(area)
                .margin_right(20)
                .margin_top(8)
                .x_label_area_size(if bottom { 48 } else { 28 })
                .y_label_area_size(80)
                .build_cartesian_2d(0.0..x_max, y_range(panel).log_scale())?;
            let mut mesh = chart.configure_mesh();
            mesh.y_desc(panel.y_label.as_str())
                .x_label_formatter(&|v| format!("{}", v.round() as i64))
                .y_label_formatter(&|v| log_label(*v))
                .label_style((FONT, 15))
                .axis_desc_style((FONT, 17))
                .light_line_style(RGBColor(240, 240, 240))
                .bold_line_style(RGBColor(215, 215, 215));
            if bottom {
                mesh.x_desc(self.x_label.as_str());
            }
            mesh.draw()?;
            for (j, line) in panel.lines.iter().enumerate() {
                let color = PALETTE[j % PALETTE.len()];
                let pts: Vec<(f64, f64)> = line.points.iter().copied().filter(drawable).collect();
                let drawn = if line.dashed {
                    chart.draw_series(DashedLineSeries::new(pts.iter().copied(), 10, 6, color.stroke_width(2)))?
                } else {
                    chart.draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))?
                };
                drawn
                    .label(line.label.clone())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(3)));
                if let (true, Some(&end)) = (line.mark_end, pts.last()) {
                    chart.draw_series(std::iter::once(Cross::new(end, 7, color.stroke_width(3))))?;
                }
            }
            if !panel.legend {
                continue;
            }
            chart
                .configure_series_labels()
                .position(self.legend_at.clone())
                .label_font((FONT, 15))
                .background_style(WHITE.mix(0.85))
                .border_style(RGBColor(200, 200, 200))
                .draw()?;
        }
        Ok(())
    }
}
