//! The periodic reconcile: the mirror converges even if every webhook is lost.

use std::time::Duration;

use sea_orm::prelude::DateTimeUtc;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, Condition, EntityTrait, ExprTrait, QueryFilter, QuerySelect};

use super::{Batch, Done, Local, Origin, SyncError, Syncer};
use crate::client::Priority;
use crate::domain::model::SubscriptionId;
use crate::mirror::entity::subscription;

/// Subscriptions waiting on Octany, as the partial index
/// `idx_octany_subscriptions_waiting` states it.
const WAITING: &str = "status IN ('delayed', 'pending')";

/// The lease that keeps the reconcile to one instance at a time.
pub(crate) const RECONCILE_LEASE: &str = "reconcile";

/// What one reconcile did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Subscriptions re-read from Octany.
    pub synced: u64,
    /// Of those, the ones whose re-read failed (retried next time).
    pub failed: u64,
    /// Checkout intents marked abandoned: opened and never returned from
    /// within [`SyncOptions::lapse_opened_checkouts_after`](super::SyncOptions), or
    /// returned but never paid within `abandon_checkouts_after`.
    pub abandoned: u64,
    /// Whether it stopped before the end because its lease went to another
    /// instance (which goes on where it stopped: what was re-read is no
    /// longer due).
    pub handed_over: bool,
}

/// The reconcile's hold on its lease: renewed while it works, so a long
/// reconcile is not joined by another instance; lost, it stops.
struct Held<'a> {
    holder: &'a str,
    ttl: Duration,
    renewed: chrono::DateTime<chrono::Utc>,
}

impl Syncer {
    /// Re-syncs every subscription whose `renews_at` or `ends_at` has passed
    /// since it was last synced (a sync at that very instant may have come
    /// before Octany acted on it, so it counts as before), that is flagged `needs_sync`, or that waits
    /// on Octany (`delayed`, `pending`) and was last synced more than
    /// [`SyncOptions::resync_waiting_after`](super::SyncOptions) ago, the most
    /// urgent first (the oldest `renews_at`: the one nearest the end of its
    /// renewal grace); marks checkout intents that lapsed abandoned. Safe to
    /// call at any time, and to stop at any time: what was re-read is no
    /// longer due, so the next run goes on where this one stopped. Its
    /// requests to Octany are background work: they wait behind any
    /// person's and leave half the burst to them, so a large due set is
    /// spread over the budget rather than taking it.
    pub async fn reconcile(&self) -> Result<ReconcileReport, SyncError> {
        Priority::Background.scope(self.reconcile_due(None)).await
    }

    async fn reconcile_due(
        &self,
        mut held: Option<Held<'_>>,
    ) -> Result<ReconcileReport, SyncError> {
        let now = self.now();
        let due = self.due_condition(now);
        // The ids and dates only (a few bytes each, even for 100,000).
        // Ordered here, not by the database: SQLite would rather walk the
        // whole `renews_at` index in order than read the four indexes.
        let mut due: Vec<(String, Option<DateTimeUtc>, Option<DateTimeUtc>)> =
            subscription::Entity::find()
                .select_only()
                .column(subscription::Column::Id)
                .column(subscription::Column::RenewsAt)
                .column(subscription::Column::EndsAt)
                .filter(due)
                .into_tuple()
                .all(self.db())
                .await?;
        // Most urgent first: the oldest renewal, then the oldest end (a
        // date before none).
        let key = |at: &Option<DateTimeUtc>| (at.is_none(), *at);
        due.sort_by(|a, b| (key(&a.1), key(&a.2), &a.0).cmp(&(key(&b.1), key(&b.2), &b.0)));
        let ids: Vec<String> = due.into_iter().map(|(id, ..)| id).collect();
        let mut report = ReconcileReport::default();
        let mut left = ids.len();
        metrics::gauge!("octany_reconcile_backlog").set(left as f64);
        for id in ids {
            if let Some(lease) = held.as_mut()
                && !self.renew(lease).await?
            {
                tracing::info!(
                    synced = report.synced,
                    left,
                    "the reconcile's lease went to another instance; it goes on from here"
                );
                report.handed_over = true;
                break;
            }
            report.synced += 1;
            left -= 1;
            if let Err(error) = self
                .sync_subscription_by(&SubscriptionId::new(id.clone()), Origin::Reconcile)
                .await
            {
                report.failed += 1;
                tracing::warn!(subscription = %id, %error, "reconcile could not re-sync a subscription");
            }
            metrics::gauge!("octany_reconcile_backlog").set(left as f64);
        }
        report.abandoned = self.lapse_checkouts().await?;
        Ok(report)
    }

