//! Hopf curves in two parameters, each checked against an independent fact: the Bautin normal
//! form (Hopf curve `β1 = 0`, `ω = 1`, `l1 = 2β2`, Bautin point at the origin); the
//! Bogdanov–Takens normal form (Hopf curve `β1 = 0`, `β2 < 0`, `ω = √(−β2)`, `l1` in closed form,
//! ending at the BT point at the origin); a closed Hopf curve (the unit circle) traced once; the
//! reference model's Hopf curve through the collapsed state's Hopf point, ending at the
//! Bogdanov–Takens points an independent computation placed at (450.246, 7.3168e-4) and
//! (44838.9, 6.2654e-7) in (sn_capacity, dedicated), with points confirmed by one-parameter
//! continuation, eigenvalues and integrated oscillations; the CLI.

mod common;

use common::selfheal;
use nalgebra::SVector;
use selfheal::analysis::codim2::Plane;
use selfheal::analysis::continuation::{continue_equilibria, ContinuationOptions, SpecialPoint};
use selfheal::analysis::hopf_curve::{
    hopf_curves, HopfCurve, HopfCurveEnd, HopfCurveEntry, HopfCurvePoint,
};
use selfheal::model::textbook::Bautin;
use selfheal::model::{Model, P2p, ParamSet, ParamSpec, Scalar, StateSpec};
use std::borrow::Cow;
use std::f64::consts::PI;

#[path = "common/return_map.rs"]
mod return_map;
use return_map::measured_l1;

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * b.abs()
}

/// The points of a curve that are not located codimension-two points.
fn regular<const N: usize>(c: &HopfCurve<N>) -> impl Iterator<Item = &HopfCurveEntry<N>> {
    c.points.iter().filter(|p| p.kind.is_none())
}

#[test]
fn bautin_normal_form_has_its_bautin_point_at_the_origin() {
    // r' = β1 r + β2 r³ − r⁵, θ' = 1: the origin has eigenvalues β1 ± i, so the Hopf curve is
    // β1 = 0 with ω = 1, and l1 = 2β2/ω changes sign at β2 = 0.
    let hc = hopf_curves(
        &Bautin,
        &[-0.5, -0.5],
        &Plane::new(0, (-1.0, 1.0), 1, (-1.0, 1.0)),
        &ContinuationOptions::default(),
    )
    .unwrap();
    assert_eq!(hc.p1, "beta1");
    assert_eq!(hc.p2, "beta2");
    assert_eq!(hc.curves.len(), 1);
    assert!(hc.unstarted.is_empty());
    let c = &hc.curves[0];
    assert_eq!(c.ends, [HopfCurveEnd::Boundary; 2]);
    let (first, last) = (&c.points[0], c.points.last().unwrap());
    assert_eq!(
        (first.mu2.min(last.mu2), first.mu2.max(last.mu2)),
        (-1.0, 1.0)
    );
    assert!((c.points[c.start].mu2 + 0.5).abs() < 1e-15);
    for p in &c.points {
        assert!(p.mu1.abs() < 1e-12 && p.x.norm() < 1e-12, "{p:?}");
        assert!((p.omega - 1.0).abs() < 1e-12, "{p:?}");
        assert!((p.l1.unwrap() - 2.0 * p.mu2).abs() < 1e-10, "{p:?}");
    }
    // In order along the curve.
    let d: Vec<f64> = c.points.windows(2).map(|w| w[1].mu2 - w[0].mu2).collect();
    assert!(d.iter().all(|v| *v > 0.0) || d.iter().all(|v| *v < 0.0));
    let b: Vec<_> = hc.bautin_points().collect();
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].kind, Some(HopfCurvePoint::Bautin));
    assert!(
        b[0].mu1.abs() < 1e-12 && b[0].mu2.abs() < 1e-12,
        "{:?}",
        b[0]
    );
    assert_eq!(hc.bogdanov_takens_points().count(), 0);
}

/// The Bogdanov–Takens normal form `x' = y`, `y' = β1 + β2 x + x² − x y`.
struct BtNormalForm;

const fn param(name: &'static str, default: f64) -> ParamSpec {
    ParamSpec {
        name: Cow::Borrowed(name),
        symbol: Cow::Borrowed(name),
        unit: Cow::Borrowed("-"),
        default,
        lower: selfheal::model::Bound::Unbounded,
        upper: selfheal::model::Bound::Unbounded,
        meaning: Cow::Borrowed("unfolding parameter"),
    }
}

