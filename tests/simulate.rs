//! Scenario simulation against an independent integrator, and the bookkeeping around shocks,
//! interventions, events and sampling.

mod common;

use common::rk4;
use nalgebra::SVector;
use proptest::prelude::*;
use selfheal::analysis::healthy_state;
use selfheal::model::{Model, P2p, P2pIdx, ParamSet, ParamSpec, Scalar, StateSpec};
use selfheal::scenario::{Intervention, Scenario, Shock};
use selfheal::simulate::{simulate, Outcome, SimOptions, Simulation};
use selfheal::solve::{Method, SolveOptions, Tolerances};
use std::borrow::Cow;

fn opts(method: Method, rtol: f64, atol: f64) -> SimOptions {
    SimOptions {
        solve: SolveOptions {
            method,
            tol: Tolerances { rtol, atol },
            stiffness_detection: true,
            ..Default::default()
        },
        ..Default::default()
    }
}

fn read_csv(text: &str) -> (Vec<String>, Vec<Vec<f64>>) {
    let mut lines = text.lines();
    let header = lines.next().unwrap().split(',').map(String::from).collect();
    let rows = lines
        .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
        .collect();
    (header, rows)
}

/// Runs `selfheal simulate` on the acceptance check's wave with `method`, up to `t_end` with
/// rows every `dt`: the CSV rows, or the error message.
fn cli_run(method: &str, t_end: &str, dt: &str) -> Result<Vec<Vec<f64>>, String> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_selfheal"))
        .args([
            "simulate", "--shock", "0.3", "--t-end", t_end, "--dt", dt, "--rtol", "1e-10",
            "--atol", "1e-14", "--method", method,
        ])
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let (header, rows) = read_csv(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(
        header,
        [
            "t",
            "peers",
            "supernodes",
            "queue",
            "offline",
            "utilisation"
        ]
    );
    Ok(rows)
}

/// Checks CLI rows every `every` reference rows against the RK4 reference (rows every 10 min):
/// times, the three states to 1e-6 relative, offline users as the rest of the simplex.
/// Returns how many rows were compared.
fn compare(method: &str, rows: &[Vec<f64>], reference: &[SVector<f64, 3>], every: usize) -> usize {
    let want: Vec<_> = reference.iter().step_by(every).collect();
    assert_eq!(rows.len(), want.len(), "{method}: row count");
    for (k, (row, x)) in rows.iter().zip(&want).enumerate() {
        assert_eq!(row[0], (k * every * 10) as f64, "{method}: row {k} time");
        for i in 0..3 {
            let rel = (row[i + 1] - x[i]).abs() / x[i].abs();
            assert!(
                rel < 1e-6,
                "{method}: t = {} state {i}: {} vs {}",
                row[0],
                row[i + 1],
                x[i]
            );
        }
        assert!(
            (row[4] - (1.0 - x.sum())).abs() < 1e-6,
            "{method}: t = {}",
            row[0]
        );
    }
    rows.len()
}

