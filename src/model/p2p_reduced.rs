//! The reference model's equilibria by a reduction to one unknown, the utilisation ρ.
//!
//! At an equilibrium with `N > 0` every switch is a function of ρ and of the ratio `t = S/N`:
//! `dS/dt = 0` reads `γ·p·u(t) = (δs + φ(ρ) + ηcs)·t`, whose left side falls and right side
//! rises in `t`, so it fixes `t(ρ)` uniquely; then the definition of ρ and the conservation law
//! (`λ·O = δ·N + δs·S + θ·Q`) are two linear equations for `N` and `Q`. What is left is one
//! function of ρ, the peers' net rate per peer `h(ρ) = (dN/dt)/N`, whose zeros with `N > 0` and
//! `Q ≥ 0` are the equilibria. ρ is bounded at an equilibrium ([`Reduced::range`]), so a scan of
//! `h` on a fine logarithmic grid over that range brackets every zero that changes sign between
//! grid points, and a local minimum of `|h|` between samples is searched for a pair of zeros
//! close together (near a fold). With `N = 0` there is no equilibrium: `dS/dt = −(δs + φ +
//! ηcs)·S` forces `S = 0`, `dN/dt = r·Q·s` then `Q = 0` (ρ is finite with `S0 > 0`), and the
//! conservation law cannot hold with `λ > 0`.
//!
//! The reduction needs `λ, δs, r, a, κ, S0, γ, p, σ > 0`; the search uses the generic one
//! otherwise (continua of equilibria and states on the edge of the simplex appear there).

use super::p2p::P2pIdx;
use super::safe::hill_ratio;
use crate::roots::{illinois, Tolerance};
use nalgebra::SVector;

/// Ratio of neighbouring utilisations in the scan: 1.05, about 47 points a decade.
const GRID_STEP: f64 = 0.048_790_164_169_432;

/// Half-width (in ln ρ) of the gap the scan leaves around the pole of `h` where `N = 0`.
const POLE_GAP: f64 = 1e-9;

/// Supernodes below which an equilibrium at the pole is taken to have none (and no peers):
/// the promotion switch's derivative `k/S` must stay far from overflow.
const TINY: f64 = 1e-280;

/// Evaluations of the golden-section search for a pair of zeros between three samples.
const GOLDEN_STEPS: usize = 60;

/// The parameters the reduced equations use.
struct Reduced {
    sign_on: f64,
    sign_off: f64,
    sn_sign_off: f64,
    retry: f64,
    give_up: f64,
    load: f64,
    capacity: f64,
    dedicated: f64,
    success_m: f64,
    overload_rate: f64,
    threshold: f64,
    overload_n: f64,
    promote: f64,
    ratio: f64,
    need_k: f64,
    crash: f64,
    sn_crash: f64,
}

/// The reduced curve at one utilisation.
#[derive(Debug, Clone, Copy)]
struct Point {
    /// ln ρ.
    at: f64,
    /// `y = ln(t/σ)`, kept to warm-start the next solve.
    y: f64,
    /// `(N, S, Q)`.
    x: SVector<f64, 3>,
    /// `h(ρ)`: `(dN/dt)/N` at `x`.
    h: f64,
    /// Size of the largest term of `h` (for a relative test of `h = 0`).
    scale: f64,
}

impl Point {
    fn feasible(&self) -> bool {
        let [n, s, q] = [self.x[0], self.x[1], self.x[2]];
        n > 0.0 && s >= 0.0 && q >= 0.0 && n + s + q <= 1.0 && self.h.is_finite()
    }
}

/// `ln(1 + e^z)` without overflow.
fn softplus(z: f64) -> f64 {
    if z > 0.0 {
        z + (-z).exp().ln_1p()
    } else {
        z.exp().ln_1p()
    }
}

