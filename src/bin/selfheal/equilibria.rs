//! `selfheal equilibria`: every equilibrium with its stability, as CSV.

use crate::args::{ms, OutputArgs, ScenarioArgs, Unused};
use clap::Args;
use selfheal::equilibria::all_equilibria;
use selfheal::model::Model;
use selfheal::output::equilibria_csv;
use selfheal::Error;

#[derive(Args)]
pub struct EquilibriaArgs {
    #[command(flatten)]
    scenario: ScenarioArgs,
    #[command(flatten)]
    output: OutputArgs,
}

pub fn run(args: &EquilibriaArgs) -> Result<(), Error> {
    crate::args::with_model!(args.scenario, |m, _state| run_with(&m, args))
}

fn run_with<M: Model<N>, const N: usize>(model: &M, args: &EquilibriaArgs) -> Result<(), Error>
where
    nalgebra::Const<N>: nalgebra::DimMin<nalgebra::Const<N>, Output = nalgebra::Const<N>>,
{
    let (sc, _) = args
        .scenario
        .build_for_with(model, "equilibria", Unused::PARAMETERS_ONLY)?;
    args.output.check()?;
    let started = std::time::Instant::now();
    let eq = all_equilibria(model, sc.params.values())?;
    let elapsed = ms(started);
    args.output
        .write(|w| equilibria_csv(w, model, sc.params.values(), &eq))?;
    eprintln!("{} equilibria in {elapsed:.2} ms", eq.len());
    Ok(())
}
