//! Scenarios: parameters, a reboot wave, interventions, the clock and an initial state,
//! read from and written to TOML (format in docs/scenarios.md), validated with errors that name the
//! culprit.

use crate::error::{suggest, Error};

mod quantity;
use crate::model::schedule::{clock_text, Clock, DailyProfile, HOURS};
use crate::model::{Model, ParamSet};
pub use quantity::Quantity;
use serde_json::{json, Map, Value};
use toml::{Table, Value as Toml};

/// A reboot wave: a fraction of ordinary peers and of supernodes go down and rejoin the queue.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shock {
    /// Start time (minutes).
    pub at: f64,
    /// Fraction `f` of ordinary peers that reboot, in `[0, 1)`.
    pub fraction: f64,
    /// Fraction `c` of supernodes that reboot, in `[0, 1)`.
    pub sn_fraction: f64,
    /// Spread of the wave (minutes); 0 is instantaneous.
    pub window: f64,
}

impl Shock {
    /// An instantaneous wave at `t = 0` hitting peers and supernodes alike.
    pub fn instantaneous(fraction: f64) -> Self {
        Self {
            at: 0.0,
            fraction,
            sn_fraction: fraction,
            window: 0.0,
        }
    }

    /// Whether the wave is spread over its window. A window too short for any integration step
    /// to resolve — below [`Shock::RESOLVABLE`] times its start time (or times one time unit
    /// near `t = 0`) — acts as the instantaneous wave: a step shorter than that is lost in
    /// the rounding of `t`, and the flows other than the wave move the state by at most the
    /// window times their rate.
    pub fn is_spread(&self) -> bool {
        self.window > Self::RESOLVABLE * self.at.abs().max(1.0)
    }

    /// The shortest window, relative to the wave's start time, that is integrated as a spread
    /// wave (about 10⁶ rounding units of the start time).
    pub const RESOLVABLE: f64 = 1e-9;

    /// Per-member hazards `(eta_p, eta_s)` of a wave spread over its window.
    pub fn hazards(&self) -> (f64, f64) {
        (
            -(1.0 - self.fraction).ln() / self.window,
            -(1.0 - self.sn_fraction).ln() / self.window,
        )
    }
}

/// Changes to a scenario's reboot wave, each optional. A peers' fraction given without a
/// supernodes' fraction sets both (as in a scenario file's `[shock]`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ShockChange {
    /// Fraction of peers (and of supernodes, unless `sn_fraction` is given).
    pub fraction: Option<f64>,
    /// Fraction of supernodes.
    pub sn_fraction: Option<f64>,
    /// Spread of the wave (minutes).
    pub window: Option<f64>,
    /// Start time (minutes).
    pub at: Option<f64>,
}

/// A change of parameters at a given time: a step, or a linear ramp from the values in force
/// to the new ones over `[at, at + ramp]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Intervention {
    /// Time (minutes).
    pub at: f64,
    /// Parameter indices (in the model's table) and their new values.
    pub set: Vec<(usize, f64)>,
    /// Length of the ramp (minutes); 0 is a step.
    pub ramp: f64,
}

impl Intervention {
    /// A step change at `at`.
    pub fn step(at: f64, set: Vec<(usize, f64)>) -> Self {
        Self { at, set, ramp: 0.0 }
    }

    /// When the change is complete (`at + ramp`).
    pub fn end(&self) -> f64 {
        self.at + self.ramp
    }

    /// Whether the change is a ramp a run resolves: a ramp shorter than
    /// [`Shock::RESOLVABLE`] times its start time (or one time unit near `t = 0`) acts as a
    /// step, as a wave's window does.
    pub fn is_ramp(&self) -> bool {
        self.ramp > Shock::RESOLVABLE * self.at.abs().max(1.0)
    }
}

/// The parameters a run uses at each time: the scenario's, changed by its interventions (a
/// ramped one moving each value linearly from the value in force to the new one), times the
/// daily profiles read on the scenario's clock.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamPath {
    base: Vec<f64>,
    interventions: Vec<Intervention>,
    daily: Vec<DailyProfile>,
    clock: Option<Clock>,
}

