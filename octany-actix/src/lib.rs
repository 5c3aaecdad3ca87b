//! # octany-actix
//!
//! Sell subscriptions through [Octany](https://octany.com) from an
//! Actix-web app.
//!
//! - [`api`]: the REST client, with retries and list-after-write;
//! - [`model`]: Octany's resources and the entitlement rules;
//! - [`config`]: the account, key, hosts and webhook secrets;
//! - [`clock`]: injectable time.
#![warn(missing_docs)]

extern crate self as octany_actix;

pub mod api;
pub mod clock;
pub mod config;
pub mod entity;
pub mod error;
pub mod model;
pub mod sync;

pub use api::{OctanyClient, install_crypto_provider};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::OctanyConfig;
pub use error::OctanyError;
pub mod webhook;

#[cfg(feature = "fake")]
pub mod fake;
