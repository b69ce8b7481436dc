//! Daily cycles: the periodic orbits of a model whose parameters follow daily profiles
//! (docs/model.md, "Daily load").
//!
//! A scenario with a profile has no equilibria: its healthy state is a stable periodic orbit of
//! one day. The orbit through time `t0` is a fixed point of the period map
//! `P(x) = φ(t0 + T; t0, x)`, found by shooting: Newton on `P(x) − x` with the monodromy matrix
//! `M = ∂P/∂x`, whose columns come from the variational equations `s' = J(t, x(t))·s`
//! integrated along the orbit (the exact Jacobian by dual numbers at every step). The
//! eigenvalues of `M` are the orbit's Floquet multipliers: it is stable when all lie inside the
//! unit circle. Every cycle returned was verified: the period map was evaluated at the point
//! returned and its residual is reported.

use crate::equilibria::SETTLE_RADIUS;
use crate::equilibria::{all_equilibria, Kind};
use crate::error::{Error, SolverFailure};
use crate::model::schedule::{Clock, DailyProfile, Schedule};
use crate::model::{Model, ParamSpec, Scalar, StateSpec, System};
use crate::solve::{integrate, Dense, Segment, SolveOptions, SolverStats, Span, Tolerances};
use nalgebra::{Complex, Const, DimMin, SMatrix, SVector};
use num_dual::Dual;

/// Parameters that follow the day: the values in force and their daily profiles, read on a
/// clock.
#[derive(Debug, Clone, Copy)]
pub struct Forcing<'a> {
    /// Parameter values in force (multiplied by the profiles).
    pub p: &'a [f64],
    /// The daily profiles.
    pub daily: &'a [DailyProfile],
    /// The clock the profiles are read on.
    pub clock: Clock,
}

impl<'a> Forcing<'a> {
    /// The right-hand side these parameters give `model`.
    pub fn system<M: Model<N>, const N: usize>(&self, model: &'a M) -> System<'a, M, N> {
        System {
            model,
            p: self.p,
            reboot: None,
            schedule: Some(self.schedule()),
        }
    }

    /// The profiles as a schedule (no ramps).
    pub fn schedule(&self) -> Schedule<'a> {
        Schedule {
            ramps: &[],
            daily: self.daily,
            clock: self.clock,
        }
    }

    /// The period: one day in the model's time unit.
    pub fn period(&self) -> f64 {
        self.clock.period()
    }

    /// The parameters used at `t`.
    pub fn at(&self, t: f64) -> Vec<f64> {
        self.schedule().values(t, self.p)
    }
}

/// `opts` with its largest step at most [`Clock::max_step`] (half an hour): what every run
/// under a daily profile integrates with.
pub fn day_opts(clock: &Clock, opts: &SolveOptions) -> SolveOptions {
    let h = clock.max_step();
    SolveOptions {
        h_max: Some(opts.h_max.map_or(h, |m| m.min(h))),
        ..*opts
    }
}

/// Tolerances of the shooting integrations (tighter than a simulation's: a fixed point is only
/// as good as the map it is a fixed point of).
pub const SHOOTING_TOL: Tolerances = Tolerances {
    rtol: 1e-10,
    atol: 1e-15,
};

/// Newton on the period map stops when every component of `P(x) − x` is within
/// `SHOOTING_REL · |x| + SHOOTING_ABS`.
pub const SHOOTING_REL: f64 = 1e-8;
/// See [`SHOOTING_REL`].
pub const SHOOTING_ABS: f64 = 1e-13;
/// Most Newton steps of one shooting solve.
pub const SHOOTING_MAX_STEPS: usize = 40;

/// A periodic orbit found by shooting, verified at the point returned.
#[derive(Debug, Clone)]
pub struct Cycle<const N: usize> {
    /// The time the orbit is anchored at.
    pub t0: f64,
    /// The state on the orbit at `t0` (and at `t0 + k·period`).
    pub x0: SVector<f64, N>,
    /// The period.
    pub period: f64,
    /// Floquet multipliers: the eigenvalues of the monodromy matrix at `x0`.
    pub multipliers: Vec<Complex<f64>>,
    /// The monodromy matrix `∂P/∂x` at `x0`.
    pub monodromy: SMatrix<f64, N, N>,
    /// `max_i |P(x0) − x0|_i / (SHOOTING_REL·|x0_i| + SHOOTING_ABS)`: at most 1.
    pub residual: f64,
    /// Newton steps taken.
    pub newton_steps: usize,
    /// One period of the orbit from `t0` (dense output).
    pub orbit: Dense<N>,
}

