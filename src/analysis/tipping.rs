//! Tipping by shocks: the critical reboot fraction, the critical spread of a wave, and the
//! smallest rescue from a collapsed state.
//!
//! Each trial integrates only until its fate is certain — the state has [`settled`] onto a
//! stable equilibrium — and the boundary between the fates is resolved with argmin's Brent root
//! finder. Fate is a step function of the shock, so the function handed to Brent is made
//! continuous near the boundary: a trial scores its closest approach to the saddle, signed by
//! its fate. A shock just off the basin boundary (the saddle's stable manifold) passes the saddle
//! at a distance proportional to its offset, on either side, so the score is nearly linear in
//! `f − f*` and Brent converges in few trials; far from it the sign alone keeps the bracket.
//!
//! [`settled`]: crate::analysis::equilibria::settled

use crate::analysis::equilibria::{
    all_equilibria, integrate_to_rest, same_point, Equilibrium, Kind, SETTLE_HORIZON,
};
use crate::error::Error;
use crate::model::{Model, System};
use crate::simulate::Outcome;
use crate::solve::{integrate, Method, SolveOptions, SolverStats, Tolerances};
use argmin::core::{CostFunction, Executor, State};
use argmin::solver::brent::BrentRoot;
use nalgebra::{Const, DimMin, SVector};
use std::cell::RefCell;

/// The equilibria of one parameter set, with the healthy state singled out.
#[derive(Debug, Clone)]
pub struct Landscape<const N: usize> {
    /// Every equilibrium found, most peers first.
    pub equilibria: Vec<Equilibrium<N>>,
    /// Index of the healthy state in `equilibria`.
    pub healthy: usize,
}

impl<const N: usize> Landscape<N> {
    /// Finds the equilibria; fails when there is no stable one to call healthy.
    pub fn new<M: Model<N>>(model: &M, p: &[f64]) -> Result<Self, Error>
    where
        Const<N>: DimMin<Const<N>, Output = Const<N>>,
    {
        let equilibria = all_equilibria(model, p)?;
        let healthy = equilibria
            .iter()
            .position(|e| e.kind == Kind::Stable)
            .ok_or_else(|| {
                Error::Invalid(
                    "no stable equilibrium to start from: the network has no healthy state with these parameters"
                        .into(),
                )
            })?;
        Ok(Self {
            equilibria,
            healthy,
        })
    }

    /// The healthy state.
    pub fn healthy_state(&self) -> SVector<f64, N> {
        self.equilibria[self.healthy].x
    }

    /// The unstable eigenvalue of each of [`Landscape::saddles`].
    pub fn rates(&self) -> Vec<f64> {
        self.saddles().map(|s| s.stability.max_real).collect()
    }

    /// Saddles with exactly one unstable direction: the candidates for basin boundaries.
    pub fn saddles(&self) -> impl Iterator<Item = &Equilibrium<N>> {
        self.equilibria
            .iter()
            .filter(|e| e.kind == Kind::Saddle && e.stability.unstable_dims == 1)
    }
}

/// Options of the tipping analyses.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TippingOptions {
    /// Absolute tolerance on the critical value (relative for windows and rescues).
    pub tol: f64,
    /// Solver options of every trial.
    pub solve: SolveOptions,
}

impl Default for TippingOptions {
    /// f* to 1e-6 with trials at `rtol 1e-6`, `atol 1e-12` (Rosenbrock): on the reference
    /// model f* moves by less than 1e-7 when the trials are tightened to `rtol 1e-12`.
    fn default() -> Self {
        Self {
            tol: 1e-6,
            solve: SolveOptions {
                method: Method::Rosenbrock,
                tol: Tolerances::default(),
                ..Default::default()
            },
        }
    }
}

/// One trial's fate and when it became certain.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fate {
    /// Recovered, collapsed or undecided.
    pub outcome: Outcome,
    /// Time (minutes from the trial's start) at which the state had settled.
    pub settled_at: f64,
    /// The saddle (index among [`Landscape::saddles`]) the trajectory lingered by longest, with
    /// the last time it was within [`SADDLE_NEIGHBOURHOOD`] of it.
    pub saddle_exit: Option<(usize, f64)>,
}

/// Relative size (per component) of the neighbourhood of a saddle in which a trajectory counts
/// as lingering by it.
pub const SADDLE_NEIGHBOURHOOD: f64 = 0.25;

/// Relative distance between a state and a saddle: the largest component difference over the
/// saddle's own size.
fn saddle_distance<const N: usize>(x: &SVector<f64, N>, s: &SVector<f64, N>) -> f64 {
    (x - s).component_div(&s.map(|v| v.abs() + 1e-12)).amax()
}

