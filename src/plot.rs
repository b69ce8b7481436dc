//! Figures (feature `plot`, on by default): the outage time series, the calibration in clock time,
//! the bifurcation diagram, the tipping map and the phase portrait, as SVG or PNG, and inline in
//! Jupyter (evcxr).
//!
//! Each figure is built from plain data (so any model's results can be drawn) and rendered on
//! demand: [`Figure::to_svg`], [`Figure::save`] (by extension, `.svg` or `.png`, written whole or
//! not at all), [`Figure::evcxr_display`].

use crate::error::Error;
use plotters::chart::SeriesAnno;
use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;
use std::sync::Once;

const FONT: &str = "sans-serif";
/// Margin around a chart, and the room for its x and y axis labels (pixels).
const MARGIN: u32 = 12;
const X_LABELS: u32 = 48;
const Y_LABELS: u32 = 78;
/// Font size of legend entries.
const LEGEND_FONT: u32 = 15;
static FONT_ONCE: Once = Once::new();

/// Registers the bundled DejaVu Sans as the figures' font (no system fonts needed).
fn register_font() {
    FONT_ONCE.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");
        // The bundled font is valid; a failure would only leave text unrendered.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, bytes);
    });
}

/// A named series of `(x, y)` points.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend label.
    pub label: String,
    /// The points.
    pub points: Vec<(f64, f64)>,
}

/// The outage time series.
#[derive(Debug, Clone, PartialEq)]
pub struct Outage {
    /// Title.
    pub title: String,
    /// The states against time (in the unit of `x_desc`).
    pub series: Vec<Series>,
    /// Time axis description, e.g. `time (hours)`.
    pub x_desc: String,
    /// Left axis description, e.g. `fraction of users`.
    pub y_desc: String,
    /// Right axis description (the states times `population`), e.g. `users`.
    pub y2_desc: String,
    /// The largest value the states can take (1 for fractions), if any: the axis stops there.
    pub upper: Option<f64>,
    /// Individuals per unit of state (secondary axis).
    pub population: f64,
    /// The wave as `[start, end]` in the time axis's unit (equal for an instantaneous wave).
    pub shock: Option<(f64, f64)>,
    /// The wave's legend label (`reboot wave` for the reference model).
    pub shock_label: String,
    /// Interventions: hour and label.
    pub interventions: Vec<(f64, String)>,
    /// Observed online users (hours, users), drawn as points, if any.
    pub observed: Vec<(f64, f64)>,
}

/// One branch of a bifurcation diagram.
#[derive(Debug, Clone, PartialEq)]
pub struct BranchLine {
    /// `(parameter, peers, stable)` in order along the branch.
    pub points: Vec<(f64, f64, bool)>,
}

/// The bifurcation diagram.
#[derive(Debug, Clone, PartialEq)]
pub struct Bifurcation {
    /// Title.
    pub title: String,
    /// Parameter name (x axis).
    pub param: String,
    /// What the branches show (y axis), e.g. `peers (fraction of users)`.
    pub y_desc: String,
    /// The branches.
    pub branches: Vec<BranchLine>,
    /// Special points: parameter, peers, kind (`fold`, `hopf`, or `hopf (subcritical)` with
    /// its criticality).
    pub special: Vec<(f64, f64, String)>,
    /// The parameter's value in the scenario, marked by a vertical line.
    pub current: Option<f64>,
}

/// A tipping map over two swept quantities.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TippingMap {
    /// Title.
    pub title: String,
    /// x quantity name and its grid values.
    pub x: (String, Vec<f64>),
    /// y quantity name and its grid values.
    pub y: (String, Vec<f64>),
    /// Values, row-major with x slowest (`z[i * ny + j]` at `x[i], y[j]`); NaN where undefined.
    pub z: Vec<f64>,
    /// What z is (colour bar label); categories `(value, label)` if z is categorical.
    pub z_label: String,
    /// Category labels for categorical values (e.g. 0 = collapsed, 1 = recovered).
    pub categories: Vec<(f64, String)>,
    /// Curves drawn over the map as solid white lines (e.g. fold curves), with labels.
    pub curves: Vec<Series>,
    /// Curves drawn over the map as dashed white lines (e.g. Hopf curves), with labels.
    pub dashed: Vec<Series>,
    /// The scenario's own point.
    pub point: Option<(f64, f64)>,
    /// Whether x and y (and curves and point) are given as log10 of the values: the axes then
    /// label the values themselves.
    pub log_axes: bool,
    /// Legend label of the scenario's point (default "this scenario"), e.g. with its value.
    pub point_label: Option<String>,
    /// Cells without a value, by reason, each reason in its own colour and named in the legend
    /// (e.g. "always down" apart from "no shock tips it"). NaN cells in no group are drawn
    /// grey and named "error".
    pub missing: Vec<MissingCells>,
}

/// Cells of a map that have no value for one reason.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MissingCells {
    /// What the reason is, as the legend says it.
    pub label: String,
    /// Fill colour (red, green, blue).
    pub rgb: (u8, u8, u8),
    /// Indices into the map's `z`.
    pub cells: Vec<usize>,
}

/// A phase portrait: one state against another (peers against supernodes).
#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    /// Title.
    pub title: String,
    /// x axis description, e.g. `peers (fraction of users)`.
    pub x_desc: String,
    /// y axis description.
    pub y_desc: String,
    /// The largest value the states can take (1 for fractions), if any.
    pub upper: Option<f64>,
    /// Equilibria: peers, supernodes, label.
    pub equilibria: Vec<(f64, f64, String)>,
    /// Trajectories (peers, supernodes) with whether they recover.
    pub trajectories: Vec<(Vec<(f64, f64)>, bool)>,
    /// A slice of the basin boundary (the saddle's stable manifold), with its label.
    pub boundary: Option<Series>,
}

/// A calibration in clock time: the fitted model's and the first guess's counter against the
/// readings (those left out of the fit drawn hollow), and below it each reading's weighted
/// residual `z = (model − observed)/σ`.
#[derive(Debug, Clone, PartialEq)]
pub struct FitPlot {
    /// Title.
    pub title: String,
    /// The clock time of `t = 0` in seconds since 1970-01-01 00:00 UTC; without it the axis
    /// shows hours from `t = 0`.
    pub start: Option<f64>,
    /// The fitted model's counter: (hours from `t = 0`, users).
    pub fitted: Vec<(f64, f64)>,
    /// The first guess's counter, the same way.
    pub first_guess: Vec<(f64, f64)>,
    /// The readings.
    pub readings: Vec<FitPoint>,
    /// The wave as `[start, end]` in hours.
    pub shock: Option<(f64, f64)>,
    /// Interventions (hours).
    pub interventions: Vec<f64>,
}

/// One reading of a [`FitPlot`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FitPoint {
    /// Hours from `t = 0`.
    pub t: f64,
    /// Observed users.
    pub users: f64,
    /// `(model − observed)/σ` for the fitted model.
    pub z: f64,
    /// Whether the fit used it.
    pub used: bool,
}

/// A general chart of lines and points, for measurements that have no figure of their own
/// (convergence studies, fit residuals, probabilities against a parameter).
#[derive(Debug, Clone, PartialEq)]
pub struct Xy {
    /// Title.
    pub title: String,
    /// x axis description.
    pub x_desc: String,
    /// y axis description.
    pub y_desc: String,
    /// Logarithmic axes (both; values must be positive).
    pub log_axes: bool,
    /// Series drawn as lines.
    pub lines: Vec<Series>,
    /// Series drawn as markers (with their own legend entries); with lines present, the first
    /// is drawn black (data against a model).
    pub points: Vec<Series>,
    /// Where the legend goes.
    pub legend: Corner,
}

