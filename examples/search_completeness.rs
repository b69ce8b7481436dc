//! How complete the equilibrium search is: the default search (96 quasi-random starts, the
//! probe states, twin starts near folds, edge tracking between stable states) against the same
//! search from many more starts, on seeded random parameter sets of the reference model.
//!
//! ```text
//! cargo run --release --example search_completeness -- [SETS] [SPREAD] [ZERO_CHANCE] [SEED] [STARTS]
//! ```
//!
//! Each parameter is drawn log-uniformly within a factor SPREAD of its default (a fraction
//! drawn above its upper bound keeps its default; the crash hazards stay 0); with probability
//! ZERO_CHANCE a parameter whose range includes 0 is set to 0. Defaults: 2000 sets, spread 2,
//! zero chance 0.1, seed 7, 1500 starts for the reference. Prints the sets where the two
//! searches differ (sets where the reference finds more than five roots are counted apart:
//! there the equilibria form a continuum) and a tally.

use selfheal::equilibria::{all_equilibria, all_equilibria_from, same_point, Equilibrium, Kind};
use selfheal::model::{Model, P2p, ParamSet};
use selfheal::qmc::SplitMix;
use std::collections::BTreeMap;

fn arg<T: std::str::FromStr>(k: usize, default: T) -> T {
    std::env::args()
        .nth(k)
        .map(|a| {
            a.parse()
                .unwrap_or_else(|_| panic!("argument {k}: {a} is not a number"))
        })
        .unwrap_or(default)
}

fn main() {
    let sets: usize = arg(1, 2000);
    let spread: f64 = arg(2, 2.0);
    let zero_chance: f64 = arg(3, 0.1);
    let seed: u64 = arg(4, 7);
    let starts: usize = arg(5, 1500);
    let mut rng = SplitMix(seed);
    let (mut missed, mut extra, mut continua) = (BTreeMap::new(), 0, 0);
    for set in 0..sets {
        let ps = ParamSet::random_near(
            P2p.params(),
            &mut rng,
            spread,
            (zero_chance > 0.0).then_some(zero_chance),
        );
        let (Ok(d), Ok(r)) = (
            all_equilibria(&P2p, ps.values()),
            all_equilibria_from(&P2p, ps.values(), starts),
        ) else {
            println!("set {set}: the search failed");
            continue;
        };
        let lacks = |a: &[Equilibrium<3>], b: &[Equilibrium<3>]| {
            b.iter().any(|e| !a.iter().any(|f| same_point(&e.x, &f.x)))
        };
        if r.len() > 5 {
            continua += 1;
        } else if lacks(&d, &r) {
            let saddle =
                |eq: &[Equilibrium<3>]| eq.iter().filter(|e| e.kind == Kind::Saddle).count();
            let what = if saddle(&d) < saddle(&r) {
                "saddle"
            } else {
                "other"
            };
            *missed.entry(what).or_insert(0) += 1;
            let how = if P2p.equilibrium_candidates(ps.values()).is_some() {
                "the reduced scan"
            } else {
                "the generic search"
            };
            println!(
                "set {set}: {} roots, the reference {} ({what} missed; {how})",
                d.len(),
                r.len()
            );
        }
        if lacks(&r, &d) {
            extra += 1;
            println!(
                "set {set}: {} roots, the reference {} (the reference lacks one)",
                d.len(),
                r.len()
            );
        }
    }
    println!(
        "{sets} sets (spread {spread}, zero chance {zero_chance}, seed {seed}): the default search missed a root the {starts}-start search found in {} sets ({missed:?}); found one it did not in {extra}; {continua} sets with more than five roots",
        missed.values().sum::<usize>()
    );
}
