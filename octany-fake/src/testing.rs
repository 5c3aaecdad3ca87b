//! A test kit for your app's billing tests (feature `testing`).
//!
//! [`TestBillingBuilder::start`] wires the library to an in-process fake Octany on
//! a fresh, migrated SQLite database, in one call: the fake's sample
//! catalog, an [`Octany`] on the fake's clock, the catalog synced, and the
//! fake's signed webhooks delivered to a receiver the kit serves, so every
//! change reaches the mirror the way it does in production. Hand
//! [`TestBilling::octany`] to the app you test (`App::app_data`, and
//! `octany.scope::<User>()` for the mounted routes), then drive billing
//! from the test:
//!
//! ```
//! use octany_actix::Billable;
//! use octany_fake::testing::TestBilling;
//!
//! #[derive(octany_actix::Plan, Clone, Copy, Debug, PartialEq, Eq)]
//! enum Plans {
//!     #[plan(product = 1225)]
//!     Pro,
//!     #[plan(product = 1227)]
//!     Basic,
//! }
//!
//! struct Team(i64);
//! impl Billable for Team {
//!     fn billable_type(&self) -> &'static str { "team" }
//!     fn billable_id(&self) -> String { self.0.to_string() }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let kit = TestBilling::builder().plans::<Plans>().start().await.unwrap();
//! kit.subscribe(&Team(1), Plans::Basic).await.unwrap();
//! let billing = kit.octany().billing(&Team(1));
//! assert!(billing.subscribed_to(Plans::Basic).await.unwrap());
//! assert!(!billing.subscribed_to(Plans::Pro).await.unwrap());
//! // Events of one instant come in the order of their names.
//! assert_eq!(kit.event_kinds(&Team(1)).await.unwrap(), ["order.paid", "subscription.started"]);
//! # kit.stop().await;
//! # }
//! ```
//!
//! An app that makes its own fake and `Octany` (as the starter does) uses
//! the same helpers through [`TestBilling::attach`]. Signing a user in is
//! your app's own (its session or token): the kit acts for a billable by
//! its [`Billable`] reference, as Octany's checkout does.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpServer};
use octany_actix::model::{BillableRef, SubscriptionId};
use octany_actix::rows::SubscriptionRow;
use octany_actix::sync::Event;
use octany_actix::{Billable, BillingError, Octany, OctanyBuilder, Plan};
use octany_actix_migrations::MigratorTrait;
use sea_orm::{DatabaseConnection, DbErr};

use crate::{
    CheckoutOutcome, CheckoutParams, CheckoutResult, FakeOctany, FakeOctanyBuilder, Refusal,
};

/// The webhook secret between the kit's fake and its receiver.
const SECRET: &str = "octany-fake-testing-secret-0123456789";

/// What a helper of the kit could not do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestKitError {
    /// The fake refused, as Octany would (a declined card is not a refusal:
    /// it is an outcome).
    #[error("the fake Octany refused: {0}")]
    Refused(#[from] Refusal),
    /// The library failed.
    #[error(transparent)]
    Billing(#[from] BillingError),
    /// The database failed.
    #[error("the test database failed: {0}")]
    Database(#[from] DbErr),
    /// The kit could not start (the fake, the database, the receiver).
    #[error("the test kit could not start: {0}")]
    Start(String),
    /// The billable holds no subscription at the fake for that.
    #[error("{0} has no subscription at the fake Octany; subscribe it first")]
    NoSubscription(BillableRef),
}

impl From<octany_actix::sync::SyncError> for TestKitError {
    fn from(error: octany_actix::sync::SyncError) -> Self {
        Self::Billing(error.into())
    }
}

type Configure = Box<dyn FnOnce(OctanyBuilder) -> OctanyBuilder>;

/// Configures a [`TestBilling`]: the fake, the database, the `Octany`.
#[must_use]
pub struct TestBillingBuilder {
    fake: FakeOctanyBuilder,
    db: Option<DatabaseConnection>,
    configure: Vec<Configure>,
}

impl std::fmt::Debug for TestBillingBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestBillingBuilder")
            .field("fake", &self.fake)
            .field("configure", &self.configure.len())
            .finish_non_exhaustive()
    }
}

