//! Tipping analyses of the default reference model: all equilibria, the critical shock, and a
//! continuation across both folds.
//!
//! `cargo bench --bench tipping`

use criterion::{criterion_group, criterion_main, Criterion};
use selfheal::analysis::codim2::{fold_curves, Plane};
use selfheal::analysis::continuation::{continue_equilibria, ContinuationOptions};
use selfheal::analysis::tipping::{critical_shock, TippingOptions};
use selfheal::equilibria::all_equilibria;
use selfheal::model::{Model, P2p, ParamSet};
use std::hint::black_box;

fn bench_tipping(c: &mut Criterion) {
    let ps = ParamSet::defaults(P2p.params());
    let p = ps.values().to_vec();
    let k = ps.index("sn_capacity").unwrap();
    let kd = ps.index("dedicated").unwrap();
    let copts = ContinuationOptions::default();

    let cs = critical_shock(&P2p, &p, &TippingOptions::default()).unwrap();
    let cont = continue_equilibria(&P2p, &p, k, 300.0, 20000.0, &copts).unwrap();
    eprintln!(
        "critical shock {:.7} in {} trials ({} steps); continuation 300..20000: {} steps, folds {:?}",
        cs.value.unwrap(),
        cs.trials,
        cs.stats.steps,
        cont.steps,
        cont.folds()
    );

    c.bench_function("all_equilibria_default", |b| {
        b.iter(|| all_equilibria(&P2p, black_box(&p)).unwrap())
    });
    c.bench_function("critical_shock_default_tol_1e-6", |b| {
        b.iter(|| critical_shock(&P2p, black_box(&p), &TippingOptions::default()).unwrap())
    });
    c.bench_function("continue_sn_capacity_300_to_20000_two_folds", |b| {
        b.iter(|| continue_equilibria(&P2p, black_box(&p), k, 300.0, 20000.0, &copts).unwrap())
    });
    c.bench_function("fold_curve_sn_capacity_dedicated_with_cusp", |b| {
        b.iter(|| {
            fold_curves(
                &P2p,
                black_box(&p),
                &Plane::new(k, (20.0, 20000.0), kd, (0.0, 0.05)),
                &copts,
            )
            .unwrap()
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(4));
    targets = bench_tipping
}
criterion_main!(benches);
