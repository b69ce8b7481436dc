//! Continuation of equilibrium branches in one parameter: pseudo-arclength steps in scaled
//! variables, stability along the branch, and folds (saddle-nodes) and Hopf points detected and
//! located precisely.
//!
//! - **Scaling.** Each step works in `w = u/σ` with `σ` the current size of every unknown (for
//!   states the model samples logarithmically, their own magnitude; for others a floor from the
//!   search box; for the parameter its magnitude or the range), so supernodes at 1e-8 move as
//!   visibly as peers at 0.3 and a step cannot jump between branches unnoticed.
//! - **Steps.** Tangent predictor, Newton corrector on the bordered system, adaptive step
//!   length from the corrector's effort and the turn of the tangent.
//! - **Folds** are detected where the parameter component of the tangent changes sign and
//!   located by Newton on the Moore–Spence system `f = 0, J·v = 0, ⟨l, v⟩ = 1` with exact second
//!   derivatives (hyper-dual numbers), to 1e-9 relative or better.
//! - **Hopf points** are detected where a complex pair of eigenvalues crosses the imaginary
//!   axis. Each pair is followed from step to step by continuity (an eigenvalue in the upper
//!   half-plane is matched to the nearest one at the next point, both ways), so a test never jumps
//!   from one pair to another. A crossing is located by Newton on the extended Hopf system
//!   `f = 0, A q = iω q, ⟨c, q⟩ = 1` in `(x, μ, q, ω)` with exact derivatives
//!   ([`crate::analysis::hopf::refine_hopf`]), started from the corrected branch point at the
//!   secant estimate of the crossing, and accepted only if it lands inside the step on the same
//!   pair; otherwise by regula falsi on the pair's real part along the corrected branch, polished
//!   by the same Newton when it converges from there (the regula falsi point stands when it does
//!   not). Either way the point carries its frequency `ω` and first Lyapunov coefficient `l1` (Kuznetsov's
//!   formula, [`crate::analysis::hopf::first_lyapunov`]), hence whether it is sub- or
//!   supercritical, and which method located it.

use crate::analysis::fold_system::{moore_spence, unknown_scales};
use crate::analysis::hopf::{first_lyapunov, refine_hopf, HopfData, HopfGuess, Located};
use crate::equilibria::{all_equilibria, same_point, Equilibrium, Stability};
use crate::error::Error;
use crate::model::{Model, System};
use nalgebra::{Complex, Const, DMatrix, DVector, DimMin, SVector};
use serde::Serialize;

/// A special point on a branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SpecialPoint {
    /// Saddle-node: the branch turns back in the parameter.
    Fold,
    /// A complex pair of eigenvalues crosses the imaginary axis.
    Hopf,
}

impl SpecialPoint {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            SpecialPoint::Fold => "fold",
            SpecialPoint::Hopf => "hopf",
        }
    }
}

/// One point of a branch.
#[derive(Debug, Clone, PartialEq)]
pub struct BranchPoint<const N: usize> {
    /// Parameter value.
    pub mu: f64,
    /// Equilibrium state.
    pub x: SVector<f64, N>,
    /// Every eigenvalue has negative real part.
    pub stable: bool,
    /// Largest real part of the eigenvalues.
    pub max_real: f64,
    /// Set on located special points.
    pub special: Option<SpecialPoint>,
    /// Frequency, first Lyapunov coefficient and criticality at a located Hopf point (`None`
    /// elsewhere, and where the coefficient cannot be computed).
    pub hopf: Option<HopfData>,
}

/// A branch of equilibria, in the order it was traced.
#[derive(Debug, Clone, PartialEq)]
pub struct Branch<const N: usize> {
    /// Points: every accepted step, plus the located special points in their place.
    pub points: Vec<BranchPoint<N>>,
    /// Indices (into the start equilibria) of the equilibria this branch passes through at the
    /// start value: the first is where it started.
    pub starts: Vec<usize>,
    /// Why the branch ends where it does.
    pub end: BranchEnd,
}

/// Why a branch of a continuation ends: one branch that stops early never fails the whole
/// continuation; its points so far are kept and its end says why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum BranchEnd {
    /// It reached an end of the parameter range (or came back to the start value).
    Range,
    /// It took the most steps allowed ([`ContinuationOptions::max_steps`]) first.
    MaxSteps(usize),
    /// The corrector failed even for the smallest step at this parameter value.
    Lost {
        /// The parameter value of the last point on the branch.
        mu: f64,
    },
    /// The tangent could not be formed at the starting equilibrium (a singular Jacobian).
    NotStarted,
}

