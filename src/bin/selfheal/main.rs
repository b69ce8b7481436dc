//! The `selfheal` command line: parse, call the library, print.

use clap::{Args, Parser, Subcommand};
use selfheal::analysis::codim2::fold_curves;
use selfheal::analysis::continuation::{continue_equilibria, ContinuationOptions};
use selfheal::analysis::equilibria::all_equilibria;
use selfheal::analysis::hopf::Located;
use selfheal::analysis::hopf_curve::hopf_curves;
use selfheal::analysis::tipping::{critical_shock, critical_window, rescue, TippingOptions};
use selfheal::model::{Model, P2p};
use selfheal::output::hopf_curve_csv;
use selfheal::output::{
    check_target, check_targets, continuation_csv, equilibria_csv, fold_curve_csv, trajectory_csv,
    write_atomic,
};
use selfheal::scenario::{Intervention, Scenario, Shock};
use selfheal::simulate::{simulate, SimOptions, Simulation};
use selfheal::solve::{Method, SolveOptions, Tolerances};
use selfheal::sweep::{merge, run_to_file, Axis, Design, Metric, Range, RunFile, Shard, Sweep};
use selfheal::Error;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "selfheal",
    version,
    about = "Login storms and self-healing in peer-to-peer overlays: simulate, find the tipping point"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Simulate a scenario and write its trajectory as CSV.
    Simulate(Box<SimulateArgs>),
    /// Print the reference model's parameter table.
    Params,
    /// Find every equilibrium and its stability (CSV, most peers first).
    Equilibria(Box<EquilibriaArgs>),
    /// The smallest instantaneous reboot fraction after which the network does not recover.
    CriticalShock(Box<CriticalShockArgs>),
    /// For a reboot fraction above f*, the shortest spread of the wave that is still absorbed.
    CriticalWindow(Box<CriticalWindowArgs>),
    /// Continue every equilibrium branch in one parameter; locate folds and Hopf points.
    Continue(Box<ContinueArgs>),
    /// The smallest step in a parameter that brings a collapsed network back.
    Rescue(Box<RescueArgs>),
    /// Folds met in P1, each continued in the plane (P1, P2). A fold curve bounds the bistable
    /// region only where it ends a stable branch (see `continue`, which prints the bistable
    /// interval with its fold and Hopf edges).
    FoldCurve(Box<PlaneArgs>),
    /// Hopf points met in P1, each continued in the plane (P1, P2) until the frequency vanishes
    /// (a Bogdanov–Takens point) or the curve leaves the ranges; Bautin points (where the Hopf
    /// point turns from sub- to supercritical) are located on the way.
    HopfCurve(Box<PlaneArgs>),
    /// Run many scenarios (a grid or a sample) and write one CSV row of metrics per scenario.
    Sweep(Box<SweepArgs>),
    /// Join the shards of a sweep into exactly the file a single run writes.
    Merge(MergeArgs),
    /// Simulate, find equilibria, f* and tipping points, and write CSVs, figures and report.md.
    Report(Box<ReportArgs>),
    /// Stochastic runs of the scenario with a finite population (Gillespie or tau-leaping).
    Stochastic(Box<StochasticArgs>),
    /// Fit chosen parameters of a scenario to observed online users; write the fitted scenario.
    Calibrate(Box<CalibrateArgs>),
}

#[derive(Args)]
struct CalibrateArgs {
    /// Scenario file (TOML) with a `start` clock time.
    scenario: PathBuf,
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
    /// Starts of the global phase (the scenario's values and Sobol' points in the bounds).
    #[arg(long, value_name = "K", default_value_t = 8, value_parser = whole_usize)]
    starts: usize,
    /// Relative error added to every reading without a `sigma` (see the README).
    #[arg(
        long,
        value_name = "R",
        allow_negative_numbers = true,
        default_value_t = 0.05
    )]
    rel_error: f64,
    /// Use only readings at or after this time (ISO 8601, UTC).
    #[arg(long, value_name = "TIME")]
    from: Option<String>,
    /// Use only readings at or before this time (ISO 8601, UTC).
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    /// Confidence level of the intervals.
    #[arg(
        long,
        value_name = "L",
        allow_negative_numbers = true,
        default_value_t = 0.95
    )]
    level: f64,
    /// Relative tolerance of every solve.
    #[arg(
        long,
        value_name = "R",
        allow_negative_numbers = true,
        default_value_t = 1e-8
    )]
    rtol: f64,
    /// Absolute tolerance of every solve.
    #[arg(
        long,
        value_name = "A",
        allow_negative_numbers = true,
        default_value_t = 1e-13
    )]
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

#[derive(Args)]
struct StochasticArgs {
    #[command(flatten)]
    scenario: ScenarioArgs,
    /// Number of users M.
    #[arg(long, value_name = "M", value_parser = whole_number)]
    population: u64,
    /// Number of runs.
    #[arg(long, value_name = "R", default_value_t = 100, value_parser = whole_usize)]
    runs: usize,
    /// Seed (run i is seeded from the seed and i alone).
    #[arg(long, value_name = "S", default_value_t = 1, value_parser = whole_number)]
    seed: u64,
    /// exact, tau or auto (exact below 10^5 users).
    #[arg(long, value_name = "METHOD", default_value = "auto")]
    stochastic_method: String,
    /// Also write quantiles of peers across runs every --dt minutes (CSV
    /// `t,q05,q25,q50,q75,q95`).
    #[arg(long, value_name = "FILE")]
    quantiles: Option<PathBuf>,
    /// Output interval of the quantile file (minutes).
    #[arg(long, value_name = "D", default_value_t = 10.0)]
    dt: f64,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Args)]
struct ReportArgs {
    /// Scenario file (default: data/skype2007.toml).
    scenario: Option<PathBuf>,
    /// Directory for the report (its own files are replaced, nothing else is touched).
    #[arg(long, value_name = "DIR", default_value = "report")]
    out: PathBuf,
    /// Observed online users to draw beside the model (CSV: time, online_users[, note]);
    /// default for the default scenario: data/skype2007_online.csv.
    #[arg(long, value_name = "FILE.csv")]
    data: Option<PathBuf>,
}

