//! What a sweep varies: quantities by name, grids and samplers. Every point is a pure function
//! of the design and the row index.

use crate::error::Error;
use crate::qmc::{hash3, permute, sobol, unit, SOBOL_DIMS};
pub use crate::scenario::Quantity;
use crate::scenario::Scenario;
use serde::Serialize;

/// Most rows one sweep may have (10^9; a shard of a larger study is a sweep of its own).
pub const MAX_ROWS: usize = 1_000_000_000;

/// A finite number from text.
fn finite(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

/// A grid axis: `COUNT` points from `START` to `STOP` inclusive, linear or logarithmic.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Axis {
    /// The name as given (the CSV column).
    pub name: String,
    /// What it varies.
    pub quantity: Quantity,
    /// First value.
    pub start: f64,
    /// Last value.
    pub stop: f64,
    /// Number of points.
    pub count: usize,
    /// Logarithmic spacing.
    pub log: bool,
}

impl Axis {
    /// Parses `NAME=START:STOP:COUNT`.
    pub fn parse(text: &str, base: &Scenario) -> Result<Self, Error> {
        let bad = |why: &str| Error::Invalid(format!("grid axis `{text}`: {why}"));
        let (name, spec) = text
            .split_once('=')
            .ok_or_else(|| bad("expected NAME=START:STOP:COUNT"))?;
        let parts: Vec<&str> = spec.split(':').collect();
        if parts.len() != 3 {
            return Err(bad("expected NAME=START:STOP:COUNT"));
        }
        let num = |s: &str| finite(s).ok_or_else(|| bad(&format!("`{s}` is not a finite number")));
        let (start, stop) = (num(parts[0])?, num(parts[1])?);
        // A whole number, also written like a float (`1e3`); checked before the cast.
        let count_text = parts[2].trim();
        let count: usize = count_text
            .parse()
            .ok()
            .or_else(|| {
                let v: f64 = count_text.parse().ok()?;
                (v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v < usize::MAX as f64)
                    .then_some(v as usize)
            })
            .ok_or_else(|| match count_text.parse::<f64>() {
                Ok(v) if v.fract() == 0.0 && v >= usize::MAX as f64 => bad(&format!(
                    "COUNT `{count_text}` is more points than any sweep can hold"
                )),
                _ => bad(&format!("COUNT `{}` is not a whole number", parts[2])),
            })?;
        if count == 0 {
            return Err(bad("COUNT must be at least 1"));
        }
        if count == 1 && start != stop {
            return Err(bad("COUNT 1 needs START = STOP"));
        }
        Ok(Self {
            name: name.trim().to_string(),
            quantity: Quantity::parse(name.trim(), base)?,
            start,
            stop,
            count,
            log: false,
        })
    }

    /// Makes the axis logarithmic; both ends must be positive.
    pub fn set_log(&mut self) -> Result<(), Error> {
        if !(self.start > 0.0 && self.stop > 0.0) {
            return Err(Error::Invalid(format!(
                "axis {}: a logarithmic axis needs START and STOP > 0, got {} and {}",
                self.name, self.start, self.stop
            )));
        }
        self.log = true;
        Ok(())
    }

    /// The `j`-th value.
    pub fn value(&self, j: usize) -> f64 {
        if self.count == 1 {
            return self.start;
        }
        if j + 1 == self.count {
            return self.stop;
        }
        let (a, b) = ((self.count - 1 - j) as f64, j as f64);
        let d = (self.count - 1) as f64;
        // Weighted means of the ends: exact at both ends and free of accumulated steps; rounded
        // to 15 significant digits, so that a grid written in decimals reads back as decimals
        // (0.3, not 0.30000000000000004: a change of at most 5e-16 relative).
        let v = if self.log {
            ((a * self.start.ln() + b * self.stop.ln()) / d).exp()
        } else {
            (a * self.start + b * self.stop) / d
        };
        format!("{v:.14e}").parse().unwrap_or(v)
    }
}