    /// What the reconcile re-reads at `now`: flagged, waiting on Octany
    /// and not synced lately, or past a renewal or end not synced since.
    fn due_condition(&self, now: chrono::DateTime<chrono::Utc>) -> Condition {
        let waited = now
            - chrono::Duration::from_std(self.inner.options.resync_waiting_after)
                .unwrap_or(chrono::Duration::MAX);
        // The flag and the statuses as literals, as the partial indexes
        // state them (migration 000008), so the planner can use those.
        Condition::any()
            .add(Expr::col(subscription::Column::NeedsSync).eq(Expr::cust("TRUE")))
            .add(
                Condition::all()
                    .add(Expr::cust(WAITING))
                    .add(subscription::Column::SyncedAt.lte(waited)),
            )
            .add(
                Condition::all()
                    .add(subscription::Column::RenewsAt.lte(now))
                    .add(
                        Expr::col(subscription::Column::RenewsAt)
                            .gte(Expr::col(subscription::Column::SyncedAt)),
                    ),
            )
            .add(
                Condition::all()
                    .add(subscription::Column::EndsAt.lte(now))
                    .add(
                        Expr::col(subscription::Column::EndsAt)
                            .gte(Expr::col(subscription::Column::SyncedAt)),
                    ),
            )
    }

    /// How many subscriptions the reconcile would re-read now (the
    /// operator's health page).
    pub(crate) async fn reconcile_backlog(&self) -> Result<u64, SyncError> {
        use sea_orm::PaginatorTrait;
        Ok(subscription::Entity::find()
            .filter(self.due_condition(self.now()))
            .count(self.db())
            .await?)
    }

    /// Renews the lease when a third of it has passed; false when it was
    /// lost (another instance holds it).
    async fn renew(&self, held: &mut Held<'_>) -> Result<bool, SyncError> {
        let now = self.now();
        let third = chrono::Duration::from_std(held.ttl / 3).unwrap_or(chrono::Duration::MAX);
        if now - held.renewed < third {
            return Ok(true);
        }
        let kept =
            super::lease::renew(self.db(), RECONCILE_LEASE, held.holder, now, held.ttl).await?;
        held.renewed = now;
        Ok(kept)
    }