impl ParamPath {
    /// The values in force at `t`, before any daily profile: every intervention with `at <= t`
    /// applied, a ramp under way at its point on the straight line.
    pub fn in_force(&self, t: f64) -> Vec<f64> {
        let mut p = self.base.clone();
        for iv in self.interventions.iter().filter(|iv| iv.at <= t) {
            for &(i, v) in &iv.set {
                p[i] = if iv.is_ramp() && t < iv.end() {
                    p[i] + (v - p[i]) * ((t - iv.at) / iv.ramp)
                } else {
                    v
                };
            }
        }
        p
    }

    /// The values the right-hand side uses at `t`: [`ParamPath::in_force`] times the daily
    /// profiles.
    pub fn at(&self, t: f64) -> Vec<f64> {
        let mut p = self.in_force(t);
        if let Some(c) = &self.clock {
            let h = c.hour(t);
            for d in &self.daily {
                p[d.param] *= d.at(h);
            }
        }
        p
    }

    /// Whether parameters change only in steps at the interventions (no ramp, no profile).
    pub fn is_stepwise(&self) -> bool {
        self.daily.is_empty() && !self.interventions.iter().any(Intervention::is_ramp)
    }

    /// The clock the daily profiles are read on (`None` without profiles).
    pub fn clock(&self) -> Option<Clock> {
        self.clock
    }
}

/// Everything a simulation needs besides the model and the solver options.
///
/// ```
/// use selfheal::{model::P2p, scenario::Scenario};
/// let sc = Scenario::from_toml(&P2p, r#"
///     name = "half the network reboots"
///     t_end = 2880
///     [params]
///     sn_capacity = 800.0
///     [shock]
///     fraction = 0.5
/// "#).unwrap();
/// assert_eq!(sc.params.get("sn_capacity").unwrap(), 800.0);
/// assert_eq!(sc.shock.unwrap().sn_fraction, 0.5); // defaults to the peers' fraction
///
/// let err = Scenario::from_toml(&P2p, "[params]\nretyr = 2.0").unwrap_err();
/// assert_eq!(err.to_string(), "unknown parameter `retyr` (did you mean `retry`?)");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// A title.
    pub name: String,
    /// The model file it is written for (`model = "models/aloha.toml"`, relative to the
    /// scenario file), if not the built-in model.
    pub model: Option<String>,
    /// Users who use the service that day (turns fractions into counts).
    pub population: f64,
    /// Clock time (RFC 3339, UTC) of `t = 0`, if given.
    pub start: Option<String>,
    /// End of the simulation (minutes).
    pub t_end: f64,
    /// Parameter values at `t = 0`.
    pub params: ParamSet,
    /// The reboot wave, if any (with several waves, the first: the one `--shock` and the
    /// analyses change).
    pub shock: Option<Shock>,
    /// Further waves after the first, in time order, each starting when the one before it has
    /// ended (a scenario file's second and later `[[shock]]` entries).
    pub later_shocks: Vec<Shock>,
    /// Parameter changes, in time order.
    pub interventions: Vec<Intervention>,
    /// The initial state (default: the healthy state).
    pub initial: Option<Vec<f64>>,
    /// Daily load profiles (at most one per parameter, in parameter order).
    pub daily: Vec<DailyProfile>,
}

/// Default number of users.
pub const DEFAULT_POPULATION: f64 = 24_000_000.0;
/// Longest horizon a scenario may have (in the model's time unit): at t = 1e10 the clock is
/// resolved to about 2e-6, far below any step the dynamics need; at 1e14 it is not.
pub const MAX_T_END: f64 = 1e10;
/// Default horizon (minutes): 48 hours.
pub const DEFAULT_T_END: f64 = 2880.0;

const TOP_KEYS: [&str; 10] = [
    "name",
    "model",
    "population",
    "start",
    "t_end",
    "params",
    "shock",
    "intervention",
    "initial",
    "daily",
];
const SHOCK_KEYS: [&str; 4] = ["at", "fraction", "sn_fraction", "window"];
const INTERVENTION_KEYS: [&str; 3] = ["at", "set", "ramp"];

fn unknown_key(key: &str, table: &str, allowed: &[&str]) -> Error {
    Error::UnknownKey {
        key: key.into(),
        table: table.into(),
        hint: suggest(key, allowed.iter().copied()),
    }
}

fn number(v: &Toml, what: &str) -> Result<f64, Error> {
    let x = match v {
        Toml::Float(f) => *f,
        Toml::Integer(i) => *i as f64,
        other => {
            return Err(Error::Invalid(format!(
                "`{what}` must be a number, got {} `{other}`",
                other.type_str()
            )))
        }
    };
    if x.is_finite() {
        Ok(x)
    } else {
        Err(Error::OutOfRange {
            name: what.into(),
            value: x,
            range: "finite".into(),
        })
    }
}

