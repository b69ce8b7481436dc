//! Tipping by shocks: the critical reboot fraction, the critical spread of a wave, and the
//! smallest rescue from a collapsed state.
//!
//! Every answer is certified by simulation. A trial integrates only until its fate is certain
//! — the state has [`settled`] onto a stable equilibrium — and is classified `recovered` (it
//! settled on the healthy state) or `collapsed`. The fate along a shock need not be monotone,
//! so each analysis first **scans** the whole range at a resolution the caller sets, then
//! **refines every change of fate** between neighbouring scan points to the tolerance. Each
//! reported value lies inside a bracket whose two ends were both simulated and classified; no
//! bracket is ever invented, and "none" means the scan found no change and says at what
//! resolution it looked.
//!
//! Refinement is bisection: it needs nothing but the fates, so it works the same for models
//! without saddles (one-state models, whose middle equilibrium is unstable) and for fates that
//! change more than once. (Regula falsi on a score built from the time trials linger by the
//! saddle was tried and took more trials than bisection on the reference model: the score is
//! far from linear at the scan's resolution.) The saddle a trial near f* lingered by is still
//! reported, as the state whose stable manifold the shocked state crosses.
//!
//! A network with no healthy state (no stable equilibrium serves at least half the users who
//! want service, docs/model.md) is down whatever the shock: its trials are `collapsed`,
//! and the critical shock reports it as down instead of searching.
//!
//! [`settled`]: crate::equilibria::settled

use crate::equilibria::{
    all_equilibria, choose_rest, integrate_to_rest_among, same_point, Equilibrium, Kind, Rest,
    RestState, SETTLE_HORIZON, SETTLE_MAX_STEPS,
};
use crate::error::Error;
use crate::model::{Model, System};
use crate::simulate::Outcome;
use crate::solve::{integrate, Method, SolveOptions, SolverStats, Span, Tolerances};
use nalgebra::{Const, DimMin, SVector};

/// The equilibria of one parameter set, with the state the network rests in singled out.
#[derive(Debug, Clone)]
pub struct Landscape<const N: usize> {
    /// Every equilibrium found, most of the watched state first.
    pub equilibria: Vec<Equilibrium<N>>,
    /// The healthy state (or, when the network is down, the best stable state) and its
    /// service level.
    pub rest: Rest,
}

impl<const N: usize> Landscape<N> {
    /// Finds the equilibria and the state the network rests in; fails when no equilibrium is
    /// stable or the model defines no service level.
    pub fn new<M: Model<N>>(model: &M, p: &[f64]) -> Result<Self, Error>
    where
        Const<N>: DimMin<Const<N>, Output = Const<N>>,
    {
        let equilibria = all_equilibria(model, p)?;
        let rest = choose_rest(model, p, &equilibria)?;
        Ok(Self { equilibria, rest })
    }

    /// Whether the network has a healthy state at these parameters.
    pub fn is_healthy(&self) -> bool {
        self.rest.healthy
    }

    /// The healthy state, `None` when the network is down.
    pub fn healthy_state(&self) -> Option<SVector<f64, N>> {
        self.rest.healthy.then(|| self.rest_state())
    }

    /// The state the network rests in: the healthy state, or when there is none the stable
    /// state with the highest service level (where a scenario then starts).
    pub fn rest_state(&self) -> SVector<f64, N> {
        self.equilibria[self.rest.index].x
    }

