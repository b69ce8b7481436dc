//! The report a newcomer reads first: simulate a scenario of the reference model, find its
//! equilibria, critical shock and tipping points, and write the CSVs, four figures and a short
//! `report.md` that says in plain words what they mean.

use crate::analysis::codim2::{fold_curves, Plane};
use crate::analysis::continuation::{
    continue_equilibria, Continuation, ContinuationOptions, SpecialPoint,
};
use crate::analysis::tipping::{
    basin_boundary_slice, critical_shock, critical_window, Landscape, TippingOptions,
};
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
use crate::sweep::{Axis, Design, Metric, Sweep};
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
    /// Folds in supernode capacity.
    pub capacity_folds: Vec<f64>,
    /// Folds in dedicated capacity.
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
/// (see [`read_readings`] for the format).
pub fn read_observations(path: &Path, start: &str) -> Result<Vec<Observation>, Error> {
    Ok(observations(&read_readings(
        path,
        start,
        &Weighting::default(),
    )?))
}

fn csv_err(e: csv::Error) -> Error {
    Error::csv_write("CSV output", e)
}

fn write_continuation(path: &Path, c: &Continuation<3>) -> Result<(), Error> {
    write_atomic(path, true, |w| continuation_csv(w, &P2p, c))
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
    } else {
        format!("{u:.0}")
    }
}

/// The outage time series of a simulated scenario of the reference model, with the wave, the
/// interventions and (optionally) observed online users.
pub fn outage_figure(sc: &Scenario, sim: &Simulation<3>, observed: &[Observation]) -> Figure {
    let hours = |t: f64| t / 60.0;
    let names = ["peers", "supernodes", "queue"];
    let samples = sim.sample(&P2p, 10.0);
    let series: Vec<Series> = (0..3)
        .map(|i| Series {
            label: names[i].into(),
            points: samples.iter().map(|(t, x)| (hours(*t), x[i])).collect(),
        })
        .collect();
    let specs = sc.params.specs();
    Figure::new(Plot::Outage(Outage {
        title: sc.name.clone(),
        series,
        population: sc.population,
        shock: sc.shock.map(|sh| (hours(sh.at), hours(sh.at + sh.window))),
        interventions: sc
            .interventions
            .iter()
            .map(|iv| {
                let what: Vec<String> = iv
                    .set
                    .iter()
                    .map(|(i, v)| format!("{} = {v}", specs[*i].name))
                    .collect();
                (hours(iv.at), what.join(", "))
            })
            .collect(),
        observed: observed
            .iter()
            .filter(|o| o.0 >= 0.0 && o.0 <= sc.t_end)
            .map(|o| (hours(o.0), o.1.max(1.0)))
            .collect(),
    }))
}

/// A fitted scenario against the readings: online users (peers + supernodes) and the login
/// queue, with every reading as a dot (including any left out of the fit).
pub fn fit_figure(
    sc: &Scenario,
    sim: &Simulation<3>,
    observed: &[Observation],
    title: &str,
) -> Figure {
    let mut fig = outage_figure(sc, sim, observed);
    if let Plot::Outage(o) = &mut fig.plot {
        let samples = sim.sample(&P2p, 10.0);
        o.title = title.into();
        o.series = vec![
            Series {
                label: "online (peers + supernodes)".into(),
                points: samples
                    .iter()
                    .map(|(t, x)| (t / 60.0, P2p.online(x)))
                    .collect(),
            },
            Series {
                label: "login queue".into(),
                points: samples.iter().map(|(t, x)| (t / 60.0, x[2])).collect(),
            },
        ];
    }
    fig
}

/// The bifurcation diagram (peers at each equilibrium) of a continuation of the reference model.
pub fn bifurcation_figure(c: &Continuation<3>, title: &str, current: Option<f64>) -> Figure {
    Figure::new(Plot::Bifurcation(Bifurcation {
        title: title.into(),
        param: axis_label(&c.param, false),
        branches: c
            .branches
            .iter()
            .map(|b| BranchLine {
                points: b
                    .points
                    .iter()
                    .filter(|p| p.special.is_none())
                    .map(|p| (p.mu, p.x[0], p.stable))
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
                (p.mu, p.x[0], label)
            })
            .collect(),
        current,
    }))
}

