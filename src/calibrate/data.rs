//! Observed online-user counts: reading the CSV, placing each reading on the scenario's clock,
//! and weighing it by how precisely it was stated.

use crate::error::Error;
use std::path::Path;

/// One observed count of online users.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// The clock time as written in the file.
    pub time: String,
    /// Minutes from the scenario's `t = 0` (negative before it).
    pub t: f64,
    /// Online users.
    pub users: f64,
    /// The standard deviation the fit gives this reading (users); see [`Weighting`].
    pub sigma: f64,
    /// Where `sigma` came from: `"column"` (the file's `sigma`) or `"rounding"` (the rule).
    pub sigma_from: &'static str,
    /// The file's `note`, if any.
    pub note: String,
    /// The file's `source`, if any.
    pub source: String,
}

/// How readings without a `sigma` column value are weighed.
///
/// A published figure such as "about 3 million" is a rounded number: its last significant
/// digit says how precisely it was stated. A reading with last significant place `u` (1 for
/// 3,154,444; 100,000 for 3,500,000; 1,000,000 for 3,000,000) is taken as uniformly uncertain
/// over ±u/2, a standard deviation of `u/√12`. On top of that every reading carries a relative
/// error `relative · count` for what rounding does not cover: an unreliable counter, readings
/// whose time of day was not given, and the model's own simplifications. The two combine as
/// independent errors: `σ = √((u/√12)² + (relative · count)²)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weighting {
    /// Relative error added to every reading (default 0.05).
    pub relative: f64,
    /// Seconds per unit of model time, to place clock times on the model's clock (default 60:
    /// a model in minutes; see [`seconds_per_unit`]).
    pub seconds_per_unit: f64,
}

impl Default for Weighting {
    fn default() -> Self {
        Self {
            relative: 0.05,
            seconds_per_unit: 60.0,
        }
    }
}

impl Weighting {
    /// The standard deviation of a reading of `users` stated as written.
    pub fn sigma(&self, users: f64) -> f64 {
        let unit = last_place(users);
        let rounding = unit / 12f64.sqrt();
        rounding.hypot(self.relative * users)
    }
}

/// Most online users a reading may give (the largest whole count an `f64` holds exactly is
/// 9.007e15; more than a planet's population in any case).
pub const MAX_USERS: f64 = 9.0e15;
/// Smallest `σ` relative to the reading: a model value cannot be compared more finely than the
/// solver computes it (the calibration's default `rtol` is 1e-8).
pub const MIN_RELATIVE_SIGMA: f64 = 1e-9;

impl Reading {
    /// How messages name the reading: its clock time as written, or `at t = T` for a reading
    /// made in code.
    pub fn label(&self) -> String {
        if self.time.is_empty() {
            format!("at t = {}", self.t)
        } else {
            self.time.clone()
        }
    }

    /// Why the reading cannot be fitted, if it cannot: online users finite and at most
    /// [`MAX_USERS`] in size (readings made in code with noise may be negative; a data file's
    /// may not); `σ` finite and at least [`MIN_RELATIVE_SIGMA`] × max(|users|, 1).
    pub fn refusal(&self) -> Option<String> {
        if !(self.users.is_finite() && self.users.abs() <= MAX_USERS) {
            return Some(format!(
                "online_users = {} is out of range: must be finite and at most {MAX_USERS:e} in size",
                self.users
            ));
        }
        let least = MIN_RELATIVE_SIGMA * self.users.abs().max(1.0);
        if !(self.sigma.is_finite() && self.sigma >= least) {
            return Some(format!(
                "sigma = {} is out of range: must be finite and at least {least:e} ({MIN_RELATIVE_SIGMA:e} of the reading: the solver computes the model no finer)",
                self.sigma
            ));
        }
        None
    }
}

/// The place value of the last non-zero digit of a whole count (1 for counts that are not
/// whole, or zero).
pub fn last_place(users: f64) -> f64 {
    if !(users.is_finite() && users >= 1.0) || users.fract() != 0.0 || users > MAX_USERS {
        return 1.0;
    }
    let mut n = users as u64;
    let mut unit = 1.0;
    while n.is_multiple_of(10) {
        n /= 10;
        unit *= 10.0;
    }
    unit
}

pub use crate::model::schedule::{parse_utc, seconds_per_unit};

/// Reads observed online users from a CSV file with columns `time` (ISO 8601, UTC) and
/// `online_users`, and optionally `sigma` (users; empty cells fall back to the rule),
/// `note` and `source`. Times are placed relative to `start`, the clock time of `t = 0`.
///
/// Every failure names the file, the row (as a spreadsheet counts it, header = row 1) and the
/// culprit; nothing is read partially.
pub fn read_readings(
    path: &Path,
    start: &str,
    weighting: &Weighting,
) -> Result<Vec<Reading>, Error> {
    let file = std::fs::File::open(path).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })?;
    read_readings_from(file, &path.display().to_string(), start, weighting)
}

