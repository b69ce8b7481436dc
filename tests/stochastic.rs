//! The finite-population chain against the fluid model: its expected drift is the fluid
//! right-hand side, means within central-limit bounds, spread shrinking like 1/√M, reproducible
//! seeds, refusals.

use nalgebra::SVector;
use rand::rngs::StdRng;
use rand::{Rng, RngExt, SeedableRng};
use selfheal::model::{Bound, Model, P2p, P2pFlow, P2P_FLOWS};
use selfheal::scenario::{Scenario, Shock};
use selfheal::simulate::{simulate, SimOptions};
use selfheal::stochastic::{
    leap_length, orphan_probability, simulate_runs, transition_rates, Counts, StochasticMethod,
    LEAP_EPSILON, TRANSITIONS,
};

fn scenario() -> Scenario {
    let mut sc = Scenario::new(&P2p);
    sc.shock = Some(Shock::instantaneous(0.2));
    sc.t_end = 1440.0;
    sc
}

fn stats(v: &[f64]) -> (f64, f64) {
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (v.len() - 1) as f64;
    (mean, var.sqrt())
}

/// A value of 10^u for u uniform in [lo, hi].
fn log_uniform(rng: &mut impl Rng, lo: f64, hi: f64) -> f64 {
    10f64.powf(lo + (hi - lo) * rng.random::<f64>())
}

/// A random valid parameter set: every parameter within its range from the table, two decades
/// either side of its default (uniform or log-uniform on a bounded range), now and then exactly
/// at a closed lower end.
fn random_params(rng: &mut impl Rng) -> Vec<f64> {
    let p: Vec<f64> = P2p
        .params()
        .iter()
        .map(|spec| {
            let lo = match spec.lower {
                Bound::Closed(a) if rng.random::<f64>() < 0.05 => return a,
                Bound::Closed(a) | Bound::Open(a) => a,
                Bound::Unbounded => f64::NEG_INFINITY,
            };
            let v = match spec.upper {
                Bound::Closed(b) | Bound::Open(b) if rng.random::<bool>() => {
                    lo.max(0.0) + (b - lo.max(0.0)) * rng.random::<f64>()
                }
                // Rates that are off by default (the crash hazards) get a scale of their own.
                _ if spec.default == 0.0 => log_uniform(rng, -5.0, -1.0),
                _ => spec.default * log_uniform(rng, -2.0, 2.0),
            };
            match spec.upper {
                Bound::Closed(b) | Bound::Open(b) => v.min(b),
                Bound::Unbounded => v,
            }
        })
        .collect();
    P2p.validate(&p).expect("a valid parameter set");
    p
}

/// A random interior state: at least one user in each of the four compartments, of between 10
/// and 10^9 users, with shares spread over six decades.
fn random_counts(rng: &mut impl Rng) -> Counts {
    loop {
        let m = log_uniform(rng, 1.0, 9.0).round() as u64;
        let w: [f64; 4] = std::array::from_fn(|_| log_uniform(rng, -6.0, 0.0));
        let total: f64 = w.iter().sum();
        let count = |i: usize| ((w[i] / total * m as f64).round() as u64).max(1);
        let (n, s, q) = (count(0), count(1), count(2));
        if n + s + q < m {
            return Counts { n, s, q, m };
        }
    }
}