impl TestBillingBuilder {
    /// Changes the fake (default: [`crate::sample_catalog`], at the real
    /// time): products, faults, a start time.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use octany_fake::{FakeProduct, testing::TestBilling};
    /// let kit = TestBilling::builder()
    ///     .fake(|fake| fake.product(FakeProduct::recurring(7, "Team", 19900, "month")))
    ///     .start()
    ///     .await
    ///     .unwrap();
    /// assert!(kit.octany().products().await.unwrap().iter().any(|p| p.id.0 == 7));
    /// # kit.stop().await;
    /// # }
    /// ```
    pub fn fake(mut self, change: impl FnOnce(FakeOctanyBuilder) -> FakeOctanyBuilder) -> Self {
        self.fake = change(self.fake);
        self
    }

    /// Mirrors into `db` (migrated by the kit) instead of a fresh SQLite
    /// database in memory: your app's own, or a PostgreSQL or MySQL one.
    pub fn database(mut self, db: DatabaseConnection) -> Self {
        self.db = Some(db);
        self
    }

    /// The plans the app sells ([`OctanyBuilder::plans`]).
    pub fn plans<P: Plan>(self) -> Self {
        self.configure(|octany| octany.plans::<P>())
    }

    /// Anything else of the app's `Octany` (listeners, access policy,
    /// one-off products, paths). The kit sets the configuration, the public
    /// URL and the clock.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use octany_actix::model::AccessPolicy;
    /// use octany_fake::testing::TestBilling;
    /// let kit = TestBilling::builder()
    ///     .configure(|octany| octany.access_policy(AccessPolicy { invoice_grants_access: true, ..AccessPolicy::default() }))
    ///     .start()
    ///     .await
    ///     .unwrap();
    /// assert!(kit.octany().settings().policy.invoice_grants_access);
    /// # kit.stop().await;
    /// # }
    /// ```
    pub fn configure(
        mut self,
        change: impl FnOnce(OctanyBuilder) -> OctanyBuilder + 'static,
    ) -> Self {
        self.configure.push(Box::new(change));
        self
    }

    /// Starts the fake, migrates the database, builds the `Octany` on the
    /// fake's clock, serves its webhook receiver (the fake's endpoint), and
    /// syncs the catalog.
    pub async fn start(self) -> Result<TestBilling, TestKitError> {
        let start = |what: &str, error: &dyn std::fmt::Display| {
            TestKitError::Start(format!("{what}: {error}"))
        };
        let fake = self.fake.start().await.map_err(|e| start("the fake", &e))?;
        let db = match self.db {
            Some(db) => db,
            None => sea_orm::Database::connect("sqlite::memory:")
                .await
                .map_err(|e| start("SQLite in memory", &e))?,
        };
        octany_actix_migrations::Migrator::up(&db, None)
            .await
            .map_err(|e| start("the migrations", &e))?;
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| start("a port", &e))?;
        let url = format!(
            "http://{}",
            listener.local_addr().map_err(|e| start("a port", &e))?
        );
        let mut builder = Octany::builder(fake.config().with_webhook_secret(SECRET), db)
            .public_base_url(&url)
            .clock(fake.app_clock());
        for change in self.configure {
            builder = change(builder);
        }
        let octany = builder.build().map_err(|e| start("the Octany", &e))?;
        fake.add_webhook_endpoint(
            &format!("{url}{}/webhook", octany.settings().billing_path),
            Some(SECRET),
        );
        let served = octany.clone();
        let server = HttpServer::new(move || App::new().service(served.scope::<Nobody>()))
            .workers(1)
            .listen(listener)
            .map_err(|e| start("the receiver", &e))?
            .run();
        let handle = server.handle();
        tokio::spawn(server);
        octany.sync_products().await?;
        Ok(TestBilling {
            fake,
            octany,
            server: Some(handle),
            bought_for: Mutex::default(),
        })
    }
}

/// The kit's receiver serves only the webhook: no one is signed in there.
struct Nobody;

impl Billable for Nobody {
    fn billable_id(&self) -> String {
        String::new()
    }
}

impl actix_web::FromRequest for Nobody {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(_: &actix_web::HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        std::future::ready(Err(actix_web::error::ErrorNotFound(
            "the test kit serves only the webhook receiver",
        )))
    }
}

/// The library wired to a fake Octany, with helpers that act as Octany and
/// its customers would. See [the module](self).
pub struct TestBilling {
    fake: FakeOctany,
    octany: Octany,
    server: Option<ServerHandle>,
    /// The billables the kit bought for: brought up to date by
    /// [`TestBilling::sync`] after webhooks were dropped.
    bought_for: Mutex<BTreeSet<BillableRef>>,
}

