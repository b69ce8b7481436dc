//! Critical shocks that are certified or honestly absent: brackets checked by plain
//! simulation, a one-state model with a closed-form f*, "down" networks never called healthy,
//! and a seeded random consistency check over valid parameter sets.

mod common;

use common::{random_params, rosenbrock, with, SplitMix};
use nalgebra::SVector;
use selfheal::analysis::tipping::{critical_shock, rescue, TippingOptions, MAX_FRACTION};
use selfheal::error::Error;
use selfheal::model::{Bound, Model, P2p, ParamSet, ParamSpec, Scalar, StateSpec};
use selfheal::scenario::{Scenario, Shock};
use selfheal::simulate::{simulate, Outcome, SimOptions};
use std::borrow::Cow;
/// The outcome of a plain scenario simulation of an instantaneous wave `f` at `ps`.
fn simulated<M: Model<N>, const N: usize>(model: &M, ps: &ParamSet, f: f64) -> Outcome
where
    nalgebra::Const<N>: nalgebra::DimMin<nalgebra::Const<N>, Output = nalgebra::Const<N>>,
{
    let mut sc = Scenario::new(model);
    sc.params = ps.clone();
    sc.shock = Some(Shock::instantaneous(f));
    sc.t_end = 60.0;
    simulate(model, &sc, &rosenbrock(1e-10, 1e-15))
        .unwrap()
        .summary
        .outcome
}

#[test]
fn critical_shocks_without_a_saddle_passage_are_bracketed_by_simulation() {
    // Values from an independent solver (SciPy, Radau at rtol 1e-12): f* = 0.857727 at
    // sn_capacity 5000, 0.084161 at retry 30, 0.380694 at the 2007 fitted sign-on/off rates.
    for (set, want) in [
        (vec![("sn_capacity", 5000.0)], 0.857727),
        (vec![("retry", 30.0)], 0.084161),
        (
            vec![
                ("sign_on", 0.0005119938399415238),
                ("sign_off", 0.0005716561753599269),
            ],
            0.380694,
        ),
    ] {
        let ps = with(&set);
        let cs = critical_shock(&P2p, ps.values(), &TippingOptions::default()).unwrap();
        let f = cs.value.unwrap();
        let (lo, hi) = cs.bracket.unwrap();
        assert!(
            lo < f && f < hi && hi - lo <= 1e-6,
            "{set:?}: {lo} {f} {hi}"
        );
        assert!((f - want).abs() < 2e-6, "{set:?}: {f} vs {want}");
        assert_eq!(
            simulated(&P2p, &ps, f - 1e-4),
            Outcome::Recovered,
            "{set:?}"
        );
        assert_eq!(
            simulated(&P2p, &ps, f + 1e-4),
            Outcome::Collapsed,
            "{set:?}"
        );
    }
}

#[test]
fn a_network_without_a_healthy_state_is_down_never_recovered() {
    // sn_capacity 300 lies below the healthy branch's fold (≈ 530.9): only the collapsed state
    // is stable, and it serves almost nobody.
    let ps = with(&[("sn_capacity", 300.0)]);
    let cs = critical_shock(&P2p, ps.values(), &TippingOptions::default()).unwrap();
    assert!(cs.down && cs.value.is_none() && cs.changes.is_empty());
    let mut sc = Scenario::new(&P2p);
    sc.params = ps.clone();
    for f in [0.0, 0.5] {
        sc.shock = Some(Shock::instantaneous(f));
        let s = simulate(&P2p, &sc, &SimOptions::default()).unwrap().summary;
        assert_eq!(s.outcome, Outcome::Collapsed, "shock {f}");
        assert!(s.down && !s.start_healthy && s.service_level < 0.5);
        // Service level from the state itself: online over online plus queued.
        let h = &s.healthy;
        assert!(((h[0] + h[1]) / (h[0] + h[1] + h[2]) - s.service_level).abs() < 1e-12);
    }
    let e = selfheal::analysis::healthy_state(&P2p, ps.values()).unwrap_err();
    assert!(matches!(e, Error::NoHealthyState { .. }), "{e}");
    // A rescue from the down state: more capacity brings the network up.
    let k = ps.index("sn_capacity").unwrap();
    let r = rescue(&P2p, ps.values(), k, &TippingOptions::default()).unwrap();
    assert!(r.down);
    let (fails, rescues) = r.bracket.unwrap();
    assert!(fails < rescues && rescues > 300.0);
}

