//! Charts drawn with plotters (schedule curves now, compare plots later): [`line_chart`] draws one or more
//! stacked panels of line series sharing the x axis, as PNG or SVG by the file's extension, written
//! through [`crate::output::write_file`] (atomic for regular files, in place for devices).
//!
//! Text uses the DejaVu Sans font embedded from `assets/fonts/` (plotters' `ab_glyph` backend has no
//! system fonts), registered once as "sans-serif".

use std::ops::Range;
use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use crate::util::write_atomic;
use crate::{Error, Result};

static FONT_BYTES: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");
pub const FONT: &str = "sans-serif";

/// Colours for successive series of a panel (matplotlib's first four, readable on white).
/// matplotlib's tab10 (blue, red, green, orange first, as before) then tab20's lighter tones: twenty distinct
/// colours, so a sweep's twenty curves stay apart.
pub const PALETTE: [RGBColor; 20] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(174, 199, 232),
    RGBColor(255, 152, 150),
    RGBColor(152, 223, 138),
    RGBColor(255, 187, 120),
    RGBColor(197, 176, 213),
    RGBColor(196, 156, 148),
    RGBColor(247, 182, 210),
    RGBColor(199, 199, 199),
    RGBColor(219, 219, 141),
    RGBColor(158, 218, 229),
];

/// One curve: `(x, y)` points in drawing order.
#[derive(Clone, Debug, Default)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// One panel: a y axis and the series drawn against it. `weight` sets its share of the height.
#[derive(Clone, Debug)]
pub struct Panel {
    pub y_label: String,
    pub series: Vec<Series>,
    pub weight: u32,
}

/// A chart: title (plus an optional smaller subtitle), a shared x axis, panels stacked top to bottom.
#[derive(Clone, Debug)]
pub struct Chart {
    pub title: String,
    pub subtitle: Option<String>,
    pub x_label: String,
    pub panels: Vec<Panel>,
    /// Pixel size `(width, height)`.
    pub size: (u32, u32),
}

/// The image formats [`line_chart`] writes, chosen by extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Png,
    Svg,
}

/// The format for `path` from its extension (`.png` or `.svg`, any case); anything else is a usage error.
/// A per-step value (a learning rate, a momentum) as the stairs it is: each value holds from its step until the
/// next point's, so a step schedule is drawn as steps, not as slopes between them. Points in x order.
pub fn stairs(points: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(2 * points.len());
    for (i, &(x, y)) in points.iter().enumerate() {
        if let Some(&(_, prev)) = i.checked_sub(1).map(|j| &points[j])
            && prev != y
        {
            out.push((x, prev));
        }
        out.push((x, y));
    }
    out
}

pub fn format_of(path: &Path) -> Result<Format> {
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("png") => Ok(Format::Png),
        Some("svg") => Ok(Format::Svg),
        other => Err(Error::Usage(format!(
            "{}: plot files must end in .png or .svg (got {})",
            path.display(),
            other.map_or("no extension".to_string(), |e| format!(".{e}"))
        ))),
    }
}

fn ensure_font() -> Result<()> {
    static OK: OnceLock<bool> = OnceLock::new();
    if *OK.get_or_init(|| register_font(FONT, FontStyle::Normal, FONT_BYTES).is_ok()) {
        Ok(())
    } else {
        Err(Error::Usage("the embedded plot font could not be loaded".into()))
    }
}

fn draw_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::io(path, std::io::Error::other(format!("drawing the chart failed: {e}")))
}

/// Plotters' error for a drawing backend.
pub type DrawResult<DB> = std::result::Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// Something drawable into a plotters area of any backend (PNG or SVG), saved by [`save`].
pub trait Figure {
    /// Pixel size `(width, height)`.
    fn size(&self) -> (u32, u32);
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB>;
}

impl Figure for Chart {
    fn size(&self) -> (u32, u32) {
        self.size
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        render(root, self)
    }
}

/// Draw `chart` to `path` (PNG or SVG by extension), atomically.
pub fn line_chart(path: &Path, chart: &Chart) -> Result<()> {
    save(path, chart)
}

/// Draw `fig` to `path` (PNG or SVG by extension), atomically.
pub fn save<F: Figure>(path: &Path, fig: &F) -> Result<()> {
    let format = format_of(path)?;
    ensure_font()?;
    match format {
        Format::Svg => {
            let mut svg = String::new();
            {
                let root = SVGBackend::with_string(&mut svg, fig.size()).into_drawing_area();
                fig.draw(&root).map_err(|e| draw_err(path, e))?;
                root.present().map_err(|e| draw_err(path, e))?;
            }
            write_atomic(path, svg.as_bytes())
        }
        Format::Png => {
            // Drawn into memory and encoded here, so the file goes through the same writer as every other
            // output (devices, symlinks, stale temporaries), and a failure reads as text, not as Rust debug.
            let (w, h) = fig.size();
            let mut rgb = vec![0u8; w as usize * h as usize * 3];
            {
                let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
                fig.draw(&root).map_err(|e| draw_err(path, e))?;
                root.present().map_err(|e| draw_err(path, e))?;
            }
            write_atomic(path, &encode_png(&rgb, w, h).map_err(|e| draw_err(path, e))?)
        }
    }
}

