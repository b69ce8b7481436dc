//! Two-parameter fold curves, traced by pseudo-arclength continuation of the Moore–Spence
//! system `f = 0, J·v = 0, ⟨l, v⟩ = 1` in `(x, v, μ1, μ2)`, with the codimension-two points on
//! them, each detected by a test function changing sign between steps and located by regula
//! falsi along the curve (every trial corrected onto it):
//!
//! - **cusps** (two fold curves meet): the fold's normal-form coefficient
//!   `a = ⟨w, D²f[v, v]⟩` (`w` the left null vector, `⟨w, v⟩ = 1`) passes through zero;
//! - **Bogdanov–Takens points** (a double zero eigenvalue): the sum of the principal minors of
//!   order N − 1 of the Jacobian — at a fold the product of its other eigenvalues — passes
//!   through zero;
//! - **fold–Hopf (zero–Hopf) points** (a zero eigenvalue beside a purely imaginary pair): the
//!   real part of the complex pair of eigenvalues nearest the imaginary axis (the zero
//!   eigenvalue aside) changes sign.
//!
//! A fold curve bounds the bistable region only where it ends a stable branch; between its
//! Bogdanov–Takens points a fold curve may join only unstable branches (see
//! [`crate::analysis::bistable`]).

use super::continuation::{
    continue_equilibria, curve_correct, curve_tangent, keeps_direction, regula_falsi, BranchPoint,
    ContinuationOptions, SpecialPoint,
};
use super::fold_system::{moore_spence, unknown_scales};
use crate::error::Error;
use crate::model::{Model, System};
use nalgebra::{Const, DMatrix, DVector, DimMin, SVector};

/// One point of a fold curve.
#[derive(Debug, Clone, PartialEq)]
pub struct FoldPoint<const N: usize> {
    /// First parameter.
    pub mu1: f64,
    /// Second parameter.
    pub mu2: f64,
    /// The state at the fold.
    pub x: SVector<f64, N>,
    /// Set on located codimension-two points.
    pub special: Option<FoldSpecial>,
}

/// A codimension-two point on a fold curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum FoldSpecial {
    /// Two fold curves meet.
    Cusp,
    /// Bogdanov–Takens: a double zero eigenvalue; a Hopf curve ends here.
    BogdanovTakens,
    /// Fold–Hopf (zero–Hopf): a zero eigenvalue and a purely imaginary pair.
    FoldHopf,
}

impl FoldSpecial {
    /// The name in CSV files: `cusp`, `bt`, `zh`.
    pub fn name(self) -> &'static str {
        match self {
            FoldSpecial::Cusp => "cusp",
            FoldSpecial::BogdanovTakens => "bt",
            FoldSpecial::FoldHopf => "zh",
        }
    }
}

/// A traced fold curve: points in order along it.
#[derive(Debug, Clone, PartialEq)]
pub struct FoldCurve<const N: usize> {
    /// The points.
    pub points: Vec<FoldPoint<N>>,
}

/// Every fold curve through the folds met in the first parameter.
#[derive(Debug, Clone)]
pub struct FoldCurves<const N: usize> {
    /// First parameter's name.
    pub p1: String,
    /// Second parameter's name.
    pub p2: String,
    /// The curves.
    pub curves: Vec<FoldCurve<N>>,
    /// Steps over all curves.
    pub steps: usize,
}

impl<const N: usize> FoldCurves<N> {
    /// The located cusps.
    pub fn cusps(&self) -> impl Iterator<Item = &FoldPoint<N>> {
        self.special_points()
            .filter(|p| p.special == Some(FoldSpecial::Cusp))
    }

    /// Every located codimension-two point (cusps, Bogdanov–Takens and fold–Hopf points).
    pub fn special_points(&self) -> impl Iterator<Item = &FoldPoint<N>> {
        self.curves
            .iter()
            .flat_map(|c| c.points.iter())
            .filter(|p| p.special.is_some())
    }
}

struct FoldTracer<'a, M, const N: usize> {
    model: &'a M,
    p: Vec<f64>,
    k1: usize,
    k2: usize,
    /// Scale of the null vector's components (fixed along the curve).
    sv: SVector<f64, N>,
    /// Normalisation vector: ⟨l, v⟩ = 1 in scaled components.
    l: SVector<f64, N>,
}

