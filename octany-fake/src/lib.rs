//! A stateful, in-process fake Octany.
//!
//! A real HTTP server on 127.0.0.1 that follows Octany's API contract
//! (`shared/octany/API.md`): accounts and keys, every REST endpoint, the
//! hosted checkout page, the subscription life cycle on a virtual clock,
//! signed webhooks sent asynchronously and retried, and fault injection.
//! Point any app at it by setting `OCTANY_API_URL` and
//! `OCTANY_CHECKOUT_URL` to its [`FakeOctany::api_url`] and
//! [`FakeOctany::checkout_url`], or take [`FakeOctany::config`].
//!
//! Its control API lives under `/_fake/` (clearly not Octany's): the
//! clock, faults, products, deliveries, a state dump, and an HTML page.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use octany_fake::{CheckoutOutcome, CheckoutParams, FakeOctany};
//!
//! let fake = FakeOctany::builder().sample_catalog().start().await?;
//! fake.add_webhook_endpoint("http://127.0.0.1:8080/billing/webhook", Some("0123456789abcdef0123456789abcdef"));
//! let bought = fake
//!     .checkout(1225, &CheckoutParams { reference_id: Some("user:42".into()), ..Default::default() }, CheckoutOutcome::Succeed)
//!     .unwrap();
//! fake.advance_months(1); // renews: order.paid and subscription.renewed go out
//! fake.settled().await;   // every delivery answered (or given up)
//! # Ok(()) }
//! ```

mod api;
mod builder;
mod catalog;
mod checkout;
mod control;
mod deliveries;
mod faults;
mod php_json;
mod state;
#[cfg(feature = "testing")]
pub mod testing;
pub mod wire;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Months, Utc};
use rand::Rng;
use serde::Serialize;
use serde_json::Value;

use octany_actix::clock::{Clock, ManualClock, SharedClock, SystemClock};
use octany_actix::config::OctanyConfig;
use octany_actix::model::{Order, OrderId, Subscription, SubscriptionId};
use wire::timestamp as format_timestamp;

pub use catalog::{FakeProduct, FakeProductGroup, sample_catalog};
pub use deliveries::{DeliveryAttempt, DeliveryPolicy, DeliveryRecord, DeliveryStatus};
pub use faults::Faults;
pub use php_json::{SIGNATURE_HEADER, php_json_encode, sign};
pub use state::{
    ApiRequests, CheckoutOutcome, CheckoutParams, CheckoutResult, FakeAccount, FakeEndpoint,
    FakeOrder, FakeSubscription, LifeCycle, Refusal,
};

pub use builder::FakeOctanyBuilder;

use deliveries::{Dispatcher, Job};
use state::{Outgoing, State};

/// What the fake shares between its server, its dispatcher and its handle.
pub(crate) struct Shared {
    state: Mutex<State>,
    clock: ManualClock,
    transport: SharedClock,
    dispatcher: Dispatcher,
}

#[derive(Serialize)]
struct Envelope<'a> {
    id: u64,
    name: &'a str,
    account: u64,
    created_at: String,
    data: &'a Value,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` on the state brought up to the clock's now, then queues the
    /// webhooks it caused (under the same lock, so they queue in the order
    /// they happened).
    pub(crate) fn with_state<R>(&self, f: impl FnOnce(&mut State, DateTime<Utc>) -> R) -> R {
        let now = self.clock.now();
        let mut state = self.lock();
        state.tick(now);
        let result = f(&mut state, now);
        for outgoing in std::mem::take(&mut state.outbox) {
            self.plan(&mut state, outgoing);
        }
        result
    }

    pub(crate) fn base_url(&self) -> String {
        self.lock().base_url.clone()
    }

    /// One delivery per endpoint of the account, with the faults in force.
    fn plan(&self, state: &mut State, outgoing: Outgoing) {
        let account = &state.accounts[outgoing.account];
        let (numeric, endpoints) = (account.numeric_id, account.endpoints.clone());
        for endpoint in endpoints {
            let id = state.delivery_id();
            let body = php_json_encode(&Envelope {
                id,
                name: outgoing.event.as_str(),
                account: numeric,
                created_at: format_timestamp(&outgoing.at),
                data: &outgoing.data,
            });
            let faults = state.faults.clone();
            let dropped = state.roll(faults.webhook_drop_rate);
            let copies = if dropped {
                0
            } else if state.roll(faults.webhook_duplicate_rate) {
                2
            } else {
                1
            };
            let record = DeliveryRecord {
                delivery_id: id.to_string(),
                event: outgoing.event.as_str().to_owned(),
                endpoint_id: endpoint.id,
                url: endpoint.url.clone(),
                status: if dropped {
                    DeliveryStatus::Dropped
                } else {
                    DeliveryStatus::Pending
                },
                copies,
                attempts: Vec::new(),
                body: String::from_utf8_lossy(&body).into_owned(),
            };
            let body = Arc::new(body);
            let jobs = (0..copies)
                .map(|_| {
                    let mut hold_ms = 0;
                    if state.roll(faults.webhook_delay_rate) {
                        hold_ms = state
                            .rng
                            .random_range(0..=faults.webhook_delay_max_ms.max(1));
                    }
                    if faults.webhook_reorder {
                        let window = if faults.webhook_reorder_window_ms == 0 {
                            200
                        } else {
                            faults.webhook_reorder_window_ms
                        };
                        hold_ms = hold_ms.max(state.rng.random_range(0..=window));
                    }
                    Job {
                        delivery_id: id.to_string(),
                        endpoint_id: endpoint.id,
                        url: endpoint.url.clone(),
                        secret: octany_actix::config::Secret::new(endpoint.secret.clone()),
                        body: body.clone(),
                        hold: (hold_ms > 0).then(|| Duration::from_millis(hold_ms)),
                    }
                })
                .collect();
            self.dispatcher.enqueue(record, jobs);
        }
    }
}