/// A corner of the plotting area.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Corner {
    /// Upper left.
    UpperLeft,
    /// Upper right.
    #[default]
    UpperRight,
    /// Lower left.
    LowerLeft,
    /// Lower right.
    LowerRight,
}

/// What a figure draws.
#[derive(Debug, Clone, PartialEq)]
pub enum Plot {
    /// Lines and points on linear or log-log axes.
    Xy(Xy),
    /// Time series.
    Outage(Outage),
    /// Branches against a parameter.
    Bifurcation(Bifurcation),
    /// Outcome or critical value over a plane.
    TippingMap(TippingMap),
    /// Peers against supernodes.
    Phase(Phase),
    /// A calibration: model against readings in clock time, with residuals.
    Fit(FitPlot),
}

/// A figure: a plot and its size in pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// What is drawn.
    pub plot: Plot,
    /// Width (pixels).
    pub width: u32,
    /// Height (pixels).
    pub height: u32,
}

type Res = Result<(), String>;

fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

impl Figure {
    /// A figure of the default size (900 × 560, readable at 800 px width).
    pub fn new(plot: Plot) -> Self {
        Self {
            plot,
            width: 900,
            height: 560,
        }
    }

    /// The figure as an SVG document.
    pub fn to_svg(&self) -> Result<String, Error> {
        register_font();
        let mut buf = String::new();
        {
            let root =
                SVGBackend::with_string(&mut buf, (self.width, self.height)).into_drawing_area();
            self.render(&root)
                .map_err(|e| Error::Invalid(format!("drawing the figure: {e}")))?;
            root.present()
                .map_err(|e| Error::Invalid(format!("drawing the figure: {e}")))?;
        }
        Ok(buf)
    }

    /// Writes the figure to `path` (`.svg` or `.png`) whole or not at all (see
    /// [`crate::files::write_atomic`]); replaces an existing file.
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("svg") => {
                let svg = self.to_svg()?;
                crate::files::write_atomic(path, true, |w| {
                    w.write_all(svg.as_bytes()).map_err(|e| Error::Io {
                        path: path.display().to_string(),
                        source: e,
                    })
                })
            }
            Some("png") => {
                register_font();
                // Rendered in the temporary directory, then written to `path` as one piece.
                let tmp = std::env::temp_dir().join(format!(
                    "selfheal-figure-{}-{:?}.png",
                    std::process::id(),
                    std::thread::current().id()
                ));
                let result = (|| {
                    let root =
                        BitMapBackend::new(&tmp, (self.width, self.height)).into_drawing_area();
                    self.render(&root)?;
                    root.present().map_err(err)
                })();
                match result {
                    // Copied through the one atomic writer, which follows links and never
                    // replaces a device.
                    Ok(()) => {
                        let bytes = std::fs::read(&tmp).map_err(|e| Error::Io {
                            path: tmp.display().to_string(),
                            source: e,
                        });
                        let _ = std::fs::remove_file(&tmp);
                        let bytes = bytes?;
                        crate::files::write_atomic(path, true, |w| {
                            w.write_all(&bytes).map_err(|e| Error::Io {
                                path: path.display().to_string(),
                                source: e,
                            })
                        })
                    }
                    Err(e) => {
                        let _ = std::fs::remove_file(&tmp);
                        Err(Error::Invalid(format!(
                            "{}: drawing the figure: {e}",
                            path.display()
                        )))
                    }
                }
            }
            _ => Err(Error::Invalid(format!(
                "{}: figures are written as .svg or .png",
                path.display()
            ))),
        }
    }

    /// Shows the figure inline in a Jupyter notebook run by the evcxr kernel.
    pub fn evcxr_display(&self) {
        match self.to_svg() {
            Ok(svg) => println!("EVCXR_BEGIN_CONTENT image/svg+xml\n{svg}\nEVCXR_END_CONTENT"),
            Err(e) => eprintln!("{e}"),
        }
    }

    fn render<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Res {
        root.fill(&WHITE).map_err(err)?;
        match &self.plot {
            Plot::Outage(o) => draw_outage(root, o),
            Plot::Bifurcation(b) => draw_bifurcation(root, b),
            Plot::TippingMap(m) => draw_map(root, m),
            Plot::Phase(p) => draw_phase(root, p),
            Plot::Xy(x) => draw_xy(root, x),
            Plot::Fit(f) => draw_fit(root, f),
        }
    }
}

const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(23, 190, 207),
];

/// Most decades a log axis spans: values further below the largest (down to subnormal
/// numbers, where the axis' tick arithmetic breaks down) sit at its floor.
const MAX_DECADES: f64 = 40.0;

/// A log-axis range covering the positive values, padded to whole decades, at most
/// [`MAX_DECADES`] wide.
fn log_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, 0.0f64);
    for v in values.filter(|v| v.is_finite() && *v > 0.0) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (1e-9, 1.0);
    }
    let top = hi.log10().ceil().min(300.0);
    let bottom = lo.log10().floor().max(top - MAX_DECADES);
    (10f64.powf(bottom), 10f64.powf(top.max(bottom + 1.0)))
}

/// A linear-axis range `[x0, x1]` that the axis can draw ticks on: finite, increasing, and at
/// least a billionth of its magnitude wide (and at least 1e-12), widened about its centre
/// when not.
fn lin_range(x0: f64, x1: f64) -> (f64, f64) {
    if !(x0.is_finite() && x1.is_finite()) {
        return (0.0, 1.0);
    }
    let (x0, x1) = (x0.min(x1), x0.max(x1));
    let min_span = (1e-9 * x0.abs().max(x1.abs())).max(1e-12);
    if x1 - x0 >= min_span {
        (x0, x1)
    } else {
        let c = 0.5 * (x0 + x1);
        (c - min_span, c + min_span)
    }
}

