//! The billing of one billable, `octany.billing(&user)`, split by concern
//! as Laravel Cashier splits its `Billable`: subscriptions,
//! checkout and orders. Questions are answered from the local
//! mirror; actions call Octany, then sync.
//!
//! A handle acts on one plan group (`"default"` unless
//! [`Billing::in_group`] names another), as Cashier's methods take a
//! subscription name.
//!
//! What Octany's API cannot do, the handle does not pretend to: there is
//! no resume of a cancelled subscription (buy again at checkout once it
//! has ended) and no cancel-now (a cancel runs to the end of the paid
//! period).

mod checkout;
mod features;
mod orders;
mod subscriptions;
mod usage;

use std::sync::Arc;

use crate::domain::model::BillableRef;
use crate::domain::plan::DEFAULT_GROUP;
use crate::mirror::access::AccessState;
use crate::web::billable::Billable;
use crate::web::error::BillingError;
use crate::web::octany::Octany;

pub use crate::web::octany::comps::NewComp;
pub use checkout::{CheckoutOptions, is_local_path};
pub use features::Allowance;
pub use orders::PortalUrls;
pub use usage::Usage;

/// One billable's billing, in one plan group. Get it with [`Octany::billing`].
pub struct Billing<'a, U: Billable> {
    octany: &'a Octany,
    billable: &'a U,
    group: &'static str,
}

impl<U: Billable> std::fmt::Debug for Billing<'_, U> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Billing")
            .field("billable", &self.billable.billable_ref())
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

impl<'a, U: Billable> Billing<'a, U> {
    pub(crate) fn new(octany: &'a Octany, billable: &'a U) -> Self {
        Self {
            octany,
            billable,
            group: DEFAULT_GROUP,
        }
    }

    /// The same billable's billing in the plan group of `P` (e.g. an
    /// add-on subscription held beside the main plan): its subscription,
    /// cancel and swap act on that group's subscription. The group is the
    /// plan type's, so a misspelt group does not compile.
    ///
    /// ```no_run
    /// # async fn demo(octany: &octany_actix::Octany, user: &impl octany_actix::Billable) -> Result<(), octany_actix::BillingError> {
    /// #[derive(octany_actix::Plan, Clone, Copy, Debug, PartialEq, Eq)]
    /// #[plan(group = "support")]
    /// enum Support { #[plan(product = 1500)] Priority }
    ///
    /// let support = octany.billing(user).in_group::<Support>();
    /// if support.subscribed().await? {
    ///     support.cancel().await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn in_group<P: crate::domain::plan::Plan>(self) -> Self {
        self.in_group_named(P::GROUP)
    }

    /// [`Billing::in_group`] by the group's name (a catalog plan's group).
    pub(crate) fn in_group_named(self, group: &'static str) -> Self {
        Self { group, ..self }
    }

    /// The plan group this handle acts on.
    pub fn group(&self) -> &str {
        self.group
    }

    /// Refuses an action when the one acting may not change this
    /// billable's billing ([`Billable::may_manage_billing`]).
    pub(crate) fn may_act(&self) -> Result<(), BillingError> {
        if self.billable.may_manage_billing() {
            return Ok(());
        }
        Err(BillingError::NotAllowed {
            managers: self.billable.billing_managers(),
        })
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
        self.in_lane(self.octany.syncer().sync_billable(&self.reference()))
            .await?;
        Ok(())
    }

    /// Runs `work` with its requests to Octany in this billable's lane of
    /// the shared budget: a few at once, so one account cannot take every
    /// place in the queue ([`QueueBounds::per_billable`](crate::client::QueueBounds::per_billable)).
    pub(super) async fn in_lane<F: std::future::Future>(&self, work: F) -> F::Output {
        crate::client::on_behalf_of(self.reference().as_str(), work).await
    }
}

impl Octany {
    /// The billing of one billable: questions answered from the mirror,
    /// actions sent to Octany and then synced.
    pub fn billing<'a, U: Billable>(&'a self, billable: &'a U) -> Billing<'a, U> {
        Billing::new(self, billable)
    }
}
