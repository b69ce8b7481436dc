//! Scenario simulation: the solver run across the shock and every intervention, sampled on a
//! grid, with events located on the dense output and the outcome decided by settling.

use crate::equilibria::{
    integrate_to_rest, rest_state, same_point, RestState, Settled, SETTLE_HORIZON,
};
use crate::error::Error;
use crate::model::schedule::{Clock, DailyProfile, Ramp, Schedule};
use crate::model::{Model, System};
use crate::periodic::{
    choose_rest_cycle, reanchor, rest_cycle, settle_on_cycles, Forcing, RestCycle,
};
use crate::scenario::{ParamPath, Scenario};
use crate::solve::{integrate, Dense, Method, Segment, SolveOptions, SolverStats, Span};
use nalgebra::SVector;
use nalgebra::{Const, DimMin};
use serde::Serialize;

/// Where a trajectory ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Settled on the healthy state of the final parameters.
    Recovered,
    /// Settled on another stable equilibrium, or the final parameters have no healthy state
    /// (the network is down there whatever the trajectory does; see [`Summary::down`]).
    Collapsed,
    /// Not settled within the settle horizon, or within the settle phase's step limit
    /// ([`crate::equilibria::SETTLE_MAX_STEPS`]).
    Undecided,
}

impl Outcome {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Recovered => "recovered",
            Outcome::Collapsed => "collapsed",
            Outcome::Undecided => "undecided",
        }
    }
}

/// Most rows an output grid may have (`t_end/dt + 1`); a finer grid is refused before any
/// work, since rows are held in memory.
pub const MAX_ROWS: usize = 10_000_000;

/// Options of a simulation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SimOptions {
    /// Solver options.
    pub solve: SolveOptions,
    /// Sampling interval of the output grid (minutes).
    pub dt: f64,
    /// How far past `t_end` to keep integrating (final parameters) to decide the outcome.
    pub settle_horizon: f64,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            solve: SolveOptions::default(),
            dt: 10.0,
            settle_horizon: SETTLE_HORIZON,
        }
    }
}

/// What a simulation found, in the units of the state (fractions of users).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Minimum of the watched state (peers, for the reference model) over `[0, t_end]`.
    pub min_peers: f64,
    /// When it happened (minutes).
    pub t_min_peers: f64,
    /// Minimum of each state over `[0, t_end]`, with its time, in state order.
    pub minima: Vec<(f64, f64)>,
    /// Maximum of each state over `[0, t_end]`, with its time, in state order.
    pub peaks: Vec<(f64, f64)>,
    /// Lowest service level over `[0, t_end]` and its time, if the model defines one.
    pub min_service_level: Option<(f64, f64)>,
    /// Peak utilisation over `[0, t_end]` and its time, if the model defines utilisation.
    pub peak_utilisation: Option<(f64, f64)>,
    /// Minutes from the shock (from `t = 0` without one) until the watched state, having
    /// fallen below 95 % of its healthy value, first returns to 95 % (0 if it never fell; `None`
    /// if it never returned). The healthy value is that of the initial parameters; when they
    /// have no healthy state, that of the final parameters; when neither has one, `None`.
    pub recovery_time: Option<f64>,
    /// The healthy state of the initial parameters, where the scenario starts unless it gives
    /// an initial state; when they have no healthy state (see [`Summary::start_healthy`]), the
    /// stable state that serves best.
    pub healthy: Vec<f64>,
    /// Service level of [`Summary::healthy`].
    pub service_level: f64,
    /// Whether the initial parameters have a healthy state.
    pub start_healthy: bool,
    /// The final parameters have no healthy state: the network is down whatever happens, and
    /// the outcome is `collapsed`.
    pub down: bool,
    /// The outcome.
    pub outcome: Outcome,
    /// The equilibrium the trajectory settled on, if it did.
    pub settled_on: Option<Vec<f64>>,
    /// When it was settled (minutes; may lie beyond `t_end`).
    pub settled_at: Option<f64>,
    /// Solver work, for the whole run including the settle check.
    pub stats: SolverStats,
}

/// A simulated scenario.
#[derive(Debug, Clone)]
pub struct Simulation<const N: usize> {
    /// Dense output over `[0, t_end]` (zero-length segments mark jumps).
    pub dense: Dense<N>,
    /// The summary.
    pub summary: Summary,
    /// The parameters the run used at each time (interventions, ramps, daily profiles).
    pub params: ParamPath,
}