#[test]
fn cli_trajectory_agrees_with_independent_rk4_for_every_method() {
    // The acceptance check: --shock 0.3 --t-end 2880 --dt 60 --rtol 1e-10 --atol 1e-14.
    let p = ParamSet::defaults(P2p.params()).values().to_vec();
    let h = healthy_state(&P2p, &p).unwrap().equilibrium;
    // The start is an equilibrium of MODEL.md to rounding (checked, not assumed).
    assert!(P2p.rhs(0.0, &h, &p).amax() < 1e-15);
    let x0 = P2p.reboot_jump(&h, &p, 0.3, 0.3).unwrap();
    // Rows every 10 min up to 2880.
    let reference = rk4(&p, x0, 2880.0, 0.005, 10.0);
    assert_eq!(reference.len(), 289);
    // Halving the RK4 step changes it by far less than the tolerance we test against.
    let coarser = rk4(&p, x0, 2880.0, 0.01, 10.0);
    for (a, b) in reference.iter().zip(&coarser) {
        assert!(((a - b).component_div(a)).amax() < 1e-9);
    }

    let mut compared = vec![];
    for method in ["rosenbrock", "rodas4", "dopri5", "dop853", "auto"] {
        // The first ten hours hold the transient after the wave and are not stiff: every method,
        // the explicit ones included, must run them and match, row by row every 10 min.
        let rows = cli_run(method, "600", "10").unwrap_or_else(|e| panic!("{method}: {e}"));
        let mut n = compare(method, &rows, &reference[..=60], 1);
        // The whole two days, rows every hour. Near rest the problem is stiff: an explicit
        // method may stop there, and must then say so and name the cure.
        match cli_run(method, "2880", "60") {
            Ok(rows) => n += compare(method, &rows, &reference, 6),
            Err(e) => {
                assert!(method.starts_with("dop"), "{method} failed: {e}");
                assert!(e.contains("stiff") && e.contains("rosenbrock"), "{e}");
            }
        }
        compared.push((method, n));
    }
    // Every method was compared on the ten hours (61 rows); the stiff methods and auto on the
    // two days too (49 more).
    for (method, n) in compared {
        let want = if method.starts_with("dop") {
            61
        } else {
            61 + 49
        };
        assert!(n >= want, "{method}: only {n} rows compared");
    }
}

fn shocked(fraction: f64) -> Scenario {
    let mut sc = Scenario::new(&P2p);
    sc.shock = Some(Shock::instantaneous(fraction));
    sc
}

#[test]
fn small_shock_recovers_and_large_shock_collapses() {
    let o = opts(Method::Auto, 1e-8, 1e-14);
    let small = simulate(&P2p, &shocked(0.1), &o).unwrap().summary;
    assert_eq!(small.outcome, Outcome::Recovered);
    let big = simulate(&P2p, &shocked(0.9), &o).unwrap().summary;
    assert_eq!(big.outcome, Outcome::Collapsed);
    // MODEL.md: the collapsed state has fewer than 1 % of users online.
    let c = big.settled_on.unwrap();
    assert!(c[0] + c[1] < 0.01, "{c:?}");
    assert!(big.recovery_time.is_none());
}

/// Damped oscillator x'' + 0.2 x' + x = 0: from (1, 0) its first minimum is at t = π/ω with
/// value −e^{−0.1π/ω}, ω = √0.99.
struct Oscillator;
impl Model<2> for Oscillator {
    fn name(&self) -> &str {
        "oscillator"
    }
    fn states(&self) -> [StateSpec; 2] {
        [
            StateSpec {
                name: Cow::Borrowed("x"),
                meaning: Cow::Borrowed("position"),
            },
            StateSpec {
                name: Cow::Borrowed("v"),
                meaning: Cow::Borrowed("velocity"),
            },
        ]
    }
    fn params(&self) -> &[ParamSpec] {
        &[]
    }
    fn rhs<T: Scalar>(&self, _t: T, x: &SVector<T, 2>, _p: &[T]) -> SVector<T, 2> {
        SVector::from([x[1], -x[0] - x[1] * 0.2])
    }
    fn nominal_state(&self, _p: &[f64]) -> SVector<f64, 2> {
        SVector::zeros()
    }
    fn feasible(&self, x: &SVector<f64, 2>, _p: &[f64]) -> bool {
        x.iter().all(|v| v.is_finite())
    }
    /// No notion of service: its one equilibrium counts as serving.
    fn service_level(&self, _x: &SVector<f64, 2>, _p: &[f64]) -> Option<f64> {
        Some(1.0)
    }
}

