//! Calibration: fit chosen parameters of a scenario to an observed series of online users.
//!
//! The fit minimises the weighted sum of squares `χ²(θ) = Σᵢ ((y(tᵢ; θ) − yᵢ)/σᵢ)²`, where
//! `y = online share × population` is what a public counter shows (see [`Model::online`]) and
//! `σᵢ` each reading's uncertainty ([`Weighting`]). Each fitted quantity lives between bounds;
//! the optimisers work on unbounded coordinates `u` with `θ = lo + (hi − lo)·σ(u)` (σ the
//! logistic function; on the logarithm of θ when the bounds span two decades or more).
//!
//! Two argmin methods, usable alone or in turn (the default): Nelder–Mead, which needs only
//! `χ²`, and L-BFGS with the exact gradient from forward sensitivities (the model extended by its sensitivities, `calibrate/sens.rs`). How
//! well each parameter is determined comes from the Gauss–Newton approximation of the Hessian
//! at the optimum: `Cov(θ) = s²·(JᵀJ)⁻¹`, `J = ∂r/∂θ` the weighted residuals' exact Jacobian,
//! `s² = χ²/(n − k)` (the weights are judged only relative to each other, so their scale is
//! estimated from the fit); intervals use Student's t with `n − k` degrees of freedom.
//! Readings before `t = 0` are compared with the initial state (the scenario holds it until
//! `t = 0`).
//!
//! ```
//! use selfheal::calibrate::{calibrate, CalibrateOptions, FitParam, Reading};
//! use selfheal::model::P2p;
//! use selfheal::scenario::{Scenario, Shock};
//! use selfheal::simulate::{simulate, SimOptions};
//!
//! // Readings made by the model itself with a 0.3 wave at t = 60 min ...
//! let mut truth = Scenario::new(&P2p);
//! truth.shock = Some(Shock { at: 60.0, ..Shock::instantaneous(0.3) });
//! let sim = simulate(&P2p, &truth, &SimOptions::default()).unwrap();
//! let readings: Vec<Reading> = (0..24).map(|h| {
//!     let t = 60.0 * h as f64 + 30.0;
//!     let x = sim.dense.eval(t).unwrap();
//!     Reading::new(t, (x[0] + x[1]) * truth.population, 1e4)
//! }).collect();
//! // ... are fitted from a wrong guess of the wave's size.
//! let mut guess = truth.clone();
//! guess.shock = Some(Shock { at: 60.0, ..Shock::instantaneous(0.1) });
//! let fit_params = vec![FitParam::new("shock", &guess).unwrap()];
//! // N = 3 states, and 2N = 6 for the state with its sensitivity.
//! let fit = calibrate::<_, 3, 6>(&P2p, &guess, &readings, fit_params, &CalibrateOptions::default())
//!     .unwrap();
//! assert!((fit.params[0].value - 0.3).abs() < 1e-4);
//! ```

pub mod data;
mod output;
mod profile;
pub(crate) mod sens;
pub mod stats;

pub use data::{parse_utc, read_readings, seconds_per_unit, Reading, Weighting};
pub use output::{fitted_toml, readings_between, residual_rows_csv, residuals_csv, Provenance};
pub use profile::{level_percent, Profile, ProfileEnd};

use crate::equilibria::{rest_state, RestState};
use crate::error::Error;
use crate::model::{Bound, Model, ParamSpec};
use crate::scenario::Quantity;
use crate::scenario::Scenario;
use crate::simulate::{simulate_with, Outcome, SimOptions};
use crate::solve::{Method, SolveOptions, SolverStats, Tolerances};
use argmin::core::{CostFunction, Executor, Gradient, State};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::neldermead::NelderMead;
use argmin::solver::quasinewton::LBFGS;
use nalgebra::{Const, DMatrix, DimMin};
use serde::Serialize;
use std::cell::{Cell, RefCell};

impl Reading {
    /// A reading at `t` minutes of `users` with standard deviation `sigma` (no clock time,
    /// note or source): for readings made in code.
    pub fn new(t: f64, users: f64, sigma: f64) -> Self {
        Self {
            time: String::new(),
            t,
            users,
            sigma,
            sigma_from: "column",
            note: String::new(),
            source: String::new(),
        }
    }
}

/// One fitted quantity with its bounds and starting value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FitParam {
    /// The name as given (a parameter, `shock`, `sn_shock`, `window`, `shock_at`,
    /// `population`, `intervention.K.at`, `intervention.K.NAME`).
    pub name: String,
    /// What it sets.
    #[serde(skip)]
    pub quantity: Quantity,
    /// Lower bound.
    pub lo: f64,
    /// Upper bound.
    pub hi: f64,
    /// The starting value (the scenario's).
    pub start: f64,
    /// The parameter's table entry, whose range the bounds must lie in (parameters only).
    #[serde(skip)]
    spec: Option<ParamSpec>,
}

/// Why `t_end` is never a fitted quantity.
pub(crate) fn t_end_refused() -> Error {
    Error::Invalid("`t_end` cannot be fitted: it only says how long to simulate".into())
}

impl FitParam {
    /// The quantity `name` of `sc`, starting from its value there, with default bounds: a
    /// parameter's valid range where finite (otherwise from 1/100 to 100 times the start),
    /// fractions in [0, 0.99], times ±12 h around the start within the horizon, windows and
    /// the population from 1/100 to 100 times the start.
    pub fn new(name: &str, sc: &Scenario) -> Result<Self, Error> {
        let quantity = Quantity::parse(name, sc)?;
        if quantity == Quantity::TEnd {
            return Err(t_end_refused());
        }
        let start = quantity.value(sc).ok_or_else(|| {
            Error::Invalid(format!(
                "`{name}` cannot be fitted: the scenario has no [shock]"
            ))
        })?;
        let decades = |what: &str| -> Result<(f64, f64), Error> {
            if start > 0.0 {
                Ok((start / 100.0, start * 100.0))
            } else {
                Err(Error::Invalid(format!(
                    "`{name}` starts at {start}: give its bounds as {name}=LO:HI ({what})"
                )))
            }
        };
        let (lo, hi) = match quantity {
            Quantity::Param(i) | Quantity::Intervention { param: i, .. } => {
                let spec = &sc.params.specs()[i];
                let inward = |b: f64, towards: f64| b + 1e-9 * (towards - b);
                match (spec.lower, spec.upper) {
                    (Bound::Closed(a) | Bound::Open(a), Bound::Closed(b) | Bound::Open(b)) => {
                        let lo = if matches!(spec.lower, Bound::Open(_)) {
                            inward(a, b)
                        } else {
                            a
                        };
                        let hi = if matches!(spec.upper, Bound::Open(_)) {
                            inward(b, a)
                        } else {
                            b
                        };
                        (lo, hi)
                    }
                    _ => {
                        let (lo, hi) = decades("its valid range is unbounded")?;
                        let lo = match spec.lower {
                            Bound::Closed(a) | Bound::Open(a) => lo.max(a),
                            Bound::Unbounded => lo,
                        };
                        (lo, hi)
                    }
                }
            }
            Quantity::Shock | Quantity::SnShock => (0.0, 0.99),
            Quantity::Window => {
                let room = sc.t_end - sc.shock.map_or(0.0, |s| s.at);
                let (lo, hi) = decades("an instantaneous wave has no window to fit")?;
                (lo, hi.min(room))
            }
            Quantity::ShockAt | Quantity::InterventionAt { .. } => {
                ((start - 720.0).max(0.0), (start + 720.0).min(sc.t_end))
            }
            Quantity::InterventionRamp { k } => {
                let room = sc.t_end - sc.interventions[k].at;
                let (lo, hi) = decades("a step (ramp = 0) has no ramp length to fit")?;
                (lo, hi.min(room))
            }
            Quantity::Population => decades("a population must be > 0")?,
            Quantity::TEnd => unreachable!("refused above"),
        };
        let spec = match quantity {
            Quantity::Param(i) | Quantity::Intervention { param: i, .. } => {
                Some(sc.params.specs()[i].clone())
            }
            _ => None,
        };
        let mut fp = Self {
            name: name.to_string(),
            quantity,
            lo,
            hi,
            start,
            spec,
        };
        fp.set_bounds(lo, hi)?;
        Ok(fp)
    }