impl<const N: usize> Simulation<N> {
    /// The run as a JSON document: the library version, the model, the scenario, the method,
    /// tolerances and output interval, and the summary (what `simulate --summary` writes).
    pub fn summary_json<M: Model<N>>(
        &self,
        model: &M,
        sc: &Scenario,
        opts: &SimOptions,
    ) -> serde_json::Value {
        serde_json::json!({
            "selfheal_version": env!("CARGO_PKG_VERSION"),
            "model": model.name(),
            "scenario": sc.to_json(),
            "method": opts.solve.method,
            "tolerances": opts.solve.tol,
            "dt": opts.dt,
            "summary": self.summary,
        })
    }

    /// The parameters the right-hand side used at `t` (an intervention at `t` applies; a
    /// ramp under way and the daily profiles included).
    pub fn params_at(&self, t: f64) -> Vec<f64> {
        self.params.at(t)
    }

    /// States at `0, dt, 2dt, …` up to `t_end` (and `t_end` itself if it is not on the grid);
    /// at a jump the row holds the state after it. Each is kept in `model`'s domain
    /// ([`Model::in_domain`]): the dense output between two feasible step ends may dip a
    /// rounding outside it (e.g. a population 1e-74 below zero), which the true solution does
    /// not, so the projection only moves the state nearer to it.
    pub fn sample<M: Model<N>>(&self, model: &M, dt: f64) -> Vec<(f64, SVector<f64, N>)> {
        let (Some(t0), Some(t1)) = (self.dense.t_start(), self.dense.t_end()) else {
            return vec![];
        };
        let n = ((t1 - t0) / dt + 1e-9).floor() as usize;
        let at = |t: f64| {
            let x = self.dense.eval(t).expect("dense output is not empty");
            model.in_domain(x, &self.params_at(t))
        };
        let mut out: Vec<(f64, SVector<f64, N>)> = (0..=n)
            .map(|k| {
                let t = t0 + k as f64 * dt;
                (t, at(t))
            })
            .collect();
        if t0 + n as f64 * dt < t1 - 1e-9 * dt {
            out.push((t1, at(t1)));
        }
        out
    }
}

/// A point where the integration restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    /// Instantaneous wave `k` (0: the first, [`Scenario::waves`] order).
    Jump(usize),
    /// Spread wave `k` begins.
    WindowStart(usize),
    /// Spread wave `k` ends.
    WindowEnd(usize),
    /// Intervention `k` (from 0, in file order).
    Intervention(usize),
    /// The ramp of intervention `k` ends.
    RampEnd(usize),
}

/// The scenario's breakpoints in time order; at equal times ramps end first, then
/// interventions act, then a wave ends, then a wave starts or jumps.
pub(crate) fn breakpoints(sc: &Scenario) -> Vec<(f64, Event)> {
    let mut events: Vec<(f64, Event)> = sc
        .interventions
        .iter()
        .enumerate()
        .map(|(k, iv)| (iv.at, Event::Intervention(k)))
        .collect();
    for (k, iv) in sc.interventions.iter().enumerate() {
        if iv.is_ramp() {
            events.push((iv.end(), Event::RampEnd(k)));
        }
    }
    for (k, s) in sc.waves().enumerate() {
        if s.is_spread() {
            events.push((s.at, Event::WindowStart(k)));
            events.push((s.at + s.window, Event::WindowEnd(k)));
        } else {
            events.push((s.at, Event::Jump(k)));
        }
    }
    let rank = |e: &Event| match e {
        Event::RampEnd(_) => 0,
        Event::Intervention(_) => 1,
        Event::WindowEnd(_) => 2,
        Event::Jump(_) | Event::WindowStart(_) => 3,
    };
    events.sort_by(|a, b| {
        a.0.total_cmp(&b.0)
            .then_with(|| rank(&a.1).cmp(&rank(&b.1)))
    });
    events
}

/// What holds between two breakpoints of a scenario: the parameters in force, the hazards
/// `(eta_p, eta_s)` of a spread wave, if one is under way, and the ramps under way.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Regime {
    /// Parameter values in force (a ramped parameter's target).
    pub p: Vec<f64>,
    /// Per-member reboot hazards of a spread wave.
    pub reboot: Option<(f64, f64)>,
    /// Ramps under way.
    pub ramps: Vec<Ramp>,
}

