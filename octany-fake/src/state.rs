//! The fake's books: accounts, catalog, subscriptions, orders, endpoints,
//! and the life cycle that moves them on the virtual clock.

use std::collections::{BTreeMap, HashMap, VecDeque};

use chrono::{DateTime, Duration, Months, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::{Value, json};

use super::catalog::{FakeProduct, FakeProductGroup};
use super::faults::Faults;
use crate::wire::{
    self, BillingMethod, BillingMethodKind, Company, EventName, Order, OrderItem, OrderState,
    Person, Product, Subscription, SubscriptionStatus,
};
use octany_actix::model::ProductId;

/// How the fake's life cycle is timed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct LifeCycle {
    /// Days from an invoice checkout until its invoice is paid.
    pub invoice_due_days: u32,
    /// Days after a failed renewal at which it is retried; after the last
    /// failed retry the subscription is `unpaid`.
    pub retry_schedule_days: Vec<u32>,
    /// Days until a `future_start` subscription starts, when the checkout
    /// gives no `startDate`.
    pub future_start_days: u32,
}

impl Default for LifeCycle {
    fn default() -> Self {
        Self {
            invoice_due_days: 14,
            retry_schedule_days: vec![1, 3, 5],
            future_start_days: 7,
        }
    }
}

/// A subscription as the fake keeps it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FakeSubscription {
    /// Its id.
    pub id: u64,
    /// The customer's id.
    pub customer_id: u64,
    /// The product, as it was when bought or swapped to.
    pub product: Product,
    /// Price in minor units, VAT excluded.
    pub price: i64,
    /// VAT in minor units.
    pub vat: i64,
    /// Currency.
    pub currency: String,
    /// Status.
    pub status: SubscriptionStatus,
    /// Next charge.
    pub renews_at: Option<DateTime<Utc>>,
    /// End.
    pub ends_at: Option<DateTime<Utc>>,
    /// The app's buyer id.
    pub reference_id: Option<String>,
    /// The label.
    pub reference_name: Option<String>,
    /// How it is paid.
    pub billing_method: BillingMethod,
    /// Whether the next charge of its card fails.
    pub card_failing: bool,
    /// Failed charges in the current retry round.
    pub failed_charges: u32,
    /// When a delayed renewal is retried next.
    pub next_retry_at: Option<DateTime<Utc>>,
    /// When Octany first granted access (active or trialing).
    pub granted_from: Option<DateTime<Utc>>,
    /// When Octany stopped granting access (a failed renewal's due time,
    /// or the end of a cancelled period); `None` while it grants.
    pub lapsed_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// An order as the fake keeps it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FakeOrder {
    /// Its id.
    pub id: u64,
    /// The subscription it belongs to, if any.
    pub subscription_id: Option<u64>,
    /// The customer's id.
    pub customer_id: u64,
    /// State.
    pub state: OrderState,
    /// Currency.
    pub currency: String,
    /// The app's buyer id.
    pub reference_id: Option<String>,
    /// The label.
    pub reference_name: Option<String>,
    /// How it is paid.
    pub billing_method: BillingMethod,
    /// Lines: product, description, quantity, unit price, unit VAT.
    pub items: Vec<(Product, String, i64, i64, i64)>,
    /// The card processor's charge id, once paid by card.
    pub remote_id: Option<String>,
    /// When an invoice falls due (and is paid, in the fake).
    pub due_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
}

/// A registered webhook endpoint.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct FakeEndpoint {
    /// Its id.
    pub id: u64,
    /// Where deliveries go.
    pub url: String,
    /// The signing secret (Octany's API does not return it; the fake's
    /// Rust and control APIs do).
    pub secret: String,
}

impl std::fmt::Debug for FakeEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeEndpoint")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("secret", &"***")
            .finish()
    }
}