    /// Sets the bounds; the start must lie strictly inside them.
    pub fn set_bounds(&mut self, lo: f64, hi: f64) -> Result<(), Error> {
        if !(lo.is_finite() && hi.is_finite() && lo < hi) {
            return Err(Error::Invalid(format!(
                "bounds of `{}`: need finite LO < HI, got {lo}:{hi}",
                self.name
            )));
        }
        for b in [lo, hi] {
            let refused = match &self.spec {
                Some(spec) => (!spec.admits(b)).then(|| spec.range_text()),
                None => self.quantity.valid_range_refuses(b),
            };
            if let Some(range) = refused {
                return Err(Error::OutOfRange {
                    name: format!("{} (bound)", self.name),
                    value: b,
                    range,
                });
            }
        }
        if !(self.start > lo && self.start < hi) {
            return Err(Error::OutOfRange {
                name: format!("{} (start value)", self.name),
                value: self.start,
                range: format!("strictly inside its bounds ({lo}, {hi})"),
            });
        }
        self.lo = lo;
        self.hi = hi;
        Ok(())
    }

    /// Whether the optimiser moves on θ's logarithm: bounds that span two decades or more.
    pub fn log_scale(&self) -> bool {
        self.lo > 0.0 && self.hi / self.lo >= 100.0
    }

    /// θ from the optimiser's coordinate `u`, and `dθ/du`.
    fn value_at(&self, u: f64) -> (f64, f64) {
        let s = 1.0 / (1.0 + (-u).exp());
        let ds = s * (1.0 - s);
        if self.log_scale() {
            let (a, b) = (self.lo.ln(), self.hi.ln());
            let th = (a + (b - a) * s).exp();
            (th, th * (b - a) * ds)
        } else {
            (self.lo + (self.hi - self.lo) * s, (self.hi - self.lo) * ds)
        }
    }

    /// The optimiser's coordinate of θ (strictly inside the bounds).
    fn coord_of(&self, th: f64) -> f64 {
        let s = if self.log_scale() {
            (th.ln() - self.lo.ln()) / (self.hi.ln() - self.lo.ln())
        } else {
            (th - self.lo) / (self.hi - self.lo)
        };
        let s = s.clamp(1e-12, 1.0 - 1e-12);
        (s / (1.0 - s)).ln()
    }
}

/// Which optimiser(s) to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FitMethod {
    /// Nelder–Mead (derivative-free).
    NelderMead,
    /// L-BFGS with the exact gradient (More–Thuente line search).
    Lbfgs,
    /// Nelder–Mead, then L-BFGS from its result.
    Both,
}

impl FitMethod {
    /// Parses `nelder-mead`, `lbfgs` or `both`.
    pub fn parse(s: &str) -> Result<Self, Error> {
        match s {
            "nelder-mead" => Ok(Self::NelderMead),
            "lbfgs" => Ok(Self::Lbfgs),
            "both" => Ok(Self::Both),
            other => Err(Error::Invalid(format!(
                "unknown fit method `{other}`: use nelder-mead, lbfgs or both"
            ))),
        }
    }
}

/// Options of a calibration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CalibrateOptions {
    /// Solver options of every trajectory (tight by default: the optimisers need a smooth
    /// objective).
    pub solve: SolveOptions,
    /// Which optimiser(s).
    pub method: FitMethod,
    /// Iteration limit of each local search.
    pub max_iters: u64,
    /// Starts of the global phase, at least: the scenario's values and `starts − 1` points
    /// spread over the bounds (the fate of a trajectory can flip across a tipping point, so
    /// χ² may have several basins). When the best value found was reached by one start only,
    /// another `starts` are run, until it repeats or `max_starts` have run.
    pub starts: usize,
    /// Most starts of the global phase.
    pub max_starts: usize,
    /// Confidence level of the reported intervals.
    pub level: f64,
    /// Also compute profile-likelihood intervals ([`Profile`]): each fitted quantity moved
    /// until `χ²`, re-optimised over the others, has risen by the interval's threshold.
    /// Costs a few dozen local searches per quantity.
    pub profile: bool,
}

impl Default for CalibrateOptions {
    fn default() -> Self {
        Self {
            solve: SolveOptions {
                method: Method::Rosenbrock,
                tol: Tolerances {
                    rtol: 1e-8,
                    atol: 1e-13,
                },
                ..SolveOptions::default()
            },
            method: FitMethod::Both,
            max_iters: 2000,
            starts: 8,
            max_starts: 64,
            level: 0.95,
            profile: false,
        }
    }
}

/// One fitted quantity's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fitted {
    /// Name.
    pub name: String,
    /// Starting value.
    pub start: f64,
    /// Fitted value.
    pub value: f64,
    /// Standard error (Gauss–Newton, scaled by the reduced χ²); `None` when not determined.
    pub sd: Option<f64>,
    /// Confidence interval at the requested level from the Gauss–Newton standard error,
    /// symmetric in the quantity's interval coordinate (its logarithm when the fit moves on
    /// the logarithm, so a positive quantity's interval stays positive) and within the
    /// bounds; `None` when not determined.
    pub interval: Option<(f64, f64)>,
    /// The profile-likelihood interval at the same level (computed when
    /// [`CalibrateOptions::profile`] is set).
    pub profile: Option<Profile>,
    /// Bounds.
    pub bounds: (f64, f64),
    /// Whether the value sits on a bound (then its interval means little).
    pub at_bound: bool,
}

/// One reading compared with the fitted model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Residual {
    /// Clock time as written.
    pub time: String,
    /// Minutes from `t = 0`.
    pub t: f64,
    /// Observed users.
    pub observed: f64,
    /// Model users.
    pub model: f64,
    /// The reading's standard deviation.
    pub sigma: f64,
    /// `(model − observed)/sigma`.
    pub z: f64,
}

/// What one optimiser did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stage {
    /// Method name.
    pub method: &'static str,
    /// Local searches run (one per start).
    pub starts: usize,
    /// Iterations.
    pub iterations: u64,
    /// Objective evaluations.
    pub cost_evals: usize,
    /// Gradient evaluations (each is one sensitivity solve per fitted quantity).
    pub gradient_evals: usize,
    /// χ² reached.
    pub chi2: f64,
    /// Why it stopped.
    pub stopped: String,
}

/// A local optimum reached by starts of the global phase.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LocalOptimum {
    /// `χ²` there.
    pub chi2: f64,
    /// How many starts reached it.
    pub found: usize,
    /// The fitted values where the first of them stopped.
    pub theta: Vec<f64>,
}

/// Whether two local searches stopped at the same optimum: `χ²` equal to 1e-3 relative
/// (1e-6 absolute near zero).
fn same_optimum(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-3 * a.abs().min(b.abs()) + 1e-6
}

