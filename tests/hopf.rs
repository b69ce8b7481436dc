//! Hopf points: their frequency and first Lyapunov coefficient against closed forms, against an
//! exact symbolic computation (`tests/ref/hopf_l1.py`, sympy), against the law by which `l1`
//! changes under a linear change of coordinates, and against the growth of oscillations
//! integrated near the Hopf point (a return map that uses no formula at all); the reference
//! model's Hopf points in `sn_capacity` and `dedicated`.
//!
//! Normalisation (Kuznetsov): `A q = iωq`, `Aᵀp = −iωp`, `⟨q, q⟩ = 1`, `⟨p, q⟩ = 1`. Then on the
//! centre manifold `x − x* = z q + z̄ q̄ + O(|z|²)` with `z' = iωz + c₁ z|z|² + …` and
//! `l1 = Re c₁ / ω`, so `|z|' = ω·l1·|z|³`: over one turn (`2π/ω`) `|z|` grows by
//! `2π·l1·|z|³` to leading order, in any coordinates on a section (a near-identity change of
//! coordinates `r ↦ r + O(r²)` keeps the cubic term of a return map `r + c·r³ + …`).

mod common;

use common::selfheal;
use nalgebra::{Complex, SMatrix, SVector};
use selfheal::analysis::continuation::{
    continue_equilibria, BranchPoint, Continuation, ContinuationOptions, SpecialPoint,
};
use selfheal::analysis::hopf::{first_lyapunov, refine_hopf, Criticality, HopfGuess, Located};
use selfheal::model::textbook::{HopfNormalForm, PlanarHopf, SaddleNode};
use selfheal::model::{Model, P2p, ParamSet, ParamSpec, Scalar, StateSpec, System};
use std::borrow::Cow;

#[path = "common/return_map.rs"]
mod return_map;
use return_map::measured_l1;

type C64 = Complex<f64>;

/// `PlanarHopf` parameters: (μ, ω, s, a20, a11, a02, b20, b11, b02).
fn planar(mu: f64, omega: f64, s: f64, quad: [f64; 6]) -> [f64; 9] {
    let [a20, a11, a02, b20, b11, b02] = quad;
    [mu, omega, s, a20, a11, a02, b20, b11, b02]
}

/// The Hopf points of a continuation.
fn hopf_points<const N: usize>(c: &Continuation<N>) -> Vec<&BranchPoint<N>> {
    c.special_points()
        .filter(|(_, p)| p.special == Some(SpecialPoint::Hopf))
        .map(|(_, p)| p)
        .collect()
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * b.abs()
}