/// A sampled range: `NAME=LO:HI`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Range {
    /// The name as given (the CSV column).
    pub name: String,
    /// What it varies.
    pub quantity: Quantity,
    /// Lower end.
    pub lo: f64,
    /// Upper end.
    pub hi: f64,
    /// Sample `ln` of the value uniformly (both ends > 0).
    pub log: bool,
}

impl Range {
    /// Makes the range logarithmic: points are spread uniformly in `ln` of the value; both
    /// ends must be positive.
    pub fn set_log(&mut self) -> Result<(), Error> {
        if !(self.lo > 0.0 && self.hi > 0.0) {
            return Err(Error::Invalid(format!(
                "range {}: a logarithmic range needs LO and HI > 0, got {} and {}",
                self.name, self.lo, self.hi
            )));
        }
        self.log = true;
        Ok(())
    }

    /// Parses `NAME=LO:HI`.
    pub fn parse(text: &str, base: &Scenario) -> Result<Self, Error> {
        let bad = |why: &str| Error::Invalid(format!("sampled range `{text}`: {why}"));
        let (name, spec) = text
            .split_once('=')
            .ok_or_else(|| bad("expected NAME=LO:HI"))?;
        let (a, b) = spec
            .split_once(':')
            .ok_or_else(|| bad("expected NAME=LO:HI"))?;
        let num = |s: &str| finite(s).ok_or_else(|| bad(&format!("`{s}` is not a finite number")));
        let (lo, hi) = (num(a)?, num(b)?);
        if lo > hi {
            return Err(bad("LO must not exceed HI"));
        }
        Ok(Self {
            name: name.trim().to_string(),
            quantity: Quantity::parse(name.trim(), base)?,
            lo,
            hi,
            log: false,
        })
    }
}

/// How sample points are placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Sampler {
    /// Latin hypercube: each range cut into N strata, every stratum used once per dimension.
    Lhs,
    /// Sobol' low-discrepancy sequence (Joe–Kuo directions) with a seeded digital shift.
    Sobol,
    /// Independent uniform points.
    Random,
}

impl std::str::FromStr for Sampler {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "lhs" => Ok(Sampler::Lhs),
            "sobol" => Ok(Sampler::Sobol),
            "random" => Ok(Sampler::Random),
            _ => Err(Error::Invalid(format!(
                "unknown sampler `{s}`: must be lhs, sobol or random"
            ))),
        }
    }
}

/// Where the rows of a sweep lie.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Design {
    /// Every combination of the axes, first axis slowest.
    Grid(Vec<Axis>),
    /// `n` sampled points in the ranges.
    Sample {
        /// The sampler.
        sampler: Sampler,
        /// Number of points.
        n: usize,
        /// The ranges, one per dimension.
        ranges: Vec<Range>,
        /// Seed.
        seed: u64,
    },
}

impl Design {
    /// A grid of `axes` (first slowest), those named in `log` spaced logarithmically.
    pub fn grid(mut axes: Vec<Axis>, log: &[String]) -> Result<Self, Error> {
        for name in log {
            let axis = axes.iter_mut().find(|a| &a.name == name).ok_or_else(|| {
                Error::Invalid(format!(
                    "logarithmic spacing: no grid axis is named `{name}`"
                ))
            })?;
            axis.set_log()?;
        }
        Ok(Design::Grid(axes))
    }

