//! The one value a host builds: configuration, database, client, syncer,
//! webhook receiver, clock, and the guard's cache.

mod catalog;
pub(crate) mod comps;
mod customer;
mod endpoint;
mod logs;
mod metering;
pub(crate) mod notices;
mod throttle;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;

use crate::client::OctanyClient;
use crate::domain::clock::SharedClock;
use crate::domain::config::{ConfigError, OctanyConfig};
use crate::domain::model::{AccessPolicy, BillableRef};
use crate::domain::plan::Plan;
use crate::mirror::access::{AccessCache, AccessState};
use crate::mirror::api::Mirror;
use crate::mirror::sync::{Listeners, SyncOptions, Syncer};
use crate::mirror::watch::Watchers;
use crate::mirror::webhook::WebhookReceiver;
use crate::web::error::{BillingError, Denial};
pub use crate::web::settings::Settings;
use crate::web::settings::{CatalogPlan, local_path};

/// How a refusal of the guard is answered; see [`OctanyBuilder::on_rejection`].
pub(crate) type RejectionHandler =
    Arc<dyn Fn(&HttpRequest, &Denial, &Settings) -> HttpResponse + Send + Sync>;

/// Everything billing, for one app. Build it once, outside
/// `HttpServer::new`, and register it with `App::app_data`:
///
/// ```no_run
/// # use actix_web::{web, App, HttpServer};
/// # #[derive(Clone)] struct CurrentUser;
/// # impl octany_actix::Billable for CurrentUser { fn billable_id(&self) -> String { "1".into() } }
/// # impl actix_web::FromRequest for CurrentUser { type Error = actix_web::Error; type Future = std::future::Ready<Result<Self, Self::Error>>;
/// #   fn from_request(_: &actix_web::HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future { std::future::ready(Ok(CurrentUser)) } }
/// # async fn demo(db: sea_orm::DatabaseConnection) -> Result<(), Box<dyn std::error::Error>> {
/// use octany_actix::{Octany, OctanyConfig};
///
/// let octany = Octany::builder(OctanyConfig::from_env()?, db)
///     .public_base_url("https://app.example.com")
///     .build()?;
/// HttpServer::new(move || {
///     App::new()
///         .app_data(web::Data::new(octany.clone()))
///         .service(octany.scope::<CurrentUser>())
/// })
/// // A client that closes its connection ends its request, and frees its
/// // place in the queue for Octany (actix's default keeps it running).
/// .h1_allow_half_closed(false)
/// .bind("127.0.0.1:8080")?
/// .run()
/// .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Octany {
    inner: Arc<Inner>,
    settings: Arc<Settings>,
}

struct Inner {
    client: OctanyClient,
    syncer: Syncer,
    receiver: WebhookReceiver,
    clock: SharedClock,
    catalog: Vec<CatalogPlan>,
    /// Per billable: when the status route last synced it, and that sync
    /// (which polls for the same billable in the meantime wait on).
    last_sync: Mutex<HashMap<String, (DateTime<Utc>, StatusSync)>>,
    rejection: Option<RejectionHandler>,
    usage_counts: Option<Arc<dyn crate::domain::features::UsageCounts>>,
    metering: metering::Metering,
    notices: Option<notices::Notices>,
    _listener: Option<Listener>,
}

/// A status route's sync of one billable, which polls coming meanwhile wait on.
type StatusSync = Arc<tokio::sync::OnceCell<()>>;

/// The task that hears other instances' changes (PostgreSQL); it ends with
/// the `Octany`.
#[derive(Debug)]
struct Listener(tokio::task::JoinHandle<()>);

impl Drop for Listener {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl std::fmt::Debug for Octany {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Octany")
            .field("config", self.inner.client.config())
            .field("settings", &self.settings)
            .field("catalog", &self.inner.catalog)
            .finish_non_exhaustive()
    }
}