impl Reduced {
    fn new(p: &[f64]) -> Option<Self> {
        use P2pIdx::*;
        let g = |i: P2pIdx| p[i as usize];
        let r = Self {
            sign_on: g(SignOn),
            sign_off: g(SignOff),
            sn_sign_off: g(SnSignOff),
            retry: g(Retry),
            give_up: g(GiveUp),
            load: g(PeerLoad),
            capacity: g(SnCapacity),
            dedicated: g(Dedicated),
            success_m: g(SuccessSteepness),
            overload_rate: g(OverloadRate),
            threshold: g(OverloadThreshold),
            overload_n: g(OverloadSteepness),
            promote: g(Promotion) * g(Eligible),
            ratio: g(SnRatio),
            need_k: g(NeedSteepness),
            crash: g(Crash),
            sn_crash: g(SnCrash),
        };
        let positive = [
            r.sign_on,
            r.sn_sign_off,
            r.retry,
            r.load,
            r.capacity,
            r.dedicated,
            r.promote,
            r.ratio,
        ];
        (p.iter().all(|v| v.is_finite()) && positive.iter().all(|&v| v > 0.0)).then_some(r)
    }

    /// Bounds of ρ at any equilibrium with `N > 0`. Above: `a·N + r·Q ≤ max(a, r)` and
    /// `S + S0 ≥ S0`. Below: the conservation law gives `N + S + Q ≥ λ/(λ + max(δ, δs, θ))`,
    /// `dS/dt = 0` gives `S ≤ (γp/δs)·N`, so `N + Q ≥ (N + S + Q)/(1 + γp/δs)`, and `S + S0 ≤
    /// 1 + S0`.
    fn range(&self) -> (f64, f64) {
        let hi = self.load.max(self.retry) / (self.capacity * self.dedicated);
        let most = self.sign_on + self.sign_off.max(self.sn_sign_off).max(self.give_up);
        let lo = self.load.min(self.retry) * self.sign_on
            / (most * (1.0 + self.promote / self.sn_sign_off))
            / (self.capacity * (1.0 + self.dedicated));
        (lo, hi)
    }

    /// `y = ln(t/σ)` solving `γp·u = c·t` with `u = 1/(1 + e^(k·y))`: the zero of the concave,
    /// decreasing `G(y) = ln(γp/(cσ)) − y − ln(1 + e^(k·y))`. Newton converges to it from any
    /// start: from the left its first step lands right of the zero (the tangent of a concave
    /// function lies above it), from the right it decreases monotonically.
    fn log_ratio(&self, c: f64, y0: f64) -> f64 {
        let a = (self.promote / (c * self.ratio)).ln();
        let k = self.need_k;
        let mut y = if y0.is_finite() { y0 } else { a };
        for _ in 0..100 {
            let g = a - y - softplus(k * y);
            let slope = -1.0 - k / (1.0 + (-k * y).exp());
            let dy = g / slope;
            y -= dy;
            if dy.abs() <= 4.0 * f64::EPSILON * y.abs().max(1.0) {
                break;
            }
        }
        y
    }

    /// The switches at utilisation `rho`: login success `s`, the shutdown rate `φ`, and the
    /// supernodes' loss rate `c = δs + φ + ηcs`.
    fn switches(&self, rho: f64) -> (f64, f64, f64) {
        let success = hill_ratio(rho, 1.0, self.success_m).1;
        let phi = self.overload_rate * hill_ratio(rho, self.threshold, self.overload_n).0;
        (success, phi, self.sn_sign_off + phi + self.sn_crash)
    }

    /// `ln ρ` where `N = 0`: the conservation law's constant term `λ − (λ + θ)·b` vanishes,
    /// `b = ρκS0/r`; there `h` has a pole.
    fn pole(&self) -> f64 {
        (self.sign_on * self.retry
            / ((self.sign_on + self.give_up) * self.capacity * self.dedicated))
            .ln()
    }

    /// The curve at `ln ρ = at`, the ratio's solve started from `y0`.
    fn point(&self, at: f64, y0: f64) -> Point {
        let rho = at.exp();
        let (success, phi, c) = self.switches(rho);
        let y = self.log_ratio(c, y0);
        let t = self.ratio * y.exp();
        // Q = α·N + b from the definition of ρ; N from the conservation law.
        let alpha = (rho * self.capacity * t - self.load) / self.retry;
        let b = rho * self.capacity * self.dedicated / self.retry;
        let out = self.sign_on + self.give_up;
        let num = self.sign_on - out * b;
        let den = self.sign_off + self.sn_sign_off * t + self.sign_on * (1.0 + t) + out * alpha;
        let n = num / den;
        let q = alpha * n + b;
        let s = t * n;
        let share = s / (s + self.dedicated);
        // h = r·s·Q/N − δ − (φ + ηcs)·w − c·t − ηc, with γp·u = c·t.
        let logins = self.retry * success * (alpha + b / n);
        let losses = [
            self.sign_off,
            (phi + self.sn_crash) * share,
            c * t,
            self.crash,
        ];
        Point {
            at,
            y,
            x: SVector::from([n, s, q]),
            h: logins - losses.iter().sum::<f64>(),
            scale: losses.iter().fold(logins.abs(), |m, v| m.max(v.abs())),
        }
    }