impl<M: Model<N>, const N: usize> FoldTracer<'_, M, N>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    fn unpack(&self, u: &DVector<f64>) -> (SVector<f64, N>, SVector<f64, N>, Vec<f64>) {
        let x = SVector::<f64, N>::from_fn(|i, _| u[i]);
        let v = SVector::<f64, N>::from_fn(|i, _| u[N + i]);
        let mut p = self.p.clone();
        p[self.k1] = u[2 * N];
        p[self.k2] = u[2 * N + 1];
        (x, v, p)
    }

    /// `G(u)` and its `(2N+1) × (2N+2)` Jacobian.
    fn eval(&self, u: &DVector<f64>) -> Option<(DVector<f64>, DMatrix<f64>)> {
        let (x, v, p) = self.unpack(u);
        if !self.model.feasible(&x, &p) || !p.iter().all(|v| v.is_finite()) {
            return None;
        }
        let (g, a) = moore_spence(
            self.model,
            &p,
            &x,
            &v,
            &self.sv,
            &self.l,
            &[self.k1, self.k2],
        );
        Some((g, a))
    }

    fn scales(&self, u: &DVector<f64>, r1: f64, r2: f64) -> DVector<f64> {
        let (x, _, p) = self.unpack(u);
        let params = [(u[2 * N], r1), (u[2 * N + 1], r2)];
        unknown_scales(self.model, &p, &x, &[1.0; N], &params)
    }

    /// The cusp test `a = ⟨w, D²f[v, v]⟩ / |v|` with `J^T w = 0`, `⟨w, v⟩ = 1`; `w` from the
    /// bordered system `[[J^T, v], [v^T, 0]]`, which is regular at a fold.
    fn cusp_test(&self, u: &DVector<f64>) -> Option<f64> {
        let (x, v, p) = self.unpack(u);
        let sys = System::new(self.model, &p);
        let j = sys.jacobian(0.0, &x);
        let vu = v.component_mul(&self.sv);
        let mut m = DMatrix::zeros(N + 1, N + 1);
        for r in 0..N {
            for c in 0..N {
                m[(r, c)] = j[(c, r)];
            }
            m[(r, N)] = vu[r];
            m[(N, r)] = vu[r];
        }
        let mut rhs = DVector::zeros(N + 1);
        rhs[N] = 1.0;
        let sol = m.lu().solve(&rhs)?;
        let w = SVector::<f64, N>::from_fn(|i, _| sol[i]);
        let q = sys.second_derivative(0.0, &x, self.k1, (&vu, 0.0), (&vu, 0.0));
        Some(w.dot(&q) / vu.norm())
    }

    fn point(&self, u: &DVector<f64>, special: Option<FoldSpecial>) -> FoldPoint<N> {
        FoldPoint {
            mu1: u[2 * N],
            mu2: u[2 * N + 1],
            x: SVector::<f64, N>::from_fn(|i, _| u[i]),
            special,
        }
    }

    /// The Jacobian at the fold point `u`.
    fn jacobian_at(&self, u: &DVector<f64>) -> DMatrix<f64> {
        let (x, _, p) = self.unpack(u);
        let j = System::new(self.model, &p).jacobian(0.0, &x);
        DMatrix::from_fn(N, N, |r, c| j[(r, c)])
    }

    /// Bogdanov–Takens test: the sum of the principal minors of order N − 1 of the Jacobian
    /// (the product of the eigenvalues other than the zero one), over `N·|J|^(N−1)` (Frobenius
    /// norm), a bound on its size, so that "zero" means something.
    fn bt_test(&self, u: &DVector<f64>) -> Option<f64> {
        if N < 2 {
            return None;
        }
        let j = self.jacobian_at(u);
        let minor = |k: usize, m: &DMatrix<f64>| m.clone().remove_row(k).remove_column(k);
        let sum: f64 = (0..N).map(|k| minor(k, &j).determinant()).sum();
        // The size a sum of N minors of order N − 1 of this matrix can have.
        let scale = N as f64 * j.norm().powi(N as i32 - 1);
        Some(sum / scale.max(f64::MIN_POSITIVE))
    }

    /// Fold–Hopf test: real part of the complex pair nearest the imaginary axis, over its
    /// modulus, among the eigenvalues other than the one nearest zero; `None` when there is no
    /// complex pair.
    fn zh_test(&self, u: &DVector<f64>) -> Option<f64> {
        let ev = crate::linalg::eigenvalues(&self.jacobian_at(u))?;
        let zero = (0..ev.len()).min_by(|a, b| ev[*a].norm().total_cmp(&ev[*b].norm()))?;
        (0..ev.len())
            .filter(|k| *k != zero && ev[*k].im > 1e-12 * ev[*k].norm().max(1e-300))
            .map(|k| ev[k].re / ev[k].norm())
            .min_by(|a, b| a.abs().total_cmp(&b.abs()))
    }

    /// Newton with one parameter fixed (`which` = 0 for μ1, 1 for μ2) on the square system in
    /// the other unknowns.
    fn at_fixed(&self, mut u: DVector<f64>, which: usize, value: f64) -> Option<DVector<f64>> {
        let fixed = 2 * N + which;
        u[fixed] = value;
        let free: Vec<usize> = (0..2 * N + 2).filter(|i| *i != fixed).collect();
        for _ in 0..30 {
            let (g, a) = self.eval(&u)?;
            let m = a.select_columns(free.iter());
            let d = m.lu().solve(&(-g))?;
            for (k, i) in free.iter().enumerate() {
                u[*i] += d[k];
            }
            let s = self.scales(&u, 1.0, 1.0);
            if free
                .iter()
                .enumerate()
                .all(|(k, i)| d[k].abs() <= 1e-12 * s[*i])
            {
                return Some(u);
            }
        }
        None
    }

    /// Traces one direction from `u0`; stops, landing exactly on the edge, when μ1 leaves
    /// `[a, b]` or μ2 leaves `[c, d]`.
    fn trace(
        &self,
        u0: &DVector<f64>,
        dir: f64,
        bounds: [(f64, f64); 2],
        opts: &ContinuationOptions,
        steps: &mut usize,
    ) -> Vec<FoldPoint<N>> {
        let r1 = (bounds[0].1 - bounds[0].0).abs();
        let r2 = (bounds[1].1 - bounds[1].0).abs();
        let mut u = u0.clone();
        let mut s = self.scales(&u, r1, r2);
        let mut guess = DVector::zeros(2 * N + 2);
        guess[2 * N + 1] = dir * s[2 * N + 1];
        let Some(mut t) = self
            .eval(&u)
            .and_then(|(_, a)| curve_tangent(&a, &s, &guess))
        else {
            return vec![];
        };
        if t[2 * N + 1] * dir < 0.0 {
            t = -t;
        }
        let mut pts = vec![];
        let mut h = opts.first_step();
        let mut last_a = self.cusp_test(&u);
        let mut last_bt = self.bt_test(&u);
        let mut last_zh = self.zh_test(&u);
        let eval = |w: &DVector<f64>| self.eval(w);
        for _ in 0..opts.max_steps {
            let tau_s = t.component_div(&s).normalize();
            let pred = &u + tau_s.component_mul(&s) * h;
            let next = curve_correct(&eval, &pred, &tau_s, &s).and_then(|(un, it)| {
                let sn = self.scales(&un, r1, r2);
                let (_, a) = self.eval(&un)?;
                let tn = curve_tangent(&a, &sn, &t)?;
                keeps_direction(&t, &tn, &sn).then_some((un, it, sn, tn))
            });
            let Some((un, it, sn, tn)) = next else {
                h *= 0.5;
                if h < opts.ds_min {
                    break;
                }
                continue;
            };
            *steps += 1;
            // Left the window: land exactly on the edge crossed first and stop.
            let mut exit: Option<(f64, usize, f64)> = None;
            for (which, (lo, hi)) in bounds.iter().enumerate() {
                let (lo, hi) = (lo.min(*hi), lo.max(*hi));
                let (v0, v1) = (u[2 * N + which], un[2 * N + which]);
                if v1 < lo || v1 > hi {
                    let edge = if v1 < lo { lo } else { hi };
                    let frac = (edge - v0) / (v1 - v0);
                    if exit.is_none_or(|e| frac < e.0) {
                        exit = Some((frac, which, edge));
                    }
                }
            }
            if let Some((frac, which, edge)) = exit {
                if let Some(ue) = self.at_fixed(&u + (&un - &u) * frac, which, edge) {
                    pts.push(self.point(&ue, None));
                }
                break;
            }
            if !self.model.params()[self.k1].admits(un[2 * N]) {
                break;
            }
            let a_new = self.cusp_test(&un);
            if let (Some(a0), Some(a1)) = (last_a, a_new) {
                if a0 * a1 < 0.0 {
                    // A sign change through zero is a cusp; one through a pole (where the left
                    // and right null vectors become orthogonal, as at a Bogdanov–Takens point)
                    // is not.
                    if let Some((uc, ac)) = self.locate_cusp(&u, &tau_s, &s, h, a0, a1) {
                        if ac.abs() <= 1e-6 * a0.abs().max(a1.abs()) {
                            pts.push(self.point(&uc, Some(FoldSpecial::Cusp)));
                        }
                    }
                }
            }
            last_a = a_new;
            for (kind, test, last) in [
                (
                    FoldSpecial::BogdanovTakens,
                    Self::bt_test as fn(&Self, &DVector<f64>) -> Option<f64>,
                    &mut last_bt,
                ),
                (FoldSpecial::FoldHopf, Self::zh_test, &mut last_zh),
            ] {
                let now = test(self, &un);
                if let (Some(g0), Some(g1)) = (*last, now) {
                    if g0 * g1 < 0.0 {
                        if let Some((uc, gc)) =
                            self.locate_on_curve(&u, &tau_s, &s, h, (g0, g1), |w| test(self, w))
                        {
                            if gc.abs() <= 1e-8 {
                                pts.push(self.point(&uc, Some(kind)));
                            }
                        }
                    }
                }
                *last = now;
            }
            pts.push(self.point(&un, None));
            u = un;
            s = sn;
            t = tn;
            h = opts.next_step(h, it);
        }
        pts
    }

    fn locate_cusp(
        &self,
        u: &DVector<f64>,
        tau_s: &DVector<f64>,
        s: &DVector<f64>,
        h: f64,
        a0: f64,
        a1: f64,
    ) -> Option<(DVector<f64>, f64)> {
        self.locate_on_curve(u, tau_s, s, h, (a0, a1), |w| self.cusp_test(w))
    }

    /// Regula falsi on `test` along the step of length `h` from `u`, each trial corrected onto
    /// the curve.
    fn locate_on_curve(
        &self,
        u: &DVector<f64>,
        tau_s: &DVector<f64>,
        s: &DVector<f64>,
        h: f64,
        (g0, g1): (f64, f64),
        test: impl Fn(&DVector<f64>) -> Option<f64>,
    ) -> Option<(DVector<f64>, f64)> {
        let eval = |w: &DVector<f64>| self.eval(w);
        let at = |z: f64| -> Option<(DVector<f64>, f64)> {
            let pred = u + tau_s.component_mul(s) * z;
            let (w, _) = curve_correct(&eval, &pred, tau_s, s)?;
            let g = test(&w)?;
            Some((w, g))
        };
        regula_falsi(h, (g0, g1), 1e-13, at)
    }
}

