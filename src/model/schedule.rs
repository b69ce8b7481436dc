//! Parameters that move with time inside one stretch of a run: ramped interventions and daily
//! load profiles (docs/model.md, "Interventions" and "Daily load").
//!
//! The value of parameter `i` used at time `t` is
//! `ramp_i(t) × profile_i(clock hour of t)`, where `ramp_i` moves linearly from the value in
//! force before a ramped intervention to the one it sets (constant outside a ramp) and
//! `profile_i` is 1 for a parameter without a daily profile. Both are evaluated in the solver's
//! scalar type, so Jacobians, `∂f/∂t` and sensitivities see their exact derivatives.

use super::{Scalar, MAX_PARAMS};
use crate::error::Error;

/// Hours in a day: a daily profile has one multiplier per full hour of the clock.
pub const HOURS: usize = 24;

/// A parameter's daily profile: 24 multipliers of the value in force, one at each full hour of
/// the clock (UTC, hour 0 = midnight), joined by the periodic cubic Hermite interpolant with
/// Catmull–Rom slopes, so the profile is C¹ and periodic with period 24 hours.
///
/// ```
/// use selfheal::model::schedule::DailyProfile;
/// let mut hourly = [1.0; 24];
/// hourly[20] = 2.0;
/// let d = DailyProfile::new(0, hourly);
/// assert_eq!(d.at(20.0), 2.0);
/// assert_eq!(d.at(20.0 + 24.0), 2.0); // periodic
/// assert!(d.at(19.5) > 1.0 && d.at(19.5) < 2.0);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct DailyProfile {
    /// Index of the parameter in the model's table.
    pub param: usize,
    /// Multipliers at hours 0, 1, …, 23.
    pub hourly: [f64; HOURS],
    /// Catmull–Rom slopes (per hour) at each hour: `(m[h+1] − m[h−1]) / 2`, indices modulo 24.
    slopes: [f64; HOURS],
}

impl DailyProfile {
    /// The profile of parameter `param` through the hourly multipliers `hourly`.
    pub fn new(param: usize, hourly: [f64; HOURS]) -> Self {
        let slopes = std::array::from_fn(|h| {
            0.5 * (hourly[(h + 1) % HOURS] - hourly[(h + HOURS - 1) % HOURS])
        });
        Self {
            param,
            hourly,
            slopes,
        }
    }

    /// The multiplier at clock hour `hour` (any real number; taken modulo 24).
    pub fn at<T: Scalar>(&self, hour: T) -> T {
        // Reduce to [0, 24) by a constant shift, so the derivative in `hour` is kept.
        let shift = (hour.re() / HOURS as f64).floor() * HOURS as f64;
        let h = hour - T::from(shift);
        let k = (h.re().floor().max(0.0) as usize).min(HOURS - 1);
        let u = h - T::from(k as f64);
        let (y0, y1) = (self.hourly[k], self.hourly[(k + 1) % HOURS]);
        let (s0, s1) = (self.slopes[k], self.slopes[(k + 1) % HOURS]);
        // Cubic Hermite on [0, 1]: H(u) = y0 + s0·u + a·u² + b·u³ with H(1) = y1, H'(1) = s1.
        let a = 3.0 * (y1 - y0) - 2.0 * s0 - s1;
        let b = 2.0 * (y0 - y1) + s0 + s1;
        ((u * T::from(b) + T::from(a)) * u + T::from(s0)) * u + T::from(y0)
    }

    /// The smallest and largest multiplier over the day, each with its clock hour: found
    /// exactly, at the hours and at the stationary points of each hour's cubic.
    pub fn range(&self) -> ((f64, f64), (f64, f64)) {
        let mut lo = (f64::INFINITY, 0.0);
        let mut hi = (f64::NEG_INFINITY, 0.0);
        for k in 0..HOURS {
            let (y0, y1) = (self.hourly[k], self.hourly[(k + 1) % HOURS]);
            let (s0, s1) = (self.slopes[k], self.slopes[(k + 1) % HOURS]);
            let a = 3.0 * (y1 - y0) - 2.0 * s0 - s1;
            let b = 2.0 * (y0 - y1) + s0 + s1;
            // H'(u) = s0 + 2a·u + 3b·u².
            let mut cands = vec![0.0];
            let (qa, qb, qc) = (3.0 * b, 2.0 * a, s0);
            if qa.abs() > 1e-300 {
                let disc = qb * qb - 4.0 * qa * qc;
                if disc >= 0.0 {
                    let r = disc.sqrt();
                    cands.push((-qb + r) / (2.0 * qa));
                    cands.push((-qb - r) / (2.0 * qa));
                }
            } else if qb.abs() > 1e-300 {
                cands.push(-qc / qb);
            }
            for u in cands.into_iter().filter(|u| (0.0..1.0).contains(u)) {
                let v = self.at(k as f64 + u);
                if v < lo.0 {
                    lo = (v, k as f64 + u);
                }
                if v > hi.0 {
                    hi = (v, k as f64 + u);
                }
            }
        }
        (lo, hi)
    }
}