impl<const N: usize> Cycle<N> {
    /// The largest modulus of a Floquet multiplier.
    pub fn max_multiplier(&self) -> f64 {
        self.multipliers
            .iter()
            .map(|m| m.norm())
            .fold(f64::NAN, f64::max)
    }

    /// Every multiplier lies inside the unit circle.
    pub fn is_stable(&self) -> bool {
        !self.multipliers.is_empty() && self.max_multiplier() < 1.0
    }

    /// Multipliers outside the unit circle.
    pub fn unstable_dims(&self) -> usize {
        self.multipliers.iter().filter(|m| m.norm() > 1.0).count()
    }

    /// The state on the orbit at any time `t` (the orbit repeats every period).
    pub fn state_at(&self, t: f64) -> SVector<f64, N> {
        let u = (t - self.t0).rem_euclid(self.period);
        self.orbit
            .eval(self.t0 + u)
            .expect("the orbit's dense output covers one period")
    }

    /// `g(state, parameters)` over one period sampled every `dt`: its mean (trapezoidal) and
    /// its least value with the time. `None` when `g` is undefined somewhere.
    pub fn over_day(
        &self,
        forcing: &Forcing<'_>,
        dt: f64,
        g: impl Fn(&SVector<f64, N>, &[f64]) -> Option<f64>,
    ) -> Option<(f64, (f64, f64))> {
        let n = (self.period / dt).ceil().max(1.0) as usize;
        let h = self.period / n as f64;
        let (mut sum, mut lo) = (0.0, (f64::INFINITY, 0.0));
        for k in 0..n {
            // Periodic trapezoid: every sample weighs h.
            let t = self.t0 + k as f64 * h;
            let v = g(&self.state_at(t), &forcing.at(t))?;
            sum += v * h;
            if v < lo.0 {
                lo = (v, t);
            }
        }
        Some((sum / self.period, lo))
    }
}

/// The variational equation along a computed trajectory: `s' = J(t, x(t))·s`, with `x(t)`
/// read from the dense output and, near each `t`, continued by its own derivative so that
/// `∂/∂t` of the right-hand side is that of `J(t, x(t))·s`.
struct Along<'a, M, const N: usize> {
    sys: System<'a, M, N>,
    path: &'a Dense<N>,
}

impl<M: Model<N>, const N: usize> Model<N> for Along<'_, M, N> {
    fn name(&self) -> &str {
        self.sys.model.name()
    }
    fn states(&self) -> [StateSpec; N] {
        self.sys.model.states()
    }
    fn params(&self) -> &[ParamSpec] {
        self.sys.model.params()
    }
    fn rhs<T: Scalar>(&self, t: T, s: &SVector<T, N>, _p: &[T]) -> SVector<T, N> {
        let tr = t.re();
        let x = self
            .path
            .eval(tr)
            .expect("the variational equation runs inside the computed trajectory");
        let fx = self.sys.f(tr, &x);
        let dt = t - T::from(tr);
        let xd = SVector::<Dual<T>, N>::from_fn(|i, _| {
            Dual::new(T::from(x[i]) + T::from(fx[i]) * dt, s[i])
        });
        let sched = self.sys.schedule.expect("a forced system");
        let pd: Vec<Dual<T>> = self
            .sys
            .p
            .iter()
            .map(|v| Dual::from_re(T::from(*v)))
            .collect();
        let q = sched.apply(Dual::from_re(t), &pd, |_, r| {
            (
                Dual::from_re(T::from(r.from)),
                Dual::from_re(T::from(r.at)),
                Dual::from_re(T::from(r.len)),
            )
        });
        self.sys
            .model
            .rhs_in_force(Dual::from_re(t), &xd, &q[..pd.len()], None)
            .map(|v| v.eps)
    }
    fn nominal_state(&self, _p: &[f64]) -> SVector<f64, N> {
        SVector::zeros()
    }
    fn autonomous(&self) -> bool {
        false
    }
    fn feasible(&self, _x: &SVector<f64, N>, _p: &[f64]) -> bool {
        true
    }
}