/// The result of a calibration.
#[derive(Debug, Clone, Serialize)]
pub struct Fit {
    /// The fitted quantities, in the order given.
    pub params: Vec<Fitted>,
    /// Readings used.
    pub n_readings: usize,
    /// χ² at the optimum.
    pub chi2: f64,
    /// χ² at the start.
    pub chi2_start: f64,
    /// χ²/(n − k) (`None` when n ≤ k).
    pub reduced_chi2: Option<f64>,
    /// Root-mean-square error in users (unweighted).
    pub rmse: f64,
    /// Correlations of the fitted quantities (row-major k × k; empty when not determined).
    pub correlation: Vec<Vec<f64>>,
    /// Each reading against the fitted model.
    pub residuals: Vec<Residual>,
    /// The optimisers run, in order.
    pub stages: Vec<Stage>,
    /// The distinct local optima the global phase's starts reached (best first; two starts
    /// reached the same one when their χ² agree to 1e-3 relative).
    pub optima: Vec<LocalOptimum>,
    /// Solver work of every trajectory of the calibration.
    pub stats: SolverStats,
    /// Confidence level of the intervals.
    pub level: f64,
    /// Each reading's leverage (the diagonal of the weighted hat matrix; empty when the
    /// quantities are not determined): the share of the fit it decides. They sum to the number
    /// of fitted quantities; a reading near 1 fixes a direction by itself.
    pub leverage: Vec<f64>,
    /// What the user should know before trusting the intervals (values on bounds,
    /// undetermined or strongly correlated quantities, a reading that decides the fit alone).
    pub warnings: Vec<String>,
    /// The scenario with the fitted values.
    #[serde(skip)]
    pub scenario: Scenario,
}

/// The least-squares problem on the optimiser's coordinates.
struct Problem<'a, M, const N: usize> {
    model: &'a M,
    base: &'a Scenario,
    readings: &'a [Reading],
    fit: &'a [FitParam],
    horizon: f64,
    opts: &'a CalibrateOptions,
    stats: RefCell<SolverStats>,
    cost_evals: Cell<usize>,
    gradient_evals: Cell<usize>,
    /// Healthy states of recently seen parameter vectors (most fitted quantities leave the
    /// initial and final parameters unchanged, and the search for them dominates a solve).
    healthy: RefCell<Vec<(Vec<f64>, RestState<N>)>>,
    /// With daily profiles: the start (the healthy daily cycle's state at `t = 0` and its
    /// monodromy matrix) of recently seen initial parameters and profiles (the cycle search
    /// costs many solves; most fitted quantities leave it unchanged).
    /// Each with whether its cycle is healthy: the healthy ones are where the cycle of new
    /// parameters is shot from.
    cycles: RefCell<Vec<(Vec<f64>, sens::Start<N>, bool)>>,
}

impl<M: Model<N>, const N: usize> Problem<'_, M, N>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    fn healthy_of(&self, p: &[f64]) -> Result<RestState<N>, Error> {
        if let Some((_, x)) = self.healthy.borrow().iter().find(|(q, _)| q == p) {
            return Ok(*x);
        }
        let x = rest_state(self.model, p)?;
        let mut cache = self.healthy.borrow_mut();
        if cache.len() >= 8 {
            cache.remove(0);
        }
        cache.push((p.to_vec(), x));
        Ok(x)
    }

    /// Where `sc` starts: the healthy equilibrium of its initial parameters, or with daily
    /// profiles the healthy daily cycle's state at `t = 0` and its monodromy matrix.
    fn start_of(&self, sc: &Scenario, stats: &mut SolverStats) -> Result<sens::Start<N>, Error> {
        let p = sc.params.values();
        if sc.daily.is_empty() {
            return Ok(sens::Start::Equilibrium(self.healthy_of(p)?.x));
        }
        // The key: the initial parameters and every profile (the clock is the scenario's).
        let mut key = p.to_vec();
        for d in &sc.daily {
            key.push(d.param as f64);
            key.extend_from_slice(&d.hourly);
        }
        if let Some((_, start, _)) = self.cycles.borrow().iter().find(|(k, ..)| *k == key) {
            return Ok(*start);
        }
        let forcing = crate::periodic::Forcing {
            p,
            daily: &sc.daily,
            clock: sc.clock(self.model)?,
        };
        // Warm: Newton from the healthy cycle of the nearest parameters seen (relative
        // distance of the keys); the full search when that fails or lands on anything but a
        // stable healthy cycle.
        let near = self
            .cycles
            .borrow()
            .iter()
            .filter(|(.., healthy)| *healthy)
            .map(|(k, start, _)| {
                let d = k
                    .iter()
                    .zip(&key)
                    .map(|(a, b)| (a - b).abs() / (a.abs().max(b.abs()) + 1e-300))
                    .fold(0.0, f64::max);
                (d, start.x())
            })
            .min_by(|a, b| a.0.total_cmp(&b.0));
        let warm = match near {
            Some((_, x0)) => crate::periodic::healthy_cycle_from(
                self.model,
                &forcing,
                0.0,
                &x0,
                &self.opts.solve,
                stats,
            )?,
            None => None,
        };
        let rest = match warm {
            Some(rest) => rest,
            None => {
                crate::periodic::rest_cycle(self.model, &forcing, 0.0, &self.opts.solve, stats)
                    .map_err(|e| e.context("the daily cycle the scenario starts on"))?
                    .0
            }
        };
        let start = sens::Start::Cycle {
            x0: rest.cycle.state_at(0.0),
            monodromy: rest.cycle.monodromy,
        };
        let mut cache = self.cycles.borrow_mut();
        if cache.len() >= 8 {
            cache.remove(0);
        }
        cache.push((key, start, rest.healthy));
        Ok(start)
    }

    fn theta(&self, u: &[f64]) -> Vec<f64> {
        self.fit
            .iter()
            .zip(u)
            .map(|(f, u)| f.value_at(*u).0)
            .collect()
    }

    /// The scenario at θ, simulated to the last reading.
    fn scenario(&self, theta: &[f64]) -> Result<Scenario, Error> {
        let mut sc = self.base.clone();
        for (f, v) in self.fit.iter().zip(theta) {
            f.quantity.apply(&mut sc, *v)?;
        }
        sc.t_end = self.horizon;
        sc.validate(self.model)?;
        Ok(sc)
    }

    /// Model users at each reading.
    fn predict(&self, theta: &[f64]) -> Result<Vec<f64>, Error> {
        self.predict_with(theta, self.opts.solve)
    }

    /// Model users at each reading, solved with `solve`.
    fn predict_with(&self, theta: &[f64], solve: SolveOptions) -> Result<Vec<f64>, Error> {
        let sc = self.scenario(theta)?;
        let opts = SimOptions {
            solve,
            dt: self.horizon,
            settle_horizon: 0.0,
        };
        let dense = if sc.daily.is_empty() {
            let sim = simulate_with(self.model, &sc, &opts, &mut |p: &[f64]| self.healthy_of(p))?;
            *self.stats.borrow_mut() += sim.summary.stats;
            sim.dense
        } else {
            // Only the trajectory is compared: its start from the cache, no search for the
            // cycles it ends near.
            let mut stats = SolverStats::default();
            let x0 = match &sc.initial {
                Some(v) => nalgebra::SVector::from_iterator(v.iter().copied()),
                None => self.start_of(&sc, &mut stats)?.x(),
            };
            let clock = Some(sc.clock(self.model)?);
            let (dense, run) = crate::simulate::trajectory_from(self.model, &sc, clock, &opts, x0)?;
            stats += run;
            *self.stats.borrow_mut() += stats;
            dense
        };
        Ok(self
            .readings
            .iter()
            .map(|r| {
                let x = dense.eval(r.t.max(0.0)).expect("a simulation is not empty");
                self.model.online(&x) * sc.population
            })
            .collect())
    }

    fn chi2(&self, theta: &[f64]) -> Result<f64, Error> {
        Ok(self
            .z_scores(&self.predict(theta)?)
            .iter()
            .map(|z| z * z)
            .sum())
    }

    /// Weighted residuals `(model − reading)/σ` of model users `y` at each reading.
    fn z_scores(&self, y: &[f64]) -> Vec<f64> {
        self.readings
            .iter()
            .zip(y)
            .map(|(r, m)| (m - r.users) / r.sigma)
            .collect()
    }
}