static BT: [ParamSpec; 2] = [param("beta1", -0.5), param("beta2", -1.0)];

impl Model<2> for BtNormalForm {
    fn name(&self) -> &str {
        "bogdanov-takens"
    }
    fn states(&self) -> [StateSpec; 2] {
        [
            StateSpec {
                name: Cow::Borrowed("x"),
                meaning: Cow::Borrowed("state"),
            },
            StateSpec {
                name: Cow::Borrowed("y"),
                meaning: Cow::Borrowed("state"),
            },
        ]
    }
    fn params(&self) -> &[ParamSpec] {
        &BT
    }
    fn rhs<T: Scalar>(&self, _t: T, v: &SVector<T, 2>, p: &[T]) -> SVector<T, 2> {
        let (x, y) = (v[0], v[1]);
        SVector::from([y, p[0] + p[1] * x + x * x - x * y])
    }
    fn nominal_state(&self, _p: &[f64]) -> SVector<f64, 2> {
        SVector::zeros()
    }
    fn feasible(&self, x: &SVector<f64, 2>, _p: &[f64]) -> bool {
        x.iter().all(|v| v.is_finite())
    }
}

#[test]
fn bogdanov_takens_normal_form_hopf_curve_ends_at_the_origin() {
    // Equilibria (x, 0) with x² + β2 x + β1 = 0; Jacobian [[0, 1], [β2 + 2x, −x]]: trace −x,
    // determinant −(β2 + 2x). Hopf where x = 0 with −β2 > 0: the curve β1 = 0, β2 < 0, with
    // ω = √(−β2), ending at the Bogdanov–Takens point (0, 0). There, in coordinates
    // (u, v) = (x, −y/ω) the system is u' = −ωv, v' = ωu − u²/ω − uv, whose planar formula gives
    // l1 = −g_uv(g_uu + g_vv)/(8ω²) = −1/(4ω³); the eigenvector (1, iω) of the original
    // coordinates has ⟨q, q⟩ = (1 + ω²)/2 times that of (u, v), so in Kuznetsov's
    // normalisation l1 = −1/(4ω³) · 2/(1 + ω²).
    let hc = hopf_curves(
        &BtNormalForm,
        &[-0.5, -1.0],
        &Plane::new(0, (-1.0, 1.0), 1, (-2.0, 1.0)),
        &ContinuationOptions::default(),
    )
    .unwrap();
    assert_eq!(hc.curves.len(), 1);
    let c = &hc.curves[0];
    let mut ends = c.ends;
    ends.sort_by_key(|e| e.name());
    assert_eq!(
        ends,
        [HopfCurveEnd::BogdanovTakens, HopfCurveEnd::Boundary],
        "{:?}",
        c.ends
    );
    let bt: Vec<_> = hc.bogdanov_takens_points().collect();
    assert_eq!(bt.len(), 1);
    assert!(
        bt[0].mu1.abs() < 1e-12 && bt[0].mu2.abs() < 1e-10,
        "{:?}",
        bt[0]
    );
    assert!(bt[0].x.norm() < 1e-10 && bt[0].omega == 0.0 && bt[0].l1.is_none());
    // The BT point is the end of the curve, the other end on β2 = −2.
    let ends_at = [&c.points[0], c.points.last().unwrap()];
    let i = if c.ends[0] == HopfCurveEnd::BogdanovTakens {
        0
    } else {
        1
    };
    assert_eq!(ends_at[i].kind, Some(HopfCurvePoint::BogdanovTakens));
    assert_eq!(ends_at[1 - i].mu2, -2.0);
    for p in regular(c) {
        assert!(p.mu1.abs() < 1e-12 && p.x.norm() < 1e-12, "{p:?}");
        assert!(p.mu2 < 0.0);
        let w = (-p.mu2).sqrt();
        assert!(close(p.omega, w, 1e-10), "{p:?}");
        let l1 = -1.0 / (4.0 * w.powi(3)) * 2.0 / (1.0 + w * w);
        assert!(close(p.l1.unwrap(), l1, 1e-8), "{p:?} vs {l1}");
    }
    assert_eq!(hc.bautin_points().count(), 0);
    // Steps reach close to the end: the last regular point before BT has ω well below 1e-2.
    assert!(regular(c).any(|p| p.omega < 1e-2));
}

/// The Hopf normal form with `μ = 1 − β1² − β2²`: `x' = μx − y − x r²`, `y' = x + μy − y r²`.
struct HopfCircle;