#[derive(Args)]
struct SweepArgs {
    #[command(flatten)]
    scenario: ScenarioArgs,
    /// A grid axis NAME=START:STOP:COUNT (repeatable; the first axis varies slowest).
    #[arg(
        long = "grid",
        value_name = "NAME=START:STOP:COUNT",
        allow_hyphen_values = true
    )]
    grid: Vec<String>,
    /// Space this grid axis, or sample this range, logarithmically (repeatable).
    #[arg(long = "log", value_name = "NAME")]
    log: Vec<String>,
    /// Sample instead of a grid: lhs, sobol or random.
    #[arg(long, value_name = "METHOD", conflicts_with = "grid")]
    sample: Option<String>,
    /// Number of sample points.
    #[arg(long, value_name = "N", requires = "sample", value_parser = whole_usize)]
    n: Option<usize>,
    /// A sampled range NAME=LO:HI (repeatable).
    #[arg(
        long = "range",
        value_name = "NAME=LO:HI",
        allow_hyphen_values = true,
        requires = "sample"
    )]
    range: Vec<String>,
    /// Seed of the sample.
    #[arg(long, value_name = "S", default_value_t = 1, value_parser = whole_number)]
    seed: u64,
    /// Metrics, comma-separated: outcome, min_peers, t_min_peers, recovery_time, peak_queue,
    /// peak_utilisation, critical_shock, critical_window, n_equilibria.
    #[arg(long, value_name = "LIST")]
    metric: String,
    /// The CSV to write (its fingerprint goes beside it as FILE.sweep.json).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Worker threads (0: every core).
    #[arg(long, value_name = "T", default_value_t = 0, value_parser = whole_usize)]
    threads: usize,
    /// Compute only the K-th of N deterministic parts.
    #[arg(long, value_name = "K/N")]
    shard: Option<String>,
    /// Complete an interrupted run of the same sweep.
    #[arg(long, conflicts_with = "force")]
    resume: bool,
    /// Replace an existing output.
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
struct MergeArgs {
    /// The shard files, in any order.
    #[arg(required = true)]
    shards: Vec<PathBuf>,
    /// The merged CSV.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Replace an existing output.
    #[arg(long)]
    force: bool,
}

/// `A:B` for a parameter range.
fn parse_range(text: &str) -> Result<(f64, f64), String> {
    let (a, b) = text
        .split_once(':')
        .ok_or_else(|| format!("expected START:END, got `{text}`"))?;
    let num = |v: &str| {
        v.trim()
            .parse::<f64>()
            .map_err(|_| format!("`{v}` is not a number"))
    };
    Ok((num(a)?, num(b)?))
}

#[derive(Args)]
// Arguments of the commands that trace curves in the plane of two parameters (`fold-curve`,
// `hopf-curve`).
struct PlaneArgs {
    /// The parameter in which the points (folds or Hopf points) are first found.
    #[arg(id = "P1", value_name = "P1")]
    p1: String,
    /// The second parameter.
    #[arg(id = "P2", value_name = "P2")]
    p2: String,
    /// Range of P1 in which to find the points, A:B.
    #[arg(long = "p1", id = "p1_range", value_name = "A:B", value_parser = parse_range, allow_hyphen_values = true)]
    p1_range: (f64, f64),
    /// Range of P2 over which to follow them, C:D (must contain the current value of P2).
    #[arg(long = "p2", id = "p2_range", value_name = "C:D", value_parser = parse_range, allow_hyphen_values = true)]
    p2_range: (f64, f64),
    #[command(flatten)]
    scenario: ScenarioArgs,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum FromState {
    /// The stable equilibrium with the fewest peers.
    Collapsed,
}

#[derive(Args)]
struct RescueArgs {
    /// The parameter to step.
    param: String,
    /// Time of the step (minutes).
    #[arg(
        long,
        allow_negative_numbers = true,
        value_name = "T",
        default_value_t = 0.0
    )]
    at: f64,
    /// The state the network is in when the step is made.
    #[arg(long, value_enum, default_value = "collapsed")]
    from_state: FromState,
    /// Relative tolerance on the rescuing value.
    #[arg(long, value_name = "TOL", default_value_t = 1e-6)]
    tol: f64,
    #[command(flatten)]
    scenario: ScenarioArgs,
}

#[derive(Args)]
struct ContinueArgs {
    /// The parameter to vary.
    param: String,
    /// Start value (branches start from every equilibrium here).
    #[arg(long, allow_negative_numbers = true, value_name = "A")]
    from: f64,
    /// End value (either side of A).
    #[arg(long, allow_negative_numbers = true, value_name = "B")]
    to: f64,
    #[command(flatten)]
    scenario: ScenarioArgs,
    #[command(flatten)]
    output: OutputArgs,
}

/// Where a command's CSV goes.
#[derive(Args)]
struct OutputArgs {
    /// Write the CSV here instead of standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Replace existing output files.
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
struct EquilibriaArgs {
    #[command(flatten)]
    scenario: ScenarioArgs,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Args)]
struct CriticalShockArgs {
    #[command(flatten)]
    scenario: ScenarioArgs,
    /// Width of the final bracket of f* (and of every other change of fate).
    #[arg(long, value_name = "T", default_value_t = 1e-6)]
    tol: f64,
    /// Scan resolution: shocks k/K for k = 0..K are simulated before refining every change of
    /// fate (a change narrower than 1/K can be missed).
    #[arg(long, value_name = "K", default_value_t = 20, value_parser = whole_usize)]
    scan: usize,
}

#[derive(Args)]
struct CriticalWindowArgs {
    #[command(flatten)]
    scenario: ScenarioArgs,
    /// Relative width of the final bracket of W*.
    #[arg(long, value_name = "T", default_value_t = 1e-6)]
    tol: f64,
    /// Scan resolution: K/4 (at least 2) windows per factor of ten, from 1e-3 to 1.44e5 min.
    #[arg(long, value_name = "K", default_value_t = 20, value_parser = whole_usize)]
    scan: usize,
}

