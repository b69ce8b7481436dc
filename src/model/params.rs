//! Parameter tables: one place where each parameter's name, unit, default and range live.

use crate::error::{suggest, Error};
use std::borrow::Cow;
use std::fmt;

/// One end of a parameter's valid range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    /// No bound at this end (values must still be finite).
    Unbounded,
    /// The end value itself is allowed.
    Closed(f64),
    /// The end value itself is excluded.
    Open(f64),
}

impl Bound {
    /// The end value, if there is one (closed or open).
    pub fn value(&self) -> Option<f64> {
        match *self {
            Bound::Unbounded => None,
            Bound::Closed(v) | Bound::Open(v) => Some(v),
        }
    }
}

/// Name, unit, default, valid range and meaning of one parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamSpec {
    /// Name used everywhere: scenario files, `--set`, CSV headers, docs.
    pub name: Cow<'static, str>,
    /// Symbol in the model's equations.
    pub symbol: Cow<'static, str>,
    /// Unit (`1/min`, `req/min`, `-` for dimensionless).
    pub unit: Cow<'static, str>,
    /// Default value.
    pub default: f64,
    /// Lower end of the valid range.
    pub lower: Bound,
    /// Upper end of the valid range.
    pub upper: Bound,
    /// One line saying what it is.
    pub meaning: Cow<'static, str>,
}

impl ParamSpec {
    /// A parameter with names known at compile time (usable in a `static` table). Names
    /// made at run time go in the fields directly (`name: text.into()`): they are
    /// [`Cow`]s, borrowed or owned.
    pub const fn new(
        name: &'static str,
        symbol: &'static str,
        unit: &'static str,
        default: f64,
        (lower, upper): (Bound, Bound),
        meaning: &'static str,
    ) -> Self {
        Self {
            name: Cow::Borrowed(name),
            symbol: Cow::Borrowed(symbol),
            unit: Cow::Borrowed(unit),
            default,
            lower,
            upper,
            meaning: Cow::Borrowed(meaning),
        }
    }

    /// Whether `v` is finite and inside the valid range.
    pub fn admits(&self, v: f64) -> bool {
        v.is_finite()
            && match self.lower {
                Bound::Unbounded => true,
                Bound::Closed(a) => v >= a,
                Bound::Open(a) => v > a,
            }
            && match self.upper {
                Bound::Unbounded => true,
                Bound::Closed(b) => v <= b,
                Bound::Open(b) => v < b,
            }
    }

    /// The valid range in words, e.g. `finite and > 0` or `in [0, 1]`.
    pub fn range_text(&self) -> String {
        RangeText(self.lower, self.upper).to_string()
    }

    /// Checks one value, with an error that names the parameter, the value and the range.
    pub fn check(&self, v: f64) -> Result<(), Error> {
        if self.admits(v) {
            Ok(())
        } else {
            Err(Error::OutOfRange {
                name: self.name.to_string(),
                value: v,
                range: self.range_text(),
            })
        }
    }
}

/// Formats a range for messages and the `params` table.
pub(crate) struct RangeText(pub Bound, pub Bound);

impl fmt::Display for RangeText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.0, self.1) {
            (Bound::Unbounded, Bound::Unbounded) => write!(f, "finite"),
            (Bound::Closed(a), Bound::Unbounded) => write!(f, "finite and >= {a}"),
            (Bound::Open(a), Bound::Unbounded) => write!(f, "finite and > {a}"),
            (Bound::Unbounded, Bound::Closed(b)) => write!(f, "finite and <= {b}"),
            (Bound::Unbounded, Bound::Open(b)) => write!(f, "finite and < {b}"),
            (lo, hi) => {
                let (l, a) = match lo {
                    Bound::Closed(a) => ('[', a),
                    Bound::Open(a) => ('(', a),
                    Bound::Unbounded => unreachable!(),
                };
                let (r, b) = match hi {
                    Bound::Closed(b) => (']', b),
                    Bound::Open(b) => (')', b),
                    Bound::Unbounded => unreachable!(),
                };
                write!(f, "in {l}{a}, {b}{r}")
            }
        }
    }
}

/// Checks a whole parameter vector against a table.
pub(crate) fn validate_against(specs: &[ParamSpec], p: &[f64]) -> Result<(), Error> {
    if specs.len() != p.len() {
        return Err(Error::Invalid(format!(
            "expected {} parameter values, got {}",
            specs.len(),
            p.len()
        )));
    }
    specs.iter().zip(p).try_for_each(|(s, v)| s.check(*v))
}

/// Parameter values of a model, addressed by name through the model's table.
///
/// ```
/// use selfheal::model::{Model, ParamSet, P2p};
/// let mut p = ParamSet::defaults(P2p.params());
/// p.set("sn_capacity", 500.0).unwrap();
/// assert_eq!(p.get("sn_capacity").unwrap(), 500.0);
/// let err = p.set("retyr", 2.0).unwrap_err().to_string();
/// assert!(err.contains("did you mean `retry`"));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ParamSet {
    specs: Vec<ParamSpec>,
    values: Vec<f64>,
}

impl ParamSet {
    /// Every parameter at its default.
    pub fn defaults(specs: &[ParamSpec]) -> Self {
        Self {
            specs: specs.to_vec(),
            values: specs.iter().map(|s| s.default).collect(),
        }
    }

    /// A random valid set near the defaults, for testing a model across its parameters: each
    /// parameter log-uniform within a factor `spread` (≥ 1) of its default, drawing from `rng`;
    /// a value drawn outside the parameter's range keeps its default, and parameters whose
    /// default is 0 stay 0. With `zero_chance`, a parameter whose range starts at a closed 0
    /// is set to 0 with that probability (one more draw per such parameter).
    pub fn random_near(
        specs: &[ParamSpec],
        rng: &mut crate::qmc::SplitMix,
        spread: f64,
        zero_chance: Option<f64>,
    ) -> Self {
        let mut ps = Self::defaults(specs);
        for (k, spec) in specs.iter().enumerate() {
            if spec.default == 0.0 {
                continue;
            }
            let mut v = spec.default * spread.powf(2.0 * rng.next() - 1.0);
            if !spec.admits(v) {
                v = spec.default;
            }
            if let Some(chance) = zero_chance {
                if matches!(spec.lower, Bound::Closed(0.0)) && rng.next() < chance {
                    v = 0.0;
                }
            }
            ps.values[k] = v;
        }
        ps
    }

    /// The table.
    pub fn specs(&self) -> &[ParamSpec] {
        &self.specs
    }

    /// The values, in table order (what [`crate::model::Model::rhs`] receives).
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// Position of a parameter in the table, or an error suggesting the nearest name.
    pub fn index(&self, name: &str) -> Result<usize, Error> {
        self.specs
            .iter()
            .position(|s| s.name == name)
            .ok_or_else(|| Error::UnknownParam {
                name: name.to_string(),
                hint: suggest(name, self.specs.iter().map(|s| s.name.as_ref())),
            })
    }

    /// Value of a named parameter.
    pub fn get(&self, name: &str) -> Result<f64, Error> {
        Ok(self.values[self.index(name)?])
    }

    /// Sets a named parameter after checking it against its range.
    pub fn set(&mut self, name: &str, value: f64) -> Result<(), Error> {
        let k = self.index(name)?;
        self.specs[k].check(value)?;
        self.values[k] = value;
        Ok(())
    }

    /// Sets parameter `k` after checking it against its range.
    pub fn set_index(&mut self, k: usize, value: f64) -> Result<(), Error> {
        self.specs[k].check(value)?;
        self.values[k] = value;
        Ok(())
    }
}