/// The clock of a run: the clock hour at `t = 0` and the length of an hour in the model's time
/// unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Clock {
    /// Clock hour (UTC, in `[0, 24)`) at `t = 0`.
    pub hour0: f64,
    /// One hour in the model's time unit (60 for a model in minutes).
    pub units_per_hour: f64,
}

impl Clock {
    /// The clock of a run that starts at `start` (RFC 3339 with offset; midnight UTC when
    /// `None`) for a model whose time unit is `time_unit`. Refused for a unit without a clock
    /// length (such as `slot`).
    pub fn new(start: Option<&str>, time_unit: &str) -> Result<Self, Error> {
        let per = seconds_per_unit(time_unit).ok_or_else(|| {
            Error::Unsupported(format!(
                "the model's time unit `{time_unit}` has no length on the clock: daily profiles need a model in seconds, minutes, hours or days"
            ))
        })?;
        let seconds = match start {
            Some(s) => parse_utc(s)?.rem_euclid(86_400.0),
            None => 0.0,
        };
        Ok(Self {
            hour0: seconds / 3600.0,
            units_per_hour: 3600.0 / per,
        })
    }

    /// The clock hour at time `t` (not reduced modulo 24).
    pub fn hour<T: Scalar>(&self, t: T) -> T {
        t * T::from(1.0 / self.units_per_hour) + T::from(self.hour0)
    }

    /// The length of a day in the model's time unit.
    pub fn period(&self) -> f64 {
        HOURS as f64 * self.units_per_hour
    }

    /// The longest step a run under a daily profile may take: half an hour, so that no step
    /// passes over an hour's rise or dip of the profile unseen (error control only sees what
    /// the steps sample).
    pub fn max_step(&self) -> f64 {
        0.5 * self.units_per_hour
    }
}

/// A clock hour as `HH:MM` (taken modulo 24, rounded to the minute).
pub fn clock_text(hour: f64) -> String {
    let minutes = (hour.rem_euclid(24.0) * 60.0).round() as u32 % 1440;
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// A ramped intervention under way: parameter `param` moves linearly from `from` (the value in
/// force before the intervention) to the value in force (the one it sets) over
/// `[at, at + len]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ramp {
    /// Index of the parameter.
    pub param: usize,
    /// The value in force before the intervention.
    pub from: f64,
    /// Start of the ramp.
    pub at: f64,
    /// Length of the ramp (> 0).
    pub len: f64,
}

/// What makes parameters move with time inside one stretch of a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule<'a> {
    /// Ramps under way.
    pub ramps: &'a [Ramp],
    /// Daily profiles (at most one per parameter).
    pub daily: &'a [DailyProfile],
    /// The clock the profiles are read on.
    pub clock: Clock,
}

impl<'a> Schedule<'a> {
    /// The schedule of `ramps` and `daily` profiles, `None` when they move nothing. Without
    /// profiles no clock is needed (`clock` may be `None`; ramps read the run's own time).
    pub fn of(ramps: &'a [Ramp], daily: &'a [DailyProfile], clock: Option<Clock>) -> Option<Self> {
        let s = Schedule {
            ramps,
            daily,
            clock: clock.unwrap_or(Clock {
                hour0: 0.0,
                units_per_hour: 60.0,
            }),
        };
        (!s.is_empty()).then_some(s)
    }

    /// Whether the schedule moves any parameter.
    pub fn is_empty(&self) -> bool {
        self.ramps.is_empty() && self.daily.is_empty()
    }

    /// The parameters used at time `t`, from those in force `p` (a ramped parameter's target),
    /// with ramp `k`'s `(from, at, len)` given by `ramp(k, &ramps[k])` in the scalar type (a
    /// sensitivity run lifts them with their derivatives; otherwise they are constants). Only
    /// `p.len()` entries of the result are meaningful.
    pub fn apply<T: Scalar>(
        &self,
        t: T,
        p: &[T],
        ramp: impl Fn(usize, &Ramp) -> (T, T, T),
    ) -> [T; MAX_PARAMS] {
        let mut q = [T::from(0.0); MAX_PARAMS];
        q[..p.len()].copy_from_slice(p);
        for (k, r) in self.ramps.iter().enumerate() {
            let (from, at, len) = ramp(k, r);
            let s = (t - at) / len;
            // Outside the ramp (a rounding beyond either end) the end value holds exactly.
            let s = if s.re() <= 0.0 {
                T::from(0.0)
            } else if s.re() >= 1.0 {
                T::from(1.0)
            } else {
                s
            };
            q[r.param] = from + (q[r.param] - from) * s;
        }
        if !self.daily.is_empty() {
            let h = self.clock.hour(t);
            for d in self.daily {
                q[d.param] *= d.at(h);
            }
        }
        q
    }

    /// [`Schedule::apply`] in `f64`, the ramps' ends as given.
    pub fn values(&self, t: f64, p: &[f64]) -> Vec<f64> {
        self.apply(t, p, |_, r| (r.from, r.at, r.len))[..p.len()].to_vec()
    }
}