#[test]
fn minimum_is_located_at_the_closed_form_time() {
    let mut sc = Scenario::new(&Oscillator);
    sc.t_end = 5.0;
    sc.initial = Some(vec![1.0, 0.0]);
    let w = 0.99f64.sqrt();
    let (t_exact, x_exact) = (
        std::f64::consts::PI / w,
        -(-0.1 * std::f64::consts::PI / w).exp(),
    );
    for method in [Method::Rosenbrock, Method::Dopri5, Method::Dop853] {
        let s = simulate(&Oscillator, &sc, &opts(method, 1e-10, 1e-14))
            .unwrap()
            .summary;
        assert!(
            (s.t_min_peers - t_exact).abs() < 1e-5,
            "{method}: t {} vs {t_exact}",
            s.t_min_peers
        );
        assert!(
            (s.min_peers - x_exact).abs() < 1e-9,
            "{method}: x {} vs {x_exact}",
            s.min_peers
        );
    }
}

#[test]
fn minimum_and_recovery_are_consistent_with_the_dense_trajectory() {
    let o = opts(Method::Rosenbrock, 1e-9, 1e-14);
    let mut sc = shocked(0.3);
    sc.shock.as_mut().unwrap().at = 100.0;
    let sim = simulate(&P2p, &sc, &o).unwrap();
    let s = &sim.summary;
    let x = sim.dense.eval(s.t_min_peers).unwrap();
    assert!((x[0] - s.min_peers).abs() < 1e-15);
    // No sampled point lies below it.
    for k in 0..=28800 {
        let y = sim.dense.eval(k as f64 * 0.1).unwrap();
        assert!(y[0] >= s.min_peers - 1e-15);
    }
    // Recovery: peers are back to 95 % of healthy exactly at shock time + recovery time.
    let rt = s.recovery_time.expect("a 0.3 wave is absorbed");
    assert!(rt > 0.0);
    let back = sim.dense.eval(100.0 + rt).unwrap()[0];
    assert!((back - 0.95 * s.healthy[0]).abs() < 1e-12, "{back} at {rt}");
    let before = sim.dense.eval(100.0 + rt - 1e-3).unwrap()[0];
    assert!(before < 0.95 * s.healthy[0]);
}

#[test]
fn interventions_switch_parameters_exactly_and_keep_the_state_continuous() {
    let o = opts(Method::Rosenbrock, 1e-10, 1e-15);
    let mut sc = shocked(0.5);
    let k = P2pIdx::Dedicated as usize;
    sc.interventions
        .push(Intervention::step(1440.0, vec![(k, 1e-3)]));
    let sim = simulate(&P2p, &sc, &o).unwrap();
    let segs = &sim.dense.segments;
    let before = segs
        .iter()
        .rposition(|s| s.t1 == 1440.0)
        .expect("a step ends at 1440");
    assert_eq!(segs[before + 1].t0, 1440.0);
    assert_eq!(segs[before].y1, segs[before + 1].y0);
    // Restarting from the state at 1440 with the new parameters gives the same continuation.
    let mut rest = Scenario::new(&P2p);
    rest.params.set("dedicated", 1e-3).unwrap();
    rest.t_end = 1440.0;
    rest.initial = Some(segs[before].y1.iter().copied().collect());
    let again = simulate(&P2p, &rest, &o).unwrap();
    let a = sim.dense.eval(2880.0).unwrap();
    let b = again.dense.eval(1440.0).unwrap();
    assert!(((a - b).component_div(&a)).amax() < 1e-12);
    assert_eq!(sim.summary.outcome, Outcome::Recovered);
}

