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
    if !sc.daily.is_empty() {
        return daily(model, args, &sc);
    }
    let started = std::time::Instant::now();
    let eq = all_equilibria(model, sc.params.values())?;
    let elapsed = ms(started);
    args.output
        .write(|w| equilibria_csv(w, model, sc.params.values(), &eq))?;
    eprintln!("{} equilibria in {elapsed:.2} ms", eq.len());
    Ok(())
}

/// With `[daily]` profiles: the daily cycles instead of equilibria, each given by its state at
/// `t = 0` (the scenario's `start`), its Floquet multipliers and its service level over the day.
fn daily<M: Model<N>, const N: usize>(
    model: &M,
    args: &EquilibriaArgs,
    sc: &selfheal::scenario::Scenario,
) -> Result<(), Error>
where
    nalgebra::Const<N>: nalgebra::DimMin<nalgebra::Const<N>, Output = nalgebra::Const<N>>,
{
    use selfheal::periodic::{daily_cycles, Forcing, DAY_SAMPLES};
    let forcing = Forcing {
        p: sc.params.values(),
        daily: &sc.daily,
        clock: sc.clock(model)?,
    };
    let started = std::time::Instant::now();
    let mut stats = selfheal::solve::SolverStats::default();
    let found = daily_cycles(
        model,
        &forcing,
        0.0,
        false,
        &selfheal::solve::SolveOptions::default(),
        &mut stats,
    )?;
    let elapsed = ms(started);
    let states = model.states();
    args.output.write(|w| {
        let io = |e: std::io::Error| Error::Invalid(format!("writing the cycles: {e}"));
        let names: Vec<&str> = states.iter().map(|s| s.name.as_ref()).collect();
        writeln!(
            w,
            "{},stable,max_multiplier,unstable_dims,multipliers,mean_service_level,min_service_level,residual,from",
            names.join(",")
        )
        .map_err(io)?;
        for (k, c) in found.cycles.iter().enumerate() {
            let service = c.over_day(&forcing, forcing.period() / DAY_SAMPLES, |x, p| {
                model.service_level(x, p)
            });
            let mu: Vec<String> = c
                .multipliers
                .iter()
                .map(|m| {
                    if m.im == 0.0 {
                        format!("{}", m.re)
                    } else {
                        format!("{}{:+}i", m.re, m.im)
                    }
                })
                .collect();
            let from: Vec<String> = found
                .branches
                .iter()
                .filter(|b| b.cycle == Some(k))
                .map(base_name)
                .collect();
            let x: Vec<String> = c.x0.iter().map(|v| format!("{v}")).collect();
            writeln!(
                w,
                "{},{},{},{},{},{},{},{},{}",
                x.join(","),
                c.is_stable(),
                c.max_multiplier(),
                c.unstable_dims(),
                mu.join(" "),
                service.map_or(String::new(), |s| s.0.to_string()),
                service.map_or(String::new(), |s| s.1 .0.to_string()),
                c.residual,
                from.join(" ")
            )
            .map_err(io)?;
        }
        Ok(())
    })?;
    for b in found.branches.iter().filter(|b| b.cycle.is_none()) {
        eprintln!(
            "the {} equilibrium was followed to amplitude {:.4} of the profile and lost there (an orbit that repels strongly, or a fold of cycles): its cycle is not listed",
            base_name(b),
            b.amplitude
        );
    }
    eprintln!(
        "{} daily cycles (states at t = 0) from {} equilibria with constant profiles, {} steps; {elapsed:.2} ms",
        found.cycles.len(),
        found.branches.len(),
        stats.steps
    );
    Ok(())
}

/// `stable@in-force`, `saddle@daily-mean`: the kind of the equilibrium a cycle was followed from
/// and the constant that replaced the profiles there.
fn base_name(b: &selfheal::periodic::Branch) -> String {
    let base = match b.base {
        selfheal::periodic::Base::InForce => "in-force",
        selfheal::periodic::Base::DailyMean => "daily-mean",
    };
    format!("{}@{base}", format!("{:?}", b.kind).to_lowercase())
}