impl std::fmt::Debug for TestBilling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestBilling")
            .field("fake", &self.fake)
            .finish_non_exhaustive()
    }
}

impl TestBilling {
    /// A builder: the sample catalog, SQLite in memory, no plans.
    pub fn builder() -> TestBillingBuilder {
        TestBillingBuilder {
            fake: FakeOctany::builder().sample_catalog(),
            db: None,
            configure: Vec::new(),
        }
    }

    /// The helpers, for an app that made its own fake and `Octany` (whose
    /// webhooks already reach it, and which reads `fake.app_clock()`).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use octany_fake::testing::TestBilling;
    /// let started = TestBilling::builder().start().await.unwrap();
    /// let kit = TestBilling::attach(started.fake(), started.octany());
    /// assert_eq!(kit.now(), started.fake().now());
    /// # started.stop().await;
    /// # }
    /// ```
    pub fn attach(fake: &FakeOctany, octany: &Octany) -> TestBilling {
        TestBilling {
            fake: fake.clone(),
            octany: octany.clone(),
            server: None,
            bought_for: Mutex::default(),
        }
    }

    /// The app's billing: register it with `App::app_data` and mount
    /// `scope::<User>()` in the app under test.
    pub fn octany(&self) -> &Octany {
        &self.octany
    }

    /// The fake Octany, for what the helpers do not cover.
    pub fn fake(&self) -> &FakeOctany {
        &self.fake
    }

    /// The database the mirror writes.
    pub fn db(&self) -> &DatabaseConnection {
        self.octany.syncer().db()
    }