/// Flags every command shares: the scenario and the solver.
#[derive(Args)]
struct ScenarioArgs {
    /// Scenario file (TOML); without it: model defaults, no shock, t_end 2880.
    scenario: Option<PathBuf>,
    /// Override a parameter, e.g. --set sn_capacity=800 (repeatable).
    #[arg(long = "set", value_name = "NAME=VALUE", allow_hyphen_values = true)]
    set: Vec<String>,
    /// Reboot fraction of peers (and of supernodes unless --sn-shock), in [0, 1).
    #[arg(long, allow_negative_numbers = true, value_name = "F")]
    shock: Option<f64>,
    /// Reboot fraction of supernodes, in [0, 1).
    #[arg(long, allow_negative_numbers = true, value_name = "C")]
    sn_shock: Option<f64>,
    /// Spread the reboot wave over W minutes (0: instantaneous).
    #[arg(long, allow_negative_numbers = true, value_name = "W")]
    window: Option<f64>,
    /// Time of the reboot wave (minutes).
    #[arg(long, allow_negative_numbers = true, value_name = "T")]
    shock_at: Option<f64>,
    /// End of the simulation (minutes).
    #[arg(long, allow_negative_numbers = true, value_name = "T")]
    t_end: Option<f64>,
    /// Relative tolerance.
    #[arg(
        long,
        allow_negative_numbers = true,
        value_name = "R",
        default_value_t = 1e-6
    )]
    rtol: f64,
    /// Absolute tolerance.
    #[arg(
        long,
        allow_negative_numbers = true,
        value_name = "A",
        default_value_t = 1e-12
    )]
    atol: f64,
    /// Integration method: auto, rosenbrock (Rodas5P), rodas4, dopri5 or dop853.
    #[arg(long, value_name = "METHOD", default_value = "auto")]
    method: String,
}

#[derive(Args)]
struct SimulateArgs {
    #[command(flatten)]
    scenario: ScenarioArgs,
    /// Output interval (minutes).
    #[arg(
        long,
        allow_negative_numbers = true,
        value_name = "D",
        default_value_t = 10.0
    )]
    dt: f64,
    /// Populations as user counts (fraction × population) instead of fractions.
    #[arg(long)]
    absolute: bool,
    /// Write the CSV here instead of standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Replace existing output files.
    #[arg(long)]
    force: bool,
    /// Also write the summary as JSON (scenario, tolerances, method, version, results).
    #[arg(long, value_name = "FILE.json")]
    summary: Option<PathBuf>,
}

impl ScenarioArgs {
    fn build(&self) -> Result<(Scenario, SolveOptions), Error> {
        let mut sc = match &self.scenario {
            Some(path) => Scenario::from_file(&P2p, path)?,
            None => Scenario::new(&P2p),
        };
        apply_sets(&mut sc, &self.set)?;
        if self.shock.is_some()
            || self.sn_shock.is_some()
            || self.window.is_some()
            || self.shock_at.is_some()
        {
            let mut s = sc.shock.unwrap_or(Shock::instantaneous(0.0));
            if let Some(f) = self.shock {
                s.fraction = f;
                s.sn_fraction = f;
            }
            if let Some(c) = self.sn_shock {
                s.sn_fraction = c;
            }
            if let Some(w) = self.window {
                s.window = w;
            }
            if let Some(t) = self.shock_at {
                s.at = t;
            }
            sc.shock = Some(s);
        }
        if let Some(t) = self.t_end {
            sc.t_end = t;
        }
        sc.validate(&P2p)?;
        let tol = Tolerances {
            rtol: self.rtol,
            atol: self.atol,
        };
        tol.validate()?;
        let method: Method = self.method.parse()?;
        Ok((
            sc,
            SolveOptions {
                tol,
                method,
                ..Default::default()
            },
        ))
    }
}

/// Applies `--set NAME=VALUE` overrides.
fn apply_sets(sc: &mut Scenario, sets: &[String]) -> Result<(), Error> {
    for item in sets {
        let (name, value) = item
            .split_once('=')
            .ok_or_else(|| Error::Invalid(format!("--set expects NAME=VALUE, got `{item}`")))?;
        let v: f64 = value
            .trim()
            .parse()
            .map_err(|_| Error::Invalid(format!("--set {name}: `{value}` is not a number")))?;
        sc.params.set(name.trim(), v)?;
    }
    Ok(())
}

/// Joins a long flag and a following negative number into `--flag=-1e-3`: a token that parses
/// as a number is never a flag, and clap would otherwise take `-1e-3` for an unknown short flag.
fn join_negative_values(args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let mut out: Vec<std::ffi::OsString> = Vec::with_capacity(args.len());
    let mut it = args.into_iter().peekable();
    while let Some(a) = it.next() {
        let flag = a
            .to_str()
            .filter(|t| t.starts_with("--") && t.len() > 2 && !t.contains('='))
            .map(str::to_string);
        let next_is_negative = it.peek().and_then(|n| n.to_str()).is_some_and(|n| {
            n.starts_with('-')
                && (n.parse::<f64>().is_ok()
                    || n[1..].starts_with(|c: char| c.is_ascii_digit() || c == '.'))
        });
        match (flag, next_is_negative) {
            (Some(f), true) => {
                let v = it.next().expect("peeked");
                let mut joined = std::ffi::OsString::from(format!("{f}="));
                joined.push(v);
                out.push(joined);
            }
            _ => out.push(a),
        }
    }
    out
}

/// A whole number of things, also written like a float (`1e9`); negative, fractional or
/// non-finite values are refused with the allowed range.
fn whole_number(text: &str) -> Result<u64, String> {
    if let Ok(v) = text.parse::<u64>() {
        return Ok(v);
    }
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= u64::MAX as f64 => {
            Ok(v as u64)
        }
        _ => Err(format!(
            "must be a whole number in [0, {}] (got {text})",
            u64::MAX
        )),
    }
}

/// [`whole_number`] as a `usize`.
fn whole_usize(text: &str) -> Result<usize, String> {
    let v = whole_number(text)?;
    usize::try_from(v).map_err(|_| format!("must be at most {} (got {text})", usize::MAX))
}

/// Parses the command line; negative numbers reach the range checks (see
/// [`join_negative_values`]).
fn parse_cli() -> Result<Cli, clap::Error> {
    Cli::try_parse_from(join_negative_values(std::env::args_os().collect()))
}