static CIRCLE: [ParamSpec; 2] = [param("beta1", 0.0), param("beta2", 0.0)];

impl Model<2> for HopfCircle {
    fn name(&self) -> &str {
        "hopf-circle"
    }
    fn states(&self) -> [StateSpec; 2] {
        BtNormalForm.states()
    }
    fn params(&self) -> &[ParamSpec] {
        &CIRCLE
    }
    fn rhs<T: Scalar>(&self, _t: T, v: &SVector<T, 2>, p: &[T]) -> SVector<T, 2> {
        let (x, y) = (v[0], v[1]);
        let mu = T::from(1.0) - p[0] * p[0] - p[1] * p[1];
        let r2 = x * x + y * y;
        SVector::from([mu * x - y - x * r2, x + mu * y - y * r2])
    }
    fn nominal_state(&self, _p: &[f64]) -> SVector<f64, 2> {
        SVector::zeros()
    }
    fn feasible(&self, x: &SVector<f64, 2>, _p: &[f64]) -> bool {
        x.iter().all(|v| v.is_finite())
    }
}

#[test]
fn a_closed_hopf_curve_is_traced_once() {
    // Eigenvalues 1 − β1² − β2² ± i at the origin: the Hopf curve is the unit circle, with
    // ω = 1 and l1 = −2 all round. Continuation in β1 at β2 = 0 meets it twice (β1 = ±1): one
    // closed curve through both.
    let hc = hopf_curves(
        &HopfCircle,
        &[0.0, 0.0],
        &Plane::new(0, (-2.0, 2.0), 1, (-2.0, 2.0)),
        &ContinuationOptions::default(),
    )
    .unwrap();
    assert_eq!(hc.curves.len(), 1);
    let c = &hc.curves[0];
    assert_eq!(c.ends, [HopfCurveEnd::Closed; 2]);
    for p in &c.points {
        assert!((p.mu1.hypot(p.mu2) - 1.0).abs() < 1e-12, "{p:?}");
        assert!((p.omega - 1.0).abs() < 1e-12 && (p.l1.unwrap() + 2.0).abs() < 1e-10);
    }
    // Once round: the angles cover the circle, each about once.
    let mut turn = 0.0;
    for w in c.points.windows(2) {
        let a = |p: &HopfCurveEntry<2>| p.mu2.atan2(p.mu1);
        let mut d = a(&w[1]) - a(&w[0]);
        if d > PI {
            d -= 2.0 * PI;
        } else if d < -PI {
            d += 2.0 * PI;
        }
        turn += d;
    }
    assert!(
        turn.abs() > 2.0 * PI * 0.97 && turn.abs() < 2.0 * PI * 1.03,
        "{turn}"
    );
    assert_eq!(hc.special_points().count(), 0);
}

