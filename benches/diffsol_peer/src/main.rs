//! The Rust peer of `benches/scipy_compare.py`: the 48-hour default scenario after an
//! instantaneous 0.5 reboot wave, solved by diffsol's BDF (nalgebra matrices and LU) on
//! selfheal's own right-hand side and Jacobian, at the tolerances the script compares.
//!
//! `cargo run --release --manifest-path benches/diffsol_peer/Cargo.toml` prints one JSON
//! document: per tolerance the median time per solve, the work, and the hourly states.

use diffsol::{NalgebraLU, NalgebraMat, OdeBuilder, OdeSolverMethod};
use nalgebra::SVector;
use selfheal::analysis::healthy_state;
use selfheal::model::{Model, P2p, ParamSet, System};
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Instant;

fn main() {
    let p = ParamSet::defaults(P2p.params()).values().to_vec();
    let h = healthy_state(&P2p, &p).unwrap().equilibrium;
    let x0 = P2p.reboot_jump(&h, &p, 0.5, 0.5).unwrap();
    let hours: Vec<f64> = (0..=48).map(|k| 60.0 * k as f64).collect();
    let (rhs_evals, jac_products) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let sys = System::new(&P2p, &p);
    let mut runs = vec![];
    for rtol in [1e-4, 3e-5, 1e-5, 3e-6, 1e-6, 3e-7, 1e-7, 1e-8, 1e-10] {
        let atol = 1e-12_f64.min(rtol * 1e-6);
        let problem = OdeBuilder::<NalgebraMat<f64>>::new()
            .rtol(rtol)
            .atol([atol])
            .rhs_implicit(
                |x, _p, t, y| {
                    rhs_evals.fetch_add(1, Relaxed);
                    y.copy_from_slice(sys.f(t, &SVector::from_column_slice(x)).as_slice());
                },
                // Jacobian-vector products from the exact Jacobian (what diffsol asks for).
                |x, _p, t, v, y| {
                    jac_products.fetch_add(1, Relaxed);
                    let j = sys.jacobian(t, &SVector::from_column_slice(x));
                    y.copy_from_slice((j * SVector::from_column_slice(v)).as_slice());
                },
            )
            .init(|_p, _t, y| y.copy_from_slice(x0.as_slice()), 3)
            .build()
            .unwrap();
        let solve = || {
            let mut solver = problem.bdf::<NalgebraLU<f64>>().unwrap();
            let (ys, _) = solver.solve_dense(&hours).unwrap();
            (ys, solver.get_statistics().number_of_steps)
        };
        rhs_evals.store(0, Relaxed);
        jac_products.store(0, Relaxed);
        let (ys, steps) = solve();
        let (evals, products) = (rhs_evals.load(Relaxed), jac_products.load(Relaxed));
        // Median of repeated solves, about 0.3 s of them (at least 21), as the selfheal side.
        let once = {
            let t = Instant::now();
            std::hint::black_box(solve());
            t.elapsed().as_secs_f64()
        };
        let reps = ((0.3 / once) as usize).clamp(21, 20_001) | 1;
        let mut times: Vec<f64> = (0..reps)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(solve());
                t.elapsed().as_secs_f64()
            })
            .collect();
        times.sort_by(f64::total_cmp);
        let hourly: Vec<Vec<f64>> = (0..hours.len())
            .map(|k| (0..3).map(|i| ys[(i, k)]).collect())
            .collect();
        runs.push(json!({
            "method": "diffsol bdf", "rtol": rtol, "atol": atol,
            "median_seconds": times[reps / 2], "rhs_evals": evals,
            "jacobian_vector_products": products, "steps": steps, "hourly": hourly,
        }));
    }
    println!(
        "{}",
        serde_json::to_string(&json!({ "runs": runs })).unwrap()
    );
}