impl BranchEnd {
    /// In words.
    pub fn describe(&self, param: &str) -> String {
        match self {
            BranchEnd::Range => "reached the end of the range".into(),
            BranchEnd::MaxSteps(n) => format!("stopped after the most steps allowed ({n})"),
            BranchEnd::Lost { mu } => {
                format!(
                    "lost at {param} = {}: the corrector fails even for the smallest step",
                    crate::output::Num(*mu)
                )
            }
            BranchEnd::NotStarted => {
                "not started: the Jacobian is singular at the starting equilibrium".into()
            }
        }
    }

    /// Whether the branch was followed to the end of the range.
    pub fn complete(&self) -> bool {
        *self == BranchEnd::Range
    }
}

/// Options of a continuation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ContinuationOptions {
    /// First step length (scaled arclength), taken within `[ds_min, ds_max]`.
    pub ds: f64,
    /// Smallest step length before the branch counts as lost.
    pub ds_min: f64,
    /// Largest step length.
    pub ds_max: f64,
    /// Most steps per branch.
    pub max_steps: usize,
}

impl Default for ContinuationOptions {
    fn default() -> Self {
        Self {
            ds: 0.02,
            ds_min: 1e-9,
            ds_max: 0.2,
            max_steps: 5000,
        }
    }
}

impl ContinuationOptions {
    /// The first step: `ds` within `[ds_min, ds_max]`.
    pub(crate) fn first_step(&self) -> f64 {
        self.ds.clamp(self.ds_min, self.ds_max)
    }

    /// Checks the options: step lengths finite and positive with `ds_min ≤ ds_max`, and at
    /// least one step per branch.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |name: &str, value: f64, range: String| {
            Err(Error::OutOfRange {
                name: name.into(),
                value,
                range,
            })
        };
        if !(self.ds_min.is_finite() && self.ds_min > 0.0) {
            return bad("ds_min", self.ds_min, "finite and > 0".into());
        }
        if !(self.ds_max.is_finite() && self.ds_max >= self.ds_min) {
            return bad(
                "ds_max",
                self.ds_max,
                format!("finite and >= ds_min = {}", self.ds_min),
            );
        }
        if !(self.ds.is_finite() && self.ds > 0.0) {
            return bad("ds", self.ds, "finite and > 0".into());
        }
        if self.max_steps == 0 {
            return bad("max_steps", 0.0, "at least 1".into());
        }
        Ok(())
    }

    /// The next step length after a corrector that took `iterations`: grow when it converged
    /// easily, shrink when it struggled.
    pub(crate) fn next_step(&self, h: f64, iterations: usize) -> f64 {
        if iterations <= 3 {
            (h * 1.5).min(self.ds_max)
        } else if iterations >= 6 {
            h * 0.6
        } else {
            h
        }
    }
}

/// Whether two tangents (unscaled) are close enough in the scaled variables `s` for a step to
/// count as staying on its branch; a jump to another branch shows up as a sharp turn.
pub(crate) fn keeps_direction(t0: &DVector<f64>, t1: &DVector<f64>, s: &DVector<f64>) -> bool {
    t1.component_div(s)
        .normalize()
        .dot(&t0.component_div(s).normalize())
        > 0.9
}

/// Every branch through the equilibria at the start value, with the special points found.
#[derive(Debug, Clone)]
pub struct Continuation<const N: usize> {
    /// Name of the parameter.
    pub param: String,
    /// Index of the parameter.
    pub index: usize,
    /// The other parameters (the continued one at its start value).
    pub params: Vec<f64>,
    /// The branches.
    pub branches: Vec<Branch<N>>,
    /// The equilibria at the start value.
    pub start_equilibria: Vec<Equilibrium<N>>,
    /// Steps taken over all branches.
    pub steps: usize,
}

impl<const N: usize> Continuation<N> {
    /// Every located special point, with its branch index.
    pub fn special_points(&self) -> impl Iterator<Item = (usize, &BranchPoint<N>)> {
        self.branches
            .iter()
            .enumerate()
            .flat_map(|(b, br)| br.points.iter().map(move |p| (b, p)))
            .filter(|(_, p)| p.special.is_some())
    }

    /// The parameter values of the folds, in increasing order.
    pub fn folds(&self) -> Vec<f64> {
        let mut v: Vec<f64> = self
            .special_points()
            .filter(|(_, p)| p.special == Some(SpecialPoint::Fold))
            .map(|(_, p)| p.mu)
            .collect();
        v.sort_by(f64::total_cmp);
        v
    }

    /// The parameters at a point of a branch: the continued one at `mu`, the others fixed.
    pub fn params_at(&self, mu: f64) -> Vec<f64> {
        let mut p = self.params.clone();
        p[self.index] = mu;
        p
    }
}