/// PNG bytes of an 8-bit RGB image.
fn encode_png(rgb: &[u8], width: u32, height: u32) -> std::result::Result<Vec<u8>, png::EncodingError> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, width, height);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header()?;
    writer.write_image_data(rgb)?;
    writer.finish()?;
    Ok(out)
}

/// Range of all finite values, padded by 5% (a flat line gets a visible band around it).
fn padded(values: impl Iterator<Item = f64>) -> Range<f64> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return 0.0..1.0;
    }
    if hi - lo <= f64::EPSILON * hi.abs().max(lo.abs()) {
        let d = if hi == 0.0 { 1e-3 } else { hi.abs() * 0.1 };
        return lo - d..hi + d;
    }
    let pad = (hi - lo) * 0.05;
    lo - pad..hi + pad
}

/// How y tick labels are written: values are divided by `10^exp` (then named in the axis label, e.g.
/// "learning rate (×1e-4)") and shown with `decimals` digits, chosen from the tick spacing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TickFormat {
    pub exp: i32,
    pub decimals: usize,
}

impl TickFormat {
    /// For an axis spanning `range` with about 10 ticks.
    pub fn for_range(range: &Range<f64>) -> TickFormat {
        let amax = range.start.abs().max(range.end.abs());
        let exp = if amax > 0.0 && !(1e-2..1e4).contains(&amax) { amax.log10().floor() as i32 } else { 0 };
        let span = (range.end - range.start) / 10f64.powi(exp);
        let step = span / 10.0;
        let decimals = if step > 0.0 { (-step.log10().floor()).clamp(0.0, 8.0) as usize } else { 2 };
        TickFormat { exp, decimals }
    }

    pub fn label(&self, v: f64) -> String {
        let x = v / 10f64.powi(self.exp);
        // Avoid "-0.00" at the origin.
        let x = if x.abs() < 0.5 * 10f64.powi(-(self.decimals as i32)) { 0.0 } else { x };
        format!("{x:.*}", self.decimals)
    }

    /// The axis-label suffix naming the scale, e.g. " (×1e-4)".
    pub fn suffix(&self) -> String {
        if self.exp == 0 { String::new() } else { format!(" (×1e{})", self.exp) }
    }
}

/// Title, subtitle and the stacked panels of `chart`, filling `root`.
pub fn render<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, chart: &Chart) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let (w, _) = root.dim_in_pixel();
    root.draw_text(&chart.title, &TextStyle::from((FONT, 26)).color(&BLACK), (20, 12))?;
    let mut top = 48;
    if let Some(sub) = &chart.subtitle {
        let per_line = (w.saturating_sub(40) / 8).max(20) as usize;
        for line in wrap(sub, per_line, 2) {
            root.draw_text(&line, &TextStyle::from((FONT, 15)).color(&RGBColor(90, 90, 90)), (20, top - 4))?;
            top += 20;
        }
    }
    let body = root.margin(top, 10, 10, 25);
    let xr = padded_x(chart);
    let mut rest = body;
    for (i, panel) in chart.panels.iter().enumerate() {
        let area = if i + 1 == chart.panels.len() {
            rest.clone()
        } else {
            let h = rest.dim_in_pixel().1 as f64 * panel.weight.max(1) as f64
                / chart.panels[i..].iter().map(|p| p.weight.max(1)).sum::<u32>() as f64;
            let (a, b) = rest.split_vertically(h as u32);
            rest = b;
            a
        };
        draw_panel(&area, panel, xr.clone(), &chart.x_label, i + 1 == chart.panels.len(), w)?;
    }
    Ok(())
}

/// Split `text` into at most `max_lines` lines of at most `width` characters, preferring to break after a
/// comma or space; an ellipsis marks text left out.
fn wrap(text: &str, width: usize, max_lines: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut lines = Vec::new();
    let mut start = 0;
    while start < chars.len() && lines.len() < max_lines {
        let mut end = (start + width).min(chars.len());
        let brk = chars[start..end].iter().rposition(|&c| c == ',' || c == ' ').filter(|&b| b > width / 2);
        if let (true, Some(b)) = (end < chars.len(), brk) {
            end = start + b + 1;
        }
        let mut line: String = chars[start..end].iter().collect();
        if lines.len() + 1 == max_lines && end < chars.len() {
            line.pop();
            line.push('…');
        }
        lines.push(line);
        start = end;
    }
    lines
}