fn draw_outage<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, o: &Outage) -> Res {
    let t_max = o
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .fold(0.0, f64::max)
        .max(1e-9);
    let (lo, hi) = log_range(
        o.series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .chain(o.observed.iter().map(|p| p.1 / o.population)),
    );
    let hi = o.upper.map_or(hi, |u| hi.min(u));
    let (title, font) = fitted_title(root, &o.title, 19);
    let mut chart = ChartBuilder::on(root)
        .caption(&title, font)
        .margin(MARGIN)
        .x_label_area_size(X_LABELS)
        .y_label_area_size(Y_LABELS)
        .right_y_label_area_size(86)
        .build_cartesian_2d(0.0..t_max, (lo..hi).log_scale())
        .map_err(err)?
        .set_secondary_coord(
            0.0..t_max,
            (lo * o.population..hi * o.population).log_scale(),
        );
    chart
        .configure_mesh()
        .x_desc(&o.x_desc)
        .y_desc(&o.y_desc)
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 17))
        .y_label_formatter(&|v| format!("{v:.0e}"))
        .draw()
        .map_err(err)?;
    chart
        .configure_secondary_axes()
        .y_desc(&o.y2_desc)
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 17))
        .y_label_formatter(&|v| human(*v))
        .draw()
        .map_err(err)?;
    if let Some((a, b)) = o.shock {
        let shade = RGBColor(250, 200, 120).mix(0.45);
        let b = if b > a { b } else { a + t_max * 0.004 };
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(a, lo), (b, hi)],
                shade.filled(),
            )))
            .map_err(err)?
            .label(o.shock_label.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 18, y + 6)], shade.filled()));
    }
    for (k, (t, label)) in o.interventions.iter().enumerate() {
        let style = ShapeStyle::from(&BLACK).stroke_width(2);
        chart
            .draw_series(DashedLineSeries::new(vec![(*t, lo), (*t, hi)], 8, 6, style))
            .map_err(err)?;
        chart
            .draw_series(std::iter::once(Text::new(
                label.clone(),
                // Left of the line, low in the plot, clear of the legend box.
                (
                    *t - t_max * 0.006,
                    lo * (hi / lo).powf(0.3 + 0.06 * k as f64),
                ),
                TextStyle::from((FONT, 15).into_font()).pos(Pos::new(HPos::Right, VPos::Center)),
            )))
            .map_err(err)?;
    }
    for (k, s) in o.series.iter().enumerate() {
        let c = PALETTE[k % PALETTE.len()];
        let pts: Vec<(f64, f64)> = s.points.iter().copied().filter(|p| p.1 > 0.0).collect();
        chart
            .draw_series(LineSeries::new(pts, c.stroke_width(3)))
            .map_err(err)?
            .label(&s.label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(3)));
    }
    if !o.observed.is_empty() {
        chart
            .draw_secondary_series(
                o.observed
                    .iter()
                    .map(|(t, u)| Circle::new((*t, *u), 5, BLACK.filled())),
            )
            .map_err(err)?
            .label("observed online users")
            .legend(|(x, y)| Circle::new((x + 9, y), 5, BLACK.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .label_font((FONT, LEGEND_FONT))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)
}

/// 2400000 → "2.4M".
fn human(v: f64) -> String {
    let trim = |x: f64| {
        let s = format!("{x:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    };
    let a = v.abs();
    if a >= 1e6 {
        format!("{}M", trim(v / 1e6))
    } else if a >= 1e3 {
        format!("{}k", trim(v / 1e3))
    } else if a >= 1.0 {
        trim(v)
    } else {
        format!("{v:.1e}")
    }
}

fn draw_bifurcation<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, b: &Bifurcation) -> Res {
    let xs = b
        .branches
        .iter()
        .flat_map(|br| br.points.iter().map(|p| p.0));
    let (x0, x1) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, c), x| {
        (a.min(x), c.max(x))
    });
    let (x0, x1) = if x0 < x1 {
        lin_range(x0, x1)
    } else {
        lin_range(x0 - 1.0, x0 + 1.0)
    };
    let (lo, hi) = log_range(
        b.branches
            .iter()
            .flat_map(|br| br.points.iter().map(|p| p.1)),
    );
    let log_x = x0 > 0.0 && x1 / x0 > 20.0;
    let (title, font) = fitted_title(root, &b.title, 22);
    let mut builder = ChartBuilder::on(root);
    builder
        .caption(&title, font)
        .margin(MARGIN)
        // Room for the last x label, centred on the right edge.
        .margin_right(32)
        .x_label_area_size(X_LABELS)
        .y_label_area_size(Y_LABELS);
    if log_x {
        let mut chart = builder
            .build_cartesian_2d((x0..x1).log_scale(), (lo..hi).log_scale())
            .map_err(err)?;
        mesh(&mut chart, &b.param, &b.y_desc, true)?;
        draw_branches_log(&mut chart, b, lo, hi)?;
        legend(&mut chart)
    } else {
        let mut chart = builder
            .build_cartesian_2d(x0..x1, (lo..hi).log_scale())
            .map_err(err)?;
        mesh(&mut chart, &b.param, &b.y_desc, false)?;
        draw_branches(&mut chart, b, lo, hi)?;
        legend(&mut chart)
    }
}

fn mesh<'a, DB: DrawingBackend + 'a, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    x: &str,
    y: &str,
    log_x: bool,
) -> Res
where
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    // A log axis ticks every 1…9 × 10^k; labelling only 1, 2 and 5 keeps the labels apart.
    let x_label = |v: &f64| {
        if log_x && !matches!(leading_digit(*v), Some(1 | 2 | 5)) {
            String::new()
        } else {
            human_or_plain(*v)
        }
    };
    chart
        .configure_mesh()
        .x_desc(x)
        .y_desc(y)
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 17))
        .y_label_formatter(&|v| format!("{v:.0e}"))
        .x_label_formatter(&x_label)
        .draw()
        .map_err(err)
}

/// The first significant digit of a positive value (rounded to 12 digits first, so 3000 read
/// as 2999.9999… is 3).
fn leading_digit(v: f64) -> Option<u32> {
    if !(v.is_finite() && v > 0.0) {
        return None;
    }
    let e = v.log10().floor();
    let m = (v / 10f64.powf(e) * 1e11).round() / 1e11;
    let m = if m >= 10.0 { m / 10.0 } else { m };
    Some(m.floor() as u32)
}

/// A value with four significant digits, in scientific notation when very large or small.
fn human_or_plain(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let a = v.abs();
    if !(1e-3..1e6).contains(&a) {
        return format!("{v:.2e}");
    }
    let digits = (3 - a.log10().floor() as i32).max(0) as usize;
    let s = format!("{v:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn legend<'a, DB: DrawingBackend + 'a, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
) -> Res
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    legend_at(chart, SeriesLabelPosition::LowerRight)
}

/// The legend box every figure uses, at a chosen corner.
fn legend_at<'a, DB: DrawingBackend + 'a, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    at: SeriesLabelPosition,
) -> Res
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    chart
        .configure_series_labels()
        .position(at)
        .label_font((FONT, LEGEND_FONT))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)
}

/// A dashed line's legend glyph at `at`: two strokes in the 18-pixel slot of a solid one.
macro_rules! dashed_glyph {
    ($at:expr, $style:expr) => {{
        let ((x, y), style) = ($at, $style);
        EmptyElement::at((x, y))
            + PathElement::new(vec![(0, 0), (7, 0)], style)
            + PathElement::new(vec![(11, 0), (18, 0)], style)
    }};
}

/// Splits a branch into runs of equal stability.
fn runs(points: &[(f64, f64, bool)]) -> Vec<(bool, Vec<(f64, f64)>)> {
    let mut out: Vec<(bool, Vec<(f64, f64)>)> = vec![];
    for (k, p) in points.iter().enumerate() {
        match out.last_mut() {
            Some((s, v)) if *s == p.2 => v.push((p.0, p.1)),
            _ => {
                // Start the new run at the previous point so the curve has no gap.
                let mut v = vec![];
                if k > 0 {
                    v.push((points[k - 1].0, points[k - 1].1));
                }
                v.push((p.0, p.1));
                out.push((p.2, v));
            }
        }
    }
    out
}

