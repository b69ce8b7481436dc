//! `selfheal calibrate`: fit quantities of a scenario to observed online users.

use crate::args::{apply_sets, start_count};
use clap::Args;
use selfheal::calibrate::{
    calibrate, fitted_toml, read_readings, readings_between, residuals_csv, CalibrateOptions,
    FitMethod, FitParam, Provenance, Reading, Weighting,
};
use selfheal::files::{check_targets, write_atomic};
use selfheal::model::{Model, P2p};
use selfheal::scenario::Scenario;
use selfheal::solve::{Method, SolveOptions, Tolerances};
use selfheal::Error;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct CalibrateArgs {
    /// Scenario file (TOML) with a `start` clock time.
    scenario: PathBuf,
    /// Model file (TOML, docs/model-files.md) instead of the built-in model; a scenario may
    /// name its model with `model = "FILE"` instead.
    #[arg(long, value_name = "FILE.toml")]
    model: Option<PathBuf>,
    /// Observed online users: CSV with `time` (ISO 8601, UTC) and `online_users`; optional
    /// `sigma` (users), `note`, `source`.
    #[arg(long, value_name = "FILE.csv")]
    data: PathBuf,
    /// Quantities to fit: parameters, shock, sn_shock, window, shock_at, population,
    /// intervention.K.at, intervention.K.NAME (comma-separated).
    #[arg(
        long,
        value_name = "NAME[,NAME...]",
        value_delimiter = ',',
        required = true
    )]
    fit: Vec<String>,
    /// Bounds of a fitted quantity, e.g. --bounds promotion=1e-4:1e-2 (repeatable).
    #[arg(long, value_name = "NAME=LO:HI", allow_hyphen_values = true)]
    bounds: Vec<String>,
    /// Override a parameter before fitting, e.g. --set retry=2 (repeatable).
    #[arg(long = "set", value_name = "NAME=VALUE", allow_hyphen_values = true)]
    set: Vec<String>,
    /// nelder-mead, lbfgs, or both (Nelder–Mead from every start, then L-BFGS).
    #[arg(long = "fit-method", value_name = "METHOD", default_value = "both")]
    fit_method: String,
    /// Starts of the global phase, at least (the scenario's values and Sobol' points in the
    /// bounds); K more run while the best chi2 found was reached by one start only.
    #[arg(long, value_name = "K", default_value_t = 8, value_parser = start_count)]
    starts: usize,
    /// Most starts of the global phase (at least --starts; default the larger of 64 and
    /// --starts).
    #[arg(long, value_name = "M", value_parser = start_count)]
    max_starts: Option<usize>,
    /// Relative error added to every reading without a `sigma` (see docs/calibration.md).
    #[arg(long, value_name = "R", default_value_t = 0.05)]
    rel_error: f64,
    /// Use only readings at or after this time (ISO 8601, UTC).
    #[arg(long, value_name = "TIME")]
    from: Option<String>,
    /// Use only readings at or before this time (ISO 8601, UTC).
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    /// Confidence level of the intervals.
    #[arg(long, value_name = "L", default_value_t = 0.95)]
    level: f64,
    /// Also compute profile-likelihood intervals (each quantity moved while the others are
    /// re-fitted, until chi2 has risen by the interval's threshold), beside the Gauss–Newton
    /// ones; the knife-edge check then uses them.
    #[arg(long)]
    profile: bool,
    /// Relative tolerance of every solve (tighter than the other commands' 1e-6: the fit
    /// differentiates the solution).
    #[arg(long, value_name = "R", default_value = "1e-8")]
    rtol: f64,
    /// Absolute tolerance of every solve (tighter than the other commands' 1e-12).
    #[arg(long, value_name = "A", default_value = "1e-13")]
    atol: f64,
    /// Write the fitted scenario (TOML) here.
    #[arg(long, value_name = "FITTED.toml")]
    out: Option<PathBuf>,
    /// Write each reading against the fitted model here (CSV).
    #[arg(long, value_name = "FILE.csv")]
    residuals: Option<PathBuf>,
    /// Draw the fitted model against every reading (SVG or PNG, by extension).
    #[arg(long, value_name = "FILE.svg|png")]
    figure: Option<PathBuf>,
    /// Replace existing output files.
    #[arg(long)]
    force: bool,
}

impl CalibrateArgs {
    /// The quantities to fit, with their `--bounds`.
    fn fit_params(&self, sc: &Scenario) -> Result<Vec<FitParam>, Error> {
        let mut fit = self
            .fit
            .iter()
            .map(|name| FitParam::new(name.trim(), sc).map_err(|e| e.context("--fit")))
            .collect::<Result<Vec<_>, _>>()?;
        for b in &self.bounds {
            let bad = || Error::Invalid(format!("--bounds expects NAME=LO:HI, got `{b}`"));
            let (name, range) = b.split_once('=').ok_or_else(bad)?;
            let (lo, hi) = range.split_once(':').ok_or_else(bad)?;
            let num = |v: &str| {
                v.trim()
                    .parse::<f64>()
                    .map_err(|_| Error::Invalid(format!("--bounds {name}: `{v}` is not a number")))
            };
            let f = fit
                .iter_mut()
                .find(|f| f.name == name.trim())
                .ok_or_else(|| {
                    Error::Invalid(format!("--bounds {name}: `{name}` is not in --fit"))
                })?;
            f.set_bounds(num(lo)?, num(hi)?)
                .map_err(|e| e.context("--bounds"))?;
        }
        Ok(fit)
    }
}

