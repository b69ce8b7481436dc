//! Two-parameter Hopf curves: the Hopf points met by continuing equilibria in one parameter,
//! each continued in a parameter plane `(μ1, μ2)` by pseudo-arclength, with Bautin
//! (generalised Hopf) and Bogdanov–Takens points located along the way.
//!
//! - **Defining system** (Kuznetsov, *Elements of Applied Bifurcation Theory*, §10.2.2), in the
//!   unknowns `(x, v, κ, μ1, μ2)` with `κ = ω²`:
//!
//!   ```text
//!   f(x, μ) = 0,   (A(x, μ)² + κ I) v = 0,   ⟨r1, v⟩ = 1,   ⟨r2, v⟩ = 0
//!   ```
//!
//!   At a Hopf point `A` has eigenvalues `±i√κ`, and `A² + κI` vanishes on their real
//!   two-dimensional invariant subspace; the two linear conditions pick one vector `v` of it.
//!   Unlike the complex form `A q = iω q`, this system stays regular where `ω → 0`: at a
//!   Bogdanov–Takens point `κ` passes through zero and the curve continues as a curve of
//!   neutral saddles (real eigenvalues `±√(−κ)`), which is where a Hopf curve ends. The
//!   Jacobian is exact: the derivative of `A² v` in the state and the parameters is
//!   `D²f[·, A v] + A·D²f[·, v]`, second derivatives by hyper-dual numbers.
//! - **Normalisation**: `r1`, `r2` are refreshed at every accepted point from its own `v`
//!   (scaled by the state scales): `r1` makes the scaled `v` a unit vector, `r2` is the part of
//!   the scaled `A v` orthogonal to it. Each step's corrector keeps the previous point's pair,
//!   so a step is one smooth curve.
//! - **Steps**: the generic pseudo-arclength tangent and corrector of the continuation
//!   ([`crate::analysis::continuation`]) in variables scaled by their size (states by their
//!   magnitude or the model's search box, `v` like the states, `κ` by its magnitude with a
//!   floor, the parameters by their magnitude or a thousandth of their range), rows
//!   equilibrated.
//! - **Bautin points**: the first Lyapunov coefficient `l1` ([`first_lyapunov`]) is computed at
//!   every point; where it changes sign it is located by regula falsi along the step, each trial
//!   corrected onto the curve, and accepted only if `l1` there vanishes against the size of the
//!   terms of its formula (a sign change through a pole, where the Jacobian is singular at a
//!   fold–Hopf point, is not a Bautin point).
//! - **Bogdanov–Takens points**: where `κ` changes sign, located by regula falsi on `κ` along
//!   the step and polished by Newton at `κ = 0`; the Hopf curve stops there.

use super::codim2::{crosses_near, Plane};
use super::continuation::{
    continue_equilibria, curve_correct, curve_tangent, keeps_direction, regula_falsi, BranchPoint,
    ContinuationOptions, SpecialPoint,
};
use super::fold_system::unknown_scales;
use super::hopf::{first_lyapunov, refine_hopf, state_scales, HopfGuess, Lyapunov};
use crate::equilibria::Stability;
use crate::error::Error;
use crate::model::{Model, System};
use nalgebra::{Const, DMatrix, DVector, DimMin, SVector};
use serde::Serialize;

/// A codimension-two point located on a Hopf curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HopfCurvePoint {
    /// Generalised Hopf point: the first Lyapunov coefficient changes sign (the Hopf point
    /// turns from sub- to supercritical); a fold curve of cycles starts here.
    Bautin,
    /// The frequency vanishes: a double zero eigenvalue; the Hopf curve ends on a fold curve.
    BogdanovTakens,
}

impl HopfCurvePoint {
    /// Short lower-case name (`bautin`, `bt`), as in the CSV.
    pub fn name(self) -> &'static str {
        match self {
            HopfCurvePoint::Bautin => "bautin",
            HopfCurvePoint::BogdanovTakens => "bt",
        }
    }
}

/// Why a Hopf curve stops at one of its ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HopfCurveEnd {
    /// A parameter reached the end of its range (the last point lies exactly on it).
    Boundary,
    /// The frequency reached zero: a Bogdanov–Takens point (the last point).
    BogdanovTakens,
    /// The curve came back to where it started: a closed curve (traced once).
    Closed,
    /// The corrector failed even for the smallest step, or the curve left the model's
    /// feasible states or a parameter's valid range: the curve is lost here.
    Lost,
    /// The most steps allowed were taken.
    MaxSteps,
}

