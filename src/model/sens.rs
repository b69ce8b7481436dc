//! The variational system of a model: its state together with the derivative of the state
//! along one direction (in the initial state, the parameters, the wave's hazards and the
//! schedule's ramps), integrated as one system of `2N` equations. Calibration's sensitivities
//! and the monodromy matrix of a daily cycle both come from it.

use super::schedule::{Clock, DailyProfile, Ramp, Schedule};
use super::{Model, ParamSpec, Scalar, StateSpec, MAX_PARAMS};
use nalgebra::SVector;
use num_dual::Dual;
use std::borrow::Cow;

/// The model extended by the sensitivity of its state to one direction in parameter space
/// (and in the wave's hazards). `N2` must be `2N`.
pub(crate) struct Sens<'a, M, const N: usize> {
    pub inner: &'a M,
    /// `∂p/∂θ` in the current interval.
    pub dp: [f64; MAX_PARAMS],
    /// `∂(η_p, η_s)/∂θ` while a spread wave is active.
    pub deta: (f64, f64),
    /// Ramps under way (as in the run's regime).
    pub ramps: Vec<Ramp>,
    /// `∂(from, at, len)/∂θ` of each ramp under way.
    pub dramps: Vec<(f64, f64, f64)>,
    /// The scenario's daily profiles.
    pub daily: &'a [DailyProfile],
    /// The clock they are read on.
    pub clock: Option<Clock>,
}

const SENS_STATES: [StateSpec; 2] = [
    StateSpec {
        name: Cow::Borrowed("x"),
        meaning: Cow::Borrowed("state"),
    },
    StateSpec {
        name: Cow::Borrowed("s"),
        meaning: Cow::Borrowed("sensitivity of the state"),
    },
];

impl<M: Model<N>, const N: usize> Sens<'_, M, N> {
    fn lift<T: Scalar, const N2: usize>(xa: &SVector<T, N2>) -> SVector<Dual<T>, N> {
        SVector::from_fn(|i, _| Dual::new(xa[i], xa[N + i]))
    }
    fn lift_params<T: Scalar>(&self, p: &[T]) -> [Dual<T>; MAX_PARAMS] {
        let mut pd = [Dual::from_re(T::from(0.0)); MAX_PARAMS];
        for (j, v) in p.iter().enumerate() {
            pd[j] = Dual::new(*v, T::from(self.dp[j]));
        }
        pd
    }
    fn lower<T: Scalar, const N2: usize>(d: SVector<Dual<T>, N>) -> SVector<T, N2> {
        SVector::from_fn(|i, _| if i < N { d[i].re } else { d[i - N].eps })
    }
    fn schedule(&self) -> Option<Schedule<'_>> {
        Schedule::of(&self.ramps, self.daily, self.clock)
    }
    /// The parameters used at `t`, lifted with their derivatives in θ: the values in force
    /// with `∂p/∂θ`, moved by the ramps (their ends and times lifted too) and the profiles.
    pub(crate) fn used<T: Scalar>(&self, t: T, p: &[T]) -> [Dual<T>; MAX_PARAMS] {
        let pd = self.lift_params(p);
        match self.schedule() {
            None => pd,
            Some(s) => s.apply(Dual::from_re(t), &pd[..p.len()], |k, r| {
                let d = self.dramps[k];
                (
                    Dual::new(T::from(r.from), T::from(d.0)),
                    Dual::new(T::from(r.at), T::from(d.1)),
                    Dual::new(T::from(r.len), T::from(d.2)),
                )
            }),
        }
    }
}

impl<M: Model<N>, const N: usize, const N2: usize> Model<N2> for Sens<'_, M, N> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn states(&self) -> [StateSpec; N2] {
        std::array::from_fn(|i| SENS_STATES[usize::from(i >= N)].clone())
    }
    fn params(&self) -> &[ParamSpec] {
        self.inner.params()
    }
    fn rhs<T: Scalar>(&self, t: T, xa: &SVector<T, N2>, p: &[T]) -> SVector<T, N2> {
        self.rhs_in_force(t, xa, p, None)
    }
    fn rhs_in_force<T: Scalar>(
        &self,
        t: T,
        xa: &SVector<T, N2>,
        p: &[T],
        wave: Option<(T, T)>,
    ) -> SVector<T, N2> {
        let q = self.used(t, p);
        let wave = wave.map(|(ep, es)| {
            (
                Dual::new(ep, T::from(self.deta.0)),
                Dual::new(es, T::from(self.deta.1)),
            )
        });
        let d = self
            .inner
            .rhs_in_force(Dual::from_re(t), &Self::lift(xa), &q[..p.len()], wave);
        Self::lower(d)
    }
    fn nominal_state(&self, _p: &[f64]) -> SVector<f64, N2> {
        SVector::zeros()
    }
    fn autonomous(&self) -> bool {
        self.inner.autonomous() && self.schedule().is_none()
    }
    fn feasible(&self, _x: &SVector<f64, N2>, _p: &[f64]) -> bool {
        true
    }
    fn reboot_flow<T: Scalar>(
        &self,
        xa: &SVector<T, N2>,
        p: &[T],
        eta_p: T,
        eta_s: T,
    ) -> SVector<T, N2> {
        // Reached only through `rhs_in_force`'s default, which `Sens` overrides; without the
        // time it cannot apply a schedule.
        debug_assert!(self.schedule().is_none());
        let pd = self.lift_params(p);
        let d = self.inner.reboot_flow(
            &Self::lift(xa),
            &pd[..p.len()],
            Dual::new(eta_p, T::from(self.deta.0)),
            Dual::new(eta_s, T::from(self.deta.1)),
        );
        Self::lower(d)
    }
}
