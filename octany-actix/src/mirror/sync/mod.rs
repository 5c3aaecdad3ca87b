//! One sync path from Octany into the host's database.
//!
//! Every way state arrives goes through [`Syncer`]: a webhook event, a poll
//! of one billable or one subscription, the periodic reconcile, and the
//! whole-account backfill. They share one unit of work, so the poll
//! and the webhook cannot disagree, and duplicated, late or reordered
//! deliveries cannot move a row backwards: each row keeps the instant, by
//! Octany's clock, at which its state was true, and only a newer state
//! replaces it.

pub(crate) mod apply;
pub(crate) mod backfill;
mod events;
pub(crate) mod lease;
pub(crate) mod outbox;
pub(crate) mod reconcile;
mod unit;

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, DbErr};

use crate::client::OctanyError;
use crate::client::{OctanyClient, SubscriptionFilter};
use crate::domain::clock::SharedClock;
use crate::domain::model::{BillableRef, SubscriptionId};
use crate::mirror::access::AccessCache;
use crate::mirror::watch::Watchers;

pub(crate) use apply::Mark;
pub(crate) use apply::{Done, Local, mark};
pub use events::{BillingEvent, Event, Origin};
pub use outbox::{ListenerError, ListenerName, Listeners};
pub(crate) use unit::{Batch, Delivery};

/// Syncing failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// The database refused or is unreachable.
    #[error(
        "the billing mirror's database failed ({0}): check the connection and that the octany-actix migrations ran"
    )]
    Database(#[from] DbErr),
    /// Octany failed.
    #[error(transparent)]
    Octany(#[from] OctanyError),
    /// A known event's `data` did not parse.
    #[error(
        "the data of webhook event `{event}` cannot be read ({source}); the delivery is kept for replay"
    )]
    Payload {
        /// The event name.
        event: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
}

/// What a sync changed, and what it left to do after commit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Effects {
    /// Billables whose mirrored state changed.
    pub changed: BTreeSet<BillableRef>,
    /// Subscriptions to re-fetch (two equally new states disagreed).
    pub refetch: Vec<SubscriptionId>,
    /// Subscriptions written.
    pub subscriptions: u64,
    /// Orders written.
    pub orders: u64,
    /// Outbox events to deliver after commit.
    pub(crate) events: Vec<String>,
    /// What the batch's writes of the app's own rows did, in order.
    pub(crate) done: Vec<Done>,
}

impl Effects {
    fn merge(&mut self, other: Effects) {
        self.changed.extend(other.changed);
        self.refetch.extend(other.refetch);
        self.subscriptions += other.subscriptions;
        self.orders += other.orders;
        self.events.extend(other.events);
        self.done.extend(other.done);
    }
}

/// Mirrors Octany into the host's database. Cheap to clone. The engine
/// under `Octany`, not part of the API (`octany_actix::engine`).
///
/// ```no_run
/// # async fn demo(db: sea_orm::DatabaseConnection) -> Result<(), Box<dyn std::error::Error>> {
/// use octany_actix::{engine::Syncer, OctanyClient, OctanyConfig};
/// let syncer = Syncer::new(db, OctanyClient::new(OctanyConfig::from_env()?)?);
/// syncer.sync_billable(&octany_actix::model::BillableRef::new("user", "42")).await?; // the success page's poll
/// let _task = syncer.spawn_background(std::time::Duration::from_secs(60)); // catalog, clock check, due events, reconcile
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Syncer {
    inner: Arc<Inner>,
}

struct Inner {
    db: DatabaseConnection,
    client: OctanyClient,
    clock: SharedClock,
    /// What this instance keeps of billables' states outside the
    /// database, told by every commit that changes a billable
    /// ([`Syncer::notify`]): the guard's cache and the success page's
    /// watchers.
    cache: Arc<AccessCache>,
    watchers: Arc<Watchers>,
    tick_hooks: std::sync::RwLock<Vec<TickHook>>,
    options: SyncOptions,
    listeners: Listeners,
    instance: String,
    /// Webhooks arriving together are written here as one group (SQLite
    /// and PostgreSQL). SQLite lets one transaction write at a time, and a
    /// writer that finds the lock taken sleeps in SQLite's busy handler (a
    /// millisecond and up) however soon it is free: there this syncer's
    /// units of work queue here too, each woken the moment the one before
    /// commits.
    writer: Option<unit::Writer>,
    /// The database's part in the unit of work.
    backend: &'static dyn unit::Backend,
    /// Syncs of one billable's subscriptions under way, by billable, which
    /// others for the same billable join instead of asking Octany again.
    in_flight: std::sync::Mutex<std::collections::HashMap<String, InFlight>>,
}