impl HopfCurveEnd {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            HopfCurveEnd::Boundary => "boundary",
            HopfCurveEnd::BogdanovTakens => "bogdanov-takens",
            HopfCurveEnd::Closed => "closed",
            HopfCurveEnd::Lost => "lost",
            HopfCurveEnd::MaxSteps => "max-steps",
        }
    }
}

/// One point of a Hopf curve.
#[derive(Debug, Clone, PartialEq)]
pub struct HopfCurveEntry<const N: usize> {
    /// First parameter.
    pub mu1: f64,
    /// Second parameter.
    pub mu2: f64,
    /// The equilibrium.
    pub x: SVector<f64, N>,
    /// Imaginary part of the critical pair (0 at a Bogdanov–Takens point).
    pub omega: f64,
    /// First Lyapunov coefficient (Kuznetsov's normalisation, as in
    /// [`crate::analysis::hopf`]); `None` where it cannot be computed (at a Bogdanov–Takens
    /// point, or where the Jacobian is singular).
    pub l1: Option<f64>,
    /// Set on located codimension-two points.
    pub kind: Option<HopfCurvePoint>,
}

/// A traced Hopf curve: points in order along it.
#[derive(Debug, Clone, PartialEq)]
pub struct HopfCurve<const N: usize> {
    /// The points.
    pub points: Vec<HopfCurveEntry<N>>,
    /// Why the curve stops at its first and at its last point.
    pub ends: [HopfCurveEnd; 2],
    /// Index in `points` of the Hopf point the curve was started from.
    pub start: usize,
}

/// Every Hopf curve through the Hopf points met in the first parameter.
#[derive(Debug, Clone)]
pub struct HopfCurves<const N: usize> {
    /// First parameter's name.
    pub p1: String,
    /// Second parameter's name.
    pub p2: String,
    /// The curves.
    pub curves: Vec<HopfCurve<N>>,
    /// First-parameter values of the Hopf points met in the first parameter from which no
    /// curve could be started (Newton on the curve's system failed there).
    pub unstarted: Vec<f64>,
    /// Steps over all curves.
    pub steps: usize,
}

impl<const N: usize> HopfCurves<N> {
    /// Every located codimension-two point, with its curve index.
    pub fn special_points(&self) -> impl Iterator<Item = (usize, &HopfCurveEntry<N>)> {
        self.curves
            .iter()
            .enumerate()
            .flat_map(|(c, cv)| cv.points.iter().map(move |p| (c, p)))
            .filter(|(_, p)| p.kind.is_some())
    }

    /// The located Bautin points.
    pub fn bautin_points(&self) -> impl Iterator<Item = &HopfCurveEntry<N>> {
        self.special_points()
            .map(|(_, p)| p)
            .filter(|p| p.kind == Some(HopfCurvePoint::Bautin))
    }

    /// The located Bogdanov–Takens points.
    pub fn bogdanov_takens_points(&self) -> impl Iterator<Item = &HopfCurveEntry<N>> {
        self.special_points()
            .map(|(_, p)| p)
            .filter(|p| p.kind == Some(HopfCurvePoint::BogdanovTakens))
    }
}

/// The pair of vectors fixing `v`: `⟨r1, v⟩ = 1`, `⟨r2, v⟩ = 0`.
#[derive(Debug, Clone, Copy)]
struct Norm<const N: usize> {
    r1: SVector<f64, N>,
    r2: SVector<f64, N>,
}

/// Below this fraction of the size of its formula's terms, `l1` counts as zero at a located
/// sign change (a Bautin point); a sign change through a pole leaves it large.
const BAUTIN_L1: f64 = 1e-6;

struct HopfTracer<'a, M, const N: usize> {
    model: &'a M,
    p: Vec<f64>,
    k1: usize,
    k2: usize,
    /// Ranges of μ1 and μ2, each in increasing order.
    bounds: [(f64, f64); 2],
    /// Floor of the scale of κ = ω².
    kappa_floor: f64,
}

