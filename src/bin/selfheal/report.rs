//! `selfheal report`: the newcomer's report (CSVs, figures and report.md) of one scenario of
//! the built-in model or of a model file.

use crate::args::apply_sets;
use clap::Args;
use selfheal::model::{Model, P2p};
use selfheal::report::{
    default_scenario, read_observations_in, write_report, Observation, ReportPlan,
    DEFAULT_SCENARIO_NAME,
};
use selfheal::scenario::Scenario;
use selfheal::Error;
use std::path::PathBuf;

#[derive(Args)]
pub struct ReportArgs {
    /// Scenario file (default: the 2007 outage scenario, data/skype2007.toml, built in; with a
    /// model file: the model's defaults without a wave).
    scenario: Option<PathBuf>,
    /// Model file (TOML, docs/model-files.md) instead of the built-in model; a scenario may
    /// name its model with `model = "FILE"` instead.
    #[arg(long, value_name = "FILE.toml")]
    model: Option<PathBuf>,
    /// The two parameters of the continuations and the tipping map [default: sn_capacity and
    /// dedicated for the built-in model; the two strongest levers for a model file].
    #[arg(long, value_name = "P1,P2")]
    axes: Option<String>,
    /// Directory for the report (its own files are replaced, nothing else is touched).
    #[arg(long, value_name = "DIR", default_value = "report")]
    out: PathBuf,
    /// Observed online users to draw beside the model (CSV: time, online_users[, note]);
    /// default for the default scenario: its public readings (data/skype2007_online.csv,
    /// built in).
    #[arg(long, value_name = "FILE.csv")]
    data: Option<PathBuf>,
    /// Override a parameter of the scenario, e.g. --set sn_capacity=800 (repeatable).
    #[arg(long = "set", value_name = "NAME=VALUE", allow_hyphen_values = true)]
    set: Vec<String>,
}

pub fn run(args: &ReportArgs) -> Result<(), Error> {
    match crate::args::model_file(args.model.as_deref(), args.scenario.as_deref())? {
        Some(file) => selfheal::with_model_file!(&file, |m| run_with(&m, args, false)),
        None => run_with(&P2p, args, true),
    }
}

/// The two names of `--axes`.
fn axes(text: &str) -> Result<[&str; 2], Error> {
    match text.split(',').map(str::trim).collect::<Vec<_>>()[..] {
        [a, b] if !a.is_empty() && !b.is_empty() => Ok([a, b]),
        _ => Err(Error::Invalid(format!(
            "--axes expects two parameters as P1,P2, got `{text}`"
        ))),
    }
}

fn run_with<M: Model<N>, const N: usize>(
    model: &M,
    args: &ReportArgs,
    builtin: bool,
) -> Result<(), Error>
where
    nalgebra::Const<N>: nalgebra::DimMin<nalgebra::Const<N>, Output = nalgebra::Const<N>>,
{
    let (mut sc, name, mut observed): (Scenario, String, Vec<Observation>) = match &args.scenario {
        None if builtin => {
            let (sc, observed) = default_scenario()?;
            (sc, DEFAULT_SCENARIO_NAME.to_string(), observed)
        }
        None => (Scenario::new(model), model.name().to_string(), vec![]),
        Some(path) => (
            Scenario::from_file(model, path)?,
            path.display().to_string(),
            vec![],
        ),
    };
    if !args.set.is_empty() {
        apply_sets(&mut sc, &args.set)?;
        sc.validate(model)?;
    }
    if !sc.daily.is_empty() {
        return Err(Error::Unsupported(
            "report reads equilibria, which a scenario with [daily] profiles does not have (its rest is a daily cycle): remove [daily], or use simulate, equilibria and critical-shock --by-hour".into(),
        ));
    }
    let named = args
        .axes
        .as_deref()
        .map(axes)
        .transpose()
        .map_err(|e| e.context("--axes"))?;
    let plan = match named {
        None if builtin => ReportPlan::reference(&sc)?,
        named => ReportPlan::for_scenario(&sc, named).map_err(|e| e.context("--axes"))?,
    };
    if let Some(d) = &args.data {
        let start = sc.start.as_ref().ok_or_else(|| {
            Error::Invalid(format!(
                "{}: observations need the scenario's `start` (the clock time of t = 0)",
                d.display()
            ))
        })?;
        let per = selfheal::calibrate::seconds_per_unit(model.time_unit()).ok_or_else(|| {
            Error::Invalid(format!(
                "--data {}: readings have clock times, and model `{}` counts time in `{}`, not in seconds, minutes, hours or days",
                d.display(),
                model.name(),
                model.time_unit()
            ))
        })?;
        observed = read_observations_in(d, start, per)?;
    }
    let started = std::time::Instant::now();
    let r = write_report(model, &sc, &name, &observed, &args.out, &plan)?;
    eprintln!(
        "outcome: {}; critical shock: {}; folds in {}: {:?}; strongest lever: {}",
        r.outcome.name(),
        r.critical_shock
            .map_or("none".into(), |f| format!("{f:.4}")),
        r.axes[0],
        r.capacity_folds,
        r.levers
            .first()
            .filter(|l| l.1.is_some())
            .map_or("-", |l| l.0.as_str())
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
