//! Analyses on any [`crate::model::Model`]: equilibria and their stability, settling, the
//! healthy state, and tipping by shocks.

pub mod bistable;
pub mod codim2;
pub mod continuation;
pub mod equilibria;
pub mod tipping;

pub use equilibria::{
    all_equilibria, choose_rest, healthy_state, newton, rest_state, settled, Equilibrium, Kind,
    NewtonResult, Rest, RestState, Settled, Stability, HEALTHY_SERVICE,
};
pub use tipping::{
    critical_shock, critical_window, CriticalShock, CriticalWindow, FateChange, TippingOptions,
};
