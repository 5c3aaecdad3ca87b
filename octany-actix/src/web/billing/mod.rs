//! The billing of one billable, `octany.billing(&user)`, split by concern
//! as Laravel Cashier splits its `Billable`: subscriptions,
//! checkout and orders. Questions are answered from the local
//! mirror; actions call Octany, then sync.

mod checkout;
mod orders;
mod subscriptions;

use std::sync::Arc;

use crate::domain::model::BillableRef;
use crate::mirror::access::AccessState;
use crate::web::billable::Billable;
use crate::web::error::BillingError;
use crate::web::octany::Octany;

pub use checkout::{CheckoutOptions, is_local_path};
pub use orders::PortalUrls;

/// One billable's billing. Get it with [`Octany::billing`].
pub struct Billing<'a, U: Billable> {
    octany: &'a Octany,
    billable: &'a U,
}

impl<U: Billable> std::fmt::Debug for Billing<'_, U> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Billing")
            .field("billable", &self.billable.billable_ref())
            .finish_non_exhaustive()
    }
}

impl<'a, U: Billable> Billing<'a, U> {
    pub(crate) fn new(octany: &'a Octany, billable: &'a U) -> Self {
        Self { octany, billable }
    }

    /// The billable's reference (`user:42`).
    pub fn reference(&self) -> BillableRef {
        self.billable.billable_ref()
    }

    async fn state(&self) -> Result<Arc<AccessState>, BillingError> {
        self.octany.access(&self.reference()).await
    }

    /// Re-reads this billable's subscriptions and orders from Octany (a poll).
    pub async fn sync(&self) -> Result<(), BillingError> {
        self.octany
            .syncer()
            .sync_billable(&self.reference())
            .await?;
        Ok(())
    }
}

impl Octany {
    /// The billing of one billable: questions answered from the mirror,
    /// actions sent to Octany and then synced.
    pub fn billing<'a, U: Billable>(&'a self, billable: &'a U) -> Billing<'a, U> {
        Billing::new(self, billable)
    }
}
