//! What the commands share: the scenario and solver flags, the output flags, number parsers,
//! and the joining of negative values to their flags.

use clap::Args;
use selfheal::files::write_atomic;
use selfheal::model::{Model, P2p};
use selfheal::modelfile::ModelFile;
use selfheal::scenario::{Scenario, ShockChange};
use selfheal::solve::{Method, SolveOptions, Tolerances};
use selfheal::Error;
use std::io::Write;
use std::path::PathBuf;

/// Flags every scenario command shares: the scenario and the solver.
#[derive(Args)]
pub struct ScenarioArgs {
    /// Scenario file (TOML); without it: model defaults, no shock, t_end 2880.
    pub scenario: Option<PathBuf>,
    /// Model file (TOML, docs/model-files.md) instead of the built-in model; a scenario may
    /// name its model with `model = "FILE"` instead.
    #[arg(long, value_name = "FILE.toml")]
    pub model: Option<PathBuf>,
    /// Override a parameter, e.g. --set sn_capacity=800 (repeatable).
    #[arg(long = "set", value_name = "NAME=VALUE", allow_hyphen_values = true)]
    pub set: Vec<String>,
    /// Reboot-wave fraction, in [0, 1): the built-in model's peers (and supernodes unless
    /// --sn-shock); a model file's first [shock] fraction.
    #[arg(long, value_name = "F")]
    pub shock: Option<f64>,
    /// Reboot fraction of supernodes, in [0, 1) (a model file's second [shock] fraction).
    #[arg(long, value_name = "C")]
    pub sn_shock: Option<f64>,
    /// Spread the reboot wave over W time units (minutes for the built-in model; 0:
    /// instantaneous).
    #[arg(long, value_name = "W")]
    pub window: Option<f64>,
    /// Time of the reboot wave (in the model's time unit: minutes for the built-in model).
    #[arg(long, value_name = "T")]
    pub shock_at: Option<f64>,
    /// End of the simulation (in the model's time unit: minutes for the built-in model).
    #[arg(long, value_name = "T")]
    pub t_end: Option<f64>,
    /// Relative tolerance of the solver [default: 1e-6].
    #[arg(long, value_name = "R")]
    pub rtol: Option<f64>,
    /// Absolute tolerance of the solver [default: 1e-12].
    #[arg(long, value_name = "A")]
    pub atol: Option<f64>,
    /// Integration method: auto, rosenbrock (Rodas5P), rodas4, dopri5 or dop853 [default: auto].
    #[arg(long, value_name = "METHOD")]
    pub method: Option<String>,
}

/// The scenario flags a command does not use (each is refused when given, rather than
/// silently ignored).
#[derive(Clone, Copy, Default)]
pub struct Unused {
    /// `--shock`, `--sn-shock`, `--window`, `--shock-at`.
    pub wave: bool,
    /// Of the wave flags, only `--shock` is used.
    pub wave_but_fraction: bool,
    /// `--t-end`.
    pub t_end: bool,
    /// `--rtol`, `--atol`, `--method`.
    pub solver: bool,
}

impl Unused {
    /// Commands that work on the parameters alone: no wave, no clock, no solver.
    pub const PARAMETERS_ONLY: Unused = Unused {
        wave: true,
        wave_but_fraction: false,
        t_end: true,
        solver: true,
    };
}

/// The commands that follow a scenario's daily cycle (besides `simulate` and `sweep`).
const DAILY_COMMANDS: [&str; 2] = ["critical-shock", "equilibria"];

impl ScenarioArgs {
    /// Refuses the flags of `unused` that were given, naming the command.
    pub fn refuse(&self, command: &str, unused: Unused) -> Result<(), Error> {
        let given = |flag: &str, set: bool, unused: bool| {
            if set && unused {
                Err(Error::Invalid(format!(
                    "{command} does not use {flag}; leave it out (see `selfheal {command} --help`)"
                )))
            } else {
                Ok(())
            }
        };
        let wave = unused.wave || unused.wave_but_fraction;
        given("--shock", self.shock.is_some(), unused.wave)?;
        given("--sn-shock", self.sn_shock.is_some(), wave)?;
        given("--window", self.window.is_some(), wave)?;
        given("--shock-at", self.shock_at.is_some(), wave)?;
        given("--t-end", self.t_end.is_some(), unused.t_end)?;
        given("--rtol", self.rtol.is_some(), unused.solver)?;
        given("--atol", self.atol.is_some(), unused.solver)?;
        given("--method", self.method.is_some(), unused.solver)
    }

    /// The model file of this run: `--model`, else the scenario's `model` key (a path relative
    /// to the scenario file); `None` for the built-in model.
    pub fn model_file(&self) -> Result<Option<ModelFile>, Error> {
        model_file(self.model.as_deref(), self.scenario.as_deref())
    }