/// Integrates from `x0` until the state settles; recovered when it settles on the landscape's
/// healthy state. Also records when the trajectory last left each saddle's neighbourhood.
pub fn fate<M: Model<N>, const N: usize>(
    sys: &System<'_, M, N>,
    x0: SVector<f64, N>,
    landscape: &Landscape<N>,
    opts: &SolveOptions,
    stats: &mut SolverStats,
) -> Result<Fate, Error>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    let saddles: Vec<SVector<f64, N>> = landscape.saddles().map(|s| s.x).collect();
    let mut exits: Vec<Option<f64>> = vec![None; saddles.len()];
    let mut look = |t: f64, x: &SVector<f64, N>| {
        for (k, s) in saddles.iter().enumerate() {
            if saddle_distance(x, s) <= SADDLE_NEIGHBOURHOOD {
                exits[k] = Some(t);
            }
        }
    };
    look(0.0, &x0);
    let rest = integrate_to_rest(sys, 0.0, x0, SETTLE_HORIZON, opts, stats, |seg| {
        for th in [0.25, 0.5, 0.75, 1.0] {
            let t = seg.time(th);
            look(t, &seg.eval(t));
        }
    })?;
    let saddle_exit = exits
        .iter()
        .enumerate()
        .filter_map(|(k, t)| t.map(|t| (k, t)))
        .max_by(|a, b| a.1.total_cmp(&b.1));
    let healthy = landscape.healthy_state();
    Ok(match rest {
        Some((s, t)) => Fate {
            outcome: if same_point(&s.equilibrium, &healthy) {
                Outcome::Recovered
            } else {
                Outcome::Collapsed
            },
            settled_at: t,
            saddle_exit,
        },
        None => Fate {
            outcome: Outcome::Undecided,
            settled_at: SETTLE_HORIZON,
            saddle_exit,
        },
    })
}

/// The critical shock of a parameter set.
#[derive(Debug, Clone)]
pub struct CriticalShock<const N: usize> {
    /// f*, or `None` when every shock below 1 is absorbed.
    pub value: Option<f64>,
    /// Final bracket `[recovers, collapses]`.
    pub bracket: (f64, f64),
    /// The saddle whose stable manifold the shocked state crosses at f*.
    pub saddle: Option<Equilibrium<N>>,
    /// The equilibria of the parameter set.
    pub landscape: Landscape<N>,
    /// Number of trials integrated.
    pub trials: usize,
    /// Solver work over all trials.
    pub stats: SolverStats,
}

/// Largest shock fraction tried: fractions must stay below 1.
pub const MAX_FRACTION: f64 = 1.0 - 1e-9;

struct Scored<'a, F: FnMut(f64) -> Result<Fate, Error>> {
    trial: RefCell<F>,
    /// Unstable eigenvalue of each saddle.
    rates: Vec<f64>,
    error: &'a RefCell<Option<Error>>,
    /// Score sign for a recovered trial (+1 when recovering lies at the low end).
    recovered_sign: f64,
}

impl<F: FnMut(f64) -> Result<Fate, Error>> CostFunction for Scored<'_, F> {
    type Param = f64;
    type Output = f64;
    fn cost(&self, v: &f64) -> Result<f64, argmin::core::Error> {
        let fate = match (self.trial.borrow_mut())(*v) {
            Ok(f) => f,
            Err(e) => {
                let msg = e.to_string();
                *self.error.borrow_mut() = Some(e);
                return Err(argmin::core::Error::msg(msg));
            }
        };
        // A trajectory leaves the saddle's neighbourhood ln(1/|v − v*|)/λu after entering it,
        // on either side: exp(−λu·t_exit) is nearly proportional to |v − v*|. Trajectories that
        // never come near score 1.
        let magnitude = match fate.saddle_exit {
            Some((k, t)) => (-self.rates[k] * t).exp().max(1e-300),
            None => 1.0,
        };
        Ok(match fate.outcome {
            Outcome::Recovered => self.recovered_sign * magnitude,
            Outcome::Collapsed => -self.recovered_sign * magnitude,
            Outcome::Undecided => 0.0,
        })
    }
}

