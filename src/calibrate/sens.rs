//! Forward sensitivities of a scenario's trajectory to one fitted quantity.
//!
//! The state `x` and its sensitivity `s = ∂x/∂θ` are integrated together as one system of
//! `2N` equations, `x' = f(x, p)`, `s' = J(x, p)·s + ∂f/∂p·∂p/∂θ`, by the same solvers as
//! every simulation, with the error control covering `s` too. The right-hand side of the
//! sensitivity is one directional derivative of the model's own right-hand side, evaluated
//! with dual numbers, so it is exact. Across the scenario's breakpoints the sensitivity jumps
//! as the chain rule says:
//!
//! - the initial state is the healthy state, an equilibrium: `s(0) = −J⁻¹·∂f/∂θ`; or, under
//!   daily profiles, the daily cycle's state at `t = 0`: `s(0) = (I − M)⁻¹·∂P/∂θ` (the period
//!   map `P`, its monodromy matrix `M`);
//! - an instantaneous wave `x⁺ = g(x⁻, p, f, c)`: `s⁺ = Dg·(s⁻, ∂p/∂θ, ∂f/∂θ, ∂c/∂θ)`, plus
//!   `(Dₓg·f⁻ − f⁺)·∂τ/∂θ` when its time `τ` moves with `θ`;
//! - a change of the right-hand side at time `τ` (window start and end, an intervention):
//!   `s⁺ = s⁻ + (f⁻ − f⁺)·∂τ/∂θ`.

use crate::error::Error;
use crate::model::sens::Sens;
use crate::model::{Model, System, MAX_PARAMS};
use crate::scenario::Quantity;
use crate::scenario::Scenario;
use crate::simulate::{drive, Event, Piecewise, Regime};
use crate::solve::{integrate, Dense, Segment, SolveOptions, SolverStats, Span};
use nalgebra::{Const, DimMin, SMatrix, SVector};
use num_dual::Dual;

/// What a quantity's sensitivity run needs to know at each breakpoint.
struct Roles {
    /// The fitted model parameter (from `t = 0`), if any.
    param: Option<usize>,
    /// The fitted intervention value `(k, param)`, if any.
    iv_value: Option<(usize, usize)>,
    /// The fitted intervention time, if any.
    iv_at: Option<usize>,
    /// The fitted ramp length, if any.
    iv_ramp: Option<usize>,
    /// The wave's start moves with θ.
    shock_at: bool,
    /// The wave's window is θ.
    window: bool,
    /// `∂(f, c)/∂θ` of the wave's fractions.
    dfrac: (f64, f64),
}

impl Roles {
    fn of(q: &Quantity) -> Result<Self, Error> {
        let mut r = Roles {
            param: None,
            iv_value: None,
            iv_at: None,
            iv_ramp: None,
            shock_at: false,
            window: false,
            dfrac: (0.0, 0.0),
        };
        match *q {
            Quantity::Param(j) => r.param = Some(j),
            Quantity::Intervention { k, param } => r.iv_value = Some((k, param)),
            Quantity::InterventionAt { k } => r.iv_at = Some(k),
            Quantity::InterventionRamp { k } => r.iv_ramp = Some(k),
            Quantity::ShockAt => r.shock_at = true,
            Quantity::Window => r.window = true,
            Quantity::Shock => r.dfrac = (1.0, 1.0),
            Quantity::SnShock => r.dfrac = (0.0, 1.0),
            Quantity::Population => {}
            Quantity::TEnd => return Err(super::t_end_refused()),
        }
        Ok(r)
    }
}

fn split<const N: usize, const N2: usize>(
    xa: &SVector<f64, N2>,
) -> (SVector<f64, N>, SVector<f64, N>) {
    (
        SVector::from_fn(|i, _| xa[i]),
        SVector::from_fn(|i, _| xa[N + i]),
    )
}

fn join<const N: usize, const N2: usize>(
    x: &SVector<f64, N>,
    s: &SVector<f64, N>,
) -> SVector<f64, N2> {
    SVector::from_fn(|i, _| if i < N { x[i] } else { s[i - N] })
}