impl Regime {
    /// What moves the parameters with time in this regime, if anything does.
    pub fn schedule<'a>(
        &'a self,
        daily: &'a [DailyProfile],
        clock: Option<Clock>,
    ) -> Option<Schedule<'a>> {
        Schedule::of(&self.ramps, daily, clock)
    }

    /// The parameters the right-hand side uses at `t` in this regime.
    pub fn used(&self, t: f64, daily: &[DailyProfile], clock: Option<Clock>) -> Vec<f64> {
        match self.schedule(daily, clock) {
            Some(s) => s.values(t, &self.p),
            None => self.p.clone(),
        }
    }
}

/// One pass through a scenario, piece by piece: what a simulation and a sensitivity run do
/// between breakpoints and at them. The scenario's rules (which breakpoint changes what) live
/// in [`drive`] alone.
pub(crate) trait Piecewise {
    /// Integrates over `[t0, t1]` (`t0 < t1`) under `regime`.
    fn flow(&mut self, t0: f64, t1: f64, regime: &Regime) -> Result<(), Error>;
    /// At breakpoint `t`, where `event` changes the regime from `before` to `after` (a jump
    /// changes the state, not the regime).
    fn event(
        &mut self,
        t: f64,
        event: &Event,
        before: &Regime,
        after: &Regime,
    ) -> Result<(), Error>;
}

/// Drives `run` through `sc` from `t = 0` to `horizon`: flows between the breakpoints (at or
/// before `horizon`), each breakpoint's change of regime, and the last flow to `horizon`.
/// Returns the regime in force at the end.
pub(crate) fn drive(
    sc: &Scenario,
    horizon: f64,
    run: &mut impl Piecewise,
) -> Result<Regime, Error> {
    let mut regime = Regime {
        p: sc.params.values().to_vec(),
        reboot: None,
        ramps: vec![],
    };
    let mut t = 0.0;
    for (te, ev) in breakpoints(sc).iter().filter(|e| e.0 <= horizon) {
        if *te > t {
            run.flow(t, *te, &regime)?;
            t = *te;
        }
        let mut after = regime.clone();
        match ev {
            Event::Jump(_) => {}
            Event::WindowStart(k) => after.reboot = Some(sc.wave(*k).hazards()),
            Event::WindowEnd(_) => after.reboot = None,
            Event::Intervention(k) => {
                let iv = &sc.interventions[*k];
                for &(i, v) in &iv.set {
                    if iv.is_ramp() {
                        after.ramps.push(Ramp {
                            param: i,
                            from: regime.p[i],
                            at: iv.at,
                            len: iv.ramp,
                        });
                    }
                    after.p[i] = v;
                }
            }
            Event::RampEnd(k) => {
                let iv = &sc.interventions[*k];
                after
                    .ramps
                    .retain(|r| !(r.at == iv.at && iv.set.iter().any(|(i, _)| *i == r.param)));
            }
        }
        run.event(*te, ev, &regime, &after)?;
        regime = after;
    }
    if horizon > t {
        run.flow(t, horizon, &regime)?;
    }
    Ok(regime)
}

/// A simulation's pass: the dense output and the state, the wave's jump applied to it.
struct Run<'a, M, const N: usize> {
    model: &'a M,
    sc: &'a Scenario,
    clock: Option<Clock>,
    solve: &'a SolveOptions,
    x: SVector<f64, N>,
    dense: Dense<N>,
    stats: SolverStats,
}

impl<M: Model<N>, const N: usize> Piecewise for Run<'_, M, N>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    fn flow(&mut self, t0: f64, t1: f64, regime: &Regime) -> Result<(), Error> {
        let sys = System {
            model: self.model,
            p: &regime.p,
            reboot: regime.reboot,
            schedule: regime.schedule(&self.sc.daily, self.clock),
        };
        let dense = &mut self.dense;
        let limited;
        let solve = match &self.clock {
            Some(c) => {
                limited = crate::periodic::day_opts(c, self.solve);
                &limited
            }
            None => self.solve,
        };
        let (_, x) = integrate(
            &sys,
            Span::new(t0, self.x, t1),
            solve,
            &mut self.stats,
            &mut |seg| {
                dense.segments.push(*seg);
                false
            },
        )?;
        self.x = x;
        Ok(())
    }

    fn event(&mut self, t: f64, event: &Event, before: &Regime, _: &Regime) -> Result<(), Error> {
        if let Event::Jump(k) = event {
            let s = self.sc.wave(*k);
            let p = before.used(t, &self.sc.daily, self.clock);
            self.x = self
                .model
                .reboot_jump(&self.x, &p, s.fraction, s.sn_fraction)?;
            self.dense.segments.push(Segment::point(t, self.x));
        }
        Ok(())
    }
}