macro_rules! branches_body {
    ($chart:expr, $b:expr, $lo:expr, $hi:expr) => {{
        let mut stable_done = false;
        let mut unstable_done = false;
        for br in &$b.branches {
            for (stable, pts) in runs(&br.points) {
                // One quantity, one colour (the peers'); dashes say unstable.
                let c = PALETTE[0];
                if stable {
                    let s = $chart
                        .draw_series(LineSeries::new(pts, c.stroke_width(3)))
                        .map_err(err)?;
                    if !stable_done {
                        s.label("stable").legend(move |(x, y)| {
                            PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(3))
                        });
                        stable_done = true;
                    }
                } else {
                    let s = $chart
                        .draw_series(DashedLineSeries::new(pts, 7, 5, c.stroke_width(2)))
                        .map_err(err)?;
                    if !unstable_done {
                        s.label("unstable (dashed)")
                            .legend(move |at| dashed_glyph!(at, c.stroke_width(2)));
                        unstable_done = true;
                    }
                }
            }
        }
        if let Some(v) = $b.current {
            $chart
                .draw_series(DashedLineSeries::new(
                    vec![(v, $lo), (v, $hi)],
                    6,
                    4,
                    ShapeStyle::from(&RGBColor(60, 60, 60)).stroke_width(2),
                ))
                .map_err(err)?
                .label(format!("this scenario: {}", human_or_plain(v)))
                .legend(|at| dashed_glyph!(at, RGBColor(60, 60, 60).stroke_width(2)));
        }
        // One legend entry per kind of point, listing their values in order; subcritical
        // Hopf points (where the network can jump off a branch) drawn hollow.
        let mut kinds: Vec<&str> = vec![];
        for (_, _, kind) in &$b.special {
            if !kinds.contains(&kind.as_str()) {
                kinds.push(kind);
            }
        }
        for kind in kinds {
            let c = if kind == "fold" { BLACK } else { PALETTE[3] };
            let hollow = kind.contains("subcritical");
            let style = if hollow {
                c.stroke_width(3)
            } else {
                c.filled()
            };
            let mut at: Vec<(f64, f64)> = $b
                .special
                .iter()
                .filter(|p| p.2 == kind)
                .map(|p| (p.0, p.1))
                .collect();
            at.sort_by(|a, b| a.0.total_cmp(&b.0));
            let values: Vec<String> = at.iter().map(|p| human_or_plain(p.0)).collect();
            let s = $chart
                .draw_series(at.iter().map(|p| Circle::new(*p, 7, style)))
                .map_err(err)?;
            s.label(format!("{kind} at {}", values.join(", ")))
                .legend(move |(px, py)| Circle::new((px + 9, py), 6, style));
        }
        Ok(())
    }};
}

fn draw_branches<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<
        'a,
        DB,
        Cartesian2d<
            plotters::coord::types::RangedCoordf64,
            plotters::coord::combinators::LogCoord<f64>,
        >,
    >,
    b: &Bifurcation,
    lo: f64,
    hi: f64,
) -> Res {
    branches_body!(chart, b, lo, hi)
}

fn draw_branches_log<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<
        'a,
        DB,
        Cartesian2d<
            plotters::coord::combinators::LogCoord<f64>,
            plotters::coord::combinators::LogCoord<f64>,
        >,
    >,
    b: &Bifurcation,
    lo: f64,
    hi: f64,
) -> Res {
    branches_body!(chart, b, lo, hi)
}

/// About `n` round tick values (1, 2 or 5 times a power of ten apart) inside `[lo, hi]`.
fn ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite()) || hi <= lo {
        return vec![lo];
    }
    let raw = (hi - lo) / n.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last)
        .map(|k| {
            // Round away float noise (0.30000000000000004 → 0.3).
            let v = k as f64 * step;
            let digits = (-(step.log10().floor()) as i32 + 1).clamp(0, 15);
            let f = 10f64.powi(digits);
            (v * f).round() / f
        })
        .collect()
}

/// Blue (low) to yellow (high) through green.
fn colour(u: f64) -> RGBColor {
    let u = u.clamp(0.0, 1.0);
    let stops = [
        (68.0, 1.0, 84.0),
        (59.0, 82.0, 139.0),
        (33.0, 145.0, 140.0),
        (94.0, 201.0, 98.0),
        (253.0, 231.0, 37.0),
    ];
    let x = u * (stops.len() - 1) as f64;
    let k = (x.floor() as usize).min(stops.len() - 2);
    let f = x - k as f64;
    let (a, b) = (stops[k], stops[k + 1]);
    let mix = |p: f64, q: f64| (p + (q - p) * f).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// A tipping map: the colour field with its curves and legend, and beside it the colour bar
/// (or the category swatches).
fn draw_map<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, m: &TippingMap) -> Res {
    let layout = MapLayout::of(m)?;
    let (main, bar) = root.split_horizontally(root.dim_in_pixel().0 as i32 - 130);
    let mut chart = map_axes(&main, m, &layout)?;
    let errors = draw_cells(&mut chart, m, &layout)?;
    draw_map_curves(&mut chart, m, &layout)?;
    draw_map_legend(&mut chart, m, errors)?;
    // Colour bar, or category swatches.
    if m.categories.is_empty() {
        draw_colour_bar(&bar, m, &layout)
    } else {
        draw_categories(&bar, m, &layout)
    }
}

/// The chart of a tipping map: linear coordinates (log10 of the values on log axes).
type MapChart<'a, DB> = ChartContext<
    'a,
    DB,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// The colour of cells that have no value for a reason the map does not name (errors).
const ERROR_GREY: RGBColor = RGBColor(160, 160, 160);

/// Where a tipping map's cells lie and how their values map to colours.
struct MapLayout {
    /// Cell edges along x and along y (one more than the grid values).
    ex: Vec<f64>,
    ey: Vec<f64>,
    /// The plotted ranges.
    x: (f64, f64),
    y: (f64, f64),
    /// The lowest finite value and the span of the colour scale (1 when all values are equal).
    zmin: f64,
    span: f64,
}

impl MapLayout {
    /// The layout of `m`, which must hold one value per grid point.
    fn of(m: &TippingMap) -> Result<Self, String> {
        let (xs, ys) = (&m.x.1, &m.y.1);
        if xs.is_empty() || ys.is_empty() || m.z.len() != xs.len() * ys.len() {
            return Err("tipping map: z must hold one value per grid point".into());
        }
        let (ex, ey) = (cell_edges(xs), cell_edges(ys));
        let (x0, x1) = (ex[0].min(ex[ex.len() - 1]), ex[0].max(ex[ex.len() - 1]));
        let (y0, y1) = (ey[0].min(ey[ey.len() - 1]), ey[0].max(ey[ey.len() - 1]));
        let finite: Vec<f64> = m.z.iter().copied().filter(|v| v.is_finite()).collect();
        let (zmin, zmax) = finite
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(*v), b.max(*v))
            });
        let span = if zmax > zmin { zmax - zmin } else { 1.0 };
        Ok(Self {
            ex,
            ey,
            x: (x0, x1),
            y: (y0, y1),
            zmin,
            span,
        })
    }

    /// The colour of value `z` on the scale.
    fn colour_of(&self, z: f64) -> RGBColor {
        colour((z - self.zmin) / self.span)
    }

    /// The points of a curve that lie inside the plotted ranges.
    fn inside(&self, points: &[(f64, f64)]) -> Vec<(f64, f64)> {
        let ((x0, x1), (y0, y1)) = (self.x, self.y);
        points
            .iter()
            .copied()
            .filter(|(x, y)| *x >= x0 && *x <= x1 && *y >= y0 && *y <= y1)
            .collect()
    }
}

