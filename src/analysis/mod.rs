//! Analyses on any [`crate::model::Model`]: equilibria and their stability, settling, and the
//! healthy state.

pub mod equilibria;

pub use equilibria::{healthy_state, newton, settled, NewtonResult, Settled, Stability};
