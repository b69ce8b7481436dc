//! Hopf points: the frequency and the first Lyapunov coefficient at an equilibrium with a pair
//! of eigenvalues `±iω`, and Newton's method on the extended Hopf system.
//!
//! - **First Lyapunov coefficient** by Kuznetsov's formula (*Elements of Applied Bifurcation
//!   Theory*, 3rd ed., (3.20) and its n-dimensional form (5.39)): with `A` the Jacobian,
//!   `A q = iω q`, `Aᵀ p = −iω p`, `⟨q, q⟩ = 1`, `⟨p, q⟩ = 1` (`⟨u, v⟩ = ū·v`),
//!
//!   ```text
//!   l1 = 1/(2ω) Re[⟨p, C(q,q,q̄)⟩ − 2⟨p, B(q, A⁻¹B(q,q̄))⟩ + ⟨p, B(q̄, (2iωI − A)⁻¹B(q,q))⟩]
//!   ```
//!
//!   where `B` and `C` are the second and third derivatives of `f` in the state, as symmetric
//!   multilinear forms. They are exact: complex arguments are expanded by multilinearity into
//!   real directions, each evaluated by one hyper-hyper-dual pass
//!   ([`System::third_derivative`]). The eigenvectors come from inverse iteration on the
//!   Jacobian balanced by a diagonal similarity (Parlett–Reinsch), so that components of very
//!   different size (supernodes at 1e-8 beside peers at 0.3) keep their relative accuracy; the
//!   linear solves go through the same balancing. In this normalisation the normal form
//!   `r' = μr + s·r³`, `θ' = ω` has `l1 = 2s/ω`. `l1 < 0`: supercritical (a stable cycle is
//!   born on the side where the equilibrium is unstable); `l1 > 0`: subcritical (an unstable
//!   cycle surrounds the stable equilibrium and shrinks onto it at the Hopf point).
//! - **Extended Hopf system**: unknowns `(x, μ, q, ω)` with `q = q_r + i·q_i`, equations
//!   `f(x, μ) = 0`, `A q_r + ω q_i = 0`, `A q_i − ω q_r = 0` (that is `A q = iω q`) and the
//!   complex normalisation `⟨c, q/σ⟩ = 1` against the starting eigenvector `c` (two real
//!   equations, fixing the size and the phase of `q`). Newton with the exact Jacobian: the
//!   derivative of `A q` in the state and the parameter is a second derivative of `f`
//!   (hyper-dual numbers, no finite differences). Unknowns are scaled by their size and rows
//!   equilibrated, as in the continuation.

use crate::equilibria::Stability;
use crate::error::Error;
use crate::model::{Model, System};
use nalgebra::linalg::balancing::balance_parlett_reinsch;
use nalgebra::{Complex, Const, DMatrix, DVector, DimMin, SMatrix, SVector};
use serde::Serialize;

type C64 = Complex<f64>;

/// Below this fraction of its scale (the sum of the magnitudes of the terms of Kuznetsov's
/// formula) a first Lyapunov coefficient counts as zero: a degenerate (Bautin) Hopf point.
pub const DEGENERATE_L1: f64 = 1e-7;

/// Whether the cycle born at a Hopf point is stable, from the sign of `l1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Criticality {
    /// `l1 > 0`: an unstable cycle surrounds the equilibrium on its stable side; crossing the
    /// Hopf point is a hard loss of stability (a jump).
    Subcritical,
    /// `l1 < 0`: a stable cycle grows from the equilibrium on its unstable side (a soft loss
    /// of stability).
    Supercritical,
    /// `|l1|` below [`DEGENERATE_L1`] of its scale: a higher-order (Bautin) point.
    Degenerate,
}

impl Criticality {
    /// The criticality of `l1` whose formula's terms have magnitude `scale`.
    pub fn of(l1: f64, scale: f64) -> Self {
        if l1.abs() <= DEGENERATE_L1 * scale {
            Criticality::Degenerate
        } else if l1 > 0.0 {
            Criticality::Subcritical
        } else {
            Criticality::Supercritical
        }
    }

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Criticality::Subcritical => "subcritical",
            Criticality::Supercritical => "supercritical",
            Criticality::Degenerate => "degenerate",
        }
    }
}