/// The period map from `(t0, x)` over one period, its monodromy matrix and the orbit's dense
/// output.
pub fn period_map<M: Model<N>, const N: usize>(
    model: &M,
    forcing: &Forcing<'_>,
    t0: f64,
    x: &SVector<f64, N>,
    opts: &SolveOptions,
    stats: &mut SolverStats,
) -> Result<(SVector<f64, N>, SMatrix<f64, N, N>, Dense<N>), Error>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    let opts = &day_opts(&forcing.clock, opts);
    let sys = forcing.system(model);
    let t1 = t0 + forcing.period();
    let mut dense = Dense::default();
    let (_, x1) = integrate(&sys, Span::new(t0, *x, t1), opts, stats, &mut |seg| {
        dense.segments.push(*seg);
        false
    })?;
    let along = Along {
        sys: forcing.system(model),
        path: &dense,
    };
    let vsys = System::new(&along, forcing.p);
    let mut m = SMatrix::<f64, N, N>::zeros();
    for j in 0..N {
        let e = SVector::<f64, N>::from_fn(|i, _| if i == j { 1.0 } else { 0.0 });
        let (_, col) = integrate(&vsys, Span::new(t0, e, t1), opts, stats, &mut |_| false)?;
        m.set_column(j, &col);
    }
    Ok((x1, m, dense))
}

fn shooting_weights<const N: usize>(x: &SVector<f64, N>) -> SVector<f64, N> {
    x.map(|v| SHOOTING_REL * v.abs() + SHOOTING_ABS)
}

/// The periodic orbit through time `t0` near `guess`, by Newton on the period map (steps
/// halved until the state stays in the model's domain and the residual falls). Fails with the
/// residual reached when Newton does not converge.
pub fn shoot<M: Model<N>, const N: usize>(
    model: &M,
    forcing: &Forcing<'_>,
    t0: f64,
    guess: &SVector<f64, N>,
    opts: &SolveOptions,
    stats: &mut SolverStats,
) -> Result<Cycle<N>, Error>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    shoot_within(model, forcing, t0, guess, SHOOTING_MAX_STEPS, opts, stats)
}

/// [`shoot`] with at most `max_steps` Newton steps.
pub fn shoot_within<M: Model<N>, const N: usize>(
    model: &M,
    forcing: &Forcing<'_>,
    t0: f64,
    guess: &SVector<f64, N>,
    max_steps: usize,
    opts: &SolveOptions,
    stats: &mut SolverStats,
) -> Result<Cycle<N>, Error>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    let opts = SolveOptions {
        tol: SHOOTING_TOL,
        ..*opts
    };
    let p0 = forcing.at(t0);
    let mut x = *guess;
    let (mut px, mut m, mut orbit) = period_map(model, forcing, t0, &x, &opts, stats)?;
    let scaled =
        |g: &SVector<f64, N>, x: &SVector<f64, N>| g.component_div(&shooting_weights(x)).amax();
    let mut r = scaled(&(px - x), &x);
    for step in 0..=max_steps {
        if r <= 1.0 {
            let d = nalgebra::DMatrix::from_column_slice(N, N, m.as_slice());
            let multipliers = crate::linalg::eigenvalues(&d).unwrap_or_default();
            return Ok(Cycle {
                t0,
                x0: x,
                period: forcing.period(),
                multipliers,
                monodromy: m,
                residual: r,
                newton_steps: step,
                orbit,
            });
        }
        if step == max_steps {
            break;
        }
        let g = px - x;
        let a = m - SMatrix::<f64, N, N>::identity();
        let dx = a.lu().solve(&(-g)).ok_or_else(|| {
            Error::Invalid("shooting: the monodromy matrix has a multiplier 1 (a fold of cycles): the period map's Jacobian is singular".into())
        })?;
        let mut lambda = 1.0;
        loop {
            let xn = x + dx * lambda;
            if xn.iter().all(|v| v.is_finite()) && model.feasible(&xn, &p0) {
                if let Ok((pn, mn, on)) = period_map(model, forcing, t0, &xn, &opts, stats) {
                    let rn = scaled(&(pn - xn), &xn);
                    if rn < r || lambda < 1e-3 {
                        (x, px, m, orbit, r) = (xn, pn, mn, on, rn);
                        break;
                    }
                }
            }
            lambda *= 0.5;
            if lambda < 1e-6 {
                return Err(Error::Invalid(format!(
                    "shooting from t0 = {t0}: no Newton step keeps the state in the domain and lowers the residual ({r:.3e} times the tolerance)"
                )));
            }
        }
    }
    Err(Error::Invalid(format!(
        "shooting from t0 = {t0}: Newton did not converge in {max_steps} steps (residual {r:.3e} times the tolerance)"
    )))
}