    /// Marks abandoned the checkout intents that lapsed: opened and never
    /// returned from in the (short) lapse window, or returned from but
    /// never reported paid in `abandon_checkouts_after`. A unit of work, so
    /// that the guard's caches hear of each billable it changed.
    async fn lapse_checkouts(&self) -> Result<u64, SyncError> {
        let now = self.now();
        let before = |window: Duration| {
            now - chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX)
        };
        let options = &self.inner.options;
        let lapse = Local::Lapse {
            opened_before: before(options.lapse_opened_checkouts_after),
            awaiting_before: before(options.abandon_checkouts_after),
        };
        let effects = self
            .ingest(Batch::default().local(lapse), Origin::Reconcile)
            .await?;
        Ok(match effects.done.as_slice() {
            [Done::Lapsed(n)] => *n,
            _ => 0,
        })
    }

    /// [`Syncer::reconcile`] on one instance at a time: takes the
    /// `reconcile` lease in the database for `lease`, renews it every third
    /// of that while it works (a reconcile of thousands of subscriptions at
    /// the rate limit takes long), and gives it back at the end. `None` when
    /// another instance holds it; if the lease is lost meanwhile (this
    /// instance stalled past it), it stops and the holder goes on.
    pub async fn reconcile_exclusive(
        &self,
        lease: Duration,
    ) -> Result<Option<ReconcileReport>, SyncError> {
        let now = self.now();
        if !super::lease::acquire(self.db(), RECONCILE_LEASE, self.instance(), now, lease).await? {
            tracing::debug!("another instance is reconciling");
            return Ok(None);
        }
        let held = Held {
            holder: self.instance(),
            ttl: lease,
            renewed: now,
        };
        let report = Priority::Background
            .scope(self.reconcile_due(Some(held)))
            .await;
        super::lease::release(self.db(), RECONCILE_LEASE, self.instance()).await?;
        report.map(Some)
    }

    /// The background work a billing app needs, in one task, until it is
    /// aborted; start it once at start-up, on every instance:
    ///
    /// - at once, compares this app's clock with Octany's `Date`
    ///   ([`OctanyClient::clock_skew`](crate::OctanyClient::clock_skew)) and logs an
    ///   error when they differ by more than a minute (renewals, grace
    ///   periods and trials are judged on this app's clock);
    /// - loads the product catalog ([`Syncer::sync_products`], which the
    ///   pricing and swap pages read), again on each tick until it has
    ///   loaded once;
    /// - every `every` (on the syncer's clock): delivers the billing events
    ///   that are due ([`Syncer::deliver_due`]: failed listeners retried,
    ///   events of a process that died delivered) and runs
    ///   [`Syncer::reconcile_exclusive`] (lost webhooks, abandoned checkouts),
    ///   then the hooks of [`Syncer::on_tick`] (the notices' reminders).
    ///
    /// Failures are logged and tried again on the next tick. One instance
    /// reconciles at a time, and each event is delivered by one.
    pub fn spawn_background(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let syncer = self.clone();
        tokio::spawn(async move {
            syncer.check_clock().await;
            let mut catalog_loaded = false;
            loop {
                if !catalog_loaded {
                    match syncer.sync_products().await {
                        Ok(products) => {
                            catalog_loaded = true;
                            tracing::info!(products, "loaded the product catalog from Octany");
                        }
                        Err(error) => tracing::warn!(
                            %error,
                            "could not load the product catalog from Octany; pricing and swap pages show no prices until it loads (tried again on the next tick)"
                        ),
                    }
                }
                syncer.clock().sleep(every).await;
                syncer.tick(every).await;
            }
        })
    }

    /// Logs an error when this app's clock and Octany's disagree.
    async fn check_clock(&self) {
        match self.client().clock_skew().await {
            Ok(Some(skew)) if skew.abs() > crate::client::OctanyClient::CLOCK_TOLERANCE => {
                tracing::error!(
                    skew_seconds = skew.num_seconds(),
                    "this app's clock is {:+} s from Octany's `Date`: renewals, grace periods and trials are judged on this app's clock, so paying users can be refused. Set the machine's clock (NTP); on an in-process fake, build the app with `.clock(fake.app_clock())`",
                    skew.num_seconds()
                );
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, "could not compare this app's clock with Octany's")
            }
        }
    }

    /// One tick of the background work: due events, then the reconcile.
    async fn tick(&self, every: Duration) {
        match self.deliver_due().await {
            Ok(0) => {}
            Ok(delivered) => {
                tracing::info!(delivered, "delivered billing events left over")
            }
            Err(error) => tracing::warn!(%error, "delivering due billing events failed"),
        }
        match self
            .reconcile_exclusive(every.max(Duration::from_secs(60)))
            .await
        {
            Ok(None) => {}
            Ok(Some(report)) if report.synced > 0 || report.abandoned > 0 => {
                tracing::info!(
                    synced = report.synced,
                    failed = report.failed,
                    abandoned = report.abandoned,
                    "reconciled the billing mirror"
                );
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, "reconcile failed; trying again next time")
            }
        }
        for hook in self.tick_hooks() {
            hook().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::domain::model::SubscriptionStatus;

    #[test]
    fn the_waiting_literal_names_the_statuses_as_stored() {
        assert_eq!(
            super::WAITING,
            format!(
                "status IN ('{}', '{}')",
                SubscriptionStatus::Delayed.as_str(),
                SubscriptionStatus::Pending.as_str()
            )
        );
    }
}