/// `x` if feasible; else its projection onto the feasible region if that moves no component
/// by more than the corrector's convergence tolerance (1e-11 of its scale `s`); else `None`.
pub(crate) fn feasible_within<M: Model<N>, const N: usize>(
    model: &M,
    p: &[f64],
    x: SVector<f64, N>,
    s: &DVector<f64>,
) -> Option<SVector<f64, N>> {
    if model.feasible(&x, p) {
        return Some(x);
    }
    let y = model.project(&x, p)?;
    let close = (0..N).all(|i| (y[i] - x[i]).abs() <= 1e-11 * s[i]);
    (close && model.feasible(&y, p)).then_some(y)
}

/// The range that sets the parameter's step scale: the range itself, but at most 1000 times
/// the smaller nonzero end's magnitude, so that a range over many decades (1000 to 1e308) is
/// walked in steps proportional to the parameter (geometrically) rather than in steps of a
/// thousandth of the range, which would jump over every decade below the last.
fn step_range(lo: f64, hi: f64) -> f64 {
    let range = (hi - lo).abs();
    let ends = [lo.abs(), hi.abs()];
    let small = ends
        .iter()
        .copied()
        .filter(|v| *v > 0.0)
        .fold(f64::INFINITY, f64::min);
    if lo * hi > 0.0 && small.is_finite() {
        range.min(1e3 * small)
    } else {
        range
    }
}

/// Scales of the unknowns `(x, μ)` at a point.
fn scales<M: Model<N>, const N: usize>(
    model: &M,
    p: &[f64],
    x: &SVector<f64, N>,
    mu: f64,
    mu_range: f64,
) -> DVector<f64> {
    unknown_scales(model, p, x, &[], &[(mu, mu_range)])
}

/// Unit tangent (unscaled) of a curve `G(u) = 0` whose Jacobian `a` is `m × (m+1)`, from the
/// bordered system in scaled variables `u/s`, oriented along `prev`.
pub(crate) fn curve_tangent(
    a: &DMatrix<f64>,
    s: &DVector<f64>,
    prev: &DVector<f64>,
) -> Option<DVector<f64>> {
    let n = s.len();
    let mut m = DMatrix::zeros(n, n);
    for r in 0..n - 1 {
        for c in 0..n {
            m[(r, c)] = a[(r, c)] * s[c];
        }
    }
    let prev_s = prev.component_div(s).normalize();
    for c in 0..n {
        m[(n - 1, c)] = prev_s[c];
    }
    let mut rhs = DVector::zeros(n);
    rhs[n - 1] = 1.0;
    let tau = m.lu().solve(&rhs)?;
    // Divided by its largest component before normalising, so that a parameter near 1e300
    // does not overflow the sum of squares.
    let t = tau.component_mul(s);
    let t = (&t / t.amax()).normalize();
    if !t.iter().all(|v| v.is_finite()) {
        return None;
    }
    Some(if t.component_div(s).dot(&prev_s) < 0.0 {
        -t
    } else {
        t
    })
}

/// A curve's defining map: `u ↦ (G(u), ∂G/∂u)`, `None` outside the domain.
pub(crate) type CurveEval<'a> = dyn Fn(&DVector<f64>) -> Option<(DVector<f64>, DMatrix<f64>)> + 'a;

/// Pseudo-arclength Newton corrector for `G(u) = 0`: `eval` gives `(G, ∂G/∂u)`; the extra
/// equation keeps the scaled correction orthogonal to the scaled tangent `tau_s`. Converges when
/// the scaled update is below 1e-11; returns the point and the iterations used. Far from
/// convergence (scaled update above 1e-6) a step that raises `|G|` or leaves the domain is
/// halved, up to six times: a full Newton step can cycle where a rate switches on over a scale
/// smaller than the step (supernode promotion near an empty network).
pub(crate) fn curve_correct(
    eval: &CurveEval<'_>,
    pred: &DVector<f64>,
    tau_s: &DVector<f64>,
    s: &DVector<f64>,
) -> Option<(DVector<f64>, usize)> {
    let n = s.len();
    let mut u = pred.clone();
    let (mut g, mut a) = eval(&u)?;
    for it in 1..=10 {
        let mut m = DMatrix::zeros(n, n);
        let mut rhs = DVector::zeros(n);
        for r in 0..n - 1 {
            for c in 0..n {
                m[(r, c)] = a[(r, c)] * s[c];
            }
            rhs[r] = -g[r];
        }
        for c in 0..n {
            m[(n - 1, c)] = tau_s[c];
        }
        rhs[n - 1] = -tau_s.dot(&(&u - pred).component_div(s));
        let dw = m.lu().solve(&rhs)?;
        if !dw.iter().all(|v| v.is_finite()) {
            return None;
        }
        if dw.amax() <= 1e-11 {
            return Some((u + dw.component_mul(s), it));
        }
        let step = dw.component_mul(s);
        let mut lambda = 1.0;
        loop {
            let cand = &u + &step * lambda;
            let last = lambda < 1.0 / 32.0;
            match eval(&cand) {
                Some((gn, an)) if last || dw.amax() <= 1e-6 || gn.norm() <= g.norm() => {
                    (u, g, a) = (cand, gn, an);
                    break;
                }
                _ if !last => lambda *= 0.5,
                _ => return None,
            }
        }
    }
    None
}

