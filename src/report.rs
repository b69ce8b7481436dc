//! The report a newcomer reads first: simulate a scenario of any model (the reference model or
//! a model file), find its equilibria, critical shock and tipping points, and write the CSVs,
//! the figures and a short `report.md` that says in plain words what they mean.

use crate::analysis::codim2::{fold_curves, Plane};
use crate::analysis::continuation::{
    continue_equilibria, Continuation, ContinuationOptions, SpecialPoint,
};
use crate::analysis::tipping::{
    basin_boundary_slice, critical_shock, critical_window, Landscape, TippingOptions,
};
use crate::analysis::tipping_map::{shock_map, MapAxis, MapState, ShockMap};
use crate::calibrate::{read_readings, Reading, Weighting};
use crate::error::Error;
use crate::files::write_atomic;
use crate::model::{Model, P2p, System};
use crate::output::{continuation_csv, equilibria_csv, trajectory_csv};
use crate::plot::{
    Bifurcation, BranchLine, Figure, MissingCells, Outage, Phase, Plot, Series, TippingMap,
};
use crate::scenario::{Scenario, Shock};
use crate::simulate::{simulate, Outcome, SimOptions, Simulation};
use crate::solve::SolverStats;
use crate::sweep::Axis;
use nalgebra::{Const, DimMin, SVector};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Observed online users: minutes from the scenario's t = 0, users, and a note.
pub type Observation = (f64, f64, String);

/// What the report found (the numbers its text is made of).
#[derive(Debug, Clone)]
pub struct Report {
    /// Files written, in order.
    pub files: Vec<PathBuf>,
    /// Outcome of the scenario.
    pub outcome: Outcome,
    /// Critical shock of the initial parameters.
    pub critical_shock: Option<f64>,
    /// The report's two parameters (supernode and dedicated capacity for the reference model).
    pub axes: [String; 2],
    /// Folds in the first parameter.
    pub capacity_folds: Vec<f64>,
    /// Folds in the second parameter.
    pub dedicated_folds: Vec<f64>,
    /// Elasticities of f*: (parameter, d f*/d ln p), largest magnitude first.
    pub levers: Vec<(String, Option<f64>)>,
}

/// The report's default scenario (`data/skype2007.toml`), shipped inside the library so that
/// the report runs from any directory.
pub const DEFAULT_SCENARIO: &str = include_str!("../data/skype2007.toml");

/// The name the default scenario is reported under.
pub const DEFAULT_SCENARIO_NAME: &str = "data/skype2007.toml";

/// The public readings drawn beside the default scenario (`data/skype2007_online.csv`).
pub const DEFAULT_OBSERVATIONS: &str = include_str!("../data/skype2007_online.csv");

/// The default scenario and its readings ([`DEFAULT_SCENARIO`], [`DEFAULT_OBSERVATIONS`]).
pub fn default_scenario() -> Result<(Scenario, Vec<Observation>), Error> {
    let sc = Scenario::from_toml(&P2p, DEFAULT_SCENARIO)
        .map_err(|e| e.context(DEFAULT_SCENARIO_NAME))?;
    let start = sc
        .start
        .clone()
        .ok_or_else(|| Error::Invalid(format!("{DEFAULT_SCENARIO_NAME}: no `start` clock time")))?;
    let readings = crate::calibrate::data::read_readings_from(
        DEFAULT_OBSERVATIONS.as_bytes(),
        "data/skype2007_online.csv",
        &start,
        &Weighting::default(),
    )?;
    Ok((sc, observations(&readings)))
}

/// Readings as the figures draw them: time, users and note.
pub fn observations(readings: &[Reading]) -> Vec<Observation> {
    readings
        .iter()
        .map(|r| (r.t, r.users, r.note.clone()))
        .collect()
}

/// Reads observed online users (`time`, `online_users`, optional `note`) relative to `start`
/// for a model in minutes (see [`read_readings`] for the format).
pub fn read_observations(path: &Path, start: &str) -> Result<Vec<Observation>, Error> {
    read_observations_in(path, start, 60.0)
}

/// [`read_observations`] for a model whose unit of time is `seconds_per_unit` seconds.
pub fn read_observations_in(
    path: &Path,
    start: &str,
    seconds_per_unit: f64,
) -> Result<Vec<Observation>, Error> {
    let weighting = Weighting {
        seconds_per_unit,
        ..Weighting::default()
    };
    Ok(observations(&read_readings(path, start, &weighting)?))
}

fn csv_err(e: csv::Error) -> Error {
    Error::csv_write("CSV output", e)
}

fn write_continuation<M: Model<N>, const N: usize>(
    model: &M,
    path: &Path,
    c: &Continuation<N>,
) -> Result<(), Error> {
    write_atomic(path, true, |w| continuation_csv(w, model, c))
}

/// How figures and words give a model's times and states: the clock unit shown (hours for a
/// model in minutes, else the model's own unit) and whether states are fractions of users.
#[derive(Debug, Clone)]
pub struct Units {
    /// Model time units per unit shown (60 for minutes shown as hours).
    pub per: f64,
    /// The unit shown, singular (`hour`, `slot`).
    pub unit: String,
    /// States are fractions of the population (axes stop at 1).
    pub fractions: bool,
}

impl Units {
    /// The units of `model`.
    pub fn of<M: Model<N>, const N: usize>(model: &M) -> Self {
        let t = model.time_unit();
        let (per, unit) = if ["min", "minute", "minutes"].contains(&t) {
            (60.0, "hour".to_string())
        } else {
            (1.0, t.trim_end_matches('s').to_string())
        };
        Self {
            per,
            unit,
            fractions: model.fractions(),
        }
    }

    /// A model time in the unit shown.
    pub fn time(&self, t: f64) -> f64 {
        t / self.per
    }

    /// The unit shown, plural.
    pub fn units(&self) -> String {
        format!("{}s", self.unit)
    }

    /// What a state is measured in, for an axis: `fraction of users` or `per unit state`.
    pub fn state_desc(&self) -> &'static str {
        if self.fractions {
            "fraction of users"
        } else {
            "model units"
        }
    }

    /// What the state times the population counts.
    pub fn count_desc(&self) -> &'static str {
        if self.fractions {
            "users"
        } else {
            "individuals"
        }
    }
}

/// A value with five significant digits, without trailing zeros.
fn sig(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let mag = v.abs().log10().floor() as i32;
    if !(-4..6).contains(&mag) {
        return format!("{v:.4e}");
    }
    crate::output::significant(v, 5)
}

fn users(x: f64, population: f64) -> String {
    user_count(x * population)
}

/// A number of users as people read it: `1234567` → `1.23 million`, `45678` → `46 thousand`.
pub fn user_count(u: f64) -> String {
    if u >= 1e6 {
        format!("{:.2} million", u / 1e6)
    } else if u >= 1e3 {
        format!("{:.0} thousand", u / 1e3)
    } else if u >= 100.0 {
        format!("{u:.0}")
    } else {
        // Small counts (a model file's individuals) keep three significant digits.
        format!("{:.3}", u)
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    }
}

