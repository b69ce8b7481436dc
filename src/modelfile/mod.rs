//! Model files: a capacity model written as TOML (populations, parameters, named expressions,
//! transitions with jumps and rates, a service level, shock transitions), loaded once and
//! compiled to postfix programs, then used like any Rust [`Model`] — with exact Jacobians, since
//! every expression is evaluated generically over the scalar. The format is documented in
//! `docs/model-files.md`; `models/` holds the shipped models.
//!
//! A file has a number of states known only when it is read, while models have it in their type
//! ([`Model<N>`]): [`ModelFile`] is the loaded, checked description and
//! [`ModelFile::typed`] gives the [`FileModel<N>`] for its `N`; [`crate::with_model_file!`] calls
//! generic code with the right `N` (1 to [`MAX_STATES`]).
//!
//! ```
//! use selfheal::modelfile::ModelFile;
//! use selfheal::model::{Model, ParamSet};
//! let mf = ModelFile::from_toml(r#"
//! name = "logistic"
//! [states]
//! x = { description = "share", max = 1 }
//! [params]
//! r = { default = 0.5, min = 0, description = "growth rate" }
//! [[transition]]
//! name = "growth"
//! jump = { x = 1 }
//! rate = "r*x*(1 - x)"
//! "#, "logistic.toml").unwrap();
//! let m = mf.typed::<1>().unwrap();
//! let p = ParamSet::defaults(m.params());
//! let dx = m.rhs(0.0, &nalgebra::SVector::from([0.25]), p.values());
//! assert_eq!(dx[0], 0.5 * 0.25 * 0.75);
//! ```

pub mod chain;
pub(crate) mod expr;
mod program;

use crate::error::{suggest, Error};
use crate::model::{Bound, Model, ParamSpec, Scalar, SearchRange, StateSpec};
use expr::{Expr, ExprError, Ref};
use indexmap::IndexMap;
use nalgebra::SVector;
use program::Program;
use serde::Deserialize;
use std::path::Path;
use std::sync::Arc;
use toml::Spanned;

/// Most states a model file may have (each `N` is compiled in).
pub const MAX_STATES: usize = 8;
/// Most `let` values a model file may have.
pub const MAX_LETS: usize = 64;

