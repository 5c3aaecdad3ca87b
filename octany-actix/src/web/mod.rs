//! The web layer: the [`Octany`](octany::Octany) value a host registers,
//! the billing handle, the guard, the mounted routes, and every error's
//! HTTP answer ([`error`]). The top layer: nothing below imports it.
//! Within it, imports go one way too: `billable` and `settings`, then
//! `error`, then `octany` (`Octany` and its methods), then `billing`,
//! `guard`, `routes`, `console` and `ops`. Each of `billing`, `routes`,
//! `console` and `ops` is reached by one method on `Octany`, its door,
//! written in it (`octany.billing(u)`, `octany.scope()`,
//! `octany.console()`, `octany.operator()`): every other method of
//! `Octany` is in `octany` (`scripts/check-structure` holds both rules).

pub(crate) mod billable;
pub mod billing;
pub(crate) mod console;
pub(crate) mod error;
pub mod guard;
pub(crate) mod octany;
pub mod ops;
pub(crate) mod routes;
pub(crate) mod settings;
