//! Analyses on any [`crate::model::Model`] that go beyond one run: tipping by shocks, windows
//! and rescues (each a scan of simulated trials), continuation with folds and Hopf points,
//! Hopf criticality, curves in two parameters, bistable intervals. The equilibria they build
//! on live one layer down, in [`crate::equilibria`] (re-exported here).

pub mod bistable;
pub mod codim2;
pub mod continuation;
pub mod daily;
mod fold_system;
pub mod hopf;
pub mod hopf_curve;
pub mod tipping;
pub mod tipping_map;

pub use crate::equilibria::{
    all_equilibria, choose_rest, healthy_state, newton, rest_state, settled, Equilibrium, Kind,
    NewtonResult, Rest, RestState, Settled, Stability, HEALTHY_SERVICE,
};
pub use hopf::{
    first_lyapunov, refine_hopf, Criticality, HopfData, HopfGuess, HopfPoint, Located, Lyapunov,
};
pub use hopf_curve::{
    hopf_curves, HopfCurve, HopfCurveEnd, HopfCurveEntry, HopfCurvePoint, HopfCurves,
};
pub use tipping::{
    critical_shock, critical_window, CriticalShock, CriticalWindow, FateChange, TippingOptions,
};