/// The edges of the cells centred on the grid values `v` (half a spacing beyond the ends; a
/// single value gets a cell of width 1).
fn cell_edges(v: &[f64]) -> Vec<f64> {
    let n = v.len();
    if n == 1 {
        return vec![v[0] - 0.5, v[0] + 0.5];
    }
    let mut e = vec![v[0] - (v[1] - v[0]) / 2.0];
    for k in 0..n - 1 {
        e.push((v[k] + v[k + 1]) / 2.0);
    }
    e.push(v[n - 1] + (v[n - 1] - v[n - 2]) / 2.0);
    e
}

/// The map's caption and axes, labelled with the values themselves on log axes.
fn map_axes<'a, DB: DrawingBackend>(
    main: &'a DrawingArea<DB, Shift>,
    m: &TippingMap,
    layout: &MapLayout,
) -> Result<MapChart<'a, DB>, String> {
    let ((x0, x1), (y0, y1)) = (
        lin_range(layout.x.0, layout.x.1),
        lin_range(layout.y.0, layout.y.1),
    );
    let (title, font) = fitted_title(main, &m.title, 22);
    let mut chart = ChartBuilder::on(main)
        .caption(&title, font)
        .margin(MARGIN)
        .x_label_area_size(X_LABELS)
        .y_label_area_size(Y_LABELS)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc(&m.x.0)
        .y_desc(&m.y.0)
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 17))
        .x_label_formatter(&|v| human_or_plain(if m.log_axes { 10f64.powf(*v) } else { *v }))
        .y_label_formatter(&|v| human_or_plain(if m.log_axes { 10f64.powf(*v) } else { *v }))
        .draw()
        .map_err(err)?;
    Ok(chart)
}

/// The colour field: each cell in the colour of its value, of its reason for having none, or
/// grey; returns whether any cell is grey (an error).
fn draw_cells<'a, DB: DrawingBackend + 'a>(
    chart: &mut MapChart<'a, DB>,
    m: &TippingMap,
    layout: &MapLayout,
) -> Result<bool, String> {
    // The reason of each cell without a value (index into `m.missing`).
    let mut reason: Vec<Option<usize>> = vec![None; m.z.len()];
    for (g, group) in m.missing.iter().enumerate() {
        for &c in &group.cells {
            if let Some(r) = reason.get_mut(c) {
                *r = Some(g);
            }
        }
    }
    let ny = m.y.1.len();
    let reason = &reason;
    chart
        .draw_series((0..m.x.1.len()).flat_map(|i| {
            (0..ny).map(move |j| {
                let z = m.z[i * ny + j];
                let c = if z.is_finite() {
                    layout.colour_of(z)
                } else if let Some(g) = reason[i * ny + j] {
                    let (r, g, b) = m.missing[g].rgb;
                    RGBColor(r, g, b)
                } else {
                    ERROR_GREY
                };
                let (ex, ey) = (&layout.ex, &layout.ey);
                Rectangle::new([(ex[i], ey[j]), (ex[i + 1], ey[j + 1])], c.filled())
            })
        }))
        .map_err(err)?;
    Ok(m.z
        .iter()
        .zip(reason)
        .any(|(z, r)| !z.is_finite() && r.is_none()))
}

/// The curves over the map (solid and dashed, white, inside the plotted ranges) and the
/// scenario's point.
fn draw_map_curves<'a, DB: DrawingBackend + 'a>(
    chart: &mut MapChart<'a, DB>,
    m: &TippingMap,
    layout: &MapLayout,
) -> Res {
    for cv in &m.curves {
        let c = WHITE;
        let s = chart
            .draw_series(LineSeries::new(
                layout.inside(&cv.points),
                c.stroke_width(3),
            ))
            .map_err(err)?;
        curve_legend(s, &cv.label, 18);
    }
    for cv in &m.dashed {
        let pts = layout.inside(&cv.points);
        let s = chart
            .draw_series(DashedLineSeries::new(pts, 10, 6, WHITE.stroke_width(3)))
            .map_err(err)?;
        curve_legend(s, &cv.label, 7);
    }
    if let Some(p) = m.point {
        chart
            .draw_series(std::iter::once(Cross::new(p, 9, RED.stroke_width(3))))
            .map_err(err)?
            .label(m.point_label.as_deref().unwrap_or("this scenario"))
            .legend(|(x, y)| Cross::new((x + 9, y), 6, RED.stroke_width(3)));
    }
    Ok(())
}

/// Names a curve over the map in the legend, unless its label is empty, as a grey stroke
/// `length` pixels long (white would not show on the legend's background).
fn curve_legend<'a, DB: DrawingBackend + 'a>(s: &mut SeriesAnno<'a, DB>, label: &str, length: i32) {
    if !label.is_empty() {
        s.label(label).legend(move |(x, y)| {
            PathElement::new(
                vec![(x, y), (x + length, y)],
                RGBColor(90, 90, 90).stroke_width(3),
            )
        });
    }
}

/// The legend in the map's corner, with a swatch for each reason cells have no value (and for
/// errors, if any cell is grey).
fn draw_map_legend<'a, DB: DrawingBackend + 'a>(
    chart: &mut MapChart<'a, DB>,
    m: &TippingMap,
    errors: bool,
) -> Res {
    // Reasons for cells without a value, as legend swatches.
    let swatches = m
        .missing
        .iter()
        .filter(|g| !g.cells.is_empty())
        .map(|g| (g.label.as_str(), RGBColor(g.rgb.0, g.rgb.1, g.rgb.2)))
        .chain(errors.then_some(("error", ERROR_GREY)));
    for (label, c) in swatches {
        chart
            .draw_series(std::iter::empty::<Rectangle<(f64, f64)>>())
            .map_err(err)?
            .label(label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 18, y + 6)], c.filled()));
    }
    legend_at(chart, SeriesLabelPosition::UpperRight)
}

/// Beside a categorical map: a swatch for each category and a grey one for errors.
fn draw_categories<DB: DrawingBackend>(
    bar: &DrawingArea<DB, Shift>,
    m: &TippingMap,
    layout: &MapLayout,
) -> Res {
    let swatch = |y: i32, c: RGBColor, label: &str| -> Res {
        bar.draw(&Rectangle::new([(10, y), (34, y + 24)], c.filled()))
            .map_err(err)?;
        bar.draw(&Text::new(label, (40, y + 4), (FONT, 15).into_font()))
            .map_err(err)
    };
    for (k, (v, label)) in m.categories.iter().enumerate() {
        swatch(80 + 40 * k as i32, layout.colour_of(*v), label)?;
    }
    swatch(80 + 40 * m.categories.len() as i32, ERROR_GREY, "error")
}

/// Beside a map of values: the colour bar with ticks at round values and the values' label.
fn draw_colour_bar<DB: DrawingBackend>(
    bar: &DrawingArea<DB, Shift>,
    m: &TippingMap,
    layout: &MapLayout,
) -> Res {
    let (zmin, span) = (layout.zmin, layout.span);
    let (top, bottom) = (70, bar.dim_in_pixel().1 as i32 - 70);
    for y in top..bottom {
        let u = 1.0 - (y - top) as f64 / (bottom - top) as f64;
        bar.draw(&Rectangle::new([(14, y), (40, y + 1)], colour(u).filled()))
            .map_err(err)?;
    }
    // Ticks at round values inside [zmin, zmax], labelled beside the bar.
    let y_of = |v: f64| bottom - ((v - zmin) / span * (bottom - top) as f64).round() as i32;
    for v in ticks(zmin, zmin + span, 6) {
        let y = y_of(v);
        bar.draw(&PathElement::new(
            vec![(40, y), (46, y)],
            BLACK.stroke_width(1),
        ))
        .map_err(err)?;
        bar.draw(&Text::new(
            human_or_plain(v),
            (50, y - 7),
            (FONT, 14).into_font(),
        ))
        .map_err(err)?;
    }
    bar.draw(&Text::new(
        m.z_label.clone(),
        (6, 40),
        (FONT, 15).into_font(),
    ))
    .map_err(err)
}