/// The outage time series of a simulated scenario: every state of the model, the wave, the
/// interventions and (optionally) observed online users.
pub fn outage_figure<M: Model<N>, const N: usize>(
    model: &M,
    sc: &Scenario,
    sim: &Simulation<N>,
    observed: &[Observation],
) -> Figure {
    let u = Units::of(model);
    let samples = sim.sample(model, 10.0 * u.per / 60.0);
    let series: Vec<Series> = model
        .states()
        .iter()
        .enumerate()
        .map(|(i, st)| Series {
            label: st.name.to_string(),
            points: samples.iter().map(|(t, x)| (u.time(*t), x[i])).collect(),
        })
        .collect();
    let specs = sc.params.specs();
    Figure::new(Plot::Outage(Outage {
        title: sc.name.clone(),
        series,
        x_desc: format!("time ({})", u.units()),
        y_desc: u.state_desc().into(),
        y2_desc: u.count_desc().into(),
        upper: u.fractions.then_some(1.0),
        population: sc.population,
        shock: sc
            .shock
            .map(|sh| (u.time(sh.at), u.time(sh.at + sh.window))),
        shock_label: if u.fractions { "reboot wave" } else { "wave" }.into(),
        interventions: sc
            .interventions
            .iter()
            .map(|iv| {
                let what: Vec<String> = iv
                    .set
                    .iter()
                    .map(|(i, v)| format!("{} = {v}", specs[*i].name))
                    .collect();
                (u.time(iv.at), what.join(", "))
            })
            .collect(),
        observed: observed
            .iter()
            .filter(|o| o.0 >= 0.0 && o.0 <= sc.t_end)
            .map(|o| (u.time(o.0), o.1.max(1.0)))
            .collect(),
    }))
}

/// A fitted scenario against the readings: online users (what the readings count) and every
/// state the online count leaves out, with every reading as a dot (including any left out of
/// the fit).
pub fn fit_figure<M: Model<N>, const N: usize>(
    model: &M,
    sc: &Scenario,
    sim: &Simulation<N>,
    observed: &[Observation],
    title: &str,
) -> Figure {
    let mut fig = outage_figure(model, sc, sim, observed);
    if let Plot::Outage(o) = &mut fig.plot {
        let u = Units::of(model);
        let samples = sim.sample(model, 10.0 * u.per / 60.0);
        o.title = title.into();
        let mut series = vec![Series {
            label: "online".into(),
            points: samples
                .iter()
                .map(|(t, x)| (u.time(*t), model.online(x)))
                .collect(),
        }];
        // The states the online count leaves out (the login queue of the reference model).
        let mut probe = SVector::<f64, N>::zeros();
        for (i, st) in model.states().iter().enumerate() {
            probe[i] = 1.0;
            let counted = model.online(&probe) != 0.0;
            probe[i] = 0.0;
            if !counted {
                series.push(Series {
                    label: st.name.to_string(),
                    points: samples.iter().map(|(t, x)| (u.time(*t), x[i])).collect(),
                });
            }
        }
        o.series = series;
    }
    fig
}

/// A calibration in clock time ([`crate::plot::FitPlot`]): the counter (online users) of the
/// fitted scenario and of the first guess against every reading in `all`, those not in `used`
/// drawn hollow, and each reading's weighted residual under the fitted model. Both scenarios
/// are simulated (default options) to the last reading; a reading before `t = 0` is compared
/// with the starting state, as calibration compares it, and the curves are drawn flat back to
/// it. The axis shows clock time when the fitted scenario has a `start`.
pub fn calibration_figure<M: Model<N>, const N: usize>(
    model: &M,
    first_guess: &Scenario,
    fitted: &Scenario,
    all: &[Reading],
    used: &[Reading],
    title: &str,
) -> Result<Figure, Error>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    let u = Units::of(model);
    let last = all.iter().map(|r| r.t).fold(fitted.t_end, f64::max);
    let first = all.iter().map(|r| r.t).fold(0.0, f64::min);
    // Both runs reach the last reading.
    let reaching = |sc: &Scenario| {
        let mut sc = sc.clone();
        sc.t_end = sc.t_end.max(last);
        sc
    };
    let (shown, guess) = (reaching(fitted), reaching(first_guess));
    let counter = |sc: &Scenario| -> Result<(Vec<(f64, f64)>, Simulation<N>), Error> {
        let sim = simulate(model, sc, &SimOptions::default())?;
        let mut pts: Vec<(f64, f64)> = sim
            .sample(model, 10.0 * u.per / 60.0)
            .iter()
            .map(|(t, x)| (u.time(*t), model.online(x) * sc.population))
            .collect();
        if first < 0.0 {
            if let Some(&(_, y0)) = pts.first() {
                pts.insert(0, (u.time(first), y0));
            }
        }
        Ok((pts, sim))
    };
    let (fitted_pts, sim) = counter(&shown)?;
    let (guess_pts, _) = counter(&guess)?;
    // Each reading's z as `selfheal simulate --data` gives it, on the same run.
    let readings = crate::calibrate::compare(model, &shown, &sim, all)?
        .residuals
        .iter()
        .map(|r| crate::plot::FitPoint {
            t: u.time(r.t),
            users: r.observed,
            z: r.z,
            used: used.iter().any(|q| q.t == r.t && q.users == r.observed),
        })
        .collect();
    let start = match &fitted.start {
        Some(s) => Some(crate::model::schedule::parse_utc(s)?),
        None => None,
    };
    Ok(Figure::new(Plot::Fit(crate::plot::FitPlot {
        title: title.into(),
        start: start.filter(|_| u.per == 60.0),
        fitted: fitted_pts,
        first_guess: guess_pts,
        readings,
        shock: fitted
            .shock
            .map(|sh| (u.time(sh.at), u.time(sh.at + sh.window))),
        interventions: fitted
            .interventions
            .iter()
            .map(|iv| u.time(iv.at))
            .collect(),
    })))
}

/// The bifurcation diagram of a continuation: the watched state (peers) at each equilibrium.
pub fn bifurcation_figure<M: Model<N>, const N: usize>(
    model: &M,
    c: &Continuation<N>,
    title: &str,
    current: Option<f64>,
) -> Figure {
    let w = model.watched();
    let u = Units::of(model);
    Figure::new(Plot::Bifurcation(Bifurcation {
        title: title.into(),
        param: axis_label(model, &c.param, false),
        y_desc: format!("{} ({})", model.states()[w].name, u.state_desc()),
        branches: c
            .branches
            .iter()
            .map(|b| BranchLine {
                points: b
                    .points
                    .iter()
                    .filter(|p| p.special.is_none())
                    .map(|p| (p.mu, p.x[w], p.stable))
                    .collect(),
            })
            .collect(),
        special: c
            .special_points()
            .map(|(_, p)| {
                let kind = p.special.map_or("", SpecialPoint::name);
                let label = match p.hopf {
                    Some(h) => format!("{kind} ({})", h.criticality.name()),
                    None => kind.to_string(),
                };
                (p.mu, p.x[w], label)
            })
            .collect(),
        current,
    }))
}

/// An axis label for a quantity of a model: its name and unit (`sn_capacity (req/min)`), a
/// parameter without a unit by name alone, and `log scale` added when the axis is
/// logarithmic. Quantities of the scenario (`shock`, `window`, …) carry theirs too.
pub fn axis_label<M: Model<N>, const N: usize>(model: &M, name: &str, log: bool) -> String {
    let unit = match model.params().iter().find(|s| s.name == name) {
        Some(spec) if !["-", ""].contains(&spec.unit.as_ref()) => Some(spec.unit.as_ref()),
        Some(_) => None,
        None => match name {
            "shock" | "sn_shock" => Some("fraction"),
            "window" | "shock_at" | "t_end" => Some(model.time_unit()),
            "population" => Some(Units::of(model).count_desc()),
            _ => None,
        },
    };
    match (unit, log) {
        (Some(u), true) => format!("{name} ({u}, log scale)"),
        (Some(u), false) => format!("{name} ({u})"),
        (None, true) => format!("{name} (log scale)"),
        (None, false) => name.to_string(),
    }
}