/// One Octany account in the fake.
#[derive(Clone, Serialize)]
pub struct FakeAccount {
    /// The account UUID (in API paths).
    pub uuid: String,
    /// The API key.
    pub api_key: String,
    /// Octany's numeric account id (in webhook envelopes).
    pub numeric_id: u64,
    /// Products by id.
    pub products: BTreeMap<i64, FakeProduct>,
    /// Product groups by id.
    pub product_groups: BTreeMap<i64, FakeProductGroup>,
    /// Subscriptions by id.
    pub subscriptions: BTreeMap<u64, FakeSubscription>,
    /// Orders by id.
    pub orders: BTreeMap<u64, FakeOrder>,
    /// Webhook endpoints.
    pub endpoints: Vec<FakeEndpoint>,
    #[serde(skip)]
    customers: HashMap<String, u64>,
}

impl std::fmt::Debug for FakeAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeAccount")
            .field("uuid", &self.uuid)
            .field("api_key", &"***")
            .field("products", &self.products.len())
            .field("subscriptions", &self.subscriptions.len())
            .field("endpoints", &self.endpoints)
            .finish_non_exhaustive()
    }
}

/// An event waiting to be turned into deliveries.
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    pub account: usize,
    pub event: EventName,
    pub data: Value,
    pub at: DateTime<Utc>,
}

/// A refusal, as Octany would answer it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    /// 404 `{"message": "Not found."}`.
    #[error("not found")]
    NotFound,
    /// 422 with field errors.
    #[error("{field}: {message}")]
    Invalid {
        /// Field and message.
        field: &'static str,
        /// The message.
        message: String,
    },
    /// The card was declined at checkout; nothing was created.
    #[error("the card was declined")]
    Declined,
}

impl Refusal {
    fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Refusal::Invalid {
            field,
            message: message.into(),
        }
    }
}

/// What a person chose on the fake checkout page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckoutOutcome {
    /// The card is charged: active at once.
    Succeed,
    /// The card is declined: nothing is created.
    Decline,
    /// Pay by invoice: `pending` until the invoice falls due and is paid.
    Invoice,
    /// Start the product's free trial: `trialing`, charged at its end.
    Trial,
    /// Start at a later date: `future_start`, charged then.
    FutureStart,
}

impl std::str::FromStr for CheckoutOutcome {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        serde_json::from_value(Value::String(s.to_owned())).map_err(|_| {
            format!("unknown outcome `{s}`: use succeed, decline, invoice, trial or future_start")
        })
    }
}

/// The buyer's details from the checkout URL.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct CheckoutParams {
    /// `referenceId`.
    pub reference_id: Option<String>,
    /// `referenceName`.
    pub reference_name: Option<String>,
    /// `email`.
    pub email: Option<String>,
    /// `firstName`.
    pub first_name: Option<String>,
    /// `lastName`.
    pub last_name: Option<String>,
    /// `companyName`.
    pub company_name: Option<String>,
    /// `amount`: a price other than the product's.
    pub amount: Option<i64>,
    /// `locale`.
    pub locale: Option<String>,
    /// For `future_start`: when it starts.
    pub start_date: Option<DateTime<Utc>>,
}

/// What a checkout made.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckoutResult {
    /// The subscription, for a recurring product.
    pub subscription: Option<octany_actix::model::Subscription>,
    /// The first order, if one was made.
    pub order: Option<octany_actix::model::Order>,
    /// The customer's id.
    pub customer_id: u64,
}

enum Due {
    Charge(u64),
    Retry(u64),
    Expire(u64),
    Invoice(u64),
}

/// Everything the fake knows, behind one lock.
pub(crate) struct State {
    pub accounts: Vec<FakeAccount>,
    pub faults: Faults,
    pub rng: StdRng,
    pub legacy: bool,
    pub life_cycle: LifeCycle,
    pub base_url: String,
    pub outbox: Vec<Outgoing>,
    pub rate_windows: HashMap<String, VecDeque<DateTime<Utc>>>,
    next_id: u64,
    next_endpoint: u64,
    next_delivery: u64,
}

