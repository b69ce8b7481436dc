//! Logistic growth `x' = r·x·(1 − x)`, a one-state model with closed forms: after a wave that
//! takes a fraction `f` of `x` at time `a`, `x(t) = 1/(1 + (1/(1 − f) − 1)·e^{−r(t − a)})`; its
//! level of service is `x` (healthy at `x = 1`).

use selfheal::error::Error;
use selfheal::model::{Bound, Model, ParamSpec, Scalar, StateSpec};
use selfheal::nalgebra::SVector;

/// The model; its one parameter is `rate` (default 1/min).
pub struct Logistic;

static RATE: [ParamSpec; 1] = [ParamSpec::new(
    "rate",
    "r",
    "1/min",
    1.0,
    (Bound::Closed(0.0), Bound::Unbounded),
    "growth rate",
)];

impl Model<1> for Logistic {
    fn name(&self) -> &str {
        "logistic"
    }
    fn states(&self) -> [StateSpec; 1] {
        [StateSpec::new("x", "share online")]
    }
    fn params(&self) -> &[ParamSpec] {
        &RATE
    }
    fn rhs<T: Scalar>(&self, _t: T, x: &SVector<T, 1>, p: &[T]) -> SVector<T, 1> {
        SVector::from([p[0] * x[0] * (T::from(1.0) - x[0])])
    }
    fn nominal_state(&self, _p: &[f64]) -> SVector<f64, 1> {
        SVector::from([1.0])
    }
    fn service_level(&self, x: &SVector<f64, 1>, _p: &[f64]) -> Option<f64> {
        Some(x[0].clamp(0.0, 1.0))
    }
    fn reboot_jump<T: Scalar>(
        &self,
        x: &SVector<T, 1>,
        _p: &[T],
        f: T,
        _c: T,
    ) -> Result<SVector<T, 1>, Error> {
        Ok(SVector::from([x[0] * (T::from(1.0) - f)]))
    }
}
