//! How a model is solved: methods, tolerances, statistics and dense output.
//!
//! [`integrate`] drives one method over one interval on a [`System`], handing each accepted
//! step (a [`Segment`] of dense output) to an observer that may stop early. Simulations of
//! scenarios ([`crate::simulate`]) chain such intervals across shocks and interventions.

mod dense;
mod explicit;
pub mod rosenbrock;

pub use dense::{Dense, Segment};

use crate::error::{Error, SolverFailure};
use crate::model::{Model, System};
use nalgebra::SVector;
use nalgebra::{Const, DimMin};
use serde::Serialize;
use std::fmt;
use std::str::FromStr;

/// The interval of one integration: from state `y0` at `t0` to time `t1` (`t1 ≥ t0`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Span<const N: usize> {
    /// Start time.
    pub t0: f64,
    /// State at `t0`.
    pub y0: SVector<f64, N>,
    /// End time.
    pub t1: f64,
}

impl<const N: usize> Span<N> {
    /// The span from `(t0, y0)` to `t1`.
    pub fn new(t0: f64, y0: SVector<f64, N>, t1: f64) -> Self {
        Self { t0, y0, t1 }
    }

    /// Refuses a span whose ends are not finite or that ends before it starts (integration
    /// runs forward in time only).
    pub fn check(&self) -> Result<(), Error> {
        if !self.t0.is_finite() {
            return Err(Error::OutOfRange {
                name: "t0".into(),
                value: self.t0,
                range: "finite".into(),
            });
        }
        if !(self.t1.is_finite() && self.t1 >= self.t0) {
            return Err(Error::OutOfRange {
                name: "t1".into(),
                value: self.t1,
                range: format!("finite and at least t0 = {}", self.t0),
            });
        }
        Ok(())
    }
}

/// An observer of accepted steps; returning `true` stops the integration after that step.
pub type Observer<'a, const N: usize> = dyn FnMut(&Segment<N>) -> bool + 'a;

/// Integration method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Rosenbrock when the problem is stiff over the span (spectral radius × span large),
    /// Dopri5 otherwise; an explicit run that detects stiffness continues with Rosenbrock.
    #[default]
    Auto,
    /// Rodas5P, L-stable Rosenbrock method of order 5 with an order-4 interpolant (ours; the
    /// stiff method of choice).
    Rosenbrock,
    /// RODAS4, L-stable Rosenbrock method of order 4 with an order-3 interpolant (ours).
    Rodas4,
    /// Dormand–Prince 5(4), explicit (ode_solvers).
    Dopri5,
    /// Dormand–Prince 8(5,3), explicit (ode_solvers).
    Dop853,
}

impl Method {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Method::Auto => "auto",
            Method::Rosenbrock => "rosenbrock",
            Method::Rodas4 => "rodas4",
            Method::Dopri5 => "dopri5",
            Method::Dop853 => "dop853",
        }
    }

    /// Every method, in CLI order.
    pub const ALL: [Method; 5] = [
        Method::Auto,
        Method::Rosenbrock,
        Method::Rodas4,
        Method::Dopri5,
        Method::Dop853,
    ];
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Method {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Method::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "unknown method `{s}`: must be one of auto, rosenbrock, rodas4, dopri5, dop853"
                ))
            })
    }
}

/// Error tolerances: a step is accepted when the weighted RMS of its error estimate, with
/// weights `atol + rtol·|y|`, is at most 1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Tolerances {
    /// Relative tolerance.
    pub rtol: f64,
    /// Absolute tolerance (populations reach 1e-8 in a collapsed state, so keep it ≲ 1e-12).
    pub atol: f64,
}

impl Default for Tolerances {
    fn default() -> Self {
        Self {
            rtol: 1e-6,
            atol: 1e-12,
        }
    }
}

impl Tolerances {
    /// Checks that both are finite and positive, and that `rtol` is achievable in `f64`.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |name: &str, value: f64, range: &str| Error::OutOfRange {
            name: name.into(),
            value,
            range: range.into(),
        };
        if !(self.rtol.is_finite() && self.rtol >= 1e-14 && self.rtol < 1.0) {
            return Err(bad("rtol", self.rtol, "in [1e-14, 1)"));
        }
        if !(self.atol.is_finite() && self.atol > 0.0 && self.atol < 1.0) {
            return Err(bad("atol", self.atol, "in (0, 1)"));
        }
        Ok(())
    }
}