/// Seconds in one unit of a model's time (`second`, `minute`, `hour`, `day`, singular or
/// plural, or `s`, `min`, `h`, `d`); `None` for a unit without a clock length (`slot`).
pub fn seconds_per_unit(unit: &str) -> Option<f64> {
    match unit.trim().trim_end_matches('s') {
        "" | "second" | "sec" => Some(1.0),
        "minute" | "min" => Some(60.0),
        "hour" | "h" => Some(3600.0),
        "day" | "d" => Some(86400.0),
        _ => None,
    }
}

/// Parses an ISO 8601 / RFC 3339 instant with its offset (`2007-08-16T22:15:00Z`,
/// `2007-08-16T22:15Z`, `2007-08-17T00:15:00+02:00`) into seconds since 1970-01-01 00:00 UTC.
/// A time without an offset is refused: it would not say which instant it is.
pub fn parse_utc(text: &str) -> Result<f64, Error> {
    let t: jiff::Timestamp = text.trim().parse().map_err(|e: jiff::Error| Error::Parse {
        file: None,
        line: None,
        message: format!("`{text}` is not a UTC time such as 2007-08-16T22:15:00Z ({e})"),
    })?;
    Ok(t.as_second() as f64 + f64::from(t.subsec_nanosecond()) * 1e-9)
}

#[cfg(test)]
mod tests {
    use super::*;
    use num_dual::Dual64;

    fn profile() -> DailyProfile {
        // A smooth-ish day with a sharp evening peak and a zero at night.
        let hourly = [
            0.3, 0.2, 0.1, 0.0, 0.5, 0.2, 0.4, 0.6, 0.8, 0.9, 1.0, 1.0, 1.1, 1.0, 1.0, 1.0, 1.1,
            1.2, 1.4, 1.8, 2.0, 1.5, 0.8, 0.5,
        ];
        DailyProfile::new(3, hourly)
    }

    #[test]
    fn reproduces_its_hourly_values_and_is_periodic() {
        let d = profile();
        for h in 0..HOURS {
            assert_eq!(d.at(h as f64), d.hourly[h], "hour {h}");
            assert_eq!(d.at(h as f64 + 24.0), d.hourly[h]);
            assert_eq!(d.at(h as f64 - 48.0), d.hourly[h]);
        }
    }

    #[test]
    fn is_c1_with_catmull_rom_slopes() {
        let d = profile();
        let deriv = |h: f64| d.at(Dual64::new(h, 1.0)).eps;
        for h in 0..=HOURS {
            let k = h % HOURS;
            let want = 0.5 * (d.hourly[(k + 1) % HOURS] - d.hourly[(k + HOURS - 1) % HOURS]);
            let (l, r) = (h as f64 - 1e-9, h as f64 + 1e-9);
            // Value and slope continuous across every full hour, midnight included.
            assert!((d.at(l) - d.at(r)).abs() < 1e-8, "value jumps at {h}");
            assert!((deriv(l) - want).abs() < 1e-7, "left slope at {h}");
            assert!((deriv(r) - want).abs() < 1e-7, "right slope at {h}");
            // The derivative by dual numbers agrees with a difference quotient.
            let m = h as f64 + 0.37;
            let fd = (d.at(m + 1e-6) - d.at(m - 1e-6)) / 2e-6;
            assert!((deriv(m) - fd).abs() < 1e-6);
        }
    }

    #[test]
    fn range_is_the_extreme_of_a_fine_scan() {
        let d = profile();
        let ((lo, tlo), (hi, thi)) = d.range();
        let scan: Vec<f64> = (0..240_000).map(|k| d.at(k as f64 * 1e-4)).collect();
        let smin = scan.iter().copied().fold(f64::INFINITY, f64::min);
        let smax = scan.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        assert!(lo <= smin + 1e-15 && lo > smin - 1e-6, "{lo} vs {smin}");
        assert!(hi >= smax - 1e-15 && hi < smax + 1e-6, "{hi} vs {smax}");
        assert!((d.at(tlo) - lo).abs() < 1e-15 && (d.at(thi) - hi).abs() < 1e-15);
        // Catmull–Rom overshoots around the zero at 03:00.
        assert!(lo < 0.0);
    }

    #[test]
    fn a_ramp_follows_the_straight_line_exactly() {
        let ramps = [Ramp {
            param: 1,
            from: 2.0,
            at: 100.0,
            len: 50.0,
        }];
        let s = Schedule {
            ramps: &ramps,
            daily: &[],
            clock: Clock {
                hour0: 0.0,
                units_per_hour: 60.0,
            },
        };
        let p = [7.0, 10.0];
        for (t, want) in [
            (90.0, 2.0),
            (100.0, 2.0),
            (125.0, 6.0),
            (150.0, 10.0),
            (160.0, 10.0),
        ] {
            assert_eq!(s.values(t, &p), vec![7.0, want], "t = {t}");
        }
        // Its time derivative is the slope (10 − 2)/50 inside, by dual numbers.
        let q = s.apply(
            Dual64::new(120.0, 1.0),
            &[Dual64::from(7.0), Dual64::from(10.0)],
            |_, r| (r.from.into(), r.at.into(), r.len.into()),
        );
        assert!((q[1].eps - 8.0 / 50.0).abs() < 1e-15 && q[0].eps == 0.0);
    }
}
