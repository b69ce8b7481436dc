//! What the user states: an ODE model with named states and named, ranged parameters.
//!
//! A model writes its right-hand side once, generic over the scalar type ([`Scalar`]); the
//! library evaluates it with `f64` for integration and with forward-mode dual numbers for exact
//! Jacobians ([`jacobian`], [`param_derivative`]). The reference model of the project,
//! [`P2p`], is one implementation of [`Model`] among any number a user may write.

mod p2p;
mod p2p_reduced;
mod params;
pub mod safe;
pub mod schedule;
pub(crate) mod sens;
pub mod textbook;

pub(crate) use p2p::{flows_in, Sizes};
pub use p2p::{Compartment, FlowSpec, P2p, P2pFlow, P2pFlows, P2pIdx, P2P_FLOWS};
pub use params::{Bound, ParamSet, ParamSpec};

use crate::error::Error;
use nalgebra::{SMatrix, SVector};
use num_dual::{Dual2_64, Dual64, DualNum, DualSVec64, HyperDual64, HyperHyperDual64};
use schedule::Schedule;
use std::borrow::Cow;

/// The scalar a right-hand side is written in: `f64`, or a dual number carrying derivatives.
pub trait Scalar: DualNum<Primitive = f64> + Copy {}
impl<T: DualNum<Primitive = f64> + Copy> Scalar for T {}

/// Real part of a [`Scalar`] (the value without its derivative parts).
#[inline]
pub fn re<T: Scalar>(x: T) -> f64 {
    x.re()
}

/// Largest number of parameters a model may have (dual-number parameter buffers live on the
/// stack, so Jacobians never allocate).
pub const MAX_PARAMS: usize = 64;

/// A range of one state in which equilibria are sought.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchRange {
    /// Lower end.
    pub lo: f64,
    /// Upper end.
    pub hi: f64,
    /// Sample logarithmically (for populations spanning orders of magnitude; `lo > 0`).
    pub log: bool,
}

/// Name and meaning of one state variable.
#[derive(Debug, Clone, PartialEq)]
pub struct StateSpec {
    /// Name used in CSV headers and scenario files.
    pub name: Cow<'static, str>,
    /// One line saying what it is.
    pub meaning: Cow<'static, str>,
}

impl StateSpec {
    /// A state with names known at compile time (names made at run time go in the fields:
    /// `name: text.into()`).
    pub const fn new(name: &'static str, meaning: &'static str) -> Self {
        Self {
            name: Cow::Borrowed(name),
            meaning: Cow::Borrowed(meaning),
        }
    }
}

/// An ODE model `dx/dt = f(t, x; p)` with `N` named states and named parameters.
///
/// Implement [`Model::rhs`] once, generic over [`Scalar`]; every simulation and analysis in
/// the crate then works on the model, with exact Jacobians by automatic differentiation.
///
/// ```
/// use nalgebra::SVector;
/// use selfheal::model::{Bound, Model, ParamSpec, Scalar, StateSpec};
///
/// /// Logistic growth x' = r x (1 - x).
/// struct Logistic;
/// static PARAMS: [ParamSpec; 1] = [ParamSpec::new(
///     "rate", "r", "1/min", 0.1, (Bound::Closed(0.0), Bound::Unbounded), "growth rate",
/// )];
/// impl Model<1> for Logistic {
///     fn name(&self) -> &str { "logistic" }
///     fn states(&self) -> [StateSpec; 1] { [StateSpec::new("x", "share")] }
///     fn params(&self) -> &[ParamSpec] { &PARAMS }
///     fn rhs<T: Scalar>(&self, _t: T, x: &SVector<T, 1>, p: &[T]) -> SVector<T, 1> {
///         SVector::from([p[0] * x[0] * (T::from(1.0) - x[0])])
///     }
///     fn nominal_state(&self, _p: &[f64]) -> SVector<f64, 1> { SVector::from([1.0]) }
/// }
///
/// let j = selfheal::model::jacobian(&Logistic, 0.0, &SVector::from([0.25]), &[0.1]);
/// assert!((j[(0, 0)] - 0.1 * (1.0 - 2.0 * 0.25)).abs() < 1e-15);
/// ```
pub trait Model<const N: usize>: Sync {
    /// A stable name for the model (recorded in summaries).
    fn name(&self) -> &str;
    /// The states, in vector order.
    fn states(&self) -> [StateSpec; N];
    /// The parameter table: names, units, defaults and valid ranges, in vector order.
    fn params(&self) -> &[ParamSpec];
    /// The right-hand side `f(t, x; p)`.
    fn rhs<T: Scalar>(&self, t: T, x: &SVector<T, N>, p: &[T]) -> SVector<T, N>;
    /// A state in the fully working regime from which the healthy state is reached by
    /// integrating to rest (the start of the healthy-state search).
    fn nominal_state(&self, p: &[f64]) -> SVector<f64, N>;

