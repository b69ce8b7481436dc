//! Equilibria, one layer below simulation and the analyses: damped and deflated Newton on the
//! exact Jacobian, every equilibrium (from the model's own candidates or quasi-random starts),
//! stability and classification from eigenvalues, the test that a trajectory has settled,
//! integrating to rest, the service level and the healthy state. [`crate::simulate`] uses it
//! to measure a run against the healthy state; [`crate::analysis`] builds on it and re-exports
//! it.

use crate::error::{Error, SolverFailure};
use crate::model::{Model, System};
use crate::solve::{integrate, Method, SolveOptions, SolverStats, Span};
use nalgebra::{Complex, SMatrix, SVector};
use nalgebra::{Const, DimMin};
use serde::Serialize;

/// Weights for scaled norms: each component measured relative to its own size, with a floor
/// far below the smallest population of interest (supernodes reach ~3e-8 when collapsed).
#[inline]
fn weights<const N: usize>(x: &SVector<f64, N>, rel: f64, floor: f64) -> SVector<f64, N> {
    x.map(|v| floor + rel * v.abs())
}

#[inline]
fn scaled_norm<const N: usize>(v: &SVector<f64, N>, w: &SVector<f64, N>) -> f64 {
    v.component_div(w).amax()
}

/// A converged Newton solve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NewtonResult<const N: usize> {
    /// The zero of the right-hand side.
    pub x: SVector<f64, N>,
    /// Max-norm of `f(x)` at the solution.
    pub residual: f64,
    /// Iterations used.
    pub iterations: usize,
}

/// Damped Newton for `f(x) = 0` from `x0`, with the exact Jacobian and LU, keeping the iterate
/// in the feasible region. Converges when every component's update is below
/// `1e-12·|x_i| + 1e-18` and the step was a full Newton step or the residual meets
/// [`ROOT_TOL`] (a step shortened to stay feasible says nothing about the distance to a root).
/// A step that leaves the region by less than that tolerance (a population that the solve's
/// rounding takes just below zero) is projected back ([`Model::project`]) instead of shortened.
pub fn newton<M: Model<N>, const N: usize>(
    sys: &System<'_, M, N>,
    x0: SVector<f64, N>,
    max_iter: usize,
) -> Result<NewtonResult<N>, Error>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    let mut x = x0;
    let mut fx = sys.f(0.0, &x);
    for it in 1..=max_iter {
        let j = sys.jacobian(0.0, &x);
        let dx = j
            .lu()
            .solve(&(-fx))
            .ok_or_else(|| Error::Newton(format!("singular Jacobian at {:?}", x.as_slice())))?;
        let w = weights(&x, 1.0, 1e-15);
        let fnorm = scaled_norm(&fx, &w);
        // Backtrack: stay feasible and do not let the scaled residual grow much.
        let mut lambda = 1.0;
        let mut accepted = None;
        let tol = weights(&x, 1e-12, 1e-18);
        for _ in 0..40 {
            let mut xn = x + dx * lambda;
            if !sys.model.feasible(&xn, sys.p) {
                if let Some(pr) = sys.model.project(&xn, sys.p) {
                    if scaled_norm(&(pr - xn), &tol) <= 1.0 {
                        xn = pr;
                    }
                }
            }
            if sys.model.feasible(&xn, sys.p) {
                let fnew = sys.f(0.0, &xn);
                if fnew.iter().all(|v| v.is_finite())
                    && scaled_norm(&fnew, &weights(&xn, 1.0, 1e-15))
                        <= fnorm * (1.0 - 1e-4 * lambda) + 1e-300
                {
                    accepted = Some((xn, fnew, lambda));
                    break;
                }
                if lambda < 1e-3 && fnew.iter().all(|v| v.is_finite()) {
                    // Close to a root the residual test is at rounding level; take the step.
                    accepted = Some((xn, fnew, lambda));
                    break;
                }
            }
            lambda *= 0.5;
        }
        let Some((xn, fnew, lambda)) = accepted else {
            return Err(Error::Newton(format!(
                "no feasible descent step from {:?}",
                x.as_slice()
            )));
        };
        let step = xn - x;
        x = xn;
        fx = fnew;
        if scaled_norm(&step, &weights(&x, 1e-12, 1e-18)) <= 1.0
            && (lambda == 1.0 || is_root(sys, &x))
        {
            return Ok(NewtonResult {
                x,
                residual: fx.amax(),
                iterations: it,
            });
        }
    }
    Err(Error::Newton(format!(
        "{max_iter} iterations from {:?} did not converge (reached {:?})",
        x0.as_slice(),
        x.as_slice()
    )))
}

/// Stability of an equilibrium from its Jacobian's eigenvalues.
#[derive(Debug, Clone, PartialEq)]
pub struct Stability {
    /// Eigenvalues (complex), unordered.
    pub eigenvalues: Vec<Complex<f64>>,
    /// Largest real part.
    pub max_real: f64,
    /// Number of eigenvalues with positive real part.
    pub unstable_dims: usize,
}

