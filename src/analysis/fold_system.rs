//! The fold (saddle-node) system shared by one-parameter continuation, which locates a fold on a
//! branch, and by fold curves, which trace it in two parameters; and the one rule by which
//! every curve-following analysis scales its unknowns.
//!
//! The Moore–Spence system in `(x, ṽ, μ…)` is
//!
//! ```text
//! f(x, μ) = 0,   J(x, μ) v = 0,   ⟨l, ṽ⟩ = 1,   v = σ_v ∘ ṽ,
//! ```
//!
//! the null vector `v` carried in components scaled by `σ_v` so that the normalisation is well
//! balanced when the states differ by orders of magnitude. Its Jacobian uses the exact second
//! derivatives `D²f` of the model (hyper-dual numbers).

use crate::analysis::hopf::state_scales;
use crate::model::{Model, System};
use nalgebra::{DMatrix, DVector, SVector};

/// Scale of a parameter unknown: its magnitude, floored at a thousandth of the range it moves
/// in (so a parameter crossing zero keeps a usable scale).
pub(crate) fn param_scale(value: f64, range: f64) -> f64 {
    value.abs().max(1e-3 * range.abs()).max(1e-300)
}

/// Scales of the unknowns `(x, extra…, μ…)`: the state's own scales
/// ([`state_scales`]), then `extra` as given (e.g. 1 for a null vector already in scaled
/// components), then each parameter by [`param_scale`] from `(value, range)`.
pub(crate) fn unknown_scales<M: Model<N>, const N: usize>(
    model: &M,
    p: &[f64],
    x: &SVector<f64, N>,
    extra: &[f64],
    params: &[(f64, f64)],
) -> DVector<f64> {
    let sx = state_scales(model, p, x);
    let len = N + extra.len() + params.len();
    DVector::from_fn(len, |i, _| {
        if i < N {
            sx[i]
        } else if i < N + extra.len() {
            extra[i - N]
        } else {
            let (value, range) = params[i - N - extra.len()];
            param_scale(value, range)
        }
    })
}

/// The Moore–Spence residual `G` (length `2N + 1`) at `(x, ṽ)` under parameters `p`, and its
/// Jacobian with respect to `(x, ṽ, p[k] for k in params)` (`2N + 1` rows,
/// `2N + params.len()` columns; `x` and the parameters unscaled, `ṽ` in its scaled components).
pub(crate) fn moore_spence<M: Model<N>, const N: usize>(
    model: &M,
    p: &[f64],
    x: &SVector<f64, N>,
    v: &SVector<f64, N>,
    sv: &SVector<f64, N>,
    l: &SVector<f64, N>,
    params: &[usize],
) -> (DVector<f64>, DMatrix<f64>) {
    let sys = System::new(model, p);
    let (f, j) = sys.f_and_jacobian(0.0, x);
    let vu = v.component_mul(sv);
    let jv = j * vu;
    let rows = 2 * N + 1;
    let mut g = DVector::zeros(rows);
    let mut a = DMatrix::zeros(rows, 2 * N + params.len());
    for r in 0..N {
        g[r] = f[r];
        g[N + r] = jv[r];
    }
    g[2 * N] = l.dot(v) - 1.0;
    let zero = SVector::<f64, N>::zeros();
    // The parameter index passed with a zero parameter direction does not matter.
    let any = params.first().copied().unwrap_or(0);
    for c in 0..N {
        let mut e = zero;
        e[c] = 1.0;
        // ∂(J v)/∂x_c = D²f[(v, 0), (e_c, 0)]
        let col = sys.second_derivative(0.0, x, any, (&vu, 0.0), (&e, 0.0));
        for r in 0..N {
            a[(r, c)] = j[(r, c)];
            a[(N + r, c)] = col[r];
            a[(N + r, N + c)] = j[(r, c)] * sv[c];
        }
        a[(2 * N, N + c)] = l[c];
    }
    for (i, &k) in params.iter().enumerate() {
        let col = 2 * N + i;
        let fp = sys.param_derivative(0.0, x, k);
        let jvp = sys.second_derivative(0.0, x, k, (&vu, 0.0), (&zero, 1.0));
        for r in 0..N {
            a[(r, col)] = fp[r];
            a[(N + r, col)] = jvp[r];
        }
    }
    (g, a)
}