/// How a Hopf point on a branch was located.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Located {
    /// Newton on the extended Hopf system ([`refine_hopf`]).
    Newton,
    /// Regula falsi on the pair's real part along the branch (Newton failed or left the step).
    RegulaFalsi,
}

/// Frequency and criticality of a Hopf point on a branch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HopfData {
    /// Imaginary part `ω > 0` of the critical pair (angular frequency, per time unit).
    pub omega: f64,
    /// First Lyapunov coefficient (Kuznetsov's normalisation).
    pub l1: f64,
    /// From the sign of `l1`.
    pub criticality: Criticality,
    /// How the point was located.
    pub located: Located,
}

/// The first Lyapunov coefficient at an equilibrium, with its frequency.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lyapunov {
    /// Imaginary part of the critical eigenvalue.
    pub omega: f64,
    /// First Lyapunov coefficient.
    pub l1: f64,
    /// Sum of the magnitudes of the three terms of the formula, divided by `2ω`: the size
    /// against which `l1` counts as zero.
    pub scale: f64,
}

impl Lyapunov {
    /// Criticality from the sign of `l1`.
    pub fn criticality(&self) -> Criticality {
        Criticality::of(self.l1, self.scale)
    }
}

/// A Hopf point refined on the extended Hopf system.
#[derive(Debug, Clone, PartialEq)]
pub struct HopfPoint<const N: usize> {
    /// Parameter value.
    pub mu: f64,
    /// Equilibrium state.
    pub x: SVector<f64, N>,
    /// Imaginary part of the critical pair.
    pub omega: f64,
    /// First Lyapunov coefficient.
    pub l1: f64,
    /// From the sign of `l1`.
    pub criticality: Criticality,
    /// Eigenvector, `A q = iω q`, `⟨q, q⟩ = 1`.
    pub q: SVector<C64, N>,
    /// Largest residual of the extended system, each equation relative to the size of its
    /// terms (its row of the Jacobian times the unknowns' sizes).
    pub residual: f64,
    /// Newton iterations used.
    pub iterations: usize,
}

/// Scales of the states at `x`: their magnitude, floored by the model's search box (its lower
/// end for logarithmically sampled states, a thousandth of its width for the others).
pub(crate) fn state_scales<M: Model<N>, const N: usize>(
    model: &M,
    p: &[f64],
    x: &SVector<f64, N>,
) -> SVector<f64, N> {
    let bx = model.search_box(p);
    SVector::from_fn(|i, _| {
        let r = bx[i];
        let floor = if r.log {
            r.lo.max(1e-300)
        } else {
            1e-3 * (r.hi - r.lo).abs().max(1e-300)
        };
        x[i].abs().max(floor)
    })
}

/// `⟨u, v⟩ = ū·v`.
fn inner<const N: usize>(u: &SVector<C64, N>, v: &SVector<C64, N>) -> C64 {
    u.iter().zip(v.iter()).map(|(a, b)| a.conj() * b).sum()
}

fn cvec<const N: usize>(v: &SVector<f64, N>) -> SVector<C64, N> {
    v.map(|a| C64::new(a, 0.0))
}

/// Eigenvector of `m` for the eigenvalue nearest `lambda`, by inverse iteration (unit norm).
fn inverse_iteration<const N: usize>(m: &SMatrix<f64, N, N>, lambda: C64) -> Option<SVector<C64, N>>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    // Shift a little off the eigenvalue so that the factorisation is never exactly singular;
    // inverse iteration converges at the rate (offset)/(gap to the next eigenvalue).
    let size = m.norm().max(lambda.norm()).max(1e-300);
    let shift = lambda + C64::new(1e-13 * size, 1e-13 * size);
    let a = m.map(|v| C64::new(v, 0.0)) - SMatrix::<C64, N, N>::identity() * shift;
    let lu = a.lu();
    let mut v = SVector::<C64, N>::from_fn(|i, _| C64::new(1.0, 0.37 * (i as f64 + 1.0)));
    v /= C64::new(v.norm(), 0.0);
    for _ in 0..4 {
        let w = lu.solve(&v)?;
        let n = w.norm();
        if !(n.is_finite() && n > 0.0) {
            return None;
        }
        v = w / C64::new(n, 0.0);
    }
    Some(v)
}

