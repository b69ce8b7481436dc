//! Parameters that move inside a run: ramped interventions against closed forms, and the
//! exact gradient of calibration through ramps against finite differences of plain runs.

use selfheal::model::P2p;
use selfheal::scenario::Scenario;
use selfheal::simulate::{simulate, SimOptions};
use selfheal::solve::{SolveOptions, Tolerances};

#[path = "common/logistic.rs"]
mod logistic;
use logistic::Logistic;

fn tight() -> SimOptions {
    SimOptions {
        solve: SolveOptions {
            tol: Tolerances {
                rtol: 1e-11,
                atol: 1e-14,
            },
            ..SolveOptions::default()
        },
        dt: 0.25,
        ..SimOptions::default()
    }
}

/// Logistic growth whose rate ramps from r0 to r1 over [a, a + R]: x(t) = 1/(1 + (1/x0 − 1)
/// e^{−∫r}), with ∫r piecewise linear then quadratic then linear in t.
#[test]
fn a_ramp_follows_its_straight_line_and_the_state_stays_continuous() {
    let (r0, r1, a, len, x0) = (0.3, 1.7, 2.0, 5.0, 0.01);
    let sc = Scenario::from_toml(
        &Logistic,
        &format!(
            "t_end = 12\n[params]\nrate = {r0}\n[initial]\nx = {x0}\n[[intervention]]\nat = {a}\nramp = {len}\nset = {{ rate = {r1} }}\n"
        ),
    )
    .unwrap();
    let integral = |t: f64| {
        if t <= a {
            r0 * t
        } else if t <= a + len {
            let u = t - a;
            r0 * a + r0 * u + 0.5 * (r1 - r0) * u * u / len
        } else {
            r0 * a + 0.5 * (r0 + r1) * len + r1 * (t - a - len)
        }
    };
    let exact = |t: f64| 1.0 / (1.0 + (1.0 / x0 - 1.0) * (-integral(t)).exp());
    let sim = simulate(&Logistic, &sc, &tight()).unwrap();
    let mut worst: f64 = 0.0;
    for (t, x) in sim.sample(&Logistic, 0.25) {
        worst = worst.max((x[0] - exact(t)).abs() / exact(t));
    }
    assert!(worst < 1e-8, "largest relative error {worst:.2e}");
    // The rate the run used is the straight line, exactly, and the ends are met.
    for (t, want) in [
        (1.0, r0),
        (a, r0),
        (a + 0.4 * len, r0 + 0.4 * (r1 - r0)),
        (a + len, r1),
        (11.0, r1),
    ] {
        let got = sim.params_at(t)[0];
        assert!((got - want).abs() < 1e-15, "rate at {t}: {got} vs {want}");
    }
    // The integration stopped at both ends of the ramp: a step ends at each.
    for end in [a, a + len] {
        assert!(
            sim.dense.segments.iter().any(|s| s.t1 == end),
            "no step ends at {end}"
        );
    }
    // A step at the ramp's midpoint instead is a different run (the ramp is not ignored).
    let mut step = sc.clone();
    step.interventions[0].ramp = 0.0;
    step.interventions[0].at = a + 0.5 * len;
    let s2 = simulate(&Logistic, &step, &tight()).unwrap();
    let (x_ramp, x_step) = (
        sim.dense.eval(a + 0.25 * len).unwrap()[0],
        s2.dense.eval(a + 0.25 * len).unwrap()[0],
    );
    assert!((x_ramp - x_step).abs() > 1e-3 * x_step);
}