/// Configures an [`Octany`].
#[must_use]
pub struct OctanyBuilder {
    config: OctanyConfig,
    db: DatabaseConnection,
    clock: Option<SharedClock>,
    public_base_url: Option<String>,
    settings: Settings,
    catalog: Vec<CatalogPlan>,
    sync: SyncOptions,
    insecure_webhooks: bool,
    body_limit: Option<usize>,
    rejection: Option<RejectionHandler>,
    queue_bounds: Option<crate::client::QueueBounds>,
    usage_counts: Option<Arc<dyn crate::domain::features::UsageCounts>>,
    metering: metering::Metering,
    notices: Option<notices::Notices>,
    api_call_log: bool,
}

impl std::fmt::Debug for OctanyBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OctanyBuilder")
            .field("config", &self.config)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Octany {
    /// Starts configuring billing for the account of `config`, mirrored in `db`.
    pub fn builder(config: OctanyConfig, db: DatabaseConnection) -> OctanyBuilder {
        OctanyBuilder {
            config,
            db,
            clock: None,
            public_base_url: None,
            settings: Settings::defaults(),
            catalog: Vec::new(),
            sync: SyncOptions::default(),
            insecure_webhooks: false,
            body_limit: None,
            rejection: None,
            queue_bounds: None,
            usage_counts: None,
            metering: metering::Metering::default(),
            notices: None,
            api_call_log: true,
        }
    }
}

impl OctanyBuilder {
    /// The app's public address, e.g. `https://app.example.com`: required
    /// (success URLs are built from it, never from a request's `Host`); it
    /// must be https, or http on localhost, as Octany requires of success URLs.
    pub fn public_base_url(mut self, url: &str) -> Self {
        self.public_base_url = Some(url.to_owned());
        self
    }

    /// Where [`Octany::scope`] mounts the billing routes (default `/billing`).
    pub fn billing_path(mut self, path: &str) -> Self {
        self.settings.billing_path = local_path(path);
        self
    }

    /// Where a browser without a subscription is sent (default `/pricing`).
    pub fn pricing_path(mut self, path: &str) -> Self {
        self.settings.pricing_path = local_path(path);
        self
    }

    /// Where the success page forwards once access is granted (default `/`).
    pub fn after_checkout_path(mut self, path: &str) -> Self {
        self.settings.after_checkout_path = local_path(path);
        self
    }

    /// What the guard allows (e.g. keep access while `delayed`).
    pub fn access_policy(mut self, policy: AccessPolicy) -> Self {
        self.settings.policy = policy;
        self
    }