#[derive(Deserialize)]
#[serde(untagged)]
enum NumOrText {
    Num(f64),
    Text(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawState {
    #[serde(default)]
    description: String,
    #[serde(default)]
    min: Option<f64>,
    #[serde(default)]
    max: Option<Spanned<NumOrText>>,
    #[serde(default)]
    nominal: Option<Spanned<NumOrText>>,
    #[serde(default)]
    log_floor: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawParam {
    default: f64,
    #[serde(default)]
    min: Option<f64>,
    #[serde(default)]
    max: Option<f64>,
    #[serde(default)]
    open: bool,
    #[serde(default)]
    unit: Option<String>,
    #[serde(default)]
    symbol: Option<String>,
    #[serde(default)]
    description: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTransition {
    name: String,
    jump: Spanned<IndexMap<String, f64>>,
    rate: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    level: Spanned<String>,
    #[serde(default)]
    healthy_above: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawShock {
    fractions: Spanned<Vec<String>>,
    #[serde(default, rename = "transition")]
    transitions: Vec<RawTransition>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTotal {
    states: Spanned<Vec<String>>,
    max: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    time_unit: Option<String>,
    #[serde(default)]
    population: Option<f64>,
    states: Spanned<IndexMap<String, RawState>>,
    #[serde(default)]
    params: IndexMap<String, RawParam>,
    #[serde(default, rename = "let")]
    lets: IndexMap<String, Spanned<String>>,
    #[serde(default, rename = "transition")]
    transitions: Vec<RawTransition>,
    #[serde(default)]
    service: Option<RawService>,
    #[serde(default)]
    shock: Option<RawShock>,
    #[serde(default)]
    total: Option<RawTotal>,
    #[serde(default)]
    watched: Option<Spanned<String>>,
    #[serde(default)]
    online: Option<Spanned<String>>,
}

/// A state of a model file.
#[derive(Debug, Clone)]
pub struct FileState {
    /// Its name.
    pub name: String,
    /// What it is.
    pub description: String,
    /// Lower end of its range.
    pub min: f64,
    /// Upper end: a number, an expression of the parameters, or none.
    max: Option<Expr>,
    /// Where the healthy-state search starts (an expression of the parameters).
    nominal: Option<Expr>,
    /// Search for equilibria on a log scale from this value up.
    pub log_floor: Option<f64>,
}

/// A transition: a jump of the states at a rate.
#[derive(Debug, Clone)]
pub struct Transition {
    /// Its name.
    pub name: String,
    /// `(state index, change)` pairs.
    pub jump: Vec<(usize, f64)>,
    rate: Expr,
    /// Line of its rate in the file.
    pub line: usize,
}

/// A model file, read and checked: every name resolved, every expression compiled.
#[derive(Debug, Clone)]
pub struct ModelFile {
    /// The model's name.
    pub name: String,
    /// What it describes.
    pub description: String,
    /// The unit of time of its rates (`minute` by default).
    pub time_unit: String,
    /// Individuals per unit of state (for counts and the stochastic twin).
    pub population: Option<f64>,
    /// Where it was read from (for messages).
    pub source: String,
    /// FNV-1a digest of its text (what identifies its definition in a sweep's fingerprint).
    pub digest: u64,
    /// The states, in vector order.
    pub states: Vec<FileState>,
    params: Vec<ParamSpec>,
    lets: Vec<(String, Expr)>,
    /// The transitions.
    pub transitions: Vec<Transition>,
    service: Option<Expr>,
    /// The service level a healthy state has at least.
    pub healthy_above: f64,
    /// The shock's fraction names (the first is the one `--shock` sets).
    pub shock_fractions: Vec<String>,
    shock_transitions: Vec<Transition>,
    total: Option<(Vec<usize>, f64)>,
    watched: usize,
    /// Whether the file names its watched state (else recovery follows the service level).
    watched_given: bool,
    online: Option<Expr>,
    time_dependent: bool,
    /// The flow of the transitions and of the shock transitions as register programs (`None`:
    /// too large, evaluated through the expression programs).
    programs: [Option<Program>; 2],
}

/// Line (1-based) of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

struct Ctx<'a> {
    text: &'a str,
    source: &'a str,
}

impl Ctx<'_> {
    fn err(&self, offset: usize, message: String) -> Error {
        Error::Parse {
            file: Some(self.source.to_string()),
            line: Some(line_of(self.text, offset)),
            message,
        }
    }

    /// Compiles an expression found at `span`, naming `what` and the nearest valid name.
    fn compile(
        &self,
        text: &Spanned<String>,
        what: &str,
        resolve: &dyn Fn(&str) -> Option<Ref>,
        known: &[String],
    ) -> Result<Expr, Error> {
        Expr::compile(text.get_ref(), resolve).map_err(|e: ExprError| {
            let functions = expr::Func::ALL.iter().map(|(_, n, _)| *n);
            let hint = e
                .unknown
                .as_deref()
                .and_then(|u| {
                    if e.message.starts_with("unknown function") {
                        suggest(u, functions)
                    } else {
                        suggest(u, known.iter().map(String::as_str))
                    }
                })
                .map_or(String::new(), |h| format!(" (did you mean `{h}`?)"));
            self.err(
                text.span().start,
                format!(
                    "{what}: {}{hint}, at character {} of `{}`",
                    e.message,
                    e.at + 1,
                    text.get_ref()
                ),
            )
        })
    }
}

fn reserved(name: &str) -> bool {
    name == "t" || name.starts_with("h_") || expr::Func::ALL.iter().any(|(_, n, _)| *n == name)
}

fn valid_name(name: &str) -> bool {
    let mut c = name.chars();
    c.next().is_some_and(|f| f.is_alphabetic() || f == '_')
        && c.all(|ch| ch.is_alphanumeric() || ch == '_')
}

impl ModelFile {
    /// Reads and checks a model file.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
            path: path.display().to_string(),
            source: e,
        })?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// Reads and checks a model file's text; `source` names it in messages.
    pub fn from_toml(text: &str, source: &str) -> Result<Self, Error> {
        let ctx = Ctx { text, source };
        let raw: Raw = toml::from_str(text).map_err(|e: toml::de::Error| {
            let line = e.span().map(|s| line_of(text, s.start));
            Error::Parse {
                file: Some(source.to_string()),
                line,
                message: format!("invalid model file: {}", e.message().trim()),
            }
        })?;
        let states_at = raw.states.span().start;
        let raw_states = raw.states.into_inner();
        if raw_states.is_empty() {
            return Err(ctx.err(
                states_at,
                "[states] is empty: a model needs at least one state".into(),
            ));
        }
        if raw_states.len() > MAX_STATES {
            return Err(ctx.err(
                states_at,
                format!(
                    "{} states: at most {MAX_STATES} are supported",
                    raw_states.len()
                ),
            ));
        }
        // Names: distinct, valid, not reserved.
        let mut names: Vec<String> = vec![];
        let mut check_name = |name: &str, table: &str| -> Result<(), Error> {
            if !valid_name(name) {
                return Err(ctx.err(states_at, format!("{table}: `{name}` is not a valid name (letters, digits and _, not starting with a digit)")));
            }
            if reserved(name) {
                return Err(ctx.err(
                    states_at,
                    format!("{table}: `{name}` is reserved (t, h_NAME and function names)"),
                ));
            }
            if names.iter().any(|n| n == name) {
                return Err(ctx.err(states_at, format!("{table}: `{name}` is defined twice")));
            }
            names.push(name.to_string());
            Ok(())
        };
        for n in raw_states.keys() {
            check_name(n, "[states]")?;
        }
        for n in raw.params.keys() {
            check_name(n, "[params]")?;
        }
        for n in raw.lets.keys() {
            check_name(n, "[let]")?;
        }
        let state_names: Vec<&String> = raw_states.keys().collect();
        let param_names: Vec<&String> = raw.params.keys().collect();
        let let_names: Vec<&String> = raw.lets.keys().collect();
        let fractions: Vec<String> = raw
            .shock
            .as_ref()
            .map(|s| s.fractions.get_ref().clone())
            .unwrap_or_default();
        let mut known: Vec<String> = names.clone();
        known.push("t".into());
        known.extend(fractions.iter().map(|f| format!("h_{f}")));

        // Parameters.
        let mut params = vec![];
        for (name, rp) in &raw.params {
            let bound = |v: Option<f64>| match v {
                None => Bound::Unbounded,
                Some(v) if rp.open => Bound::Open(v),
                Some(v) => Bound::Closed(v),
            };
            let spec = ParamSpec {
                name: name.to_string().into(),
                symbol: rp.symbol.as_deref().unwrap_or(name).to_string().into(),
                unit: rp.unit.as_deref().unwrap_or("-").to_string().into(),
                default: rp.default,
                lower: bound(rp.min),
                upper: bound(rp.max),
                meaning: rp.description.clone().into(),
            };
            for v in [rp.min, rp.max].into_iter().flatten() {
                if !v.is_finite() {
                    return Err(ctx.err(
                        states_at,
                        format!("[params] {name}: bounds must be finite (got {v})"),
                    ));
                }
            }
            if let (Some(a), Some(b)) = (rp.min, rp.max) {
                if a > b {
                    return Err(ctx.err(
                        states_at,
                        format!("[params] {name}: min = {a} is above max = {b}"),
                    ));
                }
            }
            if !spec.admits(rp.default) {
                return Err(ctx.err(
                    states_at,
                    format!(
                        "[params] {name}: default = {} is outside its range ({})",
                        rp.default,
                        spec.range_text()
                    ),
                ));
            }
            params.push(spec);
        }
        if params.len() > crate::model::MAX_PARAMS {
            return Err(ctx.err(
                states_at,
                format!(
                    "{} parameters: at most {} are supported",
                    params.len(),
                    crate::model::MAX_PARAMS
                ),
            ));
        }
        if raw.lets.len() > MAX_LETS {
            return Err(ctx.err(
                states_at,
                format!(
                    "{} let values: at most {MAX_LETS} are supported",
                    raw.lets.len()
                ),
            ));
        }

        let find = |list: &[&String], n: &str| list.iter().position(|s| s.as_str() == n);
        let params_only = |n: &str| find(&param_names, n).map(Ref::Param);
        // Everything a rate may use: states, parameters, earlier lets, t (and hazards in shock
        // transitions).
        let scope = |n: &str, lets_visible: usize, hazards: bool| -> Option<Ref> {
            if n == "t" {
                return Some(Ref::Time);
            }
            if let Some(i) = find(&state_names, n) {
                return Some(Ref::State(i));
            }
            if let Some(i) = find(&param_names, n) {
                return Some(Ref::Param(i));
            }
            if let Some(i) = find(&let_names, n) {
                return (i < lets_visible).then_some(Ref::Let(i));
            }
            if hazards {
                if let Some(f) = n.strip_prefix("h_") {
                    return fractions.iter().position(|x| x == f).map(Ref::Hazard);
                }
            }
            None
        };

        // States.
        let mut states = vec![];
        for (name, rs) in &raw_states {
            let bound_expr =
                |v: &Option<Spanned<NumOrText>>, what: &str| -> Result<Option<Expr>, Error> {
                    match v {
                        None => Ok(None),
                        Some(s) => {
                            let text = match s.get_ref() {
                                NumOrText::Num(x) => format!("{x:e}"),
                                NumOrText::Text(t) => t.clone(),
                            };
                            let sp = Spanned::new(s.span(), text);
                            ctx.compile(
                                &sp,
                                &format!("[states] {name}: {what}"),
                                &params_only,
                                &known,
                            )
                            .map(Some)
                        }
                    }
                };
            let min = rs.min.unwrap_or(0.0);
            if !min.is_finite() {
                return Err(ctx.err(states_at, format!("[states] {name}: min must be finite")));
            }
            if let Some(f) = rs.log_floor {
                if !(f.is_finite() && f > 0.0 && f >= min) {
                    return Err(ctx.err(states_at, format!("[states] {name}: log_floor = {f} must be finite, > 0 and at least min = {min}")));
                }
            }
            states.push(FileState {
                name: name.to_string(),
                description: rs.description.clone(),
                min,
                max: bound_expr(&rs.max, "max")?,
                nominal: bound_expr(&rs.nominal, "nominal")?,
                log_floor: rs.log_floor,
            });
        }

        // Lets, in order: each sees only the ones before it.
        let mut lets = vec![];
        for (i, (name, text)) in raw.lets.iter().enumerate() {
            let resolve = |n: &str| scope(n, i, false);
            let e = Expr::compile(text.get_ref(), &resolve);
            if let Err(ExprError {
                unknown: Some(u), ..
            }) = &e
            {
                if let Some(j) = find(&let_names, u) {
                    let why = if j == i { "itself" } else { "a later let" };
                    return Err(ctx.err(
                        text.span().start,
                        format!("[let] {name} uses {why}, `{u}`: lets are evaluated in order, so a let may use only the ones above it (no cycles)"),
                    ));
                }
            }
            let e = ctx.compile(text, &format!("[let] {name}"), &resolve, &known)?;
            lets.push((name.clone(), e));
        }
        let all = |n: &str| scope(n, usize::MAX, false);
        let all_hazards = |n: &str| scope(n, usize::MAX, true);

        let transitions_of = |raw: &[RawTransition],
                              hazards: bool,
                              table: &str|
         -> Result<Vec<Transition>, Error> {
            let mut out = vec![];
            for rt in raw {
                let at = rt.jump.span().start;
                if rt.jump.get_ref().is_empty() {
                    return Err(
                        ctx.err(at, format!("{table} `{}`: the jump moves nothing", rt.name))
                    );
                }
                let mut jump = vec![];
                for (s, v) in rt.jump.get_ref() {
                    let Some(i) = find(&state_names, s) else {
                        let hint = suggest(s, state_names.iter().map(|n| n.as_str()))
                            .map_or(String::new(), |h| format!(" (did you mean `{h}`?)"));
                        return Err(ctx.err(
                            at,
                            format!(
                                "{table} `{}`: the jump names `{s}`, which is not a state{hint}",
                                rt.name
                            ),
                        ));
                    };
                    if !(v.is_finite() && *v != 0.0) {
                        return Err(ctx.err(at, format!("{table} `{}`: the jump of `{s}` must be a finite, non-zero number (got {v})", rt.name)));
                    }
                    jump.push((i, *v));
                }
                let resolve: &dyn Fn(&str) -> Option<Ref> =
                    if hazards { &all_hazards } else { &all };
                let rate = ctx.compile(
                    &rt.rate,
                    &format!("{table} `{}`: rate", rt.name),
                    resolve,
                    &known,
                )?;
                out.push(Transition {
                    name: rt.name.clone(),
                    jump,
                    rate,
                    line: line_of(text, rt.rate.span().start),
                });
            }
            Ok(out)
        };
        let transitions = transitions_of(&raw.transitions, false, "[[transition]]")?;
        if transitions.is_empty() {
            return Err(ctx.err(
                states_at,
                "no [[transition]]: a model needs at least one".into(),
            ));
        }
        let (shock_fractions, shock_transitions) = match &raw.shock {
            None => (vec![], vec![]),
            Some(sh) => {
                let f = sh.fractions.get_ref();
                if f.is_empty() || f.len() > 2 {
                    return Err(ctx.err(sh.fractions.span().start, format!("[shock] fractions: one or two names (the wave's fraction, and one for serving members), got {}", f.len())));
                }
                if sh.transitions.is_empty() {
                    return Err(ctx.err(
                        sh.fractions.span().start,
                        "[shock] has no [[shock.transition]]: a wave must move someone".into(),
                    ));
                }
                (
                    f.clone(),
                    transitions_of(&sh.transitions, true, "[[shock.transition]]")?,
                )
            }
        };
        let service = match &raw.service {
            None => None,
            Some(s) => Some(ctx.compile(&s.level, "[service] level", &all, &known)?),
        };
        let healthy_above = raw
            .service
            .as_ref()
            .and_then(|s| s.healthy_above)
            .unwrap_or(crate::equilibria::HEALTHY_SERVICE);
        if !(0.0..=1.0).contains(&healthy_above) {
            return Err(ctx.err(
                states_at,
                format!("[service] healthy_above = {healthy_above} must be in [0, 1]"),
            ));
        }
        let total = match &raw.total {
            None => None,
            Some(t) => {
                let mut idx = vec![];
                for s in t.states.get_ref() {
                    let Some(i) = find(&state_names, s) else {
                        return Err(ctx.err(
                            t.states.span().start,
                            format!("[total] names `{s}`, which is not a state"),
                        ));
                    };
                    idx.push(i);
                }
                if !(t.max.is_finite() && t.max > 0.0) {
                    return Err(ctx.err(
                        t.states.span().start,
                        format!("[total] max = {} must be finite and > 0", t.max),
                    ));
                }
                Some((idx, t.max))
            }
        };
        let watched = match &raw.watched {
            None => 0,
            Some(w) => find(&state_names, w.get_ref()).ok_or_else(|| {
                ctx.err(
                    w.span().start,
                    format!("watched = `{}` is not a state", w.get_ref()),
                )
            })?,
        };
        let online = match &raw.online {
            None => None,
            Some(o) => Some(ctx.compile(o, "online", &all, &known)?),
        };
        if let Some(pop) = raw.population {
            if !(pop.is_finite() && pop > 0.0) {
                return Err(ctx.err(
                    states_at,
                    format!("population = {pop} must be finite and > 0"),
                ));
            }
        }
        let time_dependent = transitions
            .iter()
            .chain(&shock_transitions)
            .any(|t| t.rate.uses.contains(&Ref::Time))
            || lets.iter().any(|(_, e)| e.uses.contains(&Ref::Time));
        let program = |list: &[Transition]| {
            Program::compile(
                states.len(),
                params.len(),
                shock_fractions.len(),
                lets.iter().map(|(_, e)| e),
                list.iter().map(|t| (&t.rate, t.jump.as_slice())),
            )
        };
        let programs = [program(&transitions), program(&shock_transitions)];
        let mf = Self {
            name: raw.name,
            description: raw.description,
            time_unit: raw.time_unit.unwrap_or_else(|| "minute".into()),
            population: raw.population,
            source: source.to_string(),
            digest: text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            }),
            states,
            params,
            lets,
            transitions,
            service,
            healthy_above,
            shock_fractions,
            shock_transitions,
            total,
            watched,
            watched_given: raw.watched.is_some(),
            online,
            time_dependent,
            programs,
        };
        mf.probe_rates()?;
        Ok(mf)
    }