#[test]
fn bad_ramps_are_refused_with_the_culprit() {
    let base = "t_end = 100\n[[intervention]]\nat = 10\nset = { dedicated = 1e-4 }\n";
    let e = Scenario::from_toml(&P2p, &format!("{base}ramp = 95\n")).unwrap_err();
    assert!(
        e.to_string().contains("intervention 1: ramp") && e.to_string().contains("at most 90"),
        "{e}"
    );
    let e = Scenario::from_toml(&P2p, &format!("{base}ramp = -1\n")).unwrap_err();
    assert!(e.to_string().contains("intervention 1: ramp"), "{e}");
    let e = Scenario::from_toml(&P2p, &format!("{base}rmap = 5\n")).unwrap_err();
    assert!(e.to_string().contains("did you mean `ramp`"), "{e}");
    // Setting a parameter again while it still ramps.
    let e = Scenario::from_toml(
        &P2p,
        &format!("{base}ramp = 50\n[[intervention]]\nat = 30\nset = {{ dedicated = 2e-4 }}\n"),
    )
    .unwrap_err();
    assert!(e.to_string().contains("still ramps it (until 60)"), "{e}");
    // The stochastic chain refuses what it cannot follow.
    let sc = Scenario::from_toml(&P2p, &format!("{base}ramp = 50\n")).unwrap();
    let e = selfheal::stochastic::simulate_runs(
        &sc,
        1000,
        1,
        1,
        selfheal::stochastic::StochasticMethod::Exact,
        10.0,
    )
    .unwrap_err();
    assert!(e.to_string().contains("intervention 1 ramps"), "{e}");
}

#[test]
fn a_scenario_with_ramps_round_trips_through_toml() {
    let sc = Scenario::from_toml(
        &P2p,
        "t_end = 3000\n[[intervention]]\nat = 10\nramp = 600.5\nset = { dedicated = 1e-4, sn_capacity = 900.0 }\n",
    )
    .unwrap();
    let back = Scenario::from_toml(&P2p, &sc.to_toml(&P2p)).unwrap();
    assert_eq!(back, sc);
}

/// A day of sign-ons peaking in the evening (UTC), the shape used in the tests below.
const EVENING: &str = "[daily]\nsign_on = [0.55, 0.45, 0.4, 0.38, 0.4, 0.5, 0.65, 0.8, 0.95, 1.05, 1.1, 1.12, 1.15, 1.15, 1.15, 1.2, 1.25, 1.35, 1.45, 1.5, 1.45, 1.3, 1.0, 0.75]\n";

#[test]
fn a_daily_scenario_starts_on_its_cycle_and_a_long_plain_run_agrees_with_the_outcome() {
    use selfheal::simulate::Outcome;
    // Without a wave the run stays on the healthy cycle: the state a day later is the state
    // at the start, by a plain run at tighter tolerances than the shooting's check.
    let calm = Scenario::from_toml(&P2p, &format!("t_end = 2880\n{EVENING}")).unwrap();
    let sim = simulate(&P2p, &calm, &tight()).unwrap();
    assert_eq!(sim.summary.outcome, Outcome::Recovered);
    let x0 = sim.dense.eval(0.0).unwrap();
    for t in [1440.0, 2880.0] {
        let x = sim.dense.eval(t).unwrap();
        assert!(
            (x - x0).component_div(&x0).amax() < 1e-7,
            "state at {t} differs from the start: {x:?} vs {x0:?}"
        );
    }
    // The cycle really moves through the day (the profile is not ignored).
    let (lo, hi) = (sim.summary.minima[0].0, sim.summary.peaks[0].0);
    assert!(
        hi > 1.05 * lo,
        "peers over the day only between {lo} and {hi}"
    );
    // Waves at 19:00: the outcome of the short run (settled day by day) against the state of
    // a run 30 days long, compared with the healthy cycle at the same time of day.
    for (f, want) in [(0.3, Outcome::Recovered), (0.55, Outcome::Collapsed)] {
        let text = format!("t_end = 2880\n[shock]\nat = 1140\nfraction = {f}\n{EVENING}");
        let sc = Scenario::from_toml(&P2p, &text).unwrap();
        let short = simulate(&P2p, &sc, &SimOptions::default()).unwrap();
        assert_eq!(short.summary.outcome, want, "shock {f}");
        let mut long = sc.clone();
        long.t_end = 30.0 * 1440.0;
        let l = simulate(&P2p, &long, &tight()).unwrap();
        let end = l.dense.eval(long.t_end).unwrap();
        let on_healthy = (end[0] - x0[0]).abs() < 1e-6 * x0[0];
        assert_eq!(
            on_healthy,
            want == Outcome::Recovered,
            "shock {f}: peers {}",
            end[0]
        );
    }
}