impl Stability {
    /// Eigenvalues of `j` (nalgebra's Schur decomposition, bounded: [`crate::linalg`]). When
    /// they cannot be computed (a non-finite entry, no convergence) the list is empty and
    /// `max_real` is NaN: neither stable nor anything else.
    pub fn of<const N: usize>(j: &SMatrix<f64, N, N>) -> Self {
        let d = nalgebra::DMatrix::from_column_slice(N, N, j.as_slice());
        let Some(eigenvalues) = crate::linalg::eigenvalues(&d) else {
            return Self {
                eigenvalues: vec![],
                max_real: f64::NAN,
                unstable_dims: 0,
            };
        };
        let max_real = eigenvalues
            .iter()
            .map(|l| l.re)
            .fold(f64::NEG_INFINITY, f64::max);
        let unstable_dims = eigenvalues.iter().filter(|l| l.re > 0.0).count();
        Self {
            eigenvalues,
            max_real,
            unstable_dims,
        }
    }

    /// Every real part is negative.
    pub fn is_stable(&self) -> bool {
        self.max_real < 0.0
    }
}

/// A state that has provably stopped moving away from a stable equilibrium.
#[derive(Debug, Clone, PartialEq)]
pub struct Settled<const N: usize> {
    /// The equilibrium.
    pub equilibrium: SVector<f64, N>,
    /// Its stability.
    pub stability: Stability,
}

/// Relative distance (per component) within which a state may count as settled on an
/// equilibrium.
pub const SETTLE_RADIUS: f64 = 0.01;

/// Whether `x` has settled: Newton from `x` reaches a stable equilibrium `x*` that is within
/// [`SETTLE_RADIUS`] of `x` in every component (relative, floor 1e-14), and there the linear part of the
/// flow dominates — `|f(x) − J(x*)(x − x*)| ≤ 0.1 |J(x*)(x − x*)|` componentwise-scaled — so the
/// state decays onto `x*` at the rate of the linearisation instead of drifting away.
pub fn settled<M: Model<N>, const N: usize>(
    sys: &System<'_, M, N>,
    x: &SVector<f64, N>,
) -> Option<Settled<N>>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    // Cheap pre-test: one Newton step must already be small.
    let (fx, j) = sys.f_and_jacobian(0.0, x);
    let dx = j.lu().solve(&(-fx))?;
    let w = weights(x, SETTLE_RADIUS, 1e-14);
    if scaled_norm(&dx, &w) > 1.0 {
        return None;
    }
    let root = newton(sys, *x, 30).ok()?;
    let e = x - root.x;
    if scaled_norm(&e, &weights(&root.x, SETTLE_RADIUS, 1e-14)) > 1.0 {
        return None;
    }
    let a = sys.jacobian(0.0, &root.x);
    let stability = Stability::of(&a);
    if !stability.is_stable() || !linear_part_dominates(&fx, &a, &e, &root.x) {
        return None;
    }
    Some(Settled {
        equilibrium: root.x,
        stability,
    })
}

/// The settle test's last condition: at the offset `e = x − x*` from the equilibrium `x*`,
/// whose Jacobian is `a`, the flow `fx = f(x)` is its linear part `a·e` up to a tenth of it
/// componentwise, or up to the rounding of `f` itself.
fn linear_part_dominates<const N: usize>(
    fx: &SVector<f64, N>,
    a: &SMatrix<f64, N, N>,
    e: &SVector<f64, N>,
    root: &SVector<f64, N>,
) -> bool {
    let lin = a * e;
    let wl = lin.map(|v| v.abs()).add_scalar(1e-300);
    let remainder = fx - lin;
    // Below the rounding of f itself the remainder says nothing: the floor scales with the
    // size of the flows the Jacobian moves at this state (rates of order 100 per time unit
    // round at 1e-14), and is never below 1e-15.
    let flows = (a.abs() * root.abs()).amax();
    let floor = (64.0 * f64::EPSILON * flows).max(1e-15);
    remainder.abs().component_div(&wl).amax() <= 0.1 || remainder.amax() <= floor
}

/// A stable state a trajectory is expected to settle on, checked once: it is an equilibrium
/// (one Newton step from it is below 1e-10 relative) and its Jacobian is kept for the settle
/// test.
struct Known<const N: usize> {
    x: SVector<f64, N>,
    jacobian: SMatrix<f64, N, N>,
    /// Within [`SETTLE_RADIUS`] (relative) of `x`.
    radius: SVector<f64, N>,
}

impl<const N: usize> Known<N>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    fn new<M: Model<N>>(sys: &System<'_, M, N>, x: &SVector<f64, N>) -> Option<Self> {
        let (fx, jacobian) = sys.f_and_jacobian(0.0, x);
        let dx = jacobian.lu().solve(&(-fx))?;
        (scaled_norm(&dx, &weights(x, 1e-10, 1e-14)) <= 1.0).then(|| Self {
            x: *x,
            jacobian,
            radius: weights(x, SETTLE_RADIUS, 1e-14),
        })
    }

    /// [`settled`] on this state without Newton: `y` lies within [`SETTLE_RADIUS`] of it and
    /// the linear part of the flow dominates there (the stability is computed only then, and
    /// must hold).
    fn settled<M: Model<N>>(
        &self,
        sys: &System<'_, M, N>,
        y: &SVector<f64, N>,
    ) -> Option<Settled<N>> {
        let e = y - self.x;
        if scaled_norm(&e, &self.radius) > 1.0 {
            return None;
        }
        let fy = sys.f(0.0, y);
        if !linear_part_dominates(&fy, &self.jacobian, &e, &self.x) {
            return None;
        }
        let stability = Stability::of(&self.jacobian);
        stability.is_stable().then_some(Settled {
            equilibrium: self.x,
            stability,
        })
    }
}