#[test]
fn samples_land_on_the_grid_and_end_exactly_at_t_end() {
    let o = opts(Method::Auto, 1e-6, 1e-12);
    let sim: Simulation<3> = simulate(&P2p, &shocked(0.5), &o).unwrap();
    let end = sim.dense.segments.last().unwrap().y1;
    // dt = t_end/2: the last row is the integrator's final state, not an extrapolation.
    let rows = sim.sample(&P2p, 1440.0);
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[2], (2880.0, end));
    // dt = 60 and a grid that does not divide t_end: every row in the simplex, t_end included.
    for dt in [60.0, 7.0] {
        let rows = sim.sample(&P2p, dt);
        assert_eq!(rows.last().unwrap().0, 2880.0);
        for (_, x) in rows {
            assert!(x.iter().all(|v| *v >= 0.0) && x.sum() <= 1.0, "{x:?}");
        }
    }
    // The row at the shock time holds the state after the shock.
    let p = ParamSet::defaults(P2p.params()).values().to_vec();
    let h = healthy_state(&P2p, &p).unwrap().equilibrium;
    let after = P2p.reboot_jump(&h, &p, 0.5, 0.5).unwrap();
    assert!(((rows[0].1 - after).component_div(&after)).amax() < 1e-12);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]
    #[test]
    fn random_valid_scenarios_stay_finite_and_in_the_simplex(
        capacity in 100.0..3000.0f64,
        retry in 0.2..10.0f64,
        give_up in 0.0..0.5f64,
        dedicated in 0.0..1e-3f64,
        promotion in 0.0..0.05f64,
        fraction in 0.0..0.99f64,
        sn_fraction in 0.0..0.99f64,
        window in prop_oneof![Just(0.0), 0.0..120.0f64],
        at in 0.0..600.0f64,
    ) {
        let mut sc = Scenario::new(&P2p);
        sc.t_end = 1440.0;
        for (name, v) in [("sn_capacity", capacity), ("retry", retry), ("give_up", give_up),
                          ("dedicated", dedicated), ("promotion", promotion)] {
            sc.params.set(name, v).unwrap();
        }
        sc.shock = Some(Shock { at, fraction, sn_fraction, window });
        let sim = match simulate(&P2p, &sc, &opts(Method::Auto, 1e-6, 1e-12)) {
            Ok(sim) => sim,
            // Some valid parameter sets have no stable healthy state (they oscillate); that
            // must be a clear error, never a panic or a NaN.
            Err(e) => {
                prop_assert!(
                    matches!(e, selfheal::Error::NoStableEquilibrium),
                    "{}",
                    e
                );
                return Ok(());
            }
        };
        for s in &sim.dense.segments {
            for th in [0.0, 0.5, 1.0] {
                let x = s.eval(s.time(th));
                prop_assert!(x.iter().all(|v| v.is_finite()));
                prop_assert!(x.iter().all(|v| *v >= -1e-12), "{:?}", x);
                prop_assert!(x.sum() <= 1.0 + 1e-12);
            }
        }
        prop_assert!(sim.summary.min_peers.is_finite());
    }
}

#[test]
fn populations_rounded_below_zero_do_not_make_the_right_hand_side_nan() {
    // Two valid parameter sets whose integration once failed with "the right-hand side is not
    // finite" / step-size underflow: a supernode count a rounding error below zero raised to a
    // fractional Hill exponent. Both networks are down (no healthy state), and must say so.
    for set in [
        &[
            ("dedicated", 0.0),
            ("success_steepness", 2.0),
            ("overload_rate", 0.83),
            ("overload_steepness", 1.0),
            ("need_steepness", 3.01),
        ][..],
        &[
            ("sign_off", 0.1),
            ("peer_load", 5.0),
            ("dedicated", 0.0),
            ("overload_steepness", 0.1),
            ("need_steepness", 13.3),
        ][..],
    ] {
        let mut sc = Scenario::new(&P2p);
        for (n, v) in set {
            sc.params.set(n, *v).unwrap();
        }
        let sim = simulate(&P2p, &sc, &SimOptions::default()).unwrap();
        assert!(sim.summary.down, "{set:?}");
        assert_eq!(sim.summary.outcome, Outcome::Collapsed);
        for s in &sim.dense.segments {
            assert!(s.y1.iter().all(|v| v.is_finite()));
        }
    }
}