#[test]
fn daily_profiles_are_checked_and_refused_where_they_are_not_followed() {
    let e = Scenario::from_toml(&P2p, "[daily]\nsign_on = [1.0, 2.0]\n").unwrap_err();
    assert!(e.to_string().contains("exactly 24"), "{e}");
    let e = Scenario::from_toml(&P2p, "[daily]\nsign_onn = [1.0]\n").unwrap_err();
    assert!(e.to_string().contains("did you mean `sign_on`"), "{e}");
    let mut neg = [1.0; 24];
    neg[5] = -0.1;
    let list = |v: &[f64; 24]| {
        v.iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let e =
        Scenario::from_toml(&P2p, &format!("[daily]\nsign_on = [{}]\n", list(&neg))).unwrap_err();
    assert!(
        e.to_string().contains("daily.sign_on[5] (hour 05:00)"),
        "{e}"
    );
    // A profile whose interpolant dips below a parameter's range between the hours.
    let mut dip = [1.0; 24];
    dip[3] = 0.0;
    dip[4] = 2.0;
    let e =
        Scenario::from_toml(&P2p, &format!("[daily]\nsign_on = [{}]\n", list(&dip))).unwrap_err();
    assert!(e.to_string().contains("overshoots"), "{e}");
    // Analyses that read equilibria refuse a scenario with a profile.
    let sc = Scenario::from_toml(&P2p, EVENING).unwrap();
    let axis = selfheal::sweep::Axis::parse("sn_capacity=800:900:2", &sc).unwrap();
    let design = selfheal::sweep::Design::grid(vec![axis], &[]).unwrap();
    let e = selfheal::sweep::Sweep::new(
        &P2p,
        sc.clone(),
        design,
        vec![selfheal::sweep::Metric::CriticalShock],
    )
    .err()
    .expect("critical_shock with [daily] is refused");
    assert!(e.to_string().contains("daily cycle"), "{e}");
    // It round-trips through TOML.
    assert_eq!(Scenario::from_toml(&P2p, &sc.to_toml(&P2p)).unwrap(), sc);
}

#[test]
fn critical_shock_by_hour_agrees_with_plain_simulations_of_the_scenario() {
    use selfheal::analysis::daily::critical_shock_by_hour;
    use selfheal::analysis::tipping::TippingOptions;
    use selfheal::simulate::Outcome;
    let sc = Scenario::from_toml(
        &P2p,
        &format!("start = 2007-08-16T00:00:00Z\nt_end = 2880\n{EVENING}"),
    )
    .unwrap();
    let opts = TippingOptions::new(SolveOptions::default(), 1e-3, 20);
    let clock = sc.clock(&P2p).unwrap();
    let hours = [4.0, 9.0, 19.5];
    let r =
        critical_shock_by_hour(&P2p, sc.params.values(), &sc.daily, clock, &hours, &opts).unwrap();
    assert!(!r.down && r.healthy.cycle.is_stable());
    let mut values = vec![];
    for row in &r.rows {
        let (lo, hi) = row.bracket.expect("a wave below 1 tips the network");
        assert!(hi - lo <= 1e-3 && lo < hi);
        // The same wave written into the scenario and simulated as a user would: below the
        // bracket it recovers, above it collapses (margins of 0.01 for the run's tolerances).
        for (f, want) in [
            (lo - 0.01, Outcome::Recovered),
            (hi + 0.01, Outcome::Collapsed),
        ] {
            let mut s = sc.clone();
            s.shock = Some(selfheal::scenario::Shock {
                at: row.at,
                fraction: f,
                sn_fraction: f,
                window: 0.0,
            });
            let sim = simulate(&P2p, &s, &SimOptions::default()).unwrap();
            assert_eq!(sim.summary.outcome, want, "hour {} shock {f}", row.hour);
        }
        values.push(row.value.unwrap());
    }
    // The hour matters: the morning rise of sign-ons is the fragile time, the small hours the
    // robust one, by more than the brackets' width.
    assert!(values[1] < values[0] - 0.05, "{values:?}");
}

#[test]
fn two_waves_compose_as_a_run_restarted_from_the_first_waves_state() {
    let two = Scenario::from_toml(
        &P2p,
        "t_end = 1500\n[[shock]]\nat = 100\nfraction = 0.2\n[[shock]]\nat = 400\nfraction = 0.25\nsn_fraction = 0.1\nwindow = 30\n",
    )
    .unwrap();
    assert_eq!(two.later_shocks.len(), 1);
    let a = simulate(&P2p, &two, &tight()).unwrap();
    // The first wave alone up to the second wave's start, then the second wave from that state.
    let mut first = two.clone();
    first.later_shocks.clear();
    first.t_end = 400.0;
    let b = simulate(&P2p, &first, &tight()).unwrap();
    let x400 = b.dense.eval(400.0).unwrap();
    let mut second = Scenario::new(&P2p);
    second.initial = Some(x400.iter().copied().collect());
    second.shock = Some(two.later_shocks[0]);
    second.shock.as_mut().unwrap().at = 0.0;
    second.t_end = 1100.0;
    let c = simulate(&P2p, &second, &tight()).unwrap();
    for t in [0.0, 15.0, 30.0, 200.0, 1100.0] {
        let (xa, xc) = (a.dense.eval(400.0 + t).unwrap(), c.dense.eval(t).unwrap());
        assert!(
            (xa - xc).component_div(&xc).amax() < 1e-7,
            "t = {t}: {xa:?} vs {xc:?}"
        );
    }
    assert_eq!(a.summary.outcome, c.summary.outcome);
    // The state stays in the simplex through both waves.
    for (_, x) in a.sample(&P2p, 50.0) {
        assert!(
            x.sum() <= 1.0 + 1e-12 && x.iter().all(|v| *v >= 0.0),
            "{x:?}"
        );
    }
    // Round trip, order and overlap rules, and the chain's refusal.
    assert_eq!(Scenario::from_toml(&P2p, &two.to_toml(&P2p)).unwrap(), two);
    let e = Scenario::from_toml(
        &P2p,
        "[[shock]]\nat = 100\nfraction = 0.2\nwindow = 60\n[[shock]]\nat = 130\nfraction = 0.2\n",
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("shock 2 at 130 starts before shock 1 has ended (at 160)"),
        "{e}"
    );
    let e = Scenario::from_toml(
        &P2p,
        "[[shock]]\nat = 10\nfraction = 0.2\n[[shock]]\nat = 20\nfraction = 1.5\n",
    )
    .unwrap_err();
    assert!(e.to_string().contains("shock 2: fraction"), "{e}");
    let e = selfheal::stochastic::simulate_runs(
        &two,
        1000,
        1,
        1,
        selfheal::stochastic::StochasticMethod::Exact,
        10.0,
    )
    .unwrap_err();
    assert!(e.to_string().contains("follows one wave"), "{e}");
}

#[test]
fn a_cycle_that_no_equilibrium_in_force_leads_to_is_found_from_the_daily_mean() {
    use selfheal::simulate::Outcome;
    // sn_capacity 500 is below the fold (530.9): without the profile the network is down. The
    // profile keeps it at 600–800 all day, so the network has a healthy daily cycle; a run from
    // a healthy state stays healthy, which is what the search must conclude too.
    let text = "t_end = 1440\n[params]\nsn_capacity = 500\n[daily]\nsn_capacity = [1.4, 1.4, 1.5, 1.6, 1.6, 1.5, 1.4, 1.3, 1.25, 1.2, 1.2, 1.2, 1.2, 1.2, 1.2, 1.2, 1.2, 1.2, 1.2, 1.2, 1.25, 1.3, 1.35, 1.4]\n";
    let sc = Scenario::from_toml(&P2p, text).unwrap();
    let sim = simulate(&P2p, &sc, &SimOptions::default()).unwrap();
    assert!(sim.summary.start_healthy && !sim.summary.down);
    assert_eq!(sim.summary.outcome, Outcome::Recovered);
    let mut plain = sc.clone();
    plain.initial = Some(vec![0.33, 0.0012, 0.0004]);
    plain.t_end = 10.0 * 1440.0;
    let run = simulate(&P2p, &plain, &SimOptions::default()).unwrap();
    assert!(run.summary.min_service_level.unwrap().0 > 0.99);
}

#[test]
fn an_hour_long_dip_is_not_stepped_over() {
    // sn_capacity halved for one hour at noon: the peak utilisation must not depend on the
    // tolerance (a step longer than the dip would miss it).
    let text = "t_end = 1440\n[daily]\nsn_capacity = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0.5, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n";
    let sc = Scenario::from_toml(&P2p, text).unwrap();
    let loose = simulate(&P2p, &sc, &SimOptions::default()).unwrap();
    let fine = simulate(&P2p, &sc, &tight()).unwrap();
    let (a, b) = (
        loose.summary.peak_utilisation.unwrap(),
        fine.summary.peak_utilisation.unwrap(),
    );
    assert!((a.0 - b.0).abs() < 1e-3 * b.0, "{a:?} vs {b:?}");
    assert!((a.1 - b.1).abs() < 1.0, "{a:?} vs {b:?}");
    assert!(b.1 > 720.0 && b.1 < 780.0);
}

/// The calibration's warm start of the daily cycle (Newton from a nearby parameter set's
/// healthy cycle) against the full search: the same cycle wherever the search finds a healthy
/// one, and `None` (so the caller searches) wherever it does not, across the fold of cycles
/// where the healthy one is lost.
#[test]
fn a_warm_started_daily_cycle_is_the_full_searchs_or_none() {
    use selfheal::periodic::{healthy_cycle_from, rest_cycle, Forcing};
    use selfheal::solve::SolverStats;
    let base = Scenario::from_toml(&P2p, &format!("t_end = 1440\n{EVENING}")).unwrap();
    let clock = base.clock(&P2p).unwrap();
    let opts = SolveOptions::default();
    let mut stats = SolverStats::default();
    let f = Forcing {
        p: base.params.values(),
        daily: &base.daily,
        clock,
    };
    let (anchor, _) = rest_cycle(&P2p, &f, 0.0, &opts, &mut stats).unwrap();
    assert!(anchor.healthy);
    let anchor = anchor.cycle.x0;
    // Seeded draws of capacity and sign-on rate, then capacities through the fold.
    let mut seed = 0x5eed_u64;
    let mut unit = || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut cases: Vec<(f64, f64)> = (0..6)
        .map(|_| (650.0 + 550.0 * unit(), 0.7 + 0.6 * unit()))
        .collect();
    cases.extend((0..=12).map(|i| (420.0 + 20.0 * i as f64, 1.0)));
    let sign_on = base.params.get("sign_on").unwrap();
    let (mut warm_found, mut fell_back) = (0, 0);
    for (cap, scale) in cases {
        let mut params = base.params.clone();
        params.set("sn_capacity", cap).unwrap();
        params.set("sign_on", sign_on * scale).unwrap();
        let f = Forcing {
            p: params.values(),
            daily: &base.daily,
            clock,
        };
        let (cold, _) = rest_cycle(&P2p, &f, 0.0, &opts, &mut stats).unwrap();
        let warm = healthy_cycle_from(&P2p, &f, 0.0, &anchor, &opts, &mut stats).unwrap();
        let what = format!("sn_capacity {cap}, sign_on ×{scale}");
        match warm {
            Some(w) => {
                assert!(
                    cold.healthy,
                    "{what}: warm start found a healthy cycle, the search none"
                );
                let d = (w.cycle.x0 - cold.cycle.x0)
                    .component_div(&cold.cycle.x0.map(|v| v.abs() + 1e-12))
                    .amax();
                assert!(d < 1e-6, "{what}: warm and searched cycles differ by {d:e}");
                warm_found += 1;
            }
            None => {
                assert!(
                    !cold.healthy,
                    "{what}: the search found a healthy cycle, the warm start none"
                );
                fell_back += 1;
            }
        }
    }
    // Both branches were exercised.
    assert!(
        warm_found >= 6 && fell_back >= 2,
        "{warm_found} warm, {fell_back} fallbacks"
    );
}