impl<M: Model<N>, const N: usize> Problem<'_, M, N>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    /// Weighted residuals and their exact Jacobian in θ (n × k), one sensitivity solve per
    /// fitted quantity.
    fn residuals_and_jacobian<const N2: usize>(
        &self,
        theta: &[f64],
    ) -> Result<(Vec<f64>, DMatrix<f64>), Error>
    where
        Const<N2>: DimMin<Const<N2>, Output = Const<N2>>,
    {
        self.residuals_and_jacobian_but::<N2>(theta, None)
    }

    /// [`Self::residuals_and_jacobian`] without the column `skip` (left zero, its solve not
    /// run): what a profile, which holds one quantity fixed, needs.
    fn residuals_and_jacobian_but<const N2: usize>(
        &self,
        theta: &[f64],
        skip: Option<usize>,
    ) -> Result<(Vec<f64>, DMatrix<f64>), Error>
    where
        Const<N2>: DimMin<Const<N2>, Output = Const<N2>>,
    {
        let sc = self.scenario(theta)?;
        let (n, k) = (self.readings.len(), self.fit.len());
        let mut jac = DMatrix::zeros(n, k);
        let first = (0..k).find(|j| Some(*j) != skip);
        let Some(first) = first else {
            // Nothing to differentiate: the residuals from a plain run.
            let y = self.predict(theta)?;
            let r = self
                .readings
                .iter()
                .zip(&y)
                .map(|(rd, m)| (m - rd.users) / rd.sigma)
                .collect();
            return Ok((r, jac));
        };
        let mut r = vec![0.0; n];
        let mut stats = SolverStats::default();
        let start = self.start_of(&sc, &mut stats)?;
        for (j, f) in self.fit.iter().enumerate() {
            if Some(j) == skip {
                continue;
            }
            let dense = sens::sensitivity_run::<M, N, N2>(
                self.model,
                &sc,
                &f.quantity,
                self.horizon,
                &start,
                &self.opts.solve,
                &mut stats,
            )?;
            for (i, rd) in self.readings.iter().enumerate() {
                let xa = dense.eval(rd.t.max(0.0)).expect("a solve is not empty");
                let (y, dy) = sens::online_and_sensitivity::<M, N, N2>(self.model, &xa);
                let dy_users = if f.quantity == Quantity::Population {
                    y
                } else {
                    dy * sc.population
                };
                jac[(i, j)] = dy_users / rd.sigma;
                if j == first {
                    r[i] = (y * sc.population - rd.users) / rd.sigma;
                }
            }
        }
        *self.stats.borrow_mut() += stats;
        Ok((r, jac))
    }
}

/// χ² on the optimiser's coordinates (for argmin), with the exact gradient.
struct Objective<'a, 'b, M, const N: usize, const N2: usize> {
    problem: &'b Problem<'a, M, N>,
    /// Nelder–Mead treats an infeasible or failed point as +∞ rather than an error.
    infinite_on_error: bool,
    /// A coordinate held fixed `(index, u)` (a profile): the optimiser then moves the others.
    fixed: Option<(usize, f64)>,
}

impl<M, const N: usize, const N2: usize> Objective<'_, '_, M, N, N2> {
    /// All coordinates from the optimiser's (the fixed one put back in).
    fn full(&self, v: &[f64]) -> Vec<f64> {
        let mut u = v.to_vec();
        if let Some((j, uj)) = self.fixed {
            u.insert(j, uj);
        }
        u
    }
}

impl<M: Model<N>, const N: usize, const N2: usize> CostFunction for Objective<'_, '_, M, N, N2>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    type Param = Vec<f64>;
    type Output = f64;
    fn cost(&self, u: &Vec<f64>) -> Result<f64, argmin::core::Error> {
        let p = self.problem;
        p.cost_evals.set(p.cost_evals.get() + 1);
        match p.chi2(&p.theta(&self.full(u))) {
            Ok(c) => Ok(c),
            Err(_) if self.infinite_on_error => Ok(f64::INFINITY),
            Err(e) => Err(argmin::core::Error::new(e)),
        }
    }
}

impl<M: Model<N>, const N: usize, const N2: usize> Gradient for Objective<'_, '_, M, N, N2>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
    Const<N2>: DimMin<Const<N2>, Output = Const<N2>>,
{
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;
    fn gradient(&self, u: &Vec<f64>) -> Result<Vec<f64>, argmin::core::Error> {
        let p = self.problem;
        p.gradient_evals.set(p.gradient_evals.get() + 1);
        let full = self.full(u);
        let skip = self.fixed.map(|(j, _)| j);
        let (r, jac) = p
            .residuals_and_jacobian_but::<N2>(&p.theta(&full), skip)
            .map_err(argmin::core::Error::new)?;
        // Chain rule to the optimiser's coordinates: dχ²/du = dχ²/dθ · dθ/du.
        Ok(chi2_grad(&r, &jac)
            .into_iter()
            .zip(p.fit.iter().zip(&full))
            .enumerate()
            .filter(|(j, _)| Some(*j) != skip)
            .map(|(_, (g, (f, u)))| g * f.value_at(*u).1)
            .collect())
    }
}

/// Best point, its cost, iterations and why the solver stopped.
fn summary<S: State<Param = Vec<f64>, Float = f64>>(
    st: &S,
) -> (Option<Vec<f64>>, f64, u64, String) {
    (
        st.get_best_param().cloned(),
        st.get_best_cost(),
        st.get_iter(),
        st.get_termination_reason()
            .map_or_else(|| "unknown".into(), |r| r.text().to_string()),
    )
}

/// The gradient of `χ²` in θ at `theta` from forward sensitivities (exact up to the solver
/// tolerance): `2·Jᵀr`. For checks and for users who run their own optimiser.
pub fn chi2_gradient<M: Model<N>, const N: usize, const N2: usize>(
    model: &M,
    sc: &Scenario,
    readings: &[Reading],
    fit: &[FitParam],
    theta: &[f64],
    opts: &CalibrateOptions,
) -> Result<(f64, Vec<f64>), Error>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
    Const<N2>: DimMin<Const<N2>, Output = Const<N2>>,
{
    let problem = problem(model, sc, readings, fit, opts)?;
    let (r, jac) = problem.residuals_and_jacobian::<N2>(theta)?;
    Ok((r.iter().map(|v| v * v).sum(), chi2_grad(&r, &jac)))
}

/// `∇θ χ² = 2·Jᵀr` from the weighted residuals `r` and their Jacobian `J`.
fn chi2_grad(r: &[f64], jac: &DMatrix<f64>) -> Vec<f64> {
    (0..jac.ncols())
        .map(|j| {
            2.0 * r
                .iter()
                .enumerate()
                .map(|(i, ri)| ri * jac[(i, j)])
                .sum::<f64>()
        })
        .collect()
}