#[test]
fn third_derivative_matches_hand_and_finite_differences() {
    // Hopf normal form, first component f1 = μx − y − x(x² + y²):
    // f1_xxx = −6, f1_xyy = −2, f1_xx = −6x, f1_xy = −2y; J·e_x = (μ − 3x² − y², 1 − 2xy).
    let (x0, y0) = (0.3, -0.7);
    let p = [0.25];
    let sys = System::new(&HopfNormalForm, &p);
    let x = SVector::from([x0, y0]);
    let (ex, ey) = (SVector::from([1.0, 0.0]), SVector::from([0.0, 1.0]));
    let d = sys.third_derivative(0.0, &x, &ex, &ex, &ex);
    assert_eq!(d[0].eps1eps2eps3, -6.0);
    assert_eq!(d[0].eps1eps2, -6.0 * x0);
    assert!((d[0].eps1 - (0.25 - 3.0 * x0 * x0 - y0 * y0)).abs() < 1e-15);
    assert!((d[1].eps1 - (1.0 - 2.0 * x0 * y0)).abs() < 1e-15);
    let d = sys.third_derivative(0.0, &x, &ex, &ey, &ey);
    assert_eq!(d[0].eps1eps2eps3, -2.0);
    assert_eq!(d[0].eps1eps2, -2.0 * y0);
    // Reference model at its collapsed-side Hopf point: D³f[a, b, c] against a central
    // difference of the (hyper-dual) second derivative D²f[a, b] along c.
    let mut ps = ParamSet::defaults(P2p.params());
    ps.set("sn_capacity", 5784.245).unwrap();
    let sys = System::new(&P2p, ps.values());
    let x = SVector::from([0.03606, 2.8794e-6, 0.035673]);
    let a = SVector::from([0.3, 1.4e-5, -0.5]);
    let b = SVector::from([-0.7, -5.8e-5, 0.43]);
    let c = SVector::from([0.1, 2e-6, 0.2]);
    let exact = sys
        .third_derivative(0.0, &x, &a, &b, &c)
        .map(|v| v.eps1eps2eps3);
    let h = 1e-4;
    let d2 = |x: SVector<f64, 3>| sys.second_derivative(0.0, &x, 0, (&a, 0.0), (&b, 0.0));
    let fd = (d2(x + c * h) - d2(x - c * h)) / (2.0 * h);
    assert!(
        (exact - fd).amax() < 1e-6 * exact.amax(),
        "{exact:?} vs {fd:?}"
    );
    // The second-order part is the second derivative.
    let two = sys
        .third_derivative(0.0, &x, &a, &b, &c)
        .map(|v| v.eps1eps2);
    assert!((two - d2(x)).amax() <= 1e-12 * two.amax());
}

/// The normal form `x' = μx − ωy + s·x(x² + y²)`, `y' = ωx + μy + s·y(x² + y²)`, i.e.
/// `r' = μr + s·r³`, `θ' = ω`, has `l1 = 2s/ω` in Kuznetsov's normalisation. By hand: at μ = 0,
/// `q = p = (1, −i)/√2` (`Aq = iωq`, `Aᵀp = −iωp`, `⟨p, q⟩ = ⟨q, q⟩ = 1`); there is no quadratic
/// part (B = 0); the cubic part `s·|X|²X` has `C(u, v, w) = 2s[(u·v)w + (u·w)v + (v·w)u]` (plain
/// dot products), and with `q·q = 0`, `q·q̄ = 1`, `C(q, q, q̄) = 4s·q`, so
/// `l1 = Re⟨p, 4s·q⟩/(2ω) = 2s/ω`. (Check: `x = zq + z̄q̄ = √2(Re z, Im z)`, so `r = √2|z|` and
/// `|z|' = 2s|z|³ = ω·l1·|z|³`.)
#[test]
fn normal_form_has_l1_two_s_over_omega_of_either_sign() {
    for (s, want) in [
        (-0.7, Criticality::Supercritical),
        (0.7, Criticality::Subcritical),
    ] {
        let omega = 1.5;
        let p = planar(-1.0, omega, s, [0.0; 6]);
        let c = continue_equilibria(
            &PlanarHopf,
            &p,
            0,
            -1.0,
            0.5,
            &ContinuationOptions::default(),
        )
        .unwrap();
        let hopf = hopf_points(&c);
        assert_eq!(hopf.len(), 1, "s = {s}");
        let h = hopf[0];
        let data = h.hopf.expect("Hopf data");
        assert!(h.mu.abs() < 1e-13 && h.x.amax() < 1e-13, "{h:?}");
        assert!(close(data.omega, omega, 1e-13), "{data:?}");
        assert!(close(data.l1, 2.0 * s / omega, 1e-12), "s = {s}: {data:?}");
        assert_eq!(data.criticality, want);
        assert_eq!(data.located, Located::Newton);
        // The closed form of the model agrees, and so does the direct computation.
        assert!(close(PlanarHopf::l1(&p), 2.0 * s / omega, 1e-15));
        let mut p0 = p;
        p0[0] = 0.0;
        let l = first_lyapunov(&System::new(&PlanarHopf, &p0), &SVector::zeros(), omega).unwrap();
        assert!(close(l.l1, 2.0 * s / omega, 1e-12) && close(l.omega, omega, 1e-15));
    }
    // s = 0: a degenerate (Bautin) point.
    let p = planar(0.0, 1.5, 0.0, [0.0; 6]);
    let l = first_lyapunov(&System::new(&PlanarHopf, &p), &SVector::zeros(), 1.5).unwrap();
    assert_eq!(l.l1, 0.0);
    assert_eq!(l.criticality(), Criticality::Degenerate);
}