    /// Refuses a wave when the file defines no shock transitions.
    pub(crate) fn check_shock(&self) -> Result<(), Error> {
        if self.shock_transitions.is_empty() {
            return Err(Error::Unsupported(format!(
                "model `{}` ({}) has no [shock]: it defines no reboot wave",
                self.name, self.source
            )));
        }
        Ok(())
    }

    /// Number of states.
    pub fn dim(&self) -> usize {
        self.states.len()
    }

    /// The parameter table.
    pub fn params(&self) -> &[ParamSpec] {
        &self.params
    }

    /// The model with its number of states in the type; fails if `N` is not [`Self::dim`].
    pub fn typed<const N: usize>(&self) -> Result<FileModel<N>, Error> {
        if self.dim() != N {
            return Err(Error::Invalid(format!(
                "model file {} has {} states, not {N}",
                self.source,
                self.dim()
            )));
        }
        Ok(FileModel {
            file: Arc::new(self.clone()),
        })
    }

    /// The transitions (`which` = 0) or the shock transitions (1), as the register programs
    /// are numbered.
    fn list(&self, which: usize) -> &[Transition] {
        if which == 0 {
            &self.transitions
        } else {
            &self.shock_transitions
        }
    }

    /// Evaluates the lets and calls `each(transition, rate)` for every transition of `list`.
    #[inline]
    fn rates<T: Scalar>(
        &self,
        list: &[Transition],
        t: T,
        x: &[T],
        p: &[T],
        h: &[T],
        each: impl FnMut(&Transition, T),
    ) {
        // A buffer no longer than needed: it is filled anew for every evaluation.
        if self.lets.len() <= 8 {
            self.rates_in::<T, 8>(list, t, x, p, h, each)
        } else {
            self.rates_in::<T, MAX_LETS>(list, t, x, p, h, each)
        }
    }