#[test]
fn subnormal_populations_neither_hang_nor_produce_nan() {
    // A start with a subnormal peer count once hung `simulate` (nalgebra's Schur iteration
    // never converged on a Jacobian with subnormal entries), and a valid parameter set whose
    // rest state holds 1e-232 peers wrote NaN rows (higher derivatives for the dense output
    // overflowed).
    let mut sc = Scenario::new(&P2p);
    sc.initial = Some(vec![1e-310, 0.0, 0.03]);
    let started = std::time::Instant::now();
    let sim = simulate(&P2p, &sc, &SimOptions::default()).unwrap();
    assert!(started.elapsed().as_secs() < 10);
    let mut sc2 = Scenario::new(&P2p);
    for (n, v) in [
        ("sign_on", 0.00101),
        ("retry", 200.0),
        ("sn_capacity", 10.0),
        ("dedicated", 7e-7),
        ("success_steepness", 40.0),
        ("overload_rate", 0.8),
        ("overload_threshold", 0.08),
        ("overload_steepness", 0.397),
        ("need_steepness", 0.13),
    ] {
        sc2.params.set(n, v).unwrap();
    }
    sc2.shock = Some(Shock {
        at: 60.0,
        fraction: 0.0,
        sn_fraction: 0.0,
        window: 0.0,
    });
    let sim2 = simulate(&P2p, &sc2, &SimOptions::default()).unwrap();
    for s in [&sim, &sim2] {
        for (_, x) in s.sample(&P2p, 10.0) {
            assert!(x.iter().all(|v| v.is_finite()), "{x:?}");
        }
        assert!(s.summary.peak_utilisation.is_some_and(|u| u.0.is_finite()));
    }
}

#[test]
fn a_run_that_starts_down_recovers_to_the_final_healthy_state_or_not_at_all() {
    let o = opts(Method::Rosenbrock, 1e-9, 1e-14);
    let k = P2pIdx::SnCapacity as usize;
    // Down everywhere: no healthy state at the start or the end, so nothing to recover to.
    let mut down = Scenario::new(&P2p);
    down.params.set("sn_capacity", 300.0).unwrap();
    let sim = simulate(&P2p, &down, &o).unwrap();
    assert!(!sim.summary.start_healthy && sim.summary.down);
    assert_eq!(sim.summary.recovery_time, None);
    assert_eq!(sim.summary.outcome, Outcome::Collapsed);

    // Down at the start, capacity restored at t = 600: recovery is measured against the
    // healthy state of the final parameters (found here independently, by healthy_state).
    // Above the Hopf point at about 5,800 the collapsed state is no longer an attractor.
    let mut ps = ParamSet::defaults(P2p.params());
    ps.set("sn_capacity", 20_000.0).unwrap();
    let target = healthy_state(&P2p, ps.values()).unwrap().equilibrium;
    let mut rescued = down.clone();
    rescued
        .interventions
        .push(Intervention::step(600.0, vec![(k, 20_000.0)]));
    rescued.t_end = 30.0 * 1440.0;
    let sim = simulate(&P2p, &rescued, &o).unwrap();
    let s = &sim.summary;
    assert!(!s.start_healthy && !s.down);
    assert_eq!(s.outcome, Outcome::Recovered);
    let rt = s.recovery_time.expect("a recovered run returns to 95 %");
    // The level is crossed at the recovery time, after the step, and not before it.
    assert!(rt > 600.0, "{rt}");
    let level = 0.95 * target[0];
    let back = sim.dense.eval(rt).unwrap()[0];
    assert!((back - level).abs() < 1e-9, "{back} vs {level}");
    for j in 0..1000 {
        let t = rt * j as f64 / 1000.0;
        assert!(
            sim.dense.eval(t).unwrap()[0] < level,
            "above the level at {t}"
        );
    }
}