/// Most steps the settle phase takes before calling a state undecided (a trajectory on a
/// limit cycle never settles).
pub const SETTLE_MAX_STEPS: usize = 20_000;

/// Integrates from `x0` until the state has [`settled`], at most up to `t0 + horizon` and
/// [`SETTLE_MAX_STEPS`] steps; `None` when it has not settled by then.
/// Returns the settled equilibrium, the time it was reached, and the solver statistics.
pub fn integrate_to_rest<M: Model<N>, const N: usize>(
    sys: &System<'_, M, N>,
    t0: f64,
    x0: SVector<f64, N>,
    horizon: f64,
    opts: &SolveOptions,
    stats: &mut SolverStats,
    on_step: impl FnMut(&crate::solve::Segment<N>),
) -> Result<Option<(Settled<N>, f64)>, Error>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    integrate_to_rest_among(sys, t0, x0, horizon, &[], opts, stats, on_step)
}

/// Steps between two settle checks of [`integrate_to_rest_among`] away from the stable states
/// it knows.
pub const SPARSE_SETTLE_CHECK: usize = 8;

/// [`integrate_to_rest`] for a trajectory expected to end on one of the stable states `known`:
/// within [`SETTLE_RADIUS`] of one of them, after every step, the settle test's conditions are
/// checked against that state directly (no Newton: the known state, checked once to be an
/// equilibrium, is the root, and its Jacobian is computed once); the full settle test runs
/// after every [`SPARSE_SETTLE_CHECK`]-th step, after a step at least twice as long as the one
/// before, and at the end (it costs about as much as a step). A state that settles on a known
/// state therefore settles at the first step that passes the test; one that settles elsewhere
/// a few steps later, on the same equilibrium (a settled state keeps approaching it). A known
/// state that fails its check is not used; with `known` empty every step is tested in full.
#[allow(clippy::too_many_arguments)]
pub fn integrate_to_rest_among<M: Model<N>, const N: usize>(
    sys: &System<'_, M, N>,
    t0: f64,
    x0: SVector<f64, N>,
    horizon: f64,
    known: &[SVector<f64, N>],
    opts: &SolveOptions,
    stats: &mut SolverStats,
    mut on_step: impl FnMut(&crate::solve::Segment<N>),
) -> Result<Option<(Settled<N>, f64)>, Error>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    let mut found = None;
    if let Some(s) = settled(sys, &x0) {
        return Ok(Some((s, t0)));
    }
    let opts = SolveOptions {
        max_steps: opts.max_steps.min(SETTLE_MAX_STEPS),
        ..*opts
    };
    let known: Vec<Known<N>> = known.iter().filter_map(|k| Known::new(sys, k)).collect();
    let (mut unchecked, mut last_h) = (0usize, f64::INFINITY);
    let mut last = (t0, x0);
    let run = integrate(
        sys,
        Span::new(t0, x0, t0 + horizon),
        &opts,
        stats,
        &mut |seg| {
            on_step(seg);
            last = (seg.t1, seg.y1);
            let h = seg.t1 - seg.t0;
            unchecked += 1;
            // Also after a step at least twice the one before: the solver finds the state
            // quiet, and at rest its steps grow so fast that the horizon is a few steps away.
            let due = known.is_empty() || unchecked >= SPARSE_SETTLE_CHECK || h >= 2.0 * last_h;
            last_h = h;
            if let Some(s) = known.iter().find_map(|k| k.settled(sys, &seg.y1)) {
                found = Some((s, seg.t1));
                return true;
            }
            if !due {
                return false;
            }
            unchecked = 0;
            if let Some(s) = settled(sys, &seg.y1) {
                found = Some((s, seg.t1));
                true
            } else {
                false
            }
        },
    );
    match run {
        // A state that keeps moving (e.g. on a limit cycle) is undecided, not an error.
        Err(Error::Solver {
            reason: SolverFailure::TooManySteps(_),
            ..
        }) => Ok(None),
        Err(e) => Err(e),
        Ok(_) if found.is_none() && unchecked > 0 => {
            // The horizon came before the next check: test the last state.
            Ok(settled(sys, &last.1).map(|s| (s, last.0)))
        }
        Ok(_) => Ok(found),
    }
}

/// How far ahead (minutes) the healthy-state search and the outcome test integrate before
/// declaring a state undecided: 1000 days.
pub const SETTLE_HORIZON: f64 = 1.44e6;

/// Service level a stable state needs to count as healthy (docs/model.md).
pub const HEALTHY_SERVICE: f64 = 0.5;

/// Where an undisturbed network rests: the healthy state, or when there is none the stable
/// state that serves best.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rest {
    /// Index of the state among the equilibria it was chosen from.
    pub index: usize,
    /// Its service level ([`Model::service_level`]).
    pub service: f64,
    /// Whether it serves at least [`HEALTHY_SERVICE`]: `false` means the network has no
    /// healthy state and is down at these parameters whatever happens.
    pub healthy: bool,
}

