//! What a sweep varies: quantities by name, grids and samplers. Every point is a pure function
//! of the design and the row index.

use crate::error::{suggest, Error};
use crate::scenario::{Intervention, Scenario, Shock};
use serde::Serialize;

/// Most rows one sweep may have (10^9; a shard of a larger study is a sweep of its own).
pub const MAX_ROWS: usize = 1_000_000_000;

/// A quantity a sweep can vary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Quantity {
    /// A model parameter (index in the table).
    Param(usize),
    /// The reboot fraction of peers (and of supernodes, unless `SnShock` is also an axis).
    Shock,
    /// The reboot fraction of supernodes.
    SnShock,
    /// The spread of the wave (minutes).
    Window,
    /// The time of the wave (minutes).
    ShockAt,
    /// The end of the simulation (minutes).
    TEnd,
    /// Users who use the service that day (scales fractions to counts).
    Population,
    /// The time of intervention `k` (from 0, in file order).
    InterventionAt {
        /// Intervention index (from 0).
        k: usize,
    },
    /// The value set for parameter `param` by intervention `k` (from 0, in file order).
    Intervention {
        /// Intervention index (from 0).
        k: usize,
        /// Parameter index.
        param: usize,
    },
}

const SCENARIO_QUANTITIES: [&str; 6] = [
    "shock",
    "sn_shock",
    "window",
    "shock_at",
    "t_end",
    "population",
];

impl Quantity {
    /// Resolves a name: a parameter, `shock`, `sn_shock`, `window`, `shock_at`, `t_end`,
    /// `population`, `intervention.K.at` or `intervention.K.NAME` (K from 1, naming a parameter
    /// that intervention sets).
    pub fn parse(name: &str, base: &Scenario) -> Result<Self, Error> {
        match name {
            "shock" => return Ok(Quantity::Shock),
            "sn_shock" => return Ok(Quantity::SnShock),
            "window" => return Ok(Quantity::Window),
            "shock_at" => return Ok(Quantity::ShockAt),
            "t_end" => return Ok(Quantity::TEnd),
            "population" => return Ok(Quantity::Population),
            _ => {}
        }
        if let Some(rest) = name.strip_prefix("intervention.") {
            let (k, pname) = rest.split_once('.').ok_or_else(|| {
                Error::Invalid(format!(
                    "`{name}`: write interventions as intervention.K.NAME"
                ))
            })?;
            let k: usize = k
                .parse()
                .ok()
                .filter(|k| *k >= 1 && *k <= base.interventions.len())
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "`{name}`: K must be 1..={} (the scenario's interventions in file order)",
                        base.interventions.len()
                    ))
                })?;
            if pname == "at" {
                return Ok(Quantity::InterventionAt { k: k - 1 });
            }
            let param = base.params.index(pname)?;
            if !base.interventions[k - 1]
                .set
                .iter()
                .any(|(i, _)| *i == param)
            {
                return Err(Error::Invalid(format!(
                    "`{name}`: intervention {k} does not set `{pname}`"
                )));
            }
            return Ok(Quantity::Intervention { k: k - 1, param });
        }
        match base.params.index(name) {
            Ok(i) => Ok(Quantity::Param(i)),
            Err(_) => {
                let names = base
                    .params
                    .specs()
                    .iter()
                    .map(|s| s.name)
                    .chain(SCENARIO_QUANTITIES);
                Err(Error::UnknownParam {
                    name: name.into(),
                    hint: suggest(name, names),
                })
            }
        }
    }

    /// The quantity's value in a scenario (`None` for a wave quantity of a scenario without a
    /// shock, or an intervention value the intervention does not set).
    pub fn value(&self, sc: &Scenario) -> Option<f64> {
        Some(match *self {
            Quantity::Param(i) => sc.params.values()[i],
            Quantity::Shock => sc.shock?.fraction,
            Quantity::SnShock => sc.shock?.sn_fraction,
            Quantity::Window => sc.shock?.window,
            Quantity::ShockAt => sc.shock?.at,
            Quantity::TEnd => sc.t_end,
            Quantity::Population => sc.population,
            Quantity::InterventionAt { k } => sc.interventions.get(k)?.at,
            Quantity::Intervention { k, param } => {
                sc.interventions
                    .get(k)?
                    .set
                    .iter()
                    .find(|(i, _)| *i == param)?
                    .1
            }
        })
    }

    /// Applies a value to a scenario; parameters are range-checked here, scenario quantities
    /// when the scenario is validated.
    pub fn apply(&self, sc: &mut Scenario, v: f64) -> Result<(), Error> {
        match *self {
            Quantity::Param(i) => sc.params.set_index(i, v)?,
            Quantity::Shock => {
                let s = shock_of(sc);
                s.fraction = v;
                s.sn_fraction = v;
            }
            Quantity::SnShock => shock_of(sc).sn_fraction = v,
            Quantity::Window => shock_of(sc).window = v,
            Quantity::ShockAt => shock_of(sc).at = v,
            Quantity::TEnd => sc.t_end = v,
            Quantity::Population => sc.population = v,
            Quantity::InterventionAt { k } => sc.interventions[k].at = v,
            Quantity::Intervention { k, param } => {
                let iv: &mut Intervention = &mut sc.interventions[k];
                for (i, val) in iv.set.iter_mut() {
                    if *i == param {
                        *val = v;
                    }
                }
            }
        }
        Ok(())
    }
}