    /// [`ScenarioArgs::build`] after refusing the flags `command` does not use (the built-in
    /// model's path: callers have dispatched model files before).
    pub fn build_for(
        &self,
        command: &str,
        unused: Unused,
    ) -> Result<(Scenario, SolveOptions), Error> {
        self.refuse(command, unused)?;
        self.build()
    }

    /// [`ScenarioArgs::build_with`] after refusing the flags `command` does not use.
    pub fn build_for_with<M: Model<N>, const N: usize>(
        &self,
        model: &M,
        command: &str,
        unused: Unused,
    ) -> Result<(Scenario, SolveOptions), Error> {
        self.refuse(command, unused)?;
        let built = self.build_with(model)?;
        if !built.0.daily.is_empty() && !DAILY_COMMANDS.contains(&command) {
            return Err(Error::Unsupported(format!(
                "{command} reads equilibria, which a scenario with [daily] profiles does not have (its rest is a daily cycle): remove [daily], or use {}",
                DAILY_COMMANDS.join(", ")
            )));
        }
        Ok(built)
    }

    /// The scenario (file, then `--set`, then the shock flags, then `--t-end`), validated,
    /// and the solver options.
    pub fn build(&self) -> Result<(Scenario, SolveOptions), Error> {
        self.build_with(&P2p)
    }