/// `χ²` at `theta` from a plain simulation (what Nelder–Mead minimises).
pub fn chi2<M: Model<N>, const N: usize>(
    model: &M,
    sc: &Scenario,
    readings: &[Reading],
    fit: &[FitParam],
    theta: &[f64],
    opts: &CalibrateOptions,
) -> Result<f64, Error>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    problem(model, sc, readings, fit, opts)?.chi2(theta)
}

fn problem<'a, M: Model<N>, const N: usize>(
    model: &'a M,
    sc: &'a Scenario,
    readings: &'a [Reading],
    fit: &'a [FitParam],
    opts: &'a CalibrateOptions,
) -> Result<Problem<'a, M, N>, Error> {
    if readings.is_empty() {
        return Err(Error::Invalid(
            "calibration needs at least one reading".into(),
        ));
    }
    for r in readings {
        if let Some(why) = r.refusal() {
            return Err(Error::Invalid(format!("the reading {}: {why}", r.label())));
        }
    }
    if fit.is_empty() {
        return Err(Error::Invalid("name at least one quantity to fit".into()));
    }
    for (a, f) in fit.iter().enumerate() {
        if fit[..a].iter().any(|g| g.quantity == f.quantity) {
            return Err(Error::Invalid(format!(
                "`{}` is named twice among the fitted quantities",
                f.name
            )));
        }
        let both = |x: Quantity, y: Quantity| {
            (f.quantity == x && fit.iter().any(|g| g.quantity == y))
                || (f.quantity == y && fit.iter().any(|g| g.quantity == x))
        };
        if both(Quantity::Shock, Quantity::SnShock) {
            return Err(Error::Invalid(
                "fit either `shock` (peers and supernodes alike) or `sn_shock`, not both".into(),
            ));
        }
    }
    if !(opts.level > 0.0 && opts.level < 1.0) {
        return Err(Error::OutOfRange {
            name: "level".into(),
            value: opts.level,
            range: "in (0, 1)".into(),
        });
    }
    opts.solve.validate()?;
    let last = readings
        .iter()
        .map(|r| r.t)
        .fold(f64::NEG_INFINITY, f64::max);
    Ok(Problem {
        model,
        base: sc,
        readings,
        fit,
        horizon: sc.t_end.max(last),
        opts,
        stats: RefCell::new(SolverStats::default()),
        cost_evals: Cell::new(0),
        gradient_evals: Cell::new(0),
        cycles: RefCell::new(vec![]),
        healthy: RefCell::new(vec![]),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Local {
    NelderMead,
    Lbfgs,
}

impl Local {
    fn name(self) -> &'static str {
        match self {
            Local::NelderMead => "nelder-mead",
            Local::Lbfgs => "lbfgs",
        }
    }
}

/// The given start and `count − 1` more spread over the box of bounds (Sobol' points on the
/// logistic scale, kept 2 % away from the bounds).
fn start_points(fit: &[FitParam], count: usize) -> Result<Vec<Vec<f64>>, Error> {
    if count == 0 {
        return Err(Error::OutOfRange {
            name: "starts".into(),
            value: 0.0,
            range: "at least 1".into(),
        });
    }
    if count > 1 && fit.len() > crate::qmc::SOBOL_DIMS {
        return Err(Error::Invalid(format!(
            "several starts spread over at most {} fitted quantities; use 1 start for {}",
            crate::qmc::SOBOL_DIMS,
            fit.len()
        )));
    }
    let mut out = vec![fit.iter().map(|f| f.coord_of(f.start)).collect()];
    for i in 1..count as u64 {
        out.push(
            (0..fit.len())
                .map(|d| {
                    let s = 0.02 + 0.96 * crate::qmc::sobol(i, d, 0);
                    (s / (1.0 - s)).ln()
                })
                .collect(),
        );
    }
    Ok(out)
}

/// One local search from `u0`: `(u, χ², iterations, why it stopped)`. With `fixed =
/// Some((j, u_j))` coordinate `j` stays at `u_j` and `u0` and the result hold the others.
fn local_search<M: Model<N>, const N: usize, const N2: usize>(
    problem: &Problem<'_, M, N>,
    method: Local,
    u0: &[f64],
    max_iters: u64,
    fixed: Option<(usize, f64)>,
) -> Result<(Vec<f64>, f64, u64, String), Error>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
    Const<N2>: DimMin<Const<N2>, Output = Const<N2>>,
{
    let obj: Objective<'_, '_, M, N, N2> = Objective {
        problem,
        infinite_on_error: method == Local::NelderMead,
        fixed,
    };
    // Our own errors come back through argmin typed (a solver failure stays a solver failure);
    // argmin's own are described.
    let fail = |e: argmin::core::Error| match e.downcast::<Error>() {
        Ok(ours) => ours.context(method.name()),
        Err(theirs) => Error::Invalid(format!("{}: {theirs}", method.name())),
    };
    let (param, cost, iters, reason) = match method {
        Local::NelderMead => {
            let mut simplex = vec![u0.to_vec()];
            for j in 0..u0.len() {
                let mut v = u0.to_vec();
                v[j] += 0.5;
                simplex.push(v);
            }
            let solver = NelderMead::new(simplex)
                .with_sd_tolerance(1e-6)
                .map_err(fail)?;
            let res = Executor::new(obj, solver)
                .configure(|s| s.max_iters(max_iters))
                .run()
                .map_err(fail)?;
            summary(res.state())
        }
        Local::Lbfgs => {
            let solver = LBFGS::new(MoreThuenteLineSearch::new(), 7)
                .with_tolerance_grad(1e-9)
                .and_then(|s| s.with_tolerance_cost(1e-13))
                .map_err(fail)?;
            let res = Executor::new(obj, solver)
                .configure(|s| s.param(u0.to_vec()).max_iters(max_iters))
                .run()
                .map_err(fail)?;
            summary(res.state())
        }
    };
    let u = param.ok_or_else(|| Error::Invalid(format!("{}: no point found", method.name())))?;
    Ok((u, cost, iters, reason))
}

/// Fits the quantities `fit` of scenario `sc` to `readings`. `N2` must be `2N` (the state
/// and its sensitivity are integrated together); for the reference model, `N = 3, N2 = 6`.
pub fn calibrate<M: Model<N>, const N: usize, const N2: usize>(
    model: &M,
    sc: &Scenario,
    readings: &[Reading],
    fit: Vec<FitParam>,
    opts: &CalibrateOptions,
) -> Result<Fit, Error>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
    Const<N2>: DimMin<Const<N2>, Output = Const<N2>>,
{
    if N2 != 2 * N {
        return Err(Error::Invalid(format!(
            "calibrate::<_, {N}, {N2}>: the sensitivity system needs N2 = 2N = {}",
            2 * N
        )));
    }
    let problem = problem(model, sc, readings, &fit, opts)?;
    let theta0: Vec<f64> = fit.iter().map(|f| f.start).collect();
    let chi2_start = problem.chi2(&theta0)?;
    if opts.max_starts < opts.starts {
        return Err(Error::OutOfRange {
            name: "max_starts".into(),
            value: opts.max_starts as f64,
            range: format!("at least starts ({})", opts.starts),
        });
    }
    // Several starts are spread by Sobol' points, which cover a limited number of
    // dimensions; one start needs none.
    let count = if opts.starts == 1 && fit.len() > crate::qmc::SOBOL_DIMS {
        1
    } else {
        opts.max_starts
    };
    let starts = start_points(&fit, count)?;
    let (mut best, global, optima) = global_search::<M, N, N2>(&problem, opts, &starts, chi2_start);
    let global_starts = global.starts;
    let mut stages = vec![global];
    if opts.method == FitMethod::Both {
        stages.push(polish::<M, N, N2>(&problem, opts, &mut best));
    }
    let optimum = Optimum::at::<M, N, N2>(&problem, best.u)?;
    let mut params = optimum.params(&fit, opts.level);
    let correlation = optimum.correlation();
    let z_plain = problem.z_scores(&problem.predict(&optimum.theta)?);
    let chi2_plain: f64 = z_plain.iter().map(|z| z * z).sum();
    let mut warnings = warnings(&optimum, &params, &correlation, &fit);
    warnings.extend(fate_check(&problem, &optimum, z_plain)?);
    if opts.profile {
        let (n, k) = (readings.len(), fit.len());
        if n > k {
            let t = stats::student_t_quantile(0.5 + opts.level / 2.0, (n - k) as f64);
            let threshold = chi2_plain / (n - k) as f64 * t * t;
            for (j, p) in params.iter_mut().enumerate() {
                crate::progress::update("profiles", j, k);
                let (prof, said) = profile::profile::<M, N, N2>(
                    &problem,
                    j,
                    &optimum.u,
                    chi2_plain,
                    threshold,
                    p.sd,
                    t,
                    opts.max_iters,
                );
                p.profile = Some(prof);
                warnings.extend(said);
            }
            crate::progress::finish("profiles");
        } else {
            warnings.push(format!(
                "{n} readings for {k} quantities: no profile intervals"
            ));
        }
    }
    // With no more readings than quantities every reading decides the fit (leverages are 1).
    for (rd, h) in readings.iter().zip(&optimum.leverage) {
        if readings.len() > fit.len() && *h > LEVERAGE_WARNING {
            warnings.push(format!(
                "the reading {} ({} users, sigma {}) has leverage {h:.3}: it decides a direction of the fit by itself, so that direction rests on its sigma (docs/calibration.md: the rounding rule; give a `sigma` column to state it)",
                rd.label(),
                crate::output::significant(rd.users, 6),
                crate::output::significant(rd.sigma, 3)
            ));
        }
    }
    if let Some(o) = optima.first().filter(|o| o.found < 2) {
        warnings.push(format!(
            "the best chi2 of the global phase ({:.6}) was reached by one start of {}: a better basin may exist; raise --max-starts or bound the quantities",
            o.chi2, global_starts
        ));
    }
    let mut scenario = problem.scenario(&optimum.theta)?;
    scenario.t_end = sc.t_end;
    warnings.extend(knife_edges(
        model,
        &scenario,
        &fit,
        &params,
        &opts.solve,
        opts.level,
    )?);
    let residuals = optimum.residuals(readings);
    let stats = *problem.stats.borrow();
    Ok(Fit {
        params,
        n_readings: readings.len(),
        chi2: optimum.chi2,
        chi2_start,
        reduced_chi2: optimum.reduced,
        rmse: rmse(&residuals),
        correlation,
        residuals,
        stages,
        optima,
        stats,
        level: opts.level,
        leverage: optimum.leverage,
        warnings,
        scenario,
    })
}

/// The knife-edge check: the fitted scenario's outcome (recovered or collapsed, decided by
/// settling as `simulate` does) against the outcome at each end of each fitted quantity's
/// interval at confidence `level` (the profile's where it was computed, else the
/// Gauss–Newton one; within its bounds); one message per quantity whose interval
/// holds both outcomes: the data then do not decide whether the network recovered. Undecided
/// runs decide nothing either way.
pub fn knife_edges<M: Model<N>, const N: usize>(
    model: &M,
    sc: &Scenario,
    fit: &[FitParam],
    params: &[Fitted],
    solve: &SolveOptions,
    level: f64,
) -> Result<Vec<String>, Error>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    let opts = SimOptions {
        solve: *solve,
        dt: sc.t_end,
        ..SimOptions::default()
    };
    let base = crate::simulate::simulate(model, sc, &opts)?.summary.outcome;
    let mut out = vec![];
    if base == Outcome::Undecided {
        return Ok(out);
    }
    for (f, p) in fit.iter().zip(params) {
        // The profile's ends where they were computed, else the Gauss–Newton interval's.
        let profiled = p
            .profile
            .as_ref()
            .and_then(|q| Some((q.lower?.value, q.upper?.value)));
        let Some((lo, hi)) = profiled.or(p.interval) else {
            continue;
        };
        for end in [lo.max(f.lo), hi.min(f.hi)] {
            let mut moved = sc.clone();
            if f.quantity.apply(&mut moved, end).is_err() || moved.validate(model).is_err() {
                continue;
            }
            let Ok(sim) = crate::simulate::simulate(model, &moved, &opts) else {
                continue;
            };
            let o = sim.summary.outcome;
            if o != base && o != Outcome::Undecided {
                out.push(format!(
                    "knife edge: `{}` = {} (an end of its {} % interval) gives outcome `{}` where the fit gives `{}`: the data do not decide whether the network recovered",
                    f.name,
                    crate::output::significant(end, 6),
                    level_percent(level),
                    o.name(),
                    base.name()
                ));
                break;
            }
        }
    }
    Ok(out)
}

