use std::collections::HashSet;

use futures_util::stream::{BoxStream, TryStreamExt};
use serde::Serialize;

use super::OctanyClient;
use super::pagination::{Page, walk};
use super::transport::Call;
use crate::client::{OctanyError, Result};
use crate::domain::model::{ProductId, Subscription, SubscriptionId};

/// Which subscriptions to list (`filter[...]`); the default lists all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscriptionFilter {
    /// `filter[reference_id]`: the app's id for the buyer.
    pub reference_id: Option<String>,
    /// `filter[email]`.
    pub email: Option<String>,
    /// `filter[customer_id]`.
    pub customer_id: Option<String>,
}

impl SubscriptionFilter {
    /// Subscriptions bought with this reference id (e.g. `user:42`).
    pub fn reference_id(reference: impl Into<String>) -> Self {
        Self {
            reference_id: Some(reference.into()),
            ..Self::default()
        }
    }

    /// Subscriptions of this Octany customer.
    pub fn customer_id(customer: impl Into<String>) -> Self {
        Self {
            customer_id: Some(customer.into()),
            ..Self::default()
        }
    }

    fn apply<'a>(&self, mut call: Call<'a>) -> Call<'a> {
        if let Some(v) = &self.reference_id {
            call = call.query("filter[reference_id]", v);
        }
        if let Some(v) = &self.email {
            call = call.query("filter[email]", v);
        }
        if let Some(v) = &self.customer_id {
            call = call.query("filter[customer_id]", v);
        }
        call
    }
}

/// A new subscription paid by an existing subscription's billing method
/// (`POST /subscriptions`, `type: from_subscription`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewSubscription {
    /// The subscription whose billing method pays.
    pub subscription_id: SubscriptionId,
    /// The product to subscribe to.
    pub product_id: ProductId,
    /// A price other than the product's, in minor units.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_amount: Option<i64>,
    /// The app's id for the buyer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_id: Option<String>,
    /// The label shown in Octany's admin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_name: Option<String>,
}

impl OctanyClient {
    /// `GET /subscriptions?page=N`: one page (20 a page).
    pub async fn list_subscriptions(
        &self,
        filter: &SubscriptionFilter,
        page: u32,
    ) -> Result<Page<Subscription>> {
        let call = Call::get("subscriptions", "subscription list", "subscriptions".into())
            .query("page", page.max(1));
        self.page(filter.apply(call)).await
    }

