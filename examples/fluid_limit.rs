//! How the stochastic model approaches the fluid one as the population M grows: the spread of
//! single runs, the bias of their mean (after a wave, and in the healthy steady state, where
//! long time averages resolve it), and the probability of collapse around the fluid f*.
//!
//! `cargo run --release --example fluid_limit` (a few minutes on two cores).

use selfheal::analysis::tipping::{critical_shock, TippingOptions};
use selfheal::model::{Model, P2p, ParamSet};
use selfheal::scenario::{Scenario, Shock};
use selfheal::simulate::{simulate, Outcome, SimOptions};
use selfheal::stochastic::{simulate_runs, StochasticMethod};

fn main() {
    let runs = 40;
    let mut sc = Scenario::new(&P2p);
    sc.shock = Some(Shock::instantaneous(0.2));
    sc.t_end = 1440.0;
    let ode = simulate(&P2p, &sc, &SimOptions::default()).unwrap();
    let k = 10; // t = 600 min, on a 60-minute grid
    let x = ode.dense.eval(600.0).unwrap()[0];
    println!("peers at t = 600 min after a 0.2 wave; fluid value {x:.6}; {runs} runs per M");
    println!(
        "{:>10} {:>12} {:>12} {:>14} {:>12}",
        "M", "sd", "sd*sqrt(M)", "mean - fluid", "std. error"
    );
    for m in [10_000u64, 100_000, 1_000_000, 10_000_000] {
        let r = simulate_runs(&sc, m, runs, 17, StochasticMethod::Auto, 60.0).unwrap();
        let v: Vec<f64> = r.iter().map(|run| run.peers[k]).collect();
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let sd = (v.iter().map(|y| (y - mean).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt();
        println!(
            "{m:>10} {sd:>12.3e} {:>12.3} {:>14.3e} {:>12.3e}",
            sd * (m as f64).sqrt(),
            mean - x,
            sd / (runs as f64).sqrt()
        );
    }
    // The O(1/M) bias of the mean, in the healthy steady state: each run's time average over
    // 48,000 minutes (after 2,000 minutes of burn-in), the same total work at every M.
    let mut steady = Scenario::new(&P2p);
    steady.t_end = 50_000.0;
    let h = selfheal::analysis::healthy_state(&P2p, steady.params.values())
        .unwrap()
        .equilibrium;
    println!(
        "\nsteady-state bias of the mean (time averages; fluid peers {:.6}, supernodes {:.6e})",
        h[0], h[1]
    );
    println!(
        "{:>10} {:>5} {:>13} {:>10} {:>13} {:>10}",
        "M", "runs", "M*bias peers", "+-", "M*bias sn", "+-"
    );
    for m in [10_000u64, 20_000, 40_000, 80_000] {
        let n_runs = (1_280_000 / m) as usize;
        let r = simulate_runs(&steady, m, n_runs, 29, StochasticMethod::Exact, 10.0).unwrap();
        let avg = |v: &[f64]| v[200..].iter().sum::<f64>() / (v.len() - 200) as f64;
        let mf = m as f64;
        let mut cols = vec![];
        for (k, series) in [
            r.iter().map(|x| avg(&x.peers)).collect::<Vec<_>>(),
            r.iter().map(|x| avg(&x.supernodes)).collect::<Vec<_>>(),
        ]
        .iter()
        .enumerate()
        {
            let mean = series.iter().sum::<f64>() / n_runs as f64;
            let sd = (series.iter().map(|y| (y - mean).powi(2)).sum::<f64>() / (n_runs - 1) as f64)
                .sqrt();
            cols.push(((mean - h[k]) * mf, sd / (n_runs as f64).sqrt() * mf));
        }
        println!(
            "{m:>10} {n_runs:>5} {:>13.3} {:>10.3} {:>13.3} {:>10.3}",
            cols[0].0, cols[0].1, cols[1].0, cols[1].1
        );
    }

    let p = ParamSet::defaults(P2p.params()).values().to_vec();
    let fstar = critical_shock(&P2p, &p, &TippingOptions::default())
        .unwrap()
        .value
        .unwrap();
    println!("\nprobability of collapse after an instantaneous wave f (fluid f* = {fstar:.4}), {runs} runs each");
    let fs = [0.30, 0.34, 0.36, 0.37, 0.38, 0.39, 0.40, 0.42, 0.46];
    print!("{:>10}", "M \\ f");
    for f in fs {
        print!(" {f:>6.2}");
    }
    println!();
    for m in [10_000u64, 100_000, 1_000_000] {
        print!("{m:>10}");
        for f in fs {
            let mut s = Scenario::new(&P2p);
            s.shock = Some(Shock::instantaneous(f));
            s.t_end = 600.0;
            let r = simulate_runs(&s, m, runs, 23, StochasticMethod::Auto, 60.0).unwrap();
            let c = r.iter().filter(|x| x.outcome == Outcome::Collapsed).count();
            print!(" {:>6.2}", c as f64 / runs as f64);
        }
        println!();
    }
}