pub fn run(args: &CalibrateArgs) -> Result<(), Error> {
    let Some(file) = crate::args::model_file(args.model.as_deref(), Some(&args.scenario))? else {
        return run_with::<_, 3, 6>(&P2p, args, None);
    };
    // The state and its sensitivities are integrated together: N2 = 2N.
    let source = Some(file.source.as_str());
    match file.dim() {
        1 => run_with::<_, 1, 2>(&file.typed::<1>()?, args, source),
        2 => run_with::<_, 2, 4>(&file.typed::<2>()?, args, source),
        3 => run_with::<_, 3, 6>(&file.typed::<3>()?, args, source),
        4 => run_with::<_, 4, 8>(&file.typed::<4>()?, args, source),
        5 => run_with::<_, 5, 10>(&file.typed::<5>()?, args, source),
        6 => run_with::<_, 6, 12>(&file.typed::<6>()?, args, source),
        7 => run_with::<_, 7, 14>(&file.typed::<7>()?, args, source),
        _ => run_with::<_, 8, 16>(&file.typed::<8>()?, args, source),
    }
}

/// `target` as a path relative to directory `dir` (both made absolute first), so that a
/// fitted scenario written elsewhere still finds its model file.
fn relative_to(target: &Path, dir: &Path) -> PathBuf {
    let abs = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let (t, d) = (abs(target), abs(dir));
    let (tc, dc): (Vec<_>, Vec<_>) = (t.components().collect(), d.components().collect());
    let common = tc.iter().zip(&dc).take_while(|(a, b)| a == b).count();
    if common == 0 {
        return t;
    }
    let mut out = PathBuf::new();
    for _ in common..dc.len() {
        out.push("..");
    }
    for c in &tc[common..] {
        out.push(c);
    }
    out
}

fn run_with<M: Model<N>, const N: usize, const N2: usize>(
    model: &M,
    args: &CalibrateArgs,
    model_source: Option<&str>,
) -> Result<(), Error>
where
    nalgebra::Const<N>: nalgebra::DimMin<nalgebra::Const<N>, Output = nalgebra::Const<N>>,
    nalgebra::Const<N2>: nalgebra::DimMin<nalgebra::Const<N2>, Output = nalgebra::Const<N2>>,
{
    let mut sc = Scenario::from_file(model, &args.scenario)?;
    apply_sets(&mut sc, &args.set)?;
    sc.validate(model)?;
    let (all, readings) = readings_for(
        model,
        &sc,
        &args.data,
        args.rel_error,
        (args.from.as_deref(), args.until.as_deref()),
        &format!("{}: calibration", args.scenario.display()),
    )?;
    let method = FitMethod::parse(&args.fit_method).map_err(|e| e.context("--fit-method"))?;
    let solve = SolveOptions {
        tol: Tolerances {
            rtol: args.rtol,
            atol: args.atol,
        },
        method: Method::Rosenbrock,
        ..Default::default()
    };
    solve.tol.validate()?;
    let opts = CalibrateOptions {
        solve,
        method,
        starts: args.starts,
        max_starts: args.max_starts.unwrap_or(args.starts.max(64)),
        level: args.level,
        profile: args.profile,
        ..CalibrateOptions::default()
    };
    let fit = args.fit_params(&sc)?;
    let targets: Vec<&Path> = [&args.out, &args.residuals, &args.figure]
        .into_iter()
        .flatten()
        .map(PathBuf::as_path)
        .collect();
    check_targets(&targets, args.force)?;
    selfheal::files::refuse_inputs(&targets, &[&args.scenario, &args.data], "calibrate")?;
    if let Some(f) = &args.figure {
        crate::args::check_figure_name(f)?;
    }
    let started = std::time::Instant::now();
    let result = calibrate::<M, N, N2>(model, &sc, &readings, fit, &opts)?;
    let secs = started.elapsed().as_secs_f64();
    print_fit(args, &result, readings.len(), all.len(), secs);

    if let Some(path) = &args.residuals {
        write_atomic(path, args.force, |w| residuals_csv(w, &result))?;
    }
    if let Some(path) = &args.figure {
        let title = format!(
            "Calibrated model: {} quantities fitted to {} readings, RMSE {} users",
            result.params.len(),
            readings.len(),
            selfheal::report::user_count(result.rmse)
        );
        selfheal::report::calibration_figure(
            model,
            &sc,
            &result.scenario,
            &all,
            &readings,
            &title,
        )?
        .save(path)?;
    }
    if let Some(path) = &args.out {
        let provenance = Provenance {
            scenario: args.scenario.display().to_string(),
            data: args.data.display().to_string(),
            from: args.from.clone(),
            until: args.until.clone(),
            rel_error: args.rel_error,
        };
        // The fitted scenario names its model relative to where it is written.
        let mut result = result;
        if let Some(src) = model_source {
            let dir = path
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            result.scenario.model = Some(relative_to(Path::new(src), dir).display().to_string());
        }
        let text = fitted_toml(model, &result, &provenance);
        write_atomic(path, args.force, |w| {
            w.write_all(text.as_bytes()).map_err(|e| Error::Io {
                path: path.display().to_string(),
                source: e,
            })
        })?;
    }
    Ok(())
}

