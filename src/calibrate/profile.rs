//! Profile-likelihood intervals: each fitted quantity held at a sequence of values while the
//! others are re-optimised, until `χ²` has risen by the threshold `Δ = s²·t²` (the square of
//! Student's t quantile with `n − k` degrees of freedom, scaled by the reduced `χ²` as the
//! Gauss–Newton intervals are; for a model linear in its parameters the two intervals agree).
//! Unlike the Gauss–Newton interval, which reads the curvature at the optimum, the profile
//! follows `χ²` itself: it is asymmetric where the model is, stops at a bound the data do not
//! push away from, and does not depend on the coordinates the quantity is written in.
//!
//! The walk moves in the quantity's interval coordinate (its logarithm when the fit moves on
//! the logarithm) from the optimum outwards, each point's re-optimisation (L-BFGS with exact
//! gradients, Nelder–Mead if that fails) warm-started from the previous point's; once a
//! point is past the threshold the crossing is bracketed and narrowed by safeguarded
//! interpolation until the bracket is 1/1000 of the distance from the optimum. The end
//! reported is the bracket's outer end, where `χ²` was computed above the threshold.

use super::{local_search, FitParam, Local, Problem};
use crate::error::Error;
use crate::model::Model;
use nalgebra::{Const, DimMin};
use serde::Serialize;

/// One end of a profile interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ProfileEnd {
    /// The end's value: the first computed point past the threshold (within 1/1000 of the
    /// distance from the optimum of the crossing), or the bound.
    pub value: f64,
    /// The profile stays below the threshold up to the bound: the data do not limit the
    /// quantity on this side.
    pub at_bound: bool,
}

/// A fitted quantity's profile-likelihood interval.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Profile {
    /// The lower end (`None` when the walk failed; the reason is among the fit's warnings).
    pub lower: Option<ProfileEnd>,
    /// The upper end (`None` when the walk failed).
    pub upper: Option<ProfileEnd>,
    /// The rise of `χ²` that bounds the interval, `s²·t²`.
    pub threshold: f64,
    /// Profile points computed, each a re-optimisation of the other quantities.
    pub points: usize,
    /// The lowest `χ²` met along the profile minus the fit's; clearly negative means the
    /// fit did not reach the best optimum.
    pub lowest_delta: f64,
}

impl Profile {
    /// The interval as text, the ends joined by `sep`, each with 5 significant digits, an end
    /// the data do not limit marked `(bound)` and a failed one `failed`.
    pub fn interval_text(&self, sep: &str) -> String {
        let end = |e: Option<ProfileEnd>| {
            e.map_or("failed".into(), |e| {
                format!(
                    "{:.4e}{}",
                    e.value,
                    if e.at_bound { " (bound)" } else { "" }
                )
            })
        };
        format!("{}{sep}{}", end(self.lower), end(self.upper))
    }
}

/// A confidence level as a percentage with the digits it needs: 0.95 → `95`, 0.999 → `99.9`.
pub fn level_percent(level: f64) -> String {
    crate::output::significant(100.0 * level, 6)
}

/// Most points on one side before the walk reaches the threshold or the bound.
const MAX_WALK: usize = 40;
/// Most narrowing steps of the bracket around a crossing.
const MAX_NARROW: usize = 30;
/// Iteration limit of each profile point's re-optimisation (warm-started from the previous
/// point's, so a handful usually suffice; one that hits it is reported).
const REFIT_ITERS: u64 = 200;
/// Most objective and gradient evaluations one quantity's profile may spend (both sides):
/// a profile through a knife-edge, where every re-fit fights a discontinuous `χ²`, fails
/// with this reason instead of running for hours.
pub const PROFILE_BUDGET: usize = 20_000;

/// The walk's coordinate of θ: its logarithm when the fit moves on the logarithm.
fn coord(f: &FitParam, th: f64) -> f64 {
    if f.log_scale() {
        th.ln()
    } else {
        th
    }
}

fn value(f: &FitParam, w: f64) -> f64 {
    if f.log_scale() {
        w.exp()
    } else {
        w
    }
}