/// The plane of two parameters in which curves of codimension-one points are traced: the points
/// are found by continuation in parameter `k1` over `range1` (at the current value of `k2`),
/// then each is followed in `(k1, k2)` while `k2` stays in `range2`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plane {
    /// Index of the first parameter (where the starting points are found).
    pub k1: usize,
    /// Its range.
    pub range1: (f64, f64),
    /// Index of the second parameter.
    pub k2: usize,
    /// Its range (must contain its current value, where the curves start).
    pub range2: (f64, f64),
}

impl Plane {
    /// The plane of parameters `k1` over `range1` and `k2` over `range2`.
    pub fn new(k1: usize, range1: (f64, f64), k2: usize, range2: (f64, f64)) -> Self {
        Self {
            k1,
            range1,
            k2,
            range2,
        }
    }

    /// `(k1, range1, k2, range2)`.
    pub fn parts(&self) -> (usize, (f64, f64), usize, (f64, f64)) {
        (self.k1, self.range1, self.k2, self.range2)
    }

    /// Checks the plane for parameters `p` of `model` (`what`: "fold curves", "Hopf
    /// curves"): two different parameters of the model, each range non-empty and inside its
    /// parameter's bounds, and the second parameter's current value inside its range.
    pub fn check<M: Model<N>, const N: usize>(
        &self,
        model: &M,
        p: &[f64],
        what: &str,
    ) -> Result<(), Error> {
        let (k1, (lo1, hi1), k2, (lo2, hi2)) = self.parts();
        let specs = model.params();
        for k in [k1, k2] {
            if k >= specs.len() || k >= p.len() {
                return Err(Error::Invalid(format!(
                    "parameter index {k} is out of range"
                )));
            }
        }
        let (s1, s2) = (&specs[k1], &specs[k2]);
        if k1 == k2 {
            return Err(Error::Invalid(format!(
                "{what} need two different parameters, got `{}` twice",
                s1.name
            )));
        }
        for (spec, lo, hi) in [(s1, lo1, hi1), (s2, lo2, hi2)] {
            if lo == hi {
                return Err(Error::Invalid(format!(
                    "empty range for {}: both ends are {lo}",
                    spec.name
                )));
            }
            for v in [lo, hi] {
                spec.check(v)?;
            }
        }
        let mu2_0 = p[k2];
        if mu2_0 < lo2.min(hi2) || mu2_0 > lo2.max(hi2) {
            return Err(Error::OutOfRange {
                name: s2.name.to_string(),
                value: mu2_0,
                range: format!(
                    "inside the range [{}, {}] to start the {what}",
                    lo2.min(hi2),
                    lo2.max(hi2)
                ),
            });
        }
        Ok(())
    }
}