/// Simulates a scenario on a model.
///
/// ```
/// use selfheal::{model::P2p, scenario::{Scenario, Shock}, simulate::{simulate, Outcome, SimOptions}};
/// let mut sc = Scenario::new(&P2p);
/// sc.shock = Some(Shock::instantaneous(0.2));
/// let sim = simulate(&P2p, &sc, &SimOptions::default()).unwrap();
/// assert_eq!(sim.summary.outcome, Outcome::Recovered);
/// assert!(sim.summary.min_peers < 0.8 * sim.summary.healthy[0]);
/// ```
pub fn simulate<M: Model<N>, const N: usize>(
    model: &M,
    sc: &Scenario,
    opts: &SimOptions,
) -> Result<Simulation<N>, Error>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    simulate_with(model, sc, opts, &mut |p: &[f64]| rest_state(model, p))
}

/// Supplies the state the network rests in at a parameter vector (its healthy state, or the
/// best stable state when it is down).
pub type HealthyOf<'a, const N: usize> = dyn FnMut(&[f64]) -> Result<RestState<N>, Error> + 'a;

/// [`simulate`] with the healthy state of a parameter vector supplied by the caller (for
/// example from a cache shared by the rows of a sweep).
pub fn simulate_with<M: Model<N>, const N: usize>(
    model: &M,
    sc: &Scenario,
    opts: &SimOptions,
    healthy_of: &mut HealthyOf<'_, N>,
) -> Result<Simulation<N>, Error>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    sc.validate(model)?;
    opts.solve.validate()?;
    check_grid(sc, opts)?;
    let path = sc.param_path(model)?;
    if let Some(clock) = path.clock() {
        return simulate_daily(model, sc, opts, path, clock);
    }
    let start = healthy_of(sc.params.values())?;
    let x0 = match &sc.initial {
        Some(v) => SVector::from_iterator(v.iter().copied()),
        None => start.x,
    };
    let (p, x_end, dense, mut stats) = run_to_end(model, sc, path.clock(), opts, x0)?;
    let (rest, tail) = settle(model, sc, opts, &p, x_end, &mut stats)?;
    let end = if p == sc.params.values() {
        start
    } else {
        healthy_of(&p)?
    };
    let (outcome, settled_on, settled_at) = match &rest {
        Some((Settled { equilibrium, .. }, ts)) => {
            let o = if end.healthy && same_point(equilibrium, &end.x) {
                Outcome::Recovered
            } else {
                Outcome::Collapsed
            };
            (o, Some(equilibrium.iter().copied().collect()), Some(*ts))
        }
        None => (Outcome::Undecided, None, None),
    };
    let trajectory = describe(model, sc, &path, &dense, &tail, (&start, &end));
    Ok(Simulation {
        dense,
        params: path,
        summary: trajectory.summary(&start, &end, (outcome, settled_on, settled_at), stats),
    })
}