/// The `product_id` of a request body (a number or a numeric string), or the
/// older `?product=` form; 422 when neither is there.
pub(crate) fn product_id_in(body: &Value, query: Option<&str>) -> Result<i64, Refusal> {
    body["product_id"]
        .as_i64()
        .or_else(|| body["product_id"].as_str().and_then(|p| p.parse().ok()))
        .or_else(|| query.and_then(|p| p.parse().ok()))
        .ok_or_else(|| Refusal::invalid("product_id", "The product id field is required."))
}

fn add_interval(t: DateTime<Utc>, interval: &str) -> DateTime<Utc> {
    let months = |n| t.checked_add_months(Months::new(n)).unwrap_or(t);
    match interval {
        "day" => t + Duration::days(1),
        "week" => t + Duration::weeks(1),
        "quarter" => months(3),
        "half_year" => months(6),
        "year" => months(12),
        _ => months(1),
    }
}

fn days(n: u32) -> Duration {
    Duration::days(i64::from(n))
}

impl State {
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            accounts: Vec::new(),
            faults: Faults::default(),
            rng: StdRng::seed_from_u64(seed),
            legacy: false,
            life_cycle: LifeCycle::default(),
            base_url: String::new(),
            outbox: Vec::new(),
            rate_windows: HashMap::new(),
            next_id: 0,
            next_endpoint: 0,
            next_delivery: 910_000,
        }
    }

    /// Re-seeds the random source of faults and secrets.
    pub(crate) fn reseed(&mut self, seed: u64) {
        self.rng = StdRng::seed_from_u64(seed);
    }

    pub(crate) fn add_account(&mut self, uuid: Option<String>, api_key: Option<String>) -> usize {
        let mut bytes = [0u8; 16];
        self.rng.fill(&mut bytes);
        let uuid = uuid.unwrap_or_else(|| {
            uuid::Builder::from_random_bytes(bytes)
                .into_uuid()
                .to_string()
        });
        let api_key = api_key.unwrap_or_else(|| self.random_text(40));
        self.accounts.push(FakeAccount {
            uuid,
            api_key,
            numeric_id: 1042 + self.accounts.len() as u64,
            products: BTreeMap::new(),
            product_groups: BTreeMap::new(),
            subscriptions: BTreeMap::new(),
            orders: BTreeMap::new(),
            endpoints: Vec::new(),
            customers: HashMap::new(),
        });
        self.accounts.len() - 1
    }

    pub(crate) fn random_text(&mut self, len: usize) -> String {
        const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        (0..len)
            .map(|_| CHARS[self.rng.random_range(0..CHARS.len())] as char)
            .collect()
    }

    fn id(&mut self, base: u64) -> u64 {
        self.next_id += 1;
        base + self.next_id
    }

    pub(crate) fn delivery_id(&mut self) -> u64 {
        self.next_delivery += 1;
        self.next_delivery
    }

    pub(crate) fn account_index(&self, uuid: &str) -> Option<usize> {
        self.accounts.iter().position(|a| a.uuid == uuid)
    }

    fn emit(&mut self, account: usize, event: EventName, data: Value, at: DateTime<Utc>) {
        self.outbox.push(Outgoing {
            account,
            event,
            data,
            at,
        });
    }

    fn emit_subscription(&mut self, account: usize, event: EventName, id: u64, at: DateTime<Utc>) {
        let data = json!(self.subscription_view(account, id));
        self.emit(account, event, data, at);
    }

    fn emit_order(&mut self, account: usize, event: EventName, id: u64, at: DateTime<Utc>) {
        let data = json!(self.order_view(account, id));
        self.emit(account, event, data, at);
    }

    // ---- views, as the REST API shows them ----

    pub(crate) fn subscription_view(&self, account: usize, id: u64) -> Subscription {
        let s = &self.accounts[account].subscriptions[&id];
        let portal = |what: &str| format!("{}/_fake/portal/{}/{what}", self.base_url, s.id);
        Subscription {
            id: s.id,
            customer_id: s.customer_id,
            price: s.price,
            vat: s.vat,
            currency: s.currency.clone(),
            renews_at: s.renews_at,
            ends_at: s.ends_at,
            reference_id: s.reference_id.clone(),
            reference_name: s.reference_name.clone(),
            status: s.status,
            product: s.product.clone(),
            billing_method: s.billing_method.clone(),
            update_card_url: portal("card"),
            invoices_url: portal("invoices"),
            cancel_url: portal("cancel"),
        }
    }

    pub(crate) fn order_view(&self, account: usize, id: u64) -> Order {
        let o = &self.accounts[account].orders[&id];
        let total: i64 = o.items.iter().map(|(_, _, q, p, _)| q * p).sum();
        let vat: i64 = o.items.iter().map(|(_, _, q, _, v)| q * v).sum();
        Order {
            id: o.id,
            customer_id: o.customer_id,
            total,
            total_with_vat: total + vat,
            currency: o.currency.clone(),
            reference_id: o.reference_id.clone(),
            reference_name: o.reference_name.clone(),
            state: o.state,
            remote_id: o.remote_id.clone(),
            billing_method: o.billing_method.clone(),
            items: o
                .items
                .iter()
                .map(|(product, description, quantity, price, vat)| OrderItem {
                    description: description.clone(),
                    quantity: *quantity,
                    price: *price,
                    vat: *vat,
                    product: product.clone(),
                })
                .collect(),
        }
    }

    // ---- the life cycle ----

    /// Applies every transition due at or before `now`, in time order.
    pub(crate) fn tick(&mut self, now: DateTime<Utc>) {
        while let Some((at, account, due)) = self.next_due().filter(|(at, _, _)| *at <= now) {
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
                Due::Invoice(order) => self.pay_invoice(account, order, at),
            }
        }
    }

    fn next_due(&self) -> Option<(DateTime<Utc>, usize, Due)> {
        let mut best: Option<(DateTime<Utc>, usize, Due)> = None;
        let mut consider = |at: Option<DateTime<Utc>>, account: usize, due: Due| {
            if let Some(at) = at
                && best.as_ref().is_none_or(|(b, _, _)| at < *b)
            {
                best = Some((at, account, due));
            }
        };
        for (a, account) in self.accounts.iter().enumerate() {
            for s in account.subscriptions.values() {
                use SubscriptionStatus as S;
                match s.status {
                    S::Active | S::Trialing | S::FutureStart => {
                        consider(s.renews_at, a, Due::Charge(s.id))
                    }
                    S::Delayed => consider(s.next_retry_at, a, Due::Retry(s.id)),
                    S::Cancelled => consider(s.ends_at, a, Due::Expire(s.id)),
                    _ => {}
                }
            }
            for o in account.orders.values() {
                if o.state == OrderState::Pending {
                    consider(o.due_at, a, Due::Invoice(o.id));
                }
            }
        }
        best
    }

    fn set_status(
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
    fn charge_period(&mut self, account: usize, id: u64, at: DateTime<Utc>) {
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

    fn pay_invoice(&mut self, account: usize, order: u64, at: DateTime<Utc>) {
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

    fn settle(&mut self, account: usize, order: u64, _at: DateTime<Utc>) {
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
    fn new_order(
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

    // ---- what the API and the checkout do ----

    fn product(&self, account: usize, id: i64) -> Result<FakeProduct, Refusal> {
        self.accounts[account]
            .products
            .get(&id)
            .cloned()
            .ok_or_else(|| Refusal::invalid("product_id", "The selected product id is invalid."))
    }

    fn customer(&mut self, account: usize, email: Option<&str>) -> u64 {
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
    fn confirm_order(&mut self, account: usize, id: u64, invoice: bool, now: DateTime<Utc>) {
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

    fn subscription_mut(
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
            .or_else(|| body["subscription_id"].as_str().and_then(|s| s.trim().parse().ok()))
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

impl FakeAccount {
    /// The product's id list, for a quick look.
    pub fn product_ids(&self) -> Vec<ProductId> {
        self.products.keys().map(|id| ProductId(*id)).collect()
    }
}