/// The folds met by continuation in the first parameter of the `plane` over its range (at the
/// current value of the second), each continued in the plane while the second parameter stays
/// in its range; curves that pass through another starting fold are traced once.
///
/// ```
/// use selfheal::analysis::codim2::{fold_curves, Plane};
/// use selfheal::model::textbook::Cusp;
/// use selfheal::analysis::continuation::ContinuationOptions;
/// // x' = μ + λx − x³: folds at μ = ±2(λ/3)^{3/2} meet in a cusp at the origin.
/// let plane = Plane::new(0, (-1.0, 1.0), 1, (-0.5, 1.0));
/// let fc = fold_curves(&Cusp, &[0.0, 1.0], &plane, &ContinuationOptions::default()).unwrap();
/// let cusp: Vec<_> = fc.cusps().collect();
/// assert_eq!(cusp.len(), 1);
/// assert!(cusp[0].mu1.abs() < 1e-8 && cusp[0].mu2.abs() < 1e-8);
/// ```
pub fn fold_curves<M: Model<N>, const N: usize>(
    model: &M,
    p: &[f64],
    plane: &Plane,
    opts: &ContinuationOptions,
) -> Result<FoldCurves<N>, Error>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    plane.check(model, p, "fold curves")?;
    let (k1, (a, b), k2, (c, d)) = plane.parts();
    let mu2_0 = p[k2];
    let folds = folds_along(model, p, k1, (a, b), opts)?;
    let mut curves: Vec<FoldCurve<N>> = vec![];
    let mut steps = 0;
    for fold in &folds {
        if curves.iter().any(|cv| cv.passes_near(fold, mu2_0)) {
            continue;
        }
        let Some((tracer, u0)) = FoldTracer::start(model, p, fold, (k1, k2)) else {
            continue;
        };
        let bounds = [(a, b), (c, d)];
        let mut back = tracer.trace(&u0, -1.0, bounds, opts, &mut steps);
        back.reverse();
        let fwd = tracer.trace(&u0, 1.0, bounds, opts, &mut steps);
        let mut points = back;
        points.push(tracer.point(&u0, None));
        points.extend(fwd);
        curves.push(FoldCurve { points });
    }
    Ok(FoldCurves {
        p1: model.params()[k1].name.to_string(),
        p2: model.params()[k2].name.to_string(),
        curves,
        steps,
    })
}