    #[inline]
    fn rates_in<T: Scalar, const L: usize>(
        &self,
        list: &[Transition],
        t: T,
        x: &[T],
        p: &[T],
        h: &[T],
        mut each: impl FnMut(&Transition, T),
    ) {
        let lets = self.lets_at::<T, L>(t, x, p, h);
        for tr in list {
            let r = tr.rate.eval(&|r| load(r, t, x, p, &lets, h));
            each(tr, r);
        }
    }

    /// A state as messages give it: `name = value, …`.
    pub(crate) fn state_words(&self, x: &[f64]) -> String {
        self.states
            .iter()
            .zip(x)
            .map(|(s, v)| format!("{} = {v:e}", s.name))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The `let` values at a state, in file order (each sees the ones before it).
    #[inline]
    fn lets_at<T: Scalar, const L: usize>(&self, t: T, x: &[T], p: &[T], h: &[T]) -> [T; L] {
        let mut lets = [T::from(0.0); L];
        for (i, (_, e)) in self.lets.iter().enumerate() {
            let v = {
                let lets = &lets;
                e.eval(&|r| load(r, t, x, p, lets, h))
            };
            lets[i] = v;
        }
        lets
    }

    /// A parameter-only expression at `p`.
    fn of_params(e: &Expr, p: &[f64]) -> f64 {
        e.eval(&|r| match r {
            Ref::Param(i) => p[i],
            _ => f64::NAN,
        })
    }

    /// Upper end of state `i` at `p` for feasibility and projection: its `max` (infinite
    /// when it has none, or when it depends on parameters and `p` does not give them all).
    fn upper(&self, i: usize, p: &[f64]) -> f64 {
        match &self.states[i].max {
            Some(e) if e.is_constant() || p.len() >= self.params.len() => {
                let v = Self::of_params(e, p);
                if v.is_nan() {
                    f64::INFINITY
                } else {
                    v
                }
            }
            _ => f64::INFINITY,
        }
    }

    /// Upper end of state `i` at `p`, if it has one.
    pub fn state_max(&self, i: usize, p: &[f64]) -> Option<f64> {
        self.states[i].max.as_ref().map(|e| Self::of_params(e, p))
    }

    /// Every rate at points spread over the states' ranges, at the default parameters: a
    /// negative or non-finite rate is an error naming the transition, the state and its line.
    fn probe_rates(&self) -> Result<(), Error> {
        let p: Vec<f64> = self.params.iter().map(|s| s.default).collect();
        let n = self.dim();
        let hi: Vec<f64> = (0..n)
            .map(|i| {
                let m = self.state_max(i, &p).filter(|v| v.is_finite());
                let m = m.unwrap_or(self.states[i].min + 1.0);
                match self.total {
                    Some((ref idx, tot)) if idx.contains(&i) => m.min(tot),
                    _ => m,
                }
            })
            .collect();
        let h = [0.5, 0.5];
        for k in 0..64u32 {
            // A low-discrepancy point in the box (and in the total, when there is one).
            let mut x: Vec<f64> = (0..n)
                .map(|i| {
                    let u = crate::qmc::sobol(u64::from(k), i, 0);
                    let lo = self.states[i].min;
                    lo + 0.95 * u * (hi[i] - lo)
                })
                .collect();
            if let Some((ref idx, tot)) = self.total {
                let s: f64 = idx.iter().map(|i| x[*i]).sum();
                if s > 0.95 * tot {
                    for i in idx {
                        x[*i] *= 0.95 * tot / s;
                    }
                }
            }
            let mut bad: Option<(String, f64, usize)> = None;
            let mut check = |tr: &Transition, r: f64| {
                if bad.is_none() && !(r.is_finite() && r >= 0.0) {
                    bad = Some((tr.name.clone(), r, tr.line));
                }
            };
            self.rates(&self.transitions, 0.0, &x, &p, &h, &mut check);
            self.rates(&self.shock_transitions, 0.0, &x, &p, &h, &mut check);
            if let Some((name, r, line)) = bad {
                return Err(Error::Parse {
                    file: Some(self.source.clone()),
                    line: Some(line),
                    message: format!(
                        "transition `{name}`: its rate is {r} at t = 0, {} (default parameters); a rate must be finite and >= 0 wherever the states are valid",
                        self.state_words(&x)
                    ),
                });
            }
        }
        Ok(())
    }
}

#[inline(always)]
fn load<T: Scalar>(r: Ref, t: T, x: &[T], p: &[T], lets: &[T], h: &[T]) -> T {
    match r {
        Ref::State(i) => x[i],
        Ref::Param(i) => p[i],
        Ref::Let(i) => lets[i],
        Ref::Hazard(i) => h[i],
        Ref::Time => t,
    }
}

/// A model file as a [`Model`] with `N` states (from [`ModelFile::typed`]).
#[derive(Debug, Clone)]
pub struct FileModel<const N: usize> {
    file: Arc<ModelFile>,
}

impl<const N: usize> FileModel<N> {
    /// The model file.
    pub fn file(&self) -> &ModelFile {
        &self.file
    }

