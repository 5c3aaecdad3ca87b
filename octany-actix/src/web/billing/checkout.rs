//! Checkout: the intent recorded before the redirect, and the URL.

use chrono::Utc;
use sea_orm::{ActiveValue::Set, EntityTrait};
use url::Url;

use super::Billing;
use crate::client::CheckoutRequest;
use crate::domain::config::Locale;
use crate::domain::model::{Entitlement, ProductId};
use crate::domain::plan::Plan;
use crate::mirror::entity::checkout;
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
    /// The newest checkout still waiting for Octany.
    pub async fn pending_checkout(&self) -> Result<Option<checkout::Model>, BillingError> {
        Ok(self.state().await?.pending_checkout.clone())
    }

    /// Records a checkout intent for `plan` and returns the hosted-checkout
    /// URL to redirect to. Refuses when `plan` is already held.
    pub async fn checkout_url<P: Plan>(
        &self,
        plan: P,
        options: CheckoutOptions,
    ) -> Result<Url, BillingError> {
        self.checkout_url_for(plan.product_id(), options).await
    }

    /// [`Billing::checkout_url`] by product id (for catalogs not typed as a [`Plan`]).
    pub async fn checkout_url_for(
        &self,
        product: ProductId,
        options: CheckoutOptions,
    ) -> Result<Url, BillingError> {
        let state = self.state().await?;
        let clock = self.octany.clock();
        let settings = self.octany.settings();
        if state
            .subscriptions
            .iter()
            .any(|s| s.product_id == Some(product) && s.has_access(clock.as_ref(), settings.policy))
        {
            return Err(BillingError::AlreadySubscribed);
        }
        let now = clock.now();
        let id = uuid::Uuid::new_v4().to_string();
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
        let url = self.octany.client().checkout_url(product, &request)?;
        checkout::Entity::insert(checkout::ActiveModel {
            id: Set(id),
            billable_ref: Set(self.reference()),
            product_id: Set(product),
            status: Set(checkout::CheckoutStatus::Pending),
            subscription_id: Set(None),
            order_id: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            completed_at: Set(None::<chrono::DateTime<Utc>>),
        })
        .exec_without_returning(self.octany.syncer().db())
        .await?;
        self.octany.forget(&self.reference());
        Ok(url)
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