/// Where a scenario without an initial state starts: its healthy state.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Start<const N: usize> {
    /// An equilibrium of the initial parameters.
    Equilibrium(SVector<f64, N>),
    /// The daily cycle's state at `t = 0` under the initial parameters and the profiles, with
    /// the period map's Jacobian (the monodromy matrix) there.
    Cycle {
        x0: SVector<f64, N>,
        monodromy: SMatrix<f64, N, N>,
    },
}

impl<const N: usize> Start<N> {
    pub(crate) fn x(&self) -> SVector<f64, N> {
        match self {
            Start::Equilibrium(x) | Start::Cycle { x0: x, .. } => *x,
        }
    }
}

/// The sensitivity of the daily cycle's state at `t = 0` to the model parameter `j` (in force
/// from `t = 0`): the cycle is a fixed point of the period map, `x0 = P(x0; θ)`, so
/// `∂x0/∂θ = (I − M)⁻¹·∂P/∂θ` with `M = ∂P/∂x` the monodromy matrix and `∂P/∂θ` the
/// sensitivity after one day from `x0` started at zero (a day of the scenario without its
/// waves and interventions).
#[allow(clippy::too_many_arguments)]
fn cycle_start_sensitivity<M: Model<N>, const N: usize, const N2: usize>(
    model: &M,
    sc: &Scenario,
    q: &Quantity,
    x0: &SVector<f64, N>,
    monodromy: &SMatrix<f64, N, N>,
    opts: &SolveOptions,
    stats: &mut SolverStats,
) -> Result<SVector<f64, N>, Error>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
    Const<N2>: DimMin<Const<N2>, Output = Const<N2>>,
{
    let mut day = sc.clone();
    day.shock = None;
    day.later_shocks.clear();
    day.interventions.clear();
    day.initial = Some(x0.iter().copied().collect());
    let period = sc.clock(model)?.period();
    day.t_end = period;
    let start = Start::Equilibrium(*x0);
    let dense = sensitivity_run::<M, N, N2>(model, &day, q, period, &start, opts, stats)?;
    let end = dense.eval(period).expect("a day's run is not empty");
    let (_, s_day) = split::<N, N2>(&end);
    (SMatrix::<f64, N, N>::identity() - monodromy)
        .lu()
        .solve(&s_day)
        .ok_or_else(|| {
            Error::Invalid(
                "the daily cycle has a Floquet multiplier 1 (a fold of cycles): its sensitivity is undefined".into(),
            )
        })
}

/// Integrates the scenario over `[0, horizon]` together with the sensitivity of its state to
/// the quantity `q`, from the healthy `start` of the initial parameters (ignored when the
/// scenario gives an initial state). The dense output covers both.
pub(crate) fn sensitivity_run<M: Model<N>, const N: usize, const N2: usize>(
    model: &M,
    sc: &Scenario,
    q: &Quantity,
    horizon: f64,
    start: &Start<N>,
    opts: &SolveOptions,
    stats: &mut SolverStats,
) -> Result<Dense<N2>, Error>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
    Const<N2>: DimMin<Const<N2>, Output = Const<N2>>,
{
    assert_eq!(N2, 2 * N, "the sensitivity system has 2N states");
    let roles = Roles::of(q)?;
    let p = sc.params.values();
    let clock = sc.param_path(model)?.clock();
    let mut sens = Sens {
        inner: model,
        dp: [0.0; MAX_PARAMS],
        deta: (0.0, 0.0),
        ramps: vec![],
        dramps: vec![],
        daily: &sc.daily,
        clock,
    };
    if let Some(j) = roles.param {
        sens.dp[j] = 1.0;
    }

    // Initial state and its sensitivity (implicit function theorem at the healthy state).
    let (x0, s0) = match &sc.initial {
        Some(v) => (SVector::from_iterator(v.iter().copied()), SVector::zeros()),
        None => {
            let x_h = start.x();
            let s0 = match (roles.param, start) {
                (Some(_), Start::Cycle { x0, monodromy }) => {
                    cycle_start_sensitivity::<M, N, N2>(model, sc, q, x0, monodromy, opts, stats)?
                }
                (Some(j), Start::Equilibrium(_)) => {
                    let sys = System::new(model, p);
                    let (jac, fp): (SMatrix<f64, N, N>, _) = sys.jacobian_with_param(0.0, &x_h, j);
                    jac.lu().solve(&(-fp)).ok_or_else(|| {
                        Error::Invalid(
                            "the healthy state is singular (a fold): its sensitivity is undefined"
                                .into(),
                        )
                    })?
                }
                (None, _) => SVector::zeros(),
            };
            (x_h, s0)
        }
    };

    if roles.window && sc.shock.is_some_and(|w| !w.is_spread()) {
        return Err(Error::Invalid(
            "`window` cannot be fitted from an instantaneous wave (a window of 0, or shorter than 1e-9 of the wave's start time): start from a longer window".into(),
        ));
    }
    let mut run = SensRun {
        model,
        sc,
        roles: &roles,
        sens,
        xa: join(&x0, &s0),
        dense: Dense::default(),
        opts,
        stats,
    };
    drive(sc, horizon, &mut run)?;
    let SensRun { xa, mut dense, .. } = run;
    if dense.segments.is_empty() {
        dense.segments.push(Segment::point(0.0, xa));
    }
    Ok(dense)
}