/// Quadratic terms enter through the B-terms of the formula. Exact values from the closed form
/// `PlanarHopf::l1` (Kuznetsov's planar formula), which `tests/ref/hopf_l1.py` checks
/// symbolically against the general formula: 203/90 for the values below, where the quadratic
/// terms turn the stabilising cubic term (s = −1/10) into a subcritical point, and 0 where they
/// cancel it exactly.
#[test]
fn quadratic_terms_change_the_criticality() {
    let p = planar(-1.0, 1.5, -0.1, [1.0, 2.0, 3.0, 0.5, -1.0, 2.0]);
    assert!(close(PlanarHopf::l1(&p), 203.0 / 90.0, 1e-15));
    let c = continue_equilibria(
        &PlanarHopf,
        &p,
        0,
        -1.0,
        0.5,
        &ContinuationOptions::default(),
    )
    .unwrap();
    // Other equilibria (away from the origin) may have their own branches: take the origin's.
    let hopf: Vec<_> = hopf_points(&c)
        .into_iter()
        .filter(|h| h.x.amax() < 1e-9)
        .collect();
    assert_eq!(hopf.len(), 1);
    let data = hopf[0].hopf.unwrap();
    assert!(hopf[0].mu.abs() < 1e-13);
    assert!(close(data.l1, 203.0 / 90.0, 1e-12), "{data:?}");
    assert_eq!(data.criticality, Criticality::Subcritical);
    // 2s/ω = −2/15 cancelled by a11·a20/(4ω²) = 2/15.
    let p = planar(0.0, 1.5, -0.1, [1.0, 1.2, 0.0, 0.0, 0.0, 0.0]);
    assert!(PlanarHopf::l1(&p).abs() < 1e-16);
    let l = first_lyapunov(&System::new(&PlanarHopf, &p), &SVector::zeros(), 1.5).unwrap();
    assert!(l.l1.abs() < 1e-14 && l.scale > 0.1, "{l:?}");
    assert_eq!(l.criticality(), Criticality::Degenerate);
}

/// A three-dimensional system with a curved centre manifold: the stable direction z is driven
/// by the oscillation and feeds back into it,
/// `x' = μx − ωy + 2xz + y²`, `y' = ωx + μy − yz + xy`, `z' = −2z + x² + 3y² − xy` (ω = 3/2).
/// Without z the quadratic terms give l1 = 0; with it, l1 = 49/78 exactly (sympy,
/// `tests/ref/hopf_l1.py`).
struct Coupled;

static MU: [ParamSpec; 1] = [ParamSpec {
    name: Cow::Borrowed("mu"),
    symbol: Cow::Borrowed("μ"),
    unit: Cow::Borrowed("-"),
    default: -1.0,
    lower: selfheal::model::Bound::Unbounded,
    upper: selfheal::model::Bound::Unbounded,
    meaning: Cow::Borrowed("distance from the Hopf point"),
}];

const fn state(name: &'static str) -> StateSpec {
    StateSpec {
        name: Cow::Borrowed(name),
        meaning: Cow::Borrowed("state"),
    }
}

