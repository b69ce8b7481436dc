//! # selfheal
//!
//! Fluid capacity models of peer-to-peer overlays: ordinary differential equations for the
//! online peers, the supernodes that serve them and the login queue; simulated through reboot
//! waves and operator interventions, and analysed for the tipping point where the network's
//! self-healing fails.
//!
//! The crate is layered one way; each module uses only those before it in this list
//! (ARCHITECTURE.md says what each owns):
//!
//! 1. utilities: [`error`], [`files`] (atomic, no-clobber writes), [`qmc`] (Sobol' points and
//!    hashes), [`roots`] (the bracketing root finder), [`progress`], [`linalg`];
//! 2. [`model`]: the `Model` trait, parameters, the reference model and textbook models;
//! 3. [`scenario`]: parameters, the reboot wave, interventions, named quantities;
//! 4. [`solve`]: Rosenbrock and explicit methods with dense output;
//! 5. [`equilibria`]: Newton, stability, the service level and the healthy state;
//! 6. [`periodic`]: daily cycles by shooting, Floquet multipliers; [`simulate`]: a scenario run
//!    and its summary;
//! 7. [`analysis`]: tipping (critical shock, window, rescue), continuation, Hopf points, curves
//!    in two parameters, bistable intervals;
//! 8. [`sweep`], [`calibrate`], [`stochastic`]: many runs, fits, the Markov chain;
//! 9. [`output`] (CSV formats), [`plot`] and [`report`] (figures, the newcomer's report).
//!
//! ## Quick start
//!
//! ```
//! use selfheal::model::P2p;
//! use selfheal::scenario::{Scenario, Shock};
//! use selfheal::simulate::{simulate, Outcome, SimOptions};
//!
//! // Half of all machines reboot at once, at t = 0, with the default parameters.
//! let mut scenario = Scenario::new(&P2p);
//! scenario.shock = Some(Shock::instantaneous(0.5));
//! let sim = simulate(&P2p, &scenario, &SimOptions::default()).unwrap();
//!
//! let s = &sim.summary;
//! println!("lowest peers {:.4} at t = {:.0} min, outcome {:?}", s.min_peers, s.t_min_peers, s.outcome);
//! assert!(s.min_peers < 0.5 * s.healthy[0]);
//! assert_ne!(s.outcome, Outcome::Undecided);
//! // Every row of the trajectory stays in the simplex N, S, Q >= 0, N + S + Q <= 1.
//! for (_, x) in sim.sample(&P2p, 10.0) {
//!     assert!(x.iter().all(|v| *v >= 0.0) && x.sum() <= 1.0);
//! }
//! ```

#![warn(missing_docs)]

pub mod analysis;
pub mod calibrate;
pub mod equilibria;
pub mod error;
pub mod files;
pub mod linalg;
pub mod model;
pub mod modelfile;
pub mod output;
pub mod periodic;
#[cfg(feature = "plot")]
pub mod plot;
pub mod progress;
pub mod qmc;
#[cfg(feature = "plot")]
pub mod report;
pub mod roots;
pub mod scenario;
pub mod simulate;
pub mod solve;
pub mod stochastic;
pub mod sweep;

pub use error::Error;
/// The nalgebra the crate's vectors and matrices come from (0.34): use `selfheal::nalgebra` in
/// your model instead of a separate `nalgebra` dependency, whose version could differ (two
/// versions' `SVector` are different types).
pub use nalgebra;

/// The README's Rust example, compiled and run by `cargo test`.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
