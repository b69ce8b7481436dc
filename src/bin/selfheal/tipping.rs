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
    /// For a scenario with [daily] profiles: the critical shock for a wave at each hour of the
    /// day (rows of hour, critical_shock, bracket), the network resting on its daily cycle.
    #[arg(long)]
    by_hour: bool,
    /// With --by-hour: rows per day (24 = every full hour).
    #[arg(long, value_name = "N", default_value_t = 24, value_parser = crate::args::at_least_one_usize, requires = "by_hour")]
    rows: usize,
    /// With --by-hour: the figure of the critical shock over the day (.svg or .png).
    #[arg(long, value_name = "FILE", requires = "by_hour")]
    figure: Option<std::path::PathBuf>,
    #[command(flatten)]
    output: crate::args::OutputArgs,
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
    if args.by_hour || !sc.daily.is_empty() {
        return by_hour(model, args, &sc, &opts);
    }
    if args.output.out.is_some() {
        return Err(Error::Invalid(
            "critical-shock writes a CSV only with --by-hour; leave --out out".into(),
        ));
    }
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

/// `critical-shock --by-hour`: one row per hour of the day.
fn by_hour<M: Model<N>, const N: usize>(
    model: &M,
    args: &CriticalShockArgs,
    sc: &selfheal::scenario::Scenario,
    opts: &TippingOptions,
) -> Result<(), Error>
where
    nalgebra::Const<N>: nalgebra::DimMin<nalgebra::Const<N>, Output = nalgebra::Const<N>>,
{
    if !args.by_hour {
        return Err(Error::Invalid(
            "the scenario has [daily] profiles: its critical shock depends on the hour of the wave; pass --by-hour".into(),
        ));
    }
    if sc.daily.is_empty() {
        return Err(Error::Invalid(
            "--by-hour needs a scenario with [daily] profiles (without them the critical shock is the same at every hour)".into(),
        ));
    }
    args.output.check()?;
    if let Some(f) = &args.figure {
        selfheal::files::check_target(f, args.output.force)?;
        crate::args::check_figure_name(f)?;
    }
    if args.rows > MAX_ROWS_PER_DAY {
        return Err(Error::OutOfRange {
            name: "--rows".into(),
            value: args.rows as f64,
            range: format!("1 to {MAX_ROWS_PER_DAY} (one per minute)"),
        });
    }
    let clock = sc.clock(model)?;
    let hours: Vec<f64> = (0..args.rows)
        .map(|k| 24.0 * k as f64 / args.rows as f64)
        .collect();
    let started = std::time::Instant::now();
    let r = selfheal::analysis::daily::critical_shock_by_hour(
        model,
        sc.params.values(),
        &sc.daily,
        clock,
        &hours,
        opts,
    )?;
    let elapsed = ms(started);
    if r.down {
        eprintln!(
            "the network is down at these parameters: no stable daily cycle serves at least half the users who want service on average (the best serves {:.4}); every shock ends collapsed",
            r.healthy.service
        );
        println!("down");
        return Ok(());
    }
    let mu = r.healthy.cycle.max_multiplier();
    eprintln!(
        "healthy daily cycle: mean service level {:.4}, lowest {:.4} at {}; largest Floquet multiplier {mu:.3e}",
        r.healthy.service,
        r.healthy.service_min.0,
        selfheal::model::schedule::clock_text(clock.hour(r.healthy.service_min.1)),
    );
    // The figure first: if it cannot be written, no CSV is either.
    if let Some(path) = &args.figure {
        draw_by_hour(&r.rows, &sc.name, path)?;
    }
    let num = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v}"));
    args.output.write(|w| {
        let io = |e: std::io::Error| Error::Invalid(format!("writing the rows: {e}"));
        writeln!(w, "hour,at,critical_shock,recovers,collapses,trials").map_err(io)?;
        for row in &r.rows {
            writeln!(
                w,
                "{},{},{},{},{},{}",
                row.hour,
                row.at,
                num(row.value),
                num(row.bracket.map(|b| b.0)),
                num(row.bracket.map(|b| b.1)),
                row.trials
            )
            .map_err(io)?;
        }
        Ok(())
    })?;
    let known: Vec<&selfheal::analysis::daily::HourCritical> =
        r.rows.iter().filter(|h| h.value.is_some()).collect();
    if let (Some(lo), Some(hi)) = (
        known
            .iter()
            .min_by(|a, b| a.value.partial_cmp(&b.value).unwrap()),
        known
            .iter()
            .max_by(|a, b| a.value.partial_cmp(&b.value).unwrap()),
    ) {
        eprintln!(
            "most fragile at {}: f* = {:.4}; least at {}: f* = {:.4}",
            selfheal::model::schedule::clock_text(lo.hour),
            lo.value.unwrap_or(f64::NAN),
            selfheal::model::schedule::clock_text(hi.hour),
            hi.value.unwrap_or(f64::NAN)
        );
    }
    if known.len() < r.rows.len() {
        eprintln!(
            "{} of {} hours: no shock below 1 tips the network (scanned in steps of 1/{})",
            r.rows.len() - known.len(),
            r.rows.len(),
            opts.scan
        );
    }
    eprintln!(
        "{} trials, {} steps; {elapsed:.2} ms",
        r.rows.iter().map(|h| h.trials).sum::<usize>(),
        r.stats.steps
    );
    Ok(())
}

/// Most rows per day of `critical-shock --by-hour`.
const MAX_ROWS_PER_DAY: usize = 1440;

#[cfg(feature = "plot")]
fn draw_by_hour(
    rows: &[selfheal::analysis::daily::HourCritical],
    name: &str,
    path: &std::path::Path,
) -> Result<(), Error> {
    selfheal::report::by_hour_figure(rows, name).save(path)
}

#[cfg(not(feature = "plot"))]
fn draw_by_hour(
    _: &[selfheal::analysis::daily::HourCritical],
    _: &str,
    _: &std::path::Path,
) -> Result<(), Error> {
    Err(Error::Unsupported(
        "--figure needs the `plot` feature".into(),
    ))
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