/// The critical eigenvalue (nearest `i·omega` with positive imaginary part) of `j`, its right
/// eigenvector `q` (`⟨q, q⟩ = 1`) and adjoint `p` (`Aᵀp = λ̄p`, `⟨p, q⟩ = 1`), through the
/// balanced matrix; returns also the balanced matrix and its diagonal `d` (`A = D·Ab·D⁻¹`).
#[allow(clippy::type_complexity)]
fn eigenpair<const N: usize>(
    j: &SMatrix<f64, N, N>,
    omega: f64,
) -> Result<
    (
        C64,
        SVector<C64, N>,
        SVector<C64, N>,
        SMatrix<f64, N, N>,
        SVector<f64, N>,
    ),
    Error,
>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    if !j.iter().all(|v| v.is_finite()) {
        return Err(Error::Invalid("non-finite Jacobian at a Hopf point".into()));
    }
    let mut jb = *j;
    let d = balance_parlett_reinsch(&mut jb);
    let target = C64::new(0.0, omega.abs());
    let lambda = Stability::of(&jb)
        .eigenvalues
        .into_iter()
        .filter(|l| l.im > 1e-12 * l.norm())
        .min_by(|a, b| (a - target).norm().total_cmp(&(b - target).norm()))
        .ok_or_else(|| {
            Error::Invalid(format!(
                "no complex pair of eigenvalues near ±{}i",
                omega.abs()
            ))
        })?;
    let fail = || Error::Invalid(format!("no eigenvector for the eigenvalue {lambda}"));
    let yq = inverse_iteration(&jb, lambda).ok_or_else(fail)?;
    let yp = inverse_iteration(&jb.transpose(), lambda.conj()).ok_or_else(fail)?;
    let mut q = SVector::<C64, N>::from_fn(|i, _| yq[i] * d[i]);
    q /= C64::new(q.norm(), 0.0);
    let mut p = SVector::<C64, N>::from_fn(|i, _| yp[i] / d[i]);
    let a = inner(&p, &q);
    if a.norm() <= 1e-12 * p.norm() {
        return Err(Error::Invalid(format!(
            "the eigenvalue {lambda} is not simple (its left and right eigenvectors are orthogonal)"
        )));
    }
    p /= a.conj();
    Ok((lambda, q, p, jb, d))
}