    /// How long the guard trusts a cached answer; zero turns the cache off.
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.settings.cache_ttl = ttl;
        self
    }

    /// How many billables the guard's cache holds at most (default
    /// 10,000); the least used are let go first, so an instance's memory
    /// stays bounded however many users it serves.
    pub fn cache_capacity(mut self, billables: u64) -> Self {
        self.settings.cache_capacity = billables;
        self
    }

    /// How often at most the status route syncs one user.
    pub fn status_sync_interval(mut self, interval: Duration) -> Self {
        self.settings.status_sync_interval = interval;
        self
    }

    /// When the success page gives up waiting and says so.
    pub fn success_timeout(mut self, timeout: Duration) -> Self {
        self.settings.success_timeout = timeout;
        self
    }

    /// Sells every plan of `P` at `{billing_path}/checkout/{slug}`, in the
    /// group [`Plan::GROUP`]: a billable that already holds a plan of the
    /// group is sent to the swap's confirmation instead.
    pub fn plans<P: Plan>(self) -> Self {
        self.sell::<P>(Some(P::GROUP))
    }

    /// Sells every product of `P` once, as a one-off purchase at
    /// `{billing_path}/checkout/{slug}` (no subscription; the success page
    /// confirms on the order).
    pub fn one_off_products<P: Plan>(self) -> Self {
        self.sell::<P>(None)
    }

    fn sell<P: Plan>(mut self, group: Option<&'static str>) -> Self {
        for plan in P::all() {
            self.catalog.retain(|p| p.slug != plan.slug());
            self.catalog.push(CatalogPlan {
                slug: plan.slug().to_owned(),
                product: plan.product_id(),
                group,
                any_price: plan.pay_what_you_want(),
                features: plan.features(),
                limits: plan.limits(),
            });
        }
        self
    }

    /// Runs on the given clock (default: the client's, the system clock).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The host's code run once per billing event (a subscription started,
    /// renewed, cancelled, ...), whichever path brought the change.
    pub fn listeners(mut self, listeners: Listeners) -> Self {
        self.sync = self.sync.with_listeners(listeners);
        self
    }

    /// Checkout intents the buyer came back from, still unpaid this long
    /// after, are marked abandoned by the reconcile (default 24 hours).
    pub fn abandon_checkouts_after(mut self, after: Duration) -> Self {
        self.sync.abandon_checkouts_after = after;
        self
    }

    /// Checkout intents opened but never returned from lapse after this
    /// long (default 30 minutes). An opened intent never changes what the
    /// guard answers; it is reused when the same plan is opened again.
    pub fn checkouts_lapse_after(mut self, after: Duration) -> Self {
        self.sync.lapse_opened_checkouts_after = after;
        self
    }

    /// A subscription waiting on Octany (`delayed`: a failed renewal being
    /// retried; `pending`: an invoice not yet paid) changes on a schedule
    /// the mirror does not know: the reconcile reads it again once it was
    /// last synced this long ago (default 12 hours), so a lost webhook
    /// cannot leave it waiting for ever. Shorter reads Octany more often.
    pub fn resync_waiting_after(mut self, after: Duration) -> Self {
        self.sync.resync_waiting_after = after;
        self
    }

    /// How many requests to Octany may wait for the shared request budget,
    /// per priority, before the next is answered "busy" at once (default
    /// 256 interactive, 32 polls, 8 background).
    pub fn queue_bounds(mut self, bounds: crate::client::QueueBounds) -> Self {
        self.queue_bounds = Some(bounds);
        self
    }

    /// The host's counts of what a billable uses of each limit: a swap to
    /// a plan whose limits the billable's usage exceeds is then refused
    /// before anything is sent to Octany ([`BillingError::OverLimit`]).
    /// Without it, swaps are not checked against limits.
    pub fn usage_counts(mut self, counts: impl crate::domain::features::UsageCounts) -> Self {
        self.usage_counts = Some(Arc::new(counts));
        self
    }

    /// The largest webhook body accepted (default 1 MiB).
    pub fn webhook_body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = Some(bytes);
        self
    }

    /// Accepts unsigned webhooks. For development only: anyone who reaches
    /// the endpoint could then grant themselves a subscription.
    pub fn insecure_webhooks_for_development(mut self) -> Self {
        self.insecure_webhooks = true;
        self
    }

    /// Answers the guard's refusals your way (the default: 402 JSON for
    /// API clients, 303 to the pricing or success page for browsers, 503
    /// when the database is down).
    pub fn on_rejection(
        mut self,
        handler: impl Fn(&HttpRequest, &Denial, &Settings) -> HttpResponse + Send + Sync + 'static,
    ) -> Self {
        self.rejection = Some(Arc::new(handler));
        self
    }

    /// Checks the configuration and builds. Refuses to build without a
    /// webhook secret unless insecure development mode was chosen.
    pub fn build(mut self) -> Result<Octany, ConfigError> {
        self.settings.public_base_url =
            crate::web::settings::checked_base_url(self.public_base_url.as_deref())?;
        if let Some(name) = self.sync.listeners.given_twice() {
            return Err(ConfigError::Invalid {
                var: "listeners",
                reason: format!(
                    "two billing listeners are named `{name}`: give each a name of its own (the outbox tells them apart by name)"
                ),
            });
        }
        let clock = match self.clock {
            Some(clock) => clock,
            None => Arc::new(crate::domain::clock::SystemClock),
        };
        let client = OctanyClient::with_clock(self.config.clone(), clock.clone())
            .map_err(|e| ConfigError::Invalid {
                var: "OCTANY_API_URL",
                reason: e.to_string(),
            })?
            // Every instance on this database shares one request budget.
            .sharing_budget(Arc::new(crate::mirror::budget::DbTokens::new(
                self.db.clone(),
                self.config.account(),
            )));
        let client = match self.queue_bounds {
            Some(bounds) => client.with_queue_bounds(bounds),
            None => client,
        };
        let client = match self.api_call_log {
            true => match crate::mirror::api_calls::DbCallLog::start(self.db.clone()) {
                Some(log) => client.logging_calls(log),
                None => client,
            },
            false => client,
        };
        let listeners = std::mem::take(&mut self.sync.listeners);
        let (listeners, slot) = metering::with_usage_listener(listeners, &self.metering);
        let (listeners, notices_slot) =
            notices::with_notices_listener(listeners, self.notices.as_ref());
        // The syncer tells the guard's cache and the success page's
        // watchers of every billable its commits change.
        let cache = AccessCache::new(self.settings.cache_ttl, self.settings.cache_capacity);
        let watchers = Watchers::new(
            self.settings.status_waits_per_billable,
            self.settings.status_waits,
        );
        let options = self.sync.with_listeners(listeners);
        let syncer = Syncer::with_caches(self.db, client.clone(), options, cache, watchers);
        let mut receiver = if self.insecure_webhooks {
            WebhookReceiver::insecure_development_mode(syncer.clone())
        } else {
            WebhookReceiver::new(syncer.clone(), self.config.webhook_secrets())?
        };
        if let Some(limit) = self.body_limit {
            receiver = receiver.with_body_limit(limit);
        }
        #[cfg(feature = "postgres")]
        let listener = Mirror::of(&syncer).hear_changes().map(Listener);
        #[cfg(not(feature = "postgres"))]
        let listener = None;
        let inner = Arc::new(Inner {
            client,
            syncer,
            receiver,
            clock,
            catalog: self.catalog,
            last_sync: Mutex::default(),
            rejection: self.rejection,
            usage_counts: self.usage_counts,
            metering: self.metering,
            notices: self.notices,
            _listener: listener,
        });
        let settings = Arc::new(self.settings);
        let _ = slot.set((Arc::downgrade(&inner), settings.clone()));
        let _ = notices_slot.set((Arc::downgrade(&inner), settings.clone()));
        notices::hook_ticks(&inner.syncer, &notices_slot);
        Ok(Octany { inner, settings })
    }
}