/// A sign change of a test function along a curve, by the crate's root finder
/// ([`crate::roots::illinois`]): `at(a)` returns the curve point at arclength `a ∈ [0, h]`
/// (corrected onto the curve) and the test value there; `g0`, `g1` are the values at the ends.
/// Stops when the bracket is below `rel·h` or the test value vanishes; returns the last point
/// and its test value.
pub(crate) fn regula_falsi<P>(
    h: f64,
    (g0, g1): (f64, f64),
    rel: f64,
    at: impl Fn(f64) -> Option<(P, f64)>,
) -> Option<(P, f64)> {
    let tol = crate::roots::Tolerance {
        abs: rel * h.abs(),
        rel: 0.0,
    };
    crate::roots::illinois((0.0, h), (g0, g1), tol, at).map(|r| (r.value, r.g))
}

/// The eigenvalues in the upper half-plane (one of each complex pair).
fn upper_pairs(eigenvalues: &[Complex<f64>]) -> Vec<Complex<f64>> {
    eigenvalues
        .iter()
        .copied()
        .filter(|l| l.im > 1e-12 * l.norm())
        .collect()
}

/// The element of `set` nearest `lambda`.
fn nearest(set: &[Complex<f64>], lambda: Complex<f64>) -> Option<Complex<f64>> {
    set.iter()
        .copied()
        .min_by(|a, b| (a - lambda).norm().total_cmp(&(b - lambda).norm()))
}

/// Complex pairs followed from one point to the next: each eigenvalue of `old` with the one of
/// `new` nearest it, kept only when that one's nearest in `old` is it again (a pair that turns
/// real, or a new pair, is matched with nothing).
fn match_pairs(old: &[Complex<f64>], new: &[Complex<f64>]) -> Vec<(Complex<f64>, Complex<f64>)> {
    old.iter()
        .filter_map(|&a| {
            let b = nearest(new, a)?;
            (nearest(old, b)? == a).then_some((a, b))
        })
        .collect()
}

/// A point on the branch (state, parameter, the pair's imaginary part) and the pair's real part
/// there: what regula falsi probes when it locates a Hopf point.
type Probe<const N: usize> = Option<((SVector<f64, N>, f64, f64), f64)>;

/// One accepted step in which a pair crosses: its start `u` (scaled tangent `tau_s`, scales
/// `s`, length `h`), its end, and the pair's eigenvalue at both ends.
struct Step<'a, const N: usize> {
    u: &'a DVector<f64>,
    tau_s: &'a DVector<f64>,
    s: &'a DVector<f64>,
    h: f64,
    end: (&'a SVector<f64, N>, f64),
    pair: (Complex<f64>, Complex<f64>),
}

struct Tracer<'a, M, const N: usize> {
    model: &'a M,
    p: Vec<f64>,
    k: usize,
    lo: f64,
    hi: f64,
}

