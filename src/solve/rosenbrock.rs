//! RODAS4: an L-stable, stiffly accurate Rosenbrock method of order 4 with an embedded
//! order-3 error estimate and order-3 dense output (Hairer & Wanner, *Solving ODEs II*,
//! Sect. IV.7; coefficients of their code RODAS), using the model's exact Jacobian and an LU
//! of `I/(hγ) − J` from nalgebra.

use super::dense::Segment;
use super::{initial_step, wrms, Observer, SolveOptions, SolverStats};
use crate::error::{Error, SolverFailure};
use crate::model::{Model, System};
use nalgebra::{Const, DimMin};
use nalgebra::{SMatrix, SVector};

// Method coefficients (transformed form: stages U_i solve (I/(hγ) − J) U_i = f(y0 + Σ a_ij U_j)
// + Σ (c_ij/h) U_j + h d_i f_t).
const GAMMA: f64 = 0.25;
const C2: f64 = 0.386;
const C3: f64 = 0.21;
const C4: f64 = 0.63;
const D1: f64 = 0.25;
const D2: f64 = -0.1043;
const D3: f64 = 0.1035;
const D4: f64 = -0.036_200_000_000_000_23;
const A21: f64 = 1.544;
const A31: f64 = 0.946_678_528_081_582_6;
const A32: f64 = 0.255_701_169_898_328_4;
const A41: f64 = 3.314_825_187_068_521;
const A42: f64 = 2.896_124_015_972_201;
const A43: f64 = 0.998_641_913_997_781_7;
const A51: f64 = 1.221_224_509_226_641;
const A52: f64 = 6.019_134_481_288_629;
const A53: f64 = 12.537_083_329_320_87;
const A54: f64 = -0.687_886_036_105_895;
const C21: f64 = -5.6688;
const C31: f64 = -2.430_093_356_833_875;
const C32: f64 = -0.206_359_915_709_191_5;
const C41: f64 = -0.107_352_905_815_137_5;
const C42: f64 = -9.594_562_251_023_355;
const C43: f64 = -20.470_286_148_096_16;
const C51: f64 = 7.496_443_313_967_647;
const C52: f64 = -10.246_804_314_643_52;
const C53: f64 = -33.999_903_528_199_05;
const C54: f64 = 11.708_908_932_061_6;
const C61: f64 = 8.083_246_795_921_522;
const C62: f64 = -7.981_132_988_064_893;
const C63: f64 = -31.521_594_328_743_71;
const C64: f64 = 16.319_305_431_231_36;
const C65: f64 = -6.058_818_238_834_054;
// Dense output.
const H21: f64 = 10.126_235_083_445_86;
const H22: f64 = -7.487_995_877_610_167;
const H23: f64 = -34.800_918_615_557_47;
const H24: f64 = -7.992_771_707_568_823;
const H25: f64 = 1.025_137_723_295_662;
const H31: f64 = -0.676_280_339_280_125_3;
const H32: f64 = 6.087_714_651_680_015;
const H33: f64 = 16.430_843_208_924_78;
const H34: f64 = 24.767_225_114_183_86;
const H35: f64 = -6.594_389_125_716_872;