/// A parameter the report continues in and maps over: its index, the range of its
/// continuation and the range of the tipping map (both positive: the map has log axes).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlanAxis {
    /// Index in the parameter table.
    pub param: usize,
    /// From and to of the continuation.
    pub continuation: (f64, f64),
    /// Lowest and highest value of the map's axis.
    pub map: (f64, f64),
}

impl PlanAxis {
    /// The axis of parameter `k` around its value `v > 0` in `sc`: continuation from v/10 to
    /// 20v, map from v/4 to 12v, each kept inside the parameter's range.
    pub fn around(sc: &Scenario, k: usize) -> Result<Self, Error> {
        let spec = &sc.params.specs()[k];
        let v = sc.params.values()[k];
        let inside = |x: f64| {
            let (lo, hi) = (spec.lower.value(), spec.upper.value());
            let lo = lo.map_or(x, |l| x.max(if l > 0.0 { l * (1.0 + 1e-9) } else { l }));
            hi.map_or(lo, |h| lo.min(h * (1.0 - 1e-9)))
        };
        let (c0, c1) = (inside(v / 10.0), inside(v * 20.0));
        let (m0, m1) = (inside(v / 4.0), inside(v * 12.0));
        let ok = |a: f64, b: f64| a >= f64::MIN_POSITIVE && b.is_finite() && b > a;
        if !(v > 0.0 && ok(c0, c1) && ok(m0, m1)) {
            return Err(Error::OutOfRange {
                name: spec.name.to_string(),
                value: v,
                range: "positive, with room around it in its range, for a report axis (its continuation runs from a tenth to twenty times the value, its map on log axes)".into(),
            });
        }
        Ok(Self {
            param: k,
            continuation: (c0, c1),
            map: (m0, m1),
        })
    }
}

/// What a report looks at besides the scenario: the two parameters of its continuations and
/// tipping map, and the parameters whose levers it measures.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportPlan {
    /// The continuations' and the map's parameters (the map's x, then y); `None`: the two
    /// strongest levers with positive values.
    pub axes: Option<[PlanAxis; 2]>,
    /// Parameters whose elasticity of f* the report gives, by index.
    pub levers: Vec<usize>,
}

impl ReportPlan {
    /// The reference model's plan: supernode capacity and dedicated capacity (from the
    /// scenario's value up, since near S0 = 0 the collapsed state sits at vanishing sizes),
    /// and its seven levers.
    pub fn reference(sc: &Scenario) -> Result<Self, Error> {
        let idx = |n: &str| sc.params.index(n);
        let kd = idx("dedicated")?;
        let s0 = sc.params.values()[kd].max(1e-7);
        let dedicated = PlanAxis {
            param: kd,
            continuation: (s0, (s0 * 100.0).max(1e-3)),
            map: (s0 / 10.0, s0 * 200.0),
        };
        let levers = [
            "sn_capacity",
            "dedicated",
            "retry",
            "give_up",
            "promotion",
            "sign_on",
            "overload_threshold",
        ]
        .iter()
        .map(|n| idx(n))
        .collect::<Result<_, _>>()?;
        Ok(Self {
            axes: Some([PlanAxis::around(sc, idx("sn_capacity")?)?, dedicated]),
            levers,
        })
    }

    /// A plan for any model: every parameter with a positive value is a lever; the axes are
    /// the parameters named (each around its value, [`PlanAxis::around`]) or, without names,
    /// the two strongest levers.
    pub fn for_scenario(sc: &Scenario, axes: Option<[&str; 2]>) -> Result<Self, Error> {
        let axes = match axes {
            Some([a, b]) => {
                let (ka, kb) = (sc.params.index(a)?, sc.params.index(b)?);
                if ka == kb {
                    return Err(Error::Invalid(format!(
                        "the report's two axes must differ (both are `{a}`)"
                    )));
                }
                Some([PlanAxis::around(sc, ka)?, PlanAxis::around(sc, kb)?])
            }
            None => None,
        };
        let levers = (0..sc.params.values().len())
            .filter(|&k| sc.params.values()[k] > 0.0)
            .collect();
        Ok(Self { axes, levers })
    }

    /// The axes: as given, or the two strongest levers (largest |d f*/d ln p|) that can be
    /// axes.
    /// Without a wave (no levers), the first two parameters that can be axes.
    fn resolve(
        &self,
        sc: &Scenario,
        levers: &[(String, Option<f64>)],
        waves: bool,
    ) -> Result<[PlanAxis; 2], Error> {
        if let Some(axes) = self.axes {
            return Ok(axes);
        }
        // The levers with a defined effect, strongest first; then (no wave, or no lever with
        // a defined effect) every parameter in table order.
        let mut names: Vec<&str> = if waves {
            levers
                .iter()
                .filter(|l| l.1.is_some())
                .map(|l| l.0.as_str())
                .collect()
        } else {
            vec![]
        };
        for spec in sc.params.specs() {
            if !names.contains(&spec.name.as_ref()) {
                names.push(spec.name.as_ref());
            }
        }
        let mut found = vec![];
        for name in names {
            if let Ok(ax) = PlanAxis::around(sc, sc.params.index(name)?) {
                found.push(ax);
            }
            if found.len() == 2 {
                return Ok([found[0], found[1]]);
            }
        }
        Err(Error::Invalid(format!(
            "no two parameters with positive values and room around them to continue in and draw the report's map over ({} found); name them with --axes P1,P2",
            found.len()
        )))
    }
}

/// Cells along each axis of the report's tipping map.
pub const MAP_CELLS: usize = 100;