/// The folds met in parameter `k1` over `[a, b]` at the other parameters `p`: branches from the
/// equilibria at both ends, so that a branch not connected to one end within the range is
/// still found from the other. Fails only when neither end can be continued (saying why).
fn folds_along<M: Model<N>, const N: usize>(
    model: &M,
    p: &[f64],
    k1: usize,
    (a, b): (f64, f64),
    opts: &ContinuationOptions,
) -> Result<Vec<BranchPoint<N>>, Error>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    let mut folds: Vec<BranchPoint<N>> = vec![];
    let mut failed = vec![];
    let mut short = vec![];
    for (from, to) in [(a, b), (b, a)] {
        let one = match continue_equilibria(model, p, k1, from, to, opts) {
            Ok(one) => one,
            Err(e) => {
                failed.push(e);
                continue;
            }
        };
        if let Some(e) = seed_incomplete(&one, from, to) {
            short.push(e);
        }
        for (_, pt) in one.special_points() {
            let dup = folds
                .iter()
                .any(|f| (f.mu - pt.mu).abs() <= 1e-7 * f.mu.abs().max(1e-300));
            if pt.special == Some(SpecialPoint::Fold) && !dup {
                folds.push(pt.clone());
            }
        }
    }
    if failed.len() == 2 {
        return Err(failed.swap_remove(0));
    }
    // Neither direction followed its branches over the whole range: an empty answer would not
    // mean that there is no curve.
    if failed.len() + short.len() == 2 && folds.is_empty() {
        if let Some(e) = short.pop() {
            return Err(e);
        }
    }
    Ok(folds)
}