/// Leverage above which a reading is said to decide the fit by itself.
pub const LEVERAGE_WARNING: f64 = 0.9;

/// A point on the optimiser's coordinates with its `χ²`.
struct Best {
    u: Vec<f64>,
    chi2: f64,
}

/// Runs `search` as one stage of `method` over `starts` local searches and counts the objective
/// and gradient evaluations it makes.
fn run_stage<M: Model<N>, const N: usize>(
    problem: &Problem<'_, M, N>,
    method: Local,
    starts: usize,
    search: impl FnOnce(&mut Stage),
) -> Stage {
    let (c0, g0) = (problem.cost_evals.get(), problem.gradient_evals.get());
    let mut stage = Stage {
        method: method.name(),
        starts,
        iterations: 0,
        cost_evals: 0,
        gradient_evals: 0,
        chi2: f64::NAN,
        stopped: String::new(),
    };
    search(&mut stage);
    stage.cost_evals = problem.cost_evals.get() - c0;
    stage.gradient_evals = problem.gradient_evals.get() - g0;
    stage
}

/// The global phase: one local search from each start, in batches of `opts.starts` until the
/// best value has been reached by two starts or every start has run; the best kept (the
/// scenario's own point, at `chi2_start`, unless a start improves on it), with the distinct
/// optima reached.
fn global_search<M: Model<N>, const N: usize, const N2: usize>(
    problem: &Problem<'_, M, N>,
    opts: &CalibrateOptions,
    starts: &[Vec<f64>],
    chi2_start: f64,
) -> (Best, Stage, Vec<LocalOptimum>)
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
    Const<N2>: DimMin<Const<N2>, Output = Const<N2>>,
{
    let method = match opts.method {
        FitMethod::NelderMead | FitMethod::Both => Local::NelderMead,
        FitMethod::Lbfgs => Local::Lbfgs,
    };
    let mut best = Best {
        u: starts[0].clone(),
        chi2: chi2_start,
    };
    let mut optima: Vec<LocalOptimum> = vec![];
    let mut run = 0;
    let stage = run_stage(problem, method, starts.len(), |stage| {
        let (mut why_best, mut failures) = (String::from("no start improved on the scenario"), 0);
        let repeated = |optima: &[LocalOptimum]| {
            optima
                .iter()
                .min_by(|a, b| a.chi2.total_cmp(&b.chi2))
                .is_some_and(|o| o.found >= 2)
        };
        while run < starts.len() && (run < opts.starts || !repeated(&optima)) {
            let batch_end = (run + opts.starts).min(starts.len());
            for u0 in &starts[run..batch_end] {
                crate::progress::update("calibration starts", run, batch_end);
                run += 1;
                match local_search::<M, N, N2>(problem, method, u0, opts.max_iters, None) {
                    Ok((u, c, iters, why)) => {
                        stage.iterations += iters;
                        match optima.iter_mut().find(|o| same_optimum(o.chi2, c)) {
                            Some(o) => {
                                o.found += 1;
                                if c < o.chi2 {
                                    o.chi2 = c;
                                    o.theta = problem.theta(&u);
                                }
                            }
                            None if c.is_finite() => optima.push(LocalOptimum {
                                chi2: c,
                                found: 1,
                                theta: problem.theta(&u),
                            }),
                            None => failures += 1,
                        }
                        if c < best.chi2 {
                            best = Best { u, chi2: c };
                            why_best = why;
                        }
                    }
                    Err(_) => failures += 1,
                }
            }
        }
        crate::progress::finish("calibration starts");
        stage.starts = run;
        stage.chi2 = best.chi2;
        stage.stopped = if failures > 0 {
            format!("best start: {why_best}; {failures} start(s) failed")
        } else {
            format!("best start: {why_best}")
        };
    });
    optima.sort_by(|a, b| a.chi2.total_cmp(&b.chi2));
    (best, stage, optima)
}

