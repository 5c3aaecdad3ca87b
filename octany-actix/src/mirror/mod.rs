//! The mirror: Octany's state in the host's database. Its tables
//! ([`entity`]), the one write path ([`sync`]), the webhook receiver that
//! feeds it ([`webhook`]), what the guard reads (`access`), the request
//! budget all instances share (`budget`), the waits for a billable's
//! change (`watch`), the notices' bookkeeping (`notices`), what the operator's console reads
//! (`console`), and the door the web layer
//! comes in by (`api`: named reads, and writes that each run as one unit
//! of work). It builds
//! on the client and the domain, never on the web layer.

pub(crate) mod access;
pub(crate) mod api;
pub(crate) mod api_calls;
pub(crate) mod audit;
pub(crate) mod budget;
pub(crate) mod console;
pub mod entity;
pub(crate) mod notices;
pub(crate) mod revocation;
pub mod rows;
pub(crate) mod sync;
pub(crate) mod watch;
pub(crate) mod webhook;
