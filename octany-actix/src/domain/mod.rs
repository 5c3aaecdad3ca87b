//! The bottom layer: Octany's resources and rules ([`model`]), typed plans,
//! configuration and the injected clock. It imports nothing from above.

pub mod clock;
pub mod config;
pub(crate) mod features;
pub(crate) mod limits;
pub mod model;
pub(crate) mod plan;
