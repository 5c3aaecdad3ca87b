//! The life cycle: renewals, failed cards and their retries, invoices,
//! cancellations running out, on the virtual clock.

use super::*;

impl State {
    // ---- the life cycle ----

    /// Applies every transition due at or before `now`, in time order for
    /// each subscription and order. One scan finds what is due (so a jump
    /// over a month of 100,000 subscriptions costs a scan per round, not
    /// one per renewal); what a transition makes due in turn (a retry after
    /// a failed charge) is found by the next round.
    pub(crate) fn tick(&mut self, now: DateTime<Utc>) {
        loop {
            let mut due = self.due_by(now);
            if due.is_empty() {
                return;
            }
            due.sort_by_key(|(at, account, due)| (*at, *account, due.order_key()));
            for (at, account, due) in due {
                // An earlier transition of this round may have settled it.
                if !self.still_due(at, account, due) {
                    continue;
                }
                self.apply_due(at, account, due);
            }
        }
    }

    fn apply_due(&mut self, at: DateTime<Utc>, account: usize, due: Due) {
        match due {
            Due::Charge(id) => self.charge_period(account, id, at),
            Due::Retry(id) => self.charge_period(account, id, at),
            Due::Expire(id) => {
                self.set_status(account, id, SubscriptionStatus::Expired, at);
                let sub = self.accounts[account]
                    .subscriptions
                    .get_mut(&id)
                    .expect("known");
                sub.lapsed_at.get_or_insert(at);
                self.emit_subscription(account, EventName::SubscriptionUpdated, id, at);
            }
            Due::Invoice(order) => self.invoice_overdue(account, order, at),
        }
    }

    /// When a subscription's next transition is due, and which.
    fn subscription_due(s: &FakeSubscription) -> Option<(DateTime<Utc>, Due)> {
        use SubscriptionStatus as S;
        match s.status {
            S::Active | S::Trialing | S::FutureStart => {
                s.renews_at.map(|at| (at, Due::Charge(s.id)))
            }
            S::Delayed => s.next_retry_at.map(|at| (at, Due::Retry(s.id))),
            S::Cancelled => s.ends_at.map(|at| (at, Due::Expire(s.id))),
            _ => None,
        }
    }

    /// When an order's next transition is due (an invoice falling overdue).
    fn order_due(o: &FakeOrder) -> Option<(DateTime<Utc>, Due)> {
        (o.state == OrderState::Pending)
            .then_some(o.due_at)
            .flatten()
            .map(|at| (at, Due::Invoice(o.id)))
    }

    /// Every transition due at or before `now`, in one scan.
    fn due_by(&self, now: DateTime<Utc>) -> Vec<(DateTime<Utc>, usize, Due)> {
        let mut due = Vec::new();
        for (a, account) in self.accounts.iter().enumerate() {
            let subscriptions = account
                .subscriptions
                .values()
                .filter_map(Self::subscription_due);
            let orders = account.orders.values().filter_map(Self::order_due);
            due.extend(
                subscriptions
                    .chain(orders)
                    .filter(|(at, _)| *at <= now)
                    .map(|(at, d)| (at, a, d)),
            );
        }
        due
    }

    /// Whether `due` is still what comes next for its subscription or order.
    fn still_due(&self, at: DateTime<Utc>, account: usize, due: Due) -> bool {
        let account = &self.accounts[account];
        let now_due = match due {
            Due::Charge(id) | Due::Retry(id) | Due::Expire(id) => account
                .subscriptions
                .get(&id)
                .and_then(Self::subscription_due),
            Due::Invoice(id) => account.orders.get(&id).and_then(Self::order_due),
        };
        now_due == Some((at, due))
    }

    pub(super) fn set_status(
        &mut self,
        account: usize,
        id: u64,
        status: SubscriptionStatus,
        at: DateTime<Utc>,
    ) {
        let s = self.accounts[account]
            .subscriptions
            .get_mut(&id)
            .expect("known id");
        s.status = status;
        s.updated_at = at;
    }

    /// The charge at the start of a period: a renewal, the end of a trial,
    /// a future start, or a retry of a failed renewal.
    pub(super) fn charge_period(&mut self, account: usize, id: u64, at: DateTime<Utc>) {
        let s = self.accounts[account].subscriptions[&id].clone();
        let order = self.new_order(account, Some(id), &s.product, s.price, s.vat, None, at);
        if s.card_failing {
            self.accounts[account]
                .orders
                .get_mut(&order)
                .expect("new")
                .state = OrderState::Failed;
            let schedule = self.life_cycle.retry_schedule_days.clone();
            let failed = if s.status == SubscriptionStatus::Delayed {
                s.failed_charges + 1
            } else {
                1
            };
            let sub = self.accounts[account]
                .subscriptions
                .get_mut(&id)
                .expect("known");
            sub.failed_charges = failed;
            sub.updated_at = at;
            if sub.lapsed_at.is_none() {
                sub.lapsed_at = Some(s.renews_at.unwrap_or(at));
            }
            match schedule.get(failed as usize - 1) {
                Some(d) => {
                    sub.status = SubscriptionStatus::Delayed;
                    sub.next_retry_at = Some(at + days(*d));
                }
                None => {
                    sub.status = SubscriptionStatus::Unpaid;
                    sub.next_retry_at = None;
                    sub.renews_at = None;
                    sub.ends_at = Some(at);
                }
            }
            if s.status != sub.status {
                self.emit_subscription(account, EventName::SubscriptionUpdated, id, at);
            }
            return;
        }
        self.settle(account, order, at);
        let interval = s.product.billing_interval().unwrap_or("month").to_owned();
        let period_start = s.renews_at.unwrap_or(at);
        let sub = self.accounts[account]
            .subscriptions
            .get_mut(&id)
            .expect("known");
        sub.status = SubscriptionStatus::Active;
        sub.failed_charges = 0;
        sub.next_retry_at = None;
        sub.lapsed_at = None;
        sub.granted_from.get_or_insert(at);
        sub.renews_at = Some(add_interval(period_start, &interval));
        sub.updated_at = at;
        let event =
            if s.status == SubscriptionStatus::Active || s.status == SubscriptionStatus::Delayed {
                EventName::SubscriptionRenewed
            } else {
                EventName::SubscriptionUpdated
            };
        self.emit_subscription(account, event, id, at);
        self.emit_order(account, EventName::OrderPaid, order, at);
    }