/// The critical shock over the plan's two parameters around the scenario's values, written to
/// `csv_path` row by row, with fold curves (solid) and Hopf curves (dashed) on top and the
/// scenario marked with its f* (or why it has none).
fn tipping_map<M: Model<N>, const N: usize>(
    model: &M,
    sc: &Scenario,
    [ax, ay]: [PlanAxis; 2],
    (fstar, down): (Option<f64>, bool),
    csv_path: &Path,
) -> Result<Figure, Error>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    let p0 = sc.params.values();
    let (kc, kd) = (ax.param, ay.param);
    let specs = sc.params.specs();
    let (vx, vy) = (p0[kc], p0[kd]);
    let copts = ContinuationOptions::default();
    let base = {
        let mut b = sc.clone();
        b.interventions.clear();
        b.shock = None;
        b
    };
    let ((xlo, xhi), (ylo, yhi)) = (ax.map, ay.map);
    let n = MAP_CELLS;
    let mut gx = Axis::parse(&format!("{}={xlo}:{xhi}:{n}", specs[kc].name), &base)?;
    gx.set_log()?;
    let mut gy = Axis::parse(&format!("{}={ylo}:{yhi}:{n}", specs[kd].name), &base)?;
    gy.set_log()?;
    let mut map = None;
    write_atomic(csv_path, true, |w| {
        let mut csv = csv::Writer::from_writer(w);
        map = Some(critical_shock_map(model, &base, gx, gy, |row| {
            csv.write_record(row).map_err(csv_err)
        })?);
        csv.flush()
            .map_err(|e| Error::Invalid(format!("writing CSV: {e}")))
    })?;
    let mut map = map.expect("the map is built before the file is committed");
    // Fold curves (solid) and Hopf curves (dashed) in the map's plane, from the scenario's
    // value of the second parameter: where they end stable branches they are the bistable
    // region's edges.
    let q = {
        let mut q = p0.to_vec();
        q[kd] = vy.clamp(ylo, yhi);
        q
    };
    let (lo1, hi1) = (specs[kc].lower.value(), specs[kc].upper.value());
    let r1 = (
        lo1.map_or(xlo / 4.0, |l| (xlo / 4.0).max(l)),
        hi1.map_or(xhi * 4.0, |h| (xhi * 4.0).min(h)),
    );
    let r2 = (ylo, yhi);
    let logs = |pts: &mut dyn Iterator<Item = (f64, f64)>| -> Vec<(f64, f64)> {
        pts.map(|(a, b)| (a.log10(), b.max(1e-300).log10()))
            .collect()
    };
    let labelled = |k: usize, label: &str, points| Series {
        label: if k == 0 { label.into() } else { String::new() },
        points,
    };
    if let Ok(fc) = fold_curves(model, &q, &Plane::new(kc, r1, kd, r2), &copts) {
        for (k, c) in fc.curves.iter().enumerate() {
            let pts = logs(&mut c.points.iter().map(|p| (p.mu1, p.mu2)));
            map.curves.push(labelled(k, "fold curves", pts));
        }
    }
    if let Ok(hc) =
        crate::analysis::hopf_curve::hopf_curves(model, &q, &Plane::new(kc, r1, kd, r2), &copts)
    {
        for (k, c) in hc.curves.iter().enumerate() {
            let pts = logs(&mut c.points.iter().map(|p| (p.mu1, p.mu2)));
            map.dashed.push(labelled(k, "Hopf curves", pts));
        }
    }
    map.point = Some((vx.log10(), vy.max(1e-300).log10()));
    map.point_label = Some(match fstar {
        Some(f) => format!("this scenario (f* = {f:.4})"),
        None if down => "this scenario (down)".into(),
        None => "this scenario (no shock tips it)".into(),
    });
    Ok(Figure::new(Plot::TippingMap(map)))
}

/// The two states of the phase portrait: the watched state and the first other one (peers and
/// supernodes for the reference model); `None` for a model of one state.
fn phase_states<M: Model<N>, const N: usize>(model: &M) -> Option<(usize, usize)> {
    let a = model.watched();
    (0..N).find(|&b| b != a).map(|b| (a, b))
}

/// Trajectories either side of the critical shock in the plane of two states (peers and
/// supernodes), the equilibria, and a slice of the basin boundary.
fn phase_portrait<M: Model<N>, const N: usize>(
    model: &M,
    p0: &[f64],
    landscape: &Landscape<N>,
    fstar: Option<f64>,
    topts: &TippingOptions,
    (a, b): (usize, usize),
) -> Result<Figure, Error>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    let sys = System::new(model, p0);
    let healthy = landscape.rest_state();
    let saddle = landscape.saddles().next().cloned();
    let states = model.states();
    let names = states.each_ref().map(|s| s.name.as_ref());
    let mut trajectories = vec![];
    if let Some(f) = fstar {
        for df in [-0.2, -0.05, -0.01, 0.01, 0.05, 0.2] {
            let fr = f + df;
            if !(0.0..1.0).contains(&fr) {
                continue;
            }
            let x0 = model.reboot_jump(&healthy, p0, fr, fr)?;
            let mut pts = vec![(x0[a], x0[b])];
            let mut stats = SolverStats::default();
            let fate = crate::equilibria::integrate_to_rest(
                &sys,
                0.0,
                x0,
                crate::equilibria::SETTLE_HORIZON,
                &topts.solve,
                &mut stats,
                |seg| {
                    for th in [0.25, 0.5, 0.75, 1.0] {
                        let x = seg.eval(seg.time(th));
                        pts.push((x[a], x[b]));
                    }
                },
            )?;
            let recovers = fate
                .is_some_and(|(st, _)| crate::equilibria::same_point(&st.equilibrium, &healthy));
            trajectories.push((pts, recovers));
        }
    }
    let boundary = match &saddle {
        Some(sd) => {
            // Along state a from its smallest value at an equilibrium to beyond its largest
            // (the collapsed and the healthy state's); state b searched over seven decades
            // below its largest value at an equilibrium.
            let positive = |k: usize| {
                landscape
                    .equilibria
                    .iter()
                    .map(move |e| e.x[k])
                    .filter(|v| *v > 0.0)
            };
            let a_max = positive(a).fold(0.0, f64::max);
            let lo_a = positive(a).fold(f64::INFINITY, f64::min).max(1e-9 * a_max);
            let b_max = positive(b).fold(0.0, f64::max);
            let along: Vec<f64> = (0..24)
                .map(|k| {
                    let (l, h) = (lo_a.ln(), (a_max * 1.2).ln());
                    (l + (h - l) * k as f64 / 23.0).exp()
                })
                .collect();
            let pts = if b_max > 0.0 && lo_a.is_finite() && a_max > 0.0 {
                basin_boundary_slice(
                    model,
                    p0,
                    landscape,
                    sd.x,
                    (a, &along),
                    (b, 1e-7 * b_max, 5.0 * b_max),
                    &topts.solve,
                )?
            } else {
                vec![]
            };
            let held: Vec<String> = (0..N)
                .filter(|&k| k != a && k != b)
                .map(|k| format!("{} = {:.2e}", names[k], sd.x[k]))
                .collect();
            Some(Series {
                label: if held.is_empty() {
                    "basin boundary".into()
                } else {
                    format!("basin boundary (slice at {})", held.join(", "))
                },
                points: pts,
            })
        }
        None => None,
    };
    let u = Units::of(model);
    Ok(Figure::new(Plot::Phase(Phase {
        title: format!("Phase portrait: {} against {}", names[a], names[b]),
        x_desc: format!("{} ({})", names[a], u.state_desc()),
        y_desc: format!("{} ({})", names[b], u.state_desc()),
        upper: u.fractions.then_some(1.0),
        equilibria: landscape
            .equilibria
            .iter()
            .map(|e| {
                let label = if crate::equilibria::same_point(&e.x, &healthy) {
                    if landscape.is_healthy() {
                        "healthy".to_string()
                    } else {
                        "best stable (down)".to_string()
                    }
                } else if e.kind == crate::equilibria::Kind::Saddle {
                    "saddle".to_string()
                } else {
                    "collapsed".to_string()
                };
                (e.x[a], e.x[b], label)
            })
            .collect(),
        trajectories,
        boundary,
    })))
}

