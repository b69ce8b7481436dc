//! Analyses on any [`crate::model::Model`]: equilibria and their stability, settling, the
//! healthy state, tipping by shocks, continuation and Hopf points.

pub mod codim2;
pub mod continuation;
pub mod equilibria;
pub mod hopf;
pub mod tipping;

pub use equilibria::{
    all_equilibria, healthy_state, newton, settled, Equilibrium, Kind, NewtonResult, Settled,
    Stability,
};
pub use hopf::{first_lyapunov, refine_hopf, Criticality, HopfData, HopfPoint, Located, Lyapunov};
pub use tipping::{critical_shock, critical_window, CriticalShock, CriticalWindow, TippingOptions};