/// The profile of quantity `j` about the optimum `u` (the optimiser's coordinates) with plain
/// `χ²` `chi2_min`, bounded by a rise of `threshold`; `sd` is the Gauss–Newton standard error
/// (the first step's scale), `max_iters` each re-optimisation's iteration limit.
#[allow(clippy::too_many_arguments)]
pub(super) fn profile<M: Model<N>, const N: usize, const N2: usize>(
    problem: &Problem<'_, M, N>,
    j: usize,
    u: &[f64],
    chi2_min: f64,
    threshold: f64,
    sd: Option<f64>,
    t_quantile: f64,
    max_iters: u64,
) -> (Profile, Vec<String>)
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
    Const<N2>: DimMin<Const<N2>, Output = Const<N2>>,
{
    let f = &problem.fit[j];
    let theta = problem.theta(u);
    let w0 = coord(f, theta[j]);
    let (w_lo, w_hi) = (coord(f, f.lo), coord(f, f.hi));
    let sd_w = sd.map(|s| if f.log_scale() { s / theta[j] } else { s });
    let h0 = sd_w
        .filter(|s| s.is_finite() && *s > 0.0)
        .map_or(0.05 * (w_hi - w_lo), |s| 0.5 * t_quantile * s)
        // Not below 1/10⁴ of the range: a knife-edge fit's standard error can be 1e-10.
        .clamp(1e-4 * (w_hi - w_lo), 0.25 * (w_hi - w_lo));
    let others: Vec<f64> = u
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != j)
        .map(|(_, v)| *v)
        .collect();
    let mut walk = Walk::<M, N, N2> {
        problem,
        j,
        chi2_min,
        threshold,
        max_iters: max_iters.min(REFIT_ITERS),
        points: 0,
        lowest: 0.0,
        capped: 0,
        notes: vec![],
        evals_at_start: problem.cost_evals.get() + problem.gradient_evals.get(),
    };
    let mut warnings = vec![];
    let mut side = |dir: f64, end: f64| {
        let which = if dir < 0.0 { "lower" } else { "upper" };
        let got = walk.side(w0, &others, dir, end, h0);
        for note in walk.notes.drain(..) {
            warnings.push(format!("profile of `{}`, {which} side: {note}", f.name));
        }
        match got {
            Ok(e) => Some(e),
            Err(e) => {
                warnings.push(format!("profile of `{}`, {which} side: {e}", f.name));
                None
            }
        }
    };
    let lower = side(-1.0, w_lo);
    let upper = side(1.0, w_hi);
    if walk.capped > 0 {
        warnings.push(format!(
            "profile of `{}`: {} of {} re-fits stopped at {} iterations; chi2 there may be above the profile, so the interval may be too narrow",
            f.name, walk.capped, walk.points, walk.max_iters
        ));
    }
    let profile = Profile {
        lower,
        upper,
        threshold,
        points: walk.points,
        lowest_delta: walk.lowest,
    };
    if profile.lowest_delta < -0.05 * threshold {
        warnings.push(format!(
            "the profile of `{}` met chi2 lower than the fit's by {:.4}: the fit is not the best optimum; rerun with more --starts",
            f.name, -profile.lowest_delta
        ));
    }
    (profile, warnings)
}

/// The state of one quantity's profile walk.
struct Walk<'p, 'a, M, const N: usize, const N2: usize> {
    problem: &'p Problem<'a, M, N>,
    j: usize,
    chi2_min: f64,
    threshold: f64,
    max_iters: u64,
    points: usize,
    lowest: f64,
    /// Re-fits that stopped at the iteration limit.
    capped: usize,
    /// What the current side's walk should say besides its end.
    notes: Vec<String>,
    /// The problem's evaluation count when the profile began (for the budget).
    evals_at_start: usize,
}