/// [`simulate`] for a scenario with daily profiles: it starts on the healthy daily cycle of
/// the initial parameters (at the phase of `t = 0`), and after `t_end` it is followed, one day
/// at a time under the final parameters, until it provably settles on a stable daily cycle
/// ([`crate::periodic::settle_on_cycles`]). The recovery time compares the watched state with the healthy cycle's at the same time.
fn simulate_daily<M: Model<N>, const N: usize>(
    model: &M,
    sc: &Scenario,
    opts: &SimOptions,
    path: ParamPath,
    clock: Clock,
) -> Result<Simulation<N>, Error>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    let mut stats = SolverStats::default();
    let forcing = |p| Forcing {
        p,
        daily: &sc.daily,
        clock,
    };
    let p0 = sc.params.values();
    let (start, start_cycles) = rest_cycle(model, &forcing(p0), 0.0, &opts.solve, &mut stats)
        .map_err(|e| e.context("the daily cycle the scenario starts on"))?;
    let x0 = match &sc.initial {
        Some(v) => SVector::from_iterator(v.iter().copied()),
        None => start.cycle.x0,
    };
    let (p_end, x_end, dense, run_stats) = run_to_end(model, sc, Some(clock), opts, x0)?;
    let p: &[f64] = &p_end;
    stats += run_stats;
    let (end, cycles) = if p == p0 {
        // The same cycles, anchored at t_end.
        let f = forcing(p);
        reanchor(model, &f, &start_cycles, sc.t_end, &opts.solve, &mut stats)
            .and_then(|c| Ok((choose_rest_cycle(model, &f, &c)?, c)))
    } else {
        rest_cycle(model, &forcing(p), sc.t_end, &opts.solve, &mut stats)
    }
    .map_err(|e| e.context("the daily cycles after t_end"))?;
    // Day by day after t_end until the state settles on one of the stable cycles.
    let settle_opts = SolveOptions {
        method: Method::Rosenbrock,
        ..opts.solve
    };
    let mut tail: Vec<Segment<N>> = vec![];
    let rest = settle_on_cycles(
        model,
        &forcing(p),
        sc.t_end,
        x_end,
        &cycles,
        opts.settle_horizon,
        &settle_opts,
        &mut stats,
        |seg| tail.push(*seg),
    )
    .map_err(|e| {
        e.context(format!(
            "deciding the outcome after t_end = {} (day by day on the daily cycle)",
            sc.t_end
        ))
    })?;
    let (outcome, settled_on, settled_at) = match rest {
        Some((j, ts)) => {
            let on = &cycles[j];
            let o = if end.healthy && same_point(&on.x0, &end.cycle.x0) {
                Outcome::Recovered
            } else {
                Outcome::Collapsed
            };
            (o, Some(on.x0.iter().copied().collect()), Some(ts))
        }
        // Final parameters without a healthy cycle: down whatever the trajectory does.
        None if !end.healthy => (Outcome::Collapsed, None, None),
        None => (Outcome::Undecided, None, None),
    };
    let as_rest = |r: &RestCycle<N>| RestState {
        x: r.cycle.x0,
        service: r.service,
        healthy: r.healthy,
    };
    let mut trajectory = describe(
        model,
        sc,
        &path,
        &dense,
        &tail,
        (&as_rest(&start), &as_rest(&end)),
    );
    // Recovery against the healthy cycle at the same time of day.
    let reference = match (start.healthy, end.healthy) {
        (true, _) => Some(&start.cycle),
        (false, true) => Some(&end.cycle),
        (false, false) => None,
    };
    let w = model.watched();
    let shock_at = sc.shock.map_or(0.0, |s| s.at);
    trajectory.recovery_time = reference.and_then(|c| {
        recovery_by(
            dense.segments.iter().chain(tail.iter()),
            shock_at,
            &|s: &Segment<N>| {
                Box::new(move |th: f64| {
                    let t = s.time(th);
                    s.eval(t)[w] - 0.95 * c.state_at(t)[w]
                })
            },
        )
    });
    Ok(Simulation {
        dense,
        params: path,
        summary: trajectory.summary(
            &as_rest(&start),
            &as_rest(&end),
            (outcome, settled_on, settled_at),
            stats,
        ),
    })
}

/// Refuses an output grid step that is not positive or would give more than [`MAX_ROWS`] rows.
fn check_grid(sc: &Scenario, opts: &SimOptions) -> Result<(), Error> {
    if !(opts.dt.is_finite() && opts.dt > 0.0) {
        return Err(Error::OutOfRange {
            name: "dt".into(),
            value: opts.dt,
            range: "finite and > 0".into(),
        });
    }
    let rows = sc.t_end / opts.dt + 1.0;
    if rows.is_nan() || rows > MAX_ROWS as f64 {
        return Err(Error::OutOfRange {
            name: "dt".into(),
            value: opts.dt,
            range: format!(
                "at least t_end/{MAX_ROWS} = {:e} (the output grid would have {rows:.3e} rows, at most {MAX_ROWS})",
                sc.t_end / MAX_ROWS as f64
            ),
        });
    }
    Ok(())
}

/// The run from `x0` at `t = 0` to `t_end` through the scenario's breakpoints: the parameters
/// in force at the end, the state there, the dense output (one point if the run is empty) and
/// the solver's work.
/// The trajectory of `sc` (with daily profiles, on `clock`) from `x0` to `t_end`, without the
/// analysis of where it rests: what a calibration compares with readings, its start supplied
/// (and cached) by the caller.
pub(crate) fn trajectory_from<M: Model<N>, const N: usize>(
    model: &M,
    sc: &Scenario,
    clock: Option<Clock>,
    opts: &SimOptions,
    x0: SVector<f64, N>,
) -> Result<(Dense<N>, SolverStats), Error>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    check_grid(sc, opts)?;
    let (_, _, dense, stats) = run_to_end(model, sc, clock, opts, x0)?;
    Ok((dense, stats))
}