    /// The equilibrium at `ln ρ = pole`, where `N = 0` in the limit: `Q = b`, `S = t·N` and
    /// `dN/dt = r·Q·s − N·(δ + c·t + ηc) = 0` (the share `w` of `S` in `S + S0` is `O(N)`);
    /// `N = S = 0` when `S` would be below [`TINY`].
    fn at_pole(&self, pole: f64) -> SVector<f64, 3> {
        let rho = pole.exp();
        let (success, _, c) = self.switches(rho);
        let t = self.ratio * self.log_ratio(c, f64::NAN).exp();
        let q = rho * self.capacity * self.dedicated / self.retry;
        let n = self.retry * success * q / (self.sign_off + c * t + self.crash);
        if t * n < TINY {
            // Derivatives in S of size k/S would overflow there: the state is N = S = 0 to
            // rounding, and its residual is tested as such.
            return SVector::from([0.0, 0.0, q]);
        }
        SVector::from([n, t * n, q])
    }

    /// A zero of `h` between `a` and `b` (values of opposite sign), if it is a feasible state
    /// where `h` is small beside its largest term (not a pole, where that term dominates; near
    /// the pole of `N = 0` only a few digits of `h` are left, and Newton polishes them).
    fn zero(&self, a: &Point, b: &Point) -> Option<SVector<f64, 3>> {
        let tol = Tolerance {
            abs: 1e-13,
            rel: 0.0,
        };
        let y0 = a.y;
        let root = illinois((a.at, b.at), (a.h, b.h), tol, |at| {
            let pt = self.point(at, y0);
            pt.h.is_finite().then_some((pt, pt.h))
        })?;
        let pt = root.value;
        (pt.feasible() && pt.h.abs() <= 1e-3 * pt.scale).then_some(pt.x)
    }
}

/// Every equilibrium of the reference model at `p` located approximately by the reduced scan
/// (to be polished by Newton); `None` when a parameter the reduction divides by is zero.
pub(crate) fn candidates(p: &[f64]) -> Option<Vec<SVector<f64, 3>>> {
    let red = Reduced::new(p)?;
    let (lo, hi) = red.range();
    // A little beyond both bounds, so that no zero sits on the scan's ends.
    let (from, to) = (lo.ln() - GRID_STEP, hi.ln() + GRID_STEP);
    if !(from.is_finite() && to.is_finite() && from < to) {
        return None;
    }
    // h is the peers' rate per peer: the scan is split at its pole (N = 0) so that no
    // bracket spans it.
    let pole = red.pole();
    let split = pole > from && pole < to;
    let segments = if split {
        vec![(from, pole - POLE_GAP), (pole + POLE_GAP, to)]
    } else {
        vec![(from, to)]
    };
    let mut out = vec![];
    // |N| at the scan's samples next to the pole.
    let mut edge: f64 = 0.0;
    for (k, (from, to)) in segments.into_iter().enumerate() {
        let cells = ((to - from) / GRID_STEP).ceil().max(1.0) as usize;
        let mut pts: Vec<Point> = Vec::with_capacity(cells + 1);
        let mut y = f64::NAN;
        for i in 0..=cells {
            let at = from + (to - from) * (i as f64 / cells as f64);
            let pt = red.point(at, y);
            y = pt.y;
            pts.push(pt);
        }
        if split {
            let next = if k == 0 { pts.last() } else { pts.first() };
            edge = edge.max(next.map_or(0.0, |pt| pt.x[0].abs()));
        }
        scan(&red, &pts, &mut out);
    }
    // A zero within the gap has N below |N| at the gap's ends (taken ten times, since the scan
    // may resolve a zero just outside only roughly); there Q and the ratio t are those at the
    // pole to rounding, and dN/dt = 0 gives N. Placed first, so that where it and a zero of
    // the scan polish to one root, the root kept is the one polished from the pole.
    if split {
        let x = red.at_pole(pole);
        if x[0] < 10.0 * edge {
            out.insert(0, x);
        }
    }
    Some(out)
}