/// What the search for daily cycles found and how hard it looked.
#[derive(Debug, Clone)]
pub struct CycleSearch<const N: usize> {
    /// The distinct cycles found, anchored at the search's `t0`.
    pub cycles: Vec<Cycle<N>>,
    /// For each equilibrium of the unforced system (the values in force, no profile) the
    /// search started from: its kind, the amplitude of the profile (0 to 1) its cycle was
    /// followed to (1: found; less: lost there, at a fold of cycles or where single shooting
    /// cannot hold an orbit that repels strongly), and the index of its cycle in `cycles`.
    pub branches: Vec<Branch>,
}

/// One equilibrium's continuation into a daily cycle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Branch {
    /// Which constant replaced the profiles where it started.
    pub base: Base,
    /// The kind of the equilibrium it started from.
    pub kind: Kind,
    /// Its state.
    pub from: [f64; 8],
    /// The profile's amplitude reached (1: the cycle was found).
    pub amplitude: f64,
    /// Index of its cycle among the search's cycles, when found.
    pub cycle: Option<usize>,
}

/// The profiles scaled towards the constants `base` (one per profile) by `amplitude` (0: the
/// constant, 1: the profile as given).
fn scaled_profiles(daily: &[DailyProfile], base: &[f64], amplitude: f64) -> Vec<DailyProfile> {
    daily
        .iter()
        .zip(base)
        .map(|(d, c)| DailyProfile::new(d.param, d.hourly.map(|m| c + amplitude * (m - c))))
        .collect()
}

/// Where a search for daily cycles starts: the equilibria of the system with each profile
/// replaced by a constant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    /// The values in force (every profile replaced by 1).
    InForce,
    /// Each profile replaced by its daily mean (the mean of its 24 values, which is the mean
    /// of the interpolant over the day).
    DailyMean,
}