/// The local polish: L-BFGS from the best point, whose result replaces it unless it is worse
/// (a failed polish keeps the point).
fn polish<M: Model<N>, const N: usize, const N2: usize>(
    problem: &Problem<'_, M, N>,
    opts: &CalibrateOptions,
    best: &mut Best,
) -> Stage
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
    Const<N2>: DimMin<Const<N2>, Output = Const<N2>>,
{
    run_stage(problem, Local::Lbfgs, 1, |stage| {
        stage.chi2 = best.chi2;
        match local_search::<M, N, N2>(problem, Local::Lbfgs, &best.u, opts.max_iters, None) {
            Ok((u, c, iters, why)) => {
                stage.iterations = iters;
                stage.stopped = why;
                if c <= best.chi2 {
                    *best = Best { u, chi2: c };
                }
                stage.chi2 = best.chi2;
            }
            Err(e) => stage.stopped = format!("failed: {e} (kept the previous point)"),
        }
    })
}

/// The optimum with what the exact Jacobian says there: weighted residuals, `χ²` and the
/// Gauss–Newton covariance.
struct Optimum {
    /// The optimiser's coordinates.
    u: Vec<f64>,
    /// The fitted values.
    theta: Vec<f64>,
    /// Weighted residuals, one per reading.
    r: Vec<f64>,
    /// `χ²` at the optimum.
    chi2: f64,
    /// `χ²/(n − k)`, `None` when `n ≤ k`.
    reduced: Option<f64>,
    /// `s²·(JᵀJ)⁻¹`, `None` when not determined.
    cov: Option<DMatrix<f64>>,
    /// Each reading's leverage `h_i = J_i (JᵀJ)⁻¹ J_iᵀ` (empty when `JᵀJ` is singular).
    leverage: Vec<f64>,
}

impl Optimum {
    /// Uncertainty at the optimum `u` from the exact Jacobian.
    fn at<M: Model<N>, const N: usize, const N2: usize>(
        problem: &Problem<'_, M, N>,
        u: Vec<f64>,
    ) -> Result<Self, Error>
    where
        Const<N>: DimMin<Const<N>, Output = Const<N>>,
        Const<N2>: DimMin<Const<N2>, Output = Const<N2>>,
    {
        let theta = problem.theta(&u);
        let (r, jac) = problem.residuals_and_jacobian::<N2>(&theta)?;
        let chi2: f64 = r.iter().map(|v| v * v).sum();
        let (n, k) = (r.len(), theta.len());
        let reduced = (n > k).then(|| chi2 / (n - k) as f64);
        let fisher = jac.transpose() * &jac;
        let inverse = fisher.clone().try_inverse();
        // The diagonal of the hat matrix J (JᵀJ)⁻¹ Jᵀ: how much of the fit each reading
        // decides (they sum to k; near 1, one reading fixes a direction by itself).
        let leverage = inverse.as_ref().map_or_else(Vec::new, |inv| {
            (0..n)
                .map(|i| {
                    let row = jac.row(i);
                    (row * inv * row.transpose())[(0, 0)]
                })
                .collect()
        });
        let cov = reduced.and_then(|s2| inverse.map(|inv| inv * s2));
        let cov = cov.filter(|c| (0..k).all(|j| c[(j, j)].is_finite() && c[(j, j)] > 0.0));
        Ok(Self {
            u,
            theta,
            r,
            chi2,
            reduced,
            cov,
            leverage,
        })
    }

    /// Each fitted quantity's value, standard error and interval at confidence `level`.
    fn params(&self, fit: &[FitParam], level: f64) -> Vec<Fitted> {
        let (n, k) = (self.r.len(), fit.len());
        let tq = self
            .reduced
            .map(|_| stats::student_t_quantile(0.5 + level / 2.0, (n - k) as f64));
        let mut params = vec![];
        for (j, f) in fit.iter().enumerate() {
            let v = self.theta[j];
            // On a bound when the logistic coordinate is within 1e-4 of either end.
            let at_bound = self.u[j].abs() > (1.0f64 / 1e-4 - 1.0).ln();
            let sd = self.cov.as_ref().map(|c| c[(j, j)].sqrt());
            // Symmetric in the quantity's interval coordinate (its logarithm when the fit
            // moves on the logarithm, so a positive quantity's interval stays positive), and
            // within the bounds.
            let interval = sd.zip(tq).map(|(s, t)| {
                let (a, b) = if f.log_scale() {
                    let w = t * s / v;
                    (v * (-w).exp(), v * w.exp())
                } else {
                    (v - t * s, v + t * s)
                };
                (a.max(f.lo), b.min(f.hi))
            });
            params.push(Fitted {
                name: f.name.clone(),
                start: f.start,
                value: v,
                sd,
                interval,
                profile: None,
                bounds: (f.lo, f.hi),
                at_bound,
            });
        }
        params
    }

    /// The correlations of the fitted quantities (empty when not determined).
    fn correlation(&self) -> Vec<Vec<f64>> {
        let k = self.theta.len();
        self.cov.as_ref().map_or_else(Vec::new, |c| {
            (0..k)
                .map(|a| {
                    (0..k)
                        .map(|b| c[(a, b)] / (c[(a, a)] * c[(b, b)]).sqrt())
                        .collect()
                })
                .collect()
        })
    }

    /// Each reading against the fitted model.
    fn residuals(&self, readings: &[Reading]) -> Vec<Residual> {
        readings
            .iter()
            .zip(&self.r)
            .map(|(rd, z)| Residual {
                time: rd.time.clone(),
                t: rd.t,
                observed: rd.users,
                model: rd.users + z * rd.sigma,
                sigma: rd.sigma,
                z: *z,
            })
            .collect()
    }
}

