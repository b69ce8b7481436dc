//! Rosenbrock methods with an exact Jacobian, an embedded error estimate and dense output,
//! driven by a coefficient table:
//!
//! - [`RODAS4`]: L-stable, stiffly accurate, order 4 with an embedded order-3 estimate and
//!   order-3 dense output (Hairer & Wanner, *Solving ODEs II*, Sect. IV.7; coefficients of
//!   their code RODAS).
//! - [`RODAS5P`]: L-stable, stiffly accurate, order 5 with an embedded order-4 estimate and
//!   order-4 dense output (G. Steinebach, "Construction of Rosenbrock–Wanner method Rodas5P
//!   and numerical benchmarks within the Julia Differential Equations package", BIT Numerical
//!   Mathematics 63, 27 (2023); coefficients as published there).
//!
//! Both are written in the transformed form: stage `U_i` solves
//! `(I/(hγ) − J) U_i = f(t + c_i h, y0 + Σ_j a_ij U_j) + Σ_j (C_ij/h) U_j + h d_i f_t`, and for
//! these stiffly accurate methods the new state is the last stage's point plus its `U`, which
//! is also the error estimate.

use super::dense::Segment;
use super::{initial_step, wrms, Observer, SolveOptions, SolverStats, Span};
use crate::error::{Error, SolverFailure};
use crate::model::{Model, System};
use nalgebra::{Const, DimMin};
use nalgebra::{SMatrix, SVector};

/// Coefficients of an `S`-stage Rosenbrock method with `R` dense-output rows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tableau<const S: usize, const R: usize> {
    /// Name used in error messages.
    pub name: &'static str,
    /// Order of the embedded error estimate (the step-size controller's exponent is
    /// `1/(order + 1)`).
    pub embedded_order: i32,
    /// The diagonal coefficient γ.
    pub gamma: f64,
    /// `a[i][j]` (j < i): stage `i` is evaluated at `y0 + Σ_j a[i][j] U_j`.
    pub a: [[f64; S]; S],
    /// `c[i][j]` (j < i): `Σ_j (c[i][j]/h) U_j` is added to stage `i`'s right-hand side.
    pub c: [[f64; S]; S],
    /// Stage times as fractions of the step.
    pub nodes: [f64; S],
    /// Coefficients of `h f_t` in each stage (non-autonomous models).
    pub d: [f64; S],
    /// Dense output: `k_r = Σ_j h[r][j] U_j`, and
    /// `y(θ) = (1−θ) y0 + θ (y1 + (1−θ)(k_1 + θ (k_2 + θ k_3)))`.
    pub h: [[f64; S]; R],
}

/// RODAS4 (6 stages, order 4(3), dense output of order 3).
pub const RODAS4: Tableau<6, 2> = Tableau {
    name: "rodas4",
    embedded_order: 3,
    gamma: 0.25,
    a: [
        [0.0; 6],
        [1.544, 0.0, 0.0, 0.0, 0.0, 0.0],
        [
            0.946_678_528_081_582_6,
            0.255_701_169_898_328_4,
            0.0,
            0.0,
            0.0,
            0.0,
        ],
        [
            3.314_825_187_068_521,
            2.896_124_015_972_201,
            0.998_641_913_997_781_7,
            0.0,
            0.0,
            0.0,
        ],
        [
            1.221_224_509_226_641,
            6.019_134_481_288_629,
            12.537_083_329_320_87,
            -0.687_886_036_105_895,
            0.0,
            0.0,
        ],
        [
            1.221_224_509_226_641,
            6.019_134_481_288_629,
            12.537_083_329_320_87,
            -0.687_886_036_105_895,
            1.0,
            0.0,
        ],
    ],
    c: [
        [0.0; 6],
        [-5.6688, 0.0, 0.0, 0.0, 0.0, 0.0],
        [
            -2.430_093_356_833_875,
            -0.206_359_915_709_191_5,
            0.0,
            0.0,
            0.0,
            0.0,
        ],
        [
            -0.107_352_905_815_137_5,
            -9.594_562_251_023_355,
            -20.470_286_148_096_16,
            0.0,
            0.0,
            0.0,
        ],
        [
            7.496_443_313_967_647,
            -10.246_804_314_643_52,
            -33.999_903_528_199_05,
            11.708_908_932_061_6,
            0.0,
            0.0,
        ],
        [
            8.083_246_795_921_522,
            -7.981_132_988_064_893,
            -31.521_594_328_743_71,
            16.319_305_431_231_36,
            -6.058_818_238_834_054,
            0.0,
        ],
    ],
    nodes: [0.0, 0.386, 0.21, 0.63, 1.0, 1.0],
    d: [0.25, -0.1043, 0.1035, -0.036_200_000_000_000_23, 0.0, 0.0],
    h: [
        [
            10.126_235_083_445_86,
            -7.487_995_877_610_167,
            -34.800_918_615_557_47,
            -7.992_771_707_568_823,
            1.025_137_723_295_662,
            0.0,
        ],
        [
            -0.676_280_339_280_125_3,
            6.087_714_651_680_015,
            16.430_843_208_924_78,
            24.767_225_114_183_86,
            -6.594_389_125_716_872,
            0.0,
        ],
    ],
};