    /// Where to look for equilibria: one range per state, sampled linearly or logarithmically.
    /// The default spans ±10 × (1 + |nominal|) around zero, linearly.
    fn search_box(&self, p: &[f64]) -> [SearchRange; N] {
        let x = self.nominal_state(p);
        std::array::from_fn(|i| {
            let r = 10.0 * (1.0 + x[i].abs());
            SearchRange {
                lo: -r,
                hi: r,
                log: false,
            }
        })
    }

    /// States from which the equilibrium search integrates to rest besides the nominal one:
    /// where an attractor other than the healthy state is expected (a collapsed network:
    /// everyone waiting to log in). Each costs one integration per search. Default: none.
    fn probe_states(&self, _p: &[f64]) -> Vec<SVector<f64, N>> {
        vec![]
    }

    /// Approximate locations of every equilibrium at `p`, for a model that can enumerate them
    /// itself (e.g. by reducing `f(x) = 0` to fewer unknowns and scanning those): each is
    /// polished by Newton and kept only if it is a feasible root, and the search's quasi-random
    /// starts are skipped, so the list must leave none out. `None` (the default) means the
    /// generic search ([`crate::equilibria::all_equilibria`]). The reference model gives them
    /// by a scan in its utilisation where its parameters allow.
    fn equilibrium_candidates(&self, _p: &[f64]) -> Option<Vec<SVector<f64, N>>> {
        None
    }

    /// `f(t, x)` and its Jacobian `∂f/∂x` written out by hand, for a model that can give them
    /// faster than the forward-mode pass does; `None` (the default, and wherever the model
    /// prefers the pass, e.g. at the edges of its region) means the pass is used. The solvers
    /// call it once per step; it must agree with [`Model::rhs`] and its exact derivative (the
    /// reference model's is tested against the forward-mode Jacobian).
    fn rhs_and_jacobian(
        &self,
        _t: f64,
        _x: &SVector<f64, N>,
        _p: &[f64],
    ) -> Option<(SVector<f64, N>, SMatrix<f64, N, N>)> {
        None
    }