impl<M: Model<N>, const N: usize> HopfTracer<'_, M, N>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    // Layout of the unknowns: x (0..N), v (N..2N), κ (2N), μ1 (2N+1), μ2 (2N+2).
    const KAPPA: usize = 2 * N;
    const MU1: usize = 2 * N + 1;
    const LEN: usize = 2 * N + 3;

    fn unpack(&self, u: &DVector<f64>) -> (SVector<f64, N>, SVector<f64, N>, f64, Vec<f64>) {
        let x = SVector::<f64, N>::from_fn(|i, _| u[i]);
        let v = SVector::<f64, N>::from_fn(|i, _| u[N + i]);
        let mut p = self.p.clone();
        p[self.k1] = u[Self::MU1];
        p[self.k2] = u[Self::MU1 + 1];
        (x, v, u[Self::KAPPA], p)
    }

    fn params_valid(&self, p: &[f64]) -> bool {
        let specs = self.model.params();
        specs[self.k1].admits(p[self.k1]) && specs[self.k2].admits(p[self.k2])
    }

    /// Scales of the unknowns at `u`.
    fn scales(&self, u: &DVector<f64>) -> DVector<f64> {
        let (x, _, kappa, p) = self.unpack(u);
        let sx = state_scales(self.model, &p, &x);
        let mut extra: Vec<f64> = sx.iter().copied().collect();
        extra.push(kappa.abs().max(self.kappa_floor));
        let params = [
            (u[Self::MU1], self.bounds[0].1 - self.bounds[0].0),
            (u[Self::MU1 + 1], self.bounds[1].1 - self.bounds[1].0),
        ];
        unknown_scales(self.model, &p, &x, &extra, &params)
    }

    /// `G(u)` and its `(2N+2) × (2N+3)` Jacobian, rows equilibrated (each divided by its
    /// largest entry once the columns are scaled by the unknowns' sizes; the zero set and the
    /// null space are those of `G`).
    fn eval(&self, u: &DVector<f64>, norm: &Norm<N>) -> Option<(DVector<f64>, DMatrix<f64>)> {
        let (x, v, kappa, p) = self.unpack(u);
        if !self.model.feasible(&x, &p)
            || !u.iter().all(|a| a.is_finite())
            || !self.params_valid(&p)
        {
            return None;
        }
        let sys = System::new(self.model, &p);
        let (f, a) = sys.f_and_jacobian(0.0, &x);
        let av = a * v;
        let a2 = a * a;
        let n = 2 * N + 2;
        let mut g = DVector::zeros(n);
        let mut m = DMatrix::zeros(n, Self::LEN);
        let a2v = a * av;
        for r in 0..N {
            g[r] = f[r];
            g[N + r] = a2v[r] + kappa * v[r];
        }
        g[2 * N] = norm.r1.dot(&v) - 1.0;
        g[2 * N + 1] = norm.r2.dot(&v);
        let zero = SVector::<f64, N>::zeros();
        // ∂(A²v) along a direction d of x or μ: (∂A·d)(A v) + A (∂A·d) v.
        let d_a2v = |k: usize, e: &SVector<f64, N>, dp: f64| {
            let d1 = sys.second_derivative(0.0, &x, k, (&av, 0.0), (e, dp));
            let d2 = sys.second_derivative(0.0, &x, k, (&v, 0.0), (e, dp));
            d1 + a * d2
        };
        for c in 0..N {
            let mut e = zero;
            e[c] = 1.0;
            let col = d_a2v(self.k1, &e, 0.0);
            for r in 0..N {
                m[(r, c)] = a[(r, c)];
                m[(N + r, c)] = col[r];
                m[(N + r, N + c)] = a2[(r, c)];
            }
            m[(N + c, N + c)] += kappa;
            m[(N + c, Self::KAPPA)] = v[c];
            m[(2 * N, N + c)] = norm.r1[c];
            m[(2 * N + 1, N + c)] = norm.r2[c];
        }
        for (col, k) in [(Self::MU1, self.k1), (Self::MU1 + 1, self.k2)] {
            let fp = sys.param_derivative(0.0, &x, k);
            let dv = d_a2v(k, &zero, 1.0);
            for r in 0..N {
                m[(r, col)] = fp[r];
                m[(N + r, col)] = dv[r];
            }
        }
        let s = self.scales(u);
        for r in 0..n {
            let w = (0..Self::LEN)
                .map(|c| (m[(r, c)] * s[c]).abs())
                .fold(0.0, f64::max);
            if w > 0.0 && w.is_finite() {
                g[r] /= w;
                for c in 0..Self::LEN {
                    m[(r, c)] /= w;
                }
            }
        }
        if !g.iter().all(|a| a.is_finite()) || !m.iter().all(|a| a.is_finite()) {
            return None;
        }
        Some((g, m))
    }

    /// Scales `v` at `u` to a unit vector in the scaled states and returns the normalisation
    /// that the point then satisfies exactly: `r1` along the scaled `v`, `r2` along the part of
    /// the scaled `A v` orthogonal to it.
    fn renormalize(&self, u: &mut DVector<f64>) -> Option<Norm<N>> {
        let (x, v, _, p) = self.unpack(u);
        let sx = state_scales(self.model, &p, &x);
        let mut vs = v.component_div(&sx);
        let nv = vs.norm();
        if !(nv.is_finite() && nv > 0.0) {
            return None;
        }
        vs /= nv;
        let v = vs.component_mul(&sx);
        let a = System::new(self.model, &p).jacobian(0.0, &x);
        let ws = (a * v).component_div(&sx);
        let mut c2 = ws - vs * ws.dot(&vs);
        let nc = c2.norm();
        if !(nc.is_finite() && nc > 1e-12 * ws.norm()) {
            return None;
        }
        c2 /= nc;
        for i in 0..N {
            u[N + i] = v[i];
        }
        Some(Norm {
            r1: vs.component_div(&sx),
            r2: c2.component_div(&sx),
        })
    }

    /// The first Lyapunov coefficient at a point of the curve (`κ > 0`).
    fn lyapunov(&self, u: &DVector<f64>) -> Option<Lyapunov> {
        let (x, _, kappa, p) = self.unpack(u);
        if kappa <= 0.0 {
            return None;
        }
        first_lyapunov(&System::new(self.model, &p), &x, kappa.sqrt()).ok()
    }

    fn entry(
        &self,
        u: &DVector<f64>,
        ly: Option<Lyapunov>,
        kind: Option<HopfCurvePoint>,
    ) -> HopfCurveEntry<N> {
        HopfCurveEntry {
            mu1: u[Self::MU1],
            mu2: u[Self::MU1 + 1],
            x: SVector::<f64, N>::from_fn(|i, _| u[i]),
            omega: u[Self::KAPPA].max(0.0).sqrt(),
            l1: ly.map(|l| l.l1),
            kind,
        }
    }

    /// Newton with one unknown fixed (`fixed`: its index in `u`) on the square system in the
    /// others.
    fn at_fixed(
        &self,
        mut u: DVector<f64>,
        fixed: usize,
        value: f64,
        norm: &Norm<N>,
    ) -> Option<DVector<f64>> {
        u[fixed] = value;
        let free: Vec<usize> = (0..Self::LEN).filter(|i| *i != fixed).collect();
        for _ in 0..30 {
            let s = self.scales(&u);
            let (g, a) = self.eval(&u, norm)?;
            let m = DMatrix::from_fn(free.len(), free.len(), |r, c| a[(r, free[c])] * s[free[c]]);
            let d = m.lu().solve(&(-g))?;
            if !d.iter().all(|v| v.is_finite()) {
                return None;
            }
            for (k, i) in free.iter().enumerate() {
                u[*i] += d[k] * s[*i];
            }
            if d.amax() <= 1e-12 {
                return self.eval(&u, norm).map(|_| u);
            }
        }
        None
    }

    /// Traces one direction from `u0` (normalisation `norm0`, unit tangent `t0`); returns the
    /// points after `u0` and why the curve stopped.
    fn trace(
        &self,
        u0: &DVector<f64>,
        norm0: &Norm<N>,
        t0: &DVector<f64>,
        opts: &ContinuationOptions,
        steps: &mut usize,
    ) -> (Vec<HopfCurveEntry<N>>, HopfCurveEnd) {
        let mut u = u0.clone();
        let mut norm = *norm0;
        let mut s = self.scales(&u);
        let s0 = s.clone();
        let mut t = t0.clone();
        let mut pts = vec![];
        let mut h = opts.first_step();
        let mut ly = self.lyapunov(&u);
        // Whether the curve has gone far from its start (for closing).
        let mut far = false;
        // Scaled distance of states and parameters from the start (not v, whose normalisation
        // changes).
        let dist = |w: &DVector<f64>| {
            (0..Self::LEN)
                .filter(|i| *i < N || *i >= Self::MU1)
                .map(|i| ((w[i] - u0[i]) / s0[i]).powi(2))
                .sum::<f64>()
                .sqrt()
        };
        for _ in 0..opts.max_steps {
            let tau_s = t.component_div(&s).normalize();
            let pred = &u + tau_s.component_mul(&s) * h;
            let eval = |w: &DVector<f64>| self.eval(w, &norm);
            let next = curve_correct(&eval, &pred, &tau_s, &s).and_then(|(un, it)| {
                let sn = self.scales(&un);
                let (_, a) = self.eval(&un, &norm)?;
                let tn = curve_tangent(&a, &sn, &t)?;
                keeps_direction(&t, &tn, &sn).then_some((un, it, tn))
            });
            let Some((mut un, it, tn)) = next else {
                h *= 0.5;
                if h < opts.ds_min {
                    return (pts, HopfCurveEnd::Lost);
                }
                continue;
            };
            *steps += 1;
            // The point of the step's chord at fraction z, corrected onto the curve.
            let on_curve = |z: f64| -> Option<DVector<f64>> {
                let pred = &u + tau_s.component_mul(&s) * (z * h);
                curve_correct(&eval, &pred, &tau_s, &s).map(|(w, _)| w)
            };
            // Which comes first along the step: a parameter's range end or κ = 0.
            let mut exit: Option<(f64, usize, f64)> = None;
            for (which, (lo, hi)) in self.bounds.iter().enumerate() {
                let i = Self::MU1 + which;
                let (v0, v1) = (u[i], un[i]);
                if v1 < *lo || v1 > *hi {
                    let edge = if v1 < *lo { *lo } else { *hi };
                    let frac = (edge - v0) / (v1 - v0);
                    if exit.is_none_or(|e| frac < e.0) {
                        exit = Some((frac, i, edge));
                    }
                }
            }
            let (kappa0, kappa1) = (u[Self::KAPPA], un[Self::KAPPA]);
            let bt_frac = (kappa1 <= 0.0).then(|| kappa0 / (kappa0 - kappa1));
            if let Some(fb) = bt_frac {
                if exit.is_none_or(|e| fb <= e.0) {
                    let at = |a: f64| on_curve(a / h).map(|w| (w.clone(), w[Self::KAPPA]));
                    let located = regula_falsi(h, (kappa0, kappa1), 1e-13, at)
                        .map(|(w, _)| w)
                        .and_then(|w| self.at_fixed(w, Self::KAPPA, 0.0, &norm));
                    return match located {
                        Some(w) => {
                            pts.push(self.entry(&w, None, Some(HopfCurvePoint::BogdanovTakens)));
                            (pts, HopfCurveEnd::BogdanovTakens)
                        }
                        None => (pts, HopfCurveEnd::Lost),
                    };
                }
            }
            if let Some((frac, i, edge)) = exit {
                if frac <= 0.0 {
                    // Started on the edge: nothing to add on this side.
                    return (pts, HopfCurveEnd::Boundary);
                }
                let guess = &u + (&un - &u) * frac;
                if let Some(w) = self.at_fixed(guess, i, edge, &norm) {
                    let lw = self.lyapunov(&w);
                    pts.push(self.entry(&w, lw, None));
                    return (pts, HopfCurveEnd::Boundary);
                }
                return (pts, HopfCurveEnd::Lost);
            }
            let ly_new = self.lyapunov(&un);
            if let (Some(a), Some(b)) = (ly, ly_new) {
                if a.l1 * b.l1 < 0.0 {
                    let at = |z: f64| {
                        let w = on_curve(z / h)?;
                        let l = self.lyapunov(&w)?;
                        Some(((w, l), l.l1))
                    };
                    if let Some(((w, l), _)) = regula_falsi(h, (a.l1, b.l1), 1e-13, at) {
                        if l.l1.abs() <= BAUTIN_L1 * l.scale {
                            pts.push(self.entry(&w, Some(l), Some(HopfCurvePoint::Bautin)));
                        }
                    }
                }
            }
            // Back at the start: a closed curve.
            if far {
                let d = (&un - &u).component_div(&s0);
                let e = (u0 - &u).component_div(&s0);
                let z = (e.dot(&d) / d.norm_squared().max(1e-300)).clamp(0.0, 1.0);
                if dist(&(&u + (&un - &u) * z)) < 0.05 {
                    return (pts, HopfCurveEnd::Closed);
                }
            }
            far |= dist(&un) > 0.5;
            // Fresh normalisation for the next step; the tangent recomputed under it.
            let Some(nn) = self.renormalize(&mut un) else {
                pts.push(self.entry(&un, ly_new, None));
                return (pts, HopfCurveEnd::Lost);
            };
            let sn = self.scales(&un);
            let Some(tn) = self
                .eval(&un, &nn)
                .and_then(|(_, a)| curve_tangent(&a, &sn, &tn))
            else {
                pts.push(self.entry(&un, ly_new, None));
                return (pts, HopfCurveEnd::Lost);
            };
            pts.push(self.entry(&un, ly_new, None));
            norm = nn;
            u = un;
            s = sn;
            t = tn;
            ly = ly_new;
            h = opts.next_step(h, it);
        }
        (pts, HopfCurveEnd::MaxSteps)
    }
}

