//! Dense output: one cubic per accepted step, and exact event location on it.

use nalgebra::SVector;

/// One accepted step `[t0, t1]` with its interpolant
/// `y(θ) = (1−θ)·y0 + θ·(y1 + (1−θ)·(a + θ·b))`, `θ = (t − t0)/(t1 − t0)`.
///
/// Rosenbrock steps fill `a, b` from the method's own dense-output stages; explicit steps use
/// the cubic Hermite interpolant of `(y0, f0, y1, f1)`, which has the same form.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Segment<const N: usize> {
    /// Start of the step.
    pub t0: f64,
    /// End of the step.
    pub t1: f64,
    /// State at `t0`.
    pub y0: SVector<f64, N>,
    /// State at `t1`.
    pub y1: SVector<f64, N>,
    /// First interpolation coefficient.
    pub a: SVector<f64, N>,
    /// Second interpolation coefficient.
    pub b: SVector<f64, N>,
}

impl<const N: usize> Segment<N> {
    /// The cubic Hermite segment through `(t0, y0, f0)` and `(t1, y1, f1)`.
    pub fn hermite(
        t0: f64,
        t1: f64,
        y0: SVector<f64, N>,
        f0: SVector<f64, N>,
        y1: SVector<f64, N>,
        f1: SVector<f64, N>,
    ) -> Self {
        let h = t1 - t0;
        let d = y1 - y0;
        Self {
            t0,
            t1,
            y0,
            y1,
            a: f0 * h - d,
            b: d * 2.0 - (f0 + f1) * h,
        }
    }

    /// A segment of zero length holding a constant state (used at jumps).
    pub fn point(t: f64, y: SVector<f64, N>) -> Self {
        let z = SVector::zeros();
        Self {
            t0: t,
            t1: t,
            y0: y,
            y1: y,
            a: z,
            b: z,
        }
    }

    fn theta(&self, t: f64) -> f64 {
        let h = self.t1 - self.t0;
        if h <= 0.0 {
            0.0
        } else {
            ((t - self.t0) / h).clamp(0.0, 1.0)
        }
    }

    /// Interpolated state at `t` (clamped to the segment).
    pub fn eval(&self, t: f64) -> SVector<f64, N> {
        let th = self.theta(t);
        if th == 1.0 {
            return self.y1;
        }
        self.y0 * (1.0 - th) + (self.y1 + (self.a + self.b * th) * (1.0 - th)) * th
    }

    /// Component `i` at fraction `θ` of the step.
    pub fn component(&self, i: usize, th: f64) -> f64 {
        if th == 1.0 {
            return self.y1[i];
        }
        self.y0[i] * (1.0 - th) + (self.y1[i] + (self.a[i] + self.b[i] * th) * (1.0 - th)) * th
    }

    /// Time at fraction `θ` of the step.
    pub fn time(&self, th: f64) -> f64 {
        if th == 1.0 {
            self.t1
        } else {
            self.t0 + th * (self.t1 - self.t0)
        }
    }

    /// Coefficients of `dy_i/dθ = c0 + c1·θ + c2·θ²`.
    fn slope_coeffs(&self, i: usize) -> (f64, f64, f64) {
        let (a, b) = (self.a[i], self.b[i]);
        (self.y1[i] - self.y0[i] + a, 2.0 * (b - a), -3.0 * b)
    }

    /// Interior stationary points `θ ∈ (0, 1)` of component `i`, in increasing order.
    pub fn stationary(&self, i: usize) -> Vec<f64> {
        let (c0, c1, c2) = self.slope_coeffs(i);
        let mut roots = quadratic_roots(c2, c1, c0);
        roots.retain(|r| *r > 0.0 && *r < 1.0);
        roots.sort_by(f64::total_cmp);
        roots
    }

    /// First `θ ∈ [th_min, 1]` where component `i` crosses `level` going in direction `up`
    /// (`true`: from below to at-or-above), located to machine precision.
    pub fn crossing(&self, i: usize, level: f64, up: bool, th_min: f64) -> Option<f64> {
        // Split at stationary points: the cubic is monotone on each piece.
        let mut knots = vec![th_min];
        knots.extend(self.stationary(i).into_iter().filter(|t| *t > th_min));
        knots.push(1.0);
        let g = |th: f64| {
            let v = self.component(i, th) - level;
            if up {
                v
            } else {
                -v
            }
        };
        for w in knots.windows(2) {
            let (lo, hi) = (w[0], w[1]);
            let (glo, ghi) = (g(lo), g(hi));
            if glo < 0.0 && ghi >= 0.0 {
                return Some(bisect_monotone(g, lo, hi));
            }
        }
        None
    }
}

/// Real roots of `a·x² + b·x + c`, computed without cancellation.
fn quadratic_roots(a: f64, b: f64, c: f64) -> Vec<f64> {
    let scale = a.abs().max(b.abs()).max(c.abs());
    if scale == 0.0 {
        return vec![];
    }
    if a.abs() <= 1e-14 * scale {
        return if b != 0.0 { vec![-c / b] } else { vec![] };
    }
    let disc = b * b - 4.0 * a * c;
    if disc < 0.0 {
        return vec![];
    }
    let q = -0.5 * (b + b.signum() * disc.sqrt());
    let mut r = vec![q / a];
    if q != 0.0 {
        r.push(c / q);
    }
    r
}

/// Root of an increasing-through-zero function on `[lo, hi]` (g(lo) < 0 ≤ g(hi)) by
/// safeguarded regula falsi (Illinois), then bisection to full precision.
fn bisect_monotone(g: impl Fn(f64) -> f64, mut lo: f64, mut hi: f64) -> f64 {
    let (mut glo, mut ghi) = (g(lo), g(hi));
    let mut side = 0i8;
    for _ in 0..200 {
        if hi - lo <= 4.0 * f64::EPSILON * hi.abs().max(1e-300) {
            break;
        }
        let mut x = (lo * ghi - hi * glo) / (ghi - glo);
        if !(x > lo && x < hi) {
            x = 0.5 * (lo + hi);
        }
        let gx = g(x);
        if gx >= 0.0 {
            hi = x;
            ghi = gx;
            if side == 1 {
                glo *= 0.5;
            }
            side = 1;
        } else {
            lo = x;
            glo = gx;
            if side == -1 {
                ghi *= 0.5;
            }
            side = -1;
        }
    }
    hi
}

/// A continuous trajectory: accepted steps in time order (zero-length segments mark jumps).
#[derive(Debug, Clone, Default)]
pub struct Dense<const N: usize> {
    /// The steps.
    pub segments: Vec<Segment<N>>,
}

impl<const N: usize> Dense<N> {
    /// Start time.
    pub fn t_start(&self) -> Option<f64> {
        self.segments.first().map(|s| s.t0)
    }

    /// End time.
    pub fn t_end(&self) -> Option<f64> {
        self.segments.last().map(|s| s.t1)
    }

    /// The state at `t`, right-continuous: at a jump it gives the state after the jump.
    ///
    /// Times outside the covered span are clamped to its ends.
    pub fn eval(&self, t: f64) -> Option<SVector<f64, N>> {
        let segs = &self.segments;
        if segs.is_empty() {
            return None;
        }
        // Last segment whose start is <= t.
        let k = segs.partition_point(|s| s.t0 <= t).saturating_sub(1);
        Some(segs[k].eval(t))
    }
}