impl Octany {
    /// The registered `Octany` of a request, or an error that says how to
    /// register it.
    pub fn from_request(req: &HttpRequest) -> Result<Self, BillingError> {
        req.app_data::<web::Data<Octany>>()
            .map(|data| data.get_ref().clone())
            .ok_or(BillingError::NotRegistered)
    }

    /// The API client.
    pub fn client(&self) -> &OctanyClient {
        &self.inner.client
    }

    /// The engine's syncer: not part of the API (see
    /// [`engine`](crate::engine)); a host runs it through
    /// [`Octany::spawn_background`], [`Octany::sync_products`] and
    /// [`ops`](crate::ops).
    #[doc(hidden)]
    pub fn syncer(&self) -> &Syncer {
        &self.inner.syncer
    }

    /// The mirror, as the web layer asks it (its only door to the
    /// database).
    pub(crate) fn mirror(&self) -> Mirror<'_> {
        Mirror::of(&self.inner.syncer)
    }

    /// The engine's webhook receiver: not part of the API (see
    /// [`engine`](crate::engine)); Octany reaches it through the mounted
    /// webhook route, an operator through [`ops`](crate::ops)' replays.
    #[doc(hidden)]
    pub fn receiver(&self) -> &WebhookReceiver {
        &self.inner.receiver
    }

    /// Starts this instance's background task and returns its handle; it
    /// runs until the runtime stops or the handle is aborted. Start it once
    /// at start-up, on every instance (a worker process without the web
    /// layer builds an `Octany` and starts it too):
    ///
    /// - at once, compares this app's clock with Octany's `Date` and logs
    ///   an error when they differ by more than a minute (renewals, grace
    ///   periods and trials are judged on this app's clock);
    /// - loads the product catalog ([`Octany::sync_products`]), again on
    ///   each tick until it has loaded once;
    /// - every `every` (on the configured clock): delivers the billing
    ///   events that are due (failed listeners retried, events of a process
    ///   that died delivered), re-reads what is due as the reconcile does
    ///   (lost webhooks, abandoned checkouts; one instance at a time), then
    ///   sends the notices' reminders.
    ///
    /// Failures are logged and tried again on the next tick.
    pub fn spawn_background(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        self.inner.syncer.spawn_background(every)
    }

    /// The clock.
    pub fn clock(&self) -> &SharedClock {
        &self.inner.clock
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// This billing for a second kind of billable with routes of its own (a
    /// team's beside its users'): the same client, mirror, webhook receiver,
    /// catalog and cache, with its routes mounted at `billing_path`, its
    /// refusals sent to `pricing_path`, and a paid checkout forwarded to
    /// `after_checkout_path`. Mount its [`scope`](Octany::scope) with the
    /// other billable's extractor, and register it (`app_data`) on the
    /// scope of that billable's pages, so their guards answer with its paths.
    /// Register the webhook URL of one mount with Octany; each mount answers it.
    ///
    /// ```no_run
    /// # fn demo(octany: octany_actix::Octany) {
    /// let teams = octany.mounted_at("/team/billing", "/team/pricing", "/team");
    /// assert_eq!(teams.settings().route_path("status"), "/team/billing/status");
    /// # }
    /// ```
    pub fn mounted_at(
        &self,
        billing_path: &str,
        pricing_path: &str,
        after_checkout_path: &str,
    ) -> Octany {
        let mut settings = Settings::clone(&self.settings);
        settings.billing_path = local_path(billing_path);
        settings.pricing_path = local_path(pricing_path);
        settings.after_checkout_path = local_path(after_checkout_path);
        Octany {
            inner: self.inner.clone(),
            settings: Arc::new(settings),
        }
    }

    /// The host's usage counts, if it gave them.
    pub(crate) fn usage_counts(&self) -> Option<&dyn crate::domain::features::UsageCounts> {
        self.inner.usage_counts.as_deref()
    }

    /// How long an opened checkout intent is reused before it lapses.
    pub(crate) fn checkout_lapse(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.inner.syncer.options().lapse_opened_checkouts_after)
            .unwrap_or(chrono::Duration::MAX)
    }

    /// A billable's state: from the cache while fresh, else the database.
    pub(crate) async fn access(
        &self,
        billable: &BillableRef,
    ) -> Result<Arc<AccessState>, BillingError> {
        self.access_at(billable, self.inner.clock.now()).await
    }

    /// [`Self::access`], the cache asked at `now` (the instant the caller
    /// decides at).
    pub(crate) async fn access_at(
        &self,
        billable: &BillableRef,
        now: DateTime<Utc>,
    ) -> Result<Arc<AccessState>, BillingError> {
        let any_price = |product| self.sold_as(product).is_some_and(|p| p.any_price);
        Ok(self.mirror().access(billable, now, &any_price).await?)
    }

    /// A billable's state read from the database now, past the cache (for
    /// decisions that cannot be undone, such as opening a checkout); the
    /// cache takes the fresh state.
    pub(crate) async fn access_fresh(
        &self,
        billable: &BillableRef,
    ) -> Result<Arc<AccessState>, BillingError> {
        let now = self.inner.clock.now();
        let any_price = |product| self.sold_as(product).is_some_and(|p| p.any_price);
        Ok(self
            .mirror()
            .access_fresh(billable, now, &any_price)
            .await?)
    }

    /// Drops a billable's cached state.
    pub fn forget(&self, billable: &BillableRef) {
        self.inner.syncer.access_cache().invalidate(billable);
    }

    pub(crate) fn reject(&self, req: &HttpRequest, denial: &Denial) -> HttpResponse {
        match &self.inner.rejection {
            Some(handler) => handler(req, denial, &self.settings),
            None => crate::web::error::rejection(req, denial, &self.settings),
        }
    }
}