fn run_to_end<M: Model<N>, const N: usize>(
    model: &M,
    sc: &Scenario,
    clock: Option<Clock>,
    opts: &SimOptions,
    x0: SVector<f64, N>,
) -> Result<(Vec<f64>, SVector<f64, N>, Dense<N>, SolverStats), Error>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    let mut run = Run {
        model,
        sc,
        clock,
        solve: &opts.solve,
        x: x0,
        dense: Dense::default(),
        stats: SolverStats::default(),
    };
    run.dense.segments.reserve(256);
    let Regime { p, .. } = drive(sc, sc.t_end, &mut run).map_err(|e| {
        e.context(format!(
            "the run to t_end = {} with {}",
            sc.t_end, opts.solve.method
        ))
    })?;
    let Run {
        x,
        mut dense,
        stats,
        ..
    } = run;
    if dense.segments.is_empty() {
        dense.segments.push(Segment::point(0.0, x));
    }
    Ok((p, x, dense, stats))
}

/// An equilibrium the state settled on, and when.
type SettledAt<const N: usize> = (Settled<N>, f64);

/// The rest the state reaches after `t_end` under the final parameters `p` (and when), with the
/// steps taken to decide it. This phase always uses the stiff method: near rest the problem is
/// stiff, and it decides the outcome rather than producing output.
fn settle<M: Model<N>, const N: usize>(
    model: &M,
    sc: &Scenario,
    opts: &SimOptions,
    p: &[f64],
    x_end: SVector<f64, N>,
    stats: &mut SolverStats,
) -> Result<(Option<SettledAt<N>>, Vec<Segment<N>>), Error>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    let sys = System::new(model, p);
    let settle_opts = SolveOptions {
        method: Method::Rosenbrock,
        ..opts.solve
    };
    let mut tail: Vec<Segment<N>> = vec![];
    let rest = integrate_to_rest(
        &sys,
        sc.t_end,
        x_end,
        opts.settle_horizon,
        &settle_opts,
        stats,
        |seg| tail.push(*seg),
    )
    .map_err(|e| {
        e.context(format!(
            "deciding the outcome after t_end = {} (the settle check, always with the stiff method, whatever the run's method)",
            sc.t_end
        ))
    })?;
    Ok((rest, tail))
}

/// What the summary says about a trajectory: its minimum and peaks, peak utilisation and
/// recovery time.
struct Trajectory {
    min: (f64, f64),
    minima: Vec<(f64, f64)>,
    peaks: Vec<(f64, f64)>,
    min_service_level: Option<(f64, f64)>,
    peak_utilisation: Option<(f64, f64)>,
    recovery_time: Option<f64>,
}

/// How a run ended: the outcome, the state it settled on and when.
type Ending = (Outcome, Option<Vec<f64>>, Option<f64>);

impl Trajectory {
    /// The summary of a run that started at `start` (the rest of the initial parameters), whose
    /// final parameters rest at `end`, and that ended as `ending`.
    fn summary<const N: usize>(
        self,
        start: &RestState<N>,
        end: &RestState<N>,
        (outcome, settled_on, settled_at): Ending,
        stats: SolverStats,
    ) -> Summary {
        Summary {
            min_peers: self.min.0,
            t_min_peers: self.min.1,
            minima: self.minima,
            peaks: self.peaks,
            min_service_level: self.min_service_level,
            peak_utilisation: self.peak_utilisation,
            recovery_time: self.recovery_time,
            healthy: start.x.iter().copied().collect(),
            service_level: start.service,
            start_healthy: start.healthy,
            down: !end.healthy,
            outcome,
            settled_on,
            settled_at,
            stats,
        }
    }
}