impl Model<3> for Coupled {
    fn name(&self) -> &str {
        "coupled"
    }
    fn states(&self) -> [StateSpec; 3] {
        [state("x"), state("y"), state("z")]
    }
    fn params(&self) -> &[ParamSpec] {
        &MU
    }
    fn rhs<T: Scalar>(&self, _t: T, v: &SVector<T, 3>, p: &[T]) -> SVector<T, 3> {
        let (x, y, z) = (v[0], v[1], v[2]);
        let w = T::from(1.5);
        let two = T::from(2.0);
        SVector::from([
            p[0] * x - w * y + two * x * z + y * y,
            w * x + p[0] * y - y * z + x * y,
            -two * z + x * x + T::from(3.0) * y * y - x * y,
        ])
    }
    fn nominal_state(&self, _p: &[f64]) -> SVector<f64, 3> {
        SVector::zeros()
    }
    fn feasible(&self, x: &SVector<f64, 3>, _p: &[f64]) -> bool {
        x.iter().all(|v| v.is_finite())
    }
}

/// A model seen in other coordinates `y = T x`: `y' = T f(T⁻¹y)`.
struct Linear<M, const N: usize> {
    inner: M,
    t: SMatrix<f64, N, N>,
    tinv: SMatrix<f64, N, N>,
}

impl<M: Model<N>, const N: usize> Linear<M, N> {
    fn new(inner: M, t: SMatrix<f64, N, N>) -> Self {
        let tinv = t.try_inverse().unwrap();
        Self { inner, t, tinv }
    }
}

fn apply<T: Scalar, const N: usize>(m: &SMatrix<f64, N, N>, v: &SVector<T, N>) -> SVector<T, N> {
    SVector::from_fn(|i, _| (0..N).fold(T::from(0.0), |acc, j| acc + T::from(m[(i, j)]) * v[j]))
}

impl<M: Model<N>, const N: usize> Model<N> for Linear<M, N> {
    fn name(&self) -> &str {
        "linear"
    }
    fn states(&self) -> [StateSpec; N] {
        self.inner.states()
    }
    fn params(&self) -> &[ParamSpec] {
        self.inner.params()
    }
    fn rhs<T: Scalar>(&self, t: T, y: &SVector<T, N>, p: &[T]) -> SVector<T, N> {
        apply(&self.t, &self.inner.rhs(t, &apply(&self.tinv, y), p))
    }
    fn nominal_state(&self, _p: &[f64]) -> SVector<f64, N> {
        SVector::zeros()
    }
    fn feasible(&self, x: &SVector<f64, N>, _p: &[f64]) -> bool {
        x.iter().all(|v| v.is_finite())
    }
}

#[test]
fn curved_centre_manifold_gives_the_exact_coefficient() {
    let c = continue_equilibria(
        &Coupled,
        &[-1.0],
        0,
        -1.0,
        0.5,
        &ContinuationOptions::default(),
    )
    .unwrap();
    let hopf: Vec<_> = hopf_points(&c)
        .into_iter()
        .filter(|h| h.x.amax() < 1e-9)
        .collect();
    assert_eq!(hopf.len(), 1);
    let data = hopf[0].hopf.unwrap();
    assert!(hopf[0].mu.abs() < 1e-13 && close(data.omega, 1.5, 1e-13));
    assert!(close(data.l1, 49.0 / 78.0, 1e-12), "{data:?}");
    assert_eq!(data.criticality, Criticality::Subcritical);
}