fn padded_x(chart: &Chart) -> Range<f64> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for s in chart.panels.iter().flat_map(|p| &p.series) {
        for &(x, _) in &s.points {
            lo = lo.min(x);
            hi = hi.max(x);
        }
    }
    if !lo.is_finite() {
        0.0..1.0
    } else if hi <= lo {
        lo..lo + 1.0
    } else {
        lo..hi
    }
}

/// Where the legend hides the least of the curves: of the four corners and the middles of the right, top and
/// bottom edges, the place whose legend-sized box (estimated from the labels, in the plot's pixels) covers the
/// fewest samples of the panel's lines (vertices and points along each segment); the upper right on a tie.
fn legend_position(panel: &Panel, (xr, yr): (&Range<f64>, &Range<f64>), (w, h): (u32, u32)) -> SeriesLabelPosition {
    use SeriesLabelPosition as P;
    let chars = panel.series.iter().map(|s| s.label.chars().count()).max().unwrap_or(0);
    // plotters' legend: a ~30 px sample line and gap, ~8 px per character at 15 px, ~20 px per row, a margin.
    let bw = ((40 + 8 * chars) as f64 / f64::from(w)).min(1.0);
    let bh = ((20 * panel.series.len() + 14) as f64 / f64::from(h)).min(1.0);
    let (sx, sy) = ((xr.end - xr.start).max(f64::MIN_POSITIVE), (yr.end - yr.start).max(f64::MIN_POSITIVE));
    // Samples in [0, 1]², y up.
    let mut samples = Vec::new();
    for s in &panel.series {
        let pts: Vec<(f64, f64)> = s
            .points
            .iter()
            .filter(|p| p.1.is_finite())
            .map(|p| ((p.0 - xr.start) / sx, (p.1 - yr.start) / sy))
            .collect();
        for pair in pts.windows(2) {
            for k in 0..8 {
                let t = f64::from(k) / 8.0;
                samples.push((pair[0].0 + t * (pair[1].0 - pair[0].0), pair[0].1 + t * (pair[1].1 - pair[0].1)));
            }
        }
        samples.extend(pts.last().copied());
    }
    let (mx, my) = ((1.0 - bw) / 2.0, (1.0 - bh) / 2.0);
    let places = [
        (P::UpperRight, 1.0 - bw, 1.0 - bh),
        (P::UpperLeft, 0.0, 1.0 - bh),
        (P::LowerRight, 1.0 - bw, 0.0),
        (P::LowerLeft, 0.0, 0.0),
        (P::MiddleRight, 1.0 - bw, my),
        (P::UpperMiddle, mx, 1.0 - bh),
        (P::LowerMiddle, mx, 0.0),
    ];
    let covered =
        |x0: f64, y0: f64| samples.iter().filter(|&&(x, y)| x >= x0 && x <= x0 + bw && y >= y0 && y <= y0 + bh).count();
    let mut best = (P::UpperRight, usize::MAX);
    for (place, x0, y0) in places {
        let n = covered(x0, y0);
        if n < best.1 {
            best = (place, n);
        }
    }
    best.0
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &Panel,
    xr: Range<f64>,
    x_label: &str,
    bottom: bool,
    width: u32,
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let yr = padded(panel.series.iter().flat_map(|s| s.points.iter().map(|p| p.1)));
    let fmt = TickFormat::for_range(&yr);
    let y_label_area = 20 + 11 * (fmt.decimals as u32 + 3).min(12);
    let (x_area, y_area) = (if bottom { 48 } else { 28 }, y_label_area.max(70));
    let (w_px, h_px) = area.dim_in_pixel();
    let plot_px = (w_px.saturating_sub(y_area + 20).max(1), h_px.saturating_sub(x_area + 8).max(1));
    let legend_at = legend_position(panel, (&xr, &yr), plot_px);
    let mut chart = ChartBuilder::on(area)
        .margin_right(20)
        .margin_top(8)
        .x_label_area_size(x_area)
        .y_label_area_size(y_area)
        .build_cartesian_2d(xr, yr)?;
    let y_desc = format!("{}{}", panel.y_label, fmt.suffix());
    let x_fmt = |v: &f64| format!("{}", v.round() as i64);
    let y_fmt = |v: &f64| fmt.label(*v);
    let mut mesh = chart.configure_mesh();
    mesh.y_desc(y_desc)
        .x_labels((width / 90).max(4) as usize)
        .y_labels(8)
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 17))
        .max_light_lines(1)
        .light_line_style(RGBColor(240, 240, 240))
        .bold_line_style(RGBColor(215, 215, 215));
    if bottom {
        mesh.x_desc(x_label);
    }
    mesh.draw()?;
    let legend = panel.series.len() > 1;
    for (i, s) in panel.series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let drawn = chart.draw_series(LineSeries::new(
            s.points.iter().copied().filter(|p| p.1.is_finite()),
            // With a few series, earlier ones are drawn wider, so curves that coincide (compare's backends) all stay
            // visible; with many (a sweep) every line is thin.
            ShapeStyle {
                color: color.to_rgba(),
                filled: false,
                stroke_width: if panel.series.len() <= 4 { 2 + 2 * (panel.series.len() - 1 - i) as u32 } else { 2 },
            },
        ))?;
        if legend {
            drawn
                .label(s.label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
        }
    }
    if legend {
        chart
            .configure_series_labels()
            .position(legend_at)
            .label_font((FONT, 15))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(200, 200, 200))
            .draw()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_legend_goes_where_it_hides_the_least() {
        let series = |label: &str, f: fn(f64) -> f64| Series {
            label: label.into(),
            points: (0..=100).map(|i| (f64::from(i), f(f64::from(i)))).collect(),
        };
        let panel = |series: Vec<Series>| Panel { y_label: "loss".into(), series, weight: 1 };
        let (xr, yr) = (0.0..100.0, 0.0..1.0);
        // Curves along the top edge: the legend goes to the bottom.
        let high = panel(vec![series("a", |_| 0.97), series("b", |_| 0.93)]);
        assert_eq!(legend_position(&high, (&xr, &yr), (800, 400)), SeriesLabelPosition::LowerRight);
        // Falling losses leave the upper right empty.
        let falling = panel(vec![series("a", |x| 1.0 - x / 100.0), series("b", |x| 0.9 - 0.8 * x / 100.0)]);
        assert_eq!(legend_position(&falling, (&xr, &yr), (800, 400)), SeriesLabelPosition::UpperRight);
        // Rising curves leave the upper left empty.
        let rising = panel(vec![series("a", |x| x / 100.0), series("b", |x| 0.8 * x / 100.0)]);
        assert_eq!(legend_position(&rising, (&xr, &yr), (800, 400)), SeriesLabelPosition::UpperLeft);
    }

    #[test]
    fn a_step_schedule_is_drawn_as_stairs() {
        let pts = vec![(0.0, 0.1), (1.0, 0.1), (2.0, 0.01), (3.0, 0.01), (4.0, 0.001)];
        let s = stairs(pts);
        // Each drop happens at its step, from the old value straight down: no slope between steps.
        assert_eq!(s, vec![(0.0, 0.1), (1.0, 0.1), (2.0, 0.1), (2.0, 0.01), (3.0, 0.01), (4.0, 0.01), (4.0, 0.001)]);
        assert!(stairs(Vec::new()).is_empty());
    }
    use super::*;

    #[test]
    fn tick_format_scales_small_values() {
        let f = TickFormat::for_range(&(0.0..4e-4));
        assert_eq!(f.exp, -4);
        assert_eq!(f.suffix(), " (×1e-4)");
        assert_eq!(f.label(2e-4), "2.0");
        let f = TickFormat::for_range(&(0.0..0.1));
        assert_eq!((f.exp, f.decimals), (0, 2));
        let f = TickFormat::for_range(&(-1e6..3e6));
        assert_eq!((f.exp, f.label(2e6).as_str()), (6, "2.0"));
        let f = TickFormat::for_range(&(0.8..0.96));
        assert_eq!((f.exp, f.decimals), (0, 2));
        assert_eq!(f.label(0.85), "0.85");
    }

    #[test]
    fn wrap_breaks_after_commas_and_marks_cuts() {
        assert_eq!(wrap("ab,cd,ef", 6, 3), vec!["ab,cd,", "ef"]);
        assert_eq!(wrap("ab,cd,ef,gh", 6, 1), vec!["ab,cd…"]);
        assert_eq!(wrap("short", 80, 2), vec!["short"]);
    }

    #[test]
    fn extension_picks_format() {
        assert_eq!(format_of(Path::new("a.PNG")).unwrap(), Format::Png);
        assert_eq!(format_of(Path::new("dir/a.svg")).unwrap(), Format::Svg);
        assert!(matches!(format_of(Path::new("a.jpg")), Err(Error::Usage(m)) if m.contains(".jpg")));
        assert!(matches!(format_of(Path::new("a")), Err(Error::Usage(_))));
    }
}