/// Picks the healthy state among `equilibria`: the stable one with the highest service level,
/// provided it is at least [`HEALTHY_SERVICE`] (ties: the most of the watched state). When no
/// stable state serves that well the best stable state is returned with `healthy = false`.
///
/// Fails when no equilibrium is stable, and when the model defines no service level (the
/// library does not guess which state is healthy).
pub fn choose_rest<M: Model<N>, const N: usize>(
    model: &M,
    p: &[f64],
    equilibria: &[Equilibrium<N>],
) -> Result<Rest, Error> {
    let w = model.watched();
    let mut best: Option<Rest> = None;
    for (index, e) in equilibria.iter().enumerate() {
        if e.kind != Kind::Stable {
            continue;
        }
        let service = model.service_level(&e.x, p).ok_or_else(|| {
            Error::Unsupported(format!(
                "model `{}` defines no service level, so no state can be called healthy (implement Model::service_level)",
                model.name()
            ))
        })?;
        let better = match best {
            None => true,
            Some(b) => {
                service > b.service || (service == b.service && e.x[w] > equilibria[b.index].x[w])
            }
        };
        if better {
            best = Some(Rest {
                index,
                service,
                healthy: service >= model.healthy_level(),
            });
        }
    }
    best.ok_or(Error::NoStableEquilibrium)
}

/// Where the network rests at one parameter set: the healthy state, or when there is none the
/// stable state that serves best.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RestState<const N: usize> {
    /// The state.
    pub x: SVector<f64, N>,
    /// Its service level.
    pub service: f64,
    /// Whether it is healthy (serves at least [`HEALTHY_SERVICE`]); `false`: the network is
    /// down at these parameters.
    pub healthy: bool,
}

/// The state the network rests in at `p` ([`choose_rest`] among [`all_equilibria`]).
pub fn rest_state<M: Model<N>, const N: usize>(model: &M, p: &[f64]) -> Result<RestState<N>, Error>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    let eq = all_equilibria(model, p)?;
    let rest = choose_rest(model, p, &eq)?;
    Ok(RestState {
        x: eq[rest.index].x,
        service: rest.service,
        healthy: rest.healthy,
    })
}

/// The healthy state: the stable equilibrium with the highest service level, provided it is at
/// least [`HEALTHY_SERVICE`], among [`all_equilibria`]. Fails with
/// [`Error::NoHealthyState`] when the network is down at these parameters.
///
/// ```
/// use selfheal::{analysis::healthy_state, model::{Model, ParamSet, P2p}};
/// let p = ParamSet::defaults(P2p.params());
/// let h = healthy_state(&P2p, p.values()).unwrap();
/// assert!(h.equilibrium[0] > 0.3 && h.stability.is_stable());
/// ```
pub fn healthy_state<M: Model<N>, const N: usize>(model: &M, p: &[f64]) -> Result<Settled<N>, Error>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    let eq = all_equilibria(model, p)?;
    let rest = choose_rest(model, p, &eq)?;
    if !rest.healthy {
        return Err(Error::NoHealthyState {
            best_service: rest.service,
        });
    }
    let e = &eq[rest.index];
    Ok(Settled {
        equilibrium: e.x,
        stability: e.stability.clone(),
    })
}

/// The healthy state at `p` continued from `from`, a healthy state at nearby parameters: Newton
/// from `from` (at most `max_iter` iterations), accepted only at a feasible root ([`ROOT_TOL`])
/// that is stable and serves at least the model's healthy level. `None` when any of that fails
/// (Newton crossed a fold, or reached another state): the caller then runs the full search.
///
/// It does not see a second healthy state that nearby parameters lack; callers that rely on it
/// start from a point whose full search found exactly one ([`healthy_count`]).
pub fn healthy_from<M: Model<N>, const N: usize>(
    model: &M,
    p: &[f64],
    from: &SVector<f64, N>,
    max_iter: usize,
) -> Option<(Equilibrium<N>, f64)>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    let sys = System::new(model, p);
    let x = newton(&sys, *from, max_iter).ok()?.x;
    if !(model.feasible(&x, p) && is_root(&sys, &x)) {
        return None;
    }
    let e = Equilibrium::classify(&sys, x);
    if e.kind != Kind::Stable {
        return None;
    }
    let service = model.service_level(&x, p)?;
    (service >= model.healthy_level()).then_some((e, service))
}

/// How many of `equilibria` are stable and serve at least the model's healthy level.
pub fn healthy_count<M: Model<N>, const N: usize>(
    model: &M,
    p: &[f64],
    equilibria: &[Equilibrium<N>],
) -> usize {
    let level = model.healthy_level();
    equilibria
        .iter()
        .filter(|e| {
            e.kind == Kind::Stable && model.service_level(&e.x, p).is_some_and(|s| s >= level)
        })
        .count()
}

/// How an equilibrium behaves, from its eigenvalues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Every eigenvalue has negative real part.
    Stable,
    /// Some, not all, eigenvalues have positive real part (`unstable_dims` of them).
    Saddle,
    /// Every eigenvalue has positive real part.
    Unstable,
    /// An eigenvalue sits on the imaginary axis (to rounding): stability is undecided.
    NonHyperbolic,
}