/// The Hopf points met by continuing equilibria in the first parameter of the `plane` across
/// its range (at the current value of the second), each continued as a curve in the plane in
/// both directions while both parameters stay in their ranges, until the frequency vanishes (a
/// Bogdanov–Takens point) or the curve is lost; Bautin points are located on the way. A curve
/// that passes through another starting Hopf point is traced once. One curve that stops early
/// never fails the call: its end says why ([`HopfCurveEnd`]).
///
/// ```
/// use selfheal::analysis::codim2::Plane;
/// use selfheal::analysis::continuation::ContinuationOptions;
/// use selfheal::analysis::hopf_curve::{hopf_curves, HopfCurveEnd};
/// use selfheal::model::textbook::Bautin;
/// // r' = β1 r + β2 r³ − r⁵, θ' = 1: Hopf points on β1 = 0 with l1 = 2β2, so a Bautin
/// // point at the origin.
/// let plane = Plane::new(0, (-1.0, 1.0), 1, (-1.0, 1.0));
/// let hc = hopf_curves(&Bautin, &[-0.5, -0.5], &plane, &ContinuationOptions::default()).unwrap();
/// let b: Vec<_> = hc.bautin_points().collect();
/// assert_eq!(b.len(), 1);
/// assert!(b[0].mu1.abs() < 1e-10 && b[0].mu2.abs() < 1e-10);
/// assert_eq!(hc.curves[0].ends, [HopfCurveEnd::Boundary; 2]);
/// ```
pub fn hopf_curves<M: Model<N>, const N: usize>(
    model: &M,
    p: &[f64],
    plane: &Plane,
    opts: &ContinuationOptions,
) -> Result<HopfCurves<N>, Error>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    plane.check(model, p, "Hopf curves")?;
    let (k1, (lo1, hi1), k2, (lo2, hi2)) = plane.parts();
    let mu2_0 = p[k2];
    // Hopf points met over [lo1, hi1]: branches from the equilibria at both ends, so that a
    // branch not connected to one end within the range is still found from the other.
    let mut starts: Vec<BranchPoint<N>> = vec![];
    let mut first_error = None;
    let mut any = false;
    for (from, to) in [(lo1, hi1), (hi1, lo1)] {
        let one = match continue_equilibria(model, p, k1, from, to, opts) {
            Ok(one) => one,
            Err(e) => {
                first_error.get_or_insert(e);
                continue;
            }
        };
        // A direction that left a branch early still contributes its Hopf points, but does
        // not count as having covered the range.
        match super::codim2::seed_incomplete(&one, from, to) {
            Some(e) => {
                first_error.get_or_insert(e);
            }
            None => any = true,
        }
        for (_, pt) in one.special_points() {
            let dup = starts
                .iter()
                .any(|f| (f.mu - pt.mu).abs() <= 1e-7 * f.mu.abs().max(1e-300));
            if pt.special == Some(SpecialPoint::Hopf) && !dup {
                starts.push(pt.clone());
            }
        }
    }
    if !any && starts.is_empty() {
        if let Some(e) = first_error {
            return Err(e);
        }
    }
    let bounds = [(lo1.min(hi1), lo1.max(hi1)), (lo2.min(hi2), lo2.max(hi2))];
    let mut curves: Vec<HopfCurve<N>> = vec![];
    let mut unstarted = vec![];
    let mut steps = 0;
    for hp in &starts {
        if on_traced_curve(&curves, hp, mu2_0) {
            continue;
        }
        let Some((tracer, u0, norm)) = start(model, p, (k1, k2), bounds, hp) else {
            unstarted.push(hp.mu);
            continue;
        };
        let s = tracer.scales(&u0);
        let mut guess = DVector::zeros(u0.len());
        guess[HopfTracer::<M, N>::MU1 + 1] = s[HopfTracer::<M, N>::MU1 + 1];
        let Some(t) = tracer
            .eval(&u0, &norm)
            .and_then(|(_, a)| curve_tangent(&a, &s, &guess))
        else {
            unstarted.push(hp.mu);
            continue;
        };
        let first = tracer.entry(&u0, tracer.lyapunov(&u0), None);
        let (fwd, end_fwd) = tracer.trace(&u0, &norm, &t, opts, &mut steps);
        let (mut back, end_back) = if end_fwd == HopfCurveEnd::Closed {
            (vec![], HopfCurveEnd::Closed)
        } else {
            tracer.trace(&u0, &norm, &(-&t), opts, &mut steps)
        };
        back.reverse();
        let start = back.len();
        let mut points = back;
        points.push(first);
        points.extend(fwd);
        curves.push(HopfCurve {
            points,
            ends: [end_back, end_fwd],
            start,
        });
    }
    Ok(HopfCurves {
        p1: model.params()[k1].name.to_string(),
        p2: model.params()[k2].name.to_string(),
        curves,
        unstarted,
        steps,
    })
}