    /// The flow of the transitions (`shock`: of the shock transitions, with hazards `h`).
    #[inline]
    fn flow<T: Scalar>(
        &self,
        shock: bool,
        t: T,
        x: &SVector<T, N>,
        p: &[T],
        h: &[T],
    ) -> SVector<T, N> {
        let mut dx = SVector::<T, N>::from_element(T::from(0.0));
        if let Some(prog) = &self.file.programs[usize::from(shock)] {
            prog.flow(t, x.as_slice(), p, h, dx.as_mut_slice());
            return dx;
        }
        let list = self.file.list(usize::from(shock));
        self.file.rates(list, t, x.as_slice(), p, h, |tr, r| {
            for &(i, v) in &tr.jump {
                dx[i] += r * T::from(v);
            }
        });
        dx
    }
}

impl<const N: usize> Model<N> for FileModel<N> {
    fn name(&self) -> &str {
        &self.file.name
    }

    fn states(&self) -> [StateSpec; N] {
        std::array::from_fn(|i| StateSpec {
            name: self.file.states[i].name.clone().into(),
            meaning: self.file.states[i].description.clone().into(),
        })
    }

    fn params(&self) -> &[ParamSpec] {
        &self.file.params
    }

    fn time_unit(&self) -> &str {
        &self.file.time_unit
    }