fn main() -> ExitCode {
    let cli = match parse_cli() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion)
                || e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            {
                let _ = e.print();
                return if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                    ExitCode::from(2)
                } else {
                    ExitCode::SUCCESS
                };
            }
            // One line naming the culprit; `--help` has the rest.
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            eprintln!("{first}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Simulate(args) => run_simulate(&args),
        Command::Params => run_params(),
        Command::Equilibria(args) => run_equilibria(&args),
        Command::CriticalShock(args) => run_critical_shock(&args),
        Command::CriticalWindow(args) => run_critical_window(&args),
        Command::Continue(args) => run_continue(&args),
        Command::Rescue(args) => run_rescue(&args),
        Command::FoldCurve(args) => run_fold_curve(&args),
        Command::HopfCurve(args) => run_hopf_curve(&args),
        Command::Sweep(args) => run_sweep(&args),
        Command::Merge(args) => run_merge(&args),
        Command::Report(args) => run_report(&args),
        Command::Stochastic(args) => run_stochastic(&args),
        Command::Calibrate(args) => run_calibrate(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A reader that stops early (`| head`) is not an error of ours.
        Err(e) if e.to_string().contains("Broken pipe") => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_params() -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    let specs = P2p.params();
    let w = specs.iter().map(|s| s.name.len()).max().unwrap_or(4);
    let line = |out: &mut dyn Write, s: String| {
        writeln!(out, "{s}").map_err(|e| Error::Invalid(format!("stdout: {e}")))
    };
    line(
        &mut out,
        format!(
            "{:w$}  {:4}  {:8}  {:>10}  {:18}  meaning",
            "name", "sym", "unit", "default", "range"
        ),
    )?;
    for s in specs {
        line(
            &mut out,
            format!(
                "{:w$}  {:4}  {:8}  {:>10}  {:18}  {}",
                s.name,
                s.symbol,
                s.unit,
                significant(s.default, 6),
                s.range_text(),
                s.meaning
            ),
        )?;
    }
    Ok(())
}

/// `v` with `digits` significant digits, without trailing zeros.
fn significant(v: f64, digits: i32) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let prec = (digits - 1 - v.abs().log10().floor() as i32).max(0) as usize;
    let s = format!("{v:.prec$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn run_simulate(args: &SimulateArgs) -> Result<(), Error> {
    let (sc, solve) = args.scenario.build()?;
    // Refuse clobbering, missing directories and one file named twice before any work.
    let targets: Vec<&Path> = [&args.out, &args.summary]
        .into_iter()
        .flatten()
        .map(PathBuf::as_path)
        .collect();
    check_targets(&targets, args.force)?;
    let opts = SimOptions {
        solve,
        dt: args.dt,
        ..Default::default()
    };
    let started = std::time::Instant::now();
    let sim: Simulation<3> = simulate(&P2p, &sc, &opts)?;
    let elapsed = started.elapsed();
    let write_csv = |w: &mut dyn Write| trajectory_csv(w, &P2p, &sc, &sim, args.dt, args.absolute);
    match &args.out {
        Some(path) => write_atomic(path, args.force, write_csv)?,
        None => {
            let mut out = std::io::stdout().lock();
            write_csv(&mut out)?;
        }
    }
    print_summary(&sc, &opts, &sim, elapsed);
    if let Some(path) = &args.summary {
        write_summary_json(path, args.force, &sc, &opts, &sim)?;
    }
    Ok(())
}

fn print_summary(
    sc: &Scenario,
    opts: &SimOptions,
    sim: &Simulation<3>,
    elapsed: std::time::Duration,
) {
    let s = &sim.summary;
    let users = |x: f64| format!("{:.3} M users", x * sc.population / 1e6);
    eprintln!(
        "scenario: {} (t_end {} min, method {}, rtol {:e}, atol {:e})",
        sc.name, sc.t_end, opts.solve.method, opts.solve.tol.rtol, opts.solve.tol.atol
    );
    if s.start_healthy {
        eprintln!(
            "healthy state: peers {:.6}, supernodes {:.6e}, queue {:.6e} (service level {:.4})",
            s.healthy[0], s.healthy[1], s.healthy[2], s.service_level
        );
    } else {
        eprintln!(
            "no healthy state: the network is down at these parameters; best stable state: peers {:.6}, supernodes {:.6e}, queue {:.6e} (service level {:.4} < 0.5)",
            s.healthy[0], s.healthy[1], s.healthy[2], s.service_level
        );
    }
    eprintln!(
        "lowest peers: {:.6} ({}) at t = {:.2} min",
        s.min_peers,
        users(s.min_peers),
        s.t_min_peers
    );
    eprintln!(
        "peak queue: {:.6} ({}) at t = {:.2} min",
        s.peaks[2].0,
        users(s.peaks[2].0),
        s.peaks[2].1
    );
    if let Some((u, t)) = s.peak_utilisation {
        eprintln!("peak utilisation: {u:.4} at t = {t:.2} min");
    }
    match s.recovery_time {
        Some(t) => eprintln!("recovery time: {t:.2} min"),
        None => eprintln!("recovery time: none (peers never returned to 95% of healthy)"),
    }
    if s.down {
        eprintln!("the final parameters have no healthy state: the network is down whatever the trajectory does");
    }
    match s.settled_at {
        Some(t) => eprintln!("outcome: {} (settled by t = {t:.1} min)", s.outcome.name()),
        None => eprintln!(
            "outcome: {} (not settled within {} min after t_end)",
            s.outcome.name(),
            opts.settle_horizon
        ),
    }
    let st = &s.stats;
    eprintln!(
        "solver: {} steps, {} rejected, {} rhs evaluations, {} jacobians, {} LU; {:.2} ms",
        st.steps,
        st.rejected,
        st.rhs_evals,
        st.jac_evals,
        st.lu_decomps,
        elapsed.as_secs_f64() * 1e3
    );
}

fn write_summary_json(
    path: &Path,
    force: bool,
    sc: &Scenario,
    opts: &SimOptions,
    sim: &Simulation<3>,
) -> Result<(), Error> {
    let doc = serde_json::json!({
        "selfheal_version": env!("CARGO_PKG_VERSION"),
        "model": P2p.name(),
        "scenario": sc.to_json(),
        "method": opts.solve.method,
        "tolerances": opts.solve.tol,
        "dt": opts.dt,
        "summary": sim.summary,
    });
    write_atomic(path, force, |w| {
        serde_json::to_writer_pretty(&mut *w, &doc)
            .map_err(|e| Error::Invalid(format!("writing JSON: {e}")))?;
        writeln!(w).map_err(|e| Error::Invalid(format!("writing JSON: {e}")))
    })
}

/// Options for the tipping analyses: the scenario's solver settings, with `auto` meaning the
/// stiff method (every trial ends near an equilibrium, where the model is stiff).
fn tipping_options(solve: SolveOptions, tol: f64, scan: usize) -> TippingOptions {
    let mut opts = TippingOptions { tol, scan, solve };
    if solve.method == Method::Auto {
        opts.solve.method = Method::Rosenbrock;
    }
    opts
}

fn write_out(
    out: &Option<PathBuf>,
    force: bool,
    write: impl FnOnce(&mut dyn Write) -> Result<(), Error>,
) -> Result<(), Error> {
    match out {
        Some(path) => write_atomic(path, force, write),
        None => write(&mut std::io::stdout().lock()),
    }
}

fn run_equilibria(args: &EquilibriaArgs) -> Result<(), Error> {
    let (sc, _) = args.scenario.build()?;
    if let Some(p) = &args.output.out {
        check_target(p, args.output.force)?;
    }
    let started = std::time::Instant::now();
    let eq = all_equilibria(&P2p, sc.params.values())?;
    let elapsed = started.elapsed();
    write_out(&args.output.out, args.output.force, |w| {
        equilibria_csv(w, &P2p, &eq)
    })?;
    eprintln!(
        "{} equilibria in {:.2} ms",
        eq.len(),
        elapsed.as_secs_f64() * 1e3
    );
    Ok(())
}

fn run_critical_shock(args: &CriticalShockArgs) -> Result<(), Error> {
    let (sc, solve) = args.scenario.build()?;
    let opts = tipping_options(solve, args.tol, args.scan);
    let started = std::time::Instant::now();
    let cs = critical_shock(&P2p, sc.params.values(), &opts)?;
    let elapsed = started.elapsed();
    if cs.down {
        eprintln!(
            "the network is down at these parameters: no stable state serves at least half the users who want service (the best serves {:.4}); every shock ends collapsed",
            cs.landscape.rest.service
        );
        println!("down");
        return Ok(());
    }
    for c in &cs.changes {
        eprintln!(
            "fate changes in [{:.9}, {:.9}]: {} below, {} above",
            c.bracket.0,
            c.bracket.1,
            c.below.name(),
            c.above.name()
        );
    }
    if cs.changes.is_empty() {
        eprintln!(
            "no shock tips the network: all {} scanned shocks (0 to 1 in steps of 1/{}) recover",
            cs.scan.len(),
            opts.scan
        );
    }
    if let Some(s) = &cs.saddle {
        eprintln!(
            "saddle crossed: peers {:.6}, supernodes {:.6e}, queue {:.6e}; unstable eigenvalue {:.6e}/min",
            s.x[0], s.x[1], s.x[2], s.stability.max_real
        );
    }
    eprintln!(
        "{} trials, {} steps, {} rhs evaluations; {:.2} ms",
        cs.trials,
        cs.stats.steps,
        cs.stats.rhs_evals,
        elapsed.as_secs_f64() * 1e3
    );
    print_result(cs.value);
    Ok(())
}

/// The result line of an analysis: the value, or `none`.
fn print_result(v: Option<f64>) {
    match v {
        Some(v) => println!("{v}"),
        None => println!("none"),
    }
}

fn run_critical_window(args: &CriticalWindowArgs) -> Result<(), Error> {
    let (sc, solve) = args.scenario.build()?;
    let f = sc.shock.map(|s| s.fraction).ok_or_else(|| {
        Error::Invalid("critical-window needs --shock F (or a [shock] in the scenario)".into())
    })?;
    let opts = tipping_options(solve, args.tol, args.scan);
    let started = std::time::Instant::now();
    let cw = critical_window(&P2p, sc.params.values(), f, &opts)?;
    let elapsed = started.elapsed();
    for c in &cw.changes {
        eprintln!(
            "fate changes in [{:.6}, {:.6}] min: {} below, {} above",
            c.bracket.0,
            c.bracket.1,
            c.below.name(),
            c.above.name()
        );
    }
    if cw.value.is_none() {
        eprintln!(
            "no critical window: the longest window scanned ({} min) still tips the network",
            selfheal::analysis::tipping::MAX_WINDOW
        );
    }
    eprintln!(
        "{} trials, {} steps; {:.2} ms",
        cw.trials,
        cw.stats.steps,
        elapsed.as_secs_f64() * 1e3
    );
    print_result(cw.value);
    Ok(())
}

fn run_continue(args: &ContinueArgs) -> Result<(), Error> {
    let (sc, _) = args.scenario.build()?;
    let k = sc.params.index(&args.param)?;
    if let Some(p) = &args.output.out {
        check_target(p, args.output.force)?;
    }
    let started = std::time::Instant::now();
    let c = continue_equilibria(
        &P2p,
        sc.params.values(),
        k,
        args.from,
        args.to,
        &ContinuationOptions::default(),
    )?;
    let elapsed = started.elapsed();
    write_out(&args.output.out, args.output.force, |w| {
        continuation_csv(w, &P2p, &c)
    })?;
    for (b, p) in c.special_points() {
        // Hopf points: frequency, first Lyapunov coefficient and criticality.
        let hopf = p.hopf.map_or(String::new(), |h| {
            format!(
                "; ω = {}/min, l1 = {:+.1e}: {}{}",
                significant(h.omega, 4),
                h.l1,
                h.criticality.name(),
                if h.located == Located::RegulaFalsi {
                    ", located by regula falsi"
                } else {
                    ""
                }
            )
        });
        eprintln!(
            "{} at {} = {} on branch {} (peers {:.6}, supernodes {:.6e}, queue {:.6e}{hopf})",
            p.special.map_or("", |s| s.name()),
            c.param,
            p.mu,
            b + 1,
            p.x[0],
            p.x[1],
            p.x[2]
        );
    }
    match selfheal::analysis::bistable::bistable_intervals(&P2p, &c) {
        Ok(b) if b.is_empty() => eprintln!("bistable: nowhere in the range"),
        Ok(b) => {
            for i in b {
                eprintln!(
                    "bistable for {} in ({} [{}], {} [{}])",
                    c.param,
                    i.lo.mu,
                    i.lo.describe(),
                    i.hi.mu,
                    i.hi.describe()
                );
            }
        }
        Err(e) => eprintln!("bistable region: {e}"),
    }
    eprintln!(
        "{} branches, {} steps; {:.2} ms",
        c.branches.len(),
        c.steps,
        elapsed.as_secs_f64() * 1e3
    );
    Ok(())
}

fn run_rescue(args: &RescueArgs) -> Result<(), Error> {
    let (sc, solve) = args.scenario.build()?;
    let k = sc.params.index(&args.param)?;
    if !(args.at.is_finite() && args.at >= 0.0 && args.at <= sc.t_end) {
        return Err(Error::OutOfRange {
            name: "--at".into(),
            value: args.at,
            range: format!("in [0, t_end = {}]", sc.t_end),
        });
    }
    let FromState::Collapsed = args.from_state;
    let opts = tipping_options(solve, args.tol, TippingOptions::default().scan);
    let started = std::time::Instant::now();
    let r = rescue(&P2p, sc.params.values(), k, &opts)?;
    let elapsed = started.elapsed();
    eprintln!(
        "collapsed state: peers {:.6e}, supernodes {:.6e}, queue {:.6e}",
        r.collapsed[0], r.collapsed[1], r.collapsed[2]
    );
    let Some(v) = r.value else {
        eprintln!(
            "no value of {} within the searched range brings the network back ({} trials)",
            r.param, r.trials
        );
        println!("none");
        return Ok(());
    };
    let (fails, rescues) = r.bracket.unwrap_or((v, v));
    eprintln!(
        "bracket: [{fails}, {rescues}] (fails, rescues; both simulated); {} was {}",
        r.param, r.from_value
    );
    // How long recovery takes at the threshold and with a 10 % margin beyond it.
    let margin = if rescues >= fails { v * 1.1 } else { v / 1.1 };
    for (label, value) in [("at the threshold", v), ("with a 10% margin", margin)] {
        let mut run = sc.clone();
        run.shock = None;
        run.initial = Some(r.collapsed.iter().copied().collect());
        run.interventions = vec![Intervention {
            at: args.at,
            set: vec![(k, value)],
        }];
        run.t_end = args.at + 100.0 * 1440.0;
        let sim: Simulation<3> = simulate(
            &P2p,
            &run,
            &SimOptions {
                solve: opts.solve,
                ..Default::default()
            },
        )?;
        match sim.summary.recovery_time {
            Some(t) => eprintln!(
                "recovery {label} ({} = {value:.6e}): peers back to 95% of healthy {:.1} min after the step",
                r.param,
                t - args.at
            ),
            None => eprintln!("recovery {label} ({} = {value:.6e}): not within 100 days", r.param),
        }
    }
    eprintln!("{} trials; {:.2} ms", r.trials, elapsed.as_secs_f64() * 1e3);
    println!("{v}");
    Ok(())
}

fn run_fold_curve(args: &PlaneArgs) -> Result<(), Error> {
    let (sc, _) = args.scenario.build()?;
    let k1 = sc.params.index(&args.p1)?;
    let k2 = sc.params.index(&args.p2)?;
    if let Some(p) = &args.output.out {
        check_target(p, args.output.force)?;
    }
    let started = std::time::Instant::now();
    let fc = fold_curves(
        &P2p,
        sc.params.values(),
        k1,
        args.p1_range,
        k2,
        args.p2_range,
        &ContinuationOptions::default(),
    )?;
    let elapsed = started.elapsed();
    write_out(&args.output.out, args.output.force, |w| {
        fold_curve_csv(w, &P2p, &fc)
    })?;
    for pt in fc.special_points() {
        eprintln!(
            "{} at {} = {}, {} = {}",
            pt.special.map_or("", |s| s.name()),
            fc.p1,
            pt.mu1,
            fc.p2,
            pt.mu2
        );
    }
    eprintln!(
        "{} fold curves, {} steps; {:.2} ms",
        fc.curves.len(),
        fc.steps,
        elapsed.as_secs_f64() * 1e3
    );
    Ok(())
}

fn run_hopf_curve(args: &PlaneArgs) -> Result<(), Error> {
    let (sc, _) = args.scenario.build()?;
    let k1 = sc.params.index(&args.p1)?;
    let k2 = sc.params.index(&args.p2)?;
    if let Some(p) = &args.output.out {
        check_target(p, args.output.force)?;
    }
    let started = std::time::Instant::now();
    let hc = hopf_curves(
        &P2p,
        sc.params.values(),
        k1,
        args.p1_range,
        k2,
        args.p2_range,
        &ContinuationOptions::default(),
    )?;
    let elapsed = started.elapsed();
    write_out(&args.output.out, args.output.force, |w| {
        hopf_curve_csv(w, &P2p, &hc)
    })?;
    for (c, pt) in hc.special_points() {
        let kind = pt.kind.map_or("", |k| k.name());
        let omega = if pt.omega > 0.0 {
            format!("; ω = {:.4}/min", pt.omega)
        } else {
            String::new()
        };
        eprintln!(
            "{kind} at {} = {}, {} = {} on curve {} (peers {:.6}, supernodes {:.6e}, queue {:.6e}{omega})",
            hc.p1,
            pt.mu1,
            hc.p2,
            pt.mu2,
            c + 1,
            pt.x[0],
            pt.x[1],
            pt.x[2],
        );
    }
    for (c, curve) in hc.curves.iter().enumerate() {
        eprintln!(
            "curve {}: {} points, ends: {}, {}",
            c + 1,
            curve.points.len(),
            curve.ends[0].name(),
            curve.ends[1].name()
        );
    }
    for mu in &hc.unstarted {
        eprintln!(
            "no curve could be started from the Hopf point at {} = {mu}",
            hc.p1
        );
    }
    eprintln!(
        "{} Hopf curves, {} steps; {:.2} ms",
        hc.curves.len(),
        hc.steps,
        elapsed.as_secs_f64() * 1e3
    );
    Ok(())
}

fn run_sweep(args: &SweepArgs) -> Result<(), Error> {
    let (sc, solve) = args.scenario.build()?;
    let design = match &args.sample {
        None => {
            if args.grid.is_empty() {
                return Err(Error::Invalid(
                    "sweep needs --grid NAME=START:STOP:COUNT or --sample METHOD".into(),
                ));
            }
            let mut axes = args
                .grid
                .iter()
                .map(|g| Axis::parse(g, &sc))
                .collect::<Result<Vec<_>, _>>()?;
            for name in &args.log {
                let axis = axes.iter_mut().find(|a| &a.name == name).ok_or_else(|| {
                    Error::Invalid(format!("--log {name}: no grid axis of that name"))
                })?;
                axis.set_log()?;
            }
            Design::Grid(axes)
        }
        Some(method) => {
            let n = args
                .n
                .ok_or_else(|| Error::Invalid("--sample needs --n N".into()))?;
            let mut ranges = args
                .range
                .iter()
                .map(|r| Range::parse(r, &sc))
                .collect::<Result<Vec<_>, _>>()?;
            for name in &args.log {
                let range = ranges.iter_mut().find(|r| &r.name == name).ok_or_else(|| {
                    Error::Invalid(format!("--log {name}: no sampled range of that name"))
                })?;
                range.set_log()?;
            }
            Design::Sample {
                sampler: method.parse()?,
                n,
                ranges,
                seed: args.seed,
            }
        }
    };
    let metrics = Metric::parse_list(&args.metric)?;
    let shard = args.shard.as_deref().map(Shard::parse).transpose()?;
    let mut sweep = Sweep::new(&P2p, sc, design, metrics)?;
    sweep.sim.solve = solve;
    sweep.tipping = tipping_options(solve, sweep.tipping.tol, sweep.tipping.scan);
    let mode = if args.resume {
        RunFile::Resume
    } else if args.force {
        RunFile::Force
    } else {
        RunFile::Fresh
    };
    let started = std::time::Instant::now();
    let written = run_to_file(&sweep, &args.out, mode, shard, args.threads)?;
    let el = started.elapsed().as_secs_f64();
    eprintln!(
        "{written} rows computed in {el:.2} s ({:.0} rows/s); {} rows in the sweep{}",
        written as f64 / el.max(1e-9),
        sweep.len(),
        shard.map_or(String::new(), |s| format!(", shard {}/{}", s.k, s.n))
    );
    Ok(())
}

fn run_merge(args: &MergeArgs) -> Result<(), Error> {
    let rows = merge(&args.shards, &args.out, args.force)?;
    eprintln!("{rows} rows merged into {}", args.out.display());
    Ok(())
}

fn run_report(args: &ReportArgs) -> Result<(), Error> {
    let default = PathBuf::from("data/skype2007.toml");
    let path = args.scenario.clone().unwrap_or(default.clone());
    let sc = Scenario::from_file(&P2p, &path)?;
    let data = match (&args.data, args.scenario.is_none()) {
        (Some(d), _) => Some(d.clone()),
        (None, true) => Some(PathBuf::from("data/skype2007_online.csv")).filter(|p| p.exists()),
        _ => None,
    };
    let observed = match (&data, &sc.start) {
        (Some(d), Some(start)) => selfheal::report::read_observations(d, start)?,
        (Some(d), None) => {
            return Err(Error::Invalid(format!(
                "{}: observations need the scenario's `start` (the clock time of t = 0)",
                d.display()
            )))
        }
        _ => vec![],
    };
    let started = std::time::Instant::now();
    let r = selfheal::report::write_report(&sc, &path.display().to_string(), &observed, &args.out)?;
    eprintln!(
        "outcome: {}; critical shock: {}; folds in sn_capacity: {:?}; strongest lever: {}",
        r.outcome.name(),
        r.critical_shock
            .map_or("none".into(), |f| format!("{f:.4}")),
        r.capacity_folds,
        r.levers.first().map_or("-", |l| l.0.as_str())
    );
    eprintln!(
        "wrote {} files in {} ({:.1} s); start with {}",
        r.files.len(),
        args.out.display(),
        started.elapsed().as_secs_f64(),
        args.out.join("report.md").display()
    );
    Ok(())
}

fn run_stochastic(args: &StochasticArgs) -> Result<(), Error> {
    use selfheal::stochastic::{simulate_runs, StochasticMethod};
    let (sc, _) = args.scenario.build()?;
    let method = match args.stochastic_method.as_str() {
        "exact" => StochasticMethod::Exact,
        "tau" => StochasticMethod::TauLeap,
        "auto" => StochasticMethod::Auto,
        other => {
            return Err(Error::Invalid(format!(
                "unknown stochastic method `{other}`: must be exact, tau or auto"
            )))
        }
    };
    let targets: Vec<&Path> = [&args.output.out, &args.quantiles]
        .into_iter()
        .flatten()
        .map(PathBuf::as_path)
        .collect();
    check_targets(&targets, args.output.force)?;
    if !(args.dt.is_finite() && args.dt > 0.0) {
        return Err(Error::OutOfRange {
            name: "dt".into(),
            value: args.dt,
            range: "finite and > 0".into(),
        });
    }
    let started = std::time::Instant::now();
    let runs = simulate_runs(&sc, args.population, args.runs, args.seed, method, args.dt)?;
    if let Some(path) = &args.quantiles {
        let rows = selfheal::stochastic::peer_quantiles(&runs, args.dt);
        write_atomic(path, args.output.force, |w| {
            let mut csv = csv::Writer::from_writer(w);
            let err = |e: csv::Error| Error::Invalid(format!("writing CSV: {e}"));
            csv.write_record(["t", "q05", "q25", "q50", "q75", "q95"])
                .map_err(err)?;
            for (t, q) in &rows {
                let mut rec = vec![format!("{t}")];
                rec.extend(q.iter().map(|v| format!("{v}")));
                csv.write_record(&rec).map_err(err)?;
            }
            csv.flush()
                .map_err(|e| Error::Invalid(format!("writing CSV: {e}")))
        })?;
    }
    write_out(&args.output.out, args.output.force, |w| {
        let mut csv = csv::Writer::from_writer(w);
        let err = |e: csv::Error| Error::Invalid(format!("writing CSV: {e}"));
        csv.write_record(["run", "min_peers", "outcome", "recovery_time"])
            .map_err(err)?;
        for r in &runs {
            csv.write_record([
                format!("{}", r.run),
                format!("{}", r.min_peers),
                r.outcome.name().to_string(),
                r.recovery_time.map_or(String::new(), |t| format!("{t}")),
            ])
            .map_err(err)?;
        }
        csv.flush()
            .map_err(|e| Error::Invalid(format!("writing CSV: {e}")))
    })?;
    let collapsed = runs
        .iter()
        .filter(|r| r.outcome == selfheal::simulate::Outcome::Collapsed)
        .count();
    eprintln!(
        "{} runs of {} users: {collapsed} collapsed; {:.2} s",
        runs.len(),
        args.population,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn run_calibrate(args: &CalibrateArgs) -> Result<(), Error> {
    use selfheal::calibrate::{
        calibrate, parse_utc, read_readings, CalibrateOptions, FitMethod, FitParam, Weighting,
    };
    let mut sc = Scenario::from_file(&P2p, &args.scenario)?;
    apply_sets(&mut sc, &args.set)?;
    sc.validate(&P2p)?;
    let start = sc.start.clone().ok_or_else(|| {
        Error::Invalid(format!(
            "{}: calibration needs the scenario's `start` (the clock time of t = 0)",
            args.scenario.display()
        ))
    })?;
    let method = FitMethod::parse(&args.fit_method)?;
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
        level: args.level,
        ..CalibrateOptions::default()
    };
    let mut fit: Vec<FitParam> = vec![];
    for name in &args.fit {
        fit.push(FitParam::new(name.trim(), &sc)?);
    }
    for b in &args.bounds {
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
            .ok_or_else(|| Error::Invalid(format!("--bounds {name}: `{name}` is not in --fit")))?;
        f.set_bounds(num(lo)?, num(hi)?)?;
    }
    let weighting = Weighting {
        relative: args.rel_error,
    };
    let t0 = parse_utc(&start)?;
    let clock = |flag: &str, v: &Option<String>| -> Result<Option<f64>, Error> {
        v.as_ref()
            .map(|s| {
                parse_utc(s)
                    .map(|t| (t - t0) / 60.0)
                    .map_err(|e| Error::Invalid(format!("--{flag}: {e}")))
            })
            .transpose()
    };
    let (from, until) = (clock("from", &args.from)?, clock("until", &args.until)?);
    let all = read_readings(&args.data, &start, &weighting)?;
    let readings: Vec<_> = all
        .iter()
        .filter(|r| from.is_none_or(|f| r.t >= f) && until.is_none_or(|u| r.t <= u))
        .cloned()
        .collect();
    if readings.is_empty() {
        return Err(Error::Invalid(format!(
            "{}: no readings between --from and --until",
            args.data.display()
        )));
    }
    for p in [&args.out, &args.residuals, &args.figure]
        .into_iter()
        .flatten()
    {
        check_target(p, args.force)?;
    }
    if let Some(f) = &args.figure {
        let ext = f.extension().and_then(|e| e.to_str()).unwrap_or("");
        if !["svg", "png"].contains(&ext) {
            return Err(Error::Invalid(format!(
                "--figure {}: the name must end in .svg or .png",
                f.display()
            )));
        }
    }
    let started = std::time::Instant::now();
    let result = calibrate::<_, 3, 6>(&P2p, &sc, &readings, fit, &opts)?;
    let secs = started.elapsed().as_secs_f64();

    let pct = 100.0 * result.level;
    println!(
        "fitted {} quantities to {} of {} readings in {}",
        result.params.len(),
        readings.len(),
        all.len(),
        args.data.display()
    );
    println!(
        "{:<28} {:>13} {:>13} {:>11}  {:<29} bounds",
        "name",
        "start",
        "fitted",
        "sd",
        format!("{pct:.0} % interval")
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
    println!("{} (start {:.4})", fit_quality(&result), result.chi2_start);
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
    if let Some(path) = &args.residuals {
        write_atomic(path, args.force, |w| {
            let mut csv = csv::Writer::from_writer(w);
            let err = |e: csv::Error| Error::Invalid(format!("writing CSV: {e}"));
            csv.write_record(["time", "t", "observed", "model", "sigma", "z"])
                .map_err(err)?;
            for r in &result.residuals {
                csv.write_record([
                    r.time.clone(),
                    format!("{}", r.t),
                    format!("{}", r.observed),
                    format!("{}", r.model),
                    format!("{}", r.sigma),
                    format!("{}", r.z),
                ])
                .map_err(err)?;
            }
            csv.flush()
                .map_err(|e| Error::Invalid(format!("writing CSV: {e}")))
        })?;
    }
    if let Some(path) = &args.figure {
        let mut shown = result.scenario.clone();
        shown.t_end = all.iter().map(|r| r.t).fold(shown.t_end, f64::max);
        let sim = selfheal::simulate::simulate(&P2p, &shown, &Default::default())?;
        let observed: Vec<_> = all.iter().map(|r| (r.t, r.users, r.note.clone())).collect();
        let title = format!(
            "Calibrated model: {} quantities fitted to {} readings, RMSE {}",
            result.params.len(),
            readings.len(),
            users_text(result.rmse)
        );
        selfheal::report::fit_figure(&shown, &sim, &observed, &title).save(path)?;
    }
    if let Some(path) = &args.out {
        let mut text = format!(
            "# Fitted by `selfheal calibrate` (selfheal {}) from {} to {} readings of {}{}{}.\n",
            env!("CARGO_PKG_VERSION"),
            args.scenario.display(),
            readings.len(),
            args.data.display(),
            args.from
                .as_ref()
                .map_or(String::new(), |f| format!(" from {f}")),
            args.until
                .as_ref()
                .map_or(String::new(), |u| format!(" until {u}")),
        );
        text += &format!(
            "# Weighting: sigma = sqrt((last place/sqrt(12))^2 + ({} x count)^2) unless the file gives sigma.\n",
            args.rel_error
        );
        for p in &result.params {
            text += &format!(
                "# {} = {} (start {}; sd {}; {pct:.0} % interval {}){}\n",
                p.name,
                p.value,
                p.start,
                p.sd.map_or("-".into(), |v| format!("{v:.3e}")),
                p.interval.map_or("not determined".into(), |(a, b)| format!(
                    "{a:.4e} to {b:.4e}"
                )),
                if p.at_bound { ", at a bound" } else { "" }
            );
        }
        text += &format!("# {}.\n", fit_quality(&result));
        for w in &result.warnings {
            text += &format!("# Warning: {w}\n");
        }
        let mut fitted = result.scenario.clone();
        fitted.name = format!("{} (fitted)", fitted.name);
        text += &fitted.to_toml(&P2p);
        write_atomic(path, args.force, |w| {
            w.write_all(text.as_bytes())
                .map_err(|e| Error::Invalid(format!("writing {}: {e}", path.display())))
        })?;
    }
    Ok(())
}

/// RMSE, χ² and χ²/(n − k) of a fit, in one line.
fn fit_quality(fit: &selfheal::calibrate::Fit) -> String {
    format!(
        "RMSE {:.0} users; chi2 {:.4}; chi2/(n-k) {}",
        fit.rmse,
        fit.chi2,
        fit.reduced_chi2.map_or("-".into(), |v| format!("{v:.4}"))
    )
}

/// 1234567 → "1.23 million users".
fn users_text(u: f64) -> String {
    if u >= 1e6 {
        format!("{:.2} million users", u / 1e6)
    } else if u >= 1e3 {
        format!("{:.0} thousand users", u / 1e3)
    } else {
        format!("{u:.0} users")
    }
}
