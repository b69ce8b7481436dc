//! Analyses on any [`crate::model::Model`]: equilibria and their stability, settling, the
//! healthy state, and tipping by shocks.

pub mod codim2;
pub mod continuation;
pub mod equilibria;
pub mod tipping;

pub use equilibria::{
    all_equilibria, healthy_state, newton, settled, Equilibrium, Kind, NewtonResult, Settled,
    Stability,
};
pub use tipping::{critical_shock, critical_window, CriticalShock, CriticalWindow, TippingOptions};