/// The daily cycles through time `t0`. Starts: the equilibria of the system with each profile
/// replaced by a constant — 1 (the values in force) and the profile's daily mean — each
/// followed as the profile's amplitude grows from that constant to the profile: first in one
/// step, and on failure in steps halved down to 1/256, shooting at each amplitude from the
/// previous cycle. A step is accepted only when the cycle keeps the equilibrium's number of
/// unstable directions (multipliers outside the unit circle), so a branch never jumps onto
/// another orbit. Cycles that coincide at the end are reported once. With `stable_only`, only
/// stable equilibria are followed (the attractors a run can settle on). A cycle that none of
/// these equilibria leads to is not found: the search says which starts it tried
/// ([`CycleSearch::branches`]).
pub fn daily_cycles<M: Model<N>, const N: usize>(
    model: &M,
    forcing: &Forcing<'_>,
    t0: f64,
    stable_only: bool,
    opts: &SolveOptions,
    stats: &mut SolverStats,
) -> Result<CycleSearch<N>, Error>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    let mut cycles: Vec<Cycle<N>> = vec![];
    let mut branches = vec![];
    let means: Vec<f64> = forcing
        .daily
        .iter()
        .map(|d| d.hourly.iter().sum::<f64>() / d.hourly.len() as f64)
        .collect();
    let ones = vec![1.0; forcing.daily.len()];
    let mut first_error = None;
    for (base, c) in [(Base::InForce, &ones), (Base::DailyMean, &means)] {
        if base == Base::DailyMean && means.iter().all(|m| *m == 1.0) {
            continue;
        }
        let mut p = forcing.p.to_vec();
        for (d, m) in forcing.daily.iter().zip(c) {
            p[d.param] *= m;
        }
        let eqs = match all_equilibria(model, &p) {
            Ok(e) => e,
            Err(e) => {
                first_error.get_or_insert(e);
                continue;
            }
        };
        for eq in eqs
            .iter()
            .filter(|e| !stable_only || e.stability.is_stable())
        {
            let (mut a, mut step): (f64, f64) = (0.0, 1.0);
            let mut x = eq.x;
            let mut last: Option<Cycle<N>> = None;
            while a < 1.0 && step >= 1.0 / 256.0 {
                let next = (a + step).min(1.0);
                let daily = scaled_profiles(forcing.daily, c, next);
                let f = Forcing {
                    daily: &daily,
                    ..*forcing
                };
                match shoot(model, &f, t0, &x, opts, stats) {
                    Ok(cy) if cy.unstable_dims() == eq.stability.unstable_dims => {
                        x = cy.x0;
                        a = next;
                        last = Some(cy);
                        step = (step * 2.0).min(1.0);
                    }
                    _ => step *= 0.5,
                }
            }
            let mut from = [f64::NAN; 8];
            for (f, v) in from.iter_mut().zip(eq.x.iter()) {
                *f = *v;
            }
            let mut cycle = None;
            if a >= 1.0 {
                let cy = last.expect("a branch that reached amplitude 1 has its cycle");
                let k = cycles
                    .iter()
                    .position(|o| crate::equilibria::same_point(&o.x0, &cy.x0));
                cycle = Some(k.unwrap_or_else(|| {
                    cycles.push(cy);
                    cycles.len() - 1
                }));
            }
            branches.push(Branch {
                base,
                kind: eq.kind,
                from,
                amplitude: a,
                cycle,
            });
        }
    }
    if branches.is_empty() {
        if let Some(e) = first_error {
            return Err(e.context("the equilibria the search for daily cycles starts from"));
        }
    }
    Ok(CycleSearch { cycles, branches })
}

/// Where an undisturbed network with a daily cycle rests: the healthy daily cycle (the
/// stable cycle with the highest daily mean service level, provided it is at least the model's
/// healthy level; ties: the most of the watched state at `t0`), or when there is none the
/// stable cycle that serves best.
#[derive(Debug, Clone)]
pub struct RestCycle<const N: usize> {
    /// The cycle.
    pub cycle: Cycle<N>,
    /// Its daily mean service level.
    pub service: f64,
    /// Its lowest service level over the day, with the time.
    pub service_min: (f64, f64),
    /// Whether it is healthy.
    pub healthy: bool,
}

/// Samples per day for a cycle's mean service level (every 5 minutes for a model in minutes).
pub const DAY_SAMPLES: f64 = 288.0;

/// The stable daily cycles through `t0`, and among them the one the network rests on.
pub fn rest_cycle<M: Model<N>, const N: usize>(
    model: &M,
    forcing: &Forcing<'_>,
    t0: f64,
    opts: &SolveOptions,
    stats: &mut SolverStats,
) -> Result<(RestCycle<N>, Vec<Cycle<N>>), Error>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    let search = daily_cycles(model, forcing, t0, true, opts, stats)?;
    let rest = choose_rest_cycle(model, forcing, &search.cycles).map_err(|e| {
        e.context(format!(
            "{} stable equilibria of the system with constant profiles (1 and the daily mean) were followed as the profile's amplitude grew, {} of them to the full profile",
            search.branches.len(),
            search.branches.iter().filter(|b| b.cycle.is_some()).count()
        ))
    })?;
    Ok((rest, search.cycles))
}

/// Most Newton steps of a warm start ([`healthy_cycle_from`]): from a good guess Newton
/// converges in a few; one that needs more is cheaper to replace by the full search.
pub const WARM_MAX_STEPS: usize = 8;