/// Rodas5P (8 stages, order 5(4), dense output of order 4).
pub const RODAS5P: Tableau<8, 3> = Tableau {
    name: "rodas5p",
    embedded_order: 4,
    gamma: 0.211_937_563_194_290_14,
    a: [
        [0.0; 8],
        [3.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        [
            2.849_394_379_747_939,
            0.458_422_422_044_639_23,
            0.0,
            0.0,
            0.0,
            0.0,
            0.0,
            0.0,
        ],
        [
            -6.954_028_509_809_101,
            2.489_845_061_869_568,
            -10.358_996_098_473_584,
            0.0,
            0.0,
            0.0,
            0.0,
            0.0,
        ],
        [
            2.802_998_627_562_896_4,
            0.507_246_473_622_820_6,
            -0.398_831_254_177_052_4,
            -0.047_211_872_304_046_41,
            0.0,
            0.0,
            0.0,
            0.0,
        ],
        [
            -7.502_846_399_306_121,
            2.561_846_144_803_919,
            -11.627_539_656_261_098,
            -0.182_687_676_599_422_56,
            0.030_198_172_008_377_946,
            0.0,
            0.0,
            0.0,
        ],
        [
            -7.502_846_399_306_121,
            2.561_846_144_803_919,
            -11.627_539_656_261_098,
            -0.182_687_676_599_422_56,
            0.030_198_172_008_377_946,
            1.0,
            0.0,
            0.0,
        ],
        [
            -7.502_846_399_306_121,
            2.561_846_144_803_919,
            -11.627_539_656_261_098,
            -0.182_687_676_599_422_56,
            0.030_198_172_008_377_946,
            1.0,
            1.0,
            0.0,
        ],
    ],
    c: [
        [0.0; 8],
        [-14.155_112_264_123_755, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        [
            -17.972_960_358_859_52,
            -2.859_693_295_451_294,
            0.0,
            0.0,
            0.0,
            0.0,
            0.0,
            0.0,
        ],
        [
            147.121_502_757_117_16,
            -1.412_214_027_182_13,
            71.689_402_513_023_58,
            0.0,
            0.0,
            0.0,
            0.0,
            0.0,
        ],
        [
            165.435_170_248_716_76,
            -0.459_282_345_649_112_6,
            42.909_383_369_586_03,
            -5.961_986_721_573_306,
            0.0,
            0.0,
            0.0,
            0.0,
        ],
        [
            24.854_864_614_690_072,
            -3.000_922_700_283_218_6,
            47.493_111_002_076_8,
            5.581_419_782_155_812_5,
            -0.661_069_182_524_947_1,
            0.0,
            0.0,
            0.0,
        ],
        [
            30.912_732_140_285_99,
            -3.120_824_334_993_797_4,
            77.799_546_460_708_92,
            34.286_460_282_947_83,
            -19.097_331_116_725_623,
            -28.087_943_162_872_662,
            0.0,
            0.0,
        ],
        [
            37.802_771_233_905_63,
            -3.257_196_902_907_227_6,
            112.269_188_494_963_27,
            66.934_723_124_404_7,
            -40.066_189_370_910_02,
            -54.667_802_628_779_68,
            -9.488_616_523_096_27,
            0.0,
        ],
    ],
    nodes: [
        0.0,
        0.635_812_689_582_870_4,
        0.409_579_839_339_753_5,
        0.976_930_672_506_071_6,
        0.428_840_360_955_866_4,
        1.0,
        1.0,
        1.0,
    ],
    d: [
        0.211_937_563_194_290_14,
        -0.423_875_126_388_580_27,
        -0.338_462_712_623_592_4,
        1.804_645_287_288_273_4,
        2.325_825_639_765_069,
        0.0,
        0.0,
        0.0,
    ],
    h: [
        [
            25.948_786_856_663_858,
            -2.557_972_484_584_623_5,
            10.433_815_404_888_879,
            -2.367_925_102_268_520_4,
            0.524_948_541_321_073,
            1.124_108_831_045_040_4,
            0.427_287_619_443_187_4,
            -0.172_022_210_701_554_93,
        ],
        [
            -9.915_688_506_951_71,
            -0.968_994_459_411_515_4,
            3.043_803_724_297_845_3,
            -24.495_224_566_215_796,
            20.176_138_334_709_044,
            15.980_663_614_246_51,
            -6.789_040_303_419_874,
            -6.710_236_069_923_372,
        ],
        [
            11.419_903_575_922_262,
            2.887_964_514_613_699_4,
            72.921_379_959_960_29,
            80.125_118_346_226_43,
            -52.072_871_366_152_654,
            -59.789_936_252_667_29,
            -0.155_826_842_827_519_13,
            4.883_087_185_713_722,
        ],
    ],
};

/// Integrates `sys` from `(t0, y0)` to `t1` with Rodas5P, handing every accepted step to
/// `observer` (which may stop the integration early). Returns the final time and state.
pub fn integrate<M: Model<N>, const N: usize>(
    sys: &System<'_, M, N>,
    span: Span<N>,
    opts: &SolveOptions,
    stats: &mut SolverStats,
    observer: &mut Observer<'_, N>,
) -> Result<(f64, SVector<f64, N>), Error>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    integrate_with(&RODAS5P, sys, span, opts, stats, observer)
}

/// The point a step starts from: `f`, its Jacobian and `∂f/∂t` there (one forward-mode pass
/// gives the first two, counted as a Jacobian evaluation); kept until a step is accepted.
type Linearisation<const N: usize> = (SVector<f64, N>, SMatrix<f64, N, N>, SVector<f64, N>);

/// One Rosenbrock method working on one system: the step, its dense output and the step-size
/// controller.
struct Stepper<'a, 'm, M: Model<N>, const N: usize, const S: usize, const R: usize> {
    tab: &'a Tableau<S, R>,
    sys: &'a System<'m, M, N>,
    autonomous: bool,
}

impl<M: Model<N>, const N: usize, const S: usize, const R: usize> Stepper<'_, '_, M, N, S, R>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    fn fail(&self, t: f64, y: &SVector<f64, N>, reason: SolverFailure) -> Error {
        Error::Solver {
            method: self.tab.name.to_string(),
            t,
            state: y.iter().copied().collect(),
            reason,
        }
    }

    /// `f`, `J` and `∂f/∂t` at `(t, y)`; a non-finite `f` fails the integration there.
    fn linearise(
        &self,
        t: f64,
        y: &SVector<f64, N>,
        stats: &mut SolverStats,
    ) -> Result<Linearisation<N>, Error> {
        stats.jac_evals += 1;
        let (f, j) = self.sys.f_and_jacobian(t, y);
        let ft = if self.autonomous {
            SVector::zeros()
        } else {
            self.sys.time_derivative(t, y)
        };
        if f.iter().all(|v| v.is_finite()) {
            Ok((f, j, ft))
        } else {
            Err(self.fail(t, y, SolverFailure::NonFinite))
        }
    }

    /// The stages' `U` of one step of length `h` from `(t, y)`, and the new state.
    fn step(
        &self,
        t: f64,
        y: &SVector<f64, N>,
        h: f64,
        (f0, j, ft): &Linearisation<N>,
        stats: &mut SolverStats,
    ) -> Result<([SVector<f64, N>; S], SVector<f64, N>), Error> {
        let tab = self.tab;
        let e = SMatrix::<f64, N, N>::identity() * (1.0 / (h * tab.gamma)) - j;
        stats.lu_decomps += 1;
        // S solves per step with one matrix: form its inverse once and apply it as a
        // matrix-vector product (nalgebra inverts up to 4 × 4 in closed form, larger matrices
        // through their LU factors).
        let Some(inv) = e.try_inverse() else {
            return Err(self.fail(t, y, SolverFailure::Singular));
        };
        let inv_h = 1.0 / h;
        // Each U_j is added into every later stage's point and right-hand side as soon as it
        // is known, so a stage waits for one addition, not for a chain of them.
        let mut u = [SVector::<f64, N>::zeros(); S];
        let mut points = [*y; S];
        let mut sums = [SVector::<f64, N>::zeros(); S];
        for i in 0..S {
            let fi = if i == 0 {
                *f0
            } else {
                self.sys.f(t + tab.nodes[i] * h, &points[i])
            };
            let mut rhs = fi + sums[i];
            if !self.autonomous {
                rhs += ft * (h * tab.d[i]);
            }
            let ui = inv * rhs;
            for k in i + 1..S {
                points[k] += ui * tab.a[k][i];
                sums[k] += ui * (tab.c[k][i] * inv_h);
            }
            u[i] = ui;
        }
        stats.rhs_evals += S - 1;
        // Stiffly accurate: the new state is the last stage's point plus its U, which is also
        // the difference to the embedded solution.
        Ok((u, points[S - 1] + u[S - 1]))
    }

    /// The dense output of an accepted step from `(t, y)` to `(tn, y_new)` with stages `u`.
    fn segment(
        &self,
        (t, y): (f64, SVector<f64, N>),
        (tn, y_new): (f64, SVector<f64, N>),
        u: &[SVector<f64, N>; S],
    ) -> Segment<N> {
        let dense = |r: usize| {
            let mut k = SVector::<f64, N>::zeros();
            for (uj, w) in u.iter().zip(&self.tab.h[r]) {
                k += uj * *w;
            }
            k
        };
        // θ(1−θ)(k1 + θ k2 + θ² k3) in the segment's basis: θ³(1−θ) = θ²(1−θ) − θ²(1−θ)².
        let (k1, k2) = (dense(0), dense(1));
        let k3 = if R == 3 { dense(2) } else { SVector::zeros() };
        Segment {
            t0: t,
            t1: tn,
            y0: y,
            y1: y_new,
            a: k1,
            b: k2 + k3,
            c: -k3,
            d: SVector::zeros(),
            e: SVector::zeros(),
            k: SVector::zeros(),
        }
    }

    /// An accepted state, projected onto the model's feasible region ([`Model::project`]) when
    /// it left it by no more than the error tolerance (a larger excursion is kept as it is:
    /// the caller's feasibility checks then see it).
    fn keep_feasible(
        &self,
        y: &SVector<f64, N>,
        y_new: SVector<f64, N>,
        tol: &super::Tolerances,
    ) -> SVector<f64, N> {
        if self.sys.model.feasible(&y_new, self.sys.p) {
            return y_new;
        }
        match self.sys.model.project(&y_new, self.sys.p) {
            Some(q) if wrms(&(q - y_new), y, &y_new, tol.rtol, tol.atol) <= 1.0 => q,
            _ => y_new,
        }
    }

    /// Step-size factor from an error norm: 0.9·err^(−1/(q+1)) (two square roots for q = 3).
    fn factor(&self, err: f64) -> f64 {
        let q = self.tab.embedded_order;
        if q == 3 {
            0.9 / err.sqrt().sqrt()
        } else {
            0.9 * err.powf(-1.0 / (q as f64 + 1.0))
        }
    }

    /// The next step size after a step of length `h` with error norm `err` (accepted when
    /// `err ≤ 1`): growth at most 6× (none right after a rejection), shrinking at least to 0.9×
    /// and at most to 0.1× on rejection, 0.1× when the step was not finite.
    fn next_h(&self, h: f64, err: f64, last_rejected: bool) -> f64 {
        if err <= 1.0 {
            let fac = self.factor(err.max(1e-10)).clamp(0.2, 6.0);
            h * if last_rejected { fac.min(1.0) } else { fac }
        } else if err.is_finite() {
            h * self.factor(err).clamp(0.1, 0.9)
        } else {
            h * 0.1
        }
    }
}

