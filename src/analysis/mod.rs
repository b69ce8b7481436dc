//! Analyses on any [`crate::model::Model`]: equilibria and their stability, settling, the
//! healthy state, tipping by shocks, continuation and Hopf points.

pub mod bistable;
pub mod codim2;
pub mod continuation;
pub mod equilibria;
pub mod hopf;
pub mod hopf_curve;
pub mod tipping;

pub use equilibria::{
    all_equilibria, choose_rest, healthy_state, newton, rest_state, settled, Equilibrium, Kind,
    NewtonResult, Rest, RestState, Settled, Stability, HEALTHY_SERVICE,
};
pub use hopf::{first_lyapunov, refine_hopf, Criticality, HopfData, HopfPoint, Located, Lyapunov};
pub use hopf_curve::{
    hopf_curves, HopfCurve, HopfCurveEnd, HopfCurveEntry, HopfCurvePoint, HopfCurves,
};
pub use tipping::{
    critical_shock, critical_window, CriticalShock, CriticalWindow, FateChange, TippingOptions,
};