/// Slotted ALOHA as a fluid model of one state, the backlogged share b of M users: fresh users
/// transmit with probability σ per slot, backlogged ones retry with ν; a slot succeeds when
/// exactly one transmits, G·e^{−G} with G = M(σ(1 − b) + νb) attempts, so
/// b' = σ(1 − b) − G·e^{−G}/M. A reboot wave sends a share f of the fresh users into the
/// backlog: b → b + f(1 − b). Its middle equilibrium is *unstable* (no saddle in one state),
/// and f* = (b_u − b_h)/(1 − b_h) exactly.
struct Aloha;
static ALOHA: [ParamSpec; 3] = [
    ParamSpec {
        name: Cow::Borrowed("users"),
        symbol: Cow::Borrowed("M"),
        unit: Cow::Borrowed("-"),
        default: 100.0,
        lower: Bound::Open(0.0),
        upper: Bound::Unbounded,
        meaning: Cow::Borrowed("users"),
    },
    ParamSpec {
        name: Cow::Borrowed("fresh"),
        symbol: Cow::Borrowed("σ"),
        unit: Cow::Borrowed("1/slot"),
        default: 0.002,
        lower: Bound::Closed(0.0),
        upper: Bound::Closed(1.0),
        meaning: Cow::Borrowed("transmission probability of a fresh user"),
    },
    ParamSpec {
        name: Cow::Borrowed("retry"),
        symbol: Cow::Borrowed("ν"),
        unit: Cow::Borrowed("1/slot"),
        default: 0.2,
        lower: Bound::Closed(0.0),
        upper: Bound::Closed(1.0),
        meaning: Cow::Borrowed("retransmission probability of a backlogged user"),
    },
];
impl Model<1> for Aloha {
    fn name(&self) -> &str {
        "aloha"
    }
    fn states(&self) -> [StateSpec; 1] {
        [StateSpec {
            name: Cow::Borrowed("backlog"),
            meaning: Cow::Borrowed("backlogged share"),
        }]
    }
    fn params(&self) -> &[ParamSpec] {
        &ALOHA
    }
    fn rhs<T: Scalar>(&self, _t: T, x: &SVector<T, 1>, p: &[T]) -> SVector<T, 1> {
        let (m, s, v) = (p[0], p[1], p[2]);
        let b = x[0];
        let one = T::from(1.0);
        let g = m * (s * (one - b) + v * b);
        SVector::from([s * (one - b) - g * (-g).exp() / m])
    }
    fn nominal_state(&self, _p: &[f64]) -> SVector<f64, 1> {
        SVector::from([0.0])
    }
    fn search_box(&self, _p: &[f64]) -> [selfheal::model::SearchRange; 1] {
        [selfheal::model::SearchRange {
            lo: 0.0,
            hi: 1.0,
            log: false,
        }]
    }
    fn feasible(&self, x: &SVector<f64, 1>, _p: &[f64]) -> bool {
        (0.0..=1.0).contains(&x[0])
    }
    fn service_level(&self, x: &SVector<f64, 1>, _p: &[f64]) -> Option<f64> {
        Some(1.0 - x[0])
    }
    fn reboot_jump<T: Scalar>(
        &self,
        x: &SVector<T, 1>,
        _p: &[T],
        f: T,
        _c: T,
    ) -> Result<SVector<T, 1>, Error> {
        Ok(SVector::from([x[0] + f * (T::from(1.0) - x[0])]))
    }
}

/// Root of the ALOHA right-hand side in `[a, b]` by plain bisection (a second method).
fn aloha_root(p: &[f64], mut a: f64, mut b: f64) -> f64 {
    let f = |x: f64| Aloha.rhs(0.0, &SVector::from([x]), p)[0];
    assert!(f(a) * f(b) < 0.0);
    for _ in 0..200 {
        let m = 0.5 * (a + b);
        if f(m) * f(a) > 0.0 {
            a = m;
        } else {
            b = m;
        }
    }
    0.5 * (a + b)
}