    /// An invoice unpaid at its due date: the subscription waiting for it
    /// is `unpaid` (API.md section 6); the order stays unpaid, no longer due.
    pub(super) fn invoice_overdue(&mut self, account: usize, order: u64, at: DateTime<Utc>) {
        let o = self.accounts[account]
            .orders
            .get_mut(&order)
            .expect("known");
        o.due_at = None;
        let sub = o.subscription_id;
        if let Some(id) = sub
            && self.accounts[account].subscriptions[&id].status == SubscriptionStatus::Pending
        {
            self.set_status(account, id, SubscriptionStatus::Unpaid, at);
            let s = self.accounts[account]
                .subscriptions
                .get_mut(&id)
                .expect("known");
            s.updated_at = at;
            self.emit_subscription(account, EventName::SubscriptionUpdated, id, at);
        }
    }

    /// The customer pays invoice `order`, due and not yet overdue.
    pub(crate) fn pay_open_invoice(
        &mut self,
        account: usize,
        order: u64,
        now: DateTime<Utc>,
    ) -> Result<(), Refusal> {
        let o = self.accounts[account]
            .orders
            .get(&order)
            .ok_or(Refusal::NotFound)?;
        if o.state != OrderState::Pending || o.due_at.is_none() {
            return Err(Refusal::invalid(
                "order",
                "This order is not an open invoice (paid, or overdue).",
            ));
        }
        self.pay_invoice(account, order, now);
        Ok(())
    }

    /// The customer paid invoice `order`: paid, and the subscription that
    /// waited for it is active from now.
    pub(crate) fn pay_invoice(&mut self, account: usize, order: u64, at: DateTime<Utc>) {
        self.settle(account, order, at);
        let sub = self.accounts[account].orders[&order].subscription_id;
        if let Some(id) = sub {
            let s = self.accounts[account]
                .subscriptions
                .get_mut(&id)
                .expect("known");
            if s.status == SubscriptionStatus::Pending {
                let interval = s.product.billing_interval().unwrap_or("month").to_owned();
                s.status = SubscriptionStatus::Active;
                s.renews_at = Some(add_interval(at, &interval));
                s.updated_at = at;
                s.granted_from.get_or_insert(at);
                self.emit_order(account, EventName::OrderPaid, order, at);
                self.emit_subscription(account, EventName::SubscriptionCreated, id, at);
                return;
            }
        }
        self.emit_order(account, EventName::OrderPaid, order, at);
    }

    pub(super) fn settle(&mut self, account: usize, order: u64, _at: DateTime<Utc>) {
        let remote = format!("ch_fake_{order}");
        let o = self.accounts[account]
            .orders
            .get_mut(&order)
            .expect("known order");
        o.state = OrderState::Paid;
        o.due_at = None;
        if o.billing_method.kind == BillingMethodKind::Stripe {
            o.remote_id = Some(remote);
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn new_order(
        &mut self,
        account: usize,
        subscription: Option<u64>,
        product: &Product,
        price: i64,
        vat: i64,
        description: Option<String>,
        at: DateTime<Utc>,
    ) -> u64 {
        let id = self.id(88_000_000);
        let (customer_id, billing_method, reference_id, reference_name) = match subscription {
            Some(s) => {
                let s = &self.accounts[account].subscriptions[&s];
                (
                    s.customer_id,
                    s.billing_method.clone(),
                    s.reference_id.clone(),
                    s.reference_name.clone(),
                )
            }
            None => (0, BillingMethod::default(), None, None),
        };
        self.accounts[account].orders.insert(
            id,
            FakeOrder {
                id,
                subscription_id: subscription,
                customer_id,
                state: OrderState::Pending,
                currency: product.currency.clone(),
                reference_id,
                reference_name,
                billing_method,
                items: vec![(
                    product.clone(),
                    description.unwrap_or_else(|| product.name.clone()),
                    1,
                    price,
                    vat,
                )],
                remote_id: None,
                due_at: None,
                created_at: at,
            },
        );
        id
    }
}