impl<M: Model<N>, const N: usize, const N2: usize> Walk<'_, '_, M, N, N2>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
    Const<N2>: DimMin<Const<N2>, Output = Const<N2>>,
{
    /// `χ²` minimised over the other quantities with quantity `j` at interval coordinate `w`,
    /// from `warm`, minus the fit's; and the others' optimum.
    fn delta(&mut self, w: f64, warm: &[f64]) -> Result<(f64, Vec<f64>), Error> {
        let f = &self.problem.fit[self.j];
        let spent =
            self.problem.cost_evals.get() + self.problem.gradient_evals.get() - self.evals_at_start;
        if spent >= PROFILE_BUDGET {
            return Err(Error::Invalid(format!(
                "stopped after {spent} evaluations of chi2 and its gradient (the budget is {PROFILE_BUDGET}) at `{}` = {}: chi2 is too rough here for the re-fits to settle",
                f.name,
                crate::output::significant(value(f, w), 6)
            )));
        }
        let uj = f.coord_of(value(f, w));
        self.points += 1;
        let chi2 = if warm.is_empty() {
            self.problem.chi2(&self.problem.theta(&[uj]))?
        } else {
            let fixed = Some((self.j, uj));
            let run = |m| local_search::<M, N, N2>(self.problem, m, warm, self.max_iters, fixed);
            let (v, c, iters, _) = run(Local::Lbfgs).or_else(|_| run(Local::NelderMead))?;
            if iters >= self.max_iters {
                self.capped += 1;
            }
            let d = c - self.chi2_min;
            self.lowest = self.lowest.min(d);
            return Ok((d, v));
        };
        let d = chi2 - self.chi2_min;
        self.lowest = self.lowest.min(d);
        Ok((d, vec![]))
    }

    /// One side of the profile: from `w0` in direction `dir` towards the bound `end`.
    fn side(
        &mut self,
        w0: f64,
        others: &[f64],
        dir: f64,
        end: f64,
        h0: f64,
    ) -> Result<ProfileEnd, Error> {
        let f = &self.problem.fit[self.j];
        let room = (end - w0) * dir;
        let at_bound = |w: f64| ProfileEnd {
            value: value(f, w).clamp(f.lo, f.hi),
            at_bound: true,
        };
        if room <= 1e-12 * (1.0 + end.abs()) {
            return Ok(at_bound(end));
        }
        let mut h = h0.min(room);
        let (mut a_w, mut a_d, mut a_v) = (w0, 0.0, others.to_vec());
        let mut bracket = None;
        for _ in 0..MAX_WALK {
            let w = if (end - (a_w + dir * h)) * dir <= 0.0 {
                end
            } else {
                a_w + dir * h
            };
            let (d, v) = self.delta(w, &a_v)?;
            if d >= self.threshold {
                bracket = Some((w, d, v));
                break;
            }
            if w == end {
                return Ok(at_bound(end));
            }
            // The next step from a quadratic through the optimum: Δ grows as the square
            // of the distance; at most 4 times longer, at least as long.
            let dist = (w - w0).abs();
            let want = if d > 0.0 {
                dist * (self.threshold / d).sqrt() * 1.05 - dist
            } else {
                2.0 * h
            };
            h = want.clamp(h, 4.0 * h);
            (a_w, a_d, a_v) = (w, d, v);
        }
        let Some((mut b_w, mut b_d, _)) = bracket else {
            return Err(Error::Invalid(format!(
                "chi2 did not rise by {:.4} within {MAX_WALK} steps",
                self.threshold
            )));
        };
        let narrow = |a: f64, b: f64| (b - a).abs() <= 1e-3 * (b - w0).abs();
        for step in 0..MAX_NARROW {
            if narrow(a_w, b_w) {
                break;
            }
            // Linear interpolation of Δ − threshold, kept inside the middle 80 %, alternating
            // with bisection (interpolation alone can creep along a curved Δ).
            let s = if step % 2 == 1 {
                0.5
            } else {
                ((self.threshold - a_d) / (b_d - a_d)).clamp(0.1, 0.9)
            };
            let m = a_w + s * (b_w - a_w);
            let (d, v) = self.delta(m, &a_v)?;
            if d >= self.threshold {
                (b_w, b_d) = (m, d);
            } else {
                (a_w, a_d, a_v) = (m, d, v);
            }
        }
        if !narrow(a_w, b_w) {
            self.notes.push(format!(
                "the crossing lies between {} and {}, not narrowed to 1/1000 in {MAX_NARROW} steps (chi2 is rough there); the outer end is reported",
                crate::output::significant(value(f, a_w.min(b_w)), 6),
                crate::output::significant(value(f, a_w.max(b_w)), 6)
            ));
        }
        Ok(ProfileEnd {
            value: value(f, b_w).clamp(f.lo, f.hi),
            at_bound: false,
        })
    }
}