    /// `n` points drawn by `sampler` (from `seed`) in `ranges`, those named in `log` sampled
    /// uniformly in the logarithm.
    pub fn sample(
        sampler: Sampler,
        n: usize,
        mut ranges: Vec<Range>,
        log: &[String],
        seed: u64,
    ) -> Result<Self, Error> {
        for name in log {
            let range = ranges.iter_mut().find(|r| &r.name == name).ok_or_else(|| {
                Error::Invalid(format!(
                    "logarithmic sampling: no sampled range is named `{name}`"
                ))
            })?;
            range.set_log()?;
        }
        Ok(Design::Sample {
            sampler,
            n,
            ranges,
            seed,
        })
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            Design::Grid(axes) => axes.iter().map(|a| a.count).product(),
            Design::Sample { n, .. } => *n,
        }
    }

    /// Whether the design has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Column names and quantities, in column order.
    pub fn columns(&self) -> Vec<(String, Quantity)> {
        match self {
            Design::Grid(axes) => axes.iter().map(|a| (a.name.clone(), a.quantity)).collect(),
            Design::Sample { ranges, .. } => ranges
                .iter()
                .map(|r| (r.name.clone(), r.quantity))
                .collect(),
        }
    }

    /// Checks the design as a whole: at least one column, no column twice, and at most
    /// 10⁹ (`MAX_ROWS`) rows.
    pub fn validate(&self) -> Result<(), Error> {
        let cols = self.columns();
        if cols.is_empty() {
            return Err(Error::Invalid(
                "a sweep needs at least one axis or range".into(),
            ));
        }
        for (i, (a, _)) in cols.iter().enumerate() {
            if cols[..i].iter().any(|(b, _)| a == b) {
                return Err(Error::Invalid(format!("`{a}` is swept twice")));
            }
        }
        if let Design::Grid(axes) = self {
            // The product of the counts must fit a row index: refuse with the real count.
            let rows = axes
                .iter()
                .try_fold(1usize, |acc, a| acc.checked_mul(a.count));
            if rows.is_none_or(|r| r > MAX_ROWS) {
                let real: f64 = axes.iter().map(|a| a.count as f64).product();
                return Err(Error::Invalid(format!(
                    "the grid has {real:.6e} rows ({}); at most {MAX_ROWS} rows per sweep",
                    axes.iter()
                        .map(|a| format!("{} × {}", a.name, a.count))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        if let Design::Sample {
            sampler, n, ranges, ..
        } = self
        {
            if *n == 0 {
                return Err(Error::Invalid(
                    "a sample needs at least 1 point (n = 0)".into(),
                ));
            }
            if *sampler == Sampler::Sobol && ranges.len() > SOBOL_DIMS {
                return Err(Error::Invalid(format!(
                    "sobol supports at most {SOBOL_DIMS} ranges, got {}",
                    ranges.len()
                )));
            }
            if *n > MAX_ROWS {
                return Err(Error::Invalid(format!(
                    "a sample of {n} rows is too large (at most {MAX_ROWS} rows per sweep)"
                )));
            }
        }
        Ok(())
    }

    /// The values of row `i`, in column order.
    pub fn point(&self, i: usize) -> Vec<f64> {
        match self {
            Design::Grid(axes) => {
                let mut rest = i;
                let mut v = vec![0.0; axes.len()];
                for (d, a) in axes.iter().enumerate().rev() {
                    v[d] = a.value(rest % a.count);
                    rest /= a.count;
                }
                v
            }
            Design::Sample {
                sampler,
                n,
                ranges,
                seed,
            } => ranges
                .iter()
                .enumerate()
                .map(|(d, r)| {
                    let u = match sampler {
                        Sampler::Random => unit(hash3(*seed, i as u64, d as u64)),
                        Sampler::Sobol => sobol(i as u64, d, *seed),
                        Sampler::Lhs => {
                            let stratum =
                                permute(i as u64, *n as u64, hash3(*seed, d as u64, 0x1a5));
                            (stratum as f64 + unit(hash3(*seed, i as u64, d as u64 + 1000)))
                                / *n as f64
                        }
                    };
                    if r.log {
                        (r.lo.ln() + u * (r.hi.ln() - r.lo.ln()))
                            .exp()
                            .clamp(r.lo, r.hi)
                    } else {
                        r.lo + u * (r.hi - r.lo)
                    }
                })
                .collect(),
        }
    }
}
