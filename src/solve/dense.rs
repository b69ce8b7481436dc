//! Dense output: one polynomial of degree at most 7 per accepted step (the method's own
//! interpolant), and exact event location on it.

use nalgebra::SVector;

/// One accepted step `[t0, t1]` with its interpolant
/// `y(θ) = (1−θ)·y0 + θ·(y1 + (1−θ)·(a + θ·b)) + θ²(1−θ)²·(c + θ·d) + θ³(1−θ)³·(e + θ·k)`,
/// `θ = (t − t0)/(t1 − t0)`.
///
/// Rosenbrock steps fill `a, b, c` from the method's own dense-output stages (the rest zero;
/// order 4 for Rodas5P, 3 for RODAS4); explicit steps use the Hermite interpolant of degree 7 through values and first,
/// second and third derivatives at both ends (order 7), which has the same form.
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
    /// Third interpolation coefficient (quintic part).
    pub c: SVector<f64, N>,
    /// Fourth interpolation coefficient (quintic part).
    pub d: SVector<f64, N>,
    /// Fifth interpolation coefficient (septic part).
    pub e: SVector<f64, N>,
    /// Sixth interpolation coefficient (septic part).
    pub k: SVector<f64, N>,
}

impl<const N: usize> Segment<N> {
    /// The Hermite segment of degree 7 through `[y, f, g, j]` at `t0` and at `t1`, where `f`,
    /// `g` and `j` are the first, second and third time derivatives of `y`.
    pub fn hermite(
        t0: f64,
        t1: f64,
        left: [SVector<f64, N>; 4],
        right: [SVector<f64, N>; 4],
    ) -> Self {
        let [y0, f0, g0, j0] = left;
        let [y1, f1, g1, j1] = right;
        let h = t1 - t0;
        let delta = y1 - y0;
        let a = f0 * h - delta;
        let b = delta * 2.0 - (f0 + f1) * h;
        // The cubic's second θ-derivatives at the ends are 2(b − a) and −2a − 4b; the term
        // θ²(1−θ)²(c + θd) keeps values and slopes and corrects them to h²g.
        let h2 = h * h;
        let c = (g0 * h2 - (b - a) * 2.0) * 0.5;
        let d = (g1 * h2 + a * 2.0 + b * 4.0) * 0.5 - c;
        // Third θ-derivatives of that quintic: 6·p3 at 0 and 6·p3 + 24·p4 + 60·p5 at 1; the
        // term θ³(1−θ)³(e + θk) keeps everything below and adds 6e at 0 and −6(e + k) at 1.
        let p3 = d - b - c * 2.0;
        let p4 = c - d * 2.0;
        let h3 = h2 * h;
        let third0 = p3 * 6.0;
        let third1 = p3 * 6.0 + p4 * 24.0 + d * 60.0;
        let e = (j0 * h3 - third0) / 6.0;
        let k = (third1 - j1 * h3) / 6.0 - e;
        // Higher derivatives by AD can overflow where populations are near the smallest normal
        // numbers: drop the orders that are not finite (quintic, or cubic through values and
        // slopes) rather than hand NaN to the output.
        let finite = |v: &[&SVector<f64, N>]| v.iter().all(|x| x.iter().all(|c| c.is_finite()));
        let z = SVector::<f64, N>::zeros();
        let (c, d, e, k) = if !finite(&[&c, &d]) {
            (z, z, z, z)
        } else if !finite(&[&e, &k]) {
            (c, d, z, z)
        } else {
            (c, d, e, k)
        };
        Self {
            t0,
            t1,
            y0,
            y1,
            a,
            b,
            c,
            d,
            e,
            k,
        }
    }

