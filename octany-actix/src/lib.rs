//! # octany-actix
//!
//! Sell subscriptions through [Octany](https://octany.com) from an
//! Actix-web app.
//!
//! Where things are:
//!
//! - [`Octany`] (in `octany`): the one value a host builds and registers;
//! - [`Billable`] and [`Plan`] (in [`billable`]): what the host implements or derives;
//! - [`billing`]: `octany.billing(&user)`, questions and actions;
//! - [`guard`]: [`RequireSubscription`] and the scope middleware;
//! - [`routes`](fn@routes): checkout, success, status and webhook routes;
//! - [`webhook`]: signatures, the receiver, listeners, replay;
//! - [`sync`]: the one path from Octany into the database;
//! - [`entity`]: the tables (created by `octany-actix-migrations`);
//! - [`api`]: the REST client, with retries, pacing and list-after-write;
//! - [`model`]: Octany's resources and the entitlement rules;
//! - [`config`], [`clock`], [`error`];
//! - `fake` (feature `fake`): a stateful fake Octany for offline runs and tests.
#![warn(missing_docs)]

extern crate self as octany_actix;

pub mod access;
pub mod api;
pub mod billable;
pub mod billing;
pub mod clock;
pub mod config;
pub mod entity;
pub mod error;
pub mod guard;
pub mod model;
mod octany;
mod routes;
pub mod sync;

pub use api::{OctanyClient, install_crypto_provider};
pub use billable::{AnyPlan, Billable, Plan};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::OctanyConfig;
pub use error::{BillingError, OctanyError};
pub use guard::RequireSubscription;
pub use octany::{CatalogPlan, Octany, OctanyBuilder, RejectionHandler, Settings};
pub use octany_actix_macros::{Billable, Plan};
pub use routes::routes;
pub mod webhook;

#[cfg(feature = "fake")]
pub mod fake;