/// Under `y = T x` the eigenvalues are unchanged, so ω is; the eigenvector becomes `T q`, which
/// must be renormalised, so `z_y = |T q|·z_x` and `l1_y = l1_x / |T q|²` exactly (the sign, the
/// criticality, never changes; an orthogonal T changes nothing). Exact values from
/// `tests/ref/hopf_l1.py`.
#[test]
fn linear_change_of_coordinates_keeps_omega_and_transforms_l1_exactly() {
    // Planar: q = (1, −i)/√2, |T q|² = |T|_F²/2.
    let p = planar(0.0, 1.5, -1.0, [1.0, 2.0, -3.0, 0.5, -1.0, 2.0]);
    let l1 = PlanarHopf::l1(&p);
    assert!(close(l1, -53.0 / 18.0, 1e-15));
    let t = SMatrix::<f64, 2, 2>::new(2.0, 1.0, -0.5, 3.0);
    let (ang, k) = (0.7f64, 1.0);
    let rot = SMatrix::<f64, 2, 2>::new(ang.cos(), -ang.sin(), ang.sin(), ang.cos()) * k;
    for (m, want) in [
        (SMatrix::identity(), l1),
        (t, -212.0 / 513.0),
        (rot, l1),
        (t * 10.0, -212.0 / 513.0 / 100.0),
    ] {
        assert!(close(want, l1 * 2.0 / m.norm_squared(), 1e-14));
        let model = Linear::new(PlanarHopf, m);
        let l = first_lyapunov(&System::new(&model, &p), &SVector::zeros(), 1.5).unwrap();
        assert!(close(l.omega, 1.5, 1e-14), "{m}: {l:?}");
        assert!(close(l.l1, want, 1e-12), "{m}: {l:?} vs {want}");
        assert_eq!(l.criticality(), Criticality::Supercritical);
    }
    // Three dimensions with a curved centre manifold, through the whole continuation:
    // q = (1, −i, 0)/√2 and |T q|² = 7/2.
    let t3 = SMatrix::<f64, 3, 3>::new(1.0, 2.0, 0.0, 0.0, 1.0, -1.0, 1.0, 0.0, 3.0);
    let model = Linear::new(Coupled, t3);
    let c = continue_equilibria(
        &model,
        &[-1.0],
        0,
        -1.0,
        0.5,
        &ContinuationOptions::default(),
    )
    .unwrap();
    let hopf: Vec<_> = hopf_points(&c)
        .into_iter()
        .filter(|h| h.x.amax() < 1e-9)
        .collect();
    assert_eq!(hopf.len(), 1);
    let data = hopf[0].hopf.unwrap();
    assert!(close(data.omega, 1.5, 1e-13), "{data:?}");
    assert!(close(data.l1, 7.0 / 39.0, 1e-12), "{data:?}");
    assert!(close(7.0 / 39.0, 49.0 / 78.0 / 3.5, 1e-15));
    assert_eq!(data.criticality, Criticality::Subcritical);
}

/// Two oscillators: pair A = μ ± i crosses at μ = 0, pair B = −0.1 ± 2i never crosses. Taking
/// "the pair nearest the axis" at each point switches from A to B at |μ| = 0.1 and sees a
/// spurious sign change there; following each pair by continuity sees exactly one crossing.
struct TwoOscillators;

impl Model<4> for TwoOscillators {
    fn name(&self) -> &str {
        "two-oscillators"
    }
    fn states(&self) -> [StateSpec; 4] {
        [state("x1"), state("y1"), state("x2"), state("y2")]
    }
    fn params(&self) -> &[ParamSpec] {
        &MU
    }
    fn rhs<T: Scalar>(&self, _t: T, v: &SVector<T, 4>, p: &[T]) -> SVector<T, 4> {
        let (x1, y1, x2, y2) = (v[0], v[1], v[2], v[3]);
        let r1 = x1 * x1 + y1 * y1;
        let r2 = x2 * x2 + y2 * y2;
        let (b, w2) = (T::from(-0.1), T::from(2.0));
        SVector::from([
            p[0] * x1 - y1 - x1 * r1,
            x1 + p[0] * y1 - y1 * r1,
            b * x2 - w2 * y2 - x2 * r2,
            w2 * x2 + b * y2 - y2 * r2,
        ])
    }
    fn nominal_state(&self, _p: &[f64]) -> SVector<f64, 4> {
        SVector::zeros()
    }
    fn feasible(&self, x: &SVector<f64, 4>, _p: &[f64]) -> bool {
        x.iter().all(|v| v.is_finite())
    }
}