/// The healthy daily cycle through `t0` by shooting from `guess` alone (typically the healthy
/// cycle of nearby parameters): a warm start that skips [`rest_cycle`]'s search. `Some` only
/// when Newton converges to a stable cycle whose daily mean service level is at least the
/// model's healthy level; `None` when it does not converge within [`WARM_MAX_STEPS`], or converges to an unstable or
/// unhealthy cycle (past a fold of cycles the healthy one is gone, and Newton may find the
/// saddle cycle or the collapsed one): the caller then runs the full search.
///
/// The cycle found is the one [`rest_cycle`] would choose whenever the model has at most one
/// stable healthy cycle at these parameters (the rule picks the best-serving stable cycle; a
/// second healthy one would need two healthy attractors).
pub fn healthy_cycle_from<M: Model<N>, const N: usize>(
    model: &M,
    forcing: &Forcing<'_>,
    t0: f64,
    guess: &SVector<f64, N>,
    opts: &SolveOptions,
    stats: &mut SolverStats,
) -> Result<Option<RestCycle<N>>, Error>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    let cycle = match shoot_within(model, forcing, t0, guess, WARM_MAX_STEPS, opts, stats) {
        Ok(c) if c.is_stable() => c,
        _ => return Ok(None),
    };
    let rest = choose_rest_cycle(model, forcing, std::slice::from_ref(&cycle))?;
    Ok(rest.healthy.then_some(rest))
}

/// The same cycles anchored at another time `t` (each shot again from its state at `t`).
pub fn reanchor<M: Model<N>, const N: usize>(
    model: &M,
    forcing: &Forcing<'_>,
    cycles: &[Cycle<N>],
    t: f64,
    opts: &SolveOptions,
    stats: &mut SolverStats,
) -> Result<Vec<Cycle<N>>, Error>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    cycles
        .iter()
        .map(|c| shoot(model, forcing, t, &c.state_at(t), opts, stats))
        .collect()
}

/// Among `cycles`, the one the network rests on (see [`RestCycle`]).
pub fn choose_rest_cycle<M: Model<N>, const N: usize>(
    model: &M,
    forcing: &Forcing<'_>,
    cycles: &[Cycle<N>],
) -> Result<RestCycle<N>, Error> {
    let w = model.watched();
    let mut best: Option<RestCycle<N>> = None;
    for c in cycles.iter().filter(|c| c.is_stable()) {
        let (mean, min) = c
            .over_day(forcing, forcing.period() / DAY_SAMPLES, |x, p| {
                model.service_level(x, p)
            })
            .ok_or_else(|| {
                Error::Unsupported(format!(
                    "model `{}` defines no service level, so no daily cycle can be called healthy (implement Model::service_level)",
                    model.name()
                ))
            })?;
        let better = best
            .as_ref()
            .is_none_or(|b| mean > b.service || (mean == b.service && c.x0[w] > b.cycle.x0[w]));
        if better {
            best = Some(RestCycle {
                cycle: c.clone(),
                service: mean,
                service_min: min,
                healthy: mean >= model.healthy_level(),
            });
        }
    }
    best.ok_or_else(|| Error::Invalid("no stable daily cycle found".into()))
}