    /// [`ScenarioArgs::build`] for `model`.
    pub fn build_with<M: Model<N>, const N: usize>(
        &self,
        model: &M,
    ) -> Result<(Scenario, SolveOptions), Error> {
        let mut sc = match &self.scenario {
            Some(path) => Scenario::from_file(model, path)?,
            None => Scenario::new(model),
        };
        apply_sets(&mut sc, &self.set)?;
        sc.change_shock(&ShockChange {
            fraction: self.shock,
            sn_fraction: self.sn_shock,
            window: self.window,
            at: self.shock_at,
        });
        if let Some(t) = self.t_end {
            sc.t_end = t;
        }
        sc.validate(model)?;
        let default = Tolerances::default();
        let tol = Tolerances {
            rtol: self.rtol.unwrap_or(default.rtol),
            atol: self.atol.unwrap_or(default.atol),
        };
        tol.validate()?;
        let method: Method = match &self.method {
            Some(m) => m.parse().map_err(|e: Error| e.context("--method"))?,
            None => Method::Auto,
        };
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

/// The model file of a run: `flag` (`--model`), else the `model` key of the scenario file (a
/// path relative to it); `None` for the built-in model.
pub fn model_file(
    flag: Option<&std::path::Path>,
    scenario: Option<&std::path::Path>,
) -> Result<Option<ModelFile>, Error> {
    if let Some(path) = flag {
        return ModelFile::load(path).map(Some);
    }
    let Some(scenario) = scenario else {
        return Ok(None);
    };
    // The key alone, before the scenario is read against the model's parameters.
    let Ok(text) = std::fs::read_to_string(scenario) else {
        return Ok(None);
    };
    let Ok(doc) = text.parse::<toml::Table>() else {
        return Ok(None);
    };
    match doc.get("model").and_then(|v| v.as_str()) {
        Some(rel) => {
            let base = scenario.parent().unwrap_or(std::path::Path::new("."));
            ModelFile::load(&base.join(rel))
                .map(Some)
                .map_err(|e| e.context(format!("the model of {}", scenario.display())))
        }
        None => Ok(None),
    }
}

/// A state of the reference model as the commands print it.
pub fn p2p_state(x: &[f64]) -> String {
    format!(
        "peers {:.6}, supernodes {:.6e}, queue {:.6e}",
        x[0], x[1], x[2]
    )
}

/// A state of any model as `name value, …` (seven significant digits).
pub fn generic_state(names: &[&str], x: &[f64]) -> String {
    names
        .iter()
        .zip(x)
        .map(|(n, v)| format!("{n} {v:.6e}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs `$body` with `$m` the model of a run (the model file of `--model` or of the scenario's
/// `model` key, else the built-in model) and `$state` a function that prints its states;
/// `$sargs` is the command's [`ScenarioArgs`].
macro_rules! with_model {
    ($sargs:expr, |$m:ident, $state:ident| $body:expr) => {{
        match $sargs.model_file()? {
            Some(file) => selfheal::with_model_file!(&file, |$m| {
                let states = selfheal::model::Model::states(&$m);
                let names = states.each_ref().map(|st| st.name.as_ref());
                let $state = |x: &[f64]| $crate::args::generic_state(&names, x);
                $body
            }),
            None => {
                let $m = selfheal::model::P2p;
                let $state = $crate::args::p2p_state;
                $body
            }
        }
    }};
}
pub(crate) use with_model;

/// Applies `--set NAME=VALUE` overrides.
pub fn apply_sets(sc: &mut Scenario, sets: &[String]) -> Result<(), Error> {
    for item in sets {
        // Range and name errors already name the parameter.
        sc.set_assignment(item).map_err(|e| match e {
            Error::Parse { .. } => e.context("--set"),
            e => e,
        })?;
    }
    Ok(())
}

/// Where a command's CSV goes.
#[derive(Args)]
pub struct OutputArgs {
    /// Write the CSV here instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Replace existing output files.
    #[arg(long)]
    pub force: bool,
}

impl OutputArgs {
    /// Writes through `write` to the file (atomically) or to standard output.
    pub fn write(
        &self,
        write: impl FnOnce(&mut dyn Write) -> Result<(), Error>,
    ) -> Result<(), Error> {
        match &self.out {
            Some(path) => write_atomic(path, self.force, write),
            None => write(&mut std::io::stdout().lock()),
        }
    }

    /// Refuses the output before any work (see [`selfheal::files::check_target`]).
    pub fn check(&self) -> Result<(), Error> {
        match &self.out {
            Some(p) => selfheal::files::check_target(p, self.force),
            None => Ok(()),
        }
    }
}

/// The result line of an analysis on standard output: the value, or `none`.
pub fn print_result(v: Option<f64>) {
    match v {
        Some(v) => println!("{v}"),
        None => println!("none"),
    }
}

/// Milliseconds since `started`.
pub fn ms(started: std::time::Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1e3
}

/// `A:B` for a parameter range.
pub fn parse_range(text: &str) -> Result<(f64, f64), String> {
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

/// Joins a long flag and a following negative number into `--flag=-1e-3`: a token that parses
/// as a number is never a flag, and clap would otherwise take `-1e-3` for an unknown short flag.
pub fn join_negative_values(args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
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
pub fn whole_number(text: &str) -> Result<u64, String> {
    if let Ok(v) = text.parse::<u64>() {
        return Ok(v);
    }
    // 2^64 (the nearest f64 to u64::MAX) and above do not fit: never saturated to u64::MAX.
    const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v < TWO_POW_64 => Ok(v as u64),
        _ => Err(format!(
            "must be a whole number in [0, {}] (got {text})",
            u64::MAX
        )),
    }
}

/// A whole number in `[lo, hi]` (the flag's own range, said in the refusal).
fn whole_in(text: &str, lo: u64, hi: u64) -> Result<u64, String> {
    let range = if hi == u64::MAX {
        format!("at least {lo}")
    } else {
        format!("in [{lo}, {hi}]")
    };
    match whole_number(text) {
        Ok(v) if (lo..=hi).contains(&v) => Ok(v),
        Ok(_) => Err(format!("must be a whole number {range} (got {text})")),
        Err(_) if text.trim().parse::<f64>().is_ok_and(|v| v >= 1.8e19) => Err(format!(
            "must be a whole number {range} (got {text}, more than any count can be: at most {})",
            u64::MAX
        )),
        Err(_) => Err(format!("must be a whole number {range} (got {text})")),
    }
}

/// A whole number of at least 1 (runs, users, sample points).
pub fn at_least_one(text: &str) -> Result<u64, String> {
    whole_in(text, 1, u64::MAX)
}

/// [`at_least_one`] as a `usize`.
pub fn at_least_one_usize(text: &str) -> Result<usize, String> {
    let v = at_least_one(text)?;
    usize::try_from(v).map_err(|_| format!("must be at most {} (got {text})", usize::MAX))
}

/// Most starts of calibration's global phase (each is a local search).
pub const MAX_STARTS: u64 = 10_000;

/// A number of calibration starts: 1 to [`MAX_STARTS`].
pub fn start_count(text: &str) -> Result<usize, String> {
    whole_in(text, 1, MAX_STARTS).map(|v| v as usize)
}

/// A thread count: 0 (one per core) to the sweep's maximum.
pub fn thread_count(text: &str) -> Result<usize, String> {
    let max = selfheal::sweep::MAX_THREADS as u64;
    whole_in(text, 0, max)
        .map(|v| v as usize)
        .map_err(|e| format!("{e}; 0 means one per core"))
}

/// [`whole_number`] as a `usize`.
pub fn whole_usize(text: &str) -> Result<usize, String> {
    let v = whole_number(text)?;
    usize::try_from(v).map_err(|_| format!("must be at most {} (got {text})", usize::MAX))
}

pub use selfheal::output::significant;

/// Refuses a `--figure` whose name does not end in `.svg` or `.png` (the formats figures are
/// written in), before any work.
pub fn check_figure_name(path: &std::path::Path) -> Result<(), Error> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("svg" | "png") => Ok(()),
        _ => Err(Error::Invalid(format!(
            "--figure {}: the name must end in .svg or .png",
            path.display()
        ))),
    }
}