#[test]
fn each_pair_is_followed_by_continuity() {
    let c = continue_equilibria(
        &TwoOscillators,
        &[-1.0],
        0,
        -1.0,
        1.0,
        &ContinuationOptions::default(),
    )
    .unwrap();
    let hopf = hopf_points(&c);
    assert_eq!(hopf.len(), 1, "{hopf:?}");
    let data = hopf[0].hopf.unwrap();
    assert!(hopf[0].mu.abs() < 1e-13);
    assert!(close(data.omega, 1.0, 1e-13), "{data:?}");
    // r' = μr − r³: l1 = 2·(−1)/1.
    assert!(close(data.l1, -2.0, 1e-12), "{data:?}");
}

#[test]
fn newton_on_the_extended_system_converges_from_a_rough_guess() {
    let p = planar(-0.3, 1.5, 0.7, [1.0, 2.0, 3.0, 0.5, -1.0, 2.0]);
    let guess = HopfGuess {
        x: SVector::from([0.01, -0.02]),
        mu: -0.3,
        omega: 1.2,
        mu_scale: 1.0,
    };
    let h = refine_hopf(&PlanarHopf, &p, 0, guess).unwrap();
    assert!(h.mu.abs() < 1e-14 && h.x.amax() < 1e-14, "{h:?}");
    assert!(close(h.omega, 1.5, 1e-14) && h.residual < 1e-12, "{h:?}");
    // l1 = 2s/ω + (a11(a20 + a02) − b11(b20 + b02) − 2a20·b20 + 2a02·b02)/(4ω²)
    //    = 1.4/1.5 + 21.5/9 = 299/90 (by hand; the quadratic part is the 215/90 behind the
    //    203/90 above).
    assert!(close(h.l1, 299.0 / 90.0, 1e-12), "{h:?}");
    // The eigenvector: A q = iωq with ⟨q, q⟩ = 1 (A at the origin is [[0, −ω], [ω, 0]]).
    let aq = [-h.q[1] * 1.5, h.q[0] * 1.5];
    for (a, q) in aq.iter().zip(h.q.iter()) {
        assert!((a - C64::new(0.0, 1.5) * q).norm() < 1e-13);
    }
    assert!((h.q.norm() - 1.0).abs() < 1e-15);
    // Nothing to refine without a complex pair.
    let guess = HopfGuess {
        x: SVector::from([-1.0]),
        mu: -1.0,
        omega: 1.0,
        mu_scale: 1.0,
    };
    assert!(refine_hopf(&SaddleNode, &[-1.0], 0, guess).is_err());
}

#[test]
fn integrated_oscillations_grow_at_the_rate_l1_predicts() {
    // A planar point that quadratic terms make subcritical (l1 = 203/90).
    let p = planar(0.0, 1.5, -0.1, [1.0, 2.0, 3.0, 0.5, -1.0, 2.0]);
    let l = first_lyapunov(&System::new(&PlanarHopf, &p), &SVector::zeros(), 1.5).unwrap();
    let m = measured_l1(&PlanarHopf, &p, &SVector::zeros(), 1.5, 1e-3, 2e-3);
    assert!(close(m, l.l1, 1e-4), "measured {m} vs {}", l.l1);
    // The curved centre manifold (l1 = 49/78).
    let l = first_lyapunov(&System::new(&Coupled, &[0.0]), &SVector::zeros(), 1.5).unwrap();
    let m = measured_l1(&Coupled, &[0.0], &SVector::zeros(), 1.5, 1e-3, 2e-3);
    assert!(close(m, l.l1, 1e-4), "measured {m} vs {}", l.l1);
}

