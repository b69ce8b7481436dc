//! `selfheal stochastic`: runs of the scenario as a Markov chain with a finite population.

use crate::args::{
    at_least_one, at_least_one_usize, whole_number, OutputArgs, ScenarioArgs, Unused,
};
use clap::Args;
use nalgebra::SVector;
use selfheal::analysis::tipping::{fate, Landscape};
use selfheal::files::{check_targets, write_atomic};
use selfheal::model::{Model, System};
use selfheal::modelfile::chain::{chain_runs, ChainOptions};
use selfheal::modelfile::FileModel;
use selfheal::output::num;
use selfheal::simulate::Outcome;
use selfheal::solve::SolverStats;
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
    if let Some(file) = args.scenario.model_file()? {
        return selfheal::with_model_file!(&file, |m| run_file(&m, args));
    }
    // The chain is simulated exactly (or by tau-leaping): no ODE solver.
    let unused = Unused {
        solver: true,
        ..Unused::default()
    };
    let (sc, _) = args.scenario.build_for("stochastic", unused)?;
    let method = method_and_outputs(args)?;
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

/// The method, after checking that every output may be written.
fn method_and_outputs(args: &StochasticArgs) -> Result<StochasticMethod, Error> {
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
    Ok(method)
}

/// The stochastic twin of a model file: `--population` individuals per unit of state; the
/// quantiles of every state across runs; one row per run with its final state and the fate
/// that the fluid model gives from there.
fn run_file<const N: usize>(model: &FileModel<N>, args: &StochasticArgs) -> Result<(), Error>
where
    nalgebra::Const<N>: nalgebra::DimMin<nalgebra::Const<N>, Output = nalgebra::Const<N>>,
{
    let unused = Unused {
        solver: true,
        ..Unused::default()
    };
    let (sc, solve) = args.scenario.build_for_with(model, "stochastic", unused)?;
    let method = method_and_outputs(args)?;
    let start = Landscape::new(model, sc.params.values())?;
    let x0 = match &sc.initial {
        Some(x) => SVector::<f64, N>::from_fn(|i, _| x[i]),
        None => start.rest_state(),
    };
    let opts = ChainOptions {
        population: args.population as f64,
        runs: args.runs,
        seed: args.seed,
        method,
        dt: args.dt,
        epsilon: 0.03,
    };
    let started = std::time::Instant::now();
    let runs = chain_runs(model, &sc, &x0, &opts)?;
    let end = Landscape::new(model, sc.final_params().values())?;
    let pf = sc.final_params();
    let sys = System::new(model, pf.values());
    let mut stats = SolverStats::default();
    let mut outcomes = vec![];
    for r in &runs {
        let last = r.grid.last().expect("the grid holds t = 0");
        let x = SVector::<f64, N>::from_fn(|i, _| last[i]);
        outcomes.push(fate(&sys, x, &end, &solve, &mut stats)?.outcome);
    }
    let states = model.states();
    let names = states.each_ref().map(|st| st.name.as_ref());
    if let Some(path) = &args.quantiles {
        write_atomic(path, args.output.force, |w| {
            let mut csv = csv::Writer::from_writer(w);
            let mut header = vec!["t".to_string()];
            for n in &names {
                for q in ["q05", "q25", "q50", "q75", "q95"] {
                    header.push(format!("{n}_{q}"));
                }
            }
            csv.write_record(&header)
                .map_err(|e| Error::Invalid(e.to_string()))?;
            for k in 0..runs[0].grid.len() {
                let mut row = vec![num(k as f64 * args.dt)];
                for i in 0..N {
                    let mut v: Vec<f64> = runs.iter().map(|r| r.grid[k][i]).collect();
                    v.sort_by(f64::total_cmp);
                    for q in [0.05, 0.25, 0.5, 0.75, 0.95] {
                        row.push(num(v[((v.len() - 1) as f64 * q).round() as usize]));
                    }
                }
                csv.write_record(&row)
                    .map_err(|e| Error::Invalid(e.to_string()))?;
            }
            csv.flush().map_err(|e| Error::Invalid(e.to_string()))
        })?;
    }
    args.output.write(|w| {
        let mut csv = csv::Writer::from_writer(w);
        let mut header = vec![
            "run".to_string(),
            "outcome".into(),
            "events".into(),
            "leaps".into(),
        ];
        header.extend(names.iter().map(|n| format!("{n}_end")));
        csv.write_record(&header)
            .map_err(|e| Error::Invalid(e.to_string()))?;
        for (r, o) in runs.iter().zip(&outcomes) {
            let mut row = vec![
                r.run.to_string(),
                o.name().to_string(),
                r.events.to_string(),
                r.leaps.to_string(),
            ];
            row.extend(r.grid.last().expect("grid").iter().map(|v| num(*v)));
            csv.write_record(&row)
                .map_err(|e| Error::Invalid(e.to_string()))?;
        }
        csv.flush().map_err(|e| Error::Invalid(e.to_string()))
    })?;
    let collapsed = outcomes
        .iter()
        .filter(|o| **o == Outcome::Collapsed)
        .count();
    eprintln!(
        "{} runs of {} per unit of state ({}): {collapsed} collapsed; {:.2} s",
        runs.len(),
        args.population,
        model.file().source,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