/// The elasticity of f* to each lever, d f*/d ln p by a ±10 % central difference, largest
/// magnitude first (`None` where f* is undefined nearby, or where ±10 % leaves the
/// parameter's range).
fn levers<M: Model<N>, const N: usize>(
    model: &M,
    sc: &Scenario,
    which: &[usize],
    topts: &TippingOptions,
) -> Result<Vec<(String, Option<f64>)>, Error>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    let p0 = sc.params.values();
    let mut levers = vec![];
    for &k in which {
        let v = p0[k];
        let e = if v > 0.0 {
            let at = |m: f64| {
                let mut q = p0.to_vec();
                q[k] = v * m;
                model.validate(&q).ok()?;
                critical_shock(model, &q, topts).ok().and_then(|c| c.value)
            };
            match (at(1.1), at(1.0 / 1.1)) {
                (Some(a), Some(b)) => Some((a - b) / (2.0 * 1.1f64.ln())),
                _ => None,
            }
        } else {
            None
        };
        levers.push((sc.params.specs()[k].name.to_string(), e));
    }
    levers.sort_by(|a, b| {
        b.1.map_or(0.0, f64::abs)
            .total_cmp(&a.1.map_or(0.0, f64::abs))
    });
    Ok(levers)
}

/// How the model's online users compare with the readings drawn beside them.
#[derive(Debug, Clone, PartialEq)]
struct Misfit {
    /// Readings inside the simulated span.
    n: usize,
    /// Readings outside it (not compared).
    outside: usize,
    /// Root-mean-square difference (users).
    rmse: f64,
    /// The largest miss relative to its reading: (hour, observed, model, note).
    worst: (f64, f64, f64, String),
}

/// A miss larger than this share of a reading counts as the model missing the readings.
const MISS: f64 = 0.25;

impl Misfit {
    fn of<M: Model<N>, const N: usize>(
        model: &M,
        sim: &Simulation<N>,
        observed: &[Observation],
        pop: f64,
    ) -> Option<Self> {
        let per = Units::of(model).per;
        let mut sq = 0.0;
        let (mut n, mut outside) = (0, 0);
        let mut worst: Option<(f64, (f64, f64, f64, String))> = None;
        for (t, users, note) in observed {
            let Some(x) = sim.dense.eval(*t).filter(|_| *t >= 0.0) else {
                outside += 1;
                continue;
            };
            let online = model.online(&x) * pop;
            sq += (online - users).powi(2);
            n += 1;
            let rel = (online - users).abs() / users.max(1.0);
            if worst.as_ref().is_none_or(|(r, _)| rel > *r) {
                worst = Some((rel, (t / per, *users, online, note.clone())));
            }
        }
        let (_, worst) = worst?;
        Some(Self {
            n,
            outside,
            rmse: (sq / n as f64).sqrt(),
            worst,
        })
    }

    fn words(&self, pop: f64, unit: &str) -> String {
        let (hour, obs, model, note) = &self.worst;
        let rel = (model - obs).abs() / obs.max(1.0);
        let lead = if rel > MISS {
            "**The model misses the readings**"
        } else {
            "The model follows the readings"
        };
        let outside = match self.outside {
            0 => String::new(),
            k => format!(" ({k} readings lie outside the simulated span and are not compared)"),
        };
        let note = if note.is_empty() {
            String::new()
        } else {
            format!(", “{note}”")
        };
        format!(
            "{lead}: against the {} public readings in the figure{outside}, its online users are off by {} on average (root mean square); the largest miss is at {unit} {hour:.1}{note}: {} observed, {} in the model ({:.0} %).",
            self.n,
            users(self.rmse / pop, pop),
            users(obs / pop, pop),
            users(model / pop, pop),
            100.0 * (model - obs) / obs.max(1.0),
        )
    }
}

/// What the report found, for the words of report.md.
struct Findings<'a, const N: usize> {
    sc: &'a Scenario,
    label: &'a str,
    observed: &'a [Observation],
    sim: &'a Simulation<N>,
    summary: &'a crate::simulate::Summary,
    landscape: &'a Landscape<N>,
    fstar: Option<f64>,
    down: bool,
    scan: usize,
    window: Option<f64>,
    axes: [&'a str; 2],
    value: f64,
    cap_folds: &'a [f64],
    cap_bistable: &'a [crate::analysis::bistable::BistableInterval],
    ded_folds: &'a [f64],
    levers: &'a [(String, Option<f64>)],
    phase: bool,
    waves: bool,
}

