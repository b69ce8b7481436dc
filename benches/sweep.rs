//! Sweep throughput: rows of 48-hour scenarios, and a grid of critical shocks.
//!
//! `cargo bench --bench sweep`. The full-size figures (10^6 scenarios, a 100×100 grid of
//! critical shocks) are measured with the CLI, as docs/benchmarks.md says.

use criterion::{criterion_group, criterion_main, Criterion};
use selfheal::model::P2p;
use selfheal::scenario::Scenario;
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
    group.bench_function("critical_shock_10x10/threads=2", |b| {
        b.iter(|| critical.run(0..critical.len(), 2, |_, _| Ok(())).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench_sweep);
criterion_main!(benches);