/// Resolves the boundary between `lo` (recovers) and `hi` (collapses) to `tol` with Brent;
/// `rates` are the saddles' unstable eigenvalues.
fn resolve(
    lo: f64,
    hi: f64,
    tol: f64,
    rates: Vec<f64>,
    trial: impl FnMut(f64) -> Result<Fate, Error>,
) -> Result<(f64, (f64, f64)), Error> {
    let error = RefCell::new(None);
    let (a, b, sign) = if lo < hi {
        (lo, hi, 1.0)
    } else {
        (hi, lo, -1.0)
    };
    let problem = Scored {
        trial: RefCell::new(trial),
        rates,
        error: &error,
        recovered_sign: sign,
    };
    let run = Executor::new(problem, BrentRoot::new(a, b, tol))
        .configure(|s| s.max_iters(200))
        .run();
    if let Some(e) = error.borrow_mut().take() {
        return Err(e);
    }
    let res = run.map_err(|e| Error::Invalid(format!("root finder: {e}")))?;
    let x = *res
        .state()
        .get_best_param()
        .ok_or_else(|| Error::Invalid("root finder returned no point".into()))?;
    Ok((x, (x - tol, x + tol)))
}

/// The critical shock f*: the smallest instantaneous reboot fraction (peers and supernodes
/// alike) after which the network does not recover, to `opts.tol` absolute.
///
/// ```
/// use selfheal::analysis::tipping::{critical_shock, TippingOptions};
/// use selfheal::model::{Model, ParamSet, P2p};
/// let p = ParamSet::defaults(P2p.params());
/// let cs = critical_shock(&P2p, p.values(), &TippingOptions::default()).unwrap();
/// let f = cs.value.unwrap();
/// assert!(f > 0.3 && f < 0.6); // MODEL.md: the default critical shock lies in (0.3, 0.6)
/// ```
pub fn critical_shock<M: Model<N>, const N: usize>(
    model: &M,
    p: &[f64],
    opts: &TippingOptions,
) -> Result<CriticalShock<N>, Error>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    check_tol(opts.tol)?;
    let landscape = Landscape::new(model, p)?;
    let healthy = landscape.healthy_state();
    let sys = System::new(model, p);
    let mut stats = SolverStats::default();
    let mut trials = 0;
    let mut last: Option<Fate> = None;
    let mut trial = |f: f64| -> Result<Fate, Error> {
        trials += 1;
        let x0 = model.reboot_jump(&healthy, p, f, f)?;
        let r = fate(&sys, x0, &landscape, &opts.solve, &mut stats)?;
        if r.outcome == Outcome::Undecided {
            return Err(Error::Invalid(format!(
                "a shock of {f} leaves the network undecided (not settled within {SETTLE_HORIZON} minutes)"
            )));
        }
        last = Some(r);
        Ok(r)
    };
    // f = 0 leaves the healthy state in place; the largest shock decides whether any tips it.
    if trial(MAX_FRACTION)?.outcome == Outcome::Recovered {
        return Ok(CriticalShock {
            value: None,
            bracket: (MAX_FRACTION, 1.0),
            saddle: None,
            landscape,
            trials,
            stats,
        });
    }
    let (value, bracket) = resolve(0.0, MAX_FRACTION, opts.tol, landscape.rates(), &mut trial)?;
    // The saddle crossed: the one the last trial (at f*, within tol) lingered by.
    let saddle = last
        .and_then(|f| f.saddle_exit)
        .and_then(|(k, _)| landscape.saddles().nth(k).cloned());
    Ok(CriticalShock {
        value: Some(value),
        bracket,
        saddle,
        landscape,
        trials,
        stats,
    })
}

fn check_tol(tol: f64) -> Result<(), Error> {
    if tol.is_finite() && tol > 0.0 && tol < 0.1 {
        Ok(())
    } else {
        Err(Error::OutOfRange {
            name: "tol".into(),
            value: tol,
            range: "in (0, 0.1)".into(),
        })
    }
}

/// The critical spread of a reboot wave.
#[derive(Debug, Clone)]
pub struct CriticalWindow {
    /// W*: waves spread over longer than this are absorbed (minutes); `None` when even the
    /// longest window tried (`MAX_WINDOW`) tips the network.
    pub value: Option<f64>,
    /// Final bracket `[tips, absorbed]` (minutes).
    pub bracket: (f64, f64),
    /// The critical shock of the same parameters, for reference.
    pub critical_shock: f64,
    /// Number of trials integrated.
    pub trials: usize,
    /// Solver work over all trials.
    pub stats: SolverStats,
}

/// Longest window tried (minutes): 100 days.
pub const MAX_WINDOW: f64 = 1.44e5;