/// Reads the trajectory (`dense` to `t_end`, `tail` after it) against the healthy states at
/// the start and at the end.
fn describe<M: Model<N>, const N: usize>(
    model: &M,
    sc: &Scenario,
    path: &ParamPath,
    dense: &Dense<N>,
    tail: &[Segment<N>],
    (start, end): (&RestState<N>, &RestState<N>),
) -> Trajectory {
    let w = model.watched();
    // Reported in the model's domain, like every sampled state.
    let minima: Vec<(f64, f64)> = (0..N)
        .map(|i| {
            let (v, t) = extremum(&dense.segments, i, false);
            (
                dense
                    .eval(t)
                    .map_or(v, |x| model.in_domain(x, &path.at(t))[i]),
                t,
            )
        })
        .collect();
    let (min_peers, t_min_peers) = minima[w];
    // Recovery is measured against the healthy state the network starts from; when the initial
    // parameters have none (a run that starts down), against that of the final parameters; when
    // neither has one, there is nothing to recover to.
    let reference = match (start.healthy, end.healthy) {
        (true, _) => Some((start.x, 0.0)),
        (false, true) => Some((end.x, sc.t_end)),
        (false, false) => None,
    };
    let shock_at = sc.shock.map_or(0.0, |s| s.at);
    let recovery_time = reference.and_then(|(x, at)| {
        let segs = dense.segments.iter().chain(tail.iter());
        if model.recovery_by_service() {
            let level = model.service_level(&x, &path.at(at))?;
            service_recovery(model, path, segs, 0.95 * level, shock_at)
        } else {
            recovery(segs, w, 0.95 * x[w], shock_at)
        }
    });
    Trajectory {
        min: (min_peers, t_min_peers),
        peaks: (0..N).map(|i| extremum(&dense.segments, i, true)).collect(),
        minima,
        min_service_level: extreme_of(model, sc, path, &dense.segments, false, |x, p| {
            model.service_level(x, p)
        }),
        peak_utilisation: extreme_of(model, sc, path, &dense.segments, true, |x, p| {
            model.utilisation(x, p)
        }),
        recovery_time,
    }
}

/// Global minimum (or maximum) of component `i` over the segments, located at the stationary
/// points of each step's interpolant.
fn extremum<const N: usize>(segs: &[Segment<N>], i: usize, max: bool) -> (f64, f64) {
    let better = |a: f64, b: f64| if max { a > b } else { a < b };
    let mut best = (segs[0].y0[i], segs[0].t0);
    for s in segs {
        let cands = [0.0, 1.0].into_iter().chain(s.stationary(i));
        for th in cands {
            let v = s.component(i, th);
            if better(v, best.0) {
                best = (v, s.time(th));
            }
        }
    }
    best
}

/// The largest (`max`) or smallest value of `g(state, parameters)` over the run, with its time:
/// found among step ends and three interior points of each step, then refined by golden-section
/// search around the best. `None` when the model does not define `g`.
fn extreme_of<M: Model<N>, const N: usize>(
    model: &M,
    sc: &Scenario,
    path: &ParamPath,
    segs: &[Segment<N>],
    max: bool,
    g: impl Fn(&SVector<f64, N>, &[f64]) -> Option<f64>,
) -> Option<(f64, f64)> {
    // Searched as a maximum of `sign * g`.
    let sign = if max { 1.0 } else { -1.0 };
    let mut best: Option<(f64, f64, usize, f64)> = None;
    let mut p = sc.params_at(0.0);
    let mut next_iv = sc.interventions.iter().filter(|iv| iv.at <= 0.0).count();
    let stepwise = path.is_stepwise();
    for (k, s) in segs.iter().enumerate() {
        // Stepwise parameters change only at interventions: updated in place when one is
        // passed; otherwise read off the path at each point.
        while next_iv < sc.interventions.len() && sc.interventions[next_iv].at <= s.t0 {
            for &(i, v) in &sc.interventions[next_iv].set {
                p[i] = v;
            }
            next_iv += 1;
        }
        for j in 0..=4 {
            let th = j as f64 / 4.0;
            if !stepwise {
                p = path.at(s.time(th));
            }
            let u = sign * g(&model.in_domain(s.eval(s.time(th)), &p), &p)?;
            if best.is_none_or(|b| u > b.0) {
                best = Some((u, s.time(th), k, th));
            }
        }
    }
    let (mut u, mut t, k, th) = best?;
    let s = &segs[k];
    let f = |th: f64| {
        let p = path.at(s.time(th));
        g(&model.in_domain(s.eval(s.time(th)), &p), &p).map_or(f64::NAN, |v| sign * v)
    };
    let (mut a, mut b) = ((th - 0.25).max(0.0), (th + 0.25).min(1.0));
    let g = 0.5 * (5f64.sqrt() - 1.0);
    for _ in 0..60 {
        let c = b - g * (b - a);
        let d = a + g * (b - a);
        if f(c) > f(d) {
            b = d;
        } else {
            a = c;
        }
    }
    let th = 0.5 * (a + b);
    if f(th) > u {
        u = f(th);
        t = s.time(th);
    }
    Some((sign * u, t))
}