/// A sensitivity run's pass through the scenario: the augmented state `(x, s)`, with the
/// chain rule applied at every breakpoint.
struct SensRun<'a, M, const N: usize, const N2: usize> {
    model: &'a M,
    sc: &'a Scenario,
    roles: &'a Roles,
    sens: Sens<'a, M, N>,
    xa: SVector<f64, N2>,
    dense: Dense<N2>,
    opts: &'a SolveOptions,
    stats: &'a mut SolverStats,
}

impl<M: Model<N>, const N: usize, const N2: usize> SensRun<'_, M, N, N2> {
    /// The model's right-hand side at `(t, x)` in `regime`, with the wave's hazards `reboot`.
    fn f_inner(
        &self,
        t: f64,
        regime: &Regime,
        reboot: Option<(f64, f64)>,
        x: &SVector<f64, N>,
    ) -> SVector<f64, N> {
        System {
            model: self.model,
            p: &regime.p,
            reboot,
            schedule: regime.schedule(self.sens.daily, self.sens.clock),
        }
        .f(t, x)
    }
}

impl<M: Model<N>, const N: usize, const N2: usize> Piecewise for SensRun<'_, M, N, N2>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
    Const<N2>: DimMin<Const<N2>, Output = Const<N2>>,
{
    fn flow(&mut self, t0: f64, t1: f64, regime: &Regime) -> Result<(), Error> {
        debug_assert_eq!(self.sens.ramps, regime.ramps);
        let sys = System {
            model: &self.sens,
            p: &regime.p,
            reboot: regime.reboot,
            schedule: None,
        };
        let dense = &mut self.dense;
        let (_, y) = integrate(
            &sys,
            Span::new(t0, self.xa, t1),
            self.opts,
            self.stats,
            &mut |seg| {
                dense.segments.push(*seg);
                false
            },
        )?;
        self.xa = y;
        Ok(())
    }

    fn event(&mut self, t: f64, ev: &Event, before: &Regime, after: &Regime) -> Result<(), Error> {
        let roles = self.roles;
        let (x, mut s) = split::<N, N2>(&self.xa);
        match ev {
            Event::Jump(k) => {
                let w = self.sc.wave(*k);
                // The fitted wave quantities are the first wave's.
                let dfrac = if *k == 0 { roles.dfrac } else { (0.0, 0.0) };
                let shock_at = roles.shock_at && *k == 0;
                // Exact derivative of the jump map along (s, ∂p/∂θ, ∂f/∂θ, ∂c/∂θ), at the
                // parameters used at t.
                let xd = SVector::<Dual<f64>, N>::from_fn(|i, _| Dual::new(x[i], s[i]));
                let pd = self.sens.used(t, &before.p);
                let g = self.model.reboot_jump(
                    &xd,
                    &pd[..before.p.len()],
                    Dual::new(w.fraction, dfrac.0),
                    Dual::new(w.sn_fraction, dfrac.1),
                )?;
                let x1 = g.map(|v| v.re);
                s = g.map(|v| v.eps);
                if shock_at {
                    let f_before = self.f_inner(t, before, None, &x);
                    let xd = SVector::<Dual<f64>, N>::from_fn(|i, _| Dual::new(x[i], f_before[i]));
                    let p = before.used(t, self.sens.daily, self.sens.clock);
                    let pd: Vec<Dual<f64>> = p.iter().map(|v| Dual::from_re(*v)).collect();
                    let gx_f = self
                        .model
                        .reboot_jump(
                            &xd,
                            &pd,
                            Dual::from_re(w.fraction),
                            Dual::from_re(w.sn_fraction),
                        )?
                        .map(|v| v.eps);
                    s += gx_f - self.f_inner(t, before, None, &x1);
                }
                self.xa = join(&x1, &s);
                self.dense.segments.push(Segment::point(t, self.xa));
                return Ok(());
            }
            Event::WindowStart(k) => {
                let w = self.sc.wave(*k);
                let on = after.reboot.expect("a window start sets the hazards");
                let first = *k == 0;
                if roles.shock_at && first {
                    s += self.f_inner(t, before, before.reboot, &x)
                        - self.f_inner(t, before, Some(on), &x);
                }
                // η = −ln(1 − f)/w: ∂η/∂f = 1/((1 − f)·w), ∂η/∂w = −η/w.
                self.sens.deta = if !first {
                    (0.0, 0.0)
                } else if roles.window {
                    (-on.0 / w.window, -on.1 / w.window)
                } else {
                    (
                        roles.dfrac.0 / ((1.0 - w.fraction) * w.window),
                        roles.dfrac.1 / ((1.0 - w.sn_fraction) * w.window),
                    )
                };
            }
            Event::WindowEnd(k) => {
                if (roles.shock_at || roles.window) && *k == 0 {
                    s += self.f_inner(t, before, before.reboot, &x)
                        - self.f_inner(t, before, None, &x);
                }
                self.sens.deta = (0.0, 0.0);
            }
            Event::Intervention(k) => {
                let iv = &self.sc.interventions[*k];
                for &(i, _) in &iv.set {
                    if iv.is_ramp() {
                        // The ramp starts from the value in force, whose derivative is the
                        // one before; its start and length move with θ when fitted.
                        self.sens.dramps.push((
                            self.sens.dp[i],
                            if roles.iv_at == Some(*k) { 1.0 } else { 0.0 },
                            if roles.iv_ramp == Some(*k) { 1.0 } else { 0.0 },
                        ));
                    }
                    self.sens.dp[i] = if roles.iv_value == Some((*k, i)) {
                        1.0
                    } else {
                        0.0
                    };
                }
                self.sens.ramps.clone_from(&after.ramps);
                // A step moving with θ changes the right-hand side at τ(θ); a ramp is
                // continuous there, and the difference below vanishes.
                if roles.iv_at == Some(*k) {
                    s += self.f_inner(t, before, before.reboot, &x)
                        - self.f_inner(t, after, after.reboot, &x);
                }
            }
            Event::RampEnd(_) => {
                // The ramps that end leave the list as in the regime; the parameters are
                // continuous at the end, so the state's sensitivity does not jump.
                let mut kept = self.sens.ramps.iter().zip(&self.sens.dramps);
                let dramps: Vec<(f64, f64, f64)> = after
                    .ramps
                    .iter()
                    .map(|r| {
                        kept.find(|(q, _)| *q == r)
                            .map(|(_, d)| *d)
                            .expect("the ramps after an end are among those before it")
                    })
                    .collect();
                self.sens.dramps = dramps;
                self.sens.ramps.clone_from(&after.ramps);
            }
        }
        self.xa = join(&x, &s);
        Ok(())
    }
}

/// The observed quantity (the model's online share) and its sensitivity from an augmented
/// state `(x, s)`.
pub(crate) fn online_and_sensitivity<M: Model<N>, const N: usize, const N2: usize>(
    model: &M,
    xa: &SVector<f64, N2>,
) -> (f64, f64) {
    let xd = SVector::<Dual<f64>, N>::from_fn(|i, _| Dual::new(xa[i], xa[N + i]));
    let y = model.online(&xd);
    (y.re, y.eps)
}