/// For a reboot fraction `f` above the critical shock, the critical window W*(f): waves spread
/// over more than W* minutes are absorbed, faster ones tip the network (rate-induced tipping).
/// Resolved to `opts.tol` relative.
pub fn critical_window<M: Model<N>, const N: usize>(
    model: &M,
    p: &[f64],
    f: f64,
    opts: &TippingOptions,
) -> Result<CriticalWindow, Error>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    check_tol(opts.tol)?;
    if !(f.is_finite() && (0.0..1.0).contains(&f)) {
        return Err(Error::OutOfRange {
            name: "shock".into(),
            value: f,
            range: "in [0, 1)".into(),
        });
    }
    let cs = critical_shock(model, p, opts)?;
    let fstar = cs.value.ok_or_else(|| {
        Error::Invalid("no shock below 1 tips the network, so no window is critical".into())
    })?;
    if f <= cs.bracket.1 {
        return Err(Error::OutOfRange {
            name: "shock".into(),
            value: f,
            range: format!("above the critical shock f* = {fstar:.6} (an instantaneous wave of this size is absorbed)"),
        });
    }
    let landscape = cs.landscape;
    let healthy = landscape.healthy_state();
    let mut stats = cs.stats;
    let mut trials = 0;
    let sys = System::new(model, p);
    let eta = -(1.0 - f).ln();
    let mut trial = |w: f64| -> Result<Fate, Error> {
        trials += 1;
        let mut wave = System::new(model, p);
        wave.reboot = Some((eta / w, eta / w));
        let (_, x) = integrate(&wave, 0.0, healthy, w, &opts.solve, &mut stats, &mut |_| {
            false
        })?;
        let mut fate = fate(&sys, x, &landscape, &opts.solve, &mut stats)?;
        fate.settled_at += w;
        Ok(fate)
    };
    // Bracket in the window: start at one minute, then halve or double.
    let mut w = 1.0;
    let first = trial(w)?.outcome;
    let (mut tips, mut absorbed) = (None, None);
    if first == Outcome::Recovered {
        absorbed = Some(w);
        while w > 1e-9 {
            w /= 4.0;
            if trial(w)?.outcome == Outcome::Collapsed {
                tips = Some(w);
                break;
            }
            absorbed = Some(w);
        }
    } else {
        tips = Some(w);
        while w < MAX_WINDOW {
            w = (w * 4.0).min(MAX_WINDOW);
            if trial(w)?.outcome == Outcome::Recovered {
                absorbed = Some(w);
                break;
            }
            tips = Some(w);
        }
    }
    let (Some(lo), Some(hi)) = (tips, absorbed) else {
        return Ok(CriticalWindow {
            value: None,
            bracket: (tips.unwrap_or(0.0), absorbed.unwrap_or(f64::INFINITY)),
            critical_shock: fstar,
            trials,
            stats,
        });
    };
    // Resolve in ln W so that the tolerance is relative. The score runs the other way round
    // here: long windows recover.
    let rates = landscape.rates();
    let (lw, (a, b)) = resolve(hi.ln(), lo.ln(), opts.tol, rates, |lw: f64| trial(lw.exp()))?;
    Ok(CriticalWindow {
        value: Some(lw.exp()),
        bracket: (a.exp().min(b.exp()), a.exp().max(b.exp())),
        critical_shock: fstar,
        trials,
        stats,
    })
}

/// The smallest parameter step that brings a collapsed network back.
#[derive(Debug, Clone)]
pub struct Rescue<const N: usize> {
    /// Name of the parameter.
    pub param: String,
    /// Its value before the rescue.
    pub from_value: f64,
    /// The rescuing value closest to the current one (`None` when none in the searched range).
    pub value: Option<f64>,
    /// Final bracket `[fails, rescues]`.
    pub bracket: (f64, f64),
    /// The collapsed state the rescue starts from.
    pub collapsed: SVector<f64, N>,
    /// Number of trials integrated.
    pub trials: usize,
    /// Solver work over all trials.
    pub stats: SolverStats,
}