/// The words of report.md.
fn prose<M: Model<N>, const N: usize>(model: &M, f: &Findings<N>) -> String {
    let pop = f.sc.population;
    let u = Units::of(model);
    let states = model.states();
    let names = states.each_ref().map(|s| s.name.as_ref());
    let wn = names[model.watched()];
    let of_users = if u.fractions { " of users" } else { "" };
    let mut md = String::new();
    let w = &mut md;
    let _ = writeln!(w, "# {}\n", f.sc.name);
    let _ = writeln!(
        w,
        "Scenario: `{}` · model `{}` · {} {} · {} {}s simulated · written by selfheal {}.\n",
        f.label,
        model.name(),
        users(1.0, pop),
        u.count_desc(),
        u.time(f.sc.t_end),
        u.unit,
        env!("CARGO_PKG_VERSION")
    );
    let _ = writeln!(w, "## Does the network heal itself?\n");
    let shock_txt = match f.sc.shock {
        Some(Shock {
            at,
            fraction,
            sn_fraction,
            window,
        }) => format!(
            "a wave that takes down {:.0} %{} at {} {:.1}{}",
            fraction * 100.0,
            if sn_fraction != fraction {
                format!(" (second fraction {:.0} %)", sn_fraction * 100.0)
            } else {
                String::new()
            },
            u.unit,
            u.time(at),
            if window > 0.0 {
                format!(", spread over {window} {}", model.time_unit())
            } else {
                ", all at once".into()
            }
        ),
        None => "no wave".into(),
    };
    let lead = if f.sc.shock.is_some() {
        format!("After {shock_txt}")
    } else {
        "Without a wave".into()
    };
    let verdict = match f.summary.outcome {
        Outcome::Recovered => "**it recovers**",
        Outcome::Collapsed if f.summary.down => {
            "**it is down**: with the parameters in force at the end no stable state serves half the users who want service"
        }
        Outcome::Collapsed => "**it does not recover**: it settles in a stable state that serves less",
        Outcome::Undecided => "**undecided**: it had not settled within the horizon",
    };
    if !f.summary.start_healthy {
        let _ = writeln!(w, "**The network has no healthy state with the parameters in force at the start**: its best stable state has a service level of {:.3} % (healthy needs at least {:.0} %). It is down whatever happens; the run starts in that state.\n", f.summary.service_level * 100.0, model.healthy_level() * 100.0);
    }
    // An amount of a state: users for fractions, the value itself otherwise.
    let amount = |v: f64| if u.fractions { users(v, pop) } else { sig(v) };
    let lowest = if u.fractions {
        format!(
            "{} ({:.4}{of_users})",
            users(f.summary.min_peers, pop),
            f.summary.min_peers
        )
    } else {
        sig(f.summary.min_peers)
    };
    // A model that recovers by its service level (a backlog that grows in trouble) is told by
    // the peaks of its states; one that recovers by its watched state, by that state's low.
    let by_service = model.recovery_by_service();
    let peaks: Vec<String> = (0..N)
        .filter(|&i| by_service || i != model.watched())
        .map(|i| {
            format!(
                "`{}` peaks at {} ({} {:.1})",
                names[i],
                amount(f.summary.peaks[i].0),
                u.unit,
                u.time(f.summary.peaks[i].1)
            )
        })
        .collect();
    let mut told = vec![];
    if !by_service {
        told.push(format!(
            "`{wn}` falls to {lowest} at {} {:.1}",
            u.unit,
            u.time(f.summary.t_min_peers)
        ));
    }
    told.extend(peaks);
    let _ = writeln!(
        w,
        "{lead}, {verdict}{}. {}.",
        if f.sc.interventions.is_empty() {
            String::new()
        } else {
            " (with the scenario's interventions)".into()
        },
        told.join("; ")
    );
    if let Some((level, t)) = f.summary.min_service_level {
        let _ = writeln!(
            w,
            "The service level is lowest at {} {:.1}: {:.2} % (healthy: {:.2} %).",
            u.unit,
            u.time(t),
            100.0 * level,
            100.0 * f.summary.service_level
        );
    }
    let what = if by_service {
        "The service level".to_string()
    } else {
        format!("`{wn}`")
    };
    match f.summary.recovery_time {
        _ if !f.summary.start_healthy => {}
        Some(t) if t > 0.0 => {
            let _ = writeln!(
                w,
                "{what} is back at 95 % of its healthy level {:.1} {} after the wave began.",
                u.time(t),
                u.units()
            );
        }
        Some(_) => {
            let _ = writeln!(w, "{what} never fell below 95 % of its healthy level.");
        }
        None => {
            let _ = writeln!(w, "{what} never returns to 95 % of its healthy level.");
        }
    }
    let _ = writeln!(w, "\n![Outage time series](outage.svg)\n");
    let _ = writeln!(w, "*{} as {} (left, log scale) and as {} (right); the shaded band is the wave, dashed lines are interventions{}.*\n",
        names.join(", "), u.state_desc(), u.count_desc(),
        if f.observed.is_empty() { "" } else { ", dots are the public online-user readings" });
    if let Some(m) = Misfit::of(model, f.sim, f.observed, pop) {
        let _ = writeln!(w, "{}\n", m.words(pop, &u.unit));
    }
    let _ = writeln!(w, "## How far is it from tipping?\n");
    let n_eq = f.landscape.equilibria.len();
    let _ = writeln!(w, "With the parameters in force at the start, the network has {n_eq} equilibri{} (`equilibria.csv`): {}.",
        if n_eq == 1 { "um" } else { "a" },
        f.landscape.equilibria.iter().map(|e| format!("{} with `{wn}` = {}", e.describe(), amount(e.x[model.watched()]))).collect::<Vec<_>>().join("; "));
    match f.fstar {
        Some(fs) => {
            let _ = writeln!(w, "\nThe **critical shock is f\\* = {fs:.4}**: an instantaneous wave of more than {:.1} % tips it into a stable state that serves less, from which it does not come back by itself.", fs * 100.0);
            if let Some(sh) = f.sc.shock {
                let _ = writeln!(
                    w,
                    "This scenario's wave ({:.0} %) is {}.",
                    sh.fraction * 100.0,
                    if sh.fraction > fs {
                        format!("{:.1} points above it", (sh.fraction - fs) * 100.0)
                    } else {
                        format!("{:.1} points below it", (fs - sh.fraction) * 100.0)
                    }
                );
                if let Some(wc) = f.window {
                    let _ = writeln!(w, "Spread over more than **{wc:.1} {}** a wave of this size would be absorbed; this one is spread over {}.", model.time_unit(), sh.window);
                }
            }
        }
        None if !f.waves => {
            let _ = writeln!(
                w,
                "\nModel `{}` defines no wave (no `[shock]` in its file): there is no critical shock, tipping map or lever table; the branches below still show where equilibria fold.",
                model.name()
            );
        }
        None if f.down => {
            let _ = writeln!(
                w,
                "\nThere is no critical shock: the network is down at these parameters before any shock."
            );
        }
        None => {
            let _ = writeln!(
                w,
                "\nNo instantaneous wave below 100 % tips the network (every shock k/{} for k = 0..{} recovers): it heals itself.",
                f.scan, f.scan
            );
        }
    }
    let [p1, p2] = f.axes;
    let _ = writeln!(
        w,
        "\nIn `{p1}` (`continuation_{p1}.csv`) the branches of equilibria fold at {}.",
        if f.cap_folds.is_empty() {
            "no value in the range".into()
        } else {
            f.cap_folds
                .iter()
                .map(|v| format!("{p1} = {}", sig(*v)))
                .collect::<Vec<_>>()
                .join(" and ")
        }
    );
    if !f.cap_bistable.is_empty() {
        let _ = writeln!(w, "The network is bistable (a stable state that serves less beside the healthy one, so that a large enough trigger causes a lasting outage) for `{p1}` (this scenario has {p1} = {}):\n", f.value);
        for b in f.cap_bistable {
            let _ = writeln!(
                w,
                "- from {} ({}) to {} ({});",
                sig(b.lo.mu),
                edge_words(&b.lo),
                sig(b.hi.mu),
                edge_words(&b.hi)
            );
        }
        let _ = writeln!(
            w,
            "\nFolds and Hopf points on branches that are already unstable bound nothing."
        );
    }
    let _ = writeln!(
        w,
        "In `{p2}` (`continuation_{p2}.csv`): {}.",
        if f.ded_folds.is_empty() {
            "no fold in the range".into()
        } else {
            f.ded_folds
                .iter()
                .map(|v| format!("a fold at {p2} = {}", sig(*v)))
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    let _ = writeln!(w, "\n![Bifurcation diagram](bifurcation.svg)\n");
    let _ = writeln!(w, "*`{wn}` at each equilibrium against `{p1}`: stable branches solid, unstable dashed, folds and Hopf points marked with their values; the vertical line is this scenario.*\n");
    if f.waves {
        let _ = writeln!(w, "![Tipping map](tipping_map.svg)\n");
        let _ = writeln!(w, "*The critical shock over `{p1}` and `{p2}` (`tipping_map.csv`); cells without an f* are coloured by why: always down (no healthy state) or no shock below 1 tips the network. The solid white curves are where equilibria fold, the dashed ones where an equilibrium has a Hopf point; a fold curve bounds the bistable region only where it ends a stable branch (between its Bogdanov–Takens points, where the Hopf curves end, it joins unstable branches only), and there the collapsed state's Hopf curve is the edge where its Hopf point is subcritical. The cross is this scenario, with its f*.*\n");
    }
    if f.phase {
        let _ = writeln!(w, "![Phase portrait](phase.svg)\n");
        if f.fstar.is_some() {
            let _ = writeln!(w, "*Trajectories after waves just below (green) and above (red) the critical shock, in the plane of two states, with the equilibria and a slice of the basin boundary (the saddle's stable manifold, the other states held at the saddle's values).*\n");
        } else {
            let _ = writeln!(w, "*The equilibria in the plane of two states{}; without a critical shock there are no trajectories either side of one.*\n",
                if f.landscape.saddles().next().is_some() { ", with a slice of the basin boundary (the saddle's stable manifold)" } else { "" });
        }
    } else {
        let _ = writeln!(w, "A model of one state has no phase plane: the line of equilibria above is its phase portrait.\n");
    }
    if f.waves {
        let _ = writeln!(w, "## Which lever moves the tipping point most?\n");
        let _ = writeln!(w, "Change in the critical shock for a 1 % change of each parameter (d f\\* / d ln p, by ±10 % central differences; positive means raising the parameter makes the network harder to tip):\n");
        let _ = writeln!(w, "| parameter | d f\\* / d ln p |\n|---|---|");
        for (name, e) in f.levers {
            let _ = writeln!(
                w,
                "| `{name}` | {} |",
                e.map_or("(f* undefined nearby)".into(), |v| format!(
                    "{:+.4} per 1 %",
                    v / 100.0
                ))
            );
        }
        if let Some((name, Some(_))) = f.levers.first() {
            let _ = writeln!(w, "\nThe strongest lever here is **`{name}`**.");
        }
    }
    let _ = writeln!(w, "\n## Files\n");
    for name in files_list(f.axes, f.phase, f.waves) {
        let _ = writeln!(w, "- `{name}`");
    }
    md
}

/// Steps of the report, for progress: simulation, equilibria and f*, the levers,
/// continuations, the map, the phase portrait.
const REPORT_STEPS: usize = 6;

/// Writes the report of `model` for `sc` into `dir` (created if missing), looking at the
/// parameters of `plan`. Only the report's own files are written (and replaced); nothing else
/// in `dir` is touched.
pub fn write_report<M: Model<N>, const N: usize>(
    model: &M,
    sc: &Scenario,
    scenario_label: &str,
    observed: &[Observation],
    dir: &Path,
    plan: &ReportPlan,
) -> Result<Report, Error>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    sc.validate(model)?;
    if model
        .service_level(&model.nominal_state(sc.params.values()), sc.params.values())
        .is_none()
    {
        return Err(Error::Unsupported(format!(
            "a report needs to know which state is healthy, and model `{}` defines no service level (add a [service] level to its file)",
            model.name()
        )));
    }
    if dir.exists() && !dir.is_dir() {
        return Err(Error::Invalid(format!(
            "{} is a file: a report is a directory of files; give a directory (it is created if missing)",
            dir.display()
        )));
    }
    if let Some(axes) = plan.axes {
        for ax in axes {
            let name = &sc.params.specs()[ax.param].name;
            for (what, (lo, hi)) in [("continuation", ax.continuation), ("map", ax.map)] {
                if !(lo >= f64::MIN_POSITIVE && hi.is_finite() && hi > lo) {
                    return Err(Error::OutOfRange {
                        name: name.to_string(),
                        value: sc.params.values()[ax.param],
                        range: format!(
                            "in [1e-300, 1e300] for a report (its {what} runs from {lo} to {hi})"
                        ),
                    });
                }
            }
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::Io {
        path: dir.display().to_string(),
        source: e,
    })?;
    // Everything is written into a staging directory beside the report's files and moved into
    // place only when every file is written: a report that fails half-way leaves nothing.
    let staging = tempfile::Builder::new()
        .prefix(".report.")
        .tempdir_in(dir)
        .map_err(|e| Error::Io {
            path: dir.display().to_string(),
            source: e,
        })?;
    let _registered = crate::files::Temporary::register(staging.path());
    let stage = staging.path().to_path_buf();
    let mut names: Vec<String> = vec![];
    let mut file = |name: &str| {
        names.push(name.to_string());
        stage.join(name)
    };
    let p0 = sc.params.values().to_vec();

    // The scenario itself.
    crate::progress::update("report steps", 0, REPORT_STEPS);
    let opts = SimOptions::default();
    let sim = simulate(model, sc, &opts)?;
    let s = &sim.summary;
    let u = Units::of(model);
    write_atomic(&file("trajectory.csv"), true, |w| {
        trajectory_csv(w, model, sc, &sim, 10.0 * u.per / 60.0, false)
    })?;
    let outage = outage_figure(model, sc, &sim, observed);
    outage.save(&file("outage.svg"))?;
    outage.save(&file("outage.png"))?;

    // Equilibria and the critical shock of the parameters at t = 0.
    crate::progress::update("report steps", 1, REPORT_STEPS);
    let landscape = Landscape::new(model, &p0)?;
    write_atomic(&file("equilibria.csv"), true, |w| {
        equilibria_csv(w, model, &p0, &landscape.equilibria)
    })?;
    let topts = TippingOptions::default();
    // A model without a wave has no critical shock, levers or tipping map: the report says so.
    let waves = model
        .reboot_jump(&landscape.rest_state(), &p0, 0.5, 0.5)
        .is_ok();
    let (fstar, cs_down) = if waves {
        let cs = critical_shock(model, &p0, &topts)?;
        (cs.value, cs.down)
    } else {
        (None, !landscape.is_healthy())
    };
    let window = match (sc.shock, fstar) {
        (Some(sh), Some(f)) if sh.fraction > f && sh.window > 0.0 => {
            critical_window(model, &p0, sh.fraction, &topts)
                .ok()
                .and_then(|w| w.value)
        }
        _ => None,
    };

    // The levers first: without named axes, the two strongest are the report's axes.
    crate::progress::update("report steps", 2, REPORT_STEPS);
    let levers = if waves {
        levers(model, sc, &plan.levers, &topts)?
    } else {
        vec![]
    };
    let axes = plan.resolve(sc, &levers, waves)?;
    let [ax, ay] = axes;
    let axis_names = [
        sc.params.specs()[ax.param].name.as_ref(),
        sc.params.specs()[ay.param].name.as_ref(),
    ];

    // Branches in the two parameters.
    crate::progress::update("report steps", 3, REPORT_STEPS);
    let copts = ContinuationOptions::default();
    let (c0, c1) = ax.continuation;
    let cap = continue_equilibria(model, &p0, ax.param, c0, c1, &copts)?;
    write_continuation(
        model,
        &file(&format!("continuation_{}.csv", axis_names[0])),
        &cap,
    )?;
    let (d0, d1) = ay.continuation;
    let ded = continue_equilibria(model, &p0, ay.param, d0, d1, &copts)?;
    write_continuation(
        model,
        &file(&format!("continuation_{}.csv", axis_names[1])),
        &ded,
    )?;
    let (cap_folds, ded_folds) = (cap.folds(), ded.folds());
    let cap_bistable = crate::analysis::bistable::bistable_intervals(model, &cap)?;
    let value = p0[ax.param];
    let bif = bifurcation_figure(
        model,
        &cap,
        &format!("Equilibria against {}", axis_names[0]),
        Some(value),
    );
    bif.save(&file("bifurcation.svg"))?;
    bif.save(&file("bifurcation.png"))?;

    crate::progress::update("report steps", 4, REPORT_STEPS);
    if waves {
        let map = tipping_map(model, sc, axes, (fstar, cs_down), &file("tipping_map.csv"))?;
        map.save(&file("tipping_map.svg"))?;
        map.save(&file("tipping_map.png"))?;
    }

    crate::progress::update("report steps", 5, REPORT_STEPS);
    let plane = phase_states(model);
    if let Some(ab) = plane {
        let phase = phase_portrait(model, &p0, &landscape, fstar, &topts, ab)?;
        phase.save(&file("phase.svg"))?;
        phase.save(&file("phase.png"))?;
    }

    crate::progress::finish("report steps");
    let md = prose(
        model,
        &Findings {
            sc,
            label: scenario_label,
            observed,
            sim: &sim,
            summary: s,
            landscape: &landscape,
            fstar,
            down: cs_down,
            waves,
            scan: topts.scan,
            window,
            axes: axis_names,
            value,
            cap_folds: &cap_folds,
            cap_bistable: &cap_bistable,
            ded_folds: &ded_folds,
            levers: &levers,
            phase: plane.is_some(),
        },
    );
    write_atomic(&file("report.md"), true, |wr| {
        wr.write_all(md.as_bytes()).map_err(|e| Error::Io {
            path: "report.md".into(),
            source: e,
        })
    })?;
    let mut files = vec![];
    for name in &names {
        let to = dir.join(name);
        std::fs::rename(staging.path().join(name), &to).map_err(|e| Error::Io {
            path: to.display().to_string(),
            source: e,
        })?;
        files.push(to);
    }
    Ok(Report {
        files,
        outcome: s.outcome,
        critical_shock: fstar,
        axes: axis_names.map(String::from),
        capacity_folds: cap_folds,
        dedicated_folds: ded_folds,
        levers,
    })
}

/// The files [`write_report`] writes, relative to its directory, for the report's two
/// parameters, whether the model has a phase plane (two states or more) and whether it has a
/// wave (the tipping map).
pub fn files_list(axes: [&str; 2], phase: bool, map: bool) -> Vec<String> {
    let mut out = vec![
        "trajectory.csv".to_string(),
        "equilibria.csv".into(),
        format!("continuation_{}.csv", axes[0]),
        format!("continuation_{}.csv", axes[1]),
    ];
    if map {
        out.push("tipping_map.csv".into());
    }
    out.extend([
        "outage.svg".into(),
        "outage.png".into(),
        "bifurcation.svg".into(),
        "bifurcation.png".into(),
    ]);
    if map {
        out.extend(["tipping_map.svg".into(), "tipping_map.png".into()]);
    }
    if phase {
        out.extend(["phase.svg".into(), "phase.png".into()]);
    }
    out.push("report.md".into());
    out
}

/// Words for what ends a stretch of stable states, in the report's prose.
fn edge_words(e: &crate::analysis::bistable::Edge) -> &'static str {
    use crate::analysis::bistable::EdgeKind;
    use crate::analysis::hopf::Criticality;
    match (e.kind, e.criticality) {
        (EdgeKind::Fold, _) => "a fold where a stable state meets a saddle",
        (EdgeKind::Hopf, Some(Criticality::Subcritical)) => "a subcritical Hopf point: the collapsed state loses stability and beyond it nothing holds the network down",
        (EdgeKind::Hopf, Some(Criticality::Supercritical)) => "a supercritical Hopf point: beyond it a small stable oscillation around the collapsed state keeps the network down",
        (EdgeKind::Hopf, _) => "a Hopf point of undetermined criticality",
        (EdgeKind::RangeEnd, _) => "the end of the range computed",
        (EdgeKind::Unlocated, _) => "a change of stability between two steps, not located",
        (EdgeKind::BranchStopped, _) => {
            "where the computed branch stopped (lost, or out of steps), not a property of the network"
        }
    }
}

/// Colour of map cells whose network has no healthy state.
pub const DOWN_RGB: (u8, u8, u8) = (70, 70, 70);
/// Colour of map cells where the scan found no shock that tips the network.
pub const HEALS_RGB: (u8, u8, u8) = (190, 215, 240);

/// The figure of a tipping map: f* in colour, cells without one coloured by why — "always
/// down" (no healthy state) or "no shock below 1 tips it"; cells whose analysis failed stay
/// grey ("error"). With `log`, both axes are drawn on log scales.
pub fn shock_map_figure<M: Model<N>, const N: usize>(
    model: &M,
    map: &ShockMap,
    log: bool,
) -> TippingMap {
    let specs = model.params();
    let scale = |v: f64| if log { v.log10() } else { v };
    let (xn, yn) = (&specs[map.x.param].name, &specs[map.y.param].name);
    let mut down = vec![];
    let mut heals = vec![];
    let z = map
        .cells
        .iter()
        .enumerate()
        .map(|(i, c)| {
            match c.state {
                MapState::AlwaysDown => down.push(i),
                MapState::AlwaysHeals => heals.push(i),
                _ => {}
            }
            c.critical_shock.unwrap_or(f64::NAN)
        })
        .collect();
    TippingMap {
        title: format!("Critical shock f* over {xn} and {yn}"),
        x: (
            axis_label(model, xn, log),
            map.x.values.iter().map(|v| scale(*v)).collect(),
        ),
        y: (
            axis_label(model, yn, log),
            map.y.values.iter().map(|v| scale(*v)).collect(),
        ),
        z,
        z_label: "f* (fraction)".into(),
        log_axes: log,
        missing: vec![
            MissingCells {
                label: "always down (no healthy state)".into(),
                rgb: DOWN_RGB,
                cells: down,
            },
            MissingCells {
                label: "no shock below 1 tips it".into(),
                rgb: HEALS_RGB,
                cells: heals,
            },
        ],
        ..Default::default()
    }
}

/// The critical shock of a model over a grid of two parameter axes around `base`'s
/// parameters, followed from cell to cell ([`shock_map`], both threads, [`map_options`]), as a
/// map whose cells without a value say why ([`shock_map_figure`]). `on_row` receives the CSV
/// header and then every row in order ([`ShockMap::csv_rows`]). Axes spaced logarithmically are
/// drawn on log scales (both or neither must be).
pub fn critical_shock_map<M: Model<N>, const N: usize>(
    model: &M,
    base: &Scenario,
    x: Axis,
    y: Axis,
    mut on_row: impl FnMut(&[String]) -> Result<(), Error>,
) -> Result<TippingMap, Error>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    if x.log != y.log {
        return Err(Error::Invalid(
            "a tipping map needs both axes linear or both logarithmic".into(),
        ));
    }
    let map = shock_map(
        model,
        base.params.values(),
        &MapAxis::from_axis(&x)?,
        &MapAxis::from_axis(&y)?,
        &map_options(),
        0,
    )?;
    for row in map.csv_rows([&x.name, &y.name]) {
        on_row(&row)?;
    }
    Ok(shock_map_figure(model, &map, x.log))
}