    /// Whether `f` does not depend on `t` (then `∂f/∂t` is never evaluated).
    fn autonomous(&self) -> bool {
        true
    }
    /// Whether `x` lies in the model's feasible region at parameters `p` (a bound may depend
    /// on them; default: every component ≥ 0).
    fn feasible(&self, x: &SVector<f64, N>, _p: &[f64]) -> bool {
        x.iter().all(|v| *v >= 0.0)
    }
    /// The nearest feasible point to `x` (Euclidean), for a state that a solver's rounding or
    /// truncation error moved just outside the feasible region (e.g. a population a tolerance
    /// below zero); `None` if the model knows none. Implement it only when the feasible region
    /// is convex and the true solution cannot leave it (populations, fractions): projecting
    /// onto such a set never moves a computed state further from the solution. Solvers apply
    /// it to accepted steps when the correction is within the step's error tolerance; sampled
    /// output applies it to the dense output. Default: none (the region that
    /// [`Model::feasible`] describes may be only where equilibria are searched).
    fn project(&self, _x: &SVector<f64, N>, _p: &[f64]) -> Option<SVector<f64, N>> {
        None
    }
    /// `x` itself when feasible, else its projection ([`Model::project`]), else `x`: how
    /// computed states (step ends, dense output between them) are reported.
    fn in_domain(&self, x: SVector<f64, N>, p: &[f64]) -> SVector<f64, N> {
        if self.feasible(&x, p) {
            x
        } else {
            self.project(&x, p).unwrap_or(x)
        }
    }
    /// Checks a parameter vector against the table, plus any rule the table cannot express.
    fn validate(&self, p: &[f64]) -> Result<(), Error> {
        params::validate_against(self.params(), p)
    }
    /// The unit of time of the rates (`min` for the reference model): what reports and
    /// figures write beside times.
    fn time_unit(&self) -> &str {
        "min"
    }
    /// What identifies the model's equations beyond its name (a model file: a digest of its
    /// text), recorded in a sweep's fingerprint so that shards or a resumed run of another
    /// definition under the same name are refused. Default: none (a Rust model is its code).
    fn definition(&self) -> Option<String> {
        None
    }
    /// Individuals per unit of state, if the model says (a scenario's default population; the
    /// built-in model's states are fractions of the scenario's user base).
    fn population(&self) -> Option<f64> {
        None
    }
    /// Whether the states are fractions of the population (each in [0, 1]), as the reference
    /// model's are; figures then stop their axes at 1 and speak of "fractions of users".
    fn fractions(&self) -> bool {
        false
    }
    /// Index of the state whose dip and recovery the simulation summary tracks.
    fn watched(&self) -> usize {
        0
    }
    /// Whether the recovery time follows the service level (having fallen below 95 % of the
    /// healthy state's, back to 95 % of it) instead of the watched state: right for models
    /// whose trouble is a state that grows (a backlog), not one that falls. Default: the
    /// watched state, as MODEL.md defines recovery for the reference model.
    fn recovery_by_service(&self) -> bool {
        false
    }
    /// The share of users a public counter of online users shows, as a fraction of the
    /// population (what calibration compares with observed counts); by default the watched
    /// state. Generic so that its sensitivities are exact.
    fn online<T: Scalar>(&self, x: &SVector<T, N>) -> T {
        x[self.watched()]
    }
    /// The service level of a state: the share of the users who want service that get it, in
    /// [0, 1] (for the reference model online users over online plus queued, docs/model.md
    /// revision 3). The healthy state is the stable equilibrium with the highest service level,
    /// provided it is at least 1/2; analyses that need a healthy state refuse a model that
    /// returns `None` here (the default) rather than guess which state is healthy.
    fn service_level(&self, _x: &SVector<f64, N>, _p: &[f64]) -> Option<f64> {
        None
    }
    /// The service level a healthy state has at least (default
    /// [`crate::equilibria::HEALTHY_SERVICE`], 1/2).
    fn healthy_level(&self) -> f64 {
        crate::equilibria::HEALTHY_SERVICE
    }
    /// Utilisation of the serving capacity, if the model has such a notion.
    fn utilisation(&self, _x: &SVector<f64, N>, _p: &[f64]) -> Option<f64> {
        None
    }
    /// Extra output columns derived from the state: `(name, is_population)`; populations are
    /// scaled to counts in absolute output. A value the state does not define (not finite,
    /// e.g. utilisation with no capacity at all) is written as an empty cell.
    fn extra_columns(&self) -> &[(&'static str, bool)] {
        &[]
    }
    /// Values of [`Model::extra_columns`] at `x`.
    fn extra_values(&self, _x: &SVector<f64, N>, _p: &[f64]) -> Vec<f64> {
        vec![]
    }
    /// The instantaneous reboot wave: a fraction `f` of ordinary members and `c` of serving
    /// members go down at once. Models without such a notion refuse it.
    ///
    /// Generic over the scalar so that the sensitivity of the state after the wave to the
    /// state before it, the parameters and the fractions is exact.
    fn reboot_jump<T: Scalar>(
        &self,
        _x: &SVector<T, N>,
        _p: &[T],
        _f: T,
        _c: T,
    ) -> Result<SVector<T, N>, Error> {
        Err(Error::Unsupported(format!(
            "model `{}` does not define a reboot wave",
            self.name()
        )))
    }
    /// The flow added while a reboot wave is spread over a window, with per-member hazards
    /// `eta_p` (ordinary) and `eta_s` (serving). Must tend to [`Model::reboot_jump`] as the
    /// window shrinks.
    fn reboot_flow<T: Scalar>(
        &self,
        _x: &SVector<T, N>,
        _p: &[T],
        _eta_p: T,
        _eta_s: T,
    ) -> SVector<T, N> {
        SVector::from_fn(|_, _| T::from(0.0))
    }

    /// The whole right-hand side in force at `(t, x)`: [`Model::rhs`] plus the flow of a spread
    /// wave when `wave` gives its hazards. What the solvers evaluate; a wrapper model overrides
    /// it to prepare the parameters once for both parts (the sensitivity system lifts them
    /// into dual numbers at `t`). Not meant to be overridden by user models.
    #[doc(hidden)]
    fn rhs_in_force<T: Scalar>(
        &self,
        t: T,
        x: &SVector<T, N>,
        p: &[T],
        wave: Option<(T, T)>,
    ) -> SVector<T, N> {
        let mut d = self.rhs(t, x, p);
        if let Some((ep, es)) = wave {
            d += self.reboot_flow(x, p, ep, es);
        }
        d
    }
}

/// Checks the fractions of an instantaneous wave: each finite and in [0, 1).
pub(crate) fn check_wave(f: f64, c: f64) -> Result<(), Error> {
    for (name, v) in [("fraction", f), ("sn_fraction", c)] {
        if !(v.is_finite() && (0.0..1.0).contains(&v)) {
            return Err(Error::OutOfRange {
                name: format!("shock.{name}"),
                value: v,
                range: "in [0, 1)".into(),
            });
        }
    }
    Ok(())
}

/// Lifts `f64` parameters into a stack buffer of constant duals.
#[inline]
fn dual_params<T: Scalar>(p: &[f64]) -> [T; MAX_PARAMS] {
    debug_assert!(p.len() <= MAX_PARAMS);
    let mut pd = [T::from(0.0); MAX_PARAMS];
    for (d, v) in pd.iter_mut().zip(p) {
        *d = T::from(*v);
    }
    pd
}

/// Calls `f` with the parameters lifted into constant duals, in a stack buffer sized to them
/// (20 or [`MAX_PARAMS`]): the hot path lifts only what the model has.
#[inline]
fn with_dual_params<T: Scalar, R>(p: &[f64], f: impl FnOnce(&[T]) -> R) -> R {
    debug_assert!(p.len() <= MAX_PARAMS);
    if p.len() <= 20 {
        let mut pd = [T::from(0.0); 20];
        for (d, v) in pd.iter_mut().zip(p) {
            *d = T::from(*v);
        }
        f(&pd[..p.len()])
    } else {
        f(&dual_params::<T>(p)[..p.len()])
    }
}

/// A right-hand side with everything but `(t, x)` fixed: what the solvers integrate.
///
/// Built by [`System::new`] from a model and parameters, optionally with a reboot flow active.
pub struct System<'a, M, const N: usize> {
    /// The model.
    pub model: &'a M,
    /// Parameter values in the model's order.
    pub p: &'a [f64],
    /// Per-member reboot hazards `(eta_p, eta_s)` when a spread reboot wave is active.
    pub reboot: Option<(f64, f64)>,
    /// Ramps and daily profiles that move parameters with time (`p` then holds the values in
    /// force, a ramped parameter's target); `None` when the parameters are constant.
    pub schedule: Option<Schedule<'a>>,
}

