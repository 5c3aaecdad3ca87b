//! Checkout: the intent recorded before the redirect (opened, awaiting,
//! completed or abandoned), the URL, and the one-subscription-per-group rule.

use url::Url;

use super::Billing;
use crate::client::CheckoutRequest;
use crate::domain::config::Locale;
use crate::domain::model::{Entitlement, ProductId};
use crate::domain::plan::Plan;
use crate::mirror::rows::CheckoutIntent;
use crate::web::billable::Billable;
use crate::web::error::BillingError;

/// Extras for a checkout URL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckoutOptions {
    /// A local path to land on once access is granted (default: the
    /// configured after-checkout path).
    pub next: Option<String>,
    /// The checkout page's language.
    pub locale: Option<Locale>,
    /// A price other than the product's, in minor units.
    pub amount: Option<i64>,
}

/// Whether `path` is a path of this site (and not `//evil.example`,
/// `https://…`, a backslash trick or a control character): the only kind of
/// redirect target to take from a query parameter or a form.
///
/// ```
/// use octany_actix::billing::is_local_path;
/// assert!(is_local_path("/dashboard"));
/// assert!(!is_local_path("//evil.example"));
/// ```
pub fn is_local_path(path: &str) -> bool {
    path.starts_with('/')
        && !path.starts_with("//")
        && !path.contains('\\')
        && !path.chars().any(char::is_control)
}

impl<U: Billable> Billing<'_, U> {
    /// The newest checkout the buyer came back from that Octany has not yet
    /// reported (while it lasts, the guard answers "payment processing").
    pub async fn pending_checkout(&self) -> Result<Option<CheckoutIntent>, BillingError> {
        Ok(self
            .octany
            .mirror()
            .newest_intent(&self.reference(), true)
            .await?)
    }

    /// Records a checkout intent for `plan` (or reuses the one opened
    /// recently) and returns the hosted-checkout URL to redirect to.
    /// Refuses when `plan` is already held, and answers
    /// [`BillingError::SwapInstead`] when another plan of its group is:
    /// a checkout would make a second subscription.
    pub async fn checkout_url<P: Plan>(
        &self,
        plan: P,
        options: CheckoutOptions,
    ) -> Result<Url, BillingError> {
        self.checkout_url_for(plan.product_id(), options).await
    }

    /// [`Billing::checkout_url`] by product id (for catalogs not typed as a
    /// [`Plan`]; a product outside the catalog counts as a plan of the
    /// default group).
    pub async fn checkout_url_for(
        &self,
        product: ProductId,
        options: CheckoutOptions,
    ) -> Result<Url, BillingError> {
        self.may_act()?;
        let sold = self.octany.sold_as(product);
        if let Some(group) = sold.map_or(Some(crate::domain::plan::DEFAULT_GROUP), |p| p.group) {
            self.in_lane(self.refuse_a_second(group, product)).await?;
        }
        let settings = self.octany.settings();
        let id = self.open_intent(product).await?;
        let mut success = settings.route_url("success");
        {
            let mut query = success.query_pairs_mut();
            query.append_pair("checkout", &id);
            if let Some(next) = options.next.as_deref().filter(|n| is_local_path(n)) {
                query.append_pair("next", next);
            }
        }
        let mut request = CheckoutRequest::new(self.reference().to_string(), success);
        request.email = self.billable.billing_email();
        if let Some(name) = self.billable.billing_name() {
            let mut parts = name.splitn(2, ' ');
            request.first_name = parts.next().map(str::to_owned);
            request.last_name = parts.next().map(str::to_owned);
            request.reference_name = Some(name);
        }
        request.locale = options.locale;
        request.amount = options.amount;
        Ok(self.octany.client().checkout_url(product, &request)?)
    }

    /// A checkout of `product` in `group` would be a second live
    /// subscription of the group: refused, or turned into a swap.
    async fn refuse_a_second(&self, group: &str, product: ProductId) -> Result<(), BillingError> {
        let clock = self.octany.clock();
        let policy = self.octany.settings().policy;
        // A checkout makes a subscription that cannot be undone. Read the
        // database itself, not the guard's cache; and when it shows nothing
        // live in the group, ask Octany (a mirror that missed a webhook must
        // not let a second subscription through). If Octany cannot answer,
        // no checkout: better "try again" than paying twice.
        let reference = self.reference();
        let fresh = self.octany.access_fresh(&reference).await?;
        // A comp is no Octany subscription: a comped billable may buy.
        let mut held = self.of_group(&fresh, group);
        held.retain(|s| !s.comp);
        if held.iter().all(|s| s.has_ended(clock.as_ref())) {
            self.octany
                .syncer()
                .sync_billable_subscriptions(&reference)
                .await?;
            let synced = self.octany.access_fresh(&reference).await?;
            held = self.of_group(&synced, group);
            held.retain(|s| !s.comp);
        }
        if held
            .iter()
            .any(|s| s.product_id == Some(product) && s.has_access(clock.as_ref(), policy))
        {
            return Err(BillingError::AlreadySubscribed);
        }
        // Renewing, or waiting for its first payment: a live subscription
        // of the group. (One cancelled and running out is not: Octany
        // cannot resume it, so a new plan is bought, as in Cashier after
        // the grace period.)
        let live = held.iter().find(|s| {
            !s.has_ended(clock.as_ref())
                && s.status != crate::domain::model::SubscriptionStatus::Cancelled
        });
        match live {
            None => Ok(()),
            Some(s) if s.product_id == Some(product) => Err(BillingError::AlreadySubscribed),
            Some(_) => Err(BillingError::SwapInstead {
                swap_path: self.octany.sold_as(product).map(|plan| {
                    self.octany
                        .settings()
                        .route_path(&format!("swap/{}", plan.slug))
                }),
            }),
        }
    }

    /// The opened intent for `product`: the one opened within the lapse
    /// window (so reopening a checkout adds no row), else a new one.
    pub(crate) async fn open_intent(&self, product: ProductId) -> Result<String, BillingError> {
        self.may_act()?;
        let lapse = self.octany.checkout_lapse();
        Ok(self
            .octany
            .mirror()
            .open_intent(&self.reference(), product, lapse)
            .await?)
    }

    /// This billable's intent `id`, if it is one.
    pub(crate) async fn intent(&self, id: &str) -> Result<Option<CheckoutIntent>, BillingError> {
        Ok(self.octany.mirror().intent(&self.reference(), id).await?)
    }

    /// The buyer came back through the success URL of intent `id`: an
    /// opened (or lapsed) intent now awaits Octany's word, and the guard
    /// answers "payment processing" until it comes. The intent as it now
    /// stands.
    pub(crate) async fn returned(&self, id: &str) -> Result<Option<CheckoutIntent>, BillingError> {
        Ok(self
            .octany
            .mirror()
            .return_from_checkout(&self.reference(), id)
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::is_local_path;

    #[test]
    fn only_local_paths_are_redirect_targets() {
        for ok in ["/", "/dashboard", "/a/b?c=d"] {
            assert!(is_local_path(ok), "{ok}");
        }
        for bad in [
            "//evil.example",
            "https://evil.example",
            "evil",
            "/\\evil.example",
            "",
            "/a\nb",
        ] {
            assert!(!is_local_path(bad), "{bad:?}");
        }
    }
}