    /// A segment from `t0` to `t1` holding a constant state (a span too short to resolve).
    pub fn constant(t0: f64, t1: f64, y: SVector<f64, N>) -> Self {
        Self {
            t1,
            ..Self::point(t0, y)
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
            c: z,
            d: z,
            e: z,
            k: z,
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
        let s = 1.0 - th;
        let ts = th * s;
        self.y0 * s
            + (self.y1 + (self.a + self.b * th) * s) * th
            + (self.c + self.d * th) * (ts * ts)
            + (self.e + self.k * th) * (ts * ts * ts)
    }

    /// Component `i` at fraction `θ` of the step.
    pub fn component(&self, i: usize, th: f64) -> f64 {
        if th == 1.0 {
            return self.y1[i];
        }
        let s = 1.0 - th;
        self.y0[i] * s
            + (self.y1[i] + (self.a[i] + self.b[i] * th) * s) * th
            + (self.c[i] + self.d[i] * th) * (th * th * s * s)
            + (self.e[i] + self.k[i] * th) * (th * th * th * s * s * s)
    }

    /// Time at fraction `θ` of the step.
    pub fn time(&self, th: f64) -> f64 {
        if th == 1.0 {
            self.t1
        } else {
            self.t0 + th * (self.t1 - self.t0)
        }
    }

    /// Coefficients of `dy_i/dθ = Σ_j q_j θ^j` (degree 6).
    fn slope_coeffs(&self, i: usize) -> [f64; 7] {
        let (a, b, c) = (self.a[i], self.b[i], self.c[i]);
        let (d, e, k) = (self.d[i], self.e[i], self.k[i]);
        // y = y0 + p1 θ + … + p7 θ⁷
        let p = [
            self.y1[i] - self.y0[i] + a,
            b - a + c,
            -b + d - 2.0 * c + e,
            c - 2.0 * d + k - 3.0 * e,
            d + 3.0 * e - 3.0 * k,
            3.0 * k - e,
            -k,
        ];
        std::array::from_fn(|j| (j + 1) as f64 * p[j])
    }

    /// Interior stationary points `θ ∈ (0, 1)` of component `i`, in increasing order.
    pub fn stationary(&self, i: usize) -> Roots {
        let q = self.slope_coeffs(i);
        let mut roots = if q[3..].iter().all(|v| *v == 0.0) {
            quadratic_roots(q[2], q[1], q[0])
        } else if bernstein_one_sign(&q) {
            // Every Bernstein coefficient on [0, 1] has one sign: no stationary point inside.
            Roots::default()
        } else {
            // Higher-degree slope: bracket sign changes on a fine grid, then refine.
            let slope = |th: f64| q.iter().rev().fold(0.0, |acc, c| acc * th + c);
            let m = 64;
            let mut r = Roots::default();
            let mut prev = (0.0, slope(0.0));
            for k in 1..=m {
                let th = k as f64 / m as f64;
                let v = slope(th);
                if (prev.1 < 0.0) != (v < 0.0) {
                    let up = v >= 0.0;
                    let g = |x: f64| if up { slope(x) } else { -slope(x) };
                    r.push(increasing_root(g, prev.0, th));
                }
                prev = (th, v);
            }
            r
        };
        roots.retain(|r| r > 0.0 && r < 1.0);
        roots.sort();
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
                return Some(increasing_root(g, lo, hi));
            }
        }
        None
    }
}

/// Whether the polynomial `Σ q_j θ^j` (degree 6) has Bernstein coefficients of one strict sign
/// on `[0, 1]`, which proves it has no root there (the polynomial is a convex combination of
/// them).
fn bernstein_one_sign(q: &[f64; 7]) -> bool {
    const N: usize = 6;
    // binom[n][k]
    const C: [f64; 7] = [1.0, 6.0, 15.0, 20.0, 15.0, 6.0, 1.0];
    let binom = |n: usize, k: usize| -> f64 {
        let mut r = 1.0;
        for i in 0..k {
            r = r * (n - i) as f64 / (i + 1) as f64;
        }
        r
    };
    let mut sign = 0.0;
    for k in 0..=N {
        let mut b = 0.0;
        for (j, qj) in q.iter().enumerate().take(k + 1) {
            b += binom(k, j) / C[j] * qj;
        }
        if b == 0.0 || (sign != 0.0 && b.signum() != sign) {
            return false;
        }
        sign = b.signum();
    }
    true
}