/// An equilibrium with its residual and stability.
#[derive(Debug, Clone, PartialEq)]
pub struct Equilibrium<const N: usize> {
    /// The state.
    pub x: SVector<f64, N>,
    /// Max-norm of `f(x)`.
    pub residual: f64,
    /// Eigenvalues and their summary.
    pub stability: Stability,
    /// Classification.
    pub kind: Kind,
    /// Whether the slowest dynamics rotate (a complex leading eigenvalue pair): focus, else node.
    pub focus: bool,
}

impl<const N: usize> Equilibrium<N> {
    /// Classifies a converged root.
    pub fn classify<M: Model<N>>(sys: &System<'_, M, N>, x: SVector<f64, N>) -> Self {
        let j = sys.jacobian(0.0, &x);
        let stability = Stability::of(&j);
        let scale = stability
            .eigenvalues
            .iter()
            .map(|l| l.norm())
            .fold(0.0, f64::max);
        // An eigenvalue is zero when its real part is within a thousand roundings of the
        // spectrum's size (the eigenvalues of a matrix are computed to about ε·‖J‖): a stiff
        // but stable node (−7.6e-3 beside −1e10) is not called non-hyperbolic.
        let zero = 1e3 * f64::EPSILON * scale.max(1e-300);
        // No eigenvalues (they could not be computed): stability is undecided.
        let kind = if stability.eigenvalues.is_empty()
            || stability.eigenvalues.iter().any(|l| l.re.abs() <= zero)
        {
            Kind::NonHyperbolic
        } else if stability.unstable_dims == 0 {
            Kind::Stable
        } else if stability.unstable_dims == N {
            Kind::Unstable
        } else {
            Kind::Saddle
        };
        // The leading eigenvalue: largest real part.
        let lead = stability
            .eigenvalues
            .iter()
            .copied()
            .max_by(|a, b| a.re.total_cmp(&b.re));
        let focus = lead.is_some_and(|l| l.im.abs() > 1e-9 * l.norm());
        Self {
            residual: sys.f(0.0, &x).amax(),
            x,
            stability,
            kind,
            focus,
        }
    }

    /// `stable node`, `saddle (1 unstable)`, `unstable focus`, ….
    pub fn describe(&self) -> String {
        let shape = if self.focus { "focus" } else { "node" };
        match self.kind {
            Kind::Stable => format!("stable {shape}"),
            Kind::Unstable => format!("unstable {shape}"),
            Kind::Saddle => format!("saddle ({} unstable)", self.stability.unstable_dims),
            Kind::NonHyperbolic => "non-hyperbolic".into(),
        }
    }
}

/// Number of quasi-random starts of the equilibrium search.
pub const SEARCH_STARTS: usize = 96;

/// The `k`-th point of the Halton sequence in base `b`.
fn halton(mut k: usize, b: usize) -> f64 {
    let (mut f, mut r) = (1.0, 0.0);
    while k > 0 {
        f /= b as f64;
        r += f * (k % b) as f64;
        k /= b;
    }
    r
}

/// Halvings of a deflated Newton step before the start is given up: a step that must shrink
/// by more than 2^50 to stay feasible points far out of the region, where deflation has
/// flung the iterate (its denominator near zero), not towards a root. (Ten halvings make the
/// search 1.7× faster at the defaults but lose roots that random parameter sets with a zero
/// rate have: 3 more of 2000 sets in the comparison of docs/numerics.md.)
const DEFLATED_HALVINGS: usize = 50;

/// One deflated Newton solve: Newton on `m(x)·f(x)` with `m = Π_k (1/d_k² + 1)`, `d_k` the
/// scaled distance to known root `k`, so that known roots repel the iteration.
fn deflated_newton<M: Model<N>, const N: usize>(
    sys: &System<'_, M, N>,
    x0: SVector<f64, N>,
    known: &[SVector<f64, N>],
) -> Option<SVector<f64, N>>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    let mut x = x0;
    for _ in 0..30 {
        let (fx, j) = sys.f_and_jacobian(0.0, &x);
        if !fx.iter().all(|v| v.is_finite()) {
            return None;
        }
        let u = j.lu().solve(&(-fx))?;
        // ∇ ln m = Σ_k −2 (x − r_k)/w_k² / (d_k² (1 + d_k²)).
        let mut grad = SVector::<f64, N>::zeros();
        for r in known {
            let w = r.map(|v| v.abs() + 1e-12);
            let e = (x - r).component_div(&w);
            let d2 = e.norm_squared();
            if d2 == 0.0 {
                return None;
            }
            grad -= e.component_div(&w) * (2.0 / (d2 * (1.0 + d2)));
        }
        let denom = 1.0 - grad.dot(&u);
        let step = if denom.abs() > 1e-12 { u / denom } else { u };
        // Stay feasible: shorten the step until the new point is inside the region.
        let mut lambda = 1.0;
        let mut next = None;
        for _ in 0..DEFLATED_HALVINGS {
            let xn = x + step * lambda;
            if sys.model.feasible(&xn, sys.p) {
                next = Some(xn);
                break;
            }
            lambda *= 0.5;
        }
        let xn = next?;
        let moved = scaled_norm(&(xn - x), &weights(&xn, 1e-10, 1e-16));
        x = xn;
        if moved <= 1.0 {
            // A step shortened to stay feasible that hardly moves has stalled against the
            // region's edge: not a root.
            return (lambda == 1.0).then_some(x);
        }
    }
    None
}

