//! Sweep throughput: rows of 48-hour scenarios, and a grid of critical shocks.
//!
//! `cargo bench --bench sweep`. The full-size figures (10^6 scenarios, a 100×100 grid of
//! critical shocks) are measured with the CLI, as docs/benchmarks.md says.

use criterion::{criterion_group, criterion_main, Criterion};
use selfheal::analysis::tipping::TippingOptions;
use selfheal::analysis::tipping_map::{shock_map, MapAxis};
use selfheal::model::{Model, P2p, ParamSet};
use selfheal::scenario::{Scenario, Shock};
use selfheal::sweep::{Axis, Design, Metric, Sweep};

fn grid(spec: &[&str], metrics: Vec<Metric>) -> Sweep<'static, P2p, 3> {
    let base = Scenario::new(&P2p);
    let axes = spec
        .iter()
        .map(|s| Axis::parse(s, &base).unwrap())
        .collect();
    Sweep::new(&P2p, base, Design::Grid(axes), metrics).unwrap()
}

fn bench_sweep(c: &mut Criterion) {
    let shocks = grid(
        &["shock=0.01:0.99:2000"],
        vec![Metric::Outcome, Metric::Min(0)],
    );
    // After a 10 % wave, 2000 rows with new parameters each (the healthy state by a warm
    // start from the block's first row, sweep::WARM_BLOCK) against 2000 rows that share their
    // parameters (the wave spread over 0 to 60 minutes): every row recovers in both.
    let wave = |spec: &str| {
        let mut base = Scenario::new(&P2p);
        base.shock = Some(Shock::instantaneous(0.1));
        let axes = vec![Axis::parse(spec, &base).unwrap()];
        let metrics = vec![Metric::Outcome, Metric::Min(0)];
        Sweep::new(&P2p, base, Design::Grid(axes), metrics).unwrap()
    };
    let new_params = wave("sn_capacity=600:5000:2000");
    let same_params = wave("window=0:60:2000");
    let critical = grid(
        &["sn_capacity=600:3000:10", "dedicated=1e-6:2e-4:10"],
        vec![Metric::CriticalShock],
    );
    let mut group = c.benchmark_group("sweep");
    group.sample_size(10);
    for threads in [1, 2] {
        group.bench_function(format!("2000_shocks_48h/threads={threads}"), |b| {
            b.iter(|| shocks.run(0..shocks.len(), threads, |_, _| Ok(())).unwrap())
        });
    }
    for (name, sweep) in [("new", &new_params), ("same", &same_params)] {
        group.bench_function(format!("2000_rows_{name}_params_48h/threads=1"), |b| {
            b.iter(|| sweep.run(0..sweep.len(), 1, |_, _| Ok(())).unwrap())
        });
    }
    group.bench_function("critical_shock_10x10/threads=2", |b| {
        b.iter(|| critical.run(0..critical.len(), 2, |_, _| Ok(())).unwrap())
    });
    // The same window as a tipping map continued from cell to cell, 40 x 40 cells, brackets of
    // 1e-4 (the report's map; the 200 x 200 figure is measured with the CLI).
    let ps = ParamSet::defaults(P2p.params());
    let axis = |name: &str, lo: f64, hi: f64| MapAxis {
        param: ps.index(name).unwrap(),
        values: (0..40)
            .map(|j| lo * (hi / lo).powf(j as f64 / 39.0))
            .collect(),
    };
    let (mx, my) = (
        axis("sn_capacity", 600.0, 3000.0),
        axis("dedicated", 1e-6, 2e-4),
    );
    let opts = TippingOptions {
        tol: 1e-4,
        ..TippingOptions::default()
    };
    group.bench_function("tipping_map_40x40/threads=2", |b| {
        b.iter(|| shock_map(&P2p, ps.values(), &mx, &my, &opts, 2).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench_sweep);
criterion_main!(benches);