/// The reference model's Hopf curve in (sn_capacity, dedicated) through the collapsed state's
/// subcritical Hopf point at sn_capacity ≈ 5784.245 (dedicated = 1e-5) runs between two
/// Bogdanov–Takens points that an independent computation placed at about (450.246, 7.3168e-4)
/// and (44838.9, 6.2654e-7).
#[test]
fn reference_model_hopf_curve_runs_between_two_bogdanov_takens_points() {
    let ps = ParamSet::defaults(P2p.params());
    let k1 = ps.index("sn_capacity").unwrap();
    let k2 = ps.index("dedicated").unwrap();
    let hc = hopf_curves(
        &P2p,
        ps.values(),
        &Plane::new(k1, (20.0, 200000.0), k2, (0.0, 0.05)),
        &ContinuationOptions::default(),
    )
    .unwrap();
    assert!(hc.unstarted.is_empty());
    let c = hc
        .curves
        .iter()
        .find(|c| close(c.points[c.start].mu1, 5784.245, 1e-6))
        .expect("the curve through the collapsed state's Hopf point");
    assert_eq!(c.points[c.start].mu2, 1e-5);
    assert_eq!(c.ends, [HopfCurveEnd::BogdanovTakens; 2], "{:?}", c.ends);
    let mut bt: Vec<_> = [&c.points[0], c.points.last().unwrap()].to_vec();
    bt.sort_by(|a, b| a.mu1.total_cmp(&b.mu1));
    for (p, (k, s0)) in bt.iter().zip([(450.246, 7.3168e-4), (44838.9, 6.2654e-7)]) {
        assert_eq!(p.kind, Some(HopfCurvePoint::BogdanovTakens));
        assert!(close(p.mu1, k, 1e-3) && close(p.mu2, s0, 1e-3), "{p:?}");
        // A double zero eigenvalue: both small against the Jacobian's size.
        let mut q = ps.values().to_vec();
        q[k1] = p.mu1;
        q[k2] = p.mu2;
        let f = P2p.rhs(0.0, &p.x, &q);
        assert!(f.amax() < 1e-14, "{f:?}");
        let j = selfheal::model::jacobian(&P2p, 0.0, &p.x, &q);
        let mut eig: Vec<f64> = j.complex_eigenvalues().iter().map(|l| l.norm()).collect();
        eig.sort_by(f64::total_cmp);
        assert!(eig[1] < 1e-6 * eig[2], "{eig:?}");
    }
    // Every point is an equilibrium with a pair ±iω on the imaginary axis (to the accuracy
    // of the computed eigenvalues: near the Bogdanov–Takens points the pair is nearly
    // defective, and its eigenvalues carry errors of about ε‖J‖²/ω).
    for p in regular(c) {
        let mut q = ps.values().to_vec();
        q[k1] = p.mu1;
        q[k2] = p.mu2;
        let f = P2p.rhs(0.0, &p.x, &q);
        assert!(f.amax() < 1e-14, "{p:?}: {f:?}");
        let j = selfheal::model::jacobian(&P2p, 0.0, &p.x, &q);
        let pair = j
            .complex_eigenvalues()
            .iter()
            .copied()
            .find(|l| l.im > 0.0)
            .unwrap();
        let tol = 1e-10 * p.omega + 1e-14 * j.norm_squared() / p.omega;
        assert!(pair.re.abs() < tol, "{p:?}: {pair}");
        assert!((pair.im - p.omega).abs() < tol, "{p:?}: {pair}");
    }
    // A second method: one-parameter continuation in sn_capacity at the dedicated value of a
    // few points finds a Hopf point at their sn_capacity, with the same sign of l1. The points
    // nearest (in logarithms) a few places spread along the curve: the subcritical stretch on
    // the high-capacity side, the supercritical stretch between the Bautin points, and the
    // subcritical stretch beyond. (Near the Bogdanov–Takens ends, where the Hopf point lies
    // close to a fold, the one-parameter continuation steps over the short-lived complex pair
    // and misses the Hopf point; those places are not used.)
    let n = c.points.len();
    let nearest = |k: f64, s0: f64| {
        (0..n)
            .filter(|&i| c.points[i].kind.is_none())
            .min_by(|&a, &b| {
                let d = |i: usize| {
                    let p = &c.points[i];
                    (p.mu1 / k).ln().powi(2) + (p.mu2 / s0).ln().powi(2)
                };
                d(a).total_cmp(&d(b))
            })
            .unwrap()
    };
    for (k, s0) in [
        (40700.0, 7.15e-7),
        (10000.0, 4.9e-6),
        (2930.0, 3.45e-5),
        (3540.0, 4.11e-5),
    ] {
        let p = &c.points[nearest(k, s0)];
        assert!(close(p.mu1, k, 0.05) && close(p.mu2, s0, 0.05), "{p:?}");
        let mut q = ps.values().to_vec();
        q[k2] = p.mu2;
        let one = continue_equilibria(
            &P2p,
            &q,
            k1,
            20.0,
            200000.0,
            &ContinuationOptions::default(),
        )
        .unwrap();
        let found = one
            .special_points()
            .filter(|(_, h)| h.special == Some(SpecialPoint::Hopf))
            .find(|(_, h)| close(h.mu, p.mu1, 1e-6));
        let (_, h) = found.unwrap_or_else(|| panic!("no Hopf point at {p:?}"));
        let l1 = h.hopf.unwrap().l1;
        assert!(l1 * p.l1.unwrap() > 0.0, "{p:?} vs {h:?}");
    }
    // Two Bautin points: the Hopf points between them are supercritical, the others
    // subcritical.
    let bautin: Vec<usize> = (0..n)
        .filter(|&i| c.points[i].kind == Some(HopfCurvePoint::Bautin))
        .collect();
    assert_eq!(bautin.len(), 2, "{bautin:?}");
    for (i, p) in c.points.iter().enumerate() {
        if p.kind.is_some() {
            continue;
        }
        let l1 = p.l1.unwrap();
        if i > bautin[0] && i < bautin[1] {
            assert!(l1 < 0.0, "{p:?}");
        } else {
            assert!(l1 > 0.0, "{p:?}");
        }
    }
    for &i in &bautin {
        let p = &c.points[i];
        assert!(p.l1.unwrap().abs() < 1e-8, "{p:?}");
    }
    // Integrated oscillations confirm the sign between the Bautin points (at the most
    // supercritical point) and outside them (next to each Bautin point).
    let most = (bautin[0] + 1..bautin[1])
        .min_by(|&a, &b| c.points[a].l1.unwrap().total_cmp(&c.points[b].l1.unwrap()))
        .unwrap();
    for i in [most, bautin[0] - 3, bautin[1] + 3] {
        let p = &c.points[i];
        let mut q = ps.values().to_vec();
        q[k1] = p.mu1;
        q[k2] = p.mu2;
        let m = measured_l1(&P2p, &q, &p.x, p.omega, 2e-4, 0.01);
        let l1 = p.l1.unwrap();
        assert!(m * l1 > 0.0 && close(m, l1, 2e-3), "{p:?}: measured {m}");
    }
}

