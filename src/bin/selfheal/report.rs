//! `selfheal report`: the newcomer's report (CSVs, figures and report.md) of one scenario.

use crate::args::apply_sets;
use clap::Args;
use selfheal::model::P2p;
use selfheal::report::{default_scenario, read_observations, write_report, DEFAULT_SCENARIO_NAME};
use selfheal::scenario::Scenario;
use selfheal::Error;
use std::path::PathBuf;

#[derive(Args)]
pub struct ReportArgs {
    /// Scenario file (default: the 2007 outage scenario, data/skype2007.toml, built in).
    scenario: Option<PathBuf>,
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
    let (mut sc, name, mut observed) = match &args.scenario {
        None => {
            let (sc, observed) = default_scenario()?;
            (sc, DEFAULT_SCENARIO_NAME.to_string(), observed)
        }
        Some(path) => (
            Scenario::from_file(&P2p, path)?,
            path.display().to_string(),
            vec![],
        ),
    };
    crate::args::refuse_model_key("report", &sc)?;
    if !args.set.is_empty() {
        apply_sets(&mut sc, &args.set)?;
        sc.validate(&P2p)?;
    }
    if let Some(d) = &args.data {
        let start = sc.start.as_ref().ok_or_else(|| {
            Error::Invalid(format!(
                "{}: observations need the scenario's `start` (the clock time of t = 0)",
                d.display()
            ))
        })?;
        observed = read_observations(d, start)?;
    }
    let started = std::time::Instant::now();
    let r = write_report(&sc, &name, &observed, &args.out)?;
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
