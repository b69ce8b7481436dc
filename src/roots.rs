//! One bracketing root finder for the whole crate: Illinois regula falsi (a secant step kept
//! inside the bracket, with the stale end's value halved when one end is kept twice), with steps
//! kept half a tolerance away from the ends so that the bracket closes once one end has
//! converged. Utility layer. Used for event location on the dense output, Student's t
//! quantiles, and every sign change of a test function along a continuation (folds, Hopf
//! points, Bogdanov–Takens and Bautin points).

/// When a bracket `[lo, hi]` is narrow enough: `hi − lo ≤ abs + rel·max(|lo|, |hi|)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    /// Absolute width.
    pub abs: f64,
    /// Width relative to the larger end.
    pub rel: f64,
}

/// A zero located in a bracket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Root<P> {
    /// The last point evaluated (the newest estimate of the zero).
    pub x: f64,
    /// The function's value there.
    pub g: f64,
    /// What the evaluation returned with it (for example the curve point there).
    pub value: P,
    /// The final bracket `(lo, hi)`, `lo ≤ hi`; the function's signs at its ends differ (or
    /// it vanished, and then `lo = hi = x`).
    pub bracket: (f64, f64),
    /// Function evaluations made.
    pub evals: usize,
}

/// Most evaluations one search makes.
pub const MAX_EVALS: usize = 200;

/// A zero of `g` in `[a, b]` from the values `ga = g(a)`, `gb = g(b)`, which must not have the
/// same sign (`None` if they do). `eval(x)` returns `g(x)` with a payload, or `None` when `g`
/// cannot be evaluated there (the search then stops with `None`). Stops when `g` vanishes, the
/// bracket meets `tol`, or after [`MAX_EVALS`] evaluations; `None` only when nothing was
/// evaluated or an evaluation failed.
pub fn illinois<P>(
    (a, b): (f64, f64),
    (ga, gb): (f64, f64),
    tol: Tolerance,
    mut eval: impl FnMut(f64) -> Option<(P, f64)>,
) -> Option<Root<P>> {
    if ga * gb > 0.0 || ga.is_nan() || gb.is_nan() {
        return None;
    }
    let (mut lo, mut glo, mut hi, mut ghi) = if a <= b {
        (a, ga, b, gb)
    } else {
        (b, gb, a, ga)
    };
    let mut last: Option<Root<P>> = None;
    let mut side = 0i8;
    for evals in 1..=MAX_EVALS {
        // The secant step, kept at least half a tolerance inside the bracket: once one end has
        // converged, a step just past it closes the bracket (a secant step would land on it).
        let half = 0.5 * (tol.abs + tol.rel * lo.abs().max(hi.abs()));
        let mut x = (lo * ghi - hi * glo) / (ghi - glo);
        if x.is_nan() {
            x = 0.5 * (lo + hi);
        }
        if hi - lo > 2.0 * half {
            x = x.clamp(lo + half, hi - half);
        } else {
            x = 0.5 * (lo + hi);
        }
        let (value, g) = eval(x)?;
        if g == 0.0 {
            lo = x;
            hi = x;
        } else if (g < 0.0) == (glo < 0.0) && glo != 0.0 {
            lo = x;
            glo = g;
            if side == 1 {
                ghi *= 0.5;
            }
            side = 1;
        } else {
            hi = x;
            ghi = g;
            if side == -1 {
                glo *= 0.5;
            }
            side = -1;
        }
        let done = g == 0.0 || hi - lo <= tol.abs + tol.rel * lo.abs().max(hi.abs());
        last = Some(Root {
            x,
            g,
            value,
            bracket: (lo, hi),
            evals,
        });
        if done {
            break;
        }
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(g: impl Fn(f64) -> f64) -> impl FnMut(f64) -> Option<((), f64)> {
        move |x| Some(((), g(x)))
    }

    /// The root lies in the final bracket (to rounding of g), the bracket meets the tolerance,
    /// and the estimate lies in it; at most `max_evals` evaluations.
    fn check(r: &Root<()>, root: f64, max_evals: usize) {
        let (lo, hi) = r.bracket;
        let ulp = 2.0 * f64::EPSILON * root.abs();
        assert!(
            lo - ulp <= root && root <= hi + ulp,
            "{root} not in [{lo}, {hi}]"
        );
        assert!(hi - lo <= 4.0 * f64::EPSILON * hi.abs(), "[{lo}, {hi}]");
        assert!(lo <= r.x && r.x <= hi);
        assert!(r.evals <= max_evals, "{} evaluations", r.evals);
    }

    #[test]
    fn textbook_roots_to_full_precision_in_few_evaluations() {
        let tight = Tolerance {
            abs: 0.0,
            rel: 4.0 * f64::EPSILON,
        };
        // Newton's cubic x³ − 2x − 5 and cos x = x (the Dottie number).
        let cubic = |x: f64| x * x * x - 2.0 * x - 5.0;
        let r = illinois((2.0, 3.0), (cubic(2.0), cubic(3.0)), tight, plain(cubic)).unwrap();
        check(&r, 2.094_551_481_542_326_5, 12);
        let dottie = |x: f64| x.cos() - x;
        let r = illinois((1.0, 0.0), (dottie(1.0), dottie(0.0)), tight, plain(dottie)).unwrap();
        check(&r, 0.739_085_133_215_160_6, 12);
        // A function that plain regula falsi crawls along (one end never moves): Illinois
        // halves the stale value and still converges fast. Bisection would take about 50.
        let steep = |x: f64| x.powi(10) - 0.5;
        let r = illinois((0.0, 1.0), (steep(0.0), steep(1.0)), tight, plain(steep)).unwrap();
        check(&r, 0.5f64.powf(0.1), 20);
    }

    #[test]
    fn brackets_without_a_sign_change_or_failed_evaluations_give_none() {
        let tol = Tolerance {
            abs: 1e-12,
            rel: 0.0,
        };
        assert!(illinois((0.0, 1.0), (1.0, 2.0), tol, plain(|x| x + 1.0)).is_none());
        assert!(illinois((0.0, 1.0), (-1.0, 1.0), tol, |_| None::<((), f64)>).is_none());
        // An exact zero stops the search with a collapsed bracket.
        let r = illinois((-1.0, 3.0), (-1.0, 3.0), tol, plain(|x| x)).unwrap();
        assert_eq!((r.x, r.g, r.bracket), (0.0, 0.0, (0.0, 0.0)));
        // A step function: bisection safeguards keep the bracket around the jump.
        let step = |x: f64| if x < 0.3 { -1.0 } else { 1.0 };
        let r = illinois((0.0, 1.0), (-1.0, 1.0), tol, plain(step)).unwrap();
        assert!(r.bracket.0 < 0.3 && r.bracket.1 >= 0.3 && r.bracket.1 - r.bracket.0 <= 1e-12);
    }
}