/// The scenario's shock, created (instantaneous, zero) if it has none.
fn shock_of(sc: &mut Scenario) -> &mut Shock {
    sc.shock.get_or_insert(Shock::instantaneous(0.0))
}

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
        let count: usize = parts[2]
            .trim()
            .parse()
            .map_err(|_| bad(&format!("COUNT `{}` is not a whole number", parts[2])))?;
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
        // Weighted means of the ends: exact at both ends and free of accumulated steps.
        if self.log {
            ((a * self.start.ln() + b * self.stop.ln()) / d).exp()
        } else {
            (a * self.start + b * self.stop) / d
        }
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

/// Most dimensions the Sobol' sampler supports.
pub const SOBOL_DIMS: usize = 12;

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
    /// [`MAX_ROWS`] rows.
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

/// SplitMix64 finaliser: a well-mixed 64-bit hash.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn hash3(a: u64, b: u64, c: u64) -> u64 {
    mix(mix(mix(a) ^ b) ^ c)
}

/// A uniform number in [0, 1) from 53 bits of a hash.
fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// A seeded bijection of `[0, n)` evaluated at `i`, in O(1) memory: an invertible mixing of the
/// smallest power-of-two domain, walked until it lands inside `[0, n)`.
fn permute(i: u64, n: u64, seed: u64) -> u64 {
    let bits = 64 - (n.max(2) - 1).leading_zeros();
    let mask = if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let mut x = i;
    loop {
        // Each round is a bijection on `bits`-bit integers.
        for r in 0..4u64 {
            let k = mix(seed ^ r) & mask;
            x ^= k;
            x = x.wrapping_mul(mix(seed.wrapping_add(r)) | 1) & mask;
            x ^= (x >> (bits / 2).max(1)) & mask;
        }
        if x < n {
            return x;
        }
    }
}

/// Primitive polynomials (degree s, coefficients a) and initial direction numbers of the
/// Sobol' sequence for dimensions 2.. (Joe & Kuo, "new-joe-kuo-6.21201").
const SOBOL_POLY: [(u32, u32, [u32; 5]); SOBOL_DIMS - 1] = [
    (1, 0, [1, 0, 0, 0, 0]),
    (2, 1, [1, 3, 0, 0, 0]),
    (3, 1, [1, 3, 1, 0, 0]),
    (3, 2, [1, 1, 1, 0, 0]),
    (4, 1, [1, 1, 3, 3, 0]),
    (4, 4, [1, 3, 5, 13, 0]),
    (5, 2, [1, 1, 5, 5, 17]),
    (5, 4, [1, 1, 5, 5, 5]),
    (5, 7, [1, 1, 7, 11, 19]),
    (5, 11, [1, 1, 5, 1, 1]),
    (5, 13, [1, 1, 1, 3, 11]),
];

/// The 32 direction numbers of dimension `d` (from 0), as 32-bit fractions.
fn directions(d: usize) -> [u32; 32] {
    let mut v = [0u32; 32];
    if d == 0 {
        for (k, vk) in v.iter_mut().enumerate() {
            *vk = 1u32 << (31 - k);
        }
        return v;
    }
    let (s, a, m) = SOBOL_POLY[d - 1];
    let s = s as usize;
    for k in 0..s {
        v[k] = m[k] << (31 - k);
    }
    for k in s..32 {
        let mut x = v[k - s] ^ (v[k - s] >> s);
        for j in 1..s {
            if (a >> (s - 1 - j)) & 1 == 1 {
                x ^= v[k - j];
            }
        }
        v[k] = x;
    }
    v
}

/// Point `i` of the Sobol' sequence in dimension `d`, with a seeded digital shift.
pub(crate) fn sobol(i: u64, d: usize, seed: u64) -> f64 {
    let v = directions(d);
    let mut x = 0u32;
    let mut bits = i;
    let mut k = 0;
    while bits > 0 && k < 32 {
        if bits & 1 == 1 {
            x ^= v[k];
        }
        bits >>= 1;
        k += 1;
    }
    let shift = if seed == 0 {
        0
    } else {
        hash3(seed, d as u64, 0x50b) as u32
    };
    (x ^ shift) as f64 / 4_294_967_296.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sobol_points_stratify_every_dimension() {
        // The first 2^m points of each dimension hit every interval [j/2^m, (j+1)/2^m) once.
        for d in 0..SOBOL_DIMS {
            for m in [4u32, 8] {
                let n = 1usize << m;
                let mut seen = vec![false; n];
                for i in 0..n {
                    let cell = (sobol(i as u64, d, 0) * n as f64) as usize;
                    assert!(!seen[cell], "dimension {d}, m {m}: cell {cell} twice");
                    seen[cell] = true;
                }
            }
        }
        // Dimensions 0 and 1 form a (0, m, 2)-net: one point in every 2^a × 2^(m−a) box.
        let m = 6;
        let n = 1usize << m;
        for a in 0..=m {
            let mut seen = vec![false; n];
            for i in 0..n {
                let x = (sobol(i as u64, 0, 0) * (1 << a) as f64) as usize;
                let y = (sobol(i as u64, 1, 0) * (1 << (m - a)) as f64) as usize;
                let cell = x * (1 << (m - a)) + y;
                assert!(!seen[cell]);
                seen[cell] = true;
            }
        }
    }

    #[test]
    fn permutation_is_a_bijection() {
        for n in [1u64, 2, 7, 100, 1000] {
            let mut seen = vec![false; n as usize];
            for i in 0..n {
                let p = permute(i, n, 42) as usize;
                assert!(!seen[p]);
                seen[p] = true;
            }
        }
    }
}
