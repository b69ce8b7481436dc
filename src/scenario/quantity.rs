//! Quantities of a scenario by name: parameters, the wave, the clock, the population and the
//! interventions, as a sweep varies them and a calibration fits them.

use super::{Intervention, Scenario, Shock};
use crate::error::{suggest, Error};
use serde::Serialize;

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
    /// The length of intervention `k`'s ramp (from 0, in file order).
    InterventionRamp {
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
    /// For a quantity that is not a model parameter (whose range is its table entry's), the
    /// range `v` is outside of, as text (`None` when `v` is admissible): fractions in [0, 1),
    /// times and lengths ≥ 0, the population > 0. Parameters (`Param`, `Intervention`) are not
    /// judged here.
    pub fn valid_range_refuses(&self, v: f64) -> Option<String> {
        let ok = match self {
            Quantity::Shock | Quantity::SnShock => (0.0..1.0).contains(&v),
            Quantity::Window
            | Quantity::ShockAt
            | Quantity::TEnd
            | Quantity::InterventionAt { .. }
            | Quantity::InterventionRamp { .. } => v >= 0.0 && v.is_finite(),
            Quantity::Population => v > 0.0 && v.is_finite(),
            Quantity::Param(_) | Quantity::Intervention { .. } => true,
        };
        (!ok).then(|| {
            match self {
                Quantity::Shock | Quantity::SnShock => "in [0, 1)",
                Quantity::Population => "finite and > 0",
                _ => "finite and >= 0",
            }
            .to_string()
        })
    }

    /// Resolves a name: a parameter, `shock`, `sn_shock`, `window`, `shock_at`, `t_end`,
    /// `population`, `intervention.K.at`, `intervention.K.ramp` or `intervention.K.NAME` (K
    /// from 1, naming a parameter that intervention sets).
    pub fn parse(name: &str, base: &Scenario) -> Result<Self, Error> {
        if name.trim().is_empty() {
            return Err(Error::Invalid(format!(
                "an empty name: give a parameter or one of {}",
                SCENARIO_QUANTITIES.join(", ")
            )));
        }
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
            if pname == "ramp" {
                return Ok(Quantity::InterventionRamp { k: k - 1 });
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
                    .map(|s| s.name.as_ref())
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
            Quantity::InterventionRamp { k } => sc.interventions.get(k)?.ramp,
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
            Quantity::InterventionRamp { k } => sc.interventions[k].ramp = v,
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
