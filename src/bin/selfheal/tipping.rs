//! `selfheal critical-shock`, `critical-window` and `rescue`: the tipping answers, each a
//! certified bracket from simulated trials.

use crate::args::{ms, print_result, whole_usize, ScenarioArgs, Unused};
use clap::Args;
use selfheal::analysis::tipping::{
    critical_shock, critical_window, rescue, FateChange, TippingOptions, MAX_WINDOW,
};
use selfheal::model::Model;
use selfheal::scenario::Intervention;
use selfheal::Error;

#[derive(Args)]
pub struct CriticalShockArgs {
    #[command(flatten)]
    scenario: ScenarioArgs,
    #[command(flatten)]
    search: SearchArgs,
}

/// How a tipping answer is searched for: the scan, then the bisection of every change of fate.
#[derive(Args)]
struct SearchArgs {
    /// Width of the final bracket of every change of fate: absolute for shocks, relative for
    /// windows.
    #[arg(long, value_name = "T", default_value = "1e-6")]
    tol: f64,
    /// Scan resolution: shocks k/K for k = 0..K, or K/4 (at least 2) windows per factor of ten
    /// from 1e-3 to 1.44e5 min, are simulated before refining every change of fate (a change
    /// narrower than one scan step can be missed).
    #[arg(long, value_name = "K", default_value_t = 20, value_parser = whole_usize)]
    scan: usize,
}