/// The reference model at its defaults, continued in `sn_capacity` from 1000 to 20000: the
/// collapsed state loses stability at a subcritical Hopf point at ≈ 5784.245 (MODEL.md, from an
/// independent computation, which also gave ω ≈ 0.09107/min and l1 ≈ +569).
#[test]
fn reference_model_collapsed_state_loses_stability_at_a_subcritical_hopf_point() {
    let ps = ParamSet::defaults(P2p.params());
    let k = ps.index("sn_capacity").unwrap();
    let c = continue_equilibria(
        &P2p,
        ps.values(),
        k,
        1000.0,
        20000.0,
        &ContinuationOptions::default(),
    )
    .unwrap();
    let hopf: Vec<_> = c
        .special_points()
        .filter(|(_, p)| p.special == Some(SpecialPoint::Hopf))
        .collect();
    assert_eq!(hopf.len(), 1, "{hopf:?}");
    let (b, h) = hopf[0];
    let data = h.hopf.unwrap();
    assert!(close(h.mu, 5784.245, 1e-7), "{}", h.mu);
    assert!(close(data.omega, 0.09107, 1e-4), "{data:?}");
    assert!(close(data.l1, 569.0, 2e-3), "{data:?}");
    assert_eq!(data.criticality, Criticality::Subcritical);
    assert_eq!(data.located, Located::Newton);
    // On the collapsed branch: the branch passes through the equilibrium with the fewest
    // peers at 1000 (fewer than 1% of users online), and next to the Hopf point it is stable
    // at the smaller sn_capacity, unstable at the larger.
    let collapsed = (0..c.start_equilibria.len())
        .min_by(|&i, &j| c.start_equilibria[i].x[0].total_cmp(&c.start_equilibria[j].x[0]))
        .unwrap();
    let e = &c.start_equilibria[collapsed];
    assert!(e.x[0] + e.x[1] < 0.01, "{e:?}");
    assert!(c.branches[b].starts.contains(&collapsed));
    let pts = &c.branches[b].points;
    let i = pts.iter().position(|p| p.hopf.is_some()).unwrap();
    let (below, above) = if pts[i - 1].mu < pts[i + 1].mu {
        (&pts[i - 1], &pts[i + 1])
    } else {
        (&pts[i + 1], &pts[i - 1])
    };
    assert!(below.mu < h.mu && h.mu < above.mu);
    assert!(below.stable && !above.stable);
    // At the point: an equilibrium with a pair exactly on the imaginary axis at ±iω.
    let mut p = ps.values().to_vec();
    p[k] = h.mu;
    let f = P2p.rhs(0.0, &h.x, &p);
    assert!(f.amax() < 1e-15, "{f:?}");
    let j = selfheal::model::jacobian(&P2p, 0.0, &h.x, &p);
    let pair = j
        .complex_eigenvalues()
        .iter()
        .copied()
        .find(|l| l.im > 0.0)
        .unwrap();
    assert!(pair.re.abs() < 1e-12 * pair.im, "{pair}");
    assert!(close(pair.im, data.omega, 1e-10), "{pair} vs {data:?}");
    // Integrated: small oscillations around it grow by 2π·l1·r³ per turn.
    let m = measured_l1(&P2p, &p, &h.x, data.omega, 2e-4, 0.01);
    assert!(close(m, data.l1, 1e-3), "measured {m} vs {}", data.l1);
}

/// In `dedicated` at sn_capacity = 1000, a Hopf point at ≈ 2.70274e-4 precedes the fold at
/// ≈ 2.70968e-4 (independent computation).
#[test]
fn reference_model_hopf_point_in_dedicated_precedes_the_fold() {
    let ps = ParamSet::defaults(P2p.params());
    let k = ps.index("dedicated").unwrap();
    let c = continue_equilibria(
        &P2p,
        ps.values(),
        k,
        1e-5,
        1e-3,
        &ContinuationOptions::default(),
    )
    .unwrap();
    let hopf = hopf_points(&c);
    assert_eq!(hopf.len(), 1, "{hopf:?}");
    let folds = c.folds();
    let h = hopf[0];
    let data = h.hopf.unwrap();
    assert!(close(h.mu, 2.70274e-4, 2e-6), "{}", h.mu);
    assert!(
        folds.iter().any(|f| close(*f, 2.70968e-4, 2e-6)),
        "{folds:?}"
    );
    assert!(folds.iter().all(|f| *f > h.mu));
    assert_eq!(data.located, Located::Newton);
    let mut p = ps.values().to_vec();
    p[k] = h.mu;
    let m = measured_l1(&P2p, &p, &h.x, data.omega, 4e-6, 0.02);
    assert!(close(m, data.l1, 1e-3), "measured {m} vs {}", data.l1);
    assert_eq!(data.criticality, Criticality::Subcritical);
}

