//! `selfheal stochastic`: runs of the scenario as a Markov chain with a finite population.

use crate::args::{
    at_least_one, at_least_one_usize, whole_number, OutputArgs, ScenarioArgs, Unused,
};
use clap::Args;
use selfheal::files::{check_targets, write_atomic};
use selfheal::simulate::Outcome;
use selfheal::stochastic::StochasticMethod;
use selfheal::stochastic::{peer_quantiles, quantiles_csv, runs_csv, simulate_runs};
use selfheal::Error;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct StochasticArgs {
    #[command(flatten)]
    scenario: ScenarioArgs,
    /// Number of users M.
    #[arg(long, value_name = "M", value_parser = at_least_one)]
    population: u64,
    /// Number of runs.
    #[arg(long, value_name = "R", default_value_t = 100, value_parser = at_least_one_usize)]
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

pub fn run(args: &StochasticArgs) -> Result<(), Error> {
    // The chain is simulated exactly (or by tau-leaping): no ODE solver.
    let unused = Unused {
        solver: true,
        ..Unused::default()
    };
    let (sc, _) = args.scenario.build_for("stochastic", unused)?;
    let method: StochasticMethod = args
        .stochastic_method
        .parse()
        .map_err(|e: Error| e.context("--stochastic-method"))?;
    let targets: Vec<&Path> = [&args.output.out, &args.quantiles]
        .into_iter()
        .flatten()
        .map(PathBuf::as_path)
        .collect();
    check_targets(&targets, args.output.force)?;
    if !(args.dt.is_finite() && args.dt > 0.0) {
        return Err(Error::OutOfRange {
            name: "--dt".into(),
            value: args.dt,
            range: "finite and > 0".into(),
        });
    }
    let started = std::time::Instant::now();
    let runs = simulate_runs(&sc, args.population, args.runs, args.seed, method, args.dt)?;
    if let Some(path) = &args.quantiles {
        let rows = peer_quantiles(&runs, args.dt);
        write_atomic(path, args.output.force, |w| quantiles_csv(w, &rows))?;
    }
    args.output.write(|w| runs_csv(w, &runs))?;
    let collapsed = runs
        .iter()
        .filter(|r| r.outcome == Outcome::Collapsed)
        .count();
    eprintln!(
        "{} runs of {} users: {collapsed} collapsed; {:.2} s",
        runs.len(),
        args.population,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