fn draw_phase<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, p: &Phase) -> Res {
    let all_n = p
        .trajectories
        .iter()
        .flat_map(|t| t.0.iter().map(|q| q.0))
        .chain(p.equilibria.iter().map(|e| e.0));
    let all_s = p
        .trajectories
        .iter()
        .flat_map(|t| t.0.iter().map(|q| q.1))
        .chain(p.equilibria.iter().map(|e| e.1));
    let (n0, n1) = log_range(all_n);
    let (s0, s1) = log_range(all_s);
    let (title, font) = fitted_title(root, &p.title, 22);
    let mut chart = ChartBuilder::on(root)
        .caption(&title, font)
        .margin(MARGIN)
        .x_label_area_size(X_LABELS)
        .y_label_area_size(Y_LABELS)
        .build_cartesian_2d(
            (n0..p.upper.map_or(n1, |u| n1.min(u))).log_scale(),
            (s0..p.upper.map_or(s1, |u| s1.min(u))).log_scale(),
        )
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(&p.x_desc)
        .y_desc(&p.y_desc)
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 17))
        .x_label_formatter(&|v| format!("{v:.0e}"))
        .y_label_formatter(&|v| format!("{v:.0e}"))
        .draw()
        .map_err(err)?;
    let (mut rec_done, mut col_done) = (false, false);
    for (pts, recovers) in &p.trajectories {
        let c = if *recovers { PALETTE[2] } else { PALETTE[1] };
        let s = chart
            .draw_series(LineSeries::new(
                pts.iter().copied().filter(|q| q.0 > 0.0 && q.1 > 0.0),
                c.stroke_width(2),
            ))
            .map_err(err)?;
        if *recovers && !rec_done {
            s.label("trajectory that recovers").legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2))
            });
            rec_done = true;
        } else if !*recovers && !col_done {
            s.label("trajectory that collapses").legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2))
            });
            col_done = true;
        }
        if let Some(first) = pts.first() {
            chart
                .draw_series(std::iter::once(Circle::new(*first, 4, c.filled())))
                .map_err(err)?;
        }
    }
    if let Some(b) = &p.boundary {
        let c = BLACK;
        chart
            .draw_series(DashedLineSeries::new(
                b.points.clone(),
                7,
                5,
                c.stroke_width(2),
            ))
            .map_err(err)?
            .label(&b.label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
    }
    for (n, s, label) in &p.equilibria {
        let c = if label.contains("saddle") {
            PALETTE[4]
        } else {
            BLACK
        };
        chart
            .draw_series(std::iter::once(Circle::new((*n, *s), 8, c.filled())))
            .map_err(err)?;
        chart
            .draw_series(std::iter::once(Text::new(
                label.clone(),
                (*n * 1.15, *s * 1.3),
                (FONT, 16).into_font(),
            )))
            .map_err(err)?;
    }
    legend_at(&mut chart, SeriesLabelPosition::UpperLeft)
}

/// The range of values on one axis, padded by 5 % (linear) or to whole decades (log).
fn xy_range(values: impl Iterator<Item = f64> + Clone, log: bool) -> (f64, f64) {
    if log {
        return log_range(values);
    }
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = if hi > lo {
        0.05 * (hi - lo)
    } else {
        0.5 * lo.abs().max(1.0)
    };
    lin_range(lo - pad, hi + pad)
}

macro_rules! xy_body {
    ($root:expr, $x:expr, $xr:expr, $yr:expr, $fmt:expr) => {{
        let x = $x;
        let (title, font) = fitted_title($root, &x.title, 20);
        let mut chart = ChartBuilder::on($root)
            .caption(&title, font)
            .margin(MARGIN)
            .x_label_area_size(X_LABELS)
            .y_label_area_size(Y_LABELS)
            .build_cartesian_2d($xr, $yr)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(&x.x_desc)
            .y_desc(&x.y_desc)
            .label_style((FONT, 15))
            .axis_desc_style((FONT, 17))
            .x_label_formatter(&$fmt)
            .y_label_formatter(&$fmt)
            .draw()
            .map_err(err)?;
        let keep = |p: &(f64, f64)| {
            p.0.is_finite() && p.1.is_finite() && (!x.log_axes || (p.0 > 0.0 && p.1 > 0.0))
        };
        for (k, s) in x.lines.iter().enumerate() {
            let c = PALETTE[k % PALETTE.len()];
            chart
                .draw_series(LineSeries::new(
                    s.points.iter().copied().filter(keep),
                    c.stroke_width(3),
                ))
                .map_err(err)?
                .label(&s.label)
                .legend(move |(a, b)| {
                    PathElement::new(vec![(a, b), (a + 18, b)], c.stroke_width(3))
                });
        }
        for (k, s) in x.points.iter().enumerate() {
            // Beside lines, the first point series is the data (black); the others continue
            // the palette after the lines.
            let c = match (x.lines.len(), k) {
                (0, _) => PALETTE[k % PALETTE.len()],
                (_, 0) => BLACK,
                (n, _) => PALETTE[(k + n) % PALETTE.len()],
            };
            chart
                .draw_series(
                    s.points
                        .iter()
                        .copied()
                        .filter(keep)
                        .map(|p| Circle::new(p, 5, c.filled())),
                )
                .map_err(err)?
                .label(&s.label)
                .legend(move |(a, b)| Circle::new((a + 9, b), 5, c.filled()));
        }
        let at = match x.legend {
            Corner::UpperLeft => SeriesLabelPosition::UpperLeft,
            Corner::UpperRight => SeriesLabelPosition::UpperRight,
            Corner::LowerLeft => SeriesLabelPosition::LowerLeft,
            Corner::LowerRight => SeriesLabelPosition::LowerRight,
        };
        legend_at(&mut chart, at)
    }};
}

fn draw_xy<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, x: &Xy) -> Res {
    let all = x
        .lines
        .iter()
        .chain(&x.points)
        .flat_map(|s| s.points.iter());
    let (x0, x1) = xy_range(all.clone().map(|p| p.0), x.log_axes);
    let (y0, y1) = xy_range(all.map(|p| p.1), x.log_axes);
    let y1 = legend_headroom(root, x, (x0, x1), (y0, y1));
    if x.log_axes {
        xy_body!(
            root,
            x,
            (x0..x1).log_scale(),
            (y0..y1).log_scale(),
            |v: &f64| format!("{v:.0e}")
        )
    } else {
        xy_body!(root, x, x0..x1, y0..y1, |v: &f64| tick(*v))
    }
}