#[test]
fn one_state_model_with_an_unstable_middle_has_its_closed_form_critical_shock() {
    for (m, s, v) in [
        (100.0, 0.002, 0.2),
        (200.0, 0.0012, 0.08),
        (50.0, 0.004, 0.3),
    ] {
        let mut ps = ParamSet::defaults(&ALOHA);
        for (n, x) in [("users", m), ("fresh", s), ("retry", v)] {
            ps.set(n, x).unwrap();
        }
        let p = ps.values();
        // Sign changes of b' on a fine grid locate the healthy and middle roots.
        let f = |x: f64| Aloha.rhs(0.0, &SVector::from([x]), p)[0];
        let grid: Vec<f64> = (0..=20000).map(|k| k as f64 / 20000.0).collect();
        let roots: Vec<f64> = grid
            .windows(2)
            .filter(|w| f(w[0]) * f(w[1]) < 0.0)
            .map(|w| aloha_root(p, w[0], w[1]))
            .collect();
        assert!(roots.len() >= 2, "({m}, {s}, {v}): {roots:?}");
        let (bh, bu) = (roots[0], roots[1]);
        let exact = (bu - bh) / (1.0 - bh);
        let cs = critical_shock(&Aloha, p, &TippingOptions::default()).unwrap();
        let (lo, hi) = cs.bracket.unwrap();
        assert!(
            lo <= exact + 1e-9 && exact <= hi + 1e-9,
            "({m}, {s}, {v}): [{lo}, {hi}] vs exact {exact}"
        );
        assert!(cs.saddle.is_none(), "one state: no saddle");
    }
}

#[test]
fn random_parameter_sets_never_contradict_plain_simulation() {
    let opts = TippingOptions::default();
    let mut rng = SplitMix(20261130);
    let (mut tips, mut none, mut down, mut refused, mut contradictions) = (0, 0, 0, vec![], vec![]);
    let mut several = 0;
    for set in 0..320 {
        let ps = random_params(&mut rng, 4.0, None);
        let cs = match critical_shock(&P2p, ps.values(), &opts) {
            Ok(cs) => cs,
            // An honest refusal (no stable state, an undecided trial) is not a wrong answer.
            Err(e) => {
                refused.push(format!("set {set}: {e}"));
                continue;
            }
        };
        if cs.down {
            down += 1;
            if simulated(&P2p, &ps, 0.3) != Outcome::Collapsed {
                contradictions.push(format!("set {set}: down but 0.3 not collapsed"));
            }
            continue;
        }
        if cs.changes.is_empty() {
            none += 1;
            // "None" is confirmed by plain simulation at the scan's points.
            for &(f, _) in cs.scan.iter().step_by(4) {
                if simulated(&P2p, &ps, f) != Outcome::Recovered {
                    contradictions.push(format!("set {set}: none, but {f} does not recover"));
                }
            }
            continue;
        }
        tips += cs.value.is_some() as usize;
        several += (cs.changes.len() > 1) as usize;
        for c in &cs.changes {
            let (a, b) = c.bracket;
            let below = (a - 1e-4).max(0.0);
            let above = (b + 1e-4).min(MAX_FRACTION);
            let (sb, sa) = (simulated(&P2p, &ps, below), simulated(&P2p, &ps, above));
            if sb != c.below || sa != c.above {
                contradictions.push(format!(
                    "set {set}: change [{a}, {b}] {:?}->{:?}, simulated {below}: {sb:?}, {above}: {sa:?}",
                    c.below, c.above
                ));
            }
        }
    }
    eprintln!(
        "random sets: {tips} tip ({several} with more than one change of fate), {none} never tip, {down} down, {} refused {refused:#?}; {} contradictions",
        refused.len(),
        contradictions.len()
    );
    assert!(contradictions.is_empty(), "{contradictions:#?}");
    assert!(tips >= 100, "too few sets tip to test anything: {tips}");
}