/// Recovery time by the service level: from `from` until the service level, having fallen
/// below `level`, first returns to it (0 if it never falls; `None` if it never returns).
fn service_recovery<'a, M: Model<N>, const N: usize>(
    model: &M,
    path: &ParamPath,
    segs: impl Iterator<Item = &'a Segment<N>>,
    level: f64,
    from: f64,
) -> Option<f64> {
    let stepwise = path.is_stepwise();
    recovery_by(segs, from, &|s: &Segment<N>| {
        let p0 = path.at(s.t0);
        Box::new(move |th: f64| {
            let p = if stepwise {
                std::borrow::Cow::Borrowed(&p0)
            } else {
                std::borrow::Cow::Owned(path.at(s.time(th)))
            };
            model
                .service_level(&model.in_domain(s.eval(s.time(th)), &p), &p)
                .map_or(f64::NAN, |v| v - level)
        })
    })
}

/// A margin along each step, as a function of the step's θ: below zero is "fallen".
type Margin<'a> = Box<dyn Fn(f64) -> f64 + 'a>;

/// Recovery time by a margin `g` (below zero: fallen; at least zero: served): from `from` until
/// the margin, having fallen below zero, first returns to zero or above (0 if it never falls;
/// `None` if it never returns). Each step is sampled at nine points (its ends and seven inside)
/// and each crossing located by bisection on the step's interpolant to 1e-12 of the step.
fn recovery_by<'a, 's, const N: usize>(
    segs: impl Iterator<Item = &'a Segment<N>>,
    from: f64,
    margin: &dyn Fn(&'s Segment<N>) -> Margin<'s>,
) -> Option<f64>
where
    'a: 's,
{
    let mut fell_at: Option<f64> = None;
    for s in segs.filter(|s| s.t1 >= from && s.t1 > s.t0) {
        let g = margin(s);
        // The first θ in (a, b] where `below(g)` holds, located by bisection.
        let locate = |a: f64, b: f64, below: bool| {
            let (mut lo, mut hi) = (a, b);
            while hi - lo > 1e-12 {
                let m = 0.5 * (lo + hi);
                if (g(m) < 0.0) == below {
                    hi = m;
                } else {
                    lo = m;
                }
            }
            hi
        };
        let th_from = ((from - s.t0) / (s.t1 - s.t0)).clamp(0.0, 1.0);
        let mut prev = th_from;
        for k in 0..=8 {
            let th = th_from + (1.0 - th_from) * k as f64 / 8.0;
            let v = g(th);
            match fell_at {
                None if v < 0.0 => {
                    let at = if k == 0 { th } else { locate(prev, th, true) };
                    fell_at = Some(s.time(at));
                }
                Some(tf) if v >= 0.0 && s.time(th) > tf => {
                    let t0 = ((tf - s.t0) / (s.t1 - s.t0)).clamp(prev, th);
                    return Some(s.time(locate(t0, th, false)) - from);
                }
                _ => {}
            }
            prev = th;
        }
    }
    if fell_at.is_none() {
        Some(0.0)
    } else {
        None
    }
}

/// Recovery time per docs/model.md, located on the dense output.
fn recovery<'a, const N: usize>(
    segs: impl Iterator<Item = &'a Segment<N>>,
    i: usize,
    level: f64,
    from: f64,
) -> Option<f64> {
    let mut fell_at: Option<f64> = None;
    for s in segs.filter(|s| s.t1 >= from) {
        let th_from = if s.t1 > s.t0 {
            ((from - s.t0) / (s.t1 - s.t0)).max(0.0)
        } else {
            0.0
        };
        if fell_at.is_none() {
            if s.t0 >= from && s.y0[i] < level {
                fell_at = Some(s.t0);
            } else if let Some(th) = s.crossing(i, level, false, th_from) {
                fell_at = Some(s.time(th));
            }
        }
        if let Some(tf) = fell_at {
            let th_fall = if s.t1 > s.t0 {
                ((tf - s.t0) / (s.t1 - s.t0)).clamp(0.0, 1.0)
            } else {
                0.0
            };
            if let Some(th) = s.crossing(i, level, true, th_fall) {
                let t = s.time(th);
                if t > tf {
                    return Some(t - from);
                }
            }
        }
    }
    if fell_at.is_none() {
        Some(0.0)
    } else {
        None
    }
}