/// Options of one integration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SolveOptions {
    /// Tolerances.
    pub tol: Tolerances,
    /// Method.
    pub method: Method,
    /// Largest number of steps per interval.
    pub max_steps: usize,
    /// Initial step (automatic when `None`).
    pub h0: Option<f64>,
    /// Largest step (the interval length when `None`).
    pub h_max: Option<f64>,
    /// Whether explicit methods test for stiffness and stop when they find it.
    pub stiffness_detection: bool,
}

impl Default for SolveOptions {
    fn default() -> Self {
        Self {
            tol: Tolerances::default(),
            method: Method::Auto,
            max_steps: 200_000,
            h0: None,
            h_max: None,
            stiffness_detection: true,
        }
    }
}

impl SolveOptions {
    /// Checks every option: the tolerances ([`Tolerances::validate`]), at least one step, and
    /// step sizes, when given, finite and positive. Every analysis calls it before solving.
    pub fn validate(&self) -> Result<(), Error> {
        self.tol.validate()?;
        if self.max_steps == 0 {
            return Err(Error::OutOfRange {
                name: "max_steps".into(),
                value: 0.0,
                range: "at least 1".into(),
            });
        }
        for (name, v) in [("h0", self.h0), ("h_max", self.h_max)] {
            if let Some(h) = v {
                if !(h.is_finite() && h > 0.0) {
                    return Err(Error::OutOfRange {
                        name: name.into(),
                        value: h,
                        range: "finite and > 0 (or automatic)".into(),
                    });
                }
            }
        }
        Ok(())
    }
}

/// Work done by the solver: what a user needs to judge cost and trust.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct SolverStats {
    /// Accepted steps.
    pub steps: usize,
    /// Rejected steps.
    pub rejected: usize,
    /// Right-hand-side evaluations in plain `f64` (the explicit methods' dense output adds its
    /// forward-mode passes here).
    pub rhs_evals: usize,
    /// Jacobian evaluations: each one forward-mode pass carrying all N directions, which also
    /// yields `f` at that point (Rosenbrock steps take their first stage from it).
    pub jac_evals: usize,
    /// Factorisations of the stage matrix `I/(hγ) − J` (one per attempted Rosenbrock step).
    pub lu_decomps: usize,
}

impl std::ops::AddAssign for SolverStats {
    fn add_assign(&mut self, o: Self) {
        self.steps += o.steps;
        self.rejected += o.rejected;
        self.rhs_evals += o.rhs_evals;
        self.jac_evals += o.jac_evals;
        self.lu_decomps += o.lu_decomps;
    }
}

/// Weighted RMS norm of an error estimate.
#[inline]
pub(crate) fn wrms<const N: usize>(
    err: &SVector<f64, N>,
    y0: &SVector<f64, N>,
    y1: &SVector<f64, N>,
    rtol: f64,
    atol: f64,
) -> f64 {
    let mut s = 0.0;
    for i in 0..N {
        let sc = atol + rtol * y0[i].abs().max(y1[i].abs());
        let r = err[i] / sc;
        s += r * r;
    }
    (s / N as f64).sqrt()
}

/// Initial step for a method of order `order` (Hairer, Nørsett & Wanner, Sect. II.4).
pub(crate) fn initial_step<M: Model<N>, const N: usize>(
    sys: &System<'_, M, N>,
    t: f64,
    y: &SVector<f64, N>,
    f0: &SVector<f64, N>,
    order: i32,
    tol: &Tolerances,
    h_max: f64,
) -> f64 {
    let (rtol, atol) = (tol.rtol, tol.atol);
    let z = SVector::<f64, N>::zeros();
    let d0 = wrms(y, y, y, rtol, atol);
    let d1 = wrms(f0, y, y, rtol, atol);
    let h0 = if d0 < 1e-5 || d1 < 1e-5 {
        1e-6
    } else {
        0.01 * d0 / d1
    }
    .min(h_max);
    let y1 = y + f0 * h0;
    let f1 = sys.f(t + h0, &y1);
    let d2 = wrms(&(f1 - f0), y, &z, rtol, atol) / h0;
    let h1 = if d1.max(d2) <= 1e-15 {
        (h0 * 1e-3).max(1e-6)
    } else {
        (0.01 / d1.max(d2)).powf(1.0 / (order as f64 + 1.0))
    };
    (100.0 * h0).min(h1).min(h_max)
}

