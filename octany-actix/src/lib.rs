//! # octany-actix
//!
//! Sell subscriptions through [Octany](https://octany.com) from an
//! Actix-web app.
//!
//! The crate is four layers, each importing only from the ones below it:
//!
//! 1. **domain**: Octany's resources and rules ([`model`]), typed plans
//!    ([`Plan`]), [`config`] and the injected [`clock`];
//! 2. **[`client`]**: the REST client, with retries, pacing and
//!    list-after-write;
//! 3. **mirror**: Octany's state in the host's database, read as
//!    [`rows`]; the one write path and its billing events ([`sync`]), the
//!    signed webhook receiver ([`webhook`]);
//! 4. **web**: the [`Octany`] value a host builds and registers, the
//!    [`billing`] handle (`octany.billing(&user)`), the [`guard`]
//!    ([`RequireSubscription`]), the mounted routes and every error's HTTP
//!    answer.
//!
//! What a host implements or derives: [`Billable`] for who pays, [`Plan`]
//! for what they can buy, [`Feature`] and [`Limit`] for what a plan
//! carries.
//!
//! A stateful fake Octany for offline runs and tests is the `octany-fake`
//! crate.
#![warn(missing_docs)]

extern crate self as octany_actix;

#[cfg(feature = "cli")]
pub mod cli;
pub mod client;
mod domain;
mod mirror;
mod web;

pub use domain::{clock, config, model, receipt};
pub use mirror::rows;

/// Billing events and their listeners ([`OctanyBuilder::listeners`]): what
/// changed for a billable, delivered once per listener through the outbox,
/// after the change has committed.
pub mod sync {
    pub use crate::mirror::sync::{
        BillingEvent, Event, ListenerError, ListenerName, Listeners, Origin, SyncError,
    };
}

/// What the signed webhook receiver answers ([`Received`](webhook::Received),
/// [`WebhookError`](webhook::WebhookError)), for the mounted route and for
/// [`ops`]' replays.
pub mod webhook {
    pub use crate::mirror::webhook::{Received, WebhookError};
}

/// The engine under [`Octany`]: the syncer every state change goes
/// through and the webhook receiver. Not part of the API, and not frozen:
/// public for this workspace's tests, benches and the fake's test kit,
/// which drive it without the web layer. A host goes through [`Octany`]
/// (its routes, [`Octany::spawn_background`], [`Octany::sync_products`])
/// and runs an operator's action through [`ops`], which audits it.
#[doc(hidden)]
pub mod engine {
    pub use crate::mirror::sync::{Effects, SyncOptions, Syncer};
    pub use crate::mirror::webhook::WebhookReceiver;
}

/// The tables' sea-orm plumbing: not part of the API (read rows through
/// [`rows`]). Public for this workspace's own tests and tools.
#[doc(hidden)]
pub use mirror::entity;
pub use web::{billing, guard, ops};

/// The customer's e-mails ([`OctanyBuilder::notices`]): a receipt for each
/// paid order, a failed payment, a cancellation, each sent once.
pub mod notices {
    pub use crate::web::octany::notices::{FileMailer, Mail, MailError, Mailer, SmtpMailer};
}

pub use client::{OctanyClient, OctanyError, install_crypto_provider};
#[doc(no_inline)]
pub use clock::{Clock, ManualClock, SystemClock};
#[doc(no_inline)]
pub use config::OctanyConfig;
pub use domain::features::{Feature, Limit, Meter, UsageCounts};
pub use domain::plan::{AnyPlan, Plan};
#[doc(no_inline)]
pub use guard::{RequireFeature, RequireSubscription};
pub use octany_actix_macros::{Billable, Feature, Limit, Plan};
pub use web::billable::Billable;
pub use web::error::BillingError;
pub use web::octany::{Octany, OctanyBuilder, Settings};

/// The guide's Rust blocks, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/guide.md")]
mod guide {}

/// What the derives expand to; not part of the API.
#[doc(hidden)]
pub mod billable {
    pub use crate::web::billable::BillingText;
}