#[test]
fn bistable_region_ends_where_the_collapsed_state_loses_stability_not_at_the_second_fold() {
    use selfheal::analysis::bistable::{bistable_intervals, EdgeKind};
    use selfheal::analysis::continuation::{continue_equilibria, ContinuationOptions};
    use selfheal::equilibria::{all_equilibria, choose_rest, Kind};
    let base = ParamSet::defaults(P2p.params());
    // A second method: whether a healthy state exists and how many other stable states there
    // are, from the equilibrium search and eigenvalues alone, either side of each reported edge.
    // (Near the Hopf point the collapsed focus serves about half the users who want service,
    // so "other stable state" is the test, not a service threshold.)
    let undone = |name: &str, v: f64| {
        let mut ps = base.clone();
        ps.set(name, v).unwrap();
        let eq = all_equilibria(&P2p, ps.values()).unwrap();
        let healthy = choose_rest(&P2p, ps.values(), &eq).unwrap().healthy;
        let stable = eq.iter().filter(|e| e.kind == Kind::Stable).count();
        (healthy, stable - healthy as usize)
    };
    for (name, from, to, hi_kind) in [
        ("sn_capacity", 300.0, 20000.0, EdgeKind::Hopf),
        ("dedicated", 1e-5, 1e-3, EdgeKind::Hopf),
    ] {
        let k = base.index(name).unwrap();
        let c = continue_equilibria(
            &P2p,
            base.values(),
            k,
            from,
            to,
            &ContinuationOptions::default(),
        )
        .unwrap();
        let b = bistable_intervals(&P2p, &c).unwrap();
        assert_eq!(b.len(), 1, "{name}: {b:?}");
        assert_eq!(b[0].hi.kind, hi_kind, "{name}: {b:?}");
        let (lo, hi) = (b[0].lo.mu, b[0].hi.mu);
        let inside = undone(name, 0.5 * (lo + hi));
        assert!(inside.0 && inside.1 == 1, "{name}: inside {inside:?}");
        assert_eq!(undone(name, hi * 1.001).1, 0, "{name} above {hi}");
        assert_eq!(undone(name, hi * 0.999).1, 1, "{name} below {hi}");
        if b[0].lo.kind == EdgeKind::Fold {
            assert!(
                !undone(name, lo * 0.999).0,
                "{name}: healthy below the fold {lo}"
            );
        }
    }
}

#[test]
fn random_critical_windows_and_rescues_agree_with_plain_simulation() {
    use selfheal::analysis::tipping::critical_window;
    use selfheal::scenario::Intervention;
    let opts = TippingOptions::default();
    let mut rng = SplitMix(7);
    let (mut windows, mut rescues, mut contradictions) = (0, 0, vec![]);
    // Changes of fate in window size actually simulated either side.
    let mut window_changes = 0;
    let spread = |ps: &ParamSet, f: f64, w: f64| {
        let mut sc = Scenario::new(&P2p);
        sc.params = ps.clone();
        sc.shock = Some(Shock {
            at: 0.0,
            fraction: f,
            sn_fraction: f,
            window: w,
        });
        sc.t_end = w + 60.0;
        simulate(&P2p, &sc, &rosenbrock(1e-10, 1e-15))
            .unwrap()
            .summary
            .outcome
    };
    for set in 0..60 {
        let ps = random_params(&mut rng, 3.0, None);
        let Ok(cs) = critical_shock(&P2p, ps.values(), &opts) else {
            continue;
        };
        let Some(fstar) = cs.value else {
            continue;
        };
        // A wave halfway between f* and 1, where the instantaneous wave tips.
        let f = 0.5 * (fstar + 1.0);
        if let Ok(cw) = critical_window(&P2p, ps.values(), f, &opts) {
            windows += 1;
            for c in &cw.changes {
                window_changes += 1;
                let (a, b) = c.bracket;
                let below = (a * (1.0 - 1e-3)).max(0.0);
                let above = b * (1.0 + 1e-3);
                let (sb, sa) = (spread(&ps, f, below), spread(&ps, f, above));
                if sb != c.below || sa != c.above {
                    contradictions.push(format!(
                        "set {set}: window change [{a}, {b}] {:?}->{:?}; simulated {sb:?}, {sa:?}",
                        c.below, c.above
                    ));
                }
            }
        }
        let k = ps.index("dedicated").unwrap();
        if let Ok(r) = rescue(&P2p, ps.values(), k, &opts) {
            let Some((fails, rescues_at)) = r.bracket else {
                continue;
            };
            rescues += 1;
            let step = |v: f64| {
                let mut sc = Scenario::new(&P2p);
                sc.params = ps.clone();
                sc.initial = Some(r.collapsed.iter().copied().collect());
                sc.interventions = vec![Intervention::step(0.0, vec![(k, v)])];
                sc.t_end = 60.0;
                simulate(&P2p, &sc, &rosenbrock(1e-10, 1e-15))
                    .unwrap()
                    .summary
                    .outcome
            };
            let away = if rescues_at > fails {
                1.0 + 1e-3
            } else {
                1.0 - 1e-3
            };
            let (sf, sr) = (step(fails / away), step(rescues_at * away));
            if sf != Outcome::Collapsed || sr != Outcome::Recovered {
                contradictions.push(format!(
                    "set {set}: rescue [{fails}, {rescues_at}]; simulated {sf:?}, {sr:?}"
                ));
            }
        }
    }
    eprintln!(
        "{windows} critical windows ({window_changes} changes of fate), {rescues} rescues checked; {} contradictions",
        contradictions.len()
    );
    assert!(contradictions.is_empty(), "{contradictions:#?}");
    // A window search that finds no change of fate compares nothing: count the changes.
    assert!(
        window_changes >= 20 && rescues >= 20,
        "{windows} windows ({window_changes} changes), {rescues} rescues"
    );
}