    /// Every subscription matching `filter`, page after page, one page in
    /// memory at a time.
    pub fn stream_subscriptions(
        &self,
        filter: SubscriptionFilter,
    ) -> BoxStream<'static, Result<Subscription>> {
        let client = self.clone();
        walk(move |page| {
            let (client, filter) = (client.clone(), filter.clone());
            async move { client.list_subscriptions(&filter, page).await }
        })
    }

    /// `GET /subscription/{id}`.
    pub async fn get_subscription(&self, id: &SubscriptionId) -> Result<Subscription> {
        self.get_subscription_observed(id)
            .await
            .map(|(subscription, _)| subscription)
    }

    /// `GET /subscription/{id}`, with the instant the answer was true by
    /// Octany's clock (its `Date` header), when it sends one. The mirror
    /// orders updates by it.
    pub async fn get_subscription_observed(
        &self,
        id: &SubscriptionId,
    ) -> Result<(Subscription, Option<chrono::DateTime<chrono::Utc>>)> {
        self.data_observed(Call::get(
            "subscription/{id}",
            "subscription",
            format!("subscription/{id}"),
        ))
        .await
    }

    /// `POST /subscription/{id}/cancel`: cancels at the end of the paid
    /// period. Returns the subscription, now `cancelled` with `ends_at`.
    pub async fn cancel_subscription(&self, id: &SubscriptionId) -> Result<Subscription> {
        self.cancel_subscription_observed(id).await.map(|(s, _)| s)
    }

    /// [`OctanyClient::cancel_subscription`] with the answer's `Date`.
    pub(crate) async fn cancel_subscription_observed(
        &self,
        id: &SubscriptionId,
    ) -> Result<(Subscription, Option<chrono::DateTime<chrono::Utc>>)> {
        let body = serde_json::json!({});
        self.data_observed(Call::post(
            "subscription/{id}/cancel",
            "subscription",
            format!("subscription/{id}/cancel"),
            &body,
        ))
        .await
    }

    /// `POST /subscription/{id}/product`: swaps the product (and price).
    /// A recurring-donation product cannot be swapped (422).
    pub async fn swap_subscription_product(
        &self,
        id: &SubscriptionId,
        product: ProductId,
    ) -> Result<Subscription> {
        self.swap_subscription_product_observed(id, product)
            .await
            .map(|(s, _)| s)
    }

    /// [`OctanyClient::swap_subscription_product`] with the answer's `Date`.
    pub(crate) async fn swap_subscription_product_observed(
        &self,
        id: &SubscriptionId,
        product: ProductId,
    ) -> Result<(Subscription, Option<chrono::DateTime<chrono::Utc>>)> {
        let body = serde_json::json!({ "product_id": product });
        self.data_observed(Call::post(
            "subscription/{id}/product",
            "subscription",
            format!("subscription/{id}/product"),
            &body,
        ))
        .await
    }

    /// `POST /subscriptions` (`type: from_subscription`). An ambiguous
    /// failure is reconciled by listing the buyer's subscriptions
    /// (API.md section 7): never created twice, never silently not created.
    pub async fn create_subscription(&self, new: &NewSubscription) -> Result<Subscription> {
        let mut body = serde_json::to_value(new).expect("plain struct serializes");
        body["type"] = "from_subscription".into();
        let filter = match &new.reference_id {
            Some(reference) => SubscriptionFilter::reference_id(reference.clone()),
            None => {
                let source = self.get_subscription(&new.subscription_id).await?;
                match source.customer_id {
                    Some(customer) => SubscriptionFilter::customer_id(customer),
                    None => SubscriptionFilter::default(),
                }
            }
        };
        let before: HashSet<SubscriptionId> = self
            .stream_subscriptions(filter.clone())
            .map_ok(|s| s.id)
            .try_collect()
            .await?;
        let product = new.product_id;
        self.write_reconciled(
            "create subscription",
            || {
                Call::post(
                    "subscriptions",
                    "subscription",
                    "subscriptions".into(),
                    &body,
                )
            },
            || {
                let before = before.clone();
                self.stream_subscriptions(filter.clone())
                    .try_filter(move |s| {
                        std::future::ready(
                            !before.contains(&s.id) && s.product_id() == Some(product),
                        )
                    })
            },
        )
        .await
        .map(|(s, _)| s)
    }

    /// Sends a write that must happen exactly once. After an ambiguous
    /// failure it looks for the write's result with `find` (a listing of
    /// what did not exist before); found, that is the answer; not found,
    /// the write is sent again, up to the policy's attempts. With the
    /// answer comes its `Date` (none when it was recovered by listing).
    pub(crate) async fn write_reconciled<'a, T, S>(
        &self,
        action: &'static str,
        call: impl Fn() -> Call<'a>,
        find: impl Fn() -> S,
    ) -> Result<(T, Option<chrono::DateTime<chrono::Utc>>)>
    where
        T: serde::de::DeserializeOwned,
        S: futures_util::Stream<Item = Result<T>>,
    {
        let policy = self.config().retry().clone();
        let mut backoff = super::retry::backoff(&policy);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let error = match self.data_observed::<T>(call()).await {
                Ok(done) => return Ok(done),
                Err(error) if error.is_ambiguous() => error,
                Err(error) => return Err(error),
            };
            tracing::warn!(action, attempt, %error, "write outcome unknown; listing to see whether it happened");
            let found = std::pin::pin!(find()).try_next().await;
            match found {
                Ok(Some(done)) => {
                    tracing::info!(
                        action,
                        attempt,
                        "the write had happened; its lost answer recovered by listing"
                    );
                    return Ok((done, None));
                }
                Ok(None) if attempt < policy.max_attempts => {
                    self.clock()
                        .sleep(backoff.next().unwrap_or(policy.max_backoff))
                        .await;
                }
                Ok(None) => return Err(error),
                Err(check) => {
                    return Err(OctanyError::Unconfirmed {
                        action,
                        source: Box::new(check),
                    });
                }
            }
        }
    }
}
