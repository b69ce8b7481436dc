//! Student's t distribution, for confidence intervals of fitted parameters.

/// ln Γ(x) for x > 0 (Lanczos approximation, g = 7, 9 terms; relative error ~1e-15).
pub fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x)Γ(1 − x) = π / sin(πx).
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + G + 0.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// The regularised incomplete beta function `I_x(a, b)`, by its continued fraction
/// (modified Lentz), using the symmetry `I_x(a, b) = 1 − I_{1−x}(b, a)` where that converges
/// faster.
pub fn inc_beta(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    if x > (a + 1.0) / (a + b + 2.0) {
        return 1.0 - inc_beta(1.0 - x, b, a);
    }
    let tiny = 1e-300;
    let mut c = 1.0;
    let mut d = 1.0 - (a + b) * x / (a + 1.0);
    if d.abs() < tiny {
        d = tiny;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..500 {
        let m = m as f64;
        // Even step.
        let num = m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m));
        d = 1.0 + num * d;
        d = if d.abs() < tiny { 1.0 / tiny } else { 1.0 / d };
        c = 1.0 + num / c;
        if c.abs() < tiny {
            c = tiny;
        }
        h *= d * c;
        // Odd step.
        let num = -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0));
        d = 1.0 + num * d;
        d = if d.abs() < tiny { 1.0 / tiny } else { 1.0 / d };
        c = 1.0 + num / c;
        if c.abs() < tiny {
            c = tiny;
        }
        let delta = d * c;
        h *= delta;
        if (delta - 1.0).abs() < 1e-15 {
            break;
        }
    }
    ln_front.exp() * h / a
}

/// `P(T ≤ t)` for Student's t with `nu` degrees of freedom.
pub fn student_t_cdf(t: f64, nu: f64) -> f64 {
    let tail = 0.5 * inc_beta(nu / (nu + t * t), 0.5 * nu, 0.5);
    if t >= 0.0 {
        1.0 - tail
    } else {
        tail
    }
}

/// The `p`-quantile of Student's t with `nu` degrees of freedom (`0 < p < 1`): the root of the
/// distribution function minus `p` ([`crate::roots::illinois`]).
pub fn student_t_quantile(p: f64, nu: f64) -> f64 {
    assert!(p > 0.0 && p < 1.0 && nu > 0.0);
    if p < 0.5 {
        return -student_t_quantile(1.0 - p, nu);
    }
    let mut hi = 1.0;
    while student_t_cdf(hi, nu) < p {
        hi *= 2.0;
    }
    let g = |x: f64| student_t_cdf(x, nu) - p;
    let tol = crate::roots::Tolerance {
        abs: 0.0,
        rel: 1e-14,
    };
    crate::roots::illinois((0.0, hi), (g(0.0), g(hi)), tol, |x| Some(((), g(x))))
        .map_or(hi, |r| r.x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gamma_of_integers_and_a_half() {
        // Γ(n) = (n − 1)!, Γ(1/2) = √π.
        assert!((ln_gamma(5.0) - 24f64.ln()).abs() < 1e-13);
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-13);
    }

    #[test]
    fn t_quantiles_match_printed_tables() {
        // Two-sided 95 % critical values from standard tables.
        for (nu, q) in [(1.0, 12.706), (2.0, 4.303), (6.0, 2.447), (30.0, 2.042)] {
            let t = student_t_quantile(0.975, nu);
            assert!((t - q).abs() < 1e-3, "nu = {nu}: {t} vs {q}");
        }
        // ν = 1 is the Cauchy distribution: quantile tan(π(p − 1/2)) in closed form.
        let p: f64 = 0.9;
        let cauchy = (std::f64::consts::PI * (p - 0.5)).tan();
        assert!((student_t_quantile(p, 1.0) - cauchy).abs() < 1e-10);
        // Large ν tends to the normal quantile 1.959964.
        assert!((student_t_quantile(0.975, 1e7) - 1.959_964).abs() < 1e-5);
    }
}
