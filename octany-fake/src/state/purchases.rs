//! What a buyer and the REST API do: checkout, cancel, swap, charge, a
//! subscription from another's billing method.

use super::*;

impl State {
    // ---- what the API and the checkout do ----

    pub(super) fn product(&self, account: usize, id: i64) -> Result<FakeProduct, Refusal> {
        self.accounts[account]
            .products
            .get(&id)
            .cloned()
            .ok_or_else(|| Refusal::invalid("product_id", "The selected product id is invalid."))
    }

    pub(super) fn customer(&mut self, account: usize, email: Option<&str>) -> u64 {
        match email {
            Some(email) if !email.is_empty() => {
                if let Some(id) = self.accounts[account].customers.get(email) {
                    return *id;
                }
                let id = self.id(5_500_000);
                self.accounts[account]
                    .customers
                    .insert(email.to_owned(), id);
                id
            }
            _ => self.id(5_500_000),
        }
    }

    pub(crate) fn checkout(
        &mut self,
        account: usize,
        product_id: i64,
        params: &CheckoutParams,
        outcome: CheckoutOutcome,
        now: DateTime<Utc>,
    ) -> Result<CheckoutResult, Refusal> {
        let product = self.accounts[account]
            .products
            .get(&product_id)
            .cloned()
            .ok_or(Refusal::NotFound)?;
        if params
            .reference_id
            .as_ref()
            .is_some_and(|r| r.chars().count() > 250)
        {
            return Err(Refusal::invalid(
                "referenceId",
                "The reference id may not be greater than 250 characters.",
            ));
        }
        if params.amount.is_some_and(|a| a <= 0) {
            return Err(Refusal::invalid("amount", "The amount must be at least 1."));
        }
        let recurring = product.interval.is_some();
        let method: &[&str] = if outcome == CheckoutOutcome::Invoice {
            &["fortnox", "billecta", "invoice"]
        } else {
            &["stripe", "card"]
        };
        if !params.methods.is_empty()
            && !params.methods.iter().any(|m| method.contains(&m.as_str()))
        {
            return Err(Refusal::invalid(
                "methods",
                format!(
                    "This checkout allows only {}; {} is not one of them.",
                    params.methods.join(", "),
                    method[0]
                ),
            ));
        }
        match outcome {
            CheckoutOutcome::Decline => return Err(Refusal::Declined),
            CheckoutOutcome::Trial if product.trial_days.is_none() => {
                return Err(Refusal::invalid(
                    "outcome",
                    format!("{} has no free trial.", product.name),
                ));
            }
            CheckoutOutcome::Trial | CheckoutOutcome::FutureStart if !recurring => {
                return Err(Refusal::invalid(
                    "outcome",
                    "A one-off product cannot start later.",
                ));
            }
            _ => {}
        }
        let invoice = outcome == CheckoutOutcome::Invoice;
        let customer_id = self.customer(account, params.email.as_deref());
        if !params.roles.is_empty() {
            self.accounts[account]
                .roles
                .entry(customer_id)
                .or_default()
                .extend(params.roles.iter().cloned());
        }
        let billing_method = BillingMethod {
            kind: if invoice {
                BillingMethodKind::Fortnox
            } else {
                BillingMethodKind::Stripe
            },
            name: Some(if invoice {
                "Faktura".into()
            } else {
                "Visa **** 4242".into()
            }),
            email: params.email.clone(),
            person: Some(Person {
                first_name: params.first_name.clone(),
                last_name: params.last_name.clone(),
                email: params.email.clone(),
                phone: None,
                locale: params.locale.clone(),
                personal_identity_number: None,
            }),
            address: None,
            company: params.company_name.clone().map(|name| Company {
                name: Some(name),
                vat_number: None,
            }),
        };
        let price = params.amount.unwrap_or(product.price);
        let vat = FakeProduct {
            price,
            ..product.clone()
        }
        .vat();
        let catalog = product.to_product();

        if !recurring {
            let id = self.new_order(account, None, &catalog, price, vat, None, now);
            let o = self.accounts[account].orders.get_mut(&id).expect("new");
            o.customer_id = customer_id;
            o.billing_method = billing_method;
            o.reference_id = params.reference_id.clone();
            o.reference_name = params.reference_name.clone();
            self.confirm_order(account, id, invoice, now);
            return Ok(CheckoutResult {
                subscription: None,
                order: Some(wire::parsed(&self.order_view(account, id))),
                customer_id,
            });
        }

        let (status, renews_at) = match outcome {
            CheckoutOutcome::Succeed => (SubscriptionStatus::Active, None),
            CheckoutOutcome::Invoice => (SubscriptionStatus::Pending, None),
            CheckoutOutcome::Trial => (
                SubscriptionStatus::Trialing,
                Some(now + days(product.trial_days.unwrap_or(0))),
            ),
            CheckoutOutcome::FutureStart => (
                SubscriptionStatus::FutureStart,
                Some(
                    params
                        .start_date
                        .filter(|d| *d > now)
                        .unwrap_or(now + days(self.life_cycle.future_start_days)),
                ),
            ),
            CheckoutOutcome::Decline => unreachable!("declined above"),
        };
        let id = self.id(76_000_000);
        self.accounts[account].subscriptions.insert(
            id,
            FakeSubscription {
                id,
                customer_id,
                product: catalog.clone(),
                price,
                vat,
                currency: product.currency.clone(),
                status,
                renews_at,
                ends_at: None,
                reference_id: params.reference_id.clone(),
                reference_name: params.reference_name.clone(),
                billing_method,
                card_failing: false,
                failed_charges: 0,
                next_retry_at: None,
                granted_from: matches!(
                    status,
                    SubscriptionStatus::Active | SubscriptionStatus::Trialing
                )
                .then_some(now),
                lapsed_at: None,
                created_at: now,
                updated_at: now,
            },
        );
        let mut order = None;
        match outcome {
            CheckoutOutcome::Succeed | CheckoutOutcome::Invoice => {
                let o = self.new_order(account, Some(id), &catalog, price, vat, None, now);
                if invoice {
                    self.confirm_order(account, o, true, now);
                } else {
                    let interval = catalog.billing_interval().unwrap_or("month").to_owned();
                    let s = self.accounts[account]
                        .subscriptions
                        .get_mut(&id)
                        .expect("new");
                    s.renews_at = Some(add_interval(now, &interval));
                    self.confirm_order(account, o, false, now);
                    self.emit_subscription(account, EventName::SubscriptionCreated, id, now);
                }
                order = Some(wire::parsed(&self.order_view(account, o)));
            }
            _ => self.emit_subscription(account, EventName::SubscriptionCreated, id, now),
        }
        Ok(CheckoutResult {
            subscription: Some(wire::parsed(&self.subscription_view(account, id))),
            order,
            customer_id,
        })
    }

