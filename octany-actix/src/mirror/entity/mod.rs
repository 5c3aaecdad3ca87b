//! The tables octany-actix keeps in the host's database, one module per
//! table (created by the `octany-actix-migrations` crate).
//!
//! Octany writes them (through webhooks and polls, via
//! [`Syncer`](crate::mirror::sync::Syncer)); the guard reads them.

pub(crate) mod api_call;
pub(crate) mod audit;
pub(crate) mod charge;
pub mod checkout;
pub(crate) mod comp;
pub mod event;
pub(crate) mod lock;
pub(crate) mod notice;
pub mod order;
pub mod product;
pub mod subscription;
pub(crate) mod usage;
pub(crate) mod usage_period;
pub mod webhook_delivery;

use crate::domain::model::BillableRef;

/// The billable a `referenceId` names, if it names one.
pub(crate) fn billable_ref(reference_id: Option<&str>) -> Option<BillableRef> {
    BillableRef::parse(reference_id?)
}