/// With promotion slowed to 0.001/min (the 2007 scenario's bug) the pair crosses twice in
/// quick succession near sn_capacity ≈ 8659 and 9183: there the real part along a step is far
/// from linear, so the secant start of Newton lands near the other crossing or between them;
/// both points must still be found, refined on the extended system, with the pair on the
/// imaginary axis, and their coefficients must match integrated oscillations.
#[test]
fn reference_model_close_pair_of_hopf_points_are_both_refined() {
    let mut ps = ParamSet::defaults(P2p.params());
    ps.set("promotion", 0.001).unwrap();
    let k = ps.index("sn_capacity").unwrap();
    let c = continue_equilibria(
        &P2p,
        ps.values(),
        k,
        100.0,
        20000.0,
        &ContinuationOptions::default(),
    )
    .unwrap();
    let mut hopf = hopf_points(&c);
    hopf.sort_by(|a, b| a.mu.total_cmp(&b.mu));
    assert_eq!(hopf.len(), 3, "{hopf:?}");
    for h in &hopf[..2] {
        let data = h.hopf.unwrap();
        assert_eq!(data.located, Located::Newton, "{h:?}");
        assert_eq!(data.criticality, Criticality::Supercritical, "{h:?}");
        let mut p = ps.values().to_vec();
        p[k] = h.mu;
        let pair = selfheal::model::jacobian(&P2p, 0.0, &h.x, &p)
            .complex_eigenvalues()
            .iter()
            .copied()
            .find(|l| l.im > 0.0)
            .unwrap();
        assert!(pair.re.abs() < 1e-12 * pair.im, "{pair}");
        assert!(close(pair.im, data.omega, 1e-10), "{pair} vs {data:?}");
        let m = measured_l1(&P2p, &p, &h.x, data.omega, 2e-4, 0.01);
        assert!(close(m, data.l1, 1e-3), "measured {m} vs {}", data.l1);
    }
    assert!(close(hopf[0].mu, 8658.5896, 1e-6) && close(hopf[1].mu, 9183.0377, 1e-6));
}

#[test]
fn continue_reports_frequency_and_criticality() {
    let dir = tempfile::tempdir().unwrap();
    let out = selfheal(
        &["continue", "sn_capacity", "--from", "1000", "--to", "20000"],
        dir.path(),
    );
    assert!(out.status.success());
    let (stdout, stderr) = (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    );
    let mut lines = stdout.lines();
    assert_eq!(
        lines.next().unwrap(),
        "sn_capacity,peers,supernodes,queue,stable,point,branch,max_real_eig,omega,l1"
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let hopf: Vec<_> = rows.iter().filter(|r| r[5] == "hopf").collect();
    assert_eq!(hopf.len(), 1);
    let omega: f64 = hopf[0][8].parse().unwrap();
    let l1: f64 = hopf[0][9].parse().unwrap();
    assert!(
        close(omega, 0.09107, 1e-4) && close(l1, 569.0, 2e-3),
        "{:?}",
        hopf[0]
    );
    // Every other row leaves them empty.
    assert!(rows
        .iter()
        .filter(|r| r[5] != "hopf")
        .all(|r| r.len() == 10 && r[8].is_empty() && r[9].is_empty()));
    assert!(
        stderr.contains("hopf at sn_capacity = 5784.245")
            && stderr.contains("ω = 0.09107/min, l1 = +5.7e2: subcritical)"),
        "{stderr}"
    );
}
