//! The finite-population chain against the fluid model: means within central-limit bounds,
//! spread shrinking like 1/√M, reproducible seeds, refusals.

use selfheal::model::P2p;
use selfheal::scenario::{Scenario, Shock};
use selfheal::simulate::{simulate, SimOptions};
use selfheal::stochastic::{simulate_runs, StochasticMethod};

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
        sc.interventions.push(selfheal::scenario::Intervention {
            at: 400.0,
            set: vec![(sc.params.index("dedicated").unwrap(), 5e-4)],
        });
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