/// Real roots of `a·x² + b·x + c`, computed without cancellation.
fn quadratic_roots(a: f64, b: f64, c: f64) -> Roots {
    let mut r = Roots::default();
    let scale = a.abs().max(b.abs()).max(c.abs());
    if scale == 0.0 {
        return r;
    }
    if a.abs() <= 1e-14 * scale {
        if b != 0.0 {
            r.push(-c / b);
        }
        return r;
    }
    let disc = b * b - 4.0 * a * c;
    if disc < 0.0 {
        return r;
    }
    let q = -0.5 * (b + b.signum() * disc.sqrt());
    r.push(q / a);
    if q != 0.0 {
        r.push(c / q);
    }
    r
}

/// A few roots on the stack (a degree-6 polynomial has at most 6 in (0, 1)).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Roots {
    len: usize,
    r: [f64; 8],
}

impl Roots {
    fn push(&mut self, v: f64) {
        if self.len < self.r.len() {
            self.r[self.len] = v;
            self.len += 1;
        }
    }

    fn retain(&mut self, keep: impl Fn(f64) -> bool) {
        let mut n = 0;
        for k in 0..self.len {
            if keep(self.r[k]) {
                self.r[n] = self.r[k];
                n += 1;
            }
        }
        self.len = n;
    }

    fn sort(&mut self) {
        self.r[..self.len].sort_by(f64::total_cmp);
    }
}

impl std::ops::Deref for Roots {
    type Target = [f64];
    fn deref(&self) -> &[f64] {
        &self.r[..self.len]
    }
}

impl IntoIterator for Roots {
    type Item = f64;
    type IntoIter = std::iter::Take<std::array::IntoIter<f64, 8>>;
    fn into_iter(self) -> Self::IntoIter {
        self.r.into_iter().take(self.len)
    }
}

