//! The fake's books: accounts, catalog, subscriptions, orders, endpoints,
//! and the life cycle that moves them on the virtual clock. The types and
//! views are here; the life cycle, purchases and account keeping each have
//! a file of their own.

mod account;
mod lifecycle;
mod purchases;

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
    /// Days from an invoice checkout until its invoice falls due. Unpaid by
    /// then ([`FakeOctany::pay_invoice`](crate::FakeOctany::pay_invoice)
    /// pays it), the subscription becomes `unpaid` (API.md section 6).
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
    /// CRM tags per customer (`role`/`roles` at checkout).
    pub(crate) roles: HashMap<u64, std::collections::BTreeSet<String>>,
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
    /// `methods`: the payment methods allowed (empty: all).
    pub methods: Vec<String>,
    /// `role` and `roles`: CRM tags given to the customer.
    pub roles: Vec<String>,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Due {
    Charge(u64),
    Retry(u64),
    Expire(u64),
    Invoice(u64),
}

impl Due {
    /// A stable order among transitions due at the same instant.
    fn order_key(self) -> (u8, u64) {
        match self {
            Due::Charge(id) => (0, id),
            Due::Retry(id) => (1, id),
            Due::Expire(id) => (2, id),
            Due::Invoice(id) => (3, id),
        }
    }
}

/// How many API requests the fake answered, a minute at a time (on its
/// transport clock, the one its rate limit counts on), and how many its
/// per-minute limit refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiRequests {
    /// Requests answered (whatever the answer, once past the rate limit),
    /// by the minute they came in.
    pub per_minute: BTreeMap<DateTime<Utc>, u64>,
    /// Requests refused with 429 because the per-minute limit was reached.
    pub rate_limited: u64,
}

impl ApiRequests {
    /// All requests answered.
    pub fn total(&self) -> u64 {
        self.per_minute.values().sum()
    }

    /// The most answered in one minute.
    pub fn peak_per_minute(&self) -> u64 {
        self.per_minute.values().copied().max().unwrap_or(0)
    }

    pub(crate) fn count(&mut self, at: DateTime<Utc>) {
        let minute = at.timestamp().div_euclid(60) * 60;
        let minute = DateTime::from_timestamp(minute, 0).unwrap_or(at);
        *self.per_minute.entry(minute).or_default() += 1;
    }
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
    /// The API requests answered (past the rate limit) in each minute of
    /// the transport clock, and those refused with 429 by the limit.
    pub api_requests: ApiRequests,
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
            api_requests: ApiRequests::default(),
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
            roles: HashMap::new(),
        });
        self.accounts.len() - 1
    }

    pub(crate) fn random_text(&mut self, len: usize) -> String {
        const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        (0..len)
            .map(|_| CHARS[self.rng.random_range(0..CHARS.len())] as char)
            .collect()
    }

    pub(super) fn id(&mut self, base: u64) -> u64 {
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

    pub(super) fn emit(
        &mut self,
        account: usize,
        event: EventName,
        data: Value,
        at: DateTime<Utc>,
    ) {
        self.outbox.push(Outgoing {
            account,
            event,
            data,
            at,
        });
    }

    pub(super) fn emit_subscription(
        &mut self,
        account: usize,
        event: EventName,
        id: u64,
        at: DateTime<Utc>,
    ) {
        let data = json!(self.subscription_view(account, id));
        self.emit(account, event, data, at);
    }

    pub(super) fn emit_order(
        &mut self,
        account: usize,
        event: EventName,
        id: u64,
        at: DateTime<Utc>,
    ) {
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
}

impl FakeAccount {
    /// The id of the customer with this e-mail, if one bought.
    pub(crate) fn customer_id(&self, email: &str) -> Option<u64> {
        self.customers.get(email).copied()
    }

    /// The product's id list, for a quick look.
    pub fn product_ids(&self) -> Vec<ProductId> {
        self.products.keys().map(|id| ProductId(*id)).collect()
    }
}