/// The first Lyapunov coefficient and the frequency at an equilibrium `x` of `sys` whose
/// Jacobian has a pair of eigenvalues near `±i·omega` (the one nearest is taken; its real part
/// should vanish, as at a located Hopf point). Kuznetsov's formula with exact second and third
/// derivatives; see the module documentation.
///
/// ```
/// use nalgebra::SVector;
/// use selfheal::analysis::hopf::{first_lyapunov, Criticality};
/// use selfheal::model::textbook::HopfNormalForm;
/// use selfheal::model::System;
/// // r' = μr − r³, θ' = 1 at μ = 0: l1 = 2·(−1)/1.
/// let sys = System::new(&HopfNormalForm, &[0.0]);
/// let l = first_lyapunov(&sys, &SVector::zeros(), 1.0).unwrap();
/// assert!((l.omega - 1.0).abs() < 1e-14 && (l.l1 + 2.0).abs() < 1e-12);
/// assert_eq!(l.criticality(), Criticality::Supercritical);
/// ```
pub fn first_lyapunov<M: Model<N>, const N: usize>(
    sys: &System<'_, M, N>,
    x: &SVector<f64, N>,
    omega: f64,
) -> Result<Lyapunov, Error>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    let j = sys.jacobian(0.0, x);
    let (lambda, q, p, jb, d) = eigenpair(&j, omega)?;
    let w = lambda.im;
    let zero = SVector::<f64, N>::zeros();
    // Real second and third derivatives along real directions.
    let b_real = |u: &SVector<f64, N>, v: &SVector<f64, N>| {
        sys.third_derivative(0.0, x, u, v, &zero)
            .map(|e| e.eps1eps2)
    };
    let c_real = |u: &SVector<f64, N>, v: &SVector<f64, N>, z: &SVector<f64, N>| {
        sys.third_derivative(0.0, x, u, v, z)
            .map(|e| e.eps1eps2eps3)
    };
    // Complex arguments by multilinearity: each argument is re + i·im.
    let parts = |u: &SVector<C64, N>| [u.map(|a| a.re), u.map(|a| a.im)];
    let i_pow = |k: usize| [C64::new(1.0, 0.0), C64::new(0.0, 1.0), C64::new(-1.0, 0.0)][k];
    let b = |u: &SVector<C64, N>, v: &SVector<C64, N>| {
        let (pu, pv) = (parts(u), parts(v));
        let mut s = SVector::<C64, N>::zeros();
        for (ku, du) in pu.iter().enumerate() {
            for (kv, dv) in pv.iter().enumerate() {
                s += cvec(&b_real(du, dv)) * i_pow(ku + kv);
            }
        }
        s
    };
    let c = |u: &SVector<C64, N>, v: &SVector<C64, N>, z: &SVector<C64, N>| {
        let (pu, pv, pz) = (parts(u), parts(v), parts(z));
        let mut s = SVector::<C64, N>::zeros();
        for (ku, du) in pu.iter().enumerate() {
            for (kv, dv) in pv.iter().enumerate() {
                for (kz, dz) in pz.iter().enumerate() {
                    let k = ku + kv + kz;
                    // i³ = −i.
                    let f = if k == 3 {
                        C64::new(0.0, -1.0)
                    } else {
                        i_pow(k)
                    };
                    s += cvec(&c_real(du, dv, dz)) * f;
                }
            }
        }
        s
    };
    let qb = q.map(|a| a.conj());
    // A⁻¹·r = D·Ab⁻¹·D⁻¹·r, and likewise for (2iω − A).
    let singular = |what: &str| Error::Invalid(format!("{what} is singular at the Hopf point"));
    let b11 = b(&q, &qb).map(|a| a.re);
    let h11 = jb
        .lu()
        .solve(&b11.component_div(&d))
        .ok_or_else(|| singular("the Jacobian"))?
        .component_mul(&d);
    let shifted =
        SMatrix::<C64, N, N>::identity() * C64::new(0.0, 2.0 * w) - jb.map(|a| C64::new(a, 0.0));
    let dc = cvec(&d);
    let h20 = shifted
        .lu()
        .solve(&b(&q, &q).component_div(&dc))
        .ok_or_else(|| singular("2iω − A"))?
        .component_mul(&dc);
    let t1 = inner(&p, &c(&q, &q, &qb));
    let t2 = inner(&p, &b(&q, &cvec(&h11)));
    let t3 = inner(&p, &b(&qb, &h20));
    let l1 = (t1 - t2 * 2.0 + t3).re / (2.0 * w);
    let scale = (t1.norm() + 2.0 * t2.norm() + t3.norm()) / (2.0 * w);
    if !(l1.is_finite() && scale.is_finite()) {
        return Err(Error::Invalid(format!(
            "the first Lyapunov coefficient is not finite at {:?}",
            x.as_slice()
        )));
    }
    Ok(Lyapunov {
        omega: w,
        l1,
        scale,
    })
}

/// Where [`refine_hopf`] starts: an equilibrium guess `x` at parameter value `mu` whose
/// Jacobian has a pair of eigenvalues near `±i·omega`, and `mu_scale`, a typical size of the
/// parameter (for scaling, e.g. its magnitude or a thousandth of a continuation range).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HopfGuess<const N: usize> {
    /// State near the Hopf point.
    pub x: SVector<f64, N>,
    /// Parameter value near the Hopf point.
    pub mu: f64,
    /// Frequency near the Hopf point.
    pub omega: f64,
    /// Typical size of the parameter (positive).
    pub mu_scale: f64,
}