/// Root of an increasing-through-zero function on `[lo, hi]` (g(lo) < 0 ≤ g(hi)) to full
/// precision by the crate's root finder ([`crate::roots::illinois`]): the upper end of the final
/// bracket, where g ≥ 0.
fn increasing_root(g: impl Fn(f64) -> f64, lo: f64, hi: f64) -> f64 {
    let tol = crate::roots::Tolerance {
        abs: 0.0,
        rel: 4.0 * f64::EPSILON,
    };
    crate::roots::illinois((lo, hi), (g(lo), g(hi)), tol, |x| Some(((), g(x))))
        .map_or(hi, |r| r.bracket.1)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degree_seven_hermite_reproduces_a_degree_seven_polynomial() {
        // y = t⁷ − 2t³ + 1 on [0.5, 1.7], with its exact derivatives at both ends.
        let y = |t: f64| t.powi(7) - 2.0 * t.powi(3) + 1.0;
        let ders = |t: f64| {
            [
                SVector::from([y(t)]),
                SVector::from([7.0 * t.powi(6) - 6.0 * t * t]),
                SVector::from([42.0 * t.powi(5) - 12.0 * t]),
                SVector::from([210.0 * t.powi(4) - 12.0]),
            ]
        };
        let s = Segment::<1>::hermite(0.5, 1.7, ders(0.5), ders(1.7));
        for k in 0..=24 {
            let t = 0.5 + 1.2 * k as f64 / 24.0;
            assert!((s.eval(t)[0] - y(t)).abs() < 1e-12, "at {t}");
        }
        // Stationary point of y: 7t⁴ = 6 → t = (6/7)^{1/4}.
        let th = s.stationary(0);
        assert_eq!(th.len(), 1);
        assert!((s.time(th[0]) - (6.0f64 / 7.0).powf(0.25)).abs() < 1e-12);
        // y = (t − 1)(t⁶ + t⁵ + t⁴ + t³ − t² − t − 1): it crosses 0 going up at t = 1 exactly
        // (y'(1) = 1), after the minimum, and nowhere else going up.
        let th_up = s.crossing(0, 0.0, true, 0.0).expect("y crosses 0 going up");
        let t_up = s.time(th_up);
        assert!((t_up - 1.0).abs() < 1e-12, "up-crossing at {t_up}");
        assert_eq!(s.crossing(0, 0.0, true, th_up + 1e-3), None);
        // Going down it crosses 0 once, before the minimum, at the sextic's root in (0.5, 1):
        // y there is 0 and y changes sign across it.
        let tm = (6.0f64 / 7.0).powf(0.25);
        let th_down = s
            .crossing(0, 0.0, false, 0.0)
            .expect("y crosses 0 going down");
        let t_down = s.time(th_down);
        assert!(t_down > 0.5 && t_down < tm, "down-crossing at {t_down}");
        assert!(y(t_down).abs() < 1e-12, "y({t_down}) = {}", y(t_down));
        assert!(y(t_down - 1e-9) > 0.0 && y(t_down + 1e-9) < 0.0);
        assert_eq!(s.crossing(0, 0.0, false, th_down + 1e-3), None);
        // A level crossed on the increasing part only: y = 10 going up, y(t) = 10 there, and
        // never going down.
        let t10 = s.time(s.crossing(0, 10.0, true, 0.0).expect("y reaches 10"));
        assert!(
            t10 > 1.0 && t10 < 1.7 && (y(t10) - 10.0).abs() < 1e-11,
            "{t10}"
        );
        assert_eq!(s.crossing(0, 10.0, false, 0.0), None);
    }

    #[test]
    fn bernstein_test_never_hides_a_root() {
        // Random degree-6 polynomials: if the test says "no root in [0, 1]", a fine scan agrees.
        let mut state = 12345u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        };
        let mut certified = 0;
        for _ in 0..2000 {
            let q: [f64; 7] = std::array::from_fn(|_| next());
            if bernstein_one_sign(&q) {
                certified += 1;
                let p = |t: f64| q.iter().rev().fold(0.0, |a, c| a * t + c);
                let s0 = p(0.0).signum();
                assert!((0..=1000).all(|k| p(k as f64 / 1000.0).signum() == s0));
            }
        }
        // The scan above only tests something if some polynomials were certified.
        assert!(certified >= 500, "only {certified} of 2000 certified");
        // A constant term larger than the sum of the others' magnitudes: every Bernstein
        // coefficient b_k = q0 + Σ_{j≥1} C(k,j)/C(6,j) q_j has the sign of q0 (the weights are
        // at most 1), so the test must say "one sign", for q and for −q.
        for _ in 0..200 {
            let mut q: [f64; 7] = std::array::from_fn(|_| next());
            q[0] = q[1..].iter().map(|v| v.abs()).sum::<f64>() + 1e-3 * (next() + 1.5);
            assert!(bernstein_one_sign(&q), "{q:?}");
            assert!(bernstein_one_sign(&q.map(|v| -v)), "{q:?}");
        }
        // A quadratic q0 + q1 θ + q2 θ² has degree-6 Bernstein coefficients
        // b_k = q0 + (k/6) q1 + k(k−1)/30 q2. (θ − 1/2)² + 0.01 has no root but a dip:
        // b_2 = 0.26 − 1/3 + 1/15 < 0, so the test declines; (θ − 1/2)² + 0.1 has
        // b_k = 0.35 − k/6 + k(k−1)/30 ≥ 0.05 > 0 for every k, so it certifies.
        assert!(!bernstein_one_sign(&[0.26, -1.0, 1.0, 0.0, 0.0, 0.0, 0.0]));
        assert!(bernstein_one_sign(&[0.35, -1.0, 1.0, 0.0, 0.0, 0.0, 0.0]));
        assert!(!bernstein_one_sign(&[-0.1, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]));
    }

    #[test]
    fn right_continuous_lookup_returns_the_state_after_a_jump() {
        let a = SVector::from([1.0]);
        let b = SVector::from([0.5]);
        let f = SVector::from([0.0]);
        let d = Dense {
            segments: vec![
                Segment::hermite(0.0, 1.0, [a, f, f, f], [a, f, f, f]),
                Segment::point(1.0, b),
                Segment::hermite(1.0, 2.0, [b, f, f, f], [b, f, f, f]),
            ],
        };
        assert_eq!(d.eval(0.999).unwrap(), a);
        assert_eq!(d.eval(1.0).unwrap(), b);
        assert_eq!(d.eval(2.0).unwrap(), b);
    }
}
