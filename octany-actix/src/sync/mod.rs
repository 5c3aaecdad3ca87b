//! One sync path from Octany into the host's database.
//!
//! Every way state arrives goes through [`Syncer`]: a webhook event, a poll
//! of one billable or one subscription, the periodic reconcile, and the
//! whole-account backfill. They share the writes of [`apply`], so the poll
//! and the webhook cannot disagree, and duplicated, late or reordered
//! deliveries cannot move a row backwards (see [`apply`] for the rule).

pub mod apply;
mod backfill;
pub mod lease;
mod reconcile;

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, TransactionTrait};

/// A connection or transaction the sync can write through.
pub trait Conn: ConnectionTrait + TransactionTrait {}
impl<T: ConnectionTrait + TransactionTrait> Conn for T {}

use crate::api::{OctanyClient, SubscriptionFilter};
use crate::clock::SharedClock;
use crate::entity::billable_ref;
use crate::error::OctanyError;
use crate::model::{Order, Subscription, SubscriptionId, WebhookEnvelope, WebhookEvent};

pub use apply::{Applied, Source};
pub use backfill::{BackfillOptions, BackfillProgress};
pub use reconcile::ReconcileReport;

/// Opens a transaction: `READ COMMITTED` on MySQL (fewer gap locks, so
/// fewer deadlocks between concurrent upserts), the default elsewhere.
pub(crate) async fn begin(db: &DatabaseConnection) -> Result<sea_orm::DatabaseTransaction, DbErr> {
    match db.get_database_backend() {
        sea_orm::DbBackend::MySql => {
            db.begin_with_config(Some(sea_orm::IsolationLevel::ReadCommitted), None)
                .await
        }
        _ => db.begin().await,
    }
}

/// Whether a database error means "run the transaction again": a deadlock
/// or serialization failure, or SQLite's lock contention.
pub(crate) fn is_transient(error: &DbErr) -> bool {
    let text = error.to_string();
    [
        "40001",
        "40P01",
        "1213",
        "Deadlock",
        "deadlock",
        "database is locked",
        "could not serialize",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}

/// Runs `attempt` (which opens and commits its own transaction) again when
/// it fails transiently, up to 5 times with a short growing pause.
pub(crate) async fn retrying<T, F, Fut>(clock: &SharedClock, mut attempt: F) -> Result<T, SyncError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, SyncError>>,
{
    let mut tries = 0u32;
    loop {
        tries += 1;
        match attempt().await {
            Err(SyncError::Database(error)) if tries < 5 && is_transient(&error) => {
                tracing::debug!(tries, %error, "transient database conflict; running the transaction again");
                clock
                    .sleep(std::time::Duration::from_millis(5 * u64::from(tries)))
                    .await;
            }
            other => return other,
        }
    }
}

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
    pub changed: BTreeSet<String>,
    /// Subscriptions to re-fetch (two equally new states disagreed).
    pub refetch: Vec<SubscriptionId>,
    /// Subscriptions written.
    pub subscriptions: u64,
    /// Orders written.
    pub orders: u64,
}

impl Effects {
    fn merge(&mut self, other: Effects) {
        self.changed.extend(other.changed);
        self.refetch.extend(other.refetch);
        self.subscriptions += other.subscriptions;
        self.orders += other.orders;
    }
}

/// Mirrors Octany into the host's database. Cheap to clone.
///
/// ```no_run
/// # async fn demo(db: sea_orm::DatabaseConnection) -> Result<(), Box<dyn std::error::Error>> {
/// use octany_actix::{sync::Syncer, OctanyClient, OctanyConfig};
/// let syncer = Syncer::new(db, OctanyClient::new(OctanyConfig::from_env()?)?);
/// syncer.sync_billable("user:42").await?;          // what the success page's poll does
/// let _task = syncer.spawn_reconciler(std::time::Duration::from_secs(300));
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
    hooks: std::sync::RwLock<Vec<ChangeHook>>,
    options: SyncOptions,
    instance: String,
}

type ChangeHook = Arc<dyn Fn(&str) + Send + Sync>;

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Syncer")
            .field("client", &self.client)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// How the syncer behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncOptions {
    /// Pending checkouts older than this are marked abandoned by
    /// [`Syncer::reconcile`] (default 24 hours).
    pub abandon_checkouts_after: std::time::Duration,
}

