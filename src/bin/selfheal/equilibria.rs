//! `selfheal equilibria`: every equilibrium with its stability, as CSV.

use crate::args::{ms, OutputArgs, ScenarioArgs, Unused};
use clap::Args;
use selfheal::equilibria::all_equilibria;
use selfheal::model::P2p;
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
    let (sc, _) = args
        .scenario
        .build_for("equilibria", Unused::PARAMETERS_ONLY)?;
    args.output.check()?;
    let started = std::time::Instant::now();
    let eq = all_equilibria(&P2p, sc.params.values())?;
    let elapsed = ms(started);
    args.output
        .write(|w| equilibria_csv(w, &P2p, sc.params.values(), &eq))?;
    eprintln!("{} equilibria in {elapsed:.2} ms", eq.len());
    Ok(())
}