    /// `order.confirmed`, then either paid now (`order.paid`) or pending
    /// until its invoice falls due.
    pub(super) fn confirm_order(
        &mut self,
        account: usize,
        id: u64,
        invoice: bool,
        now: DateTime<Utc>,
    ) {
        let due = now + days(self.life_cycle.invoice_due_days);
        let o = self.accounts[account].orders.get_mut(&id).expect("known");
        o.state = OrderState::Confirmed;
        self.emit_order(account, EventName::OrderConfirmed, id, now);
        let o = self.accounts[account].orders.get_mut(&id).expect("known");
        if invoice {
            o.state = OrderState::Pending;
            o.due_at = Some(due);
        } else {
            self.settle(account, id, now);
            self.emit_order(account, EventName::OrderPaid, id, now);
        }
    }

    pub(super) fn subscription_mut(
        &mut self,
        account: usize,
        id: u64,
    ) -> Result<&mut FakeSubscription, Refusal> {
        self.accounts[account]
            .subscriptions
            .get_mut(&id)
            .ok_or(Refusal::NotFound)
    }

    pub(crate) fn cancel(
        &mut self,
        account: usize,
        id: u64,
        now: DateTime<Utc>,
    ) -> Result<Subscription, Refusal> {
        let s = self.subscription_mut(account, id)?;
        use SubscriptionStatus as S;
        match s.status {
            S::Cancelled => return Ok(self.subscription_view(account, id)),
            S::Expired | S::Unpaid => {
                return Err(Refusal::invalid(
                    "subscription",
                    "The subscription has already ended.",
                ));
            }
            _ => {}
        }
        let period_end = match s.status {
            S::Active | S::Trialing => s.renews_at.unwrap_or(now),
            _ => now,
        };
        s.status = S::Cancelled;
        s.ends_at = Some(period_end.max(now));
        s.renews_at = None;
        s.next_retry_at = None;
        s.updated_at = now;
        self.emit_subscription(account, EventName::SubscriptionCancelled, id, now);
        Ok(self.subscription_view(account, id))
    }

