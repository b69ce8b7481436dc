//! Per-solve timings and hourly states of the 48-hour default scenario after an instantaneous
//! 0.5 reboot wave, for each method, and a parameter sweep (2000 rows of `sn_capacity`, each a
//! new healthy state and a 48-hour run after a 0.1 wave): the Rust side of
//! `benches/scipy_compare.py`.
//!
//! `cargo run --release --example peer_timing` prints one JSON document on stdout.

use nalgebra::SVector;
use selfheal::analysis::healthy_state;
use selfheal::model::{Model, P2p, ParamSet, System};
use selfheal::scenario::{Scenario, Shock};
use selfheal::solve::{integrate, Dense, Method, SolveOptions, SolverStats, Span, Tolerances};
use selfheal::sweep::{Axis, Design, Metric, Sweep};
use serde_json::json;
use std::time::Instant;

fn solve(
    p: &[f64],
    x0: SVector<f64, 3>,
    opts: &SolveOptions,
) -> Result<(Dense<3>, SolverStats), String> {
    let sys = System::new(&P2p, p);
    let mut dense = Dense::default();
    let mut stats = SolverStats::default();
    integrate(
        &sys,
        Span::new(0.0, x0, 2880.0),
        opts,
        &mut stats,
        &mut |s| {
            dense.segments.push(*s);
            false
        },
    )
    .map_err(|e| e.to_string())?;
    Ok((dense, stats))
}

fn main() {
    let p = ParamSet::defaults(P2p.params()).values().to_vec();
    let h = healthy_state(&P2p, &p).unwrap().equilibrium;
    let x0 = P2p.reboot_jump(&h, &p, 0.5, 0.5).unwrap();
    let mut runs = vec![];
    for rtol in [
        1e-4, 7e-5, 5e-5, 3e-5, 2e-5, 1e-5, 7e-6, 5e-6, 3e-6, 2e-6, 1e-6, 1e-8, 1e-10, 1e-12,
    ] {
        for method in [
            Method::Rosenbrock,
            Method::Rodas4,
            Method::Dopri5,
            Method::Dop853,
        ] {
            let opts = SolveOptions {
                method,
                tol: Tolerances {
                    rtol,
                    atol: 1e-12_f64.min(rtol * 1e-6),
                },
                stiffness_detection: false,
                max_steps: 2_000_000,
                ..Default::default()
            };
            let Ok((dense, stats)) = solve(&p, x0, &opts) else {
                continue;
            };
            // Median of repeated solves (the observer keeps the dense output, as users do).
            // About 0.3 s of solves per configuration (at least 21), so that a burst of
            // machine noise moves the median little.
            let once = {
                let t = Instant::now();
                std::hint::black_box(solve(&p, x0, &opts).unwrap());
                t.elapsed().as_secs_f64()
            };
            let reps = ((0.3 / once) as usize).clamp(21, 20_001) | 1;
            let mut times: Vec<f64> = (0..reps)
                .map(|_| {
                    let t = Instant::now();
                    let r = solve(&p, x0, &opts).unwrap();
                    std::hint::black_box(r);
                    t.elapsed().as_secs_f64()
                })
                .collect();
            times.sort_by(f64::total_cmp);
            let hourly: Vec<Vec<f64>> = (0..=48)
                .map(|k| {
                    dense
                        .eval(60.0 * k as f64)
                        .unwrap()
                        .iter()
                        .copied()
                        .collect()
                })
                .collect();
            runs.push(json!({
                "method": method.name(), "rtol": rtol, "atol": opts.tol.atol,
                "median_seconds": times[reps / 2], "rhs_evals": stats.rhs_evals,
                "jacobians": stats.jac_evals, "steps": stats.steps, "hourly": hourly,
            }));
        }
    }
    // The sweep row: new parameters each row (the healthy state by Newton from the block's
    // first row, the full search there), then the 48-hour run; one thread.
    let mut base = Scenario::new(&P2p);
    base.shock = Some(Shock::instantaneous(0.1));
    let axis = Axis::parse("sn_capacity=600:5000:2000", &base).unwrap();
    let values: Vec<f64> = (0..axis.count).map(|j| axis.value(j)).collect();
    let sweep = Sweep::new(
        &P2p,
        base,
        Design::Grid(vec![axis]),
        vec![Metric::Outcome, Metric::Min(0)],
    )
    .unwrap();
    let mut rows: Vec<Vec<String>> = vec![];
    let mut sweep_times: Vec<f64> = (0..7)
        .map(|k| {
            let mut out = vec![];
            let t = Instant::now();
            sweep
                .run(0..sweep.len(), 1, |_, r| {
                    out.push(r.to_vec());
                    Ok(())
                })
                .unwrap();
            let dt = t.elapsed().as_secs_f64();
            if k == 0 {
                rows = out;
            }
            dt
        })
        .collect();
    sweep_times.sort_by(f64::total_cmp);
    let header = sweep.header();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (outcome, min_peers) = (col("outcome"), col("min_peers"));
    let doc = json!({
        "sweep": {
            "param": "sn_capacity", "shock": 0.1, "t_end": 2880.0, "values": values,
            "outcome": rows.iter().map(|r| r[outcome].clone()).collect::<Vec<_>>(),
            "min_peers": rows.iter().map(|r| r[min_peers].parse::<f64>().unwrap()).collect::<Vec<_>>(),
            "median_seconds_per_row": sweep_times[3] / sweep.len() as f64,
        },
        "params": P2p.params().iter().zip(&p).map(|(s, v)| (s.name.as_ref(), *v)).collect::<std::collections::BTreeMap<_, _>>(),
        "x0": x0.iter().copied().collect::<Vec<f64>>(),
        "runs": runs,
    });
    println!("{}", serde_json::to_string(&doc).unwrap());
}