fn table<'a>(v: &'a Toml, what: &str) -> Result<&'a Table, Error> {
    v.as_table().ok_or_else(|| {
        Error::Invalid(format!(
            "`{what}` must be a table, got {} `{v}`",
            v.type_str()
        ))
    })
}

/// Refuses a spread wave for a model whose instantaneous wave moves the state but whose flow
/// during a spread wave is nothing (a model that implements [`Model::reboot_jump`] and not
/// [`Model::reboot_flow`]): such a wave would silently do nothing.
///
/// Validation runs once per sweep row: the flow, cheap, is looked at first, and the jump (for a
/// model file the time-1 map of its shock transitions, hundreds of right-hand sides) only
/// when the flow is nothing.
fn check_spread_wave<M: Model<N>, const N: usize>(model: &M, p: &[f64]) -> Result<(), Error> {
    let x = model.nominal_state(p);
    if model.reboot_flow(&x, p, 1.0, 1.0).amax() != 0.0 {
        return Ok(());
    }
    let Ok(jumped) = model.reboot_jump(&x, p, 0.5, 0.5) else {
        return Ok(()); // no wave at all: refused where a wave is applied, with its own message
    };
    if (jumped - x).amax() > 0.0 {
        return Err(Error::Unsupported(format!(
            "model `{}` defines an instantaneous wave but no flow for a spread one (reboot_flow): give shock.window = 0, or implement reboot_flow",
            model.name()
        )));
    }
    Ok(())
}

impl Scenario {
    /// The model's defaults, no shock, no interventions, 2880 time units (48 hours for the
    /// built-in model), from the healthy state; the model's population if it gives one.
    pub fn new<M: Model<N>, const N: usize>(model: &M) -> Self {
        Self {
            name: "default".into(),
            model: None,
            population: model.population().unwrap_or(DEFAULT_POPULATION),
            start: None,
            t_end: DEFAULT_T_END,
            params: ParamSet::defaults(model.params()),
            shock: None,
            later_shocks: vec![],
            interventions: vec![],
            initial: None,
            daily: vec![],
        }
    }

    /// Reads a scenario from TOML text and validates it.
    pub fn from_toml<M: Model<N>, const N: usize>(model: &M, text: &str) -> Result<Self, Error> {
        let doc: Table = text
            .parse()
            .map_err(|e: toml::de::Error| toml_error(text, &e))?;
        let mut sc = Self::new(model);
        for (key, v) in &doc {
            match key.as_str() {
                "name" => {
                    sc.name = v
                        .as_str()
                        .ok_or_else(|| {
                            Error::Invalid(format!("`name` must be a string, got `{v}`"))
                        })?
                        .to_string()
                }
                "model" => {
                    sc.model = Some(
                        v.as_str()
                            .ok_or_else(|| {
                                Error::Invalid(format!(
                                    "`model` must be the path of a model file, got `{v}`"
                                ))
                            })?
                            .to_string(),
                    )
                }
                "population" => sc.population = number(v, "population")?,
                "t_end" => sc.t_end = number(v, "t_end")?,
                "start" => match v {
                    // The same rule as the readings' times: a UTC instant, offset included.
                    Toml::Datetime(d)
                        if d.date.is_some() && d.time.is_some() && d.offset.is_some() =>
                    {
                        sc.start = Some(d.to_string())
                    }
                    _ => {
                        return Err(Error::Invalid(format!(
                            "`start` must be a date and time with its UTC offset such as 2007-08-16T00:00:00Z, got `{v}`"
                        )))
                    }
                },
                "params" => {
                    for (name, pv) in table(v, "params")? {
                        let x = number(pv, name)?;
                        sc.params.set(name, x)?;
                    }
                }
                "shock" => match v {
                    Toml::Array(list) => {
                        for (k, item) in list.iter().enumerate() {
                            let what = format!("shock {}", k + 1);
                            let w = parse_shock(table(item, &what)?).map_err(|e| e.context(&what))?;
                            if k == 0 {
                                sc.shock = Some(w);
                            } else {
                                sc.later_shocks.push(w);
                            }
                        }
                    }
                    _ => sc.shock = Some(parse_shock(table(v, "shock")?)?),
                },
                "intervention" => {
                    let list = v.as_array().ok_or_else(|| {
                        Error::Invalid(
                            "`intervention` must be written as [[intervention]] tables".into(),
                        )
                    })?;
                    for (k, item) in list.iter().enumerate() {
                        let what = format!("intervention {}", k + 1);
                        let iv = parse_intervention(&sc.params, table(item, &what)?, &what)?;
                        sc.interventions.push(iv);
                    }
                }
                "initial" => {
                    let t = table(v, "initial")?;
                    let states = model.states();
                    let names: Vec<&str> = states.iter().map(|s| s.name.as_ref()).collect();
                    for key in t.keys() {
                        if !names.contains(&key.as_str()) {
                            return Err(unknown_key(key, "[initial]", &names));
                        }
                    }
                    let mut x = Vec::with_capacity(N);
                    for name in &names {
                        let val = t.get(*name).ok_or_else(|| {
                            Error::Invalid(format!(
                                "[initial] must give `{name}` (all of {})",
                                names.join(", ")
                            ))
                        })?;
                        x.push(number(val, &format!("initial.{name}"))?);
                    }
                    sc.initial = Some(x);
                }
                "daily" => {
                    for (name, pv) in table(v, "daily")? {
                        let param = sc.params.index(name)?;
                        sc.daily.push(DailyProfile::new(param, hourly(pv, name)?));
                    }
                    sc.daily.sort_by_key(|d| d.param);
                }
                other => return Err(unknown_key(other, "the scenario", &TOP_KEYS)),
            }
        }
        sc.validate(model)?;
        Ok(sc)
    }