    fn population(&self) -> Option<f64> {
        // A file that gives no population counts individuals in its states.
        Some(self.file.population.unwrap_or(1.0))
    }

    fn definition(&self) -> Option<String> {
        Some(format!("{:016x}", self.file.digest))
    }

    fn fractions(&self) -> bool {
        // States that sum to one, every one of them counted.
        self.file
            .total
            .as_ref()
            .is_some_and(|(idx, v)| *v == 1.0 && idx.len() == N)
    }

    fn rhs<T: Scalar>(&self, t: T, x: &SVector<T, N>, p: &[T]) -> SVector<T, N> {
        let z = T::from(0.0);
        self.flow(false, t, x, p, &[z, z])
    }

    fn nominal_state(&self, p: &[f64]) -> SVector<f64, N> {
        SVector::from_fn(|i, _| {
            let s = &self.file.states[i];
            s.nominal
                .as_ref()
                .map_or(s.min, |e| ModelFile::of_params(e, p))
        })
    }

    fn search_box(&self, p: &[f64]) -> [SearchRange; N] {
        let x = self.nominal_state(p);
        std::array::from_fn(|i| {
            let s = &self.file.states[i];
            let mut hi = self
                .file
                .state_max(i, p)
                .filter(|v| v.is_finite())
                .unwrap_or(s.min + 10.0 * (1.0 + x[i].abs()));
            if let Some((ref idx, tot)) = self.file.total {
                if idx.contains(&i) {
                    hi = hi.min(tot);
                }
            }
            match s.log_floor {
                Some(f) if f < hi => SearchRange {
                    lo: f,
                    hi,
                    log: true,
                },
                _ => SearchRange {
                    lo: s.min,
                    hi,
                    log: false,
                },
            }
        })
    }