#[test]
fn expected_drift_of_the_chain_is_the_fluid_right_hand_side() {
    // Σ_j rate_j·jump_j/M, with the jumps from the stoichiometry table and a shutdown's batch
    // of peers at its mean, against the right-hand side's own sums at the same fractions.
    let mut rng = StdRng::seed_from_u64(20_240_611);
    let batch_flow = &P2P_FLOWS[P2pFlow::Disconnect as usize];
    let (mut worst, mut worst_own): (f64, f64) = (0.0, 0.0);
    // How often each flow is a noticeable part of the activity: a wrong jump must show.
    let mut noticeable = [0usize; 11];
    let trials = 2000;
    for _ in 0..trials {
        let p = random_params(&mut rng);
        let c = random_counts(&mut rng);
        let m = c.m as f64;
        let rates = transition_rates(&c, &p);
        let mut drift = [0.0; 3];
        let mut add = |jump: [i8; 3], rate: f64| {
            for (d, j) in drift.iter_mut().zip(jump) {
                *d += f64::from(j) * rate / m;
            }
        };
        for (flow, rate) in P2P_FLOWS[..TRANSITIONS].iter().zip(rates) {
            assert!(
                rate.is_finite() && rate >= 0.0,
                "{}: rate {rate}",
                flow.name
            );
            add(flow.jump(), rate);
        }
        let mean_batch = c.n as f64 * orphan_probability(&c, 1, &p);
        // A shutdown and a supernode crash each take a batch of peers along.
        let down = rates[P2pFlow::Shutdown as usize] + rates[P2pFlow::SnCrash as usize];
        add(batch_flow.jump(), down * mean_batch);

        let x: SVector<f64, 3> = c.fractions();
        let f = P2p.rhs(0.0, &x, &p);
        let flows = P2p::flows(&x, &p).to_array();
        let activity: f64 = flows.iter().sum();
        for (k, v) in flows.iter().enumerate() {
            noticeable[k] += usize::from(*v > 1e-6 * activity);
        }
        for i in 0..3 {
            // Relative to the flows the derivative is a sum of (it may cancel to near zero).
            let err = (drift[i] - f[i]).abs() / activity;
            worst = worst.max(err);
            worst_own = worst_own.max((drift[i] - f[i]).abs() / f[i].abs());
            assert!(
                err <= 1e-12,
                "state {i} at {c:?}, p = {p:?}: drift {} vs rhs {} (relative {err:e})",
                drift[i],
                f[i]
            );
        }
    }
    eprintln!(
        "worst difference {worst:e} of the activity ({worst_own:e} of the derivative); \
         flows noticeable {noticeable:?} of {trials}"
    );
    for (flow, k) in P2P_FLOWS.iter().zip(noticeable) {
        assert!(
            k > trials / 10,
            "{} was noticeable in only {k} of {trials} states",
            flow.name
        );
    }
}

/// The tau-leaping step keeps every population's expected change within ε of it (or one
/// user): the expected change over the step, from the fluid right-hand side (M·f at the
/// fractions, an independent route to the chain's drift), against the bound.
#[test]
fn a_leap_changes_no_population_by_more_than_epsilon_in_expectation() {
    let mut rng = StdRng::seed_from_u64(17);
    for case in 0..2000 {
        let c = random_counts(&mut rng);
        let p = random_params(&mut rng);
        let r = transition_rates(&c, &p);
        let tau = leap_length(&c, &r, &p, LEAP_EPSILON);
        let m = c.m as f64;
        let f = P2p.rhs(0.0, &c.fractions(), &p) * m;
        let drift = [f[0], f[1], f[2], -(f[0] + f[1] + f[2])];
        let sizes = [c.n, c.s, c.q, c.offline()].map(|v| v as f64);
        for i in 0..4 {
            let bound = (LEAP_EPSILON * sizes[i]).max(1.0);
            let change = drift[i].abs() * tau;
            assert!(
                change <= bound * (1.0 + 1e-6) + 1e-9 * sizes[i],
                "case {case}: population {i} changes by {change} > {bound} over {tau} ({c:?})"
            );
        }
        let total: f64 = r.iter().sum();
        assert!(total == 0.0 || tau.is_finite(), "case {case}: {tau}");
    }
}

#[test]
fn means_agree_with_the_ode_within_central_limit_bounds() {
    let sc = scenario();
    let ode = simulate(&P2p, &sc, &SimOptions::default()).unwrap();
    let runs = 30;
    for method in [StochasticMethod::Exact, StochasticMethod::TauLeap] {
        let r = simulate_runs(&sc, 100_000, runs, 11, method, 60.0).unwrap();
        for k in [2usize, 10, 20] {
            let x = ode.dense.eval(60.0 * k as f64).unwrap()[0];
            let v: Vec<f64> = r.iter().map(|run| run.peers[k]).collect();
            let (mean, sd) = stats(&v);
            // Four standard errors, plus the O(1/M) bias of the fluid limit.
            let bound = 4.0 * sd / (runs as f64).sqrt() + 10.0 / 100_000.0;
            assert!(
                (mean - x).abs() < bound,
                "{method:?} t = {} min: mean {mean} vs ode {x} (bound {bound:e})",
                60 * k
            );
        }
    }
}

#[test]
fn spread_shrinks_like_one_over_root_m() {
    // Fluctuations about the healthy state (no wave, so no run escapes to the collapsed side).
    let mut sc = scenario();
    sc.shock = None;
    let sd_at = |m: u64| {
        let r = simulate_runs(&sc, m, 40, 5, StochasticMethod::Exact, 60.0).unwrap();
        stats(&r.iter().map(|run| run.peers[10]).collect::<Vec<_>>()).1
    };
    let ratio = sd_at(10_000) / sd_at(100_000);
    // √10 ≈ 3.16; 40 runs estimate each spread to about ±11 %.
    assert!(ratio > 2.2 && ratio < 4.5, "spread ratio {ratio}");
}