/// Reads the fake's virtual time; waits in real time.
#[derive(Debug)]
struct VirtualNow(ManualClock);

impl Clock for VirtualNow {
    fn now(&self) -> DateTime<Utc> {
        self.0.now()
    }
}

/// A running fake Octany. Dropping it leaves the server running until the
/// runtime ends; [`FakeOctany::stop`] stops it. Clones share the one fake
/// (its state, clock and server).
#[derive(Clone)]
pub struct FakeOctany {
    shared: Arc<Shared>,
    addr: SocketAddr,
    handle: actix_web::dev::ServerHandle,
}

impl std::fmt::Debug for FakeOctany {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeOctany")
            .field("addr", &self.addr)
            .finish()
    }
}

impl FakeOctany {
    /// A builder with no products, no endpoints, no faults.
    pub fn builder() -> FakeOctanyBuilder {
        FakeOctanyBuilder::new()
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The value for `OCTANY_API_URL`.
    pub fn api_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The value for `OCTANY_CHECKOUT_URL`.
    pub fn checkout_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The control API and page.
    pub fn control_url(&self) -> String {
        format!("http://{}/_fake/", self.addr)
    }

    /// The primary account's UUID.
    pub fn account_id(&self) -> String {
        self.shared.lock().accounts[0].uuid.clone()
    }

    /// The primary account's API key.
    pub fn api_key(&self) -> String {
        self.shared.lock().accounts[0].api_key.clone()
    }

    /// A configuration that talks to this fake, with the secrets of every
    /// registered endpoint, and no client-side pacing (add it back with
    /// [`OctanyConfig::with_rate_limit`] when testing against the fake's
    /// rate-limit fault).
    pub fn config(&self) -> OctanyConfig {
        let mut config = OctanyConfig::new(self.account_id(), self.api_key())
            .expect("the fake's account is valid")
            .without_rate_limit()
            .with_api_url(&self.api_url())
            .expect("the fake's URL is valid")
            .with_checkout_url(&self.checkout_url())
            .expect("the fake's URL is valid");
        for endpoint in self.webhook_endpoints() {
            config = config.with_webhook_secret(endpoint.secret);
        }
        config
    }

    /// Adds another account (for tests of keys of another account).
    /// Returns its UUID and key.
    pub fn add_account(&self, products: Vec<FakeProduct>) -> (String, String) {
        let mut state = self.shared.lock();
        let index = state.add_account(None, None);
        for product in products {
            state.accounts[index].products.insert(product.id, product);
        }
        (
            state.accounts[index].uuid.clone(),
            state.accounts[index].api_key.clone(),
        )
    }

    // ---- time ----

    /// The virtual clock (clones share its time). Moving it directly is
    /// fine: the life cycle catches up on the fake's next use.
    pub fn clock(&self) -> ManualClock {
        self.shared.clock.clone()
    }

    /// A clock for an app that talks to this fake: it reads the fake's
    /// virtual time (so "now" agrees with Octany's) but waits in real time
    /// (so the app's back-off does not move billing time).
    pub fn app_clock(&self) -> SharedClock {
        Arc::new(VirtualNow(self.shared.clock.clone()))
    }

    /// A client of this fake, on [`FakeOctany::app_clock`].
    pub fn client(&self) -> octany_actix::OctanyClient {
        octany_actix::OctanyClient::with_clock(self.config(), self.app_clock())
            .expect("the fake's client builds")
    }

    /// The virtual now.
    pub fn now(&self) -> DateTime<Utc> {
        self.shared.clock.now()
    }

    /// Moves the clock forward and applies what fell due, in time order.
    pub fn advance(&self, by: Duration) {
        self.shared.clock.advance(by);
        self.shared.with_state(|_, _| ());
    }

    /// Moves the clock forward by whole days.
    pub fn advance_days(&self, days: u32) {
        self.advance(Duration::from_secs(u64::from(days) * 86_400));
    }

    /// Moves the clock forward by calendar months.
    pub fn advance_months(&self, months: u32) {
        let now = self.now();
        self.set_now(now.checked_add_months(Months::new(months)).unwrap_or(now));
    }

    /// Puts the clock at `instant` and applies what fell due.
    pub fn set_now(&self, instant: DateTime<Utc>) {
        self.shared.clock.set(instant);
        self.shared.with_state(|_, _| ());
    }

    // ---- catalog ----

    /// Adds (or replaces) a product of the primary account.
    pub fn add_product(&self, product: FakeProduct) {
        self.shared
            .with_state(|s, _| s.accounts[0].products.insert(product.id, product));
    }

    /// Adds or changes a product group (fires `product-group.updated`).
    pub fn upsert_product_group(&self, group: FakeProductGroup) {
        self.shared
            .with_state(|s, now| s.upsert_product_group(0, group, now));
    }

    /// Deletes a product group (fires `product-group.deleted`).
    pub fn delete_product_group(&self, id: i64) -> Result<(), Refusal> {
        self.shared
            .with_state(|s, now| s.delete_product_group(0, id, now))
    }

    // ---- buying and billing ----

    /// Does what the hosted checkout does when a person picks `outcome`.
    pub fn checkout(
        &self,
        product: i64,
        params: &CheckoutParams,
        outcome: CheckoutOutcome,
    ) -> Result<CheckoutResult, Refusal> {
        self.shared
            .with_state(|s, now| s.checkout(0, product, params, outcome, now))
    }

    /// Creates `count` active subscriptions to `product` for `user:{first}`,
    /// `user:{first + 1}`, ..., without sending events (for load tests and
    /// benchmarks; a sync or backfill mirrors them).
    pub fn seed_subscriptions(&self, product: i64, first: u64, count: u64) -> Result<(), Refusal> {
        self.shared
            .with_state(|s, now| s.seed_subscriptions(0, product, first, count, now))
    }

    /// Makes the card of a subscription fail (or work again) from its next charge.
    pub fn set_card_failing(
        &self,
        subscription: &SubscriptionId,
        failing: bool,
    ) -> Result<(), Refusal> {
        let id = subscription
            .as_str()
            .parse()
            .map_err(|_| Refusal::NotFound)?;
        self.shared
            .with_state(|s, _| s.set_card_failing(0, id, failing))
    }

    /// The customer cancels `subscription` at Octany (its portal's
    /// `cancel_url`): it runs to the end of its paid period, then expires.
    /// Cancelling a cancelled one again changes nothing.
    pub fn cancel_subscription(
        &self,
        subscription: &SubscriptionId,
    ) -> Result<Subscription, Refusal> {
        let id = subscription
            .as_str()
            .parse()
            .map_err(|_| Refusal::NotFound)?;
        self.shared
            .with_state(|s, now| s.cancel(0, id, now).map(drop))?;
        self.subscription(subscription).ok_or(Refusal::NotFound)
    }

    /// The customer pays the open invoice `order` (an invoice checkout's
    /// first order): it is paid and its subscription active from now.
    /// Unpaid at its due date, the subscription becomes `unpaid` instead.
    pub fn pay_invoice(&self, order: &OrderId) -> Result<(), Refusal> {
        let id = order.as_str().parse().map_err(|_| Refusal::NotFound)?;
        self.shared
            .with_state(|s, now| s.pay_open_invoice(0, id, now))
    }

    /// The CRM tags (`role`/`roles` at checkout) of the customer with this
    /// e-mail.
    pub fn customer_roles(&self, email: &str) -> Vec<String> {
        self.shared.with_state(|s, _| {
            let account = &s.accounts[0];
            account
                .customer_id(email)
                .and_then(|id| account.roles.get(&id))
                .map(|roles| roles.iter().cloned().collect())
                .unwrap_or_default()
        })
    }

    /// A subscription as the API shows it (read by the library's parser).
    pub fn subscription(&self, id: &SubscriptionId) -> Option<Subscription> {
        let id: u64 = id.as_str().parse().ok()?;
        self.shared.with_state(|s, _| {
            s.accounts[0]
                .subscriptions
                .contains_key(&id)
                .then(|| wire::parsed(&s.subscription_view(0, id)))
        })
    }

    /// How many API requests it answered, a minute at a time, and how many
    /// its rate limit refused.
    pub fn api_requests(&self) -> ApiRequests {
        self.shared.with_state(|s, _| s.api_requests.clone())
    }

    /// Every subscription of the primary account, as the API shows them.
    pub fn subscriptions(&self) -> Vec<Subscription> {
        self.shared.with_state(|s, _| {
            let ids: Vec<u64> = s.accounts[0].subscriptions.keys().copied().collect();
            ids.into_iter()
                .map(|id| wire::parsed(&s.subscription_view(0, id)))
                .collect()
        })
    }

    /// One subscription of the primary account as the fake keeps it.
    pub fn subscription_record(&self, id: &SubscriptionId) -> Option<FakeSubscription> {
        let id: u64 = id.as_str().parse().ok()?;
        self.shared
            .with_state(|s, _| s.accounts[0].subscriptions.get(&id).cloned())
    }

    /// Every subscription of the primary account as the fake keeps it
    /// (card failing, when access was granted and when it lapsed, ...).
    pub fn subscription_records(&self) -> Vec<FakeSubscription> {
        self.shared
            .with_state(|s, _| s.accounts[0].subscriptions.values().cloned().collect())
    }

    /// Every order of the primary account, as the API shows them.
    pub fn orders(&self) -> Vec<Order> {
        self.shared.with_state(|s, _| {
            let ids: Vec<u64> = s.accounts[0].orders.keys().copied().collect();
            ids.into_iter()
                .map(|id| wire::parsed(&s.order_view(0, id)))
                .collect()
        })
    }

    /// An order as the API shows it.
    pub fn order(&self, id: &OrderId) -> Option<Order> {
        let id: u64 = id.as_str().parse().ok()?;
        self.shared.with_state(|s, _| {
            s.accounts[0]
                .orders
                .contains_key(&id)
                .then(|| wire::parsed(&s.order_view(0, id)))
        })
    }

    /// Everything the fake holds, as JSON (what `GET /_fake/state` answers).
    pub fn state_json(&self) -> Value {
        self.shared.with_state(|s, now| control::dump(s, now))
    }

    // ---- webhooks ----

    /// Registers an endpoint of the primary account, with `secret` or a
    /// generated 32-character one.
    pub fn add_webhook_endpoint(&self, url: &str, secret: Option<&str>) -> FakeEndpoint {
        self.shared
            .with_state(|s, _| s.add_endpoint(0, url, secret.map(str::to_owned)))
            .expect("a valid http(s) URL")
    }

    /// The primary account's endpoints, secrets included.
    pub fn webhook_endpoints(&self) -> Vec<FakeEndpoint> {
        self.shared.lock().accounts[0].endpoints.clone()
    }

    /// Sends `test.hook` to every endpoint.
    pub fn send_test_hook(&self) {
        self.shared.with_state(|s, now| s.test_hook(0, now));
    }

    /// The delivery log, oldest first.
    pub fn deliveries(&self) -> Vec<DeliveryRecord> {
        self.shared.dispatcher.records()
    }

    /// Waits until every queued delivery has been answered or given up
    /// (held deliveries of paused endpoints excepted).
    pub async fn settled(&self) {
        self.shared.dispatcher.settled().await;
    }

    /// Holds deliveries to an endpoint until [`FakeOctany::release_deliveries`].
    pub fn pause_deliveries(&self, endpoint: u64) {
        self.shared.dispatcher.pause(endpoint);
    }

    /// Sends the held deliveries of an endpoint.
    pub fn release_deliveries(&self, endpoint: u64) {
        self.shared.dispatcher.release(endpoint);
    }

    /// How deliveries are retried from now on.
    pub fn set_delivery_policy(&self, policy: DeliveryPolicy) {
        self.shared.dispatcher.set_policy(policy);
    }

    // ---- faults ----

    /// Switches faults on or off.
    pub fn set_faults(&self, faults: Faults) {
        self.shared.lock().faults = faults;
    }

    /// The faults in force.
    pub fn faults(&self) -> Faults {
        self.shared.lock().faults.clone()
    }

    /// Re-seeds the random source of faults.
    pub fn reseed(&self, seed: u64) {
        self.shared.lock().reseed(seed);
    }

    /// Sends the older pagination spelling from now on (or not).
    pub fn set_legacy_pagination(&self, legacy: bool) {
        self.shared.lock().legacy = legacy;
    }

    /// Stops the server.
    pub async fn stop(self) {
        self.handle.stop(true).await;
    }
}
