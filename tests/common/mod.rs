//! What several test files share: running the `selfheal` binary, reference simulation
//! options, an independent RK4 integrator and a seeded generator.

use std::path::Path;
use std::process::{Command, Output};

/// Runs `selfheal ARGS` in `dir` and returns what it did.
#[allow(dead_code)]
pub fn selfheal(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_selfheal"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the binary runs")
}

use nalgebra::SVector;
use selfheal::model::{Model, P2p, ParamSet};
use selfheal::simulate::SimOptions;
use selfheal::solve::{Method, SolveOptions, Tolerances};

/// Simulation options with the stiff method at the given tolerances: plain simulations that
/// decide a wave's fate as a reference.
#[allow(dead_code)]
pub fn rosenbrock(rtol: f64, atol: f64) -> SimOptions {
    SimOptions {
        solve: SolveOptions {
            method: Method::Rosenbrock,
            tol: Tolerances { rtol, atol },
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Classic fixed-step RK4 on the reference model's own `f64` right-hand side, an integrator
/// that shares no code with the library's solvers: `round(t_end / h)` steps of `h` from `x`,
/// calling `each(k, x)` after step `k`. Returns the final state.
#[allow(dead_code)]
pub fn rk4_each(
    p: &[f64],
    mut x: SVector<f64, 3>,
    t_end: f64,
    h: f64,
    mut each: impl FnMut(usize, &SVector<f64, 3>),
) -> SVector<f64, 3> {
    let f = |x: &SVector<f64, 3>| P2p.rhs(0.0, x, p);
    for k in 1..=(t_end / h).round() as usize {
        let k1 = f(&x);
        let k2 = f(&(x + k1 * (h / 2.0)));
        let k3 = f(&(x + k2 * (h / 2.0)));
        let k4 = f(&(x + k3 * h));
        x += (k1 + k2 * 2.0 + k3 * 2.0 + k4) * (h / 6.0);
        each(k, &x);
    }
    x
}

/// [`rk4_each`] sampled: the state at `t = 0` and every `every` minutes.
#[allow(dead_code)]
pub fn rk4(p: &[f64], x: SVector<f64, 3>, t_end: f64, h: f64, every: f64) -> Vec<SVector<f64, 3>> {
    let per_row = (every / h).round() as usize;
    let mut rows = vec![x];
    rk4_each(p, x, t_end, h, |k, x| {
        if k % per_row == 0 {
            rows.push(*x);
        }
    });
    rows
}

/// The library's seeded uniform generator on [0, 1).
#[allow(unused_imports)]
pub use selfheal::qmc::SplitMix;

/// A random valid parameter set of the reference model ([`ParamSet::random_near`]): each
/// parameter log-uniform within a factor `spread` of its default; with `zero_chance`, a
/// parameter that may be 0 is 0 with that probability.
#[allow(dead_code)]
pub fn random_params(rng: &mut SplitMix, spread: f64, zero_chance: Option<f64>) -> ParamSet {
    ParamSet::random_near(P2p.params(), rng, spread, zero_chance)
}

/// The reference model's defaults with the named parameters set.
#[allow(dead_code)]
pub fn with(set: &[(&str, f64)]) -> ParamSet {
    let mut ps = ParamSet::defaults(P2p.params());
    for (n, v) in set {
        ps.set(n, *v).unwrap();
    }
    ps
}
