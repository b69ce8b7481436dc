//! Overflow-free building blocks for right-hand sides (values and exact derivatives).
//!
//! Hill terms such as `(S/(σN))^20` overflow easily; these helpers evaluate the logistic form
//! on whichever side of 1 the ratio lies, so no value or derivative becomes inf or NaN for
//! non-negative inputs.

use super::Scalar;

/// `x^n` for `x ≥ 0`: by repeated squaring when `n` is a small positive integer (exact, and
/// several times faster than `powf`), else through `powf`.
#[inline(always)]
pub fn pow<T: Scalar>(x: T, n: f64) -> T {
    let k = n as i32;
    if k as f64 == n && (1..=64).contains(&k) {
        let mut base = x;
        let mut e = k as u32;
        let mut acc: Option<T> = None;
        loop {
            if e & 1 == 1 {
                acc = Some(match acc {
                    Some(a) => a * base,
                    None => base,
                });
            }
            e >>= 1;
            if e == 0 {
                break;
            }
            base = base * base;
        }
        acc.unwrap_or(x)
    } else if n == 0.0 {
        T::from(1.0)
    } else if x.re() == 0.0 {
        // powf's derivative formula divides by x; the value is 0 for n > 0.
        T::from(0.0)
    } else if T::NDERIV == 0 || x.re().powf(n - 3.0) < f64::INFINITY || x.re() < f64::MIN_POSITIVE {
        x.powf(n)
    } else {
        // num-dual's powf forms x^(n-3)·x³, which overflows for a tiny x when n < 3 (x = 3.5e-167
        // and n = 1.14 gave a value of inf for x^n = 1e-190, and NaN flows): there, take the
        // power of x/x₀ (real part 1) and scale it by the plain x₀^n, x₀ the real part (normal,
        // so that 1/x₀ does not overflow).
        let x0 = x.re();
        (x / T::from(x0)).powf(n) * T::from(x0.powf(n))
    }
}

/// Hill function of the ratio `r = num/den` and its complement, both computed without
/// cancellation: returns `(r^n / (1 + r^n), 1 / (1 + r^n))`.
///
/// `num, den ≥ 0`; `den = 0` counts as `r = +∞` (returns `(1, 0)`), `num = 0 < den` as `r = 0`,
/// and so does `num < 0` (a population rounded below zero); a subnormal `den` counts as 0.
///
/// ```
/// use selfheal::model::safe::hill_ratio;
/// let (h, c) = hill_ratio(3.0_f64, 1.0, 20.0); // 1 - h would lose the complement's digits
/// assert!((c * (1.0 + 3f64.powi(20)) - 1.0).abs() < 1e-14);
/// assert!((h + c - 1.0).abs() < 1e-15);
/// assert_eq!(hill_ratio(1.0_f64, 0.0, 4.0), (1.0, 0.0));
/// ```
#[inline(always)]
pub fn hill_ratio<T: Scalar>(num: T, den: T, n: f64) -> (T, T) {
    hill_ratio_by(num, den, n, |r| pow(r, n))
}

/// [`hill_ratio`] with the power of the ratio (at most 1) computed by `power`, whose exponent
/// has the real part `n` (for an exponent that carries derivatives too).
#[inline(always)]
pub(crate) fn hill_ratio_by<T: Scalar>(num: T, den: T, n: f64, power: impl Fn(T) -> T) -> (T, T) {
    let one = T::from(1.0);
    // A subnormal denominator counts as zero: its reciprocal overflows, so neither the ratio
    // nor its derivative could be formed.
    if den.re() < f64::MIN_POSITIVE {
        return (one, T::from(0.0));
    }
    // A numerator a rounding error below zero (a population a step left slightly negative)
    // reads as r = 0: a negative ratio to a fractional power would be NaN. At r = 0 exactly
    // with n > 1 the value and every first derivative are those of a constant; the chain rule
    // would multiply a zero by a derivative of the ratio that may overflow.
    if num.re() < 0.0 || (num.re() == 0.0 && n > 1.0) {
        return (T::from(0.0), one);
    }
    if num.re() <= den.re() {
        let t = power(num / den);
        let inv = (one + t).recip();
        (t * inv, inv)
    } else {
        let t = power(den / num);
        let inv = (one + t).recip();
        (inv, t * inv)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use num_dual::Dual64;

    #[test]
    fn fractional_powers_of_tiny_duals_stay_finite() {
        let (x, n) = (3.5e-167, 1.1376771041732212);
        let y = pow(Dual64::from_re(x).derivative(), n);
        assert_eq!(y.re, x.powf(n));
        let slope = n * x.powf(n - 1.0);
        assert!((y.eps - slope).abs() <= 1e-14 * slope, "{y:?} vs {slope:e}");
        // Ordinary sizes: the value and derivative of x^n.
        let y = pow(Dual64::from_re(0.3).derivative(), 2.5);
        assert!((y.re - 0.3f64.powf(2.5)).abs() < 1e-16);
        assert!((y.eps - 2.5 * 0.3f64.powf(1.5)).abs() < 1e-15);
    }
}