/// Options of the report's tipping map: brackets of width 1e-4 (a hundredth of the colour
/// scale's resolution), otherwise [`TippingOptions::default`].
pub fn map_options() -> TippingOptions {
    TippingOptions {
        tol: 1e-4,
        ..TippingOptions::default()
    }
}

/// The critical shock over the day (`critical-shock --by-hour --figure`): f\* at each clock
/// hour of the wave as a line, and the simulated ends of each certified bracket as points.
pub fn by_hour_figure(rows: &[crate::analysis::daily::HourCritical], name: &str) -> Figure {
    use crate::analysis::daily::HourCritical;
    use crate::plot::{Corner, Xy};
    let series = |label: &str, pick: &dyn Fn(&HourCritical) -> Option<f64>| Series {
        label: label.into(),
        points: rows
            .iter()
            .filter_map(|h| pick(h).map(|v| (h.hour, v)))
            .collect(),
    };
    Figure::new(Plot::Xy(Xy {
        title: format!("Critical shock by hour of the wave — {name}"),
        x_desc: "clock hour of the wave (UTC)".into(),
        y_desc: "critical shock f* (fraction rebooting)".into(),
        log_axes: false,
        lines: vec![series("f*: smallest wave that tips the network", &|h| {
            h.value
        })],
        points: vec![
            series("bracket: recovers (simulated)", &|h| h.bracket.map(|b| b.0)),
            series("bracket: collapses (simulated)", &|h| {
                h.bracket.map(|b| b.1)
            }),
        ],
        legend: Corner::UpperRight,
    }))
}