    /// Reads and validates a scenario file.
    pub fn from_file<M: Model<N>, const N: usize>(
        model: &M,
        path: &std::path::Path,
    ) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        let file = path.display().to_string();
        Self::from_toml(model, &text).map_err(|e| match e {
            Error::Parse {
                file: None,
                line,
                message,
            } => Error::Parse {
                file: Some(file),
                line,
                message,
            },
            e => e.context(file),
        })
    }

    /// Checks every rule of the format: ranges, time order, the initial state's region.
    pub fn validate<M: Model<N>, const N: usize>(&self, model: &M) -> Result<(), Error> {
        let range = |name: &str, value: f64, range: &str| Error::OutOfRange {
            name: name.into(),
            value,
            range: range.into(),
        };
        if !(self.t_end.is_finite() && self.t_end > 0.0 && self.t_end <= MAX_T_END) {
            return Err(range(
                "t_end",
                self.t_end,
                &format!("> 0 and at most {MAX_T_END:e} (beyond it the clock's rounding, ε·t, exceeds the steps the dynamics need)"),
            ));
        }
        if !(self.population.is_finite() && self.population > 0.0) {
            return Err(range("population", self.population, "finite and > 0"));
        }
        model.validate(self.params.values())?;
        let waves: Vec<&Shock> = self.waves().collect();
        for (k, s) in waves.iter().enumerate() {
            // One wave is named `shock`, several `shock K`.
            let name = |field: &str| {
                if waves.len() == 1 {
                    format!("shock.{field}")
                } else {
                    format!("shock {}: {field}", k + 1)
                }
            };
            for (field, v) in [("fraction", s.fraction), ("sn_fraction", s.sn_fraction)] {
                if !(v.is_finite() && (0.0..1.0).contains(&v)) {
                    return Err(range(&name(field), v, "in [0, 1)"));
                }
            }
            if !(s.at.is_finite() && s.at >= 0.0 && s.at < self.t_end) {
                return Err(range(
                    &name("at"),
                    s.at,
                    &format!("in [0, t_end = {})", self.t_end),
                ));
            }
            if !(s.window.is_finite() && s.window >= 0.0 && s.at + s.window <= self.t_end) {
                return Err(range(
                    &name("window"),
                    s.window,
                    &format!(
                        "finite, >= 0 and ending by t_end (at most {})",
                        self.t_end - s.at
                    ),
                ));
            }
            if k > 0 {
                let before = waves[k - 1];
                let end = before.at
                    + if before.is_spread() {
                        before.window
                    } else {
                        0.0
                    };
                if s.at < end || (s.at == before.at && !s.is_spread() && !before.is_spread()) {
                    return Err(Error::Invalid(format!(
                        "shock {} at {} starts before shock {} has ended (at {end}): list waves in time order, each after the one before it",
                        k + 1,
                        s.at,
                        k
                    )));
                }
            }
            if s.fraction > 0.0 || s.sn_fraction > 0.0 {
                // A model without a wave refuses the shock here, not midway through a run.
                let p = self.params.values();
                let x = model.nominal_state(p);
                let flow = s.window > 0.0 && model.reboot_flow(&x, p, 1.0, 1.0).amax() != 0.0;
                if let (false, Err(e)) = (flow, model.reboot_jump(&x, p, 0.0, 0.0)) {
                    return Err(e.context("shock"));
                }
                if s.window > 0.0 {
                    check_spread_wave(model, p)?;
                }
            }
        }
        let mut prev = 0.0;
        for (k, iv) in self.interventions.iter().enumerate() {
            let name = format!("intervention {}: at", k + 1);
            if !(iv.at.is_finite() && iv.at >= 0.0) {
                return Err(range(&name, iv.at, "finite and >= 0"));
            }
            if iv.at > self.t_end {
                return Err(range(
                    &name,
                    iv.at,
                    &format!("at most t_end = {}", self.t_end),
                ));
            }
            if iv.at < prev {
                return Err(Error::Invalid(format!(
                    "intervention {} at {} comes before intervention {} at {}: list interventions in time order",
                    k + 1,
                    iv.at,
                    k,
                    prev
                )));
            }
            prev = iv.at;
            if !(iv.ramp.is_finite() && iv.ramp >= 0.0 && iv.end() <= self.t_end) {
                return Err(range(
                    &format!("intervention {}: ramp", k + 1),
                    iv.ramp,
                    &format!(
                        "finite, >= 0 and ending by t_end (at most {})",
                        self.t_end - iv.at
                    ),
                ));
            }
            for &(i, v) in &iv.set {
                self.params.specs()[i].check(v)?;
                // A parameter still ramping towards an earlier value may not be set again.
                if let Some((j, earlier)) = self.interventions[..k]
                    .iter()
                    .enumerate()
                    .rev()
                    .find(|(_, e)| e.set.iter().any(|(p, _)| *p == i))
                {
                    if earlier.ramp > 0.0 && iv.at < earlier.end() {
                        return Err(Error::Invalid(format!(
                            "intervention {} at {} sets `{}` while intervention {} still ramps it (until {}): start it at {} or later",
                            k + 1,
                            iv.at,
                            self.params.specs()[i].name,
                            j + 1,
                            earlier.end(),
                            earlier.end()
                        )));
                    }
                }
            }
        }
        self.validate_daily(model)?;
        if let Some(x) = &self.initial {
            if x.len() != N {
                return Err(Error::Invalid(format!(
                    "initial state needs {N} values, got {}",
                    x.len()
                )));
            }
            let sv = nalgebra::SVector::<f64, N>::from_iterator(x.iter().copied());
            if !(x.iter().all(|v| v.is_finite()) && model.feasible(&sv, self.params.values())) {
                return Err(Error::Invalid(format!(
                    "initial state {} lies outside the feasible region of model `{}` at the scenario's parameters (each state within its range, listed states within their total)",
                    model
                        .states()
                        .iter()
                        .zip(x)
                        .map(|(s, v)| format!("{} = {v}", s.name))
                        .collect::<Vec<_>>()
                        .join(", "),
                    model.name(),
                )));
            }
        }
        Ok(())
    }

    /// Checks the daily profiles: a clock the model's time unit can be read on, and every value
    /// the profile gives (each value in force × the profile's least and greatest multiplier
    /// over the day, the interpolant between hours included) within the parameter's range.
    fn validate_daily<M: Model<N>, const N: usize>(&self, model: &M) -> Result<(), Error> {
        if self.daily.is_empty() {
            return Ok(());
        }
        self.clock(model).map_err(|e| e.context("daily"))?;

        for d in &self.daily {
            let spec = &self.params.specs()[d.param];
            let ((lo, hlo), (hi, hhi)) = d.range();
            let values = std::iter::once(self.params.values()[d.param]).chain(
                self.interventions.iter().flat_map(|iv| {
                    iv.set
                        .iter()
                        .filter(|(i, _)| *i == d.param)
                        .map(|(_, v)| *v)
                }),
            );
            for v in values {
                for (m, h) in [(lo, hlo), (hi, hhi)] {
                    if spec.check(v * m).is_err() {
                        return Err(Error::OutOfRange {
                            name: format!(
                                "daily.{}: {v} × the profile's {m:.6} at {}",
                                spec.name,
                                clock_text(h)
                            ),
                            value: v * m,
                            range: format!(
                                "{} (the interpolant between the hourly values overshoots near a sharp change; soften the profile there)",
                                spec.range_text()
                            ),
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// Wave `k` in time order (0: `shock`); panics when there is no such wave.
    pub fn wave(&self, k: usize) -> Shock {
        *self.waves().nth(k).expect("a wave of the scenario")
    }

    /// Every wave in time order: the first (`shock`), then the later ones.
    pub fn waves(&self) -> impl Iterator<Item = &Shock> + '_ {
        self.shock.iter().chain(&self.later_shocks)
    }

    /// Refuses ramps and daily profiles for a method that holds parameters constant between
    /// interventions (`what` names it).
    pub fn require_stepwise(&self, what: &str) -> Result<(), Error> {
        if let Some(k) = self.interventions.iter().position(Intervention::is_ramp) {
            return Err(Error::Unsupported(format!(
                "{what} holds parameters constant between interventions: intervention {} ramps (give ramp = 0 for a step)",
                k + 1
            )));
        }
        if !self.daily.is_empty() {
            return Err(Error::Unsupported(format!(
                "{what} holds parameters constant between interventions: remove [daily] (its profiles move parameters through the day)"
            )));
        }
        if !self.later_shocks.is_empty() {
            return Err(Error::Unsupported(format!(
                "{what} follows one wave: the scenario has {} (give a single [shock])",
                1 + self.later_shocks.len()
            )));
        }
        Ok(())
    }

    /// The clock the scenario's daily profiles are read on: the clock hour of `t = 0` (from
    /// `start`, midnight UTC without one) and the model's time unit.
    pub fn clock<M: Model<N>, const N: usize>(&self, model: &M) -> Result<Clock, Error> {
        Clock::new(self.start.as_deref(), model.time_unit())
    }

    /// Sets one parameter from `NAME=VALUE` text (as typed by a user), range-checked.
    pub fn set_assignment(&mut self, text: &str) -> Result<(), Error> {
        let (name, value) = text.split_once('=').ok_or_else(|| Error::Parse {
            file: None,
            line: None,
            message: format!("expected NAME=VALUE, got `{text}`"),
        })?;
        let v: f64 = value.trim().parse().map_err(|_| Error::Parse {
            file: None,
            line: None,
            message: format!("{}: `{}` is not a number", name.trim(), value.trim()),
        })?;
        self.params.set(name.trim(), v)
    }

    /// Applies a [`ShockChange`]: the wave is created (instantaneous, at `t = 0`, nothing
    /// rebooting) if the scenario has none and anything is changed. Not validated here: call
    /// [`Scenario::validate`] after all changes.
    pub fn change_shock(&mut self, change: &ShockChange) {
        if *change == ShockChange::default() {
            return;
        }
        let mut s = self.shock.unwrap_or(Shock::instantaneous(0.0));
        if let Some(f) = change.fraction {
            s.fraction = f;
            s.sn_fraction = f;
        }
        if let Some(c) = change.sn_fraction {
            s.sn_fraction = c;
        }
        if let Some(w) = change.window {
            s.window = w;
        }
        if let Some(t) = change.at {
            s.at = t;
        }
        self.shock = Some(s);
    }

    /// The parameter values in force at time `t`, before any daily profile (every
    /// intervention with `at <= t` applied, a ramp under way at its point on the line).
    pub fn params_at(&self, t: f64) -> Vec<f64> {
        self.path_with(None).in_force(t)
    }

    /// The parameters the run uses at each time ([`ParamPath`]); refused when the scenario has
    /// daily profiles and the model's time unit has no length on the clock.
    pub fn param_path<M: Model<N>, const N: usize>(&self, model: &M) -> Result<ParamPath, Error> {
        let clock = if self.daily.is_empty() {
            None
        } else {
            Some(self.clock(model)?)
        };
        Ok(self.path_with(clock))
    }

    fn path_with(&self, clock: Option<Clock>) -> ParamPath {
        ParamPath {
            base: self.params.values().to_vec(),
            interventions: self.interventions.clone(),
            daily: if clock.is_some() {
                self.daily.clone()
            } else {
                vec![]
            },
            clock,
        }
    }

    /// The parameters in force after every intervention.
    pub fn final_params(&self) -> ParamSet {
        let mut p = self.params.clone();
        for iv in &self.interventions {
            for &(i, v) in &iv.set {
                // Values were checked in `validate`.
                let _ = p.set_index(i, v);
            }
        }
        p
    }

    /// The scenario as TOML in the format [`Scenario::from_toml`] reads, parameters that
    /// differ from the model's defaults by name; `from_toml(to_toml())` gives the scenario
    /// back exactly (numbers are written in their shortest round-trip form).
    pub fn to_toml<M: Model<N>, const N: usize>(&self, model: &M) -> String {
        let specs = self.params.specs();
        let num = |v: f64| format!("{v:?}");
        let mut out = String::new();
        out += &format!("name = {}\n", Toml::String(self.name.clone()));
        if let Some(m) = &self.model {
            out += &format!("model = {}\n", Toml::String(m.clone()));
        }
        out += &format!("population = {}\n", num(self.population));
        if let Some(st) = &self.start {
            out += &format!("start = {st}\n");
        }
        out += &format!("t_end = {}\n", num(self.t_end));
        let changed: Vec<String> = specs
            .iter()
            .zip(self.params.values())
            .filter(|(s, v)| s.default.to_bits() != v.to_bits())
            .map(|(s, v)| format!("{} = {}\n", s.name, num(*v)))
            .collect();
        if !changed.is_empty() {
            out += "\n[params]\n";
            out += &changed.concat();
        }
        let header = if self.later_shocks.is_empty() {
            "[shock]"
        } else {
            "[[shock]]"
        };
        for w in self.waves() {
            out += &format!(
                "\n{header}\nat = {}\nfraction = {}\nsn_fraction = {}\nwindow = {}\n",
                num(w.at),
                num(w.fraction),
                num(w.sn_fraction),
                num(w.window)
            );
        }
        for iv in &self.interventions {
            let set: Vec<String> = iv
                .set
                .iter()
                .map(|(i, v)| format!("{} = {}", specs[*i].name, num(*v)))
                .collect();
            out += &format!(
                "\n[[intervention]]\nat = {}\nset = {{ {} }}\n",
                num(iv.at),
                set.join(", ")
            );
            if iv.ramp > 0.0 {
                out += &format!("ramp = {}\n", num(iv.ramp));
            }
        }
        if !self.daily.is_empty() {
            out += "\n[daily]\n";
            for d in &self.daily {
                let h: Vec<String> = d.hourly.iter().map(|v| num(*v)).collect();
                out += &format!("{} = [{}]\n", specs[d.param].name, h.join(", "));
            }
        }
        if let Some(x) = &self.initial {
            out += "\n[initial]\n";
            for (st, v) in model.states().iter().zip(x) {
                out += &format!("{} = {}\n", st.name, num(*v));
            }
        }
        out
    }

    /// The scenario as JSON (for summaries), parameters by name.
    pub fn to_json(&self) -> Value {
        let specs = self.params.specs();
        let params: Map<String, Value> = specs
            .iter()
            .zip(self.params.values())
            .map(|(s, v)| (s.name.to_string(), json!(v)))
            .collect();
        let interventions: Vec<Value> = self
            .interventions
            .iter()
            .map(|iv| {
                let set: Map<String, Value> = iv
                    .set
                    .iter()
                    .map(|(i, v)| (specs[*i].name.to_string(), json!(v)))
                    .collect();
                json!({"at": iv.at, "set": set, "ramp": iv.ramp})
            })
            .collect();
        json!({
            "name": self.name,
            "population": self.population,
            "start": self.start,
            "t_end": self.t_end,
            "params": params,
            "shock": self.shock.map(|s| json!({
                "at": s.at, "fraction": s.fraction, "sn_fraction": s.sn_fraction, "window": s.window
            })),
            "later_shocks": self.later_shocks.iter().map(|s| json!({
                "at": s.at, "fraction": s.fraction, "sn_fraction": s.sn_fraction, "window": s.window
            })).collect::<Vec<_>>(),
            "intervention": interventions,
            "initial": self.initial,
            "daily": self
                .daily
                .iter()
                .map(|d| (specs[d.param].name.to_string(), json!(d.hourly.to_vec())))
                .collect::<Map<String, Value>>(),
        })
    }
}

/// A TOML syntax error as one line: where (line, column and the text there) and what, in words
/// a user can act on.
fn toml_error(text: &str, e: &toml::de::Error) -> Error {
    let what = match e.message() {
        m if m.contains("as i128") || m.contains("as i64") => {
            "an integer too large to read; write it as a float (e.g. 1e20)".to_string()
        }
        m => m.trim().to_string(),
    };
    let Some(span) = e.span().filter(|s| s.start <= text.len()) else {
        return Error::Parse {
            file: None,
            line: None,
            message: format!("invalid TOML: {what}"),
        };
    };
    let before = &text[..span.start];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    let at: String = text[span.start..span.end.min(text.len())]
        .chars()
        .take(40)
        .collect();
    Error::Parse {
        file: None,
        line: Some(line),
        message: match at.trim() {
            "" => format!("invalid TOML, column {column}: {what}"),
            at => format!("invalid TOML, column {column} (`{at}`): {what}"),
        },
    }
}

fn parse_shock(t: &Table) -> Result<Shock, Error> {
    let mut s = Shock::instantaneous(0.0);
    let (mut f, mut sn) = (None, None);
    for (key, v) in t {
        let x = number(v, &format!("shock.{key}"))?;
        match key.as_str() {
            "at" => s.at = x,
            "fraction" => f = Some(x),
            "sn_fraction" => sn = Some(x),
            "window" => s.window = x,
            other => return Err(unknown_key(other, "[shock]", &SHOCK_KEYS)),
        }
    }
    // A wave without its size is a mistake, not a wave of size 0 (a crash of supernodes only
    // says `fraction = 0` and `sn_fraction`).
    s.fraction = f.ok_or_else(|| {
        Error::Invalid(
            "[shock] needs `fraction` (the share of peers that go down, in [0, 1); 0 with `sn_fraction` for supernodes only)"
                .into(),
        )
    })?;
    s.sn_fraction = sn.unwrap_or(s.fraction);
    Ok(s)
}

/// Largest hourly multiplier of a daily profile (the interpolant's range is computed exactly
/// only while its cubic's coefficients stay far from overflow).
pub const MAX_MULTIPLIER: f64 = 1e100;

/// A daily profile's 24 hourly multipliers: finite, non-negative, at most [`MAX_MULTIPLIER`].
fn hourly(v: &Toml, name: &str) -> Result<[f64; HOURS], Error> {
    let what = format!("daily.{name}");
    let list = v.as_array().ok_or_else(|| {
        Error::Invalid(format!(
            "`{what}` must be a list of {HOURS} hourly multipliers (hour 0 = midnight UTC), got {} `{v}`",
            v.type_str()
        ))
    })?;
    if list.len() != HOURS {
        return Err(Error::Invalid(format!(
            "`{what}` must have exactly {HOURS} hourly multipliers (hour 0 = midnight UTC), got {}",
            list.len()
        )));
    }
    let mut out = [0.0; HOURS];
    for (h, (o, x)) in out.iter_mut().zip(list).enumerate() {
        let m = number(x, &format!("{what}[{h}]"))?;
        if !(0.0..=MAX_MULTIPLIER).contains(&m) {
            return Err(Error::OutOfRange {
                name: format!("{what}[{h}] (hour {h:02}:00)"),
                value: m,
                range: format!(">= 0 and at most {MAX_MULTIPLIER:e}"),
            });
        }
        *o = m;
    }
    Ok(out)
}

fn parse_intervention(params: &ParamSet, t: &Table, what: &str) -> Result<Intervention, Error> {
    let mut at = None;
    let mut ramp = 0.0;
    let mut set = vec![];
    for (key, v) in t {
        match key.as_str() {
            "at" => at = Some(number(v, &format!("{what}: at"))?),
            "ramp" => ramp = number(v, &format!("{what}: ramp"))?,
            "set" => {
                for (name, pv) in table(v, &format!("{what}: set"))? {
                    let i = params.index(name)?;
                    set.push((i, number(pv, name)?));
                }
            }
            other => {
                return Err(unknown_key(
                    other,
                    &format!("[[intervention]] ({what})"),
                    &INTERVENTION_KEYS,
                ))
            }
        }
    }
    let at = at.ok_or_else(|| Error::Invalid(format!("{what} needs `at`")))?;
    if set.is_empty() {
        return Err(Error::Invalid(format!(
            "{what} needs `set` with at least one parameter"
        )));
    }
    Ok(Intervention { at, set, ramp })
}