impl<'a, M: Model<N>, const N: usize> System<'a, M, N> {
    /// A system without a spread reboot wave.
    pub fn new(model: &'a M, p: &'a [f64]) -> Self {
        Self {
            model,
            p,
            reboot: None,
            schedule: None,
        }
    }

    /// Whether `f` does not depend on `t`: the model is autonomous and no parameter moves.
    pub fn autonomous(&self) -> bool {
        self.model.autonomous() && self.schedule.is_none()
    }

    /// `g` of the parameter values in force at `t` (`p` itself when nothing is scheduled).
    #[inline]
    fn in_force<R>(&self, t: f64, g: impl FnOnce(&[f64]) -> R) -> R {
        match &self.schedule {
            None => g(self.p),
            Some(s) => {
                let q = s.apply(t, self.p, |_, r| (r.from, r.at, r.len));
                g(&q[..self.p.len()])
            }
        }
    }

    /// `f(t, x)` in `f64`.
    #[inline]
    pub fn f(&self, t: f64, x: &SVector<f64, N>) -> SVector<f64, N> {
        self.in_force(t, |q| self.model.rhs_in_force(t, x, q, self.reboot))
    }

    /// Generic evaluation with dual parameters already lifted.
    #[inline]
    fn f_dual<T: Scalar>(&self, t: T, x: &SVector<T, N>, pd: &[T]) -> SVector<T, N> {
        let wave = self.reboot.map(|(ep, es)| (T::from(ep), T::from(es)));
        match &self.schedule {
            None => self.model.rhs_in_force(t, x, pd, wave),
            Some(s) => {
                let q = s.apply(t, pd, |_, r| {
                    (T::from(r.from), T::from(r.at), T::from(r.len))
                });
                self.model.rhs_in_force(t, x, &q[..pd.len()], wave)
            }
        }
    }