/// Newton's method on the extended Hopf system in parameter `k` (index in the model's table)
/// from `guess`. Converges when the scaled update is below 1e-12; then the first Lyapunov
/// coefficient is computed at the point.
///
/// ```
/// use nalgebra::SVector;
/// use selfheal::analysis::hopf::{refine_hopf, HopfGuess};
/// use selfheal::model::textbook::HopfNormalForm;
/// // Eigenvalues μ ± i at the origin: the Hopf point is μ = 0.
/// let guess = HopfGuess { x: SVector::from([1e-3, 0.0]), mu: -0.1, omega: 0.9, mu_scale: 1.0 };
/// let h = refine_hopf(&HopfNormalForm, &[-0.1], 0, guess).unwrap();
/// assert!(h.mu.abs() < 1e-14 && (h.omega - 1.0).abs() < 1e-14 && h.x.norm() < 1e-14);
/// ```
pub fn refine_hopf<M: Model<N>, const N: usize>(
    model: &M,
    p: &[f64],
    k: usize,
    guess: HopfGuess<N>,
) -> Result<HopfPoint<N>, Error>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    let HopfGuess {
        x: x0,
        mu: mu0,
        omega: omega0,
        mu_scale,
    } = guess;
    if k >= p.len() {
        return Err(Error::Invalid(format!(
            "parameter index {k} is out of range"
        )));
    }
    if !(mu_scale.is_finite() && mu_scale > 0.0) {
        return Err(Error::Invalid(format!(
            "the parameter scale must be positive and finite, not {mu_scale}"
        )));
    }
    let with_mu = |mu: f64| {
        let mut q = p.to_vec();
        q[k] = mu;
        q
    };
    let sx = state_scales(model, p, &x0);
    let p0 = with_mu(mu0);
    let j0 = System::new(model, &p0).jacobian(0.0, &x0);
    let (lambda0, q0, _, _, _) = eigenpair(&j0, omega0)?;
    // Scaled eigenvector η = q/σ, normalised; the reference c of the phase condition is its start.
    let mut eta = SVector::<C64, N>::from_fn(|i, _| q0[i] / sx[i]);
    eta /= C64::new(eta.norm(), 0.0);
    let c = eta;
    let mut x = x0;
    let mut mu = mu0;
    let mut w = lambda0.im;
    let sw = w.abs();
    let n = 3 * N + 2;
    // Column scales: x and q by the state scales, μ by mu_scale, ω by its start.
    let col_scale = |col: usize| {
        if col < N {
            sx[col]
        } else if col == N {
            mu_scale
        } else if col < 2 * N + 1 {
            sx[col - N - 1]
        } else if col < 3 * N + 1 {
            sx[col - 2 * N - 1]
        } else {
            sw
        }
    };
    // The residual and the Jacobian (columns scaled, rows not yet equilibrated).
    let system = |x: &SVector<f64, N>, mu: f64, eta: &SVector<C64, N>, w: f64| {
        let pm = with_mu(mu);
        let sys = System::new(model, &pm);
        let (f, a) = sys.f_and_jacobian(0.0, x);
        let fp = sys.param_derivative(0.0, x, k);
        let qr = SVector::<f64, N>::from_fn(|i, _| eta[i].re * sx[i]);
        let qi = SVector::<f64, N>::from_fn(|i, _| eta[i].im * sx[i]);
        let mut g = DVector::zeros(n);
        let mut m = DMatrix::zeros(n, n);
        let aqr = a * qr;
        let aqi = a * qi;
        let norm: C64 = c
            .iter()
            .zip(eta.iter())
            .map(|(ci, ei)| ci.conj() * ei)
            .sum();
        for r in 0..N {
            g[r] = f[r];
            g[N + r] = aqr[r] + w * qi[r];
            g[2 * N + r] = aqi[r] - w * qr[r];
        }
        g[3 * N] = norm.re - 1.0;
        g[3 * N + 1] = norm.im;
        let zero = SVector::<f64, N>::zeros();
        for col in 0..N {
            let mut e = zero;
            e[col] = 1.0;
            let dr = sys.second_derivative(0.0, x, k, (&qr, 0.0), (&e, 0.0));
            let di = sys.second_derivative(0.0, x, k, (&qi, 0.0), (&e, 0.0));
            for r in 0..N {
                m[(r, col)] = a[(r, col)];
                m[(N + r, col)] = dr[r];
                m[(2 * N + r, col)] = di[r];
                // ∂/∂q_r and ∂/∂q_i
                m[(N + r, N + 1 + col)] = a[(r, col)];
                m[(2 * N + r, 2 * N + 1 + col)] = a[(r, col)];
            }
            m[(N + col, 2 * N + 1 + col)] += w;
            m[(2 * N + col, N + 1 + col)] -= w;
            // Normalisation Σ c̄_i (q_r + i q_i)_i / σ_i.
            m[(3 * N, N + 1 + col)] = c[col].re / sx[col];
            m[(3 * N, 2 * N + 1 + col)] = c[col].im / sx[col];
            m[(3 * N + 1, N + 1 + col)] = -c[col].im / sx[col];
            m[(3 * N + 1, 2 * N + 1 + col)] = c[col].re / sx[col];
        }
        let dr = sys.second_derivative(0.0, x, k, (&qr, 0.0), (&zero, 1.0));
        let di = sys.second_derivative(0.0, x, k, (&qi, 0.0), (&zero, 1.0));
        for r in 0..N {
            m[(r, N)] = fp[r];
            m[(N + r, N)] = dr[r];
            m[(2 * N + r, N)] = di[r];
            m[(N + r, 3 * N + 1)] = qi[r];
            m[(2 * N + r, 3 * N + 1)] = -qr[r];
        }
        for col in 0..n {
            let s = col_scale(col);
            for r in 0..n {
                m[(r, col)] *= s;
            }
        }
        // Row sizes: the change of each equation when every unknown moves by its own size.
        let rows = DVector::from_fn(n, |r, _| {
            let s = m.row(r).amax();
            if s > 0.0 && s.is_finite() {
                s
            } else {
                1.0
            }
        });
        (g, m, rows)
    };
    let fail = |why: String| {
        Error::Newton(format!(
            "the extended Hopf system from {} = {mu0}, state {:?}: {why}",
            model.params()[k].name,
            x0.as_slice()
        ))
    };
    for it in 1..=30 {
        let (g, mut m, rows) = system(&x, mu, &eta, w);
        if !g.iter().all(|v| v.is_finite()) || !m.iter().all(|v| v.is_finite()) {
            return Err(fail("non-finite residual or Jacobian".into()));
        }
        let mut rhs = -g;
        for r in 0..n {
            rhs[r] /= rows[r];
            for col in 0..n {
                m[(r, col)] /= rows[r];
            }
        }
        let d = m
            .lu()
            .solve(&rhs)
            .ok_or_else(|| fail("singular Jacobian".into()))?;
        for i in 0..N {
            x[i] += d[i] * sx[i];
            eta[i] += C64::new(d[N + 1 + i], d[2 * N + 1 + i]);
        }
        mu += d[N] * mu_scale;
        w += d[3 * N + 1] * sw;
        if !mu.is_finite() || !model.feasible(&x, &with_mu(mu)) || !w.is_finite() || w <= 0.0 {
            return Err(fail(format!(
                "left the feasible region at {} = {mu}, state {:?}, ω = {w}",
                model.params()[k].name,
                x.as_slice()
            )));
        }
        if d.amax() <= 1e-12 {
            let (g, _, rows) = system(&x, mu, &eta, w);
            let residual = g
                .iter()
                .zip(rows.iter())
                .map(|(a, b)| (a / b).abs())
                .fold(0.0, f64::max);
            if residual.is_nan() || residual > 1e-10 {
                return Err(fail(format!("converged with residual {residual:e}")));
            }
            let mut q = SVector::<C64, N>::from_fn(|i, _| eta[i] * sx[i]);
            q /= C64::new(q.norm(), 0.0);
            let pm = with_mu(mu);
            let ly = first_lyapunov(&System::new(model, &pm), &x, w)?;
            return Ok(HopfPoint {
                mu,
                x,
                omega: w,
                l1: ly.l1,
                criticality: ly.criticality(),
                q,
                residual,
                iterations: it,
            });
        }
    }
    Err(fail("30 iterations did not converge".into()))
}
