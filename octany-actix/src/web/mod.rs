//! The web layer: the [`Octany`](octany::Octany) value a host registers,
//! the billing handle, the guard, the mounted routes, and every error's
//! HTTP answer ([`error`]). The top layer: nothing below imports it.
//! Within it, imports go one way too: `billable` and `settings`, then
//! `error`, then `octany`, then `billing`, `guard` and `routes` (which add
//! their own methods to `Octany`).

pub(crate) mod billable;
pub mod billing;
pub(crate) mod comps;
pub(crate) mod console;
pub(crate) mod error;
pub mod guard;
pub(crate) mod octany;
pub mod ops;
pub(crate) mod routes;
pub(crate) mod settings;