#[test]
fn hopf_curve_command_writes_the_curve_and_names_its_points() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "hopf-curve",
        "sn_capacity",
        "dedicated",
        "--p1",
        "20:200000",
        "--p2",
        "0:0.05",
    ];
    let out = selfheal(&args, dir.path());
    assert!(out.status.success());
    let (stdout, stderr) = (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    );
    let mut lines = stdout.lines();
    assert_eq!(
        lines.next().unwrap(),
        "sn_capacity,dedicated,peers,supernodes,queue,omega,l1,point,curve"
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert!(rows.iter().all(|r| r.len() == 9));
    let bt: Vec<_> = rows.iter().filter(|r| r[7] == "bt").collect();
    assert_eq!(bt.len(), 2);
    assert!(bt.iter().all(|r| r[5] == "0" && r[6].is_empty()));
    assert_eq!(rows.iter().filter(|r| r[7] == "bautin").count(), 2);
    assert!(rows
        .iter()
        .filter(|r| r[7].is_empty())
        .all(|r| r[6].parse::<f64>().is_ok() && r[5].parse::<f64>().unwrap() > 0.0));
    assert_eq!(
        stderr
            .lines()
            .filter(|l| l.starts_with("bt at sn_capacity = "))
            .count(),
        2,
        "{stderr}"
    );
    assert_eq!(
        stderr
            .lines()
            .filter(|l| l.starts_with("bautin at sn_capacity = "))
            .count(),
        2,
        "{stderr}"
    );
    assert!(
        stderr.contains("ends: bogdanov-takens, bogdanov-takens"),
        "{stderr}"
    );
    // Written to a file, never over an existing one without --force.
    let mut with_out = args.to_vec();
    with_out.extend(["--out", "h.csv"]);
    assert!(selfheal(&with_out, dir.path()).status.success());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("h.csv")).unwrap(),
        stdout
    );
    let again = selfheal(&with_out, dir.path());
    assert!(!again.status.success());
    assert!(String::from_utf8(again.stderr)
        .unwrap()
        .contains("pass --force"));
    // A range of P2 that misses the current value is refused in one line, with no file.
    let bad = selfheal(
        &[
            "hopf-curve",
            "sn_capacity",
            "dedicated",
            "--p1",
            "20:200000",
            "--p2",
            "1:2",
            "--out",
            "bad.csv",
        ],
        dir.path(),
    );
    assert!(!bad.status.success());
    let e = String::from_utf8(bad.stderr).unwrap();
    assert_eq!(e.trim_end().lines().count(), 1, "{e}");
    assert!(e.contains("dedicated"), "{e}");
    assert!(!dir.path().join("bad.csv").exists());
    // The same parameter twice, and an empty range.
    for bad in [
        [
            "hopf-curve",
            "dedicated",
            "dedicated",
            "--p1",
            "0:1",
            "--p2",
            "0:1",
        ],
        [
            "hopf-curve",
            "sn_capacity",
            "dedicated",
            "--p1",
            "5:5",
            "--p2",
            "0:1",
        ],
    ] {
        let out = selfheal(&bad, dir.path());
        assert!(!out.status.success());
        let e = String::from_utf8(out.stderr).unwrap();
        assert_eq!(e.trim_end().lines().count(), 1, "{e}");
    }
}