    /// The exact Jacobian `∂f/∂x` by forward-mode automatic differentiation: one pass with a
    /// dual number that carries all N directions at once.
    pub fn jacobian(&self, t: f64, x: &SVector<f64, N>) -> SMatrix<f64, N, N> {
        self.f_and_jacobian(t, x).1
    }

    /// `f(t, x)` and its exact Jacobian `∂f/∂x`: the model's closed form where it gives one
    /// ([`Model::rhs_and_jacobian`]; not while a spread wave's flow is active, which it does not
    /// include), else [`System::dual_f_and_jacobian`].
    pub fn f_and_jacobian(
        &self,
        t: f64,
        x: &SVector<f64, N>,
    ) -> (SVector<f64, N>, SMatrix<f64, N, N>) {
        let closed = self
            .reboot
            .is_none()
            .then(|| self.in_force(t, |q| self.model.rhs_and_jacobian(t, x, q)));
        closed
            .flatten()
            .unwrap_or_else(|| self.dual_f_and_jacobian(t, x))
    }

    /// `f(t, x)` and its exact Jacobian from one forward-mode pass (the value is the dual
    /// numbers' real part), whatever the model offers in closed form.
    pub fn dual_f_and_jacobian(
        &self,
        t: f64,
        x: &SVector<f64, N>,
    ) -> (SVector<f64, N>, SMatrix<f64, N, N>) {
        let td = DualSVec64::<N>::from_re(t);
        let xd = SVector::<DualSVec64<N>, N>::from_fn(|i, _| {
            DualSVec64::<N>::from_re(x[i]).derivative(i)
        });
        let d = with_dual_params(self.p, |pd| self.f_dual(td, &xd, pd));
        let mut j = SMatrix::<f64, N, N>::zeros();
        for r in 0..N {
            if let Some(g) = &d[r].eps.0 {
                for c in 0..N {
                    j[(r, c)] = g[c];
                }
            }
        }
        (d.map(|v| v.re), j)
    }

    /// `∂f/∂t` by automatic differentiation (zero for autonomous models).
    pub fn time_derivative(&self, t: f64, x: &SVector<f64, N>) -> SVector<f64, N> {
        if self.autonomous() {
            return SVector::zeros();
        }
        let pd = dual_params::<Dual64>(self.p);
        let xd = x.map(Dual64::from_re);
        let d = self.f_dual(Dual64::new(t, 1.0), &xd, &pd[..self.p.len()]);
        d.map(|v| v.eps)
    }

    /// The second and third time derivatives of the solution through `(t, x)`, where
    /// `fx = f(t, x)`: `y'' = f_t + J·f` and `y''' = D²f[(1, f), (1, f)] + J·y''`, from one
    /// second-order and one first-order forward-mode pass.
    pub fn flow_derivatives(
        &self,
        t: f64,
        x: &SVector<f64, N>,
        fx: &SVector<f64, N>,
    ) -> (SVector<f64, N>, SVector<f64, N>) {
        let np = self.p.len();
        let dt = if self.autonomous() { 0.0 } else { 1.0 };
        // Along the line s ↦ (t + s·dt, x + s·f): first derivative y'', second D²f[(1,f),(1,f)].
        let pd2 = dual_params::<Dual2_64>(self.p);
        let xd2 = SVector::<Dual2_64, N>::from_fn(|i, _| Dual2_64::new(x[i], fx[i], 0.0));
        let d2 = self.f_dual(Dual2_64::new(t, dt, 0.0), &xd2, &pd2[..np]);
        let g = d2.map(|v| v.v1);
        let curvature = d2.map(|v| v.v2);
        // J·y'' along x only.
        let pd = dual_params::<Dual64>(self.p);
        let xd = SVector::<Dual64, N>::from_fn(|i, _| Dual64::new(x[i], g[i]));
        let jg = self
            .f_dual(Dual64::from_re(t), &xd, &pd[..np])
            .map(|v| v.eps);
        (g, curvature + jg)
    }

    /// The exact Jacobian together with `∂f/∂p_k` (N + 1 forward-mode passes).
    pub fn jacobian_with_param(
        &self,
        t: f64,
        x: &SVector<f64, N>,
        k: usize,
    ) -> (SMatrix<f64, N, N>, SVector<f64, N>) {
        (self.jacobian(t, x), self.param_derivative(t, x, k))
    }