/// The top of the y range of `x`, raised where needed so that no marker or line runs under
/// the legend in an upper corner (the legend's size estimated from its labels, the plotting
/// area's from the layout of `xy_body!`).
fn legend_headroom<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    x: &Xy,
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
) -> f64 {
    let right = match x.legend {
        Corner::UpperRight => true,
        Corner::UpperLeft => false,
        Corner::LowerLeft | Corner::LowerRight => return y1,
    };
    let style = (FONT, LEGEND_FONT).into_text_style(root);
    let labels = x.lines.iter().chain(&x.points).map(|s| &s.label);
    let (mut box_w, mut box_h) = (0u32, 20u32);
    for label in labels {
        let (w, h) = root
            .estimate_text_size(label, &style)
            .unwrap_or((8 * label.len() as u32, 15));
        box_w = box_w.max(w + 50);
        box_h += h + 8;
    }
    let (w, h) = root.dim_in_pixel();
    // The chart's margins, axis label areas and (about) its caption, as `xy_body!` lays it out.
    let plot_w = w.saturating_sub(2 * MARGIN + Y_LABELS).max(1) as f64;
    let plot_h = h.saturating_sub(2 * MARGIN + X_LABELS + 30).max(1) as f64;
    let fx = (box_w as f64 / plot_w).min(1.0);
    let fy = ((box_h + 10) as f64 / plot_h).min(0.6);
    // Axis coordinates: logarithms on log axes.
    let a = |v: f64| if x.log_axes { v.ln() } else { v };
    let (ax0, ax1, ay0, ay1) = (a(x0), a(x1), a(y0), a(y1));
    let span = if right {
        (ax1 - fx * (ax1 - ax0), ax1)
    } else {
        (ax0, ax0 + fx * (ax1 - ax0))
    };
    let inside = |p: &(f64, f64)| {
        p.0.is_finite() && p.1.is_finite() && (!x.log_axes || (p.0 > 0.0 && p.1 > 0.0))
    };
    let mut top = f64::NEG_INFINITY;
    for p in x
        .points
        .iter()
        .flat_map(|s| s.points.iter())
        .filter(|p| inside(p))
    {
        if (span.0..=span.1).contains(&a(p.0)) {
            top = top.max(a(p.1));
        }
    }
    // A segment that overlaps the legend's columns can reach the larger of its ends there.
    for s in &x.lines {
        let kept: Vec<(f64, f64)> = s
            .points
            .iter()
            .filter(|p| inside(p))
            .map(|p| (a(p.0), a(p.1)))
            .collect();
        for (k, p) in kept.iter().enumerate() {
            let q = kept.get(k + 1).unwrap_or(p);
            if p.0.min(q.0) <= span.1 && p.0.max(q.0) >= span.0 {
                top = top.max(p.1.max(q.1));
            }
        }
    }
    if top <= ay1 - fy * (ay1 - ay0) {
        return y1;
    }
    let raised = (top - fy * ay0) / (1.0 - fy);
    if x.log_axes {
        raised.exp()
    } else {
        raised
    }
}