/// From the collapsed state (the stable equilibrium with the fewest peers), the value of
/// parameter `k` closest to its current value that, set as a step, brings the network back to
/// the healthy state of the new parameters; searched upwards first (doubling, to the parameter's
/// upper bound or 10⁶ times its value), then downwards. Resolved to `opts.tol` relative.
pub fn rescue<M: Model<N>, const N: usize>(
    model: &M,
    p: &[f64],
    k: usize,
    opts: &TippingOptions,
) -> Result<Rescue<N>, Error>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    check_tol(opts.tol)?;
    let spec = *model
        .params()
        .get(k)
        .ok_or_else(|| Error::Invalid(format!("parameter index {k} is out of range")))?;
    let landscape = Landscape::new(model, p)?;
    let collapsed = landscape
        .equilibria
        .iter()
        .rev()
        .find(|e| e.kind == Kind::Stable && !same_point(&e.x, &landscape.healthy_state()))
        .map(|e| e.x)
        .ok_or_else(|| {
            Error::Invalid(
                "no collapsed state to rescue: with these parameters the only stable state is the healthy one"
                    .into(),
            )
        })?;
    let v0 = p[k];
    let mut stats = SolverStats::default();
    let mut trials = 0;
    let mut trial = |v: f64| -> Result<Outcome, Error> {
        trials += 1;
        let mut q = p.to_vec();
        q[k] = v;
        let Ok(l) = Landscape::new(model, &q) else {
            // No healthy state at this value: certainly no rescue.
            return Ok(Outcome::Collapsed);
        };
        let sys = System::new(model, &q);
        Ok(fate(&sys, collapsed, &l, &opts.solve, &mut stats)?.outcome)
    };
    let admissible = |v: f64| spec.admits(v);
    // Search outwards from v0 in each direction for a value that rescues.
    let mut found = None;
    for up in [true, false] {
        let mut last = v0;
        let mut v = v0;
        for _ in 0..60 {
            v = match (up, v > 0.0) {
                (true, true) => v * 2.0,
                (true, false) => 1e-9_f64.max(v.abs() * 2.0),
                (false, _) => v / 2.0,
            };
            if !admissible(v) || (up && v > 1e6 * v0.abs().max(1.0)) || (!up && v < v0.abs() * 1e-9)
            {
                break;
            }
            if trial(v)? == Outcome::Recovered {
                found = Some((last, v));
                break;
            }
            last = v;
        }
        if found.is_some() {
            break;
        }
    }
    let Some((fails, rescues)) = found else {
        return Ok(Rescue {
            param: spec.name.into(),
            from_value: v0,
            value: None,
            bracket: (v0, v0),
            collapsed,
            trials,
            stats,
        });
    };
    // Bisect (geometrically when both ends are positive) to the relative tolerance.
    let (mut a, mut b) = (fails, rescues);
    while (b - a).abs() > opts.tol * b.abs().max(f64::MIN_POSITIVE) {
        let m = if a > 0.0 && b > 0.0 {
            (a * b).sqrt()
        } else {
            0.5 * (a + b)
        };
        if m == a || m == b {
            break;
        }
        if trial(m)? == Outcome::Recovered {
            b = m;
        } else {
            a = m;
        }
    }
    Ok(Rescue {
        param: spec.name.into(),
        from_value: v0,
        value: Some(b),
        bracket: (a, b),
        collapsed,
        trials,
        stats,
    })
}

/// A slice of the healthy basin's boundary: for each value of state `i` in `along`, the value of
/// state `j` (searched geometrically in `[lo, hi]`, to 1e-4 relative) at which the fate flips,
/// with every other state held at `base`. Points where the fate does not flip inside the
/// search interval are left out.
#[allow(clippy::too_many_arguments)]
pub fn basin_boundary_slice<M: Model<N>, const N: usize>(
    model: &M,
    p: &[f64],
    landscape: &Landscape<N>,
    base: SVector<f64, N>,
    (i, along): (usize, &[f64]),
    (j, lo, hi): (usize, f64, f64),
    opts: &SolveOptions,
) -> Result<Vec<(f64, f64)>, Error>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    let sys = System::new(model, p);
    let mut stats = SolverStats::default();
    let mut out = vec![];
    for &v in along {
        let at = |w: f64, stats: &mut SolverStats| -> Result<Option<Outcome>, Error> {
            let mut x = base;
            x[i] = v;
            x[j] = w;
            if !model.feasible(&x) {
                return Ok(None);
            }
            Ok(Some(fate(&sys, x, landscape, opts, stats)?.outcome))
        };
        let (Some(a), Some(b)) = (at(lo, &mut stats)?, at(hi, &mut stats)?) else {
            continue;
        };
        if a == b || a == Outcome::Undecided || b == Outcome::Undecided {
            continue;
        }
        let (mut l, mut h) = (lo, hi);
        while h / l > 1.0 + 1e-4 {
            let m = (l * h).sqrt();
            match at(m, &mut stats)? {
                Some(o) if o == a => l = m,
                Some(_) => h = m,
                None => break,
            }
        }
        out.push((v, (l * h).sqrt()));
    }
    Ok(out)
}