/// Every equilibrium of the model in its feasible region that the search finds: from the
/// model's own candidates where it gives them ([`Model::equilibrium_candidates`]; the reference
/// model's scan in its utilisation), else by deflated Newton from quasi-random (Halton) starts
/// spread over the model's [`Model::search_box`], from its nominal state and from where the
/// flow comes to rest from there and from its probe states; each root polished by plain Newton
/// (exact Jacobian, LU), kept only if its residual meets [`ROOT_TOL`], deduplicated,
/// classified, and sorted with the most of the watched state (peers) first.
///
/// ```
/// use selfheal::equilibria::{all_equilibria, Kind};
/// use selfheal::model::{Model, ParamSet, P2p};
/// let p = ParamSet::defaults(P2p.params());
/// let eq = all_equilibria(&P2p, p.values()).unwrap();
/// let kinds: Vec<Kind> = eq.iter().map(|e| e.kind).collect();
/// assert_eq!(kinds, [Kind::Stable, Kind::Saddle, Kind::Stable]);
/// assert!(eq[2].x[0] + eq[2].x[1] < 0.01); // collapsed: under 1 % of users online
/// ```
pub fn all_equilibria<M: Model<N>, const N: usize>(
    model: &M,
    p: &[f64],
) -> Result<Vec<Equilibrium<N>>, Error>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    model.validate(p)?;
    let sys = System::new(model, p);
    Ok(match model.equilibrium_candidates(p) {
        Some(candidates) => search_from(&sys, candidates, false),
        None => search_from(&sys, generic_starts(&sys, SEARCH_STARTS), true),
    })
}

/// The generic search of [`all_equilibria`] with `quasi_random` starts instead of
/// [`SEARCH_STARTS`], even for a model with its own candidates: a harder (or cheaper) search,
/// e.g. to check how complete the default one is (`examples/search_completeness.rs`). Its cost
/// grows about linearly with `quasi_random`.
pub fn all_equilibria_from<M: Model<N>, const N: usize>(
    model: &M,
    p: &[f64],
    quasi_random: usize,
) -> Result<Vec<Equilibrium<N>>, Error>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    model.validate(p)?;
    let sys = System::new(model, p);
    Ok(search_from(&sys, generic_starts(&sys, quasi_random), true))
}

/// The generic search's starts: the model's nominal state, where the flow rests from it and
/// from the model's probe states, and `quasi_random` Halton points of its search box.
fn generic_starts<M: Model<N>, const N: usize>(
    sys: &System<'_, M, N>,
    quasi_random: usize,
) -> Vec<SVector<f64, N>>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    let (model, p) = (sys.model, sys.p);
    let bx = model.search_box(p);
    const PRIMES: [usize; 12] = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37];
    let mut starts: Vec<SVector<f64, N>> = vec![model.nominal_state(p)];
    // Where the flow settles from the nominal state is usually the healthy state.
    let rest_opts = SolveOptions {
        method: Method::Rosenbrock,
        tol: crate::solve::Tolerances {
            rtol: 1e-8,
            atol: 1e-14,
        },
        ..Default::default()
    };
    let mut stats = SolverStats::default();
    // Where the flow rests from the nominal state and from the model's probe states.
    let probes: Vec<SVector<f64, N>> = std::iter::once(starts[0])
        .chain(model.probe_states(p))
        .collect();
    for x0 in probes {
        let x0 = model.in_domain(x0, p);
        if !model.feasible(&x0, p) {
            continue;
        }
        if let Ok(Some((s, _))) =
            integrate_to_rest(sys, 0.0, x0, SETTLE_HORIZON, &rest_opts, &mut stats, |_| {})
        {
            starts.push(s.equilibrium);
        }
    }
    for k in 1..=quasi_random {
        let x = SVector::<f64, N>::from_fn(|i, _| {
            let u = halton(k, PRIMES[i % PRIMES.len()]);
            let r = bx[i];
            if r.log {
                (r.lo.ln() + u * (r.hi.ln() - r.lo.ln())).exp()
            } else {
                r.lo + u * (r.hi - r.lo)
            }
        });
        if model.feasible(&x, sys.p) {
            starts.push(x);
        }
    }
    starts
}

