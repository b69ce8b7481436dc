//! The 48-hour default scenario after an instantaneous 0.5 reboot wave, for each method and
//! two tolerances: time per solve (criterion) and work per solve (printed once).
//!
//! `cargo bench --bench solve`

use criterion::{criterion_group, criterion_main, Criterion};
use nalgebra::SVector;
use selfheal::analysis::healthy_state;
use selfheal::model::{Model, P2p, ParamSet, System};
use selfheal::scenario::{Scenario, Shock};
use selfheal::simulate::{simulate, SimOptions};
use selfheal::solve::{integrate, Method, SolveOptions, SolverStats, Span, Tolerances};
use std::hint::black_box;

fn options(method: Method, rtol: f64) -> SolveOptions {
    SolveOptions {
        method,
        tol: Tolerances { rtol, atol: 1e-12 },
        ..Default::default()
    }
}

fn solve_once(p: &[f64], x0: SVector<f64, 3>, opts: &SolveOptions) -> Result<SolverStats, String> {
    solve_model(&P2p, p, x0, opts)
}

fn solve_model<M: Model<3>>(
    model: &M,
    p: &[f64],
    x0: SVector<f64, 3>,
    opts: &SolveOptions,
) -> Result<SolverStats, String> {
    let sys = System::new(model, p);
    let mut stats = SolverStats::default();
    integrate(
        &sys,
        Span::new(0.0, x0, 2880.0),
        opts,
        &mut stats,
        &mut |_| false,
    )
    .map_err(|e| e.to_string())?;
    Ok(stats)
}

fn bench_solve(c: &mut Criterion) {
    let p = ParamSet::defaults(P2p.params()).values().to_vec();
    let healthy = healthy_state(&P2p, &p).unwrap().equilibrium;
    let x0 = P2p.reboot_jump(&healthy, &p, 0.5, 0.5).unwrap();

    eprintln!("work per solve (48 h after a 0.5 shock, atol 1e-12):");
    eprintln!(
        "{:<11} {:>6} {:>8} {:>9} {:>10}",
        "method", "rtol", "steps", "rejected", "rhs evals"
    );
    let mut group = c.benchmark_group("solve_48h_shock_0.5");
    for rtol in [1e-6, 1e-8] {
        for method in [
            Method::Rosenbrock,
            Method::Rodas4,
            Method::Dopri5,
            Method::Dop853,
            Method::Auto,
        ] {
            let opts = options(method, rtol);
            match solve_once(&p, x0, &opts) {
                Ok(st) => {
                    eprintln!(
                        "{:<11} {:>6.0e} {:>8} {:>9} {:>10}",
                        method.name(),
                        rtol,
                        st.steps,
                        st.rejected,
                        st.rhs_evals
                    );
                    group.bench_function(format!("{}/rtol={rtol:.0e}", method.name()), |b| {
                        b.iter(|| solve_once(black_box(&p), black_box(x0), &opts).unwrap())
                    });
                }
                Err(e) => eprintln!("{:<11} {:>6.0e} failed: {e}", method.name(), rtol),
            }
        }
    }
    group.finish();

    // The same solve with the reference model written as a model file (models/p2p.toml): the
    // interpreter's cost against the built-in Rust model, side by side.
    let file = selfheal::modelfile::ModelFile::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/models/p2p.toml"
    )))
    .unwrap()
    .typed::<3>()
    .unwrap();
    let mut group = c.benchmark_group("model_file_48h_shock_0.5");
    let opts = options(Method::Rosenbrock, 1e-6);
    group.bench_function("built-in/rodas5p", |b| {
        b.iter(|| solve_model(&P2p, black_box(&p), black_box(x0), &opts).unwrap())
    });
    group.bench_function("p2p.toml/rodas5p", |b| {
        b.iter(|| solve_model(&file, black_box(&p), black_box(x0), &opts).unwrap())
    });
    group.finish();

    // The whole simulate call: healthy state, trajectory, events and the settle check.
    let mut sc = Scenario::new(&P2p);
    sc.shock = Some(Shock::instantaneous(0.5));
    let opts = SimOptions::default();
    c.bench_function("simulate_48h_shock_0.5_auto", |b| {
        b.iter(|| simulate(&P2p, black_box(&sc), &opts).unwrap())
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50).measurement_time(std::time::Duration::from_secs(3));
    targets = bench_solve
}
criterion_main!(benches);