/// The zeros of `h` that the samples `pts` (in order of ρ) bracket, and pairs of zeros between
/// them.
fn scan(red: &Reduced, pts: &[Point], out: &mut Vec<SVector<f64, 3>>) {
    for w in pts.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        if a.h.is_finite() && b.h.is_finite() && a.h * b.h <= 0.0 {
            out.extend(red.zero(a, b));
        }
    }
    // A pair of zeros between samples: where |h| has a local minimum among three samples of
    // one sign (feasible or not: a pocket of feasible states can be narrower than a cell),
    // find the extremum between the outer two; a sign change there gives both zeros, a touch
    // (|h| at rounding level) one candidate.
    for w in pts.windows(3) {
        let (a, m, b) = (&w[0], &w[1], &w[2]);
        let sign = m.h.signum();
        if !(a.h.is_finite() && m.h.is_finite() && b.h.is_finite())
            || a.h * m.h <= 0.0
            || m.h * b.h <= 0.0
            || m.h.abs() >= a.h.abs()
            || m.h.abs() > b.h.abs()
        {
            continue;
        }
        let golden = 0.5 * (5f64.sqrt() - 1.0);
        let (mut l, mut r) = (a.at, b.at);
        let mut c = red.point(r - golden * (r - l), m.y);
        let mut d = red.point(l + golden * (r - l), m.y);
        for _ in 0..GOLDEN_STEPS {
            if sign * c.h < sign * d.h {
                r = d.at;
                d = c;
                c = red.point(r - golden * (r - l), m.y);
            } else {
                l = c.at;
                c = d;
                d = red.point(l + golden * (r - l), m.y);
            }
            if sign * c.h <= 0.0 || sign * d.h <= 0.0 {
                break;
            }
        }
        let low = if sign * c.h <= sign * d.h { c } else { d };
        if sign * low.h <= 0.0 {
            out.extend(red.zero(a, &low));
            out.extend(red.zero(&low, b));
        } else if low.feasible() && low.h.abs() <= 1e-9 * low.scale {
            out.push(low.x);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::equilibria::all_equilibria_from;
    use crate::model::{Model, P2p, ParamSet};
    use crate::qmc::SplitMix;

    /// The ratio's solve meets `γp·u(t) = c·t` to rounding, from cold and from far-off warm
    /// starts, over steepnesses and rates far beyond the defaults.
    #[test]
    fn the_supernode_ratio_solves_its_balance_from_any_start() {
        let mut rng = SplitMix(3);
        let mut p = ParamSet::defaults(P2p.params()).values().to_vec();
        for _ in 0..2000 {
            let k = 0.1 * 1e4f64.powf(rng.next());
            p[P2pIdx::NeedSteepness as usize] = k;
            let red = Reduced::new(&p).unwrap();
            let c = 1e-6 * 1e8f64.powf(rng.next());
            for y0 in [f64::NAN, -300.0, -3.0, 0.0, 3.0, 300.0] {
                let y = red.log_ratio(c, y0);
                let t = red.ratio * y.exp();
                // In logarithms: ln(γp) − ln(1 + e^(k·y)) = ln(c·t).
                let lhs = red.promote.ln() - softplus(k * y);
                let rhs = (c * t).ln();
                assert!(
                    (lhs - rhs).abs() <= 1e-12 * lhs.abs().max(rhs.abs()).max(1.0),
                    "k {k}, c {c}, start {y0}: {lhs} vs {rhs}"
                );
            }
        }
    }

    /// Every equilibrium the generic search finds on random sets has its utilisation inside
    /// the scan's range.
    #[test]
    fn every_equilibrium_lies_in_the_scanned_range() {
        let mut rng = SplitMix(11);
        let mut checked = 0;
        for _ in 0..150 {
            let ps = ParamSet::random_near(P2p.params(), &mut rng, 8.0, None);
            let red = Reduced::new(ps.values()).unwrap();
            let (lo, hi) = red.range();
            for e in all_equilibria_from(&P2p, ps.values(), 200).unwrap() {
                let rho = P2p::utilisation_of(&e.x, ps.values());
                assert!(lo < rho && rho < hi, "{rho} not in [{lo}, {hi}]");
                checked += 1;
            }
        }
        assert!(checked > 150);
    }
}