    fn autonomous(&self) -> bool {
        !self.file.time_dependent
    }

    fn feasible(&self, x: &SVector<f64, N>, p: &[f64]) -> bool {
        let f = &self.file;
        x.iter()
            .enumerate()
            .all(|(i, v)| *v >= f.states[i].min && *v <= f.upper(i, p))
            && f.total
                .as_ref()
                .is_none_or(|(idx, tot)| idx.iter().map(|i| x[*i]).sum::<f64>() <= *tot)
    }

    /// Clipped to each state's range at `p`, then onto the total's face if over it (the
    /// common shift that makes the listed states sum to the total, found by bisection).
    fn project(&self, x: &SVector<f64, N>, p: &[f64]) -> Option<SVector<f64, N>> {
        if !x.iter().all(|v| v.is_finite()) {
            return None;
        }
        let f = &self.file;
        let hi: Vec<f64> = (0..N).map(|i| f.upper(i, p)).collect();
        let mut y = SVector::<f64, N>::from_fn(|i, _| {
            x[i].clamp(f.states[i].min, hi[i].max(f.states[i].min))
        });
        if let Some((idx, tot)) = &f.total {
            let sum = |tau: f64| -> f64 {
                idx.iter()
                    .map(|i| (x[*i] - tau).clamp(f.states[*i].min, hi[*i]))
                    .sum()
            };
            if sum(0.0) > *tot {
                let (mut a, mut b) = (0.0, x.amax().abs() + tot.abs() + 1.0);
                for _ in 0..200 {
                    let m = 0.5 * (a + b);
                    if sum(m) > *tot {
                        a = m;
                    } else {
                        b = m;
                    }
                }
                for i in idx {
                    y[*i] = (x[*i] - b).clamp(f.states[*i].min, hi[*i]);
                }
            }
        }
        Some(y)
    }