/// Whether a traced curve crosses `μ2 = mu2_0` near the Hopf point `hp` (then it passes
/// through it, and `hp` needs no curve of its own).
fn on_traced_curve<const N: usize>(
    curves: &[HopfCurve<N>],
    hp: &BranchPoint<N>,
    mu2_0: f64,
) -> bool {
    curves.iter().any(|cv| {
        let pts = cv.points.iter().map(|p| (p.mu1, p.mu2, p.x));
        crosses_near(pts, (hp.mu, &hp.x), mu2_0)
    })
}

/// The tracer and the first point of the curve through a Hopf point of a one-parameter
/// continuation: the point refined on the extended Hopf system, `v` the real or the imaginary
/// part of its eigenvector (the larger in the scaled states), then Newton on the curve's system
/// at the given `μ2`.
fn start<'a, M: Model<N>, const N: usize>(
    model: &'a M,
    p: &[f64],
    (k1, k2): (usize, usize),
    bounds: [(f64, f64); 2],
    hp: &BranchPoint<N>,
) -> Option<(HopfTracer<'a, M, N>, DVector<f64>, Norm<N>)>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    let mut q = p.to_vec();
    q[k1] = hp.mu;
    let omega = match hp.hopf {
        Some(d) => d.omega,
        None => {
            Stability::of(&System::new(model, &q).jacobian(0.0, &hp.x))
                .eigenvalues
                .iter()
                .filter(|l| l.im > 0.0)
                .min_by(|a, b| a.re.abs().total_cmp(&b.re.abs()))?
                .im
        }
    };
    let mu_scale = hp.mu.abs().max(1e-3 * (bounds[0].1 - bounds[0].0));
    let guess = HopfGuess {
        x: hp.x,
        mu: hp.mu,
        omega,
        mu_scale,
    };
    let h = refine_hopf(model, &q, k1, guess).ok()?;
    q[k1] = h.mu;
    let sx = state_scales(model, &q, &h.x);
    let re = h.q.map(|c| c.re);
    let im = h.q.map(|c| c.im);
    let v = if re.component_div(&sx).norm() >= im.component_div(&sx).norm() {
        re
    } else {
        im
    };
    let tracer = HopfTracer {
        model,
        p: q,
        k1,
        k2,
        bounds,
        kappa_floor: 1e-3 * h.omega * h.omega,
    };
    let mut u0 = DVector::zeros(HopfTracer::<M, N>::LEN);
    for i in 0..N {
        u0[i] = h.x[i];
        u0[N + i] = v[i];
    }
    u0[HopfTracer::<M, N>::KAPPA] = h.omega * h.omega;
    u0[HopfTracer::<M, N>::MU1] = h.mu;
    u0[HopfTracer::<M, N>::MU1 + 1] = p[k2];
    let norm = tracer.renormalize(&mut u0)?;
    let mu2 = p[k2];
    let mut u0 = tracer.at_fixed(u0, HopfTracer::<M, N>::MU1 + 1, mu2, &norm)?;
    let norm = tracer.renormalize(&mut u0)?;
    Some((tracer, u0, norm))
}