/// A title that fits the width of `area` with a margin: the font shrinks from `size` down to
/// 12 pixels, and a title still too wide is cut at a word with an ellipsis.
fn fitted_title<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    size: u32,
) -> (String, (&'static str, u32)) {
    let room = area.dim_in_pixel().0.saturating_sub(24);
    let width = |text: &str, size: u32| {
        area.estimate_text_size(text, &(FONT, size).into_text_style(area))
            .map_or(0, |d| d.0)
    };
    let mut size = size;
    while size > 12 && width(title, size) > room {
        size -= 1;
    }
    let mut text = title.to_string();
    while width(&text, size) > room {
        let Some(cut) = text.trim_end_matches(" …").rfind(' ') else {
            break;
        };
        text.truncate(cut);
        text.push_str(" …");
    }
    (text, (FONT, size))
}

/// A linear axis label: at most four significant digits, no trailing zeros.
fn tick(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let digits = (3 - v.abs().log10().floor() as i32).clamp(0, 12) as usize;
    let s = format!("{v:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Tick positions (hours from `t = 0`) and labels for a clock-time axis over `[t0, t1]`: at
/// midnight the date, otherwise the time of day, every 6, 12 or 24 hours as the span needs.
/// Without a start, hours from `t = 0`.
fn clock_ticks(start: Option<f64>, t0: f64, t1: f64) -> Vec<(f64, String)> {
    let span = t1 - t0;
    let step = if span <= 48.0 {
        6.0
    } else if span <= 240.0 {
        12.0
    } else {
        24.0 * (span / 240.0).ceil()
    };
    let Some(epoch) = start else {
        let first = (t0 / step).ceil() * step;
        return (0..)
            .map(|k| first + step * k as f64)
            .take_while(|t| *t <= t1)
            .map(|t| (t, format!("{t} h")))
            .collect();
    };
    // Hours of the start past its midnight (UTC).
    let h0 = epoch.rem_euclid(86400.0) / 3600.0;
    let first = ((h0 + t0) / step).ceil() * step - h0;
    (0..)
        .map(|k| first + step * k as f64)
        .take_while(|t| *t <= t1 + 1e-9)
        .map(|t| {
            let secs = (epoch + t * 3600.0).round() as i64;
            let text = match jiff::Timestamp::from_second(secs) {
                Ok(ts) if (h0 + t).rem_euclid(24.0).abs() < 1e-6 => {
                    ts.strftime("%b %d").to_string()
                }
                Ok(ts) => ts.strftime("%H:%M").to_string(),
                Err(_) => format!("{t} h"),
            };
            (t, text)
        })
        .collect()
}

fn draw_fit<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, f: &FitPlot) -> Res {
    let xs = f
        .fitted
        .iter()
        .chain(&f.first_guess)
        .map(|p| p.0)
        .chain(f.readings.iter().map(|r| r.t));
    let (t0, t1) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
        (a.min(x), b.max(x))
    });
    let (t0, t1) = lin_range(t0, t1);
    let (title, font) = fitted_title(root, &f.title, 19);
    let body = root.titled(&title, font).map_err(err)?;
    let (legend, body) = body.split_vertically(34);
    let h = body.dim_in_pixel().1;
    let (upper, lower) = body.split_vertically(h * 68 / 100);
    let (lo, hi) = log_range(
        f.fitted
            .iter()
            .chain(&f.first_guess)
            .map(|p| p.1)
            .chain(f.readings.iter().map(|r| r.users)),
    );
    let fitted_colour = PALETTE[0];
    let guess_colour = RGBColor(150, 150, 150);
    let shade = RGBColor(250, 200, 120).mix(0.45);
    let ticks = clock_ticks(f.start, t0, t1);
    // The model against the readings.
    let mut top = ChartBuilder::on(&upper)
        .margin_left(12)
        .margin_right(24)
        .margin_top(6)
        .y_label_area_size(Y_LABELS)
        .x_label_area_size(6)
        .build_cartesian_2d(t0..t1, (lo..hi).log_scale())
        .map_err(err)?;
    top.configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_desc("online users")
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 17))
        .y_label_formatter(&|v| human(*v))
        .draw()
        .map_err(err)?;
    let grid = ShapeStyle::from(&BLACK.mix(0.12)).stroke_width(1);
    for (t, _) in &ticks {
        top.draw_series(LineSeries::new(vec![(*t, lo), (*t, hi)], grid))
            .map_err(err)?;
    }
    if let Some((a, b)) = f.shock {
        let b = if b > a { b } else { a + (t1 - t0) * 0.004 };
        top.draw_series(std::iter::once(Rectangle::new(
            [(a, lo), (b, hi)],
            shade.filled(),
        )))
        .map_err(err)?;
    }
    for t in &f.interventions {
        let style = ShapeStyle::from(&BLACK).stroke_width(2);
        top.draw_series(DashedLineSeries::new(vec![(*t, lo), (*t, hi)], 8, 6, style))
            .map_err(err)?;
    }
    let positive = |pts: &[(f64, f64)]| -> Vec<(f64, f64)> {
        pts.iter().copied().filter(|p| p.1 > 0.0).collect()
    };
    top.draw_series(DashedLineSeries::new(
        positive(&f.first_guess),
        10,
        6,
        guess_colour.stroke_width(2),
    ))
    .map_err(err)?;
    top.draw_series(LineSeries::new(
        positive(&f.fitted),
        fitted_colour.stroke_width(3),
    ))
    .map_err(err)?;
    let marker = |used: bool, at: (f64, f64)| {
        if used {
            Circle::new(at, 5, BLACK.filled())
        } else {
            Circle::new(at, 5, BLACK.stroke_width(2))
        }
    };
    top.draw_series(
        f.readings
            .iter()
            .filter(|r| r.users > 0.0)
            .map(|r| marker(r.used, (r.t, r.users))),
    )
    .map_err(err)?;
    // The residuals: the range of the used readings' z (at least ±3); a left-out reading
    // beyond it sits on the edge with its value written beside it.
    let zmax = f
        .readings
        .iter()
        .filter(|r| r.used && r.z.is_finite())
        .map(|r| r.z.abs())
        .fold(3.0, f64::max)
        * 1.15;
    let mut bottom = ChartBuilder::on(&lower)
        .margin_left(12)
        .margin_right(24)
        .margin_bottom(6)
        .y_label_area_size(Y_LABELS)
        .x_label_area_size(X_LABELS)
        .build_cartesian_2d(t0..t1, -zmax..zmax)
        .map_err(err)?;
    bottom
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_labels(5)
        .y_desc("z")
        .x_desc(if f.start.is_some() {
            "time (UTC)"
        } else {
            "hours from t = 0"
        })
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 17))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()
        .map_err(err)?;
    for (t, _) in &ticks {
        bottom
            .draw_series(LineSeries::new(vec![(*t, -zmax), (*t, zmax)], grid))
            .map_err(err)?;
    }
    bottom
        .draw_series(LineSeries::new(
            vec![(t0, 0.0), (t1, 0.0)],
            BLACK.stroke_width(1),
        ))
        .map_err(err)?;
    for z in [-2.0, 2.0] {
        bottom
            .draw_series(DashedLineSeries::new(
                vec![(t0, z), (t1, z)],
                6,
                5,
                guess_colour.stroke_width(1),
            ))
            .map_err(err)?;
    }
    for r in f.readings.iter().filter(|r| r.z.is_finite()) {
        let z = r.z.clamp(-zmax, zmax);
        bottom
            .draw_series(std::iter::once(marker(r.used, (r.t, z))))
            .map_err(err)?;
        if z != r.z {
            bottom
                .draw_series(std::iter::once(Text::new(
                    format!("z = {:.0}", r.z),
                    (r.t - (t1 - t0) * 0.008, z * 0.92),
                    TextStyle::from((FONT, 14).into_font())
                        .pos(Pos::new(HPos::Right, VPos::Center)),
                )))
                .map_err(err)?;
        }
    }
    // Clock labels under the residual panel, at the grid lines.
    for (t, text) in &ticks {
        let (x, y) = bottom.backend_coord(&(*t, -zmax));
        lower
            .draw(&Text::new(
                text.clone(),
                (
                    x - lower.get_base_pixel().0,
                    y - lower.get_base_pixel().1 + 8,
                ),
                TextStyle::from((FONT, 14).into_font()).pos(Pos::new(HPos::Center, VPos::Top)),
            ))
            .map_err(err)?;
    }
    // The legend, in its own strip above the panels, clear of every curve.
    let font = TextStyle::from((FONT, 15).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    let mut x = 90;
    let y = 17;
    let entry = |x: &mut i32, label: &str, draw: &dyn Fn(i32) -> Res| -> Res {
        draw(*x)?;
        legend
            .draw(&Text::new(label.to_string(), (*x + 24, y), font.clone()))
            .map_err(err)?;
        *x += 24 + 8 * label.chars().count() as i32 + 22;
        Ok(())
    };
    entry(&mut x, "fitted model", &|x| {
        legend
            .draw(&PathElement::new(
                vec![(x, y), (x + 18, y)],
                fitted_colour.stroke_width(3),
            ))
            .map_err(err)
    })?;
    entry(&mut x, "first guess", &|x| {
        legend
            .draw(&PathElement::new(
                vec![(x, y), (x + 18, y)],
                guess_colour.stroke_width(2),
            ))
            .map_err(err)
    })?;
    entry(&mut x, "reading used", &|x| {
        legend
            .draw(&Circle::new((x + 9, y), 5, BLACK.filled()))
            .map_err(err)
    })?;
    entry(&mut x, "left out", &|x| {
        legend
            .draw(&Circle::new((x + 9, y), 5, BLACK.stroke_width(2)))
            .map_err(err)
    })?;
    if f.shock.is_some() {
        entry(&mut x, "wave", &|x| {
            legend
                .draw(&Rectangle::new(
                    [(x, y - 6), (x + 18, y + 6)],
                    shade.filled(),
                ))
                .map_err(err)
        })?;
    }
    if !f.interventions.is_empty() {
        entry(&mut x, "intervention", &|x| {
            legend
                .draw(&PathElement::new(
                    vec![(x, y - 8), (x, y + 8)],
                    BLACK.stroke_width(2),
                ))
                .map_err(err)
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Clock ticks for a start of 2007-08-16 06:00 UTC (1187222400 s is its midnight, by
    /// calendar arithmetic outside the crate): over −30 h to +80 h, every 12 h at midnight
    /// and noon, dated at midnight.
    #[test]
    fn clock_ticks_fall_on_midnight_and_noon_with_dates() {
        let start = 1187222400.0 + 6.0 * 3600.0;
        let ticks = clock_ticks(Some(start), -30.0, 80.0);
        let want = [
            (-30.0, "Aug 15"),
            (-18.0, "12:00"),
            (-6.0, "Aug 16"),
            (6.0, "12:00"),
            (18.0, "Aug 17"),
            (30.0, "12:00"),
            (42.0, "Aug 18"),
            (54.0, "12:00"),
            (66.0, "Aug 19"),
            (78.0, "12:00"),
        ];
        assert_eq!(ticks.len(), want.len(), "{ticks:?}");
        for ((t, text), (wt, wtext)) in ticks.iter().zip(want) {
            assert!((t - wt).abs() < 1e-9 && text == wtext, "{ticks:?}");
        }
        // Without a start: hours from t = 0, every 6 h over a short span.
        let plain = clock_ticks(None, 0.0, 20.0);
        assert_eq!(
            plain.iter().map(|p| p.1.as_str()).collect::<Vec<_>>(),
            ["0 h", "6 h", "12 h", "18 h"]
        );
    }

    /// Leading digits of values a log axis ticks at, including ones a rounding below a
    /// power of ten or above an integer multiple.
    #[test]
    fn leading_digits_survive_rounding() {
        for (v, d) in [
            (3000.0, 3),
            (2999.9999999999995, 3),
            (0.05, 5),
            (1e-7, 1),
            (9000.000000000002, 9),
            (10000.0, 1),
            (9999.999999999998, 1),
            (7.0, 7),
        ] {
            assert_eq!(leading_digit(v), Some(d), "{v}");
        }
        assert_eq!(leading_digit(0.0), None);
        assert_eq!(leading_digit(f64::NAN), None);
    }
}