#[derive(Args)]
pub struct CriticalWindowArgs {
    #[command(flatten)]
    scenario: ScenarioArgs,
    #[command(flatten)]
    search: SearchArgs,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum FromState {
    /// The stable state that is not the healthy one and serves least (when the network is
    /// down, the state it rests in).
    Collapsed,
}

#[derive(Args)]
pub struct RescueArgs {
    /// The parameter to step.
    param: String,
    /// Time of the step (minutes).
    #[arg(long, value_name = "T", default_value_t = 0.0)]
    at: f64,
    /// The state the network is in when the step is made.
    #[arg(long, value_enum, default_value = "collapsed")]
    from_state: FromState,
    /// Relative tolerance on the rescuing value.
    #[arg(long, value_name = "TOL", default_value = "1e-6")]
    tol: f64,
    #[command(flatten)]
    scenario: ScenarioArgs,
}

pub fn run_critical_shock(args: &CriticalShockArgs) -> Result<(), Error> {
    crate::args::with_model!(args.scenario, |m, state| critical_shock_with(
        &m, args, &state
    ))
}

fn critical_shock_with<M: Model<N>, const N: usize>(
    model: &M,
    args: &CriticalShockArgs,
    state: &dyn Fn(&[f64]) -> String,
) -> Result<(), Error>
where
    nalgebra::Const<N>: nalgebra::DimMin<nalgebra::Const<N>, Output = nalgebra::Const<N>>,
{
    // The shock is what it finds; trials run until settled, not to a clock.
    let unused = Unused {
        wave: true,
        t_end: true,
        ..Unused::default()
    };
    let (sc, solve) = args
        .scenario
        .build_for_with(model, "critical-shock", unused)?;
    let opts = TippingOptions::new(solve, args.search.tol, args.search.scan);
    let started = std::time::Instant::now();
    let cs = critical_shock(model, sc.params.values(), &opts)?;
    let elapsed = ms(started);
    if cs.down {
        eprintln!(
            "the network is down at these parameters: no stable state serves at least half the users who want service (the best serves {:.4}); every shock ends collapsed",
            cs.landscape.rest.service
        );
        println!("down");
        return Ok(());
    }
    print_changes(&cs.changes, 9, "");
    if cs.changes.is_empty() {
        eprintln!(
            "no shock tips the network: all {} scanned shocks (0 to 1 in steps of 1/{}) recover",
            cs.scan.len(),
            opts.scan
        );
    }
    if let Some(s) = &cs.saddle {
        eprintln!(
            "saddle crossed: {}; unstable eigenvalue {:.6e}/min",
            state(s.x.as_slice()),
            s.stability.max_real
        );
    }
    eprintln!(
        "{} trials, {} steps, {} rhs evaluations; {elapsed:.2} ms",
        cs.trials, cs.stats.steps, cs.stats.rhs_evals,
    );
    print_result(cs.value);
    Ok(())
}

pub fn run_critical_window(args: &CriticalWindowArgs) -> Result<(), Error> {
    crate::args::with_model!(args.scenario, |m, _state| critical_window_with(&m, args))
}

fn critical_window_with<M: Model<N>, const N: usize>(
    model: &M,
    args: &CriticalWindowArgs,
) -> Result<(), Error>
where
    nalgebra::Const<N>: nalgebra::DimMin<nalgebra::Const<N>, Output = nalgebra::Const<N>>,
{
    // The window is what it finds, for the wave's fraction of peers and supernodes alike.
    let unused = Unused {
        wave_but_fraction: true,
        t_end: true,
        ..Unused::default()
    };
    let (sc, solve) = args
        .scenario
        .build_for_with(model, "critical-window", unused)?;
    let f = sc.shock.map(|s| s.fraction).ok_or_else(|| {
        Error::Invalid("critical-window needs --shock F (or a [shock] in the scenario)".into())
    })?;
    let opts = TippingOptions::new(solve, args.search.tol, args.search.scan);
    let started = std::time::Instant::now();
    let cw = critical_window(model, sc.params.values(), f, &opts)?;
    let elapsed = ms(started);
    print_changes(&cw.changes, 6, " min");
    if cw.value.is_none() {
        eprintln!(
            "no critical window: the longest window scanned ({MAX_WINDOW} min) still tips the network",
        );
    }
    eprintln!(
        "{} trials, {} steps; {elapsed:.2} ms",
        cw.trials, cw.stats.steps,
    );
    print_result(cw.value);
    Ok(())
}

/// One line per change of fate: its bracket (to `digits` decimals, with `unit`) and the fates
/// on either side.
fn print_changes(changes: &[FateChange], digits: usize, unit: &str) {
    for c in changes {
        eprintln!(
            "fate changes in [{:.digits$}, {:.digits$}]{unit}: {} below, {} above",
            c.bracket.0,
            c.bracket.1,
            c.below.name(),
            c.above.name()
        );
    }
}

/// Recovery is followed for this long after the step.
const RESCUE_HORIZON_DAYS: f64 = 100.0;

pub fn run_rescue(args: &RescueArgs) -> Result<(), Error> {
    crate::args::with_model!(args.scenario, |m, state| rescue_with(&m, args, &state))
}

fn rescue_with<M: Model<N>, const N: usize>(
    model: &M,
    args: &RescueArgs,
    state: &dyn Fn(&[f64]) -> String,
) -> Result<(), Error>
where
    nalgebra::Const<N>: nalgebra::DimMin<nalgebra::Const<N>, Output = nalgebra::Const<N>>,
{
    // The rescue starts from the collapsed state, not from a wave.
    let unused = Unused {
        wave: true,
        ..Unused::default()
    };
    let (sc, solve) = args.scenario.build_for_with(model, "rescue", unused)?;
    let k = sc.params.index(&args.param)?;
    if !(args.at.is_finite() && args.at >= 0.0 && args.at <= sc.t_end) {
        return Err(Error::OutOfRange {
            name: "--at".into(),
            value: args.at,
            range: format!("in [0, t_end = {}]", sc.t_end),
        });
    }
    let FromState::Collapsed = args.from_state;
    let opts = TippingOptions::new(solve, args.tol, TippingOptions::default().scan);
    let started = std::time::Instant::now();
    let r = rescue(model, sc.params.values(), k, &opts)?;
    let elapsed = ms(started);
    eprintln!("collapsed state: {}", state(r.collapsed.as_slice()));
    let (Some(v), Some(margin)) = (r.value, r.with_margin(1.1)) else {
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
    for (label, value) in [("at the threshold", v), ("with a 10% margin", margin)] {
        let step = Intervention::step(args.at, vec![(k, value)]);
        match r.recovery_time(model, &sc, step, RESCUE_HORIZON_DAYS * 1440.0, opts.solve)? {
            Some(t) => eprintln!(
                "recovery {label} ({} = {value:.6e}): peers back to 95% of healthy {t:.1} min after the step",
                r.param
            ),
            None => eprintln!(
                "recovery {label} ({} = {value:.6e}): not within {RESCUE_HORIZON_DAYS} days",
                r.param
            ),
        }
    }
    eprintln!("{} trials; {elapsed:.2} ms", r.trials);
    println!("{v}");
    Ok(())
}