impl<M: Model<N>, const N: usize> Tracer<'_, M, N>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    fn with_mu(&self, mu: f64) -> Vec<f64> {
        let mut p = self.p.clone();
        p[self.k] = mu;
        p
    }

    /// `[J, f_μ]` at `(x, μ)`, as a dynamic `N × (N+1)` matrix, and `f`.
    fn jac(&self, x: &SVector<f64, N>, mu: f64) -> (DMatrix<f64>, SVector<f64, N>) {
        let p = self.with_mu(mu);
        let sys = System::new(self.model, &p);
        let (f, j) = sys.f_and_jacobian(0.0, x);
        let fp = sys.param_derivative(0.0, x, self.k);
        let mut a = DMatrix::zeros(N, N + 1);
        for r in 0..N {
            for c in 0..N {
                a[(r, c)] = j[(r, c)];
            }
            a[(r, N)] = fp[r];
        }
        (a, f)
    }

    fn stability(&self, x: &SVector<f64, N>, mu: f64) -> Stability {
        let p = self.with_mu(mu);
        Stability::of(&System::new(self.model, &p).jacobian(0.0, x))
    }

    fn point(&self, x: SVector<f64, N>, mu: f64, special: Option<SpecialPoint>) -> BranchPoint<N> {
        self.point_and_pairs(x, mu, special).0
    }

    /// The branch point, the eigenvalues of its complex pairs in the upper half-plane and its
    /// number of unstable directions.
    fn point_and_pairs(
        &self,
        x: SVector<f64, N>,
        mu: f64,
        special: Option<SpecialPoint>,
    ) -> (BranchPoint<N>, Vec<Complex<f64>>, usize) {
        let st = self.stability(&x, mu);
        let pt = BranchPoint {
            mu,
            x,
            stable: st.is_stable(),
            max_real: st.max_real,
            special,
            hopf: None,
        };
        (pt, upper_pairs(&st.eigenvalues), st.unstable_dims)
    }

    /// Unit tangent (unscaled, in `(x, μ)`) at a point, oriented along `prev` (scaled by `s`).
    fn tangent(
        &self,
        x: &SVector<f64, N>,
        mu: f64,
        s: &DVector<f64>,
        prev: &DVector<f64>,
    ) -> Option<DVector<f64>> {
        curve_tangent(&self.jac(x, mu).0, s, prev)
    }

    /// Newton corrector on `f = 0`, `⟨τ, (u − u_pred)/σ⟩ = 0`; returns the point and iterations.
    fn correct(
        &self,
        pred: &DVector<f64>,
        tau_s: &DVector<f64>,
        s: &DVector<f64>,
    ) -> Option<(SVector<f64, N>, f64, usize)> {
        // Iterates may leave the feasible region (a branch that starts on its boundary, such
        // as the empty network at sign_on = 0, has iterates a rounding below zero); only the
        // converged point must be feasible, or within the corrector's tolerance of it.
        let eval = |u: &DVector<f64>| {
            let x = SVector::<f64, N>::from_fn(|i, _| u[i]);
            let (a, f) = self.jac(&x, u[N]);
            let finite = f.iter().chain(a.iter()).all(|v| v.is_finite());
            finite.then(|| (DVector::from_column_slice(f.as_slice()), a))
        };
        let (u, it) = curve_correct(&eval, pred, tau_s, s)?;
        let x = SVector::<f64, N>::from_fn(|i, _| u[i]);
        let x = feasible_within(self.model, &self.with_mu(u[N]), x, s)?;
        Some((x, u[N], it))
    }

    /// Newton at fixed μ (to land exactly on a range end).
    fn at_mu(&self, x0: SVector<f64, N>, mu: f64) -> Option<SVector<f64, N>> {
        let p = self.with_mu(mu);
        crate::equilibria::newton(&System::new(self.model, &p), x0, 30)
            .ok()
            .map(|r| r.x)
    }

    /// Locates the fold inside one step: Moore–Spence Newton from the end nearer to it, accepted
    /// only if it lands inside the step (close fold pairs near a cusp would otherwise both converge
    /// to the same fold); otherwise regula falsi on the tangent's parameter component along the
    /// step, each point corrected onto the branch.
    fn fold_in_step(
        &self,
        u: &DVector<f64>,
        tau_s: &DVector<f64>,
        s: &DVector<f64>,
        h: f64,
        (x0, mu0, t0): (&SVector<f64, N>, f64, &DVector<f64>),
        (x1, mu1, t1): (&SVector<f64, N>, f64, &DVector<f64>),
    ) -> Option<(SVector<f64, N>, f64)> {
        let (xg, mg, tg) = if t1[N].abs() < t0[N].abs() {
            (x1, mu1, t1)
        } else {
            (x0, mu0, t0)
        };
        let v0 = SVector::<f64, N>::from_fn(|i, _| tg[i]);
        let inside = |xf: &SVector<f64, N>| {
            // Scaled position of the fold along the step's chord.
            let d = (x1 - x0).component_div(&SVector::<f64, N>::from_fn(|i, _| s[i]));
            let e = (xf - x0).component_div(&SVector::<f64, N>::from_fn(|i, _| s[i]));
            let dd = d.norm_squared();
            dd == 0.0 || (-0.05..=1.05).contains(&(e.dot(&d) / dd))
        };
        if let Some((xf, mf)) = self.locate_fold(*xg, mg, v0, s) {
            if inside(&xf) {
                return Some((xf, mf));
            }
        }
        // Fallback: regula falsi on the parameter component of the tangent.
        let at = |a: f64| -> Option<((SVector<f64, N>, f64), f64)> {
            let pred = u + tau_s.component_mul(s) * a;
            let (x, mu, _) = self.correct(&pred, tau_s, s)?;
            let t = self.tangent(&x, mu, s, &tau_s.component_mul(s))?;
            Some(((x, mu), t[N]))
        };
        regula_falsi(h, (t0[N], t1[N]), 1e-15, at).map(|(p, _)| p)
    }

    /// Moore–Spence Newton for a fold near `(x, μ)` with null-vector guess `v`.
    fn locate_fold(
        &self,
        x0: SVector<f64, N>,
        mu0: f64,
        v0: SVector<f64, N>,
        s: &DVector<f64>,
    ) -> Option<(SVector<f64, N>, f64)> {
        let sx = SVector::<f64, N>::from_fn(|i, _| s[i]);
        // Work with v in scaled coordinates so that ⟨l, v⟩ = 1 is well balanced.
        let mut x = x0;
        let mut mu = mu0;
        let mut v = v0.component_div(&sx);
        let l = v / v.norm_squared();
        for _ in 0..30 {
            let p = self.with_mu(mu);
            let (g, mut m) = moore_spence(self.model, &p, &x, &v, &sx, &l, &[self.k]);
            // Newton in scaled unknowns: x and μ columns times their scales.
            for c in 0..N {
                m.column_mut(c).scale_mut(sx[c]);
            }
            m.column_mut(2 * N).scale_mut(s[N]);
            let rhs = -g;
            let d = m.lu().solve(&rhs)?;
            for i in 0..N {
                x[i] += d[i] * sx[i];
                v[i] += d[N + i];
            }
            mu += d[2 * N] * s[N];
            if !mu.is_finite() || !self.model.feasible(&x, &self.with_mu(mu)) {
                return None;
            }
            let dx = (0..N).map(|i| d[i].abs()).fold(0.0, f64::max);
            if dx <= 1e-13 && d[2 * N].abs() <= 1e-13 {
                return Some((x, mu));
            }
        }
        None
    }

    /// The eigenvalue of a complex pair (upper half-plane) at `(x, μ)` nearest `lambda`: the
    /// pair followed by continuity.
    fn pair_near(
        &self,
        x: &SVector<f64, N>,
        mu: f64,
        lambda: Complex<f64>,
    ) -> Option<Complex<f64>> {
        nearest(&upper_pairs(&self.stability(x, mu).eigenvalues), lambda)
    }

    /// Traces one branch from an equilibrium at `lo`-side start, towards the inside of the
    /// range first.
    fn trace(
        &self,
        x0: SVector<f64, N>,
        mu0: f64,
        toward: f64,
        opts: &ContinuationOptions,
        steps: &mut usize,
    ) -> (Vec<BranchPoint<N>>, BranchEnd) {
        let range = step_range(self.lo, self.hi);
        let mut x = x0;
        let mut mu = mu0;
        let mut s = scales(self.model, &self.p, &x, mu, range);
        let mut guess = DVector::zeros(N + 1);
        guess[N] = toward.signum() * s[N];
        let Some(mut t) = self.tangent(&x, mu, &s, &guess) else {
            return (vec![], BranchEnd::NotStarted);
        };
        if t[N] * toward < 0.0 {
            t = -t;
        }
        let (first, mut pairs, mut dims) = self.point_and_pairs(x, mu, None);
        let mut pts = vec![first];
        let mut h = opts.first_step();
        for _ in 0..opts.max_steps {
            let u = DVector::from_fn(N + 1, |i, _| if i < N { x[i] } else { mu });
            let tau_s = t.component_div(&s).normalize();
            let pred = &u + tau_s.component_mul(&s) * h;
            let corrected = self.correct(&pred, &tau_s, &s).and_then(|(xn, mun, it)| {
                let sn = scales(self.model, &self.p, &xn, mun, range);
                let tn = self.tangent(&xn, mun, &sn, &t)?;
                keeps_direction(&t, &tn, &sn).then_some((xn, mun, it, sn, tn))
            });
            let Some((xn, mun, it, sn, tn)) = corrected else {
                h *= 0.5;
                if h < opts.ds_min {
                    return (pts, BranchEnd::Lost { mu });
                }
                continue;
            };
            *steps += 1;
            // Left the range: land exactly on its end and stop.
            let (a, b) = (self.lo.min(self.hi), self.lo.max(self.hi));
            if mun < a || mun > b {
                let end = if mun < a { a } else { b };
                let frac = (end - mu) / (mun - mu);
                let guess = x + (xn - x) * frac;
                if let Some(xe) = self.at_mu(guess, end) {
                    pts.push(self.point(xe, end, None));
                }
                return (pts, BranchEnd::Range);
            }
            let mut found = vec![];
            // Fold: the parameter component of the tangent changes sign.
            if t[N] * tn[N] < 0.0 {
                if let Some((xf, mf)) =
                    self.fold_in_step(&u, &tau_s, &s, h, (&x, mu, &t), (&xn, mun, &tn))
                {
                    found.push(self.point(xf, mf, Some(SpecialPoint::Fold)));
                }
            }
            // Hopf: the real part of a complex pair, followed from the last point, changes
            // sign.
            let (next, next_pairs, next_dims) = self.point_and_pairs(xn, mun, None);
            for (l0, l1) in match_pairs(&pairs, &next_pairs) {
                if (l0.re < 0.0) != (l1.re < 0.0) {
                    let step = Step {
                        u: &u,
                        tau_s: &tau_s,
                        s: &s,
                        h,
                        end: (&xn, mun),
                        pair: (l0, l1),
                    };
                    if let Some(pt) = self.hopf_in_step(&step) {
                        found.push(pt);
                    }
                }
            }
            // The number of unstable directions changed and either nothing was located or a
            // pair became complex or real inside the step (then it cannot be matched at the
            // step's ends, and a Hopf point beside a fold would go unseen): a shorter step.
            let unmatched = found.is_empty() || pairs.len() != next_pairs.len();
            if next_dims != dims && unmatched && h > 4.0 * opts.ds_min {
                h *= 0.5;
                continue;
            }
            pts.extend(found);
            pairs = next_pairs;
            dims = next_dims;
            pts.push(next);
            x = xn;
            mu = mun;
            s = sn;
            t = tn;
            h = opts.next_step(h, it);
        }
        (pts, BranchEnd::MaxSteps(opts.max_steps))
    }

    /// [`Self::trace`] from the start value `lo`; if not even the first step succeeds (the
    /// start is a point where the rate law is not differentiable, such as the empty network at
    /// `sign_on = 0`, whose tangent points off the branch), the branch is restarted from Newton
    /// at a parameter a millionth (then a thousandth) of the range inside, and the interval
    /// skipped is not searched for special points.
    fn trace_or_restart(
        &self,
        x0: SVector<f64, N>,
        opts: &ContinuationOptions,
        steps: &mut usize,
    ) -> (Vec<BranchPoint<N>>, BranchEnd) {
        let toward = self.hi - self.lo;
        let (points, end) = self.trace(x0, self.lo, toward, opts, steps);
        if points.len() > 1 || !matches!(end, BranchEnd::Lost { .. }) {
            return (points, end);
        }
        for frac in [1e-6, 1e-3] {
            let mu1 = self.lo + frac * toward;
            let Some(x1) = self
                .at_mu(x0, mu1)
                .filter(|x| self.model.feasible(x, &self.with_mu(mu1)))
            else {
                continue;
            };
            let (rest, end1) = self.trace(x1, mu1, toward, opts, steps);
            if rest.len() > 1 {
                let mut all = vec![self.point(x0, self.lo, None)];
                all.extend(rest);
                return (all, end1);
            }
        }
        (points, end)
    }

    /// Locates the crossing of the pair `step.pair` inside one step: Newton on the extended
    /// Hopf system from the corrected point at the secant estimate, accepted if it lands
    /// inside the step on the same pair (the eigenvalue nearest the pair interpolated along the
    /// step); otherwise regula falsi on that pair's real part, then the same Newton from its
    /// result, which stands if Newton fails again. Returns the special point with its frequency
    /// and first Lyapunov coefficient.
    fn hopf_in_step(&self, step: &Step<'_, N>) -> Option<BranchPoint<N>> {
        let Step {
            u,
            tau_s,
            s,
            h,
            end: (x1, mu1),
            pair: (l0, l1),
        } = *step;
        // The pair's eigenvalue expected at arclength a, by linear interpolation.
        let expected = |a: f64| l0 + (l1 - l0) * (a / h);
        let on_branch = |a: f64| {
            let pred = u + tau_s.component_mul(s) * a;
            self.correct(&pred, tau_s, s).map(|(x, mu, _)| (x, mu))
        };
        // Newton on the extended system from a branch point (x, μ) with the pair near ±iω.
        let newton = |xg: SVector<f64, N>, mg: f64, w: f64| -> Option<BranchPoint<N>> {
            let p = self.with_mu(mg);
            let guess = HopfGuess {
                x: xg,
                mu: mg,
                omega: w,
                mu_scale: s[N],
            };
            let hp = refine_hopf(self.model, &p, self.k, guess).ok()?;
            // Inside the step: the scaled position along the chord from u to the step's end.
            let u1 = DVector::from_fn(N + 1, |i, _| if i < N { x1[i] } else { mu1 });
            let uh = DVector::from_fn(N + 1, |i, _| if i < N { hp.x[i] } else { hp.mu });
            let d = (&u1 - u).component_div(s);
            let e = (&uh - u).component_div(s);
            let dd = d.norm_squared();
            let pos = if dd > 0.0 { e.dot(&d) / dd } else { 0.0 };
            if !(-0.05..=1.05).contains(&pos) {
                return None;
            }
            // The same pair: the eigenvalue nearest the interpolated pair is the refined one.
            let lh = self.pair_near(&hp.x, hp.mu, expected(pos * h))?;
            if (lh.im - hp.omega).abs() > 1e-8 * hp.omega || lh.re.abs() > 1e-8 * hp.omega {
                return None;
            }
            let (mut pt, _, _) = self.point_and_pairs(hp.x, hp.mu, Some(SpecialPoint::Hopf));
            pt.hopf = Some(HopfData {
                omega: hp.omega,
                l1: hp.l1,
                criticality: hp.criticality,
                located: Located::Newton,
            });
            Some(pt)
        };
        // From the secant estimate of the crossing.
        let a = h * l0.re / (l0.re - l1.re);
        if let Some((xg, mg)) = on_branch(a) {
            if let Some(pt) = self
                .pair_near(&xg, mg, expected(a))
                .and_then(|lg| newton(xg, mg, lg.im))
            {
                return Some(pt);
            }
        }
        // Otherwise (the real part far from linear along the step, e.g. near a second crossing):
        // regula falsi on the real part of the pair followed along the step, then Newton from
        // there; its result stands if Newton still fails.
        let at = |a: f64| -> Probe<N> {
            let (x, mu) = on_branch(a)?;
            let l = self.pair_near(&x, mu, expected(a))?;
            Some(((x, mu, l.im), l.re))
        };
        let g1 = at(h)?.1;
        let ((xh, mh, w), _) = regula_falsi(h, (l0.re, g1), 1e-14, at)?;
        if let Some(pt) = newton(xh, mh, w) {
            return Some(pt);
        }
        let p = self.with_mu(mh);
        let (mut pt, _, _) = self.point_and_pairs(xh, mh, Some(SpecialPoint::Hopf));
        pt.hopf = first_lyapunov(&System::new(self.model, &p), &xh, w)
            .ok()
            .map(|ly| HopfData {
                omega: ly.omega,
                l1: ly.l1,
                criticality: ly.criticality(),
                located: Located::RegulaFalsi,
            });
        Some(pt)
    }
}

