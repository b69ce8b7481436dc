//! Textbook models with known answers, for checking every solver and analysis, and as examples
//! of writing a model.

use super::{Bound, Model, ParamSpec, Scalar, StateSpec};
use nalgebra::SVector;

const fn param(name: &'static str, default: f64, meaning: &'static str) -> ParamSpec {
    ParamSpec {
        name,
        symbol: name,
        unit: "-",
        default,
        lower: Bound::Unbounded,
        upper: Bound::Unbounded,
        meaning,
    }
}

const X: StateSpec = StateSpec {
    name: "x",
    meaning: "state",
};

fn finite<const N: usize>(x: &SVector<f64, N>) -> bool {
    x.iter().all(|v| v.is_finite())
}

/// Logistic growth `x' = r·x·(1 − x)`, solved by `x(t) = 1 / (1 + (1/x0 − 1)·e^{−rt})`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Logistic;

const LOGISTIC: [ParamSpec; 1] = [ParamSpec {
    name: "rate",
    symbol: "r",
    unit: "1/min",
    default: 1.0,
    lower: Bound::Closed(0.0),
    upper: Bound::Unbounded,
    meaning: "growth rate",
}];

impl Model<1> for Logistic {
    fn name(&self) -> &str {
        "logistic"
    }
    fn states(&self) -> [StateSpec; 1] {
        [X]
    }
    fn params(&self) -> &[ParamSpec] {
        &LOGISTIC
    }
    fn rhs<T: Scalar>(&self, _t: T, x: &SVector<T, 1>, p: &[T]) -> SVector<T, 1> {
        SVector::from([p[0] * x[0] * (T::from(1.0) - x[0])])
    }
    fn nominal_state(&self, _p: &[f64]) -> SVector<f64, 1> {
        SVector::from([1.0])
    }
}

/// The saddle-node normal form `x' = μ + x²`: equilibria `±√(−μ)` for `μ < 0`, a fold at `μ = 0`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SaddleNode;

const SADDLE_NODE: [ParamSpec; 1] = [param("mu", -1.0, "unfolding parameter")];

impl Model<1> for SaddleNode {
    fn name(&self) -> &str {
        "saddle-node"
    }
    fn states(&self) -> [StateSpec; 1] {
        [X]
    }
    fn params(&self) -> &[ParamSpec] {
        &SADDLE_NODE
    }
    fn rhs<T: Scalar>(&self, _t: T, x: &SVector<T, 1>, p: &[T]) -> SVector<T, 1> {
        SVector::from([p[0] + x[0] * x[0]])
    }
    fn nominal_state(&self, p: &[f64]) -> SVector<f64, 1> {
        SVector::from([-(-p[0]).max(0.0).sqrt()])
    }
    fn feasible(&self, x: &SVector<f64, 1>) -> bool {
        finite(x)
    }
}

/// The cusp normal form `x' = μ + λ·x − x³`: for `λ > 0` folds at `μ = ±2(λ/3)^{3/2}`, which
/// meet in a cusp at `(μ, λ) = (0, 0)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cusp;

const CUSP: [ParamSpec; 2] = [
    param("mu", 0.0, "asymmetry"),
    param("lambda", 1.0, "splitting factor"),
];

impl Model<1> for Cusp {
    fn name(&self) -> &str {
        "cusp"
    }
    fn states(&self) -> [StateSpec; 1] {
        [X]
    }
    fn params(&self) -> &[ParamSpec] {
        &CUSP
    }
    fn rhs<T: Scalar>(&self, _t: T, x: &SVector<T, 1>, p: &[T]) -> SVector<T, 1> {
        SVector::from([p[0] + p[1] * x[0] - x[0] * x[0] * x[0]])
    }
    fn nominal_state(&self, p: &[f64]) -> SVector<f64, 1> {
        SVector::from([1.0 + p[1].max(0.0).sqrt()])
    }
    fn feasible(&self, x: &SVector<f64, 1>) -> bool {
        finite(x)
    }
}

/// A planar bistable system `x' = x − x³`, `y' = −y`: stable nodes at `(±1, 0)`, a saddle at
/// the origin whose stable manifold is the line `x = 0`.
#[derive(Debug, Clone, Copy, Default)]
pub struct DoubleWell;

impl Model<2> for DoubleWell {
    fn name(&self) -> &str {
        "double-well"
    }
    fn states(&self) -> [StateSpec; 2] {
        [
            X,
            StateSpec {
                name: "y",
                meaning: "state",
            },
        ]
    }
    fn params(&self) -> &[ParamSpec] {
        &[]
    }
    fn rhs<T: Scalar>(&self, _t: T, x: &SVector<T, 2>, _p: &[T]) -> SVector<T, 2> {
        SVector::from([x[0] - x[0] * x[0] * x[0], -x[1]])
    }
    fn nominal_state(&self, _p: &[f64]) -> SVector<f64, 2> {
        SVector::from([2.0, 1.0])
    }
    fn feasible(&self, x: &SVector<f64, 2>) -> bool {
        finite(x)
    }
}

/// The Hopf normal form `x' = μx − y − x(x² + y²)`, `y' = x + μy − y(x² + y²)`: the origin is an
/// equilibrium for every `μ`, with eigenvalues `μ ± i`, so a Hopf point sits at `μ = 0`.
#[derive(Debug, Clone, Copy, Default)]
pub struct HopfNormalForm;

const HOPF: [ParamSpec; 1] = [param("mu", -1.0, "distance from the Hopf point")];

impl Model<2> for HopfNormalForm {
    fn name(&self) -> &str {
        "hopf-normal-form"
    }
    fn states(&self) -> [StateSpec; 2] {
        [
            X,
            StateSpec {
                name: "y",
                meaning: "state",
            },
        ]
    }
    fn params(&self) -> &[ParamSpec] {
        &HOPF
    }
    fn rhs<T: Scalar>(&self, _t: T, x: &SVector<T, 2>, p: &[T]) -> SVector<T, 2> {
        let r2 = x[0] * x[0] + x[1] * x[1];
        SVector::from([
            p[0] * x[0] - x[1] - x[0] * r2,
            x[0] + p[0] * x[1] - x[1] * r2,
        ])
    }
    fn nominal_state(&self, _p: &[f64]) -> SVector<f64, 2> {
        SVector::zeros()
    }
    fn feasible(&self, x: &SVector<f64, 2>) -> bool {
        finite(x)
    }
}