/// An axis label for a quantity of the reference model: its name and unit (`sn_capacity
/// (req/min)`), a parameter without a unit by name alone, and `log scale` added when the axis
/// is logarithmic. Quantities of the scenario (`shock`, `window`, …) carry theirs too.
pub fn axis_label(name: &str, log: bool) -> String {
    let unit = match P2p.params().iter().find(|s| s.name == name) {
        Some(spec) if spec.unit != "-" => Some(spec.unit),
        Some(_) => None,
        None => match name {
            "shock" | "sn_shock" => Some("fraction"),
            "window" | "shock_at" | "t_end" => Some("min"),
            "population" => Some("users"),
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

/// The critical shock over (supernode capacity, dedicated capacity) around the scenario's
/// values, written to `csv_path` row by row, with fold curves (solid) and Hopf curves (dashed)
/// on top and the scenario marked with its f* (or why it has none).
fn tipping_map(
    sc: &Scenario,
    (kc, kd): (usize, usize),
    (fstar, down): (Option<f64>, bool),
    csv_path: &Path,
) -> Result<Figure, Error> {
    let p0 = sc.params.values();
    let (kappa, s0) = (p0[kc], p0[kd]);
    let copts = ContinuationOptions::default();
    // Tipping map: critical shock over (capacity, dedicated capacity), fold curves on top.
    let base = {
        let mut b = sc.clone();
        b.interventions.clear();
        b.shock = None;
        b
    };
    let (klo, khi) = (kappa / 4.0, kappa * 12.0);
    let (dlo, dhi) = (s0.max(1e-7) / 10.0, s0.max(1e-7) * 200.0);
    let n = 24;
    let mut ax = Axis::parse(&format!("sn_capacity={klo}:{khi}:{n}"), &base)?;
    ax.set_log()?;
    let mut ay = Axis::parse(&format!("dedicated={dlo}:{dhi}:{n}"), &base)?;
    ay.set_log()?;
    let mut map = None;
    write_atomic(csv_path, true, |w| {
        let mut csv = csv::Writer::from_writer(w);
        map = Some(critical_shock_map(&base, ax, ay, |row| {
            csv.write_record(row).map_err(csv_err)
        })?);
        csv.flush()
            .map_err(|e| Error::Invalid(format!("writing CSV: {e}")))
    })?;
    let mut map = map.expect("the map is built before the file is committed");
    // Fold curves (solid) and Hopf curves (dashed) in the map's plane, from the scenario's
    // dedicated capacity: where they end stable branches they are the bistable region's edges.
    let q = {
        let mut q = p0.to_vec();
        q[kd] = s0.clamp(dlo, dhi);
        q
    };
    let (r1, r2) = ((klo / 4.0, khi * 4.0), (dlo, dhi));
    let logs = |pts: &mut dyn Iterator<Item = (f64, f64)>| -> Vec<(f64, f64)> {
        pts.map(|(a, b)| (a.log10(), b.max(1e-300).log10()))
            .collect()
    };
    let labelled = |k: usize, label: &str, points| Series {
        label: if k == 0 { label.into() } else { String::new() },
        points,
    };
    if let Ok(fc) = fold_curves(&P2p, &q, &Plane::new(kc, r1, kd, r2), &copts) {
        for (k, c) in fc.curves.iter().enumerate() {
            let pts = logs(&mut c.points.iter().map(|p| (p.mu1, p.mu2)));
            map.curves.push(labelled(k, "fold curves", pts));
        }
    }
    if let Ok(hc) =
        crate::analysis::hopf_curve::hopf_curves(&P2p, &q, &Plane::new(kc, r1, kd, r2), &copts)
    {
        for (k, c) in hc.curves.iter().enumerate() {
            let pts = logs(&mut c.points.iter().map(|p| (p.mu1, p.mu2)));
            map.dashed.push(labelled(k, "Hopf curves", pts));
        }
    }
    map.point = Some((kappa.log10(), s0.max(1e-300).log10()));
    map.point_label = Some(match fstar {
        Some(f) => format!("this scenario (f* = {f:.4})"),
        None if down => "this scenario (down)".into(),
        None => "this scenario (no shock tips it)".into(),
    });
    Ok(Figure::new(Plot::TippingMap(map)))
}

/// Trajectories either side of the critical shock in the plane of peers and supernodes, the
/// equilibria, and a slice of the basin boundary.
fn phase_portrait(
    p0: &[f64],
    landscape: &Landscape<3>,
    fstar: Option<f64>,
    topts: &TippingOptions,
) -> Result<Figure, Error> {
    // Phase portrait: trajectories either side of the boundary, and a slice of it.
    let sys = System::new(&P2p, p0);
    let healthy = landscape.rest_state();
    let saddle = landscape.saddles().next().cloned();
    let mut trajectories = vec![];
    if let Some(f) = fstar {
        for df in [-0.2, -0.05, -0.01, 0.01, 0.05, 0.2] {
            let fr = f + df;
            if !(0.0..1.0).contains(&fr) {
                continue;
            }
            let x0 = P2p.reboot_jump(&healthy, p0, fr, fr)?;
            let mut pts = vec![(x0[0], x0[1])];
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
                        pts.push((x[0], x[1]));
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
            let collapsed = landscape.equilibria.last().map_or(1e-4, |e| e.x[0]);
            let along: Vec<f64> = (0..24)
                .map(|k| {
                    let (a, b) = (collapsed.ln(), (healthy[0] * 1.2).ln());
                    (a + (b - a) * k as f64 / 23.0).exp()
                })
                .collect();
            let pts = basin_boundary_slice(
                &P2p,
                p0,
                landscape,
                sd.x,
                (0, &along),
                (1, 1e-9, 0.05),
                &topts.solve,
            )?;
            Some(Series {
                label: format!("basin boundary (slice at queue = {:.2e})", sd.x[2]),
                points: pts,
            })
        }
        None => None,
    };
    Ok(Figure::new(Plot::Phase(Phase {
        title: "Phase portrait: peers against supernodes".into(),
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
                (e.x[0], e.x[1], label)
            })
            .collect(),
        trajectories,
        boundary,
    })))
}

/// The elasticity of f* to each lever, d f*/d ln p by a ±10 % central difference, largest
/// magnitude first (`None` where f* is undefined nearby).
fn levers(sc: &Scenario, topts: &TippingOptions) -> Result<Vec<(String, Option<f64>)>, Error> {
    let p0 = sc.params.values();
    let idx = |n: &str| sc.params.index(n);
    let mut levers = vec![];
    for name in [
        "sn_capacity",
        "dedicated",
        "retry",
        "give_up",
        "promotion",
        "sign_on",
        "overload_threshold",
    ] {
        let k = idx(name)?;
        let v = p0[k];
        let e = if v > 0.0 {
            let at = |m: f64| {
                let mut q = p0.to_vec();
                q[k] = v * m;
                critical_shock(&P2p, &q, topts).ok().and_then(|c| c.value)
            };
            match (at(1.1), at(1.0 / 1.1)) {
                (Some(a), Some(b)) => Some((a - b) / (2.0 * 1.1f64.ln())),
                _ => None,
            }
        } else {
            None
        };
        levers.push((name.to_string(), e));
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
    fn of(sim: &Simulation<3>, observed: &[Observation], pop: f64) -> Option<Self> {
        let mut sq = 0.0;
        let (mut n, mut outside) = (0, 0);
        let mut worst: Option<(f64, (f64, f64, f64, String))> = None;
        for (t, users, note) in observed {
            let Some(x) = sim.dense.eval(*t).filter(|_| *t >= 0.0) else {
                outside += 1;
                continue;
            };
            let model = P2p.online(&x) * pop;
            sq += (model - users).powi(2);
            n += 1;
            let rel = (model - users).abs() / users.max(1.0);
            if worst.as_ref().is_none_or(|(r, _)| rel > *r) {
                worst = Some((rel, (t / 60.0, *users, model, note.clone())));
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

    fn words(&self, pop: f64) -> String {
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
            "{lead}: against the {} public readings in the figure{outside}, its online users are off by {} on average (root mean square); the largest miss is at hour {hour:.1}{note}: {} observed, {} in the model ({:.0} %).",
            self.n,
            users(self.rmse / pop, pop),
            users(obs / pop, pop),
            users(model / pop, pop),
            100.0 * (model - obs) / obs.max(1.0),
        )
    }
}

/// What the report found, for the words of report.md.
struct Findings<'a> {
    sc: &'a Scenario,
    label: &'a str,
    observed: &'a [Observation],
    sim: &'a Simulation<3>,
    summary: &'a crate::simulate::Summary,
    landscape: &'a Landscape<3>,
    fstar: Option<f64>,
    down: bool,
    scan: usize,
    window: Option<f64>,
    kappa: f64,
    cap_folds: &'a [f64],
    cap_bistable: &'a [crate::analysis::bistable::BistableInterval],
    ded_folds: &'a [f64],
    levers: &'a [(String, Option<f64>)],
}

/// The words of report.md.
fn prose(f: &Findings) -> String {
    let pop = f.sc.population;
    let mut md = String::new();
    let w = &mut md;
    let _ = writeln!(w, "# {}\n", f.sc.name);
    let _ = writeln!(
        w,
        "Scenario: `{}` · {} users · {} hours simulated · written by selfheal {}.\n",
        f.label,
        users(1.0, pop),
        f.sc.t_end / 60.0,
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
            "a reboot wave of {:.0} % of peers and {:.0} % of supernodes at hour {:.1}{}",
            fraction * 100.0,
            sn_fraction * 100.0,
            at / 60.0,
            if window > 0.0 {
                format!(", spread over {window:.0} minutes")
            } else {
                ", all at once".into()
            }
        ),
        None => "no reboot wave".into(),
    };
    let verdict = match f.summary.outcome {
        Outcome::Recovered => "**it recovers**",
        Outcome::Collapsed if f.summary.down => {
            "**it is down**: with the parameters in force at the end no stable state serves half the users who want service"
        }
        Outcome::Collapsed => "**it does not recover**: it settles in the collapsed state",
        Outcome::Undecided => "**undecided**: it had not settled within the horizon",
    };
    if !f.summary.start_healthy {
        let _ = writeln!(w, "**The network has no healthy state with the parameters in force at the start**: its best stable state serves {:.3} % of the users who want service (healthy needs at least 50 %). It is down whatever happens; the run starts in that state.\n", f.summary.service_level * 100.0);
    }
    let _ = writeln!(w, "After {shock_txt}, {verdict}{}. Online peers fall to {} ({:.4} of users) at hour {:.1}; the login queue peaks at {}.",
        if f.sc.interventions.is_empty() { String::new() } else { " (with the scenario's interventions)".into() },
        users(f.summary.min_peers, pop), f.summary.min_peers, f.summary.t_min_peers / 60.0, users(f.summary.peaks[2].0, pop));
    match f.summary.recovery_time {
        _ if !f.summary.start_healthy => {}
        Some(t) if t > 0.0 => {
            let _ = writeln!(
                w,
                "Peers are back at 95 % of their healthy level {:.1} hours after the wave began.",
                t / 60.0
            );
        }
        Some(_) => {
            let _ = writeln!(w, "Peers never fell below 95 % of their healthy level.");
        }
        None => {
            let _ = writeln!(w, "Peers never return to 95 % of their healthy level.");
        }
    }
    let _ = writeln!(w, "\n![Outage time series](outage.svg)\n");
    let _ = writeln!(w, "*Peers, supernodes and the login queue as fractions of users (left, log scale) and as users (right); the shaded band is the reboot wave, dashed lines are interventions{}.*\n",
        if f.observed.is_empty() { "" } else { ", dots are the public online-user readings" });
    if let Some(m) = Misfit::of(f.sim, f.observed, pop) {
        let _ = writeln!(w, "{}\n", m.words(pop));
    }
    let _ = writeln!(w, "## How far is it from tipping?\n");
    let _ = writeln!(w, "With the parameters in force at the start, the network has {} equilibria (`equilibria.csv`): {}.",
        f.landscape.equilibria.len(),
        f.landscape.equilibria.iter().map(|e| format!("{} with {} peers", e.describe(), users(e.x[0], pop))).collect::<Vec<_>>().join("; "));
    match f.fstar {
        Some(fs) => {
            let _ = writeln!(w, "\nThe **critical shock is f\\* = {fs:.4}**: an instantaneous reboot of more than {:.1} % of peers and supernodes tips it into the collapsed state, from which it does not come back by itself.", fs * 100.0);
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
                    let _ = writeln!(w, "Spread over more than **{wc:.1} minutes** a wave of this size would be absorbed; this one is spread over {:.0}.", sh.window);
                }
            }
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
                "\nNo instantaneous reboot below 100 % tips the network (every shock k/{} for k = 0..{} recovers): it heals itself.",
                f.scan, f.scan
            );
        }
    }
    let _ = writeln!(w, "\nIn supernode capacity (`continuation_sn_capacity.csv`) the branches of equilibria fold at {}.",
        if f.cap_folds.is_empty() { "no value in the range".into() } else { f.cap_folds.iter().map(|v| format!("κ = {v:.1}")).collect::<Vec<_>>().join(" and ") });
    if !f.cap_bistable.is_empty() {
        let _ = writeln!(w, "The network is bistable (a stable state that serves less beside the healthy one, so that a large enough trigger causes a lasting outage) for κ (this scenario has κ = {}):\n", f.kappa);
        for b in f.cap_bistable {
            let _ = writeln!(
                w,
                "- from {:.1} ({}) to {:.1} ({});",
                b.lo.mu,
                edge_words(&b.lo),
                b.hi.mu,
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
        "In dedicated capacity (`continuation_dedicated.csv`): {}.",
        if f.ded_folds.is_empty() {
            "no fold in the range".into()
        } else {
            f.ded_folds
                .iter()
                .map(|v| {
                    format!(
                        "a fold at S0 = {v:.3e} (about {} supernodes' worth)",
                        users(*v, pop)
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    let _ = writeln!(w, "\n![Bifurcation diagram](bifurcation.svg)\n");
    let _ = writeln!(w, "*Online peers at each equilibrium against supernode capacity: stable branches solid, unstable dashed, folds and Hopf points marked with their values; the vertical line is this scenario.*\n");
    let _ = writeln!(w, "![Tipping map](tipping_map.svg)\n");
    let _ = writeln!(w, "*The critical shock over supernode capacity and dedicated capacity (`tipping_map.csv`); cells without an f* are coloured by why: always down (no healthy state) or no shock below 1 tips the network. The solid white curves are where equilibria fold, the dashed ones where an equilibrium has a Hopf point; a fold curve bounds the bistable region only where it ends a stable branch (between its Bogdanov–Takens points, where the Hopf curves end, it joins unstable branches only), and there the collapsed state's Hopf curve is the edge where its Hopf point is subcritical. The cross is this scenario, with its f*.*\n");
    let _ = writeln!(w, "![Phase portrait](phase.svg)\n");
    let _ = writeln!(w, "*Trajectories after reboot waves just below (green) and above (red) the critical shock, in the plane of peers and supernodes, with the equilibria and a slice of the basin boundary (the saddle's stable manifold at the saddle's queue length).*\n");
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
    let _ = writeln!(w, "\n## Files\n");
    for f in files_list() {
        let _ = writeln!(w, "- `{f}`");
    }
    md
}

/// Steps of the report, for progress: simulation, equilibria and f*, continuations, the map,
/// the phase portrait, the levers.
const REPORT_STEPS: usize = 6;

/// Writes the report for `sc` into `dir` (created if missing). Only the report's own files are
/// written (and replaced); nothing else in `dir` is touched.
pub fn write_report(
    sc: &Scenario,
    scenario_label: &str,
    observed: &[Observation],
    dir: &Path,
) -> Result<Report, Error> {
    sc.validate(&P2p)?;
    if dir.exists() && !dir.is_dir() {
        return Err(Error::Invalid(format!(
            "{} is a file: a report is a directory of files; give a directory (it is created if missing)",
            dir.display()
        )));
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
    let idx = |n: &str| sc.params.index(n);
    let (kc, kd) = (idx("sn_capacity")?, idx("dedicated")?);
    let (kappa, s0) = (p0[kc], p0[kd]);
    // The continuation in capacity runs from κ/10 to 20κ: both must be normal numbers.
    if !(kappa / 10.0 >= f64::MIN_POSITIVE && (kappa * 20.0).is_finite()) {
        return Err(Error::OutOfRange {
            name: "sn_capacity".into(),
            value: kappa,
            range: "in [1e-300, 1e300] for a report (its continuation runs from κ/10 to 20κ)"
                .into(),
        });
    }

    // The scenario itself.
    crate::progress::update("report steps", 0, REPORT_STEPS);
    let opts = SimOptions::default();
    let sim = simulate(&P2p, sc, &opts)?;
    let s = &sim.summary;
    write_atomic(&file("trajectory.csv"), true, |w| {
        trajectory_csv(w, &P2p, sc, &sim, 10.0, false)
    })?;
    let outage = outage_figure(sc, &sim, observed);
    outage.save(&file("outage.svg"))?;
    outage.save(&file("outage.png"))?;

    // Equilibria and the critical shock of the parameters at t = 0.
    crate::progress::update("report steps", 1, REPORT_STEPS);
    let landscape = Landscape::new(&P2p, &p0)?;
    write_atomic(&file("equilibria.csv"), true, |w| {
        equilibria_csv(w, &P2p, &p0, &landscape.equilibria)
    })?;
    let topts = TippingOptions::default();
    let cs = critical_shock(&P2p, &p0, &topts)?;
    let fstar = cs.value;
    let window = match (sc.shock, fstar) {
        (Some(sh), Some(f)) if sh.fraction > f && sh.window > 0.0 => {
            critical_window(&P2p, &p0, sh.fraction, &topts)
                .ok()
                .and_then(|w| w.value)
        }
        _ => None,
    };

    // Branches in supernode capacity and in dedicated capacity.
    crate::progress::update("report steps", 2, REPORT_STEPS);
    let copts = ContinuationOptions::default();
    let cap = continue_equilibria(&P2p, &p0, kc, kappa / 10.0, kappa * 20.0, &copts)?;
    write_continuation(&file("continuation_sn_capacity.csv"), &cap)?;
    let ded_hi = (s0 * 100.0).max(1e-3);
    // From the scenario's value up: near S0 = 0 the collapsed state sits at vanishing sizes.
    let ded = continue_equilibria(&P2p, &p0, kd, s0.max(1e-7), ded_hi, &copts)?;
    write_continuation(&file("continuation_dedicated.csv"), &ded)?;
    let (cap_folds, ded_folds) = (cap.folds(), ded.folds());
    let cap_bistable = crate::analysis::bistable::bistable_intervals(&P2p, &cap)?;
    let bif = bifurcation_figure(&cap, "Equilibria against supernode capacity", Some(kappa));
    bif.save(&file("bifurcation.svg"))?;
    bif.save(&file("bifurcation.png"))?;

    crate::progress::update("report steps", 3, REPORT_STEPS);
    let map = tipping_map(sc, (kc, kd), (fstar, cs.down), &file("tipping_map.csv"))?;
    map.save(&file("tipping_map.svg"))?;
    map.save(&file("tipping_map.png"))?;

    crate::progress::update("report steps", 4, REPORT_STEPS);
    let phase = phase_portrait(&p0, &landscape, fstar, &topts)?;
    phase.save(&file("phase.svg"))?;
    phase.save(&file("phase.png"))?;

    crate::progress::update("report steps", 5, REPORT_STEPS);
    let levers = levers(sc, &topts)?;

    crate::progress::finish("report steps");
    let md = prose(&Findings {
        sc,
        label: scenario_label,
        observed,
        sim: &sim,
        summary: s,
        landscape: &landscape,
        fstar,
        down: cs.down,
        scan: topts.scan,
        window,
        kappa,
        cap_folds: &cap_folds,
        cap_bistable: &cap_bistable,
        ded_folds: &ded_folds,
        levers: &levers,
    });
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
        capacity_folds: cap_folds,
        dedicated_folds: ded_folds,
        levers,
    })
}

/// The files `write_report` writes, relative to its directory.
pub fn files_list() -> [&'static str; 14] {
    [
        "trajectory.csv",
        "equilibria.csv",
        "continuation_sn_capacity.csv",
        "continuation_dedicated.csv",
        "tipping_map.csv",
        "outage.svg",
        "outage.png",
        "bifurcation.svg",
        "bifurcation.png",
        "tipping_map.svg",
        "tipping_map.png",
        "phase.svg",
        "phase.png",
        "report.md",
    ]
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

/// The critical shock of the reference model over a grid of two axes (a sweep with the
/// `critical_shock` metric on both threads), as a map whose cells without a value say why:
/// "always down" (no healthy state) or "no shock below 1 tips it" (the scan found none), each in
/// its own colour; cells whose row failed stay grey ("error"). `on_row` receives the CSV header
/// and then every row, in order. Axes spaced logarithmically are drawn on log scales (both or
/// neither must be).
pub fn critical_shock_map(
    base: &Scenario,
    x: Axis,
    y: Axis,
    mut on_row: impl FnMut(&[String]) -> Result<(), Error>,
) -> Result<TippingMap, Error> {
    if x.log != y.log {
        return Err(Error::Invalid(
            "a tipping map needs both axes linear or both logarithmic".into(),
        ));
    }
    let log = x.log;
    let scale = |v: f64| if log { v.log10() } else { v };
    let (nx, ny) = (x.count, y.count);
    let xs: Vec<f64> = (0..nx).map(|j| scale(x.value(j))).collect();
    let ys: Vec<f64> = (0..ny).map(|j| scale(y.value(j))).collect();
    let label = |a: &Axis| axis_label(&a.name, log);
    let (xl, yl) = (label(&x), label(&y));
    let sweep = Sweep::new(
        &P2p,
        base.clone(),
        Design::Grid(vec![x, y]),
        vec![Metric::CriticalShock],
    )?;
    on_row(&sweep.header())?;
    let mut z = vec![f64::NAN; nx * ny];
    let (mut down, mut heals) = (vec![], vec![]);
    sweep.run(0..sweep.len(), 0, |i, row| {
        // Columns: x, y, critical_shock, status.
        match (row[2].parse::<f64>(), row[3].as_str()) {
            (Ok(v), _) => z[i] = v,
            (Err(_), "down") => down.push(i),
            (Err(_), "ok") => heals.push(i),
            _ => {}
        }
        on_row(row)
    })?;
    Ok(TippingMap {
        title: "Critical shock f* over capacity and dedicated capacity".into(),
        x: (xl, xs),
        y: (yl, ys),
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
    })
}