/// Integrates `sys` from `(t0, y0)` to `t1` with RODAS4, handing every accepted step to
/// `observer` (which may stop the integration early). Returns the final time and state.
pub fn integrate<M: Model<N>, const N: usize>(
    sys: &System<'_, M, N>,
    t0: f64,
    y0: SVector<f64, N>,
    t1: f64,
    opts: &SolveOptions,
    stats: &mut SolverStats,
    observer: &mut Observer<'_, N>,
) -> Result<(f64, SVector<f64, N>), Error>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    let fail = |t: f64, y: &SVector<f64, N>, reason| Error::Solver {
        method: "rosenbrock".into(),
        t,
        state: y.iter().copied().collect(),
        reason,
    };
    let span = t1 - t0;
    if span <= 0.0 {
        return Ok((t0, y0));
    }
    let (rtol, atol) = (opts.tol.rtol, opts.tol.atol);
    let h_max = opts.h_max.unwrap_or(span).min(span);
    let autonomous = sys.model.autonomous();

    let mut t = t0;
    let mut y = y0;
    let mut f0 = sys.f(t, &y);
    stats.rhs_evals += 1;
    if !f0.iter().all(|v| v.is_finite()) {
        return Err(fail(t, &y, SolverFailure::NonFinite));
    }
    let mut h = match opts.h0 {
        Some(h) => h.min(h_max),
        None => {
            stats.rhs_evals += 1;
            initial_step(sys, t, &y, &f0, 4, rtol, atol, h_max)
        }
    };
    let mut jac: Option<(SMatrix<f64, N, N>, SVector<f64, N>)> = None;
    let mut last_rejected = false;
    let mut steps = 0usize;

    loop {
        if steps >= opts.max_steps {
            return Err(fail(t, &y, SolverFailure::TooManySteps(opts.max_steps)));
        }
        // Land exactly on t1; avoid a sliver of a last step.
        let mut last = false;
        if t + h >= t1 || t + 1.01 * h >= t1 {
            h = t1 - t;
            last = true;
        }
        if h.abs() <= 16.0 * f64::EPSILON * t.abs().max(1.0) {
            return Err(fail(t, &y, SolverFailure::StepSizeTooSmall(h)));
        }
        let (j, ft) = match jac {
            Some(jf) => jf,
            None => {
                stats.jac_evals += 1;
                let ft = if autonomous {
                    SVector::zeros()
                } else {
                    sys.time_derivative(t, &y)
                };
                let jf = (sys.jacobian(t, &y), ft);
                jac = Some(jf);
                jf
            }
        };
        let e = SMatrix::<f64, N, N>::identity() * (1.0 / (h * GAMMA)) - j;
        stats.lu_decomps += 1;
        // Six solves per step with one matrix: form its inverse once and apply it as a
        // matrix-vector product (nalgebra inverts up to 4 × 4 in closed form, larger matrices
        // through their LU factors).
        let inv = e.try_inverse();
        let solve = |b: SVector<f64, N>| inv.as_ref().map(|m| m * b);
        let inv_h = 1.0 / h;

        let Some(u1) = solve(f0 + ft * (h * D1)) else {
            return Err(fail(t, &y, SolverFailure::Singular));
        };
        let y2 = y + u1 * A21;
        let f2 = sys.f(t + C2 * h, &y2);
        let u2 = solve(f2 + u1 * (C21 * inv_h) + ft * (h * D2));
        let u2 = u2.ok_or_else(|| fail(t, &y, SolverFailure::Singular))?;
        let y3 = y + u1 * A31 + u2 * A32;
        let f3 = sys.f(t + C3 * h, &y3);
        let u3 = solve(f3 + (u1 * C31 + u2 * C32) * inv_h + ft * (h * D3))
            .ok_or_else(|| fail(t, &y, SolverFailure::Singular))?;
        let y4 = y + u1 * A41 + u2 * A42 + u3 * A43;
        let f4 = sys.f(t + C4 * h, &y4);
        let u4 = solve(f4 + (u1 * C41 + u2 * C42 + u3 * C43) * inv_h + ft * (h * D4))
            .ok_or_else(|| fail(t, &y, SolverFailure::Singular))?;
        let y5 = y + u1 * A51 + u2 * A52 + u3 * A53 + u4 * A54;
        let f5 = sys.f(t + h, &y5);
        let u5 = solve(f5 + (u1 * C51 + u2 * C52 + u3 * C53 + u4 * C54) * inv_h)
            .ok_or_else(|| fail(t, &y, SolverFailure::Singular))?;
        let y6 = y5 + u5;
        let f6 = sys.f(t + h, &y6);
        let u6 = solve(f6 + (u1 * C61 + u2 * C62 + u3 * C63 + u4 * C64 + u5 * C65) * inv_h)
            .ok_or_else(|| fail(t, &y, SolverFailure::Singular))?;
        let y_new = y6 + u6;
        stats.rhs_evals += 5;
        steps += 1;

        let finite = y_new.iter().all(|v| v.is_finite());
        let err = if finite {
            wrms(&u6, &y, &y_new, rtol, atol)
        } else {
            f64::INFINITY
        };
        if err <= 1.0 {
            let tn = if last { t1 } else { t + h };
            let seg = Segment {
                t0: t,
                t1: tn,
                y0: y,
                y1: y_new,
                a: u1 * H21 + u2 * H22 + u3 * H23 + u4 * H24 + u5 * H25,
                b: u1 * H31 + u2 * H32 + u3 * H33 + u4 * H34 + u5 * H35,
                c: SVector::zeros(),
                d: SVector::zeros(),
                e: SVector::zeros(),
                k: SVector::zeros(),
            };
            stats.steps += 1;
            t = tn;
            y = y_new;
            f0 = sys.f(t, &y);
            stats.rhs_evals += 1;
            if !f0.iter().all(|v| v.is_finite()) {
                return Err(fail(t, &y, SolverFailure::NonFinite));
            }
            jac = None;
            if observer(&seg) || last {
                return Ok((t, y));
            }
            let fac = (0.9 / err.max(1e-10).sqrt().sqrt()).clamp(0.2, 6.0);
            let fac = if last_rejected { fac.min(1.0) } else { fac };
            h = (h * fac).min(h_max);
            last_rejected = false;
        } else {
            stats.rejected += 1;
            let fac = if finite {
                (0.9 / err.sqrt().sqrt()).clamp(0.1, 0.9)
            } else {
                0.1
            };
            h *= fac;
            last_rejected = true;
        }
    }
}