fn print_fit(
    args: &CalibrateArgs,
    result: &selfheal::calibrate::Fit,
    used: usize,
    all: usize,
    secs: f64,
) {
    let pct = selfheal::calibrate::level_percent(result.level);
    println!(
        "fitted {} quantities to {used} of {all} readings in {}",
        result.params.len(),
        args.data.display()
    );
    println!(
        "{:<28} {:>13} {:>13} {:>11}  {:<29} bounds",
        "name",
        "start",
        "fitted",
        "sd",
        format!("{pct} % interval")
    );
    for p in &result.params {
        let sd = p.sd.map_or("-".into(), |v| format!("{v:.4e}"));
        let iv = p.interval.map_or("not determined".into(), |(a, b)| {
            format!("[{a:.5e}, {b:.5e}]")
        });
        println!(
            "{:<28} {:>13.6e} {:>13.6e} {:>11}  {:<29} [{}, {}]{}",
            p.name,
            p.start,
            p.value,
            sd,
            iv,
            p.bounds.0,
            p.bounds.1,
            if p.at_bound { "  (at a bound)" } else { "" }
        );
    }
    for p in &result.params {
        if let Some(q) = &p.profile {
            println!(
                "profile {:<20} {pct} % interval [{}]  (chi2 rise {:.4}; {} points)",
                p.name,
                q.interval_text(", "),
                q.threshold,
                q.points
            );
        }
    }
    println!("{} (start {:.4})", result.quality(), result.chi2_start);
    let optima: Vec<String> = result
        .optima
        .iter()
        .take(6)
        .map(|o| format!("{:.6} ({}x)", o.chi2, o.found))
        .collect();
    println!(
        "{} distinct optima reached by the starts (chi2, how many starts): {}{}",
        result.optima.len(),
        optima.join(", "),
        if result.optima.len() > 6 { ", ..." } else { "" }
    );
    for st in &result.stages {
        println!(
            "{}: {} start(s), {} iterations, {} objective and {} gradient evaluations, chi2 {:.6}; {}",
            st.method, st.starts, st.iterations, st.cost_evals, st.gradient_evals, st.chi2, st.stopped
        );
    }
    println!(
        "solver: {} steps, {} rejected, {} rhs evaluations; {secs:.2} s",
        result.stats.steps, result.stats.rejected, result.stats.rhs_evals
    );
    for w in &result.warnings {
        println!("warning: {w}");
    }
}

/// Every reading of `data` and those between `from` and `until` (ISO 8601, UTC, each
/// optional), placed on the model's clock from the scenario's `start`, σ by the rule with
/// `rel_error`; `what` says who asks, in messages (a scenario without `start`, a model in
/// slots, no reading left).
pub fn readings_for<M: Model<N>, const N: usize>(
    model: &M,
    sc: &Scenario,
    data: &Path,
    rel_error: f64,
    (from, until): (Option<&str>, Option<&str>),
    what: &str,
) -> Result<(Vec<Reading>, Vec<Reading>), Error> {
    let start = sc.start.clone().ok_or_else(|| {
        Error::Invalid(format!(
            "{what} needs the scenario's `start` (the clock time of t = 0)"
        ))
    })?;
    let per = selfheal::calibrate::seconds_per_unit(model.time_unit()).ok_or_else(|| {
        Error::Invalid(format!(
            "{what} places clock-time readings on the model's clock, and model `{}` counts time in `{}`, not in seconds, minutes, hours or days",
            model.name(),
            model.time_unit()
        ))
    })?;
    let weighting = Weighting {
        relative: rel_error,
        seconds_per_unit: per,
    };
    let all = read_readings(data, &start, &weighting)?;
    let readings = readings_between(&all, &start, from, until, per).map_err(|e| match e {
        Error::Context { context, source } => source.context(format!("--{context}")),
        e => e,
    })?;
    if readings.is_empty() {
        return Err(Error::Invalid(format!(
            "{}: none of its {} readings lies between --from and --until",
            data.display(),
            all.len()
        )));
    }
    Ok((all, readings))
}