/// Integrates `sys` from `(t0, y0)` to `t1` with the Rosenbrock method `tab`, handing every
/// accepted step to `observer` (which may stop the integration early). Returns the final time
/// and state.
pub fn integrate_with<M: Model<N>, const N: usize, const S: usize, const R: usize>(
    tab: &Tableau<S, R>,
    sys: &System<'_, M, N>,
    span: Span<N>,
    opts: &SolveOptions,
    stats: &mut SolverStats,
    observer: &mut Observer<'_, N>,
) -> Result<(f64, SVector<f64, N>), Error>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    const { assert!(S >= 2 && (R == 2 || R == 3)) };
    span.check()?;
    let Span { t0, y0, t1 } = span;
    let length = t1 - t0;
    if length <= 0.0 {
        return Ok((t0, y0));
    }
    let stepper = Stepper {
        tab,
        sys,
        autonomous: sys.autonomous(),
    };
    let h_max = opts.h_max.unwrap_or(length).min(length);
    let mut t = t0;
    let mut y = y0;
    let start = stepper.linearise(t, &y, stats)?;
    let mut here = Some(start);
    let mut h = match opts.h0 {
        Some(h) => h.min(h_max),
        None => {
            stats.rhs_evals += 1;
            initial_step(
                sys,
                t,
                &y,
                &start.0,
                tab.embedded_order + 1,
                &opts.tol,
                h_max,
            )
        }
    };
    let mut last_rejected = false;
    let mut steps = 0usize;
    loop {
        if steps >= opts.max_steps {
            let reason = SolverFailure::TooManySteps(opts.max_steps);
            return Err(stepper.fail(t, &y, reason));
        }
        // A step must move t by more than its rounding. A proposal below that is raised to it
        // (the step then shows whether it is too long); only a rejected step that cannot be
        // shortened further is an underflow.
        let h_min = 16.0 * f64::EPSILON * t.abs().max(1.0);
        if h <= h_min {
            if last_rejected {
                return Err(stepper.fail(t, &y, SolverFailure::StepSizeTooSmall(h)));
            }
            h = 2.0 * h_min;
        }
        // Land exactly on t1 (whatever the length of the last step); avoid a sliver of a last
        // step.
        let mut last = false;
        if t + h >= t1 || t + 1.01 * h >= t1 {
            h = t1 - t;
            last = true;
        }
        let lin = match here {
            Some(x) => x,
            None => *here.insert(stepper.linearise(t, &y, stats)?),
        };
        let (u, mut y_new) = stepper.step(t, &y, h, &lin, stats)?;
        steps += 1;
        let err = if y_new.iter().all(|v| v.is_finite()) {
            wrms(&u[S - 1], &y, &y_new, opts.tol.rtol, opts.tol.atol)
        } else {
            f64::INFINITY
        };
        if err <= 1.0 {
            y_new = stepper.keep_feasible(&y, y_new, &opts.tol);
        }
        let h_next = stepper.next_h(h, err, last_rejected);
        if err <= 1.0 {
            let tn = if last { t1 } else { t + h };
            let seg = stepper.segment((t, y), (tn, y_new), &u);
            stats.steps += 1;
            t = tn;
            y = y_new;
            here = None;
            if observer(&seg) || last {
                return Ok((t, y));
            }
            h = h_next.min(h_max);
            last_rejected = false;
        } else {
            stats.rejected += 1;
            h = h_next;
            last_rejected = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::DMatrix;

    /// The residuals of the order conditions up to order 4 (Hairer & Wanner, *Solving ODEs II*,
    /// Table IV.7.1) for the solution that adds `weights` of the stages' U, after undoing the
    /// transformation: Γ⁻¹ = I/γ − C, α = aΓ, b = mΓ, β = α + Γ (strictly lower part).
    fn order_residuals<const S: usize, const R: usize>(
        tab: &Tableau<S, R>,
        weights: &[f64],
    ) -> Vec<f64> {
        let g = tab.gamma;
        let a = DMatrix::from_fn(S, S, |i, j| tab.a[i][j]);
        let c = DMatrix::from_fn(S, S, |i, j| tab.c[i][j]);
        let gamma_inv = DMatrix::identity(S, S) / g - c;
        let big_gamma = gamma_inv.try_inverse().unwrap();
        let alpha = &a * &big_gamma;
        let b = DMatrix::from_row_slice(1, S, weights) * &big_gamma;
        let beta = DMatrix::from_fn(S, S, |i, j| {
            if j < i {
                alpha[(i, j)] + big_gamma[(i, j)]
            } else {
                0.0
            }
        });
        let al: Vec<f64> = (0..S).map(|i| alpha.row(i).sum()).collect();
        let bp: Vec<f64> = (0..S).map(|i| beta.row(i).sum()).collect();
        let sum = |f: &dyn Fn(usize) -> f64| (0..S).map(|i| b[i] * f(i)).sum::<f64>();
        let bb = |i: usize, v: &dyn Fn(usize) -> f64| (0..S).map(|j| beta[(i, j)] * v(j)).sum();
        vec![
            sum(&|_| 1.0) - 1.0,
            sum(&|i| bp[i]) - (0.5 - g),
            sum(&|i| al[i] * al[i]) - 1.0 / 3.0,
            sum(&|i| bb(i, &|j| bp[j])) - (1.0 / 6.0 - g + g * g),
            sum(&|i| al[i].powi(3)) - 0.25,
            sum(&|i| al[i] * (0..S).map(|j| alpha[(i, j)] * bp[j]).sum::<f64>())
                - (1.0 / 8.0 - g / 3.0),
            sum(&|i| bb(i, &|j| al[j] * al[j])) - (1.0 / 12.0 - g / 3.0),
            sum(&|i| bb(i, &|j| bb(j, &|k| bp[k])))
                - (1.0 / 24.0 - g / 2.0 + 1.5 * g * g - g * g * g),
        ]
    }

    /// Weights of the propagated solution (the last stage's point plus its U) and of the
    /// embedded one (the last stage's point).
    fn weights<const S: usize, const R: usize>(tab: &Tableau<S, R>) -> (Vec<f64>, Vec<f64>) {
        let embedded = tab.a[S - 1].to_vec();
        let mut main = embedded.clone();
        main[S - 1] += 1.0;
        (main, embedded)
    }

    #[test]
    fn coefficient_tables_meet_the_order_conditions() {
        // (table, conditions the solution meets, conditions the embedded solution meets)
        let check = |name: &str, res: Vec<f64>, upto: usize| {
            for (k, r) in res.iter().take(upto).enumerate() {
                assert!(
                    r.abs() < 1e-12,
                    "{name}: order condition {} off by {r:e}",
                    k + 1
                );
            }
        };
        let (m, e) = weights(&RODAS4);
        check("rodas4", order_residuals(&RODAS4, &m), 8);
        check("rodas4 embedded", order_residuals(&RODAS4, &e), 4);
        let (m, e) = weights(&RODAS5P);
        check("rodas5p", order_residuals(&RODAS5P, &m), 8);
        check("rodas5p embedded", order_residuals(&RODAS5P, &e), 8);
        // The embedded RODAS4 solution is of order 3 exactly: some fourth-order condition fails.
        let e4 = order_residuals(&RODAS4, &weights(&RODAS4).1);
        assert!(e4[4..].iter().any(|r| r.abs() > 1e-6), "{e4:?}");
        // Stage times are the row sums of α.
        for (name, nodes, a, c, g) in [
            (
                "rodas4",
                RODAS4.nodes.to_vec(),
                rows(&RODAS4.a),
                rows(&RODAS4.c),
                0.25,
            ),
            (
                "rodas5p",
                RODAS5P.nodes.to_vec(),
                rows(&RODAS5P.a),
                rows(&RODAS5P.c),
                RODAS5P.gamma,
            ),
        ] {
            let s = nodes.len();
            let gi = DMatrix::identity(s, s) / g - DMatrix::from_fn(s, s, |i, j| c[i][j]);
            let alpha = DMatrix::from_fn(s, s, |i, j| a[i][j]) * gi.try_inverse().unwrap();
            for (i, node) in nodes.iter().enumerate() {
                let sum = alpha.row(i).sum();
                assert!(
                    (sum - node).abs() < 1e-12,
                    "{name}: c{} = {node}, Σα = {sum}",
                    i + 1
                );
            }
        }
    }

    fn rows<const S: usize>(m: &[[f64; S]; S]) -> Vec<Vec<f64>> {
        m.iter().map(|r| r.to_vec()).collect()
    }
}