/// Readings compared with one simulated run, nothing fitted ([`compare`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// Each reading against the model.
    pub residuals: Vec<Residual>,
    /// `Σ z²`.
    pub chi2: f64,
    /// Root-mean-square error in users.
    pub rmse: f64,
    /// Root-mean-square of `ln(model/observed)` over the readings where both are positive
    /// (`None` if there is none): the error in proportion, which a fall to a few per cent of
    /// the peak makes more telling than users.
    pub rms_log_error: Option<f64>,
    /// Readings the log error covers.
    pub n_log: usize,
}

/// Compares `readings` with the run `sim` of `sc`: the model's online users
/// ([`Model::online`] × population) at each reading's time, read from the run's dense output
/// (a reading before `t = 0` sees the starting state, as in calibration). A reading after the
/// run's end is refused with the `t_end` it needs.
pub fn compare<M: Model<N>, const N: usize>(
    model: &M,
    sc: &Scenario,
    sim: &crate::simulate::Simulation<N>,
    readings: &[Reading],
) -> Result<Comparison, Error> {
    if readings.is_empty() {
        return Err(Error::Invalid("no reading to compare with".into()));
    }
    let end = sim.dense.t_end().unwrap_or(0.0);
    let mut residuals = Vec::with_capacity(readings.len());
    for r in readings {
        if r.t > end {
            return Err(Error::Invalid(format!(
                "reading `{}` lies at t = {} {}, after the run's end ({end}): give t_end >= {}",
                r.time,
                crate::output::significant(r.t, 6),
                model.time_unit(),
                r.t.ceil()
            )));
        }
        let x = sim
            .dense
            .eval(r.t.max(0.0))
            .ok_or_else(|| Error::Invalid("the run has no output to compare with".into()))?;
        let m = model.online(&model.in_domain(x, &sim.params_at(r.t))) * sc.population;
        residuals.push(Residual {
            time: r.time.clone(),
            t: r.t,
            observed: r.users,
            model: m,
            sigma: r.sigma,
            z: (m - r.users) / r.sigma,
        });
    }
    let logs: Vec<f64> = residuals
        .iter()
        .filter(|x| x.model > 0.0 && x.observed > 0.0)
        .map(|x| (x.model / x.observed).ln())
        .collect();
    Ok(Comparison {
        chi2: residuals.iter().map(|x| x.z * x.z).sum(),
        rmse: rmse(&residuals),
        rms_log_error: (!logs.is_empty())
            .then(|| (logs.iter().map(|v| v * v).sum::<f64>() / logs.len() as f64).sqrt()),
        n_log: logs.len(),
        residuals,
    })
}

/// Root-mean-square error in users (unweighted) of the residuals.
fn rmse(residuals: &[Residual]) -> f64 {
    (residuals
        .iter()
        .map(|x| (x.model - x.observed).powi(2))
        .sum::<f64>()
        / residuals.len() as f64)
        .sqrt()
}

/// A reading's model value may move by at most this many of its standard deviations between
/// integrations of the fitted trajectory at different tolerances before the fit is said to sit
/// on a knife-edge (the check runs at the end of every [`calibrate`]; docs/calibration.md).
pub const FATE_SHIFT: f64 = 0.5;

/// The fitted trajectory integrated four ways: the sensitivity solve the optimum was judged
/// by, a plain simulation at the fit's tolerances (its weighted residuals `z_plain`), one 100 times tighter and one 100 times
/// looser (but no looser than `simulate`'s defaults, which users check a fit with). Away from
/// a basin boundary they agree to far below a reading's σ; where the trajectory passes so
/// close to the boundary that the solver's own error decides its fate, a reading moves by
/// many σ. The largest shift of any reading between any two of them, above [`FATE_SHIFT`] σ,
/// is reported by reading (a check on χ² alone misses one reading's jump when χ² is large).
fn fate_check<M: Model<N>, const N: usize>(
    problem: &Problem<'_, M, N>,
    optimum: &Optimum,
    z_plain: Vec<f64>,
) -> Result<Option<String>, Error>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    let fit_tol = problem.opts.solve.tol;
    let scaled = |f: f64, cap: f64| {
        let mut solve = problem.opts.solve;
        solve.tol = Tolerances {
            rtol: (fit_tol.rtol * f).clamp(1e-13, cap.max(fit_tol.rtol)),
            atol: (fit_tol.atol * f).clamp(1e-16, 1e-6),
        };
        solve
    };
    let default_rtol = Tolerances::default().rtol;
    let mut runs: Vec<(String, Vec<f64>)> = vec![
        ("the sensitivity solve".into(), optimum.r.clone()),
        ("a plain simulation".into(), z_plain),
    ];
    for solve in [scaled(0.01, 1.0), scaled(100.0, default_rtol)] {
        if solve.tol == fit_tol {
            continue;
        }
        let what = format!("rtol {:e}", solve.tol.rtol);
        match problem.predict_with(&optimum.theta, solve) {
            Ok(y) => runs.push((what, problem.z_scores(&y))),
            // A trajectory one of the integrations cannot follow is itself a sign.
            Err(e) => {
                return Ok(Some(format!(
                    "the fitted trajectory could not be integrated by {what} ({}): the fit may sit on a knife-edge",
                    crate::error::one_line(&e.to_string())
                )))
            }
        }
    }
    let mut worst = (0.0, 0, 0, 0);
    for a in 0..runs.len() {
        for b in 0..a {
            for (i, (za, zb)) in runs[a].1.iter().zip(&runs[b].1).enumerate() {
                let d = (za - zb).abs();
                if d > worst.0 || d.is_nan() {
                    worst = (if d.is_nan() { f64::INFINITY } else { d }, i, a, b);
                }
            }
        }
    }
    let (d, i, a, b) = worst;
    if d <= FATE_SHIFT {
        return Ok(None);
    }
    let rd = &problem.readings[i];
    Ok(Some(format!(
        "knife edge: the reading {} moves by {d:.3} sigma between integrations of the fitted trajectory (z = {:.3} by {}, {:.3} by {}; at most {FATE_SHIFT} expected): the trajectory's fate turns on the solver's error; fix or bound the quantities that move it there",
        rd.label(),
        runs[b].1[i], runs[b].0, runs[a].1[i], runs[a].0
    )))
}

/// What the user should know before trusting the intervals: values on bounds, undetermined or
/// strongly correlated quantities.
fn warnings(
    optimum: &Optimum,
    params: &[Fitted],
    correlation: &[Vec<f64>],
    fit: &[FitParam],
) -> Vec<String> {
    let (n, k) = (optimum.r.len(), fit.len());
    let mut warnings = vec![];
    for p in params.iter().filter(|p| p.at_bound) {
        warnings.push(format!(
            "`{}` = {} sits on a bound of [{}, {}]: the data push it there; its interval is not meaningful",
            p.name, p.value, p.bounds.0, p.bounds.1
        ));
    }
    if optimum.cov.is_none() {
        warnings.push(if n <= k {
            format!("{n} readings cannot determine {k} quantities: no intervals")
        } else {
            "the data do not determine every fitted quantity (singular JᵀJ): no intervals".into()
        });
    }
    for a in 0..correlation.len() {
        for b in 0..a {
            if correlation[a][b].abs() > 0.999 {
                warnings.push(format!(
                    "`{}` and `{}` are correlated (r = {:.4}): the data fix a combination of them, not each; their intervals are local",
                    fit[b].name, fit[a].name, correlation[a][b]
                ));
            }
        }
    }
    warnings
}