/// From each start a root, polished by Newton, kept if new; then the checks for roots missed
/// near folds and between basins; classified and sorted (the rest of [`all_equilibria_from`]).
/// With `spread` (starts spread over a box) each start first runs deflated Newton, so that
/// roots found repel it, and roots near a fold get twin starts; a model's own candidates
/// ([`Model::equilibrium_candidates`]) are each close to a root already and resolve close
/// pairs themselves, so Newton polishes them as they are.
fn search_from<M: Model<N>, const N: usize>(
    sys: &System<'_, M, N>,
    starts: Vec<SVector<f64, N>>,
    spread: bool,
) -> Vec<Equilibrium<N>>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    let model = sys.model;
    let mut stats = SolverStats::default();
    let mut roots: Vec<SVector<f64, N>> = vec![];
    // The root Newton reaches from `x0` (after deflated Newton with `deflate`), if it is one.
    let polish = |x0: SVector<f64, N>, roots: &[SVector<f64, N>], deflate: bool| {
        let candidate = if deflate {
            deflated_newton(sys, x0, roots)?
        } else {
            x0
        };
        let x = newton(sys, candidate, 30).ok()?.x;
        (model.feasible(&x, sys.p) && is_root(sys, &x)).then_some(x)
    };
    // A new root is kept. A candidate that plain Newton cannot polish (its Jacobian overflows
    // where a population is near the smallest numbers) is given deflated Newton too.
    let search = |x0: SVector<f64, N>, roots: &mut Vec<SVector<f64, N>>, deflate: bool| {
        let found = polish(x0, roots, deflate).or_else(|| {
            if deflate {
                None
            } else {
                polish(x0, roots, true)
            }
        });
        if let Some(x) = found.filter(|x| !roots.iter().any(|r| same_point(r, x))) {
            roots.push(x);
        }
    };
    for x0 in starts {
        search(x0, &mut roots, spread);
    }
    // Near a fold two roots sit close together along the Jacobian's near-null direction, where
    // starts spread over the box rarely land between them: from every root whose Jacobian is
    // nearly singular, start again on both sides along that direction.
    let mut k = 0;
    while spread && k < roots.len() {
        for x0 in twin_starts(sys, &roots[k]) {
            search(x0, &mut roots, true);
        }
        k += 1;
    }
    let w = model.watched();
    let mut eq: Vec<Equilibrium<N>> = roots
        .iter()
        .map(|x| Equilibrium::classify(sys, *x))
        .collect();
    eq.sort_by(|a, b| b.x[w].total_cmp(&a.x[w]));
    // Two basins meet along the stable manifold of a saddle with one unstable direction: with
    // fewer such saddles than neighbouring pairs of stable states, one was missed (its Newton
    // basin can be small where the flows switch steeply). Track the edge between each
    // neighbouring pair and start from where it slows down.
    let count = |kind: &dyn Fn(&Equilibrium<N>) -> bool| eq.iter().filter(|e| kind(e)).count();
    let stable = count(&|e| e.kind == Kind::Stable);
    let saddles = count(&|e| e.kind == Kind::Saddle && e.stability.unstable_dims == 1);
    if stable >= 2 && saddles + 1 < stable {
        let pairs: Vec<(SVector<f64, N>, SVector<f64, N>)> = {
            let st: Vec<&Equilibrium<N>> = eq.iter().filter(|e| e.kind == Kind::Stable).collect();
            st.windows(2).map(|w| (w[0].x, w[1].x)).collect()
        };
        let before = roots.len();
        // Tight: the trajectory from the bracket stays by the edge only as long as its error
        // (growing at the saddle's unstable rate) stays below the distance to the edge.
        let edge_opts = SolveOptions {
            tol: crate::solve::Tolerances {
                rtol: 1e-12,
                atol: 1e-18,
            },
            method: Method::Rosenbrock,
            ..Default::default()
        };
        for (a, b) in pairs {
            for x0 in edge_starts(sys, &a, &b, &edge_opts, &mut stats) {
                let found = roots.len();
                search(x0, &mut roots, true);
                if roots.len() > found {
                    break;
                }
            }
        }
        if roots.len() > before {
            eq = roots
                .into_iter()
                .map(|x| Equilibrium::classify(sys, x))
                .collect();
            eq.sort_by(|a, b| b.x[w].total_cmp(&a.x[w]));
        }
    }
    eq
}

/// Bisections of the segment between two stable states in [`edge_starts`]: the bracket of the
/// basin boundary ends 2^-44 (6e-14) of the segment wide.
const EDGE_BISECTIONS: usize = 44;