/// [`read_readings`] from any reader; `name` is used in messages.
pub fn read_readings_from(
    input: impl std::io::Read,
    name: &str,
    start: &str,
    weighting: &Weighting,
) -> Result<Vec<Reading>, Error> {
    let per = weighting.seconds_per_unit;
    if !(per.is_finite() && per > 0.0) {
        return Err(Error::OutOfRange {
            name: "seconds per unit of model time".into(),
            value: per,
            range: "finite and > 0".into(),
        });
    }
    if !(weighting.relative.is_finite() && (0.0..1.0).contains(&weighting.relative)) {
        return Err(Error::OutOfRange {
            name: "relative error".into(),
            value: weighting.relative,
            range: "in [0, 1)".into(),
        });
    }
    let t0 = parse_utc(start).map_err(|e| e.context("scenario start"))?;
    let mut rd = csv::ReaderBuilder::new().flexible(false).from_reader(input);
    let headers = rd
        .headers()
        .map_err(|e| Error::parse_at(name, 1, e.to_string()))?
        .clone();
    let col = |c: &str| headers.iter().position(|h| h.trim() == c);
    let need = |c: &str| {
        col(c).ok_or_else(|| {
            Error::parse_at(name, 1, format!(
                "missing column `{c}` (need `time` and `online_users`; optional `sigma`, `note`, `source`)"
            ))
        })
    };
    let (ct, cu) = (need("time")?, need("online_users")?);
    let (cs, cn, cw) = (col("sigma"), col("note"), col("source"));
    let mut out = vec![];
    for (k, rec) in rd.records().enumerate() {
        let row = k + 2;
        let rec = rec.map_err(|e| Error::parse_at(name, row, e.to_string()))?;
        // A quoted field that runs over a line end is almost always an unclosed quote, which
        // would swallow the rows after it: refused, at the line where the record starts.
        if rec.iter().any(|f| f.contains(['\n', '\r'])) {
            let line = rec.position().map_or(row, |p| p.line() as usize);
            return Err(Error::parse_at(
                name,
                line,
                "a quoted field runs past the end of its line (an unclosed `\"`?); fields may not span lines",
            ));
        }
        let at = |e: Error| Error::parse_at(name, row, e.to_string());
        let time = rec[ct].trim().to_string();
        let t = (parse_utc(&time).map_err(at)? - t0) / per;
        let users: f64 = rec[cu].trim().parse().map_err(|_| {
            Error::parse_at(
                name,
                row,
                format!("online_users `{}` is not a number", &rec[cu]),
            )
        })?;
        if !(users.is_finite() && users >= 0.0) {
            return Err(Error::parse_at(
                name,
                row,
                format!("online_users = {users} is out of range: must be finite and >= 0"),
            ));
        }
        let given = cs.map(|c| rec[c].trim()).filter(|s| !s.is_empty());
        let (sigma, sigma_from) = match given {
            Some(s) => {
                let v: f64 = s.parse().map_err(|_| {
                    Error::parse_at(name, row, format!("sigma `{s}` is not a number"))
                })?;
                (v, "column")
            }
            None => (weighting.sigma(users), "rounding"),
        };
        let reading = Reading {
            time,
            t,
            users,
            sigma,
            sigma_from,
            note: cn.map_or(String::new(), |c| rec[c].to_string()),
            source: cw.map_or(String::new(), |c| rec[c].to_string()),
        };
        if let Some(why) = reading.refusal() {
            return Err(Error::parse_at(name, row, why));
        }
        out.push(reading);
    }
    if out.is_empty() {
        return Err(Error::Invalid(format!("{name}: no readings")));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_place_of_rounded_figures() {
        assert_eq!(last_place(3_154_444.0), 1.0);
        assert_eq!(last_place(3_500_000.0), 100_000.0);
        assert_eq!(last_place(3_000_000.0), 1_000_000.0);
        assert_eq!(last_place(600_000.0), 100_000.0);
        assert_eq!(last_place(0.0), 1.0);
        assert_eq!(last_place(2.5), 1.0);
    }

    #[test]
    fn utc_days_from_the_calendar() {
        // 2000-03-01 is 11,017 days after 1970-01-01 (30 years with 7 leap days + Jan + Feb 2000).
        let days = 30 * 365 + 7 + 31 + 29;
        assert_eq!(
            parse_utc("2000-03-01T00:00Z").unwrap(),
            days as f64 * 86400.0
        );
        assert!(parse_utc("2007-02-29T00:00:00Z").is_err());
        assert!(parse_utc("2007-08-16 22:15").is_err());
        assert!(parse_utc("2007-08-16T24:00:00Z").is_err());
        // An offset names the same instant in another zone.
        assert_eq!(
            parse_utc("2007-08-17T00:15:00+02:00").unwrap(),
            parse_utc("2007-08-16T22:15:00Z").unwrap()
        );
        assert_eq!(
            parse_utc("2007-08-16T22:15:00.5Z").unwrap() - parse_utc("2007-08-16T22:15Z").unwrap(),
            0.5
        );
    }

    #[test]
    fn bad_rows_are_named() {
        let w = Weighting::default();
        let start = "2007-08-16T00:00:00Z";
        let read = |text: &str| read_readings_from(text.as_bytes(), "d.csv", start, &w);
        let e = read("time,users\n2007-08-16T01:00:00Z,5\n").unwrap_err();
        assert!(
            e.to_string().contains("missing column `online_users`"),
            "{e}"
        );
        let e = read("time,online_users\n16 Aug,5\n").unwrap_err();
        assert!(e.to_string().starts_with("d.csv line 2:"), "{e}");
        let e = read("time,online_users\n2007-08-16T01:00:00Z,-5\n").unwrap_err();
        assert!(e.to_string().contains("must be finite and >= 0"), "{e}");
        let r = read(
            "time,online_users,sigma\n2007-08-16T01:30:00Z,3000000,\n2007-08-15T00:00:00Z,10,4\n",
        )
        .unwrap();
        assert_eq!(r[0].t, 90.0);
        assert_eq!(r[1].t, -1440.0);
        assert_eq!((r[1].sigma, r[1].sigma_from), (4.0, "column"));
        // Rounding to the million (sd 1e6/√12) combined with 5 % of 3 million.
        let expect = (1e6f64 / 12f64.sqrt()).hypot(150_000.0);
        assert!((r[0].sigma - expect).abs() < 1e-6);
    }
}