#[test]
fn runs_are_reproducible_and_independent_of_each_other() {
    let sc = scenario();
    let a = simulate_runs(&sc, 5_000, 6, 42, StochasticMethod::Exact, 60.0).unwrap();
    let b = simulate_runs(&sc, 5_000, 6, 42, StochasticMethod::Exact, 60.0).unwrap();
    assert_eq!(a, b);
    // Run i depends on (seed, i) only: the first runs of a longer batch are the same runs.
    let c = simulate_runs(&sc, 5_000, 3, 42, StochasticMethod::Exact, 60.0).unwrap();
    assert_eq!(&a[..3], &c[..]);
    let d = simulate_runs(&sc, 5_000, 6, 43, StochasticMethod::Exact, 60.0).unwrap();
    assert_ne!(a, d);
    for r in &a {
        assert!(r.peers.iter().all(|x| (0.0..=1.0).contains(x)));
        assert!(r.min_peers <= r.peers[0]);
    }
}

#[test]
fn zero_population_is_refused() {
    let e = simulate_runs(&scenario(), 0, 3, 1, StochasticMethod::Auto, 60.0).unwrap_err();
    assert!(e.to_string().contains("population"), "{e}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_selfheal"))
        .args(["stochastic", "--population", "0", "--runs", "2"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn quantiles_are_ordered_and_bracket_the_median_run() {
    let sc = scenario();
    let runs = simulate_runs(&sc, 20_000, 21, 9, StochasticMethod::Exact, 60.0).unwrap();
    let q = selfheal::stochastic::peer_quantiles(&runs, 60.0);
    assert_eq!(q.len(), runs[0].peers.len());
    for (k, (t, v)) in q.iter().enumerate() {
        assert_eq!(*t, 60.0 * k as f64);
        assert!(v.windows(2).all(|w| w[0] <= w[1]), "{v:?}");
        // With 21 runs the median is the 11th value exactly.
        let mut col: Vec<f64> = runs.iter().map(|r| r.peers[k]).collect();
        col.sort_by(f64::total_cmp);
        assert_eq!(v[2], col[10]);
    }
}

#[test]
fn exact_runs_conserve_the_population_through_waves_and_interventions() {
    // Every kind of event: an instantaneous wave, a spread one, and a parameter change.
    for window in [0.0, 90.0] {
        let mut sc = scenario();
        sc.shock = Some(Shock {
            at: 60.0,
            window,
            ..Shock::instantaneous(0.5)
        });
        sc.interventions
            .push(selfheal::scenario::Intervention::step(
                400.0,
                vec![(sc.params.index("dedicated").unwrap(), 5e-4)],
            ));
        sc.t_end = 600.0;
        let runs = simulate_runs(&sc, 3_000, 8, 5, StochasticMethod::Exact, 30.0).unwrap();
        for r in &runs {
            assert!(
                r.events > 1000,
                "run {} had only {} events",
                r.run,
                r.events
            );
            assert_eq!(r.unbalanced, 0, "run {}: counts failed to add up", r.run);
        }
    }
}

#[test]
fn a_chain_that_starts_down_recovers_like_the_fluid_model_or_not_at_all() {
    // Down everywhere: nothing to recover to, in the chain as in the fluid model.
    let mut down = Scenario::new(&P2p);
    down.params.set("sn_capacity", 300.0).unwrap();
    down.t_end = 600.0;
    let fluid = simulate(&P2p, &down, &SimOptions::default()).unwrap();
    assert_eq!(fluid.summary.recovery_time, None);
    let runs = simulate_runs(&down, 20_000, 4, 3, StochasticMethod::Exact, 60.0).unwrap();
    assert!(runs.iter().all(|r| r.recovery_time.is_none()), "{runs:?}");

    // Capacity restored at t = 60 (monostable above the Hopf point): runs recover, measured
    // against the final healthy state, so not at t = 0.
    let mut rescued = down.clone();
    let k = rescued.params.index("sn_capacity").unwrap();
    rescued
        .interventions
        .push(selfheal::scenario::Intervention::step(
            60.0,
            vec![(k, 20_000.0)],
        ));
    rescued.t_end = 10.0 * 1440.0;
    let fluid = simulate(&P2p, &rescued, &SimOptions::default()).unwrap();
    let rt = fluid.summary.recovery_time.expect("the fluid run recovers");
    let runs = simulate_runs(&rescued, 100_000, 4, 3, StochasticMethod::Auto, 60.0).unwrap();
    for r in &runs {
        let t = r.recovery_time.expect("every run recovers");
        assert!(
            t > 60.0 && (t - rt).abs() < 0.2 * rt,
            "chain {t} vs fluid {rt}"
        );
    }
}