/// Follows the state from `(t, x)` one period at a time under `forcing` until it provably
/// settles on one of `cycles` (all anchored at a time congruent to `t` modulo the period):
/// within [`crate::equilibria::SETTLE_RADIUS`] of the cycle's state at the same phase
/// (componentwise relative, floor 1e-14) and, one period later, still within it and at least
/// twice as close, or on the cycle to the run's accuracy (100·rtol relative, at least 1e-8).
/// Returns the cycle's index and the time, or `None` when the state has not
/// settled within `horizon` (or within the solver's step limit). Every step is passed to
/// `on_step`.
#[allow(clippy::too_many_arguments)]
pub fn settle_on_cycles<M: Model<N>, const N: usize>(
    model: &M,
    forcing: &Forcing<'_>,
    t: f64,
    x: SVector<f64, N>,
    cycles: &[Cycle<N>],
    horizon: f64,
    opts: &SolveOptions,
    stats: &mut SolverStats,
    mut on_step: impl FnMut(&Segment<N>),
) -> Result<Option<(usize, f64)>, Error>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    let opts = &day_opts(&forcing.clock, opts);
    let sys = forcing.system(model);
    let day = forcing.period();
    let distance = |x: &SVector<f64, N>, c: &SVector<f64, N>| {
        (x - c)
            .component_div(&c.map(|v| 1e-14 + SETTLE_RADIUS * v.abs()))
            .amax()
    };
    // The run's own integration error bounds how close it can come to a cycle computed at the
    // shooting's tolerances: a state that far from it (100·rtol relative, or 1e-8) is on it.
    let floor = (100.0 * opts.tol.rtol / SETTLE_RADIUS).max(1e-6);
    let (mut x, mut t) = (x, t);
    let mut before: Vec<f64> = cycles.iter().map(|c| distance(&x, &c.x0)).collect();
    let days = (horizon / day).ceil().max(1.0) as usize;
    for _ in 0..days {
        let step = integrate(&sys, Span::new(t, x, t + day), opts, stats, &mut |seg| {
            on_step(seg);
            false
        });
        match step {
            Ok((_, x1)) => {
                x = x1;
                t += day;
            }
            Err(Error::Solver {
                reason: SolverFailure::TooManySteps(_),
                ..
            }) => return Ok(None),
            Err(e) => return Err(e),
        }
        let now: Vec<f64> = cycles.iter().map(|c| distance(&x, &c.x0)).collect();
        if let Some(j) = (0..cycles.len()).find(|&j| {
            before[j] <= 1.0 && now[j] <= 1.0 && (now[j] <= 0.5 * before[j] || now[j] <= floor)
        }) {
            return Ok(Some((j, t)));
        }
        before = now;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Bound, ParamSpec};
    use std::borrow::Cow;

    /// `x' = −a·x + b(t)`, `y' = −c·y + x`: linear, forced through `b` (a daily profile).
    struct Forced;
    static P: [ParamSpec; 3] = [
        ParamSpec::new(
            "a",
            "a",
            "1/min",
            0.01,
            (Bound::Open(0.0), Bound::Unbounded),
            "decay of x",
        ),
        ParamSpec::new(
            "b",
            "b",
            "1/min",
            0.02,
            (Bound::Closed(0.0), Bound::Unbounded),
            "inflow",
        ),
        ParamSpec::new(
            "c",
            "c",
            "1/min",
            0.003,
            (Bound::Open(0.0), Bound::Unbounded),
            "decay of y",
        ),
    ];
    impl Model<2> for Forced {
        fn name(&self) -> &str {
            "forced"
        }
        fn states(&self) -> [StateSpec; 2] {
            [
                StateSpec {
                    name: Cow::Borrowed("x"),
                    meaning: Cow::Borrowed("x"),
                },
                StateSpec {
                    name: Cow::Borrowed("y"),
                    meaning: Cow::Borrowed("y"),
                },
            ]
        }
        fn params(&self) -> &[ParamSpec] {
            &P
        }
        fn rhs<T: Scalar>(&self, _t: T, x: &SVector<T, 2>, p: &[T]) -> SVector<T, 2> {
            SVector::from([-p[0] * x[0] + p[1], -p[2] * x[1] + x[0]])
        }
        fn nominal_state(&self, p: &[f64]) -> SVector<f64, 2> {
            SVector::from([p[1] / p[0], p[1] / (p[0] * p[2])])
        }
        fn search_box(&self, _p: &[f64]) -> [crate::model::SearchRange; 2] {
            [crate::model::SearchRange {
                lo: 0.0,
                hi: 100.0,
                log: false,
            }; 2]
        }
    }

    #[test]
    fn the_orbit_of_a_forced_linear_model_is_its_closed_form() {
        // b(t) = b·m(t) with m piecewise cubic: the exact periodic solution of x' = −a x + b(t)
        // is x*(t0) = e^{−aT}x*(t0) + ∫ e^{−a(t0+T−s)} b(s) ds, so x*(t0) = I/(1 − e^{−aT}), the
        // integral by a fine composite Simpson rule of the known forcing.
        let mut hourly = [1.0; 24];
        for (h, m) in hourly.iter_mut().enumerate() {
            *m = 1.0 + 0.6 * (std::f64::consts::TAU * (h as f64 - 19.0) / 24.0).cos();
        }
        let daily = [DailyProfile::new(1, hourly)];
        let p = [0.01, 0.02, 0.003];
        let forcing = Forcing {
            p: &p,
            daily: &daily,
            clock: Clock {
                hour0: 5.0,
                units_per_hour: 60.0,
            },
        };
        let t0 = 100.0;
        let mut stats = SolverStats::default();
        let c = shoot(
            &Forced,
            &forcing,
            t0,
            &SVector::from([1.0, 1.0]),
            &SolveOptions::default(),
            &mut stats,
        )
        .unwrap();
        let (a, cc, period) = (p[0], p[2], 1440.0);
        let b = |s: f64| forcing.at(s)[1];
        let n = 200_000;
        let h = period / n as f64;
        // x's forcing integral and, for y, the response of y to x over the period: both by
        // Simpson over the exact x(s) = e^{−a(s−t0)}x0 + ∫ … (computed alongside).
        let simpson = |g: &dyn Fn(f64) -> f64| {
            let mut s = g(t0) + g(t0 + period);
            for k in 1..n {
                s += g(t0 + k as f64 * h) * if k % 2 == 1 { 4.0 } else { 2.0 };
            }
            s * h / 3.0
        };
        let ix = simpson(&|s| (-a * (t0 + period - s)).exp() * b(s));
        let x0 = ix / (1.0 - (-a * period).exp());
        assert!(
            (c.x0[0] - x0).abs() < 1e-7 * x0,
            "x*(t0) = {} vs closed form {x0}",
            c.x0[0]
        );
        // Floquet multipliers of a linear system: e^{−aT} and e^{−cT}, whatever the forcing.
        let mut mu: Vec<f64> = c.multipliers.iter().map(|m| m.re).collect();
        mu.sort_by(f64::total_cmp);
        let want = [(-a * period).exp(), (-cc * period).exp()];
        let mut want = want.to_vec();
        want.sort_by(f64::total_cmp);
        for (m, w) in mu.iter().zip(&want) {
            assert!((m - w).abs() < 1e-7 * w.max(1e-12) + 1e-12, "{m} vs {w}");
        }
        assert!(c.is_stable() && c.residual <= 1.0);
        // The orbit repeats: the state one period later is the state at t0.
        let back = c.orbit.eval(t0 + period).unwrap();
        assert!((back - c.x0).amax() < 1e-6 * c.x0.amax());
    }

    #[test]
    fn period_map_and_monodromy_of_a_forced_logistic_are_its_closed_forms() {
        // x' = r(t)·x·(1 − x) with a daily profile on r.
        use crate::model::textbook::Logistic;
        let mut hourly = [1.0; 24];
        hourly[20] = 3.0;
        hourly[3] = 0.2;
        let daily = [DailyProfile::new(0, hourly)];
        let p = [0.002];
        let forcing = Forcing {
            p: &p,
            daily: &daily,
            clock: Clock {
                hour0: 0.0,
                units_per_hour: 60.0,
            },
        };
        let opts = SolveOptions {
            tol: SHOOTING_TOL,
            ..SolveOptions::default()
        };
        let mut st = SolverStats::default();
        // With R = ∫ r over the day, P(x) = 1/(1 + (1/x − 1)e^{−R}), so
        // ∂P/∂x = e^{−R}/(x² (1 + (1/x − 1)e^{−R})²) and the cycle x* = 1 has multiplier e^{−R}.
        let big_r: f64 = (0..1_440_000)
            .map(|k| forcing.at(k as f64 * 0.001)[0] * 0.001)
            .sum();
        let e = (-big_r).exp();
        for x in [0.05, 0.3, 0.8] {
            let (px, m, _) = period_map(
                &Logistic,
                &forcing,
                0.0,
                &SVector::from([x]),
                &opts,
                &mut st,
            )
            .unwrap();
            let want_p = 1.0 / (1.0 + (1.0 / x - 1.0) * e);
            let want_m = e / (x * x * (1.0 + (1.0 / x - 1.0) * e).powi(2));
            assert!(
                (px[0] - want_p).abs() < 1e-8 * want_p,
                "P({x}) = {} vs {want_p}",
                px[0]
            );
            assert!(
                (m[0] - want_m).abs() < 1e-7 * want_m,
                "M({x}) = {} vs {want_m}",
                m[0]
            );
        }
        let c = shoot(
            &Logistic,
            &forcing,
            0.0,
            &SVector::from([0.9]),
            &opts,
            &mut st,
        )
        .unwrap();
        assert!((c.x0[0] - 1.0).abs() < 1e-8);
        assert!(
            (c.multipliers[0].re - e).abs() < 1e-7 * e,
            "{} vs {e}",
            c.multipliers[0].re
        );
    }
}