    /// The second derivative `D²f[(a, α), (b, β)]` of `f` in the state and in parameter `k`,
    /// along directions `(a, α)` and `(b, β)` (one hyper-dual pass).
    pub fn second_derivative(
        &self,
        t: f64,
        x: &SVector<f64, N>,
        k: usize,
        (a, alpha): (&SVector<f64, N>, f64),
        (b, beta): (&SVector<f64, N>, f64),
    ) -> SVector<f64, N> {
        let mut pd = dual_params::<HyperDual64>(self.p);
        pd[k] = HyperDual64::new(self.p[k], alpha, beta, 0.0);
        let xd = SVector::<HyperDual64, N>::from_fn(|i, _| HyperDual64::new(x[i], a[i], b[i], 0.0));
        let d = self.f_dual(HyperDual64::from_re(t), &xd, &pd[..self.p.len()]);
        d.map(|v| v.eps1eps2)
    }

    /// `f` at `x + ε₁a + ε₂b + ε₃c` in one hyper-hyper-dual pass, parameters fixed: part
    /// `eps1eps2eps3` is the third derivative `D³f[a, b, c]` in the state, `eps1eps2` (likewise
    /// `eps1eps3`, `eps2eps3`) the second derivative `D²f[a, b]`, `eps1` the product `J·a`.
    pub fn third_derivative(
        &self,
        t: f64,
        x: &SVector<f64, N>,
        a: &SVector<f64, N>,
        b: &SVector<f64, N>,
        c: &SVector<f64, N>,
    ) -> SVector<HyperHyperDual64, N> {
        let pd = dual_params::<HyperHyperDual64>(self.p);
        let xd = SVector::<HyperHyperDual64, N>::from_fn(|i, _| {
            HyperHyperDual64::new(x[i], a[i], b[i], c[i], 0.0, 0.0, 0.0, 0.0)
        });
        self.f_dual(HyperHyperDual64::from_re(t), &xd, &pd[..self.p.len()])
    }

    /// `∂f/∂p_k` by automatic differentiation.
    pub fn param_derivative(&self, t: f64, x: &SVector<f64, N>, k: usize) -> SVector<f64, N> {
        let mut pd = dual_params::<Dual64>(self.p);
        pd[k].eps = 1.0;
        let xd = x.map(Dual64::from_re);
        let d = self.f_dual(Dual64::from_re(t), &xd, &pd[..self.p.len()]);
        d.map(|v| v.eps)
    }
}

/// The exact Jacobian `∂f/∂x` of a model at `(t, x; p)`.
pub fn jacobian<M: Model<N>, const N: usize>(
    model: &M,
    t: f64,
    x: &SVector<f64, N>,
    p: &[f64],
) -> SMatrix<f64, N, N> {
    System::new(model, p).jacobian(t, x)
}

/// The exact derivative `∂f/∂p_k` of a model's right-hand side in parameter `k`.
pub fn param_derivative<M: Model<N>, const N: usize>(
    model: &M,
    t: f64,
    x: &SVector<f64, N>,
    p: &[f64],
    k: usize,
) -> SVector<f64, N> {
    System::new(model, p).param_derivative(t, x, k)
}

#[cfg(test)]
mod tests {
    use super::textbook::Logistic;
    use super::*;

    #[test]
    fn flow_derivatives_match_hand_differentiated_logistic() {
        // x' = r x (1 − x); x'' = r (1 − 2x) x'; x''' = r ((1 − 2x) x'' − 2 x'²).
        let (r, x) = (0.7, 0.2);
        let p = [r];
        let sys = System::new(&Logistic, &p);
        let f = sys.f(0.0, &SVector::from([x]));
        let (g, j) = sys.flow_derivatives(0.0, &SVector::from([x]), &f);
        let x1 = r * x * (1.0 - x);
        let x2 = r * (1.0 - 2.0 * x) * x1;
        let x3 = r * ((1.0 - 2.0 * x) * x2 - 2.0 * x1 * x1);
        assert!((f[0] - x1).abs() < 1e-16);
        assert!((g[0] - x2).abs() < 1e-16);
        assert!((j[0] - x3).abs() < 1e-16);
        // ∂f/∂r = x (1 − x).
        let dr = sys.param_derivative(0.0, &SVector::from([x]), 0)[0];
        assert!((dr - x * (1.0 - x)).abs() < 1e-16);
    }
}