/// Continues every equilibrium branch through the equilibria at `from` in parameter `k`
/// (index in the model's table) across `[from, to]` (either direction), merging branches that
/// turn out to be one.
///
/// ```
/// use selfheal::analysis::continuation::{continue_equilibria, ContinuationOptions};
/// use selfheal::model::textbook::Cusp;
/// use selfheal::model::{Model, ParamSet};
/// // x' = μ + x − x³ has folds at μ = ±2/(3√3).
/// let p = ParamSet::defaults(Cusp.params());
/// let c = continue_equilibria(&Cusp, p.values(), 0, -1.0, 1.0, &ContinuationOptions::default()).unwrap();
/// let folds = c.folds();
/// let exact = 2.0 / (3.0 * 3f64.sqrt());
/// assert_eq!(folds.len(), 2);
/// assert!((folds[0] + exact).abs() < 1e-9 && (folds[1] - exact).abs() < 1e-9);
/// ```
pub fn continue_equilibria<M: Model<N>, const N: usize>(
    model: &M,
    p: &[f64],
    k: usize,
    from: f64,
    to: f64,
    opts: &ContinuationOptions,
) -> Result<Continuation<N>, Error>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    opts.validate()?;
    let spec = model
        .params()
        .get(k)
        .ok_or_else(|| Error::Invalid(format!("parameter index {k} is out of range")))?;
    for (name, v) in [("from", from), ("to", to)] {
        spec.check(v).map_err(|_| Error::OutOfRange {
            name: format!("{} {name}", spec.name),
            value: v,
            range: spec.range_text(),
        })?;
    }
    if from == to {
        return Err(Error::Invalid(format!(
            "empty range for {}: it starts and ends at {from}",
            spec.name
        )));
    }
    let mut p0 = p.to_vec();
    p0[k] = from;
    let start_equilibria = all_equilibria(model, &p0)?;
    if start_equilibria.is_empty() {
        return Err(Error::Invalid(format!(
            "no equilibrium at {} = {from} to continue from",
            spec.name
        )));
    }
    let tracer = Tracer {
        model,
        p: p0,
        k,
        lo: from,
        hi: to,
    };
    let mut branches: Vec<Branch<N>> = vec![];
    let mut covered = vec![false; start_equilibria.len()];
    let mut steps = 0;
    for (i, e) in start_equilibria.iter().enumerate() {
        if covered[i] {
            continue;
        }
        covered[i] = true;
        let (points, end) = tracer.trace_or_restart(e.x, opts, &mut steps);
        let mut starts = vec![i];
        // Merge: a branch that comes back to `from` through another start equilibrium is one
        // branch with it.
        if let Some(last) = points.last() {
            if last.mu == from {
                for (j, f) in start_equilibria.iter().enumerate() {
                    if !covered[j] && same_point(&f.x, &last.x) {
                        covered[j] = true;
                        starts.push(j);
                    }
                }
            }
        }
        branches.push(Branch {
            points,
            starts,
            end,
        });
    }
    Ok(Continuation {
        param: spec.name.to_string(),
        index: k,
        params: tracer.p.clone(),
        branches,
        start_equilibria,
        steps,
    })
}