/// Starts for the saddle on the boundary between the basins of stable states `a` and `b`, by
/// edge tracking: the segment from `a` to `b` is bisected by the fate of each point
/// (integrated to rest: on `a` or on `b`) down to [`EDGE_BISECTIONS`], then the trajectory from
/// the bracket's middle follows the boundary towards the saddle on it before it leaves. Its
/// slow points are the starts: the local minima of `|f|` (relative to the states' size) along
/// it, away from `a` and `b`, slowest first, at most [`EDGE_STARTS`]. A trial that rests
/// elsewhere or does not settle (it lingers by the saddle) ends the bisection early with its
/// own slow points. Empty when a point of the segment is infeasible.
fn edge_starts<M: Model<N>, const N: usize>(
    sys: &System<'_, M, N>,
    a: &SVector<f64, N>,
    b: &SVector<f64, N>,
    opts: &SolveOptions,
    stats: &mut SolverStats,
) -> Vec<SVector<f64, N>>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    let at = |t: f64| a + (b - a) * t;
    let size = a.abs() + b.abs();
    let w = weights(&size, 1.0, 1e-300);
    // Within 10 % of r, where a component small in both states counts on their common scale.
    let near = |y: &SVector<f64, N>, r: &SVector<f64, N>| {
        let wr = SVector::<f64, N>::from_fn(|i, _| 0.1 * r[i].abs() + 1e-3 * size[i] + 1e-300);
        scaled_norm(&(y - r), &wr) <= 1.0
    };
    // The fate of `x` (Some(true): rests on a, Some(false): on b, None: neither) and the
    // trajectory's slow points away from a and b.
    let trial = |x: SVector<f64, N>, stats: &mut SolverStats| {
        // (speed, point) of each step end; the slow points are its local minima.
        let mut path: Vec<(f64, SVector<f64, N>)> = vec![];
        let rest = integrate_to_rest(sys, 0.0, x, SETTLE_HORIZON, opts, stats, |seg| {
            path.push((scaled_norm(&sys.f(seg.t1, &seg.y1), &w), seg.y1));
        });
        let fate = match rest {
            Ok(Some((s, _))) if same_point(&s.equilibrium, a) => Some(true),
            Ok(Some((s, _))) if same_point(&s.equilibrium, b) => Some(false),
            _ => None,
        };
        let mut slow: Vec<(f64, SVector<f64, N>)> = (0..path.len())
            .filter(|&k| {
                let v = path[k].0;
                (k == 0 || path[k - 1].0 > v) && path.get(k + 1).is_none_or(|n| n.0 > v)
            })
            .map(|k| path[k])
            .filter(|(_, y)| !near(y, a) && !near(y, b))
            .collect();
        slow.sort_by(|p, q| p.0.total_cmp(&q.0));
        slow.truncate(EDGE_STARTS);
        (fate, slow.into_iter().map(|(_, y)| y).collect::<Vec<_>>())
    };
    let (mut lo, mut hi) = (0.0, 1.0);
    for _ in 0..EDGE_BISECTIONS {
        let m = 0.5 * (lo + hi);
        let x = at(m);
        if !sys.model.feasible(&x, sys.p) {
            return vec![];
        }
        match trial(x, stats) {
            (Some(true), _) => lo = m,
            (Some(false), _) => hi = m,
            (None, slow) => return slow,
        }
    }
    trial(at(0.5 * (lo + hi)), stats).1
}

/// Most starts [`edge_starts`] gives.
const EDGE_STARTS: usize = 4;

/// Smallest singular direction's gain, relative to the Jacobian's size (both in coordinates
/// scaled by the root), below which a root counts as near a fold ([`twin_starts`]).
const NEAR_FOLD: f64 = 0.005;

/// Starts on both sides of root `r` along the near-null direction of its Jacobian, at 0.1 %, 1 %
/// and 10 % of the root's size, when that Jacobian is nearly singular ([`NEAR_FOLD`]); none
/// otherwise. The direction comes from three steps of inverse iteration in coordinates scaled
/// by the root.
fn twin_starts<M: Model<N>, const N: usize>(
    sys: &System<'_, M, N>,
    r: &SVector<f64, N>,
) -> Vec<SVector<f64, N>>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    let d = r.map(|v| v.abs().max(1e-12));
    let j = sys.jacobian(0.0, r);
    // D⁻¹ J D: the Jacobian acting on relative changes.
    let js = SMatrix::<f64, N, N>::from_fn(|a, b| j[(a, b)] * d[b] / d[a]);
    let size = js.amax();
    let lu = js.lu();
    let mut v = SVector::<f64, N>::from_fn(|i, _| 1.0 + 0.1 * i as f64);
    for _ in 0..3 {
        let Some(u) = lu.solve(&v) else {
            return vec![];
        };
        let n = u.amax();
        if !(n.is_finite() && n > 0.0) {
            return vec![];
        }
        v = u / n;
    }
    let gain = (js * v).amax();
    if gain.is_nan() || gain > NEAR_FOLD * size {
        return vec![];
    }
    let mut out = vec![];
    for s in [1e-3, -1e-3, 1e-2, -1e-2, 0.1, -0.1] {
        let x = r + d.component_mul(&v) * s;
        if sys.model.feasible(&x, sys.p) {
            out.push(x);
        }
    }
    out
}

/// Relative residual an equilibrium must meet: `‖f(x)‖∞ ≤ ROOT_TOL · ‖J(x)‖∞ · ‖x‖∞` (the
/// size of the right-hand side's terms near `x`), so that a point where Newton merely stopped
/// moving — e.g. against the edge of the feasible region, where the Jacobian is huge — is
/// never reported.
pub const ROOT_TOL: f64 = 1e-9;

pub(crate) fn is_root<M: Model<N>, const N: usize>(
    sys: &System<'_, M, N>,
    x: &SVector<f64, N>,
) -> bool {
    let (f, j) = sys.f_and_jacobian(0.0, x);
    let scale = (j.abs() * x.abs()).amax();
    f.amax() <= ROOT_TOL * scale.max(f64::MIN_POSITIVE) || f.amax() == 0.0
}

/// Whether two equilibria are the same point (every component within 1e-6 relative, floor
/// 1e-13).
pub fn same_point<const N: usize>(a: &SVector<f64, N>, b: &SVector<f64, N>) -> bool {
    let w = a.zip_map(b, |x, y| 1e-13 + 1e-6 * x.abs().max(y.abs()));
    scaled_norm(&(a - b), &w) <= 1.0
}