impl Default for SyncOptions {
    fn default() -> Self {
        Self {
            abandon_checkouts_after: std::time::Duration::from_secs(24 * 3600),
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
        Self {
            inner: Arc::new(Inner {
                clock: client.clock().clone(),
                db,
                client,
                hooks: std::sync::RwLock::default(),
                options,
                instance: uuid::Uuid::new_v4().simple().to_string(),
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

    /// Calls `hook` with each billable whose mirrored state a sync changed,
    /// right after the change is committed (caches drop their entry here).
    pub fn on_change(&self, hook: impl Fn(&str) + Send + Sync + 'static) {
        self.inner
            .hooks
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::new(hook));
    }

    fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    /// The mark of an API answer: Octany's `Date`, or our clock without one.
    fn api_mark(&self, date: Option<DateTime<Utc>>) -> i64 {
        apply::mark(date.unwrap_or_else(|| self.now()))
    }

    /// Writes one subscription and what follows from it (completed
    /// checkouts), collecting the effects. The one write path of every sync.
    pub async fn record_subscription<C: Conn>(
        &self,
        conn: &C,
        s: &Subscription,
        mark: i64,
        source: Source,
    ) -> Result<Effects, DbErr> {
        let now = self.now();
        let applied = apply::apply_subscription(conn, s, mark, source, now).await?;
        let mut effects = Effects::default();
        let billable = billable_ref(s.reference_id.as_deref());
        if applied.changed() {
            effects.subscriptions += 1;
            if let Some(billable) = &billable {
                effects.changed.insert(billable.clone());
                if let Some(product) = s.product_id() {
                    let id = s.id.to_string();
                    apply::complete_checkouts(conn, billable, product.0, Some(&id), None, now)
                        .await?;
                }
            }
        }
        if applied == Applied::Conflict {
            effects.refetch.push(s.id.clone());
        }
        Ok(effects)
    }

    /// Writes one order (linked to `subscription` when known), completing a
    /// one-off checkout it answers.
    pub async fn record_order<C: Conn>(
        &self,
        conn: &C,
        o: &Order,
        subscription: Option<&str>,
        mark: i64,
    ) -> Result<Effects, DbErr> {
        let now = self.now();
        let applied = apply::apply_order(conn, o, subscription, mark, now).await?;
        let mut effects = Effects::default();
        if applied.changed() {
            effects.orders += 1;
            if let Some(billable) = billable_ref(o.reference_id.as_deref()) {
                effects.changed.insert(billable.clone());
                if subscription.is_none() && o.subscription_id.is_none() {
                    let id = o.id.to_string();
                    for product in o.items.iter().filter_map(|i| i.product.as_ref()) {
                        apply::complete_checkouts(
                            conn,
                            &billable,
                            product.id.0,
                            None,
                            Some(&id),
                            now,
                        )
                        .await?;
                    }
                }
            }
        }
        Ok(effects)
    }

    /// Applies one webhook event within `conn` (the receiver's transaction).
    pub async fn apply_event<C: Conn>(
        &self,
        conn: &C,
        envelope: &WebhookEnvelope,
    ) -> Result<Effects, SyncError> {
        let event = envelope.event().map_err(|source| SyncError::Payload {
            event: envelope.name.clone(),
            source,
        })?;
        let mark = apply::mark(envelope.created_at.unwrap_or_else(|| self.now()));
        let now = self.now();
        Ok(match &event {
            WebhookEvent::SubscriptionCreated(s)
            | WebhookEvent::SubscriptionUpdated(s)
            | WebhookEvent::SubscriptionRenewed(s)
            | WebhookEvent::SubscriptionCancelled(s) => {
                self.record_subscription(conn, s, mark, Source::Webhook)
                    .await?
            }
            WebhookEvent::OrderConfirmed(o) | WebhookEvent::OrderPaid(o) => {
                self.record_order(conn, o, None, mark).await?
            }
            WebhookEvent::ProductUpdated(p) => {
                apply::apply_product(conn, p, mark, now).await?;
                Effects::default()
            }
            WebhookEvent::ProductDeleted(p) => {
                apply::delete_product(conn, p, mark).await?;
                Effects::default()
            }
            _ => Effects::default(),
        })
    }

    /// What follows a commit: tell caches, re-fetch conflicting states.
    /// Re-fetch failures are logged; the reconcile retries them (they stay
    /// flagged `needs_sync`).
    pub async fn finish(&self, effects: &Effects) {
        self.notify(effects);
        for id in &effects.refetch {
            if let Err(error) = self.sync_subscription(id).await {
                tracing::warn!(subscription = %id, %error, "re-fetch after conflicting webhooks failed; the reconcile will retry");
            }
        }
    }

    /// Tells caches which billables changed.
    fn notify(&self, effects: &Effects) {
        let hooks = self
            .inner
            .hooks
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for billable in &effects.changed {
            for hook in &hooks {
                hook(billable);
            }
        }
    }

    /// Re-reads one subscription from Octany and writes it. (An API read
    /// wins ties, so it never leaves anything to re-fetch.)
    pub async fn sync_subscription(&self, id: &SubscriptionId) -> Result<Effects, SyncError> {
        let (s, date) = self.client().get_subscription_observed(id).await?;
        let effects = self
            .record_subscription(self.db(), &s, self.api_mark(date), Source::Api)
            .await?;
        self.notify(&effects);
        Ok(effects)
    }

    /// Writes a page of subscriptions read from the API in one transaction
    /// (run again on a transient conflict).
    pub(crate) async fn record_subscriptions(
        &self,
        page: &[Subscription],
        mark: i64,
    ) -> Result<Effects, SyncError> {
        retrying(self.clock(), || async {
            let txn = begin(self.db()).await?;
            let mut written = Effects::default();
            for s in page {
                written.merge(self.record_subscription(&txn, s, mark, Source::Api).await?);
            }
            txn.commit().await?;
            Ok(written)
        })
        .await
    }

    /// Syncs the subscriptions of one billable (`filter[reference_id]`, all
    /// pages): what the success page's poll and the status route run.
    pub async fn sync_billable_subscriptions(&self, billable: &str) -> Result<Effects, SyncError> {
        self.sync_billable_inner(billable, false).await
    }

    /// Syncs one billable's subscriptions and their orders.
    pub async fn sync_billable(&self, billable: &str) -> Result<Effects, SyncError> {
        self.sync_billable_inner(billable, true).await
    }

    async fn sync_billable_inner(
        &self,
        billable: &str,
        with_orders: bool,
    ) -> Result<Effects, SyncError> {
        let filter = SubscriptionFilter::reference_id(billable);
        let mut effects = Effects::default();
        let mut page_no = 1;
        loop {
            let page = self.client().list_subscriptions(&filter, page_no).await?;
            let mark = self.api_mark(page.observed_at);
            effects.merge(self.record_subscriptions(&page.data, mark).await?);
            if with_orders {
                for s in &page.data {
                    effects.merge(self.sync_orders_of(&s.id).await?);
                }
            }
            if !page.has_next() {
                break;
            }
            page_no += 1;
        }
        self.finish(&effects).await;
        Ok(effects)
    }

    /// Syncs every order of one subscription.
    pub async fn sync_orders_of(&self, id: &SubscriptionId) -> Result<Effects, SyncError> {
        let mut effects = Effects::default();
        let mut page_no = 1;
        loop {
            let page = self
                .client()
                .list_subscription_orders(id, page_no, 100)
                .await?;
            let mark = self.api_mark(page.observed_at);
            let txn = self.db().begin().await?;
            for o in &page.data {
                effects.merge(self.record_order(&txn, o, Some(id.as_str()), mark).await?);
            }
            txn.commit().await?;
            if !page.has_next() {
                break;
            }
            page_no += 1;
        }
        Ok(effects)
    }

    /// Refreshes the product cache.
    pub async fn sync_products(&self) -> Result<u64, SyncError> {
        let mut products = self.client().stream_products();
        let mut count = 0;
        let now = self.now();
        while let Some(p) = products.try_next().await? {
            apply::apply_product(self.db(), &p, apply::mark(now), now).await?;
            count += 1;
        }
        Ok(count)
    }
}