/// An error when a seeding continuation from `from` to `to` left a branch before the range's
/// end (the step limit, a lost branch), naming where.
pub(crate) fn seed_incomplete<const N: usize>(
    c: &crate::analysis::continuation::Continuation<N>,
    from: f64,
    to: f64,
) -> Option<Error> {
    let stopped: Vec<String> = c
        .branches
        .iter()
        .filter(|b| !b.end.complete())
        .map(|b| b.end.describe(&c.param))
        .collect();
    (!stopped.is_empty()).then(|| {
        Error::Invalid(format!(
            "the continuation in {} from {} to {} that seeds the curves did not cover the range ({}); narrow the range",
            c.param,
            crate::output::Num(from),
            crate::output::Num(to),
            stopped.join("; ")
        ))
    })
}

impl<const N: usize> FoldCurve<N> {
    /// Whether the curve crosses `μ2 = mu2_0` near `fold`: the fold is already on it.
    fn passes_near(&self, fold: &BranchPoint<N>, mu2_0: f64) -> bool {
        let pts = self.points.iter().map(|p| (p.mu1, p.mu2, p.x));
        crosses_near(pts, (fold.mu, &fold.x), mu2_0)
    }
}

/// Whether a curve of points `(μ1, μ2, x)` crosses `μ2 = mu2_0` (interpolated linearly between
/// neighbours) within 1 % of `(μ1, x)` in `μ1` and in every state.
pub(crate) fn crosses_near<const N: usize>(
    points: impl Iterator<Item = (f64, f64, SVector<f64, N>)>,
    (mu1, x): (f64, &SVector<f64, N>),
    mu2_0: f64,
) -> bool {
    let near = |a: f64, b: f64| (a - b).abs() <= 1e-2 * a.abs().max(b.abs()).max(1e-12);
    let pts: Vec<_> = points.collect();
    pts.windows(2).any(|w| {
        let ((a1, a2, ax), (b1, b2, bx)) = (w[0], w[1]);
        let (d0, d1) = (a2 - mu2_0, b2 - mu2_0);
        if d0 * d1 > 0.0 || d0 == d1 {
            return false;
        }
        let f = d0 / (d0 - d1);
        let m = a1 + f * (b1 - a1);
        let y = ax + (bx - ax) * f;
        near(m, mu1) && (0..N).all(|i| near(y[i], x[i]))
    })
}

impl<'a, M: Model<N>, const N: usize> FoldTracer<'a, M, N>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    /// A tracer through `fold` (found in parameter `k1` at the other parameters `p`) and its
    /// first point on the curve: the null vector of the column-scaled Jacobian `J·diag(|x|)`
    /// in scaled components, corrected onto the Moore–Spence system at the fold's `μ2`.
    fn start(
        model: &'a M,
        p: &[f64],
        fold: &BranchPoint<N>,
        (k1, k2): (usize, usize),
    ) -> Option<(Self, DVector<f64>)> {
        let mut q = p.to_vec();
        q[k1] = fold.mu;
        let sv = fold.x.map(|xi| xi.abs().max(1e-300));
        let j = System::new(model, &q).jacobian(0.0, &fold.x);
        let js = DMatrix::from_fn(N, N, |r, c| j[(r, c)] * sv[c]);
        let svd = js.svd(false, true);
        let vt = svd.v_t?;
        let kmin = (0..N)
            .min_by(|x, y| svd.singular_values[*x].total_cmp(&svd.singular_values[*y]))
            .unwrap_or(0);
        let vs = SVector::<f64, N>::from_fn(|i, _| vt[(kmin, i)]);
        let mu2_0 = p[k2];
        let tracer = FoldTracer {
            model,
            p: q,
            k1,
            k2,
            sv,
            l: vs,
        };
        let mut u0 = DVector::zeros(2 * N + 2);
        for i in 0..N {
            u0[i] = fold.x[i];
            u0[N + i] = vs[i];
        }
        u0[2 * N] = fold.mu;
        u0[2 * N + 1] = mu2_0;
        let u0 = tracer.at_fixed(u0, 1, mu2_0)?;
        Some((tracer, u0))
    }
}