/// A sync under way: its outcome (`true`: it succeeded) once it ends.
type InFlight = tokio::sync::watch::Receiver<Option<bool>>;

type TickHook = Arc<dyn Fn() -> futures_util::future::BoxFuture<'static, ()> + Send + Sync>;

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Syncer")
            .field("client", &self.client)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// How the syncer behaves.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SyncOptions {
    /// Checkout intents the buyer came back from (awaiting Octany's word)
    /// are marked abandoned by [`Syncer::reconcile`] after this long without
    /// a payment (default 24 hours).
    pub abandon_checkouts_after: std::time::Duration,
    /// Checkout intents only opened (the buyer never came back through the
    /// success URL) lapse after this long (default 30 minutes). They never
    /// change what the guard answers.
    pub lapse_opened_checkouts_after: std::time::Duration,
    /// A subscription waiting on Octany (`delayed`: a failed renewal being
    /// retried; `pending`: an invoice not yet paid) changes on a schedule the
    /// mirror does not know; [`Syncer::reconcile`] re-reads it when it was
    /// last synced this long ago (default 12 hours), so a lost webhook
    /// cannot leave it waiting for ever.
    pub resync_waiting_after: std::time::Duration,
    /// The host's code run once per billing event.
    pub listeners: Listeners,
}

impl SyncOptions {
    /// These options with `listeners` run once per billing event.
    pub fn with_listeners(mut self, listeners: Listeners) -> Self {
        self.listeners = listeners;
        self
    }
}

impl Default for SyncOptions {
    fn default() -> Self {
        Self {
            abandon_checkouts_after: std::time::Duration::from_secs(24 * 3600),
            lapse_opened_checkouts_after: std::time::Duration::from_secs(30 * 60),
            resync_waiting_after: std::time::Duration::from_secs(12 * 3600),
            listeners: Listeners::new(),
        }
    }
}

impl Syncer {
    /// A syncer writing to `db`, reading Octany through `client` and
    /// taking "now" from the client's clock.
    pub fn new(db: DatabaseConnection, client: OctanyClient) -> Self {
        Self::with_options(db, client, SyncOptions::default())
    }

    /// [`Syncer::new`] with options.
    pub fn with_options(
        db: DatabaseConnection,
        client: OctanyClient,
        options: SyncOptions,
    ) -> Self {
        // No one reads a bare syncer's cache or watches: one that keeps
        // nothing, and no room for a watch.
        let (cache, watchers) = (
            AccessCache::new(std::time::Duration::ZERO, 0),
            Watchers::new(0, 0),
        );
        Self::with_caches(db, client, options, cache, watchers)
    }

    /// [`Syncer::with_options`], telling `cache` and `watchers` of each
    /// billable a commit changes (the `Octany` value's).
    pub(crate) fn with_caches(
        db: DatabaseConnection,
        client: OctanyClient,
        mut options: SyncOptions,
        cache: AccessCache,
        watchers: Arc<Watchers>,
    ) -> Self {
        let backend = unit::backend_of(db.get_database_backend());
        if let Some(name) = options.listeners.given_twice() {
            tracing::error!(listener = %name, "two billing listeners share a name; only the first runs (OctanyBuilder::build refuses this)");
        }
        Self {
            inner: Arc::new(Inner {
                clock: client.clock().clone(),
                db,
                client,
                cache: Arc::new(cache),
                watchers,
                tick_hooks: std::sync::RwLock::default(),
                listeners: std::mem::take(&mut options.listeners),
                options,
                instance: uuid::Uuid::new_v4().simple().to_string(),
                writer: unit::Writer::of(backend),
                backend,
                in_flight: std::sync::Mutex::default(),
            }),
        }
    }

    /// The database.
    pub fn db(&self) -> &DatabaseConnection {
        &self.inner.db
    }

    /// The Octany client.
    pub fn client(&self) -> &OctanyClient {
        &self.inner.client
    }

    /// The clock.
    pub fn clock(&self) -> &SharedClock {
        &self.inner.clock
    }