    /// The state the network rests in, with its service level and health.
    pub fn rest_point(&self) -> RestState<N> {
        RestState {
            x: self.rest_state(),
            service: self.rest.service,
            healthy: self.rest.healthy,
        }
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
    /// Width of the final bracket of each change of fate: absolute for shocks, relative for
    /// windows and rescues.
    pub tol: f64,
    /// Resolution of the scan: shocks are tried at `k/scan` for `k = 0..=scan`, windows at
    /// `scan/4` (at least 2) log-spaced values per factor of ten. A change of fate narrower
    /// than one scan interval can be missed; every reported change is certified.
    pub scan: usize,
    /// Solver options of every trial.
    pub solve: SolveOptions,
}

impl TippingOptions {
    /// Options with brackets of width `tol` after a scan of `scan` intervals, trials solved
    /// with `solve`; the `auto` method means the stiff one, since every trial ends near an
    /// equilibrium, where the model is stiff.
    pub fn new(solve: SolveOptions, tol: f64, scan: usize) -> Self {
        let mut solve = solve;
        if solve.method == Method::Auto {
            solve.method = Method::Rosenbrock;
        }
        Self { tol, scan, solve }
    }
}

impl Default for TippingOptions {
    /// Brackets of width 1e-6 after a scan of 20 intervals, with trials at `rtol 1e-6`,
    /// `atol 1e-12` (Rosenbrock): on the reference model f* moves by less than 1e-7 when the
    /// trials are tightened to `rtol 1e-12`.
    fn default() -> Self {
        Self {
            tol: 1e-6,
            scan: 20,
            solve: SolveOptions {
                method: Method::Rosenbrock,
                tol: Tolerances::default(),
                ..Default::default()
            },
        }
    }
}

impl TippingOptions {
    pub(crate) fn validate(&self) -> Result<(), Error> {
        if !(self.tol.is_finite() && self.tol > 0.0 && self.tol < 0.1) {
            return Err(Error::OutOfRange {
                name: "tol".into(),
                value: self.tol,
                range: "in (0, 0.1)".into(),
            });
        }
        if !(2..=100_000).contains(&self.scan) {
            return Err(Error::OutOfRange {
                name: "scan".into(),
                value: self.scan as f64,
                range: "an integer in [2, 100000]".into(),
            });
        }
        self.solve.validate()
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
/// healthy state (never, when the network has none). Also records when the trajectory last
/// left each saddle's neighbourhood.
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
    let stable: Vec<SVector<f64, N>> = landscape
        .equilibria
        .iter()
        .filter(|e| e.kind == Kind::Stable)
        .map(|e| e.x)
        .collect();
    let rest =
        integrate_to_rest_among(sys, 0.0, x0, SETTLE_HORIZON, &stable, opts, stats, |seg| {
            if saddles.is_empty() {
                return;
            }
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
            outcome: match healthy {
                Some(h) if same_point(&s.equilibrium, &h) => Outcome::Recovered,
                _ => Outcome::Collapsed,
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

/// A change of fate along a scanned quantity, certified by two simulated trials.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FateChange {
    /// The bracket `(a, b)`, `a < b`, no wider than the tolerance (in the analysed quantity:
    /// a shock fraction, a window in minutes, a parameter value).
    pub bracket: (f64, f64),
    /// The simulated fate at `a`.
    pub below: Outcome,
    /// The simulated fate at `b`.
    pub above: Outcome,
}

impl FateChange {
    /// The middle of the bracket (geometric when both ends are positive and the search was
    /// on a log scale).
    pub fn mid(&self) -> f64 {
        0.5 * (self.bracket.0 + self.bracket.1)
    }
}

/// A simulated trial: where, and its fate.
pub(crate) type Tried = (f64, Fate);

/// A map between an analysed quantity and the coordinate its tolerance is absolute in.
type Coordinate = fn(f64) -> f64;

/// What a scan found: each scanned point's fate, every refined change, and for each change the
/// fate at the end of its bracket that lingered longest by a saddle.
struct Scanned {
    scan: Vec<(f64, Outcome)>,
    changes: Vec<FateChange>,
    ends: Vec<Fate>,
}

/// Refines one change of fate between `lo` and `hi` by bisection (in a coordinate in which
/// `tol` is absolute) until the bracket is at most `tol` wide. Both ends stay simulated trials.
pub(crate) fn refine(
    (lo, fate_lo): (f64, Fate),
    (hi, fate_hi): (f64, Fate),
    tol: f64,
    from_u: &dyn Fn(f64) -> f64,
    trial: &mut impl FnMut(f64) -> Result<Fate, Error>,
) -> Result<(Tried, Tried), Error> {
    let low = fate_lo.outcome;
    let (mut a, mut fa) = (lo, fate_lo);
    let (mut b, mut fb) = (hi, fate_hi);
    while b - a > tol {
        let m = 0.5 * (a + b);
        if m <= a || m >= b {
            break;
        }
        let fm = trial(m)?;
        if fm.outcome == Outcome::Undecided {
            return Err(Error::Invalid(format!(
                "a trial at {} did not settle within {SETTLE_HORIZON} time units or {SETTLE_MAX_STEPS} solver steps, whichever came first, so its fate is undecided (near a fold the approach to rest is slow; loosen the tolerance with --tol)",
                crate::output::Num(from_u(m))
            )));
        }
        if fm.outcome == low {
            (a, fa) = (m, fm);
        } else {
            (b, fb) = (m, fm);
        }
    }
    Ok(((a, fa), (b, fb)))
}

/// Scans `points` (increasing) with `trial` and refines every change of fate between
/// neighbours; `to_u`/`from_u` map the quantity to the coordinate in which `tol` is absolute.
fn scan_and_refine(
    points: &[f64],
    tol: f64,
    to_u: impl Fn(f64) -> f64,
    from_u: impl Fn(f64) -> f64,
    trial: &mut impl FnMut(f64) -> Result<Fate, Error>,
) -> Result<Scanned, Error> {
    let mut scanned: Vec<(f64, Fate)> = Vec::with_capacity(points.len());
    for &v in points {
        let f = trial(v)?;
        if f.outcome == Outcome::Undecided {
            return Err(Error::Invalid(format!(
                "a trial at {v} did not settle within {SETTLE_HORIZON} time units or {SETTLE_MAX_STEPS} solver steps, whichever came first, so its fate is undecided"
            )));
        }
        scanned.push((v, f));
    }
    let mut changes = vec![];
    let mut ends = vec![];
    for w in scanned.windows(2) {
        let ((v0, f0), (v1, f1)) = (w[0], w[1]);
        if f0.outcome == f1.outcome {
            continue;
        }
        let mut tu = |u: f64| trial(from_u(u));
        let ((a, fa), (b, fb)) = refine((to_u(v0), f0), (to_u(v1), f1), tol, &from_u, &mut tu)?;
        // The ends as the quantity itself: the exact points that were simulated.
        let (qa, qb) = (
            if a == to_u(v0) { v0 } else { from_u(a) },
            if b == to_u(v1) { v1 } else { from_u(b) },
        );
        changes.push(FateChange {
            bracket: (qa, qb),
            below: fa.outcome,
            above: fb.outcome,
        });
        ends.push(
            if fa.saddle_exit.map(|e| e.1) >= fb.saddle_exit.map(|e| e.1) {
                fa
            } else {
                fb
            },
        );
    }
    let scan = scanned.iter().map(|(v, f)| (*v, f.outcome)).collect();
    Ok(Scanned {
        scan,
        changes,
        ends,
    })
}

/// The critical shock of a parameter set.
#[derive(Debug, Clone)]
pub struct CriticalShock<const N: usize> {
    /// f*: the smallest shock after which the network does not recover (the middle of
    /// [`CriticalShock::bracket`]); `None` when the scan found no shock below 1 that tips it,
    /// or when the network is down ([`CriticalShock::down`]).
    pub value: Option<f64>,
    /// The bracket `[recovers, collapses]` of f*, both ends simulated.
    pub bracket: Option<(f64, f64)>,
    /// Every change of fate the scan found on [0, 1), in increasing order: the fate need not
    /// be monotone in the shock.
    pub changes: Vec<FateChange>,
    /// The scan: each shock tried and its fate.
    pub scan: Vec<(f64, Outcome)>,
    /// The network has no healthy state at these parameters: it is down whatever the shock,
    /// and nothing was scanned.
    pub down: bool,
    /// The saddle whose stable manifold the shocked state crosses at f*, when the trials near
    /// f* passed one.
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

/// The critical shock f*: the smallest instantaneous reboot fraction (peers and supernodes
/// alike) after which the network does not recover, certified by a bracket of simulated trials
/// no wider than `opts.tol`.
///
/// Shocks `k/scan` (the last one just below 1) are tried, and every change of fate between
/// neighbours is refined; f* is the first change from recovered to collapsed.
///
/// ```
/// use selfheal::analysis::tipping::{critical_shock, TippingOptions};
/// use selfheal::model::{Model, ParamSet, P2p};
/// let p = ParamSet::defaults(P2p.params());
/// let cs = critical_shock(&P2p, p.values(), &TippingOptions::default()).unwrap();
/// let f = cs.value.unwrap();
/// let (lo, hi) = cs.bracket.unwrap();
/// assert!(lo < f && f < hi && hi - lo <= 1e-6);
/// assert!(f > 0.3 && f < 0.6); // the default f* is about 0.38 (docs/tipping-points.md)
/// ```
pub fn critical_shock<M: Model<N>, const N: usize>(
    model: &M,
    p: &[f64],
    opts: &TippingOptions,
) -> Result<CriticalShock<N>, Error>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    opts.validate()?;
    let landscape = Landscape::new(model, p)?;
    critical_shock_on(model, p, landscape, opts)
}

/// [`critical_shock`] on equilibria already found (or, for a continued tipping map, on the
/// healthy state alone): the scan and the refinement.
pub(crate) fn critical_shock_on<M: Model<N>, const N: usize>(
    model: &M,
    p: &[f64],
    landscape: Landscape<N>,
    opts: &TippingOptions,
) -> Result<CriticalShock<N>, Error>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    let mut stats = SolverStats::default();
    let mut trials = 0;
    if !landscape.is_healthy() {
        return Ok(CriticalShock {
            value: None,
            bracket: None,
            changes: vec![],
            scan: vec![],
            down: true,
            saddle: None,
            landscape,
            trials,
            stats,
        });
    }
    let start = landscape.rest_state();
    let sys = System::new(model, p);
    let mut trial = |f: f64| -> Result<Fate, Error> {
        trials += 1;
        let x0 = model.reboot_jump(&start, p, f, f)?;
        fate(&sys, x0, &landscape, &opts.solve, &mut stats)
    };
    let points: Vec<f64> = (0..=opts.scan)
        .map(|k| (k as f64 / opts.scan as f64).min(MAX_FRACTION))
        .collect();
    let Scanned {
        scan,
        changes,
        ends,
    } = scan_and_refine(&points, opts.tol, |u| u, |u| u, &mut trial)?;
    let first = changes
        .iter()
        .position(|c| c.below == Outcome::Recovered && c.above == Outcome::Collapsed);
    let saddle = first
        .and_then(|i| ends[i].saddle_exit)
        .and_then(|(k, _)| landscape.saddles().nth(k).cloned());
    Ok(CriticalShock {
        value: first.map(|i| changes[i].mid()),
        bracket: first.map(|i| changes[i].bracket),
        changes,
        scan,
        down: false,
        saddle,
        landscape,
        trials,
        stats,
    })
}

/// The critical spread of a reboot wave.
#[derive(Debug, Clone)]
pub struct CriticalWindow {
    /// W*: every scanned wave spread over longer than this is absorbed (minutes), the middle
    /// (geometric) of [`CriticalWindow::bracket`]; `None` when even the longest window tried
    /// ([`MAX_WINDOW`]) tips the network.
    pub value: Option<f64>,
    /// The bracket `[tips, absorbed]` of W* (minutes), both ends simulated.
    pub bracket: Option<(f64, f64)>,
    /// Every change of fate the scan found, in increasing window.
    pub changes: Vec<FateChange>,
    /// The scan: each window tried and its fate.
    pub scan: Vec<(f64, Outcome)>,
    /// Number of trials integrated.
    pub trials: usize,
    /// Solver work over all trials.
    pub stats: SolverStats,
}

/// Shortest window tried (minutes): 0.06 s, instantaneous for any network.
pub const MIN_WINDOW: f64 = 1e-3;
/// Longest window tried (minutes): 100 days.
pub const MAX_WINDOW: f64 = 1.44e5;

/// For a reboot fraction `f` whose instantaneous wave tips the network, the critical window
/// W*(f): waves spread over more than W* minutes are absorbed, faster ones tip the network
/// (rate-induced tipping). Windows from [`MIN_WINDOW`] to [`MAX_WINDOW`] are scanned at
/// `opts.scan / 4` (at least 2) points per factor of ten, every change of fate is refined to
/// `opts.tol` relative, and W* is the upper end of the last change from tipping to absorbed.
pub fn critical_window<M: Model<N>, const N: usize>(
    model: &M,
    p: &[f64],
    f: f64,
    opts: &TippingOptions,
) -> Result<CriticalWindow, Error>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    opts.validate()?;
    if !(f.is_finite() && (0.0..1.0).contains(&f)) {
        return Err(Error::OutOfRange {
            name: "shock".into(),
            value: f,
            range: "in [0, 1)".into(),
        });
    }
    let landscape = Landscape::new(model, p)?;
    if !landscape.is_healthy() {
        return Err(Error::NoHealthyState {
            best_service: landscape.rest.service,
        });
    }
    let start = landscape.rest_state();
    let sys = System::new(model, p);
    let mut stats = SolverStats::default();
    let mut trials = 0;
    // The instantaneous wave must tip the network, or no window is critical.
    trials += 1;
    let x0 = model.reboot_jump(&start, p, f, f)?;
    let instant = fate(&sys, x0, &landscape, &opts.solve, &mut stats)?;
    if instant.outcome != Outcome::Collapsed {
        return Err(Error::OutOfRange {
            name: "shock".into(),
            value: f,
            range: format!(
                "large enough that an instantaneous wave tips the network (a wave of {f} is {} even when instantaneous)",
                if instant.outcome == Outcome::Recovered { "absorbed" } else { "undecided" }
            ),
        });
    }
    let eta = -(1.0 - f).ln();
    let mut trial = |w: f64| -> Result<Fate, Error> {
        trials += 1;
        let mut wave = System::new(model, p);
        wave.reboot = Some((eta / w, eta / w));
        let (_, x) = integrate(
            &wave,
            Span::new(0.0, start, w),
            &opts.solve,
            &mut stats,
            &mut |_| false,
        )?;
        let mut fate = fate(&sys, x, &landscape, &opts.solve, &mut stats)?;
        fate.settled_at += w;
        Ok(fate)
    };
    let per_decade = (opts.scan / 4).max(2);
    let decades = (MAX_WINDOW / MIN_WINDOW).log10();
    let n = (decades * per_decade as f64).ceil() as usize;
    let points: Vec<f64> = (0..=n)
        .map(|k| {
            let u = MIN_WINDOW.ln() + (MAX_WINDOW / MIN_WINDOW).ln() * k as f64 / n as f64;
            u.exp().clamp(MIN_WINDOW, MAX_WINDOW)
        })
        .collect();
    let Scanned {
        scan, mut changes, ..
    } = scan_and_refine(&points, opts.tol, f64::ln, f64::exp, &mut trial)?;
    // Absorbed already at the shortest window although the instantaneous wave tips: the change
    // lies in (0, MIN_WINDOW), bracketed by the instantaneous trial and the first scanned one.
    if scan.first().is_some_and(|s| s.1 == Outcome::Recovered) {
        changes.insert(
            0,
            FateChange {
                bracket: (0.0, MIN_WINDOW),
                below: Outcome::Collapsed,
                above: Outcome::Recovered,
            },
        );
    }
    let absorbed_at_end = scan.last().is_some_and(|s| s.1 == Outcome::Recovered);
    let last = changes
        .iter()
        .rposition(|c| c.below == Outcome::Collapsed && c.above == Outcome::Recovered)
        .filter(|_| absorbed_at_end);
    Ok(CriticalWindow {
        value: last.map(|i| {
            let (a, b) = changes[i].bracket;
            if a > 0.0 {
                (a * b).sqrt()
            } else {
                0.5 * b
            }
        }),
        bracket: last.map(|i| changes[i].bracket),
        changes,
        scan,
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
    /// The rescuing value closest to the current one found by the search (the rescuing end of
    /// [`Rescue::bracket`]); `None` when none in the searched range.
    pub value: Option<f64>,
    /// The bracket `(fails, rescues)`, both ends simulated (not ordered: `fails` lies on the
    /// side of the current value).
    pub bracket: Option<(f64, f64)>,
    /// The collapsed state the rescue starts from.
    pub collapsed: SVector<f64, N>,
    /// Whether the network had no healthy state at the current value (the rescue starts from
    /// the best stable state).
    pub down: bool,
    /// Number of trials integrated.
    pub trials: usize,
    /// Solver work over all trials.
    pub stats: SolverStats,
}

/// Most doublings (or halvings) the rescue search takes in each direction.
pub const RESCUE_STEPS: usize = 60;

/// From the collapsed state (the stable equilibrium that is not healthy and serves least; when
/// the network is down, the state it rests in), the value of parameter `k` closest to its
/// current value that, set as a step, brings the network back to the healthy state of the new
/// parameters. The search tries the current value, then doubles (to the parameter's upper
/// bound or 10⁶ times its value), then halves (down to 10⁻⁹ times it); the first value that
/// rescues is refined against the last that did not, to `opts.tol` relative. A value closer
/// than one factor of two to a failing one can be missed.
pub fn rescue<M: Model<N>, const N: usize>(
    model: &M,
    p: &[f64],
    k: usize,
    opts: &TippingOptions,
) -> Result<Rescue<N>, Error>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    opts.validate()?;
    let spec = model
        .params()
        .get(k)
        .ok_or_else(|| Error::Invalid(format!("parameter index {k} is out of range")))?;
    let landscape = Landscape::new(model, p)?;
    let down = !landscape.is_healthy();
    let collapsed = if down {
        landscape.rest_state()
    } else {
        let healthy = landscape.rest_state();
        landscape
            .equilibria
            .iter()
            .filter(|e| e.kind == Kind::Stable && !same_point(&e.x, &healthy))
            .min_by(|a, b| {
                let s = |x: &SVector<f64, N>| model.service_level(x, p).unwrap_or(f64::INFINITY);
                s(&a.x).total_cmp(&s(&b.x))
            })
            .map(|e| e.x)
            .ok_or_else(|| {
                Error::Invalid(
                    "no collapsed state to rescue: with these parameters the only stable state is the healthy one"
                        .into(),
                )
            })?
    };
    let v0 = p[k];
    let mut stats = SolverStats::default();
    let mut trials = 0;
    let mut trial = |v: f64| -> Result<Fate, Error> {
        trials += 1;
        let mut q = p.to_vec();
        q[k] = v;
        let l = match Landscape::new(model, &q) {
            Ok(l) => l,
            // No stable state at this value: certainly no rescue.
            Err(Error::NoStableEquilibrium) => {
                return Ok(Fate {
                    outcome: Outcome::Collapsed,
                    settled_at: 0.0,
                    saddle_exit: None,
                })
            }
            Err(e) => return Err(e),
        };
        let sys = System::new(model, &q);
        fate(&sys, collapsed, &l, &opts.solve, &mut stats)
    };
    let at_v0 = trial(v0)?;
    if at_v0.outcome != Outcome::Collapsed {
        return Err(Error::Invalid(format!(
            "the collapsed state is not collapsed at {} = {v0}: it {}",
            spec.name,
            at_v0.outcome.name()
        )));
    }
    let admissible = |v: f64| spec.admits(v);
    // Search outwards from v0 in each direction for a value that rescues.
    let mut found = None;
    'directions: for up in [true, false] {
        let mut last = (v0, at_v0);
        let mut v = v0;
        for _ in 0..RESCUE_STEPS {
            v = match (up, v > 0.0) {
                (true, true) => v * 2.0,
                (true, false) => 1e-9_f64.max(v.abs() * 2.0),
                (false, _) => v / 2.0,
            };
            if !admissible(v) || (up && v > 1e6 * v0.abs().max(1.0)) || (!up && v < v0.abs() * 1e-9)
            {
                break;
            }
            let f = trial(v)?;
            match f.outcome {
                Outcome::Recovered => {
                    found = Some((last, (v, f)));
                    break 'directions;
                }
                Outcome::Collapsed => last = (v, f),
                Outcome::Undecided => {
                    return Err(Error::Invalid(format!(
                        "with {} = {v} the collapsed state did not settle within {SETTLE_HORIZON} time units or {SETTLE_MAX_STEPS} solver steps, whichever came first, so the rescue is undecided",
                        spec.name
                    )))
                }
            }
        }
    }
    let Some(((fails, f_fails), (rescues, f_rescues))) = found else {
        return Ok(Rescue {
            param: spec.name.to_string(),
            from_value: v0,
            value: None,
            bracket: None,
            collapsed,
            down,
            trials,
            stats,
        });
    };
    // Refine in ln v when both ends are positive (relative tolerance), else linearly.
    let log = fails > 0.0 && rescues > 0.0;
    let (to_u, from_u): (Coordinate, Coordinate) = if log {
        (f64::ln, f64::exp)
    } else {
        (|v| v, |u| u)
    };
    let tol = if log {
        opts.tol
    } else {
        opts.tol * rescues.abs().max(fails.abs()).max(f64::MIN_POSITIVE)
    };
    let (lo, hi, flip) = if fails < rescues {
        ((fails, f_fails), (rescues, f_rescues), false)
    } else {
        ((rescues, f_rescues), (fails, f_fails), true)
    };
    let mut tu = |u: f64| trial(from_u(u));
    let ((a, _), (b, _)) = refine(
        (to_u(lo.0), lo.1),
        (to_u(hi.0), hi.1),
        tol,
        &from_u,
        &mut tu,
    )?;
    let exact = |u: f64, v: f64| if u == to_u(v) { v } else { from_u(u) };
    let (a, b) = (exact(a, lo.0), exact(b, hi.0));
    let (f, r) = if flip { (b, a) } else { (a, b) };
    Ok(Rescue {
        param: spec.name.to_string(),
        from_value: v0,
        value: Some(r),
        bracket: Some((f, r)),
        collapsed,
        down,
        trials,
        stats,
    })
}

impl<const N: usize> Rescue<N> {
    /// The rescuing value moved beyond the threshold by `factor` (> 1) in the rescuing
    /// direction: `value × factor` when rescuing values lie above the failing ones, else
    /// `value / factor`. `None` without a rescuing value.
    pub fn with_margin(&self, factor: f64) -> Option<f64> {
        let v = self.value?;
        let (fails, rescues) = self.bracket.unwrap_or((v, v));
        Some(if rescues >= fails {
            v * factor
        } else {
            v / factor
        })
    }

    /// Minutes from the `step` until peers are back to 95 % of the healthy state, with the
    /// network in [`Rescue::collapsed`] when the step is made (the scenario's shock and
    /// interventions are replaced by the step); `None` if not within `horizon` minutes after it.
    pub fn recovery_time<M: Model<N>>(
        &self,
        model: &M,
        sc: &crate::scenario::Scenario,
        step: crate::scenario::Intervention,
        horizon: f64,
        solve: SolveOptions,
    ) -> Result<Option<f64>, Error>
    where
        Const<N>: DimMin<Const<N>, Output = Const<N>>,
    {
        let mut run = sc.clone();
        run.shock = None;
        run.initial = Some(self.collapsed.iter().copied().collect());
        let at = step.at;
        run.interventions = vec![step];
        run.t_end = at + horizon;
        let sim = crate::simulate::simulate(
            model,
            &run,
            &crate::simulate::SimOptions {
                solve,
                ..Default::default()
            },
        )?;
        Ok(sim.summary.recovery_time.map(|t| t - at))
    }
}

/// A slice of the healthy basin's boundary: for each value of state `i` in `along`, the value of
/// state `j` (searched geometrically in `[lo, hi]`, to 1e-4 relative) at which the fate flips,
/// with every other state held at `base`. Points where the fate does not flip inside the
/// search interval are left out.
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
            if !model.feasible(&x, p) {
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