    /// Octany's time, which the app reads too.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.fake.now()
    }

    // ---- buying ----

    /// `billable` buys `plan` at the hosted checkout and pays by card; the
    /// webhooks are delivered (unless held or dropped) and the mirror's row
    /// is returned.
    pub async fn subscribe<P: Plan>(
        &self,
        billable: &impl Billable,
        plan: P,
    ) -> Result<SubscriptionRow, TestKitError> {
        self.checkout(billable, plan.product_id().0, CheckoutOutcome::Succeed)
            .await?;
        self.subscription(billable).await
    }

    /// `billable` picks `outcome` at the hosted checkout of `product` (a
    /// plan's or a one-off product's id): a trial, an invoice, a declined
    /// card. Returns what the fake made, once its webhooks are answered.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # use octany_actix::Billable;
    /// use octany_fake::{CheckoutOutcome, Refusal, testing::{TestBilling, TestKitError}};
    /// # struct User(i64);
    /// # impl Billable for User { fn billable_id(&self) -> String { self.0.to_string() } }
    /// let kit = TestBilling::builder().start().await.unwrap();
    /// let declined = kit.checkout(&User(1), 1225, CheckoutOutcome::Decline).await;
    /// assert!(matches!(declined, Err(TestKitError::Refused(Refusal::Declined))));
    /// let trial = kit.checkout(&User(1), 1225, CheckoutOutcome::Trial).await.unwrap();
    /// assert_eq!(trial.subscription.unwrap().status.as_str(), "trialing");
    /// assert!(kit.octany().billing(&User(1)).on_trial().await.unwrap());
    /// # kit.stop().await;
    /// # }
    /// ```
    pub async fn checkout(
        &self,
        billable: &impl Billable,
        product: i64,
        outcome: CheckoutOutcome,
    ) -> Result<CheckoutResult, TestKitError> {
        let reference = billable.billable_ref();
        let params = CheckoutParams {
            reference_id: Some(reference.as_str().to_owned()),
            email: billable.billing_email(),
            reference_name: billable.billing_name(),
            ..CheckoutParams::default()
        };
        let made = self.fake.checkout(product, &params, outcome)?;
        self.bought_for
            .lock()
            .expect("not poisoned")
            .insert(reference);
        self.fake.settled().await;
        Ok(made)
    }

    /// The mirror's current subscription of `billable` (default group).
    async fn subscription(
        &self,
        billable: &impl Billable,
    ) -> Result<SubscriptionRow, TestKitError> {
        self.octany
            .billing(billable)
            .subscription()
            .await?
            .ok_or_else(|| TestKitError::NoSubscription(billable.billable_ref()))
    }

    /// `billable`'s subscriptions at the fake (Octany's truth).
    fn held(&self, billable: &impl Billable) -> Vec<SubscriptionId> {
        let reference = billable.billable_ref();
        self.fake
            .subscriptions()
            .into_iter()
            .filter(|s| s.reference_id.as_deref() == Some(reference.as_str()))
            .map(|s| s.id)
            .collect()
    }

    // ---- after the checkout ----

    /// Makes `billable`'s card fail (`true`) or pay again (`false`): its
    /// next renewal goes `delayed`, is retried after 1, 3 and 5 days, then
    /// `unpaid`; a card fixed in between pays at the next retry.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # use octany_actix::Billable;
    /// # #[derive(octany_actix::Plan, Clone, Copy, Debug, PartialEq, Eq)] enum Plans { #[plan(product = 1227)] Basic }
    /// # struct User(i64);
    /// # impl Billable for User { fn billable_id(&self) -> String { self.0.to_string() } }
    /// use octany_fake::testing::TestBilling;
    /// let kit = TestBilling::builder().plans::<Plans>().start().await.unwrap();
    /// kit.subscribe(&User(1), Plans::Basic).await.unwrap();
    /// kit.fail_payments(&User(1), true).unwrap();
    /// let renewal = kit.renew(&User(1)).await.unwrap();
    /// assert_eq!(renewal.status.as_str(), "delayed");
    /// assert!(kit.event_kinds(&User(1)).await.unwrap().contains(&"payment.failed".to_owned()));
    /// # kit.stop().await;
    /// # }
    /// ```
    pub fn fail_payments(
        &self,
        billable: &impl Billable,
        failing: bool,
    ) -> Result<(), TestKitError> {
        let held = self.held(billable);
        if held.is_empty() {
            return Err(TestKitError::NoSubscription(billable.billable_ref()));
        }
        for id in held {
            self.fake.set_card_failing(&id, failing)?;
        }
        Ok(())
    }

    /// Moves the clock just past `billable`'s next renewal (or the end of
    /// its trial), so Octany charges it (or fails to), and returns the
    /// mirror's row once the webhooks are answered.
    pub async fn renew(&self, billable: &impl Billable) -> Result<SubscriptionRow, TestKitError> {
        let current = self.subscription(billable).await?;
        let due = current
            .renews_at
            .ok_or_else(|| TestKitError::NoSubscription(billable.billable_ref()))?;
        let wait =
            (due - self.now()).max(chrono::TimeDelta::zero()) + chrono::TimeDelta::seconds(1);
        self.advance(wait.to_std().unwrap_or_default()).await;
        self.subscription(billable).await
    }

    /// `billable` cancels at Octany (its portal): the subscription runs to
    /// the end of its paid period; returns the mirror's row once the
    /// webhooks are answered. (The app's own cancel is
    /// `octany.billing(&billable).cancel()` or the mounted cancel route.)
    pub async fn cancel(&self, billable: &impl Billable) -> Result<SubscriptionRow, TestKitError> {
        let held = self.held(billable);
        let Some(id) = held.first() else {
            return Err(TestKitError::NoSubscription(billable.billable_ref()));
        };
        self.fake.cancel_subscription(id)?;
        self.fake.settled().await;
        self.subscription(billable).await
    }

    // ---- time and webhooks ----

    /// Moves Octany's clock (the app's too) forward; renewals, retries,
    /// trials and period ends fall due in order, and their webhooks are
    /// answered before this returns.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # use octany_actix::Billable;
    /// # #[derive(octany_actix::Plan, Clone, Copy, Debug, PartialEq, Eq)] enum Plans { #[plan(product = 1227)] Basic }
    /// # struct User(i64);
    /// # impl Billable for User { fn billable_id(&self) -> String { self.0.to_string() } }
    /// use octany_fake::testing::TestBilling;
    /// let kit = TestBilling::builder().plans::<Plans>().start().await.unwrap();
    /// kit.subscribe(&User(1), Plans::Basic).await.unwrap();
    /// kit.cancel(&User(1)).await.unwrap();
    /// assert!(kit.octany().billing(&User(1)).on_grace_period().await.unwrap());
    /// kit.advance_days(32).await;
    /// assert!(!kit.octany().billing(&User(1)).is_paying().await.unwrap());
    /// # kit.stop().await;
    /// # }
    /// ```
    pub async fn advance(&self, by: Duration) {
        self.fake.advance(by);
        self.fake.settled().await;
    }

    /// [`TestBilling::advance`] by whole days.
    pub async fn advance_days(&self, days: u32) {
        self.advance(Duration::from_secs(u64::from(days) * 86_400))
            .await;
    }

    /// Holds the webhooks (`true`: the app hears nothing, as when Octany is
    /// slow; the success page waits) or sends what was held (`false`, and
    /// waits until it is answered).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # use octany_actix::Billable;
    /// # #[derive(octany_actix::Plan, Clone, Copy, Debug, PartialEq, Eq)] enum Plans { #[plan(product = 1227)] Basic }
    /// # struct User(i64);
    /// # impl Billable for User { fn billable_id(&self) -> String { self.0.to_string() } }
    /// use octany_fake::testing::TestBilling;
    /// let kit = TestBilling::builder().plans::<Plans>().start().await.unwrap();
    /// kit.hold_webhooks(true).await;
    /// assert!(kit.subscribe(&User(1), Plans::Basic).await.is_err(), "not heard of yet");
    /// kit.hold_webhooks(false).await;
    /// assert!(kit.octany().billing(&User(1)).subscribed().await.unwrap());
    /// # kit.stop().await;
    /// # }
    /// ```
    pub async fn hold_webhooks(&self, hold: bool) {
        for endpoint in self.fake.webhook_endpoints() {
            if hold {
                self.fake.pause_deliveries(endpoint.id);
            } else {
                self.fake.release_deliveries(endpoint.id);
            }
        }
        self.fake.settled().await;
    }

    /// Drops every webhook from now on (`true`), as a network would; the
    /// app learns only by polling ([`TestBilling::sync`]), the success
    /// page, or the reconcile. `false` delivers again.
    pub fn drop_webhooks(&self, drop: bool) {
        let mut faults = self.fake.faults();
        faults.webhook_drop_rate = if drop { 1.0 } else { 0.0 };
        self.fake.set_faults(faults);
    }

    /// Polls Octany for every billable the kit bought for, as the success
    /// page and the reconcile do.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # use octany_actix::Billable;
    /// # #[derive(octany_actix::Plan, Clone, Copy, Debug, PartialEq, Eq)] enum Plans { #[plan(product = 1227)] Basic }
    /// # struct User(i64);
    /// # impl Billable for User { fn billable_id(&self) -> String { self.0.to_string() } }
    /// use octany_fake::testing::TestBilling;
    /// let kit = TestBilling::builder().plans::<Plans>().start().await.unwrap();
    /// kit.drop_webhooks(true);
    /// assert!(kit.subscribe(&User(1), Plans::Basic).await.is_err(), "the webhook was lost");
    /// kit.sync().await.unwrap();
    /// assert!(kit.octany().billing(&User(1)).subscribed().await.unwrap());
    /// # kit.stop().await;
    /// # }
    /// ```
    pub async fn sync(&self) -> Result<(), TestKitError> {
        let bought_for: Vec<BillableRef> = self
            .bought_for
            .lock()
            .expect("not poisoned")
            .iter()
            .cloned()
            .collect();
        for billable in bought_for {
            self.octany.syncer().sync_billable(&billable).await?;
        }
        Ok(())
    }

    // ---- what the app was told ----

    /// The billing events stored for `billable`, in the order they
    /// happened (those of one instant in the order of their names): what
    /// its listeners were given.
    pub async fn events(&self, billable: &impl Billable) -> Result<Vec<Event>, TestKitError> {
        Ok(self
            .octany
            .syncer()
            .events_of(&billable.billable_ref())
            .await?)
    }

    /// The kinds of [`TestBilling::events`] (`subscription.started`,
    /// `subscription.renewed`, `payment.failed`, `subscription.cancelled`,
    /// `order.paid`, ...).
    pub async fn event_kinds(&self, billable: &impl Billable) -> Result<Vec<String>, TestKitError> {
        Ok(self
            .events(billable)
            .await?
            .iter()
            .map(|e| e.event.kind().to_owned())
            .collect())
    }

    /// Stops the kit's receiver and the fake (an attached kit stops the
    /// fake it was given).
    pub async fn stop(self) {
        if let Some(server) = &self.server {
            server.stop(true).await;
        }
        self.fake.stop().await;
    }
}