    /// This syncer's random instance id (the holder of its leases).
    pub fn instance(&self) -> &str {
        &self.inner.instance
    }

    pub(crate) fn options(&self) -> &SyncOptions {
        &self.inner.options
    }

    /// The database's part in the unit of work (`unit::backend`).
    pub(crate) fn backend(&self) -> &'static dyn unit::Backend {
        self.inner.backend
    }

    pub(crate) fn listeners(&self) -> &Listeners {
        &self.inner.listeners
    }

    /// Runs `hook` on every tick of [`Syncer::spawn_background`], after
    /// the due events are delivered and the reconcile ran (the notices'
    /// reminders hang here).
    pub fn on_tick<F, Fut>(&self, hook: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        use futures_util::FutureExt;
        self.inner
            .tick_hooks
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::new(move || hook().boxed()));
    }

    /// The tick hooks, to run one after another.
    pub(crate) fn tick_hooks(&self) -> Vec<TickHook> {
        self.inner
            .tick_hooks
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The guard's cache of billables' states.
    pub(crate) fn access_cache(&self) -> &Arc<AccessCache> {
        &self.inner.cache
    }

    /// The success page's waits for billables' changes.
    pub(crate) fn watchers(&self) -> &Arc<Watchers> {
        &self.inner.watchers
    }

    fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    /// Tells this instance which billables a commit changed: each is
    /// dropped from the guard's cache and its held status requests wake.
    /// (Other instances hear it from the database: `mirror::revocation`.)
    fn notify(&self, effects: &Effects) {
        for billable in &effects.changed {
            self.inner.cache.invalidate(billable);
            self.inner.watchers.changed(billable);
        }
    }

    /// Re-reads one subscription from Octany and writes it, as the
    /// reconcile does. (An API read wins ties, so it never leaves anything
    /// to re-fetch.)
    pub async fn sync_subscription(&self, id: &SubscriptionId) -> Result<Effects, SyncError> {
        self.sync_subscription_by(id, Origin::Reconcile).await
    }

    pub(crate) async fn sync_subscription_by(
        &self,
        id: &SubscriptionId,
        origin: Origin,
    ) -> Result<Effects, SyncError> {
        let (s, date) = self.client().get_subscription_observed(id).await?;
        self.ingest(Batch::default().subscription(s, Mark::of(date)), origin)
            .await
    }

    /// Syncs the subscriptions of one billable (`filter[reference_id]`, all
    /// pages): what the success page's poll, the status route and a
    /// checkout's check run. Calls for one billable coalesce: one that comes
    /// while another runs waits for it and answers from what it brought (one
    /// request to Octany however many tabs ask at once; its effects are the
    /// first call's). If the one it joined fails or is abandoned, it asks
    /// Octany itself.
    pub async fn sync_billable_subscriptions(
        &self,
        billable: &BillableRef,
    ) -> Result<Effects, SyncError> {
        let (joined, leading) = {
            let mut in_flight = self
                .inner
                .in_flight
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            match in_flight.get(billable.as_str()) {
                Some(running) => (Some(running.clone()), None),
                None => {
                    let (done, running) = tokio::sync::watch::channel(None);
                    in_flight.insert(billable.to_string(), running);
                    (None, Some(done))
                }
            }
        };
        if let Some(done) = leading {
            return self.lead_sync(billable, done).await;
        }
        if let Some(mut running) = joined
            && let Ok(outcome) = running.wait_for(Option::is_some).await
            && *outcome == Some(true)
        {
            return Ok(Effects::default());
        }
        self.sync_billable_by(billable, false, Origin::Poll).await
    }

    /// Runs the sync others join, then says how it went.
    async fn lead_sync(
        &self,
        billable: &BillableRef,
        done: tokio::sync::watch::Sender<Option<bool>>,
    ) -> Result<Effects, SyncError> {
        /// Takes the entry out when the sync ends or its caller goes away
        /// (the joiners, told by the dropped sender, then ask themselves).
        struct Leave<'a>(&'a Syncer, &'a str);
        impl Drop for Leave<'_> {
            fn drop(&mut self) {
                let mut in_flight = self
                    .0
                    .inner
                    .in_flight
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                in_flight.remove(self.1);
            }
        }
        let leave = Leave(self, billable.as_str());
        let outcome = self.sync_billable_by(billable, false, Origin::Poll).await;
        drop(leave);
        done.send_replace(Some(outcome.is_ok()));
        outcome
    }

    /// Syncs one billable's subscriptions and their orders.
    pub async fn sync_billable(&self, billable: &BillableRef) -> Result<Effects, SyncError> {
        self.sync_billable_by(billable, true, Origin::Poll).await
    }

    async fn sync_billable_by(
        &self,
        billable: &BillableRef,
        with_orders: bool,
        origin: Origin,
    ) -> Result<Effects, SyncError> {
        let filter = SubscriptionFilter::reference_id(billable.as_str());
        let mut effects = Effects::default();
        let mut page_no = 1;
        loop {
            let page = self.client().list_subscriptions(&filter, page_no).await?;
            let ids: Vec<SubscriptionId> = page.data.iter().map(|s| s.id.clone()).collect();
            let mark = Mark::of(page.observed_at);
            let more = page.has_next();
            effects.merge(
                self.ingest(Batch::default().subscriptions(page.data, mark), origin)
                    .await?,
            );
            if with_orders {
                for id in &ids {
                    effects.merge(self.sync_orders_by(id, origin).await?);
                }
            }
            if !more {
                break;
            }
            page_no += 1;
        }
        Ok(effects)
    }

    /// Syncs every order of one subscription.
    pub async fn sync_orders_of(&self, id: &SubscriptionId) -> Result<Effects, SyncError> {
        self.sync_orders_by(id, Origin::Poll).await
    }

    pub(crate) async fn sync_orders_by(
        &self,
        id: &SubscriptionId,
        origin: Origin,
    ) -> Result<Effects, SyncError> {
        let mut effects = Effects::default();
        let mut page_no = 1;
        loop {
            let page = self
                .client()
                .list_subscription_orders(id, page_no, 100)
                .await?;
            let mark = Mark::of(page.observed_at);
            let more = page.has_next();
            let batch = page.data.into_iter().fold(Batch::default(), |batch, o| {
                batch.order(o, Some(id.clone()), mark)
            });
            effects.merge(self.ingest(batch, origin).await?);
            if !more {
                break;
            }
            page_no += 1;
        }
        Ok(effects)
    }

    /// Refreshes the product cache, page by page.
    pub async fn sync_products(&self) -> Result<u64, SyncError> {
        let mut count = 0;
        let mut page_no = 1;
        loop {
            let page = self.client().list_products(page_no).await?;
            let mark = Mark::of(page.observed_at);
            let more = page.has_next();
            count += page.data.len() as u64;
            let batch = page
                .data
                .into_iter()
                .fold(Batch::default(), |batch, p| batch.product(p, mark));
            self.ingest(batch, Origin::Reconcile).await?;
            if !more {
                return Ok(count);
            }
            page_no += 1;
        }
    }

    /// The billing events of `billable` as stored (delivered or not), in
    /// the order they happened (one instant's in the order of their names):
    /// what its listeners were or will be given.
    /// For tests (`octany_fake::testing`) and support questions.
    pub async fn events_of(&self, billable: &BillableRef) -> Result<Vec<Event>, DbErr> {
        outbox::of_billable(self.db(), billable).await
    }

    /// Delivers the billing events that are due: never delivered (the
    /// process that wrote them died before it could), or failed and due
    /// for a retry. Returns how many were delivered to every listener.
    /// The reconciler task runs it on every tick.
    pub async fn deliver_due(&self) -> Result<u64, SyncError> {
        let mut delivered = 0;
        for id in outbox::due(self.db(), self.now(), 500).await? {
            if self.deliver(&id).await? {
                delivered += 1;
            }
        }
        Ok(delivered)
    }

    /// Runs the listeners of the undelivered event `id` that have not
    /// succeeded, now, not at its next retry: `Some(true)` when every one
    /// has now succeeded, `Some(false)` when one failed again or another
    /// instance holds it, `None` when it is delivered or unknown.
    pub(crate) async fn retry_event(&self, id: &str) -> Result<Option<bool>, SyncError> {
        if !outbox::make_due(self.db(), id, self.now()).await? {
            return Ok(None);
        }
        Ok(Some(self.deliver(id).await?))
    }

    async fn deliver(&self, id: &str) -> Result<bool, DbErr> {
        outbox::deliver(self.db(), self.listeners(), id, self.instance(), || {
            self.now()
        })
        .await
    }
}