/// A continued tipping map cell by cell against the full analysis of the same parameters and
/// against plain simulation, on seeded random parameter sets and parameter pairs: every
/// cell's state is the full analysis's, every continued f* lies within the tolerance of the
/// full analysis's, and shocks just outside each bracket simulate to its fates.
#[test]
fn continued_tipping_maps_agree_with_the_full_analysis_on_random_parameter_sets() {
    use selfheal::analysis::tipping_map::{shock_map, MapAxis, MapState};
    let opts = TippingOptions {
        tol: 1e-4,
        ..TippingOptions::default()
    };
    let names = [
        "sn_capacity",
        "dedicated",
        "retry",
        "sign_on",
        "sign_off",
        "give_up",
    ];
    let mut rng = SplitMix(20261204);
    let (mut cells, mut continued, mut bracketed, mut bistable, mut bad) = (0, 0, 0, 0, vec![]);
    let mut refused = 0;
    for set in 0..5 {
        let ps = random_params(&mut rng, 2.0, None);
        let i = (rng.next() * names.len() as f64) as usize % names.len();
        let j = (i + 1 + (rng.next() * (names.len() - 1) as f64) as usize) % names.len();
        let axis = |name: &str, n: usize| {
            let k = ps.index(name).unwrap();
            let v = ps.values()[k];
            MapAxis {
                param: k,
                values: (0..n)
                    .map(|m| v * 4f64.powf(m as f64 / (n - 1) as f64 * 2.0 - 1.0))
                    .collect(),
            }
        };
        let (x, y) = (axis(names[i], 4), axis(names[j], 16));
        let map = shock_map(&P2p, ps.values(), &x, &y, &opts, 2).unwrap();
        // The same map on one thread: the same cells.
        let one = shock_map(&P2p, ps.values(), &x, &y, &opts, 1).unwrap();
        assert_eq!(map.cells, one.cells, "set {set}: threads change the map");
        for c in &map.cells {
            cells += 1;
            continued += c.continued as usize;
            bracketed += c.bracket_continued as usize;
            let mut q = ps.clone();
            q.set(names[i], c.x).unwrap();
            q.set(names[j], c.y).unwrap();
            // A full analysis that refuses (a trial that does not settle) has nothing to compare.
            let Ok(cold) = critical_shock(&P2p, q.values(), &opts) else {
                refused += 1;
                continue;
            };
            let want = if cold.down {
                MapState::AlwaysDown
            } else if cold.value.is_some() {
                MapState::Bistable
            } else {
                MapState::AlwaysHeals
            };
            let at = format!("set {set} {}={} {}={}", names[i], c.x, names[j], c.y);
            // A continued cell may follow a window of collapse narrower than the full
            // analysis's scan step (it has no other way of knowing it): then plain simulation
            // must confirm the map's bracket.
            let missed_by_scan = c.state == MapState::Bistable && want == MapState::AlwaysHeals;
            if c.state != want && !missed_by_scan {
                bad.push(format!("{at}: map {:?}, full analysis {want:?}", c.state));
                continue;
            }
            let (Some(f), Some((a, b))) = (c.critical_shock, c.bracket) else {
                continue;
            };
            bistable += 1;
            assert!(b - a <= opts.tol && a < f && f < b, "{at}: bracket {a} {b}");
            if let Some(g) = cold.value.filter(|g| (f - g).abs() > opts.tol) {
                bad.push(format!("{at}: map f* {f}, full analysis {g}"));
            }
            if missed_by_scan || (c.bracket_continued && bracketed % 7 == 0) {
                let (below, above) = (simulated(&P2p, &q, a - 1e-4), simulated(&P2p, &q, b + 1e-4));
                if below != Outcome::Recovered || above != Outcome::Collapsed {
                    bad.push(format!("{at}: simulated {below:?} below, {above:?} above"));
                }
            }
        }
    }
    eprintln!("{cells} cells, {continued} continued ({bracketed} brackets), {bistable} bistable, {refused} refused by the full analysis");
    assert!(refused * 10 < cells, "{refused} of {cells} cells refused");
    assert!(bad.is_empty(), "{bad:#?}");
    assert!(
        bistable >= 60 && bracketed >= 40,
        "too little continuation to test anything"
    );
}

