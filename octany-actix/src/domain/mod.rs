//! The bottom layer: Octany's resources and rules ([`model`]), typed plans,
//! configuration, the injected clock, and what a receipt says. It imports nothing from above.

pub mod clock;
pub mod config;
pub(crate) mod features;
pub(crate) mod limits;
pub mod model;
pub(crate) mod plan;
pub mod receipt;