    pub(crate) fn swap(
        &mut self,
        account: usize,
        id: u64,
        product_id: i64,
        now: DateTime<Utc>,
    ) -> Result<Subscription, Refusal> {
        let product = self.product(account, product_id)?;
        let s = self.subscription_mut(account, id)?;
        if s.product.is_recurring_donation()
            || product.kind.as_deref() == Some("recurring_donation")
        {
            return Err(Refusal::invalid(
                "product_id",
                "A recurring donation cannot be swapped.",
            ));
        }
        if product.interval.is_none() {
            return Err(Refusal::invalid(
                "product_id",
                "A subscription cannot be swapped to a one-off product.",
            ));
        }
        if matches!(
            s.status,
            SubscriptionStatus::Expired | SubscriptionStatus::Unpaid
        ) {
            return Err(Refusal::invalid(
                "subscription",
                "The subscription has already ended.",
            ));
        }
        s.product = product.to_product();
        s.price = product.price;
        s.vat = product.vat();
        s.currency = product.currency.clone();
        s.updated_at = now;
        self.emit_subscription(account, EventName::SubscriptionUpdated, id, now);
        Ok(self.subscription_view(account, id))
    }

    pub(crate) fn charge(
        &mut self,
        account: usize,
        id: u64,
        product_id: i64,
        amount: Option<i64>,
        description: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Order, Refusal> {
        let product = self.product(account, product_id)?;
        if amount.is_some_and(|a| a <= 0) {
            return Err(Refusal::invalid("amount", "The amount must be at least 1."));
        }
        let failing = self.subscription_mut(account, id)?.card_failing;
        let price = amount.unwrap_or(product.price);
        let vat = FakeProduct {
            price,
            ..product.clone()
        }
        .vat();
        let order = self.new_order(
            account,
            Some(id),
            &product.to_product(),
            price,
            vat,
            description,
            now,
        );
        if failing {
            self.accounts[account]
                .orders
                .get_mut(&order)
                .expect("new")
                .state = OrderState::Failed;
        } else {
            self.settle(account, order, now);
            self.emit_order(account, EventName::OrderPaid, order, now);
        }
        Ok(self.order_view(account, order))
    }

    pub(crate) fn subscribe_from(
        &mut self,
        account: usize,
        body: &Value,
        now: DateTime<Utc>,
    ) -> Result<Subscription, Refusal> {
        if body["type"].as_str() != Some("from_subscription") {
            return Err(Refusal::invalid("type", "The selected type is invalid."));
        }
        let source_id = body["subscription_id"]
            .as_u64()
            .or_else(|| {
                body["subscription_id"]
                    .as_str()
                    .and_then(|s| s.trim().parse().ok())
            })
            .filter(|id| self.accounts[account].subscriptions.contains_key(id))
            .ok_or_else(|| {
                Refusal::invalid(
                    "subscription_id",
                    "The selected subscription id is invalid.",
                )
            })?;
        let product_id = product_id_in(body, None)?;
        let product = self.product(account, product_id)?;
        let Some(interval) = product.interval.clone() else {
            return Err(Refusal::invalid(
                "product_id",
                "The product is not a subscription product.",
            ));
        };
        let price = body["custom_amount"].as_i64().unwrap_or(product.price);
        if price <= 0 {
            return Err(Refusal::invalid(
                "custom_amount",
                "The custom amount must be at least 1.",
            ));
        }
        let source = self.accounts[account].subscriptions[&source_id].clone();
        let id = self.id(76_000_000);
        let text = |v: &Value| v.as_str().map(str::to_owned);
        let vat = FakeProduct {
            price,
            ..product.clone()
        }
        .vat();
        self.accounts[account].subscriptions.insert(
            id,
            FakeSubscription {
                id,
                product: product.to_product(),
                price,
                vat,
                currency: product.currency.clone(),
                status: SubscriptionStatus::Active,
                renews_at: Some(add_interval(now, &interval)),
                ends_at: None,
                reference_id: text(&body["reference_id"]).or(source.reference_id.clone()),
                reference_name: text(&body["reference_name"]).or(source.reference_name.clone()),
                failed_charges: 0,
                next_retry_at: None,
                granted_from: Some(now),
                lapsed_at: None,
                created_at: now,
                updated_at: now,
                ..source
            },
        );
        let order = self.new_order(
            account,
            Some(id),
            &product.to_product(),
            price,
            vat,
            None,
            now,
        );
        self.settle(account, order, now);
        self.emit_order(account, EventName::OrderPaid, order, now);
        self.emit_subscription(account, EventName::SubscriptionCreated, id, now);
        Ok(self.subscription_view(account, id))
    }
}
