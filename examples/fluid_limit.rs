//! How the stochastic model approaches the fluid one as the population M grows: the spread of
//! single runs, the bias of their mean, and the probability of collapse around the fluid f*.
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