    fn watched(&self) -> usize {
        self.file.watched
    }

    fn recovery_by_service(&self) -> bool {
        !self.file.watched_given && self.file.service.is_some()
    }

    fn online<T: Scalar>(&self, x: &SVector<T, N>) -> T {
        match &self.file.online {
            // The online count may use states and lets but not parameters (none are given).
            Some(e) => {
                let z = T::from(0.0);
                e.eval(&|r| match r {
                    Ref::State(i) => x[i],
                    _ => z,
                })
            }
            None => x[self.file.watched],
        }
    }

    fn service_level(&self, x: &SVector<f64, N>, p: &[f64]) -> Option<f64> {
        let e = self.file.service.as_ref()?;
        let lets = self
            .file
            .lets_at::<f64, MAX_LETS>(0.0, x.as_slice(), p, &[]);
        Some(e.eval(&|r| load(r, 0.0, x.as_slice(), p, &lets, &[])))
    }

    fn healthy_level(&self) -> f64 {
        self.file.healthy_above
    }

    /// The time-1 map of the shock transitions with hazards `−ln(1 − f)` and `−ln(1 − c)`
    /// (MODEL_FILES.md): classical Runge–Kutta with Richardson extrapolation, generic over the
    /// scalar so that its sensitivities are exact derivatives of the computed map.
    fn reboot_jump<T: Scalar>(
        &self,
        x: &SVector<T, N>,
        p: &[T],
        f: T,
        c: T,
    ) -> Result<SVector<T, N>, Error> {
        self.file.check_shock()?;
        crate::model::check_wave(f.re(), c.re())?;
        let one = T::from(1.0);
        let h = [-(one - f).ln(), -(one - c).ln()];
        let hmax = h[0].re().max(h[1].re());
        let steps = ((hmax * 400.0).ceil() as usize).clamp(64, 200_000);
        let run = |n: usize| {
            let dt = T::from(1.0 / n as f64);
            let half = T::from(0.5 / n as f64);
            let mut y = *x;
            let z = T::from(0.0);
            for _ in 0..n {
                let k1 = self.flow(true, z, &y, p, &h);
                let k2 = self.flow(true, z, &(y + k1 * half), p, &h);
                let k3 = self.flow(true, z, &(y + k2 * half), p, &h);
                let k4 = self.flow(true, z, &(y + k3 * dt), p, &h);
                y += (k1 + (k2 + k3) * T::from(2.0) + k4) * T::from(1.0 / (6.0 * n as f64));
            }
            y
        };
        let coarse = run(steps);
        let fine = run(2 * steps);
        Ok((fine * T::from(16.0) - coarse) * T::from(1.0 / 15.0))
    }

    fn reboot_flow<T: Scalar>(
        &self,
        x: &SVector<T, N>,
        p: &[T],
        eta_p: T,
        eta_s: T,
    ) -> SVector<T, N> {
        let h = [eta_p, eta_s];
        self.flow(true, T::from(0.0), x, p, &h)
    }
}

/// Calls `$body` with `$m` bound to the [`FileModel`] of `$file` (a [`ModelFile`]) for its
/// number of states, 1 to [`MAX_STATES`]; evaluates to the body's value.
#[macro_export]
macro_rules! with_model_file {
    ($file:expr, |$m:ident| $body:expr) => {{
        let file: &$crate::modelfile::ModelFile = $file;
        match file.dim() {
            1 => {
                let $m = file.typed::<1>().expect("dim 1");
                $body
            }
            2 => {
                let $m = file.typed::<2>().expect("dim 2");
                $body
            }
            3 => {
                let $m = file.typed::<3>().expect("dim 3");
                $body
            }
            4 => {
                let $m = file.typed::<4>().expect("dim 4");
                $body
            }
            5 => {
                let $m = file.typed::<5>().expect("dim 5");
                $body
            }
            6 => {
                let $m = file.typed::<6>().expect("dim 6");
                $body
            }
            7 => {
                let $m = file.typed::<7>().expect("dim 7");
                $body
            }
            _ => {
                let $m = file.typed::<8>().expect("dim 8");
                $body
            }
        }
    }};
}