/// Whether the problem is stiff over `[t0, t1]`: the Jacobian's spectral radius times the span
/// is large enough that an explicit method would be held to its stability limit.
pub fn looks_stiff<M: Model<N>, const N: usize>(
    sys: &System<'_, M, N>,
    t0: f64,
    y0: &SVector<f64, N>,
    t1: f64,
) -> bool
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    let j = sys.jacobian(t0, y0);
    let d = nalgebra::DMatrix::from_column_slice(N, N, j.as_slice());
    // Without eigenvalues, the infinity norm bounds the spectral radius (Gershgorin).
    let radius = match crate::linalg::eigenvalues(&d) {
        Some(ev) => ev.iter().map(|l| l.norm()).fold(0.0, f64::max),
        None => d.row_iter().map(|r| r.abs().sum()).fold(0.0, f64::max),
    };
    radius * (t1 - t0) > 100.0
}

/// Integrates `sys` from `(t0, y0)` to `t1` with the chosen method, handing every accepted step
/// to `observer`. Returns the time and state reached (earlier than `t1` only if the observer
/// stopped the run).
///
/// ```
/// use nalgebra::SVector;
/// use selfheal::model::{Model, ParamSet, P2p, System};
/// use selfheal::solve::{integrate, Method, SolveOptions, SolverStats, Span};
///
/// let p = ParamSet::defaults(P2p.params());
/// let sys = System::new(&P2p, p.values());
/// let opts = SolveOptions { method: Method::Rosenbrock, ..Default::default() };
/// let mut stats = SolverStats::default();
/// let mut steps = 0;
/// let span = Span::new(0.0, SVector::from([0.3, 0.001, 0.0]), 600.0);
/// let (t, y) = integrate(&sys, span, &opts, &mut stats, &mut |_| { steps += 1; false })
///     .unwrap();
/// assert_eq!(t, 600.0);
/// assert!(y.iter().all(|v| *v >= 0.0) && y.sum() <= 1.0);
/// assert_eq!(steps, stats.steps);
/// ```
pub fn integrate<M: Model<N>, const N: usize>(
    sys: &System<'_, M, N>,
    span: Span<N>,
    opts: &SolveOptions,
    stats: &mut SolverStats,
    observer: &mut Observer<'_, N>,
) -> Result<(f64, SVector<f64, N>), Error>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    span.check()?;
    // A span no step can resolve (shorter than the clock's rounding at its ends, or than
    // 1e-300): the state does not move.
    let len = span.t1 - span.t0;
    if len <= 16.0 * f64::EPSILON * span.t0.abs().max(span.t1.abs()) || len < 1e-300 {
        observer(&Segment::constant(span.t0, span.t1, span.y0));
        return Ok((span.t1, span.y0));
    }
    match opts.method {
        Method::Rosenbrock => rosenbrock::integrate(sys, span, opts, stats, observer),
        Method::Rodas4 => {
            rosenbrock::integrate_with(&rosenbrock::RODAS4, sys, span, opts, stats, observer)
        }
        Method::Dopri5 | Method::Dop853 => explicit::integrate(sys, span, opts, stats, observer),
        Method::Auto => {
            if looks_stiff(sys, span.t0, &span.y0, span.t1) {
                return rosenbrock::integrate(sys, span, opts, stats, observer);
            }
            let explicit_opts = SolveOptions {
                method: Method::Dopri5,
                ..*opts
            };
            match explicit::integrate(sys, span, &explicit_opts, stats, observer) {
                Err(Error::Solver {
                    t,
                    state,
                    reason: SolverFailure::Stiff,
                    ..
                }) => {
                    let y = SVector::from_iterator(state);
                    rosenbrock::integrate(sys, Span::new(t, y, span.t1), opts, stats, observer)
                }
                other => other,
            }
        }
    }
}
