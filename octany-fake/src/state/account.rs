//! Keeping an account: products and groups, webhook endpoints, test
//! hooks, seeding, and the API's rate limit.

use super::*;

impl State {
    pub(crate) fn update_product(
        &mut self,
        account: usize,
        id: i64,
        body: &Value,
        now: DateTime<Utc>,
    ) -> Result<Product, Refusal> {
        let product = self.accounts[account]
            .products
            .get_mut(&id)
            .ok_or(Refusal::NotFound)?;
        if let Some(name) = body.get("name") {
            product.name = name
                .as_str()
                .filter(|n| !n.trim().is_empty())
                .ok_or_else(|| Refusal::invalid("name", "The name must be a non-empty string."))?
                .to_owned();
        }
        for (field, slot) in [
            ("price", &mut product.price),
            ("vat_rate", &mut product.vat_rate),
        ] {
            if let Some(v) = body.get(field) {
                *slot = v.as_i64().filter(|v| *v >= 0).ok_or_else(|| {
                    Refusal::invalid(
                        field,
                        format!("The {field} must be a whole number of at least 0."),
                    )
                })?;
            }
        }
        let view = product.to_product();
        self.emit(account, EventName::ProductUpdated, json!(view), now);
        Ok(view)
    }

    pub(crate) fn delete_product(
        &mut self,
        account: usize,
        id: i64,
        now: DateTime<Utc>,
    ) -> Result<(), Refusal> {
        let product = self.accounts[account]
            .products
            .remove(&id)
            .ok_or(Refusal::NotFound)?;
        self.emit(
            account,
            EventName::ProductDeleted,
            json!(product.to_product()),
            now,
        );
        Ok(())
    }

    pub(crate) fn upsert_product_group(
        &mut self,
        account: usize,
        group: FakeProductGroup,
        now: DateTime<Utc>,
    ) {
        let products: Vec<Product> = self.accounts[account]
            .products
            .values()
            .map(FakeProduct::to_product)
            .collect();
        let view = group.to_group(&products);
        self.accounts[account]
            .product_groups
            .insert(group.id, group);
        self.emit(account, EventName::ProductGroupUpdated, json!(view), now);
    }

    pub(crate) fn delete_product_group(
        &mut self,
        account: usize,
        id: i64,
        now: DateTime<Utc>,
    ) -> Result<(), Refusal> {
        let group = self.accounts[account]
            .product_groups
            .remove(&id)
            .ok_or(Refusal::NotFound)?;
        self.emit(
            account,
            EventName::ProductGroupDeleted,
            json!(group.to_group(&[])),
            now,
        );
        Ok(())
    }

    pub(crate) fn test_hook(&mut self, account: usize, now: DateTime<Utc>) {
        self.emit(
            account,
            EventName::TestHook,
            json!({"message": "Test webhook from Octany"}),
            now,
        );
    }

    pub(crate) fn add_endpoint(
        &mut self,
        account: usize,
        url: &str,
        secret: Option<String>,
    ) -> Result<FakeEndpoint, Refusal> {
        let parsed = url::Url::parse(url)
            .map_err(|_| Refusal::invalid("url", "The url must be a valid URL."))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Refusal::invalid("url", "The url must be a valid URL."));
        }
        self.next_endpoint += 1;
        let endpoint = FakeEndpoint {
            id: self.next_endpoint,
            url: url.to_owned(),
            secret: secret.unwrap_or_else(|| self.random_text(32)),
        };
        self.accounts[account].endpoints.push(endpoint.clone());
        Ok(endpoint)
    }

    /// Creates `count` active subscriptions to `product` for `user:{first}`
    /// onwards, without events: for load tests and benchmarks.
    pub(crate) fn seed_subscriptions(
        &mut self,
        account: usize,
        product: i64,
        first: u64,
        count: u64,
        now: DateTime<Utc>,
    ) -> Result<(), Refusal> {
        let product = self.product(account, product)?;
        let interval = product.interval.clone().unwrap_or_else(|| "month".into());
        for n in first..first + count {
            let id = self.id(76_000_000);
            let customer = self.id(5_500_000);
            self.accounts[account].subscriptions.insert(
                id,
                FakeSubscription {
                    id,
                    customer_id: customer,
                    product: product.to_product(),
                    price: product.price,
                    vat: product.vat(),
                    currency: product.currency.clone(),
                    status: SubscriptionStatus::Active,
                    renews_at: Some(add_interval(now, &interval)),
                    ends_at: None,
                    reference_id: Some(format!("user:{n}")),
                    reference_name: None,
                    billing_method: BillingMethod {
                        kind: BillingMethodKind::Stripe,
                        email: Some(format!("user{n}@example.com")),
                        ..BillingMethod::default()
                    },
                    card_failing: false,
                    failed_charges: 0,
                    next_retry_at: None,
                    granted_from: Some(now),
                    lapsed_at: None,
                    created_at: now,
                    updated_at: now,
                },
            );
        }
        Ok(())
    }

    pub(crate) fn set_card_failing(
        &mut self,
        account: usize,
        id: u64,
        failing: bool,
    ) -> Result<(), Refusal> {
        self.subscription_mut(account, id)?.card_failing = failing;
        Ok(())
    }

    /// Whether this request is over the per-key limit; if so, the seconds
    /// until it may retry.
    pub(crate) fn rate_limited(&mut self, key: &str, now: DateTime<Utc>) -> Option<u64> {
        let limit = self.faults.rate_limit_per_minute? as usize;
        let window = self.rate_windows.entry(key.to_owned()).or_default();
        while window
            .front()
            .is_some_and(|t| *t <= now - Duration::seconds(60))
        {
            window.pop_front();
        }
        if window.len() >= limit {
            let oldest = *window.front().expect("non-empty at the limit");
            let wait = (oldest + Duration::seconds(60) - now).num_milliseconds();
            return Some(((wait + 999) / 1000).max(1) as u64);
        }
        window.push_back(now);
        None
    }

    /// A roll of the seeded dice: true with probability `share`.
    pub(crate) fn roll(&mut self, share: f64) -> bool {
        share > 0.0 && self.rng.random::<f64>() < share
    }
}
