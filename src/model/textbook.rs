//! Textbook models with known answers, for checking every solver and analysis, and as examples
//! of writing a model.

use super::{Bound, Model, ParamSpec, Scalar, StateSpec};
use nalgebra::SVector;
use std::borrow::Cow;

const fn param(name: &'static str, default: f64, meaning: &'static str) -> ParamSpec {
    ParamSpec {
        name: Cow::Borrowed(name),
        symbol: Cow::Borrowed(name),
        unit: Cow::Borrowed("-"),
        default,
        lower: Bound::Unbounded,
        upper: Bound::Unbounded,
        meaning: Cow::Borrowed(meaning),
    }
}

const X: StateSpec = StateSpec {
    name: Cow::Borrowed("x"),
    meaning: Cow::Borrowed("state"),
};

fn finite<const N: usize>(x: &SVector<f64, N>) -> bool {
    x.iter().all(|v| v.is_finite())
}

/// Logistic growth `x' = r·x·(1 − x)`, solved by `x(t) = 1 / (1 + (1/x0 − 1)·e^{−rt})`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Logistic;

static LOGISTIC: [ParamSpec; 1] = [ParamSpec {
    name: Cow::Borrowed("rate"),
    symbol: Cow::Borrowed("r"),
    unit: Cow::Borrowed("1/min"),
    default: 1.0,
    lower: Bound::Closed(0.0),
    upper: Bound::Unbounded,
    meaning: Cow::Borrowed("growth rate"),
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

static SADDLE_NODE: [ParamSpec; 1] = [param("mu", -1.0, "unfolding parameter")];

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
    fn feasible(&self, x: &SVector<f64, 1>, _p: &[f64]) -> bool {
        finite(x)
    }
}

/// The cusp normal form `x' = μ + λ·x − x³`: for `λ > 0` folds at `μ = ±2(λ/3)^{3/2}`, which
/// meet in a cusp at `(μ, λ) = (0, 0)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cusp;

static CUSP: [ParamSpec; 2] = [
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
    fn feasible(&self, x: &SVector<f64, 1>, _p: &[f64]) -> bool {
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
                name: Cow::Borrowed("y"),
                meaning: Cow::Borrowed("state"),
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
    fn feasible(&self, x: &SVector<f64, 2>, _p: &[f64]) -> bool {
        finite(x)
    }
}

/// The Hopf normal form `x' = μx − y − x(x² + y²)`, `y' = x + μy − y(x² + y²)`: the origin is an
/// equilibrium for every `μ`, with eigenvalues `μ ± i`, so a Hopf point sits at `μ = 0`.
#[derive(Debug, Clone, Copy, Default)]
pub struct HopfNormalForm;

static HOPF: [ParamSpec; 1] = [param("mu", -1.0, "distance from the Hopf point")];

impl Model<2> for HopfNormalForm {
    fn name(&self) -> &str {
        "hopf-normal-form"
    }
    fn states(&self) -> [StateSpec; 2] {
        [
            X,
            StateSpec {
                name: Cow::Borrowed("y"),
                meaning: Cow::Borrowed("state"),
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
    fn feasible(&self, x: &SVector<f64, 2>, _p: &[f64]) -> bool {
        finite(x)
    }
}

// ---- Bautin (generalised Hopf) normal form: for two-parameter Hopf curves ----

/// The Bautin (generalised Hopf) normal form, in polar coordinates `r' = β1·r + β2·r³ − r⁵`,
/// `θ' = 1`; in Cartesian coordinates
///
/// ```text
/// x' = β1·x − y + β2·x·r² − x·r⁴
/// y' = x + β1·y + β2·y·r² − y·r⁴        (r² = x² + y²)
/// ```
///
/// The origin is an equilibrium with eigenvalues `β1 ± i`: its Hopf curve in `(β1, β2)` is the
/// line `β1 = 0`, with `ω = 1` and first Lyapunov coefficient `l1 = 2β2` (Kuznetsov's
/// normalisation: `r' = μr + s·r³`, `θ' = ω` has `l1 = 2s/ω`), which changes sign at the Bautin
/// point `(β1, β2) = (0, 0)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bautin;

static BAUTIN: [ParamSpec; 2] = [
    param("beta1", -0.5, "real part of the eigenvalues"),
    param(
        "beta2",
        -1.0,
        "cubic coefficient (the first Lyapunov coefficient is 2·beta2)",
    ),
];

impl Model<2> for Bautin {
    fn name(&self) -> &str {
        "bautin"
    }
    fn states(&self) -> [StateSpec; 2] {
        [
            X,
            StateSpec {
                name: Cow::Borrowed("y"),
                meaning: Cow::Borrowed("state"),
            },
        ]
    }
    fn params(&self) -> &[ParamSpec] {
        &BAUTIN
    }
    fn rhs<T: Scalar>(&self, _t: T, x: &SVector<T, 2>, p: &[T]) -> SVector<T, 2> {
        let (u, v) = (x[0], x[1]);
        let r2 = u * u + v * v;
        let radial = p[0] + p[1] * r2 - r2 * r2;
        SVector::from([radial * u - v, u + radial * v])
    }
    fn nominal_state(&self, _p: &[f64]) -> SVector<f64, 2> {
        SVector::zeros()
    }
    fn feasible(&self, x: &SVector<f64, 2>, _p: &[f64]) -> bool {
        finite(x)
    }
}

// ---- end of the Bautin normal form ----

/// A general planar system at a Hopf point with quadratic and cubic terms,
///
/// ```text
/// x' = μx − ωy + a20·x² + a11·xy + a02·y² + s·x(x² + y²)
/// y' = ωx + μy + b20·x² + b11·xy + b02·y² + s·y(x² + y²)
/// ```
///
/// The origin is an equilibrium with eigenvalues `μ ± iω`, so a Hopf point sits at `μ = 0`.
/// Without quadratic terms it is the normal form `r' = μr + s·r³`, `θ' = ω`, supercritical for
/// `s < 0` and subcritical for `s > 0`; the quadratic terms change the first Lyapunov
/// coefficient. In Kuznetsov's normalisation (*Elements of Applied Bifurcation Theory*: eigenvector
/// `q` with `⟨q, q⟩ = 1`; his planar formula for a system in this Jordan form)
///
/// ```text
/// l1 = (f_xxx + f_xyy + g_xxy + g_yyy)/(8ω) + (f_xy(f_xx + f_yy) − g_xy(g_xx + g_yy) − f_xx g_xx + f_yy g_yy)/(8ω²)
///    = 2s/ω + (a11(a20 + a02) − b11(b20 + b02) − 2a20 b20 + 2a02 b02)/(4ω²)
/// ```
///
/// (`tests/ref/hopf_l1.py` checks symbolically that this equals his general n-dimensional
/// formula.)
#[derive(Debug, Clone, Copy, Default)]
pub struct PlanarHopf;

static PLANAR_HOPF: [ParamSpec; 9] = [
    param("mu", -1.0, "real part of the eigenvalues"),
    param("omega", 1.0, "imaginary part of the eigenvalues"),
    param("cubic", -1.0, "cubic coefficient s"),
    param("a20", 0.0, "coefficient of x² in x'"),
    param("a11", 0.0, "coefficient of xy in x'"),
    param("a02", 0.0, "coefficient of y² in x'"),
    param("b20", 0.0, "coefficient of x² in y'"),
    param("b11", 0.0, "coefficient of xy in y'"),
    param("b02", 0.0, "coefficient of y² in y'"),
];

impl PlanarHopf {
    /// The first Lyapunov coefficient at `μ = 0` in Kuznetsov's normalisation, from the closed
    /// form above.
    pub fn l1(p: &[f64]) -> f64 {
        let (w, s) = (p[1], p[2]);
        let (a20, a11, a02, b20, b11, b02) = (p[3], p[4], p[5], p[6], p[7], p[8]);
        2.0 * s / w
            + (a11 * (a20 + a02) - b11 * (b20 + b02) - 2.0 * a20 * b20 + 2.0 * a02 * b02)
                / (4.0 * w * w)
    }
}

impl Model<2> for PlanarHopf {
    fn name(&self) -> &str {
        "planar-hopf"
    }
    fn states(&self) -> [StateSpec; 2] {
        [
            X,
            StateSpec {
                name: Cow::Borrowed("y"),
                meaning: Cow::Borrowed("state"),
            },
        ]
    }
    fn params(&self) -> &[ParamSpec] {
        &PLANAR_HOPF
    }
    fn rhs<T: Scalar>(&self, _t: T, x: &SVector<T, 2>, p: &[T]) -> SVector<T, 2> {
        let (u, v) = (x[0], x[1]);
        let r2 = u * u + v * v;
        let (mu, w, s) = (p[0], p[1], p[2]);
        SVector::from([
            mu * u - w * v + p[3] * u * u + p[4] * u * v + p[5] * v * v + s * u * r2,
            w * u + mu * v + p[6] * u * u + p[7] * u * v + p[8] * v * v + s * v * r2,
        ])
    }
    fn nominal_state(&self, _p: &[f64]) -> SVector<f64, 2> {
        SVector::zeros()
    }
    fn feasible(&self, x: &SVector<f64, 2>, _p: &[f64]) -> bool {
        finite(x)
    }
}

const Y: StateSpec = StateSpec {
    name: Cow::Borrowed("y"),
    meaning: Cow::Borrowed("state"),
};

/// The Bogdanov–Takens normal form `x' = y`, `y' = β1 + β2·x + x² − x·y`: equilibria `(x, 0)`
/// with `x² + β2·x + β1 = 0`, which fold on the curve `β1 = β2²/4` (at `x = −β2/2`). There
/// the Jacobian is `[[0, 1], [0, β2/2]]`: a second eigenvalue `β2/2` passes through zero at the
/// Bogdanov–Takens point `(β1, β2) = (0, 0)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct BogdanovTakens;

static BOGDANOV_TAKENS: [ParamSpec; 2] = [
    param("beta1", -1.0, "first unfolding parameter"),
    param("beta2", -1.0, "second unfolding parameter"),
];

impl Model<2> for BogdanovTakens {
    fn name(&self) -> &str {
        "bogdanov-takens"
    }
    fn states(&self) -> [StateSpec; 2] {
        [X, Y]
    }
    fn params(&self) -> &[ParamSpec] {
        &BOGDANOV_TAKENS
    }
    fn rhs<T: Scalar>(&self, _t: T, x: &SVector<T, 2>, p: &[T]) -> SVector<T, 2> {
        SVector::from([x[1], p[0] + p[1] * x[0] + x[0] * x[0] - x[0] * x[1]])
    }
    fn nominal_state(&self, p: &[f64]) -> SVector<f64, 2> {
        SVector::from([-0.5 * p[1], 0.0])
    }
    fn feasible(&self, x: &SVector<f64, 2>, _p: &[f64]) -> bool {
        finite(x)
    }
}

/// A fold–Hopf (zero–Hopf) unfolding: `x' = β1 + x²`, `y' = (β2 + x)·y − z`,
/// `z' = y + (β2 + x)·z`. Equilibria `(±√(−β1), 0, 0)` fold on the line `β1 = 0` (at `x = 0`),
/// where the eigenvalues are `0` and `β2 ± i`: a fold–Hopf point at `(β1, β2) = (0, 0)`, and no
/// Bogdanov–Takens point (the other eigenvalues' product is `β2² + 1 > 0`).
#[derive(Debug, Clone, Copy, Default)]
pub struct FoldHopf;

static FOLD_HOPF: [ParamSpec; 2] = [
    param("beta1", -1.0, "fold unfolding parameter"),
    param("beta2", -0.5, "Hopf unfolding parameter"),
];

impl Model<3> for FoldHopf {
    fn name(&self) -> &str {
        "fold-hopf"
    }
    fn states(&self) -> [StateSpec; 3] {
        [
            X,
            Y,
            StateSpec {
                name: Cow::Borrowed("z"),
                meaning: Cow::Borrowed("state"),
            },
        ]
    }
    fn params(&self) -> &[ParamSpec] {
        &FOLD_HOPF
    }
    fn rhs<T: Scalar>(&self, _t: T, x: &SVector<T, 3>, p: &[T]) -> SVector<T, 3> {
        let growth = p[1] + x[0];
        SVector::from([
            p[0] + x[0] * x[0],
            growth * x[1] - x[2],
            x[1] + growth * x[2],
        ])
    }
    fn nominal_state(&self, p: &[f64]) -> SVector<f64, 3> {
        SVector::from([(-p[0]).max(0.0).sqrt(), 0.0, 0.0])
    }
    fn feasible(&self, x: &SVector<f64, 3>, _p: &[f64]) -> bool {
        finite(x)
    }
}