#[test]
fn tipping_maps_refuse_bad_axes_before_any_work() {
    use selfheal::analysis::tipping_map::{shock_map, MapAxis};
    let ps = ParamSet::defaults(P2p.params());
    let k = ps.index("sn_capacity").unwrap();
    let d = ps.index("dedicated").unwrap();
    let ax = |param, values: &[f64]| MapAxis {
        param,
        values: values.to_vec(),
    };
    let opts = TippingOptions::default();
    let run = |x: &MapAxis, y: &MapAxis| {
        shock_map(&P2p, ps.values(), x, y, &opts, 1)
            .unwrap_err()
            .to_string()
    };
    let e = run(&ax(k, &[500.0, 600.0]), &ax(k, &[700.0]));
    assert!(e.contains("two different parameters"), "{e}");
    let e = run(&ax(k, &[500.0, -1.0]), &ax(d, &[1e-5]));
    assert!(e.contains("sn_capacity") && e.contains("> 0"), "{e}");
    let e = run(&ax(k, &[]), &ax(d, &[1e-5]));
    assert!(e.contains("no values"), "{e}");
    let bad = TippingOptions { tol: 0.5, ..opts };
    let e = shock_map(
        &P2p,
        ps.values(),
        &ax(k, &[500.0]),
        &ax(d, &[1e-5]),
        &bad,
        1,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("tol"), "{e}");
}

/// On the 2007 network at a supernode capacity of 6675 req/min, shocks just above 0.9045 end
/// in a degraded stable state while larger ones (0.95) recover: a window of collapse narrower
/// than the full analysis's scan step of 1/20, which therefore says no shock tips it. A map
/// line continued from a smaller dedicated capacity, where the scan found the change, follows
/// the window; plain simulation confirms both ends of the map's bracket and the recovery above.
#[test]
fn a_continued_map_line_follows_a_window_of_collapse_the_scan_misses() {
    use selfheal::analysis::tipping_map::{shock_map, MapAxis, MapState};
    let sc = Scenario::from_toml(&P2p, include_str!("../data/skype2007.toml")).unwrap();
    let mut ps = sc.params.clone();
    ps.set("sn_capacity", 6674.94551745972).unwrap();
    let opts = TippingOptions {
        tol: 1e-4,
        ..TippingOptions::default()
    };
    let d = ps.index("dedicated").unwrap();
    // From 1e-6, where the healthy state is the only stable state serving half the users
    // (the line may continue from there), to 2.5e-5.
    let ys: Vec<f64> = (0..40)
        .map(|j| 1e-6 * 25f64.powf(j as f64 / 39.0))
        .collect();
    let x = MapAxis {
        param: ps.index("sn_capacity").unwrap(),
        values: vec![6674.94551745972],
    };
    let map = shock_map(
        &P2p,
        ps.values(),
        &x,
        &MapAxis {
            param: d,
            values: ys,
        },
        &opts,
        1,
    )
    .unwrap();
    let last = map.cells.last().unwrap();
    assert_eq!(last.state, MapState::Bistable, "{last:?}");
    assert!(last.bracket_continued);
    ps.set("dedicated", last.y).unwrap();
    let cold = critical_shock(&P2p, ps.values(), &opts).unwrap();
    assert!(
        cold.value.is_none() && !cold.down,
        "the scan at 1/20 misses the window"
    );
    let (a, b) = last.bracket.unwrap();
    assert_eq!(simulated(&P2p, &ps, a), Outcome::Recovered);
    assert_eq!(simulated(&P2p, &ps, b), Outcome::Collapsed);
    assert_eq!(simulated(&P2p, &ps, 0.95), Outcome::Recovered);
    // A finer scan finds the same change of fate.
    let fine = critical_shock(&P2p, ps.values(), &TippingOptions { scan: 400, ..opts }).unwrap();
    let f = fine.value.expect("a scan of 1/400 sees the window");
    assert!((f - last.critical_shock.unwrap()).abs() <= opts.tol, "{f}");
}