/// The reference model's projection onto its domain `{x ≥ 0, Σx ≤ 1}` is the Euclidean one:
/// the result is feasible, leaves feasible points alone, and satisfies the variational
/// inequality ⟨x − P(x), c − P(x)⟩ ≤ 0 for every point `c` of the domain (checked at the
/// vertices, which suffices for a polytope, and at random interior points).
#[test]
fn the_reference_projection_is_the_nearest_point_of_the_simplex() {
    let mut rng = common::SplitMix(7);
    let vertices = [
        SVector::from([0.0, 0.0, 0.0]),
        SVector::from([1.0, 0.0, 0.0]),
        SVector::from([0.0, 1.0, 0.0]),
        SVector::from([0.0, 0.0, 1.0]),
    ];
    for _ in 0..2000 {
        let x = SVector::<f64, 3>::from_fn(|_, _| 1.6 * rng.next() - 0.3);
        let q = P2p.project(&x, &[]).unwrap();
        assert!(
            P2p.feasible(&q, &[]) || q.sum() <= 1.0 + 1e-15,
            "{x:?} -> {q:?}"
        );
        if P2p.feasible(&x, &[]) {
            assert_eq!(q, x);
        }
        let mut points = vertices.to_vec();
        for _ in 0..5 {
            let c = SVector::<f64, 3>::from_fn(|_, _| rng.next());
            points.push(c / c.sum().max(1.0) * rng.next());
        }
        for c in points {
            let v = (x - q).dot(&(c - q));
            assert!(
                v <= 1e-14,
                "{x:?} -> {q:?}: ⟨x − P(x), c − P(x)⟩ = {v:e} at {c:?}"
            );
        }
    }
}

/// States a step's truncation error pushed a rounding below zero are projected back (within
/// the tolerance): the cases that printed negative supernodes and infinite utilisation stay in
/// the simplex at every output row under the stiff method.
#[test]
fn collapsing_runs_stay_in_the_simplex() {
    for sets in [
        &["dedicated=0"][..],
        &["sn_capacity=100", "promotion=0.001"][..],
    ] {
        let mut sc = Scenario::new(&P2p);
        for s in sets {
            sc.set_assignment(s).unwrap();
        }
        sc.t_end = 4320.0;
        sc.shock = Some(Shock {
            at: 480.0,
            fraction: 0.6,
            sn_fraction: 0.6,
            window: if sets.len() == 1 { 0.0 } else { 120.0 },
        });
        let opts = SimOptions {
            solve: SolveOptions {
                method: Method::Rosenbrock,
                ..Default::default()
            },
            dt: 1.0,
            ..Default::default()
        };
        let sim = simulate(&P2p, &sc, &opts).unwrap();
        for (t, x) in sim.sample(&P2p, 1.0) {
            assert!(
                P2p.feasible(&x, sc.params.values()),
                "{sets:?}: {x:?} at t = {t}"
            );
            let u = P2p::utilisation_of(&x, sc.params.values());
            assert!(
                u.is_finite() || x[1] == 0.0,
                "{sets:?}: utilisation {u} at t = {t}"
            );
        }
    }
}

/// With no dedicated capacity the supernodes can all go: utilisation is then undefined, and the
/// CSV leaves the cell empty instead of writing `inf` (the populations stay finite).
#[test]
fn utilisation_without_capacity_is_an_empty_cell() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::selfheal(
        &[
            "simulate",
            "--set",
            "dedicated=0",
            "--shock",
            "0.5",
            "--out",
            "o.csv",
        ],
        dir.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(dir.path().join("o.csv")).unwrap();
    assert!(!text.contains("inf") && !text.contains("NaN"));
    let empty = text.lines().skip(1).filter(|l| l.ends_with(',')).count();
    assert!(
        empty > 0,
        "no row without capacity: the case no longer exercises the rule"
    );
    for l in text.lines().skip(1) {
        let cells: Vec<&str> = l.split(',').collect();
        assert_eq!(cells.len(), 6);
        assert!(
            cells[..5]
                .iter()
                .all(|c| c.parse::<f64>().is_ok_and(|v| v.is_finite() && v >= 0.0)),
            "{l}"
        );
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("peak utilisation: unbounded"), "{stderr}");
}
