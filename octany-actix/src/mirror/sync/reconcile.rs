//! The periodic reconcile: the mirror converges even if every webhook is lost.

use std::time::Duration;

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, Condition, EntityTrait, ExprTrait, QueryFilter, QuerySelect};

use super::{Origin, SyncError, Syncer};
use crate::client::Priority;
use crate::domain::model::SubscriptionId;
use crate::mirror::entity::{checkout, subscription};

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
}

impl Syncer {
    /// Re-syncs every subscription whose `renews_at` or `ends_at` has passed
    /// since it was last synced, or that is flagged `needs_sync`; marks
    /// checkout intents that lapsed abandoned. Safe to call at any time.
    /// Its requests to Octany are background work: they wait behind any
    /// person's and leave half the burst to them.
    pub async fn reconcile(&self) -> Result<ReconcileReport, SyncError> {
        Priority::Background.scope(self.reconcile_due()).await
    }

    async fn reconcile_due(&self) -> Result<ReconcileReport, SyncError> {
        let now = self.now();
        let due = Condition::any()
            .add(subscription::Column::NeedsSync.eq(true))
            .add(
                Condition::all()
                    .add(subscription::Column::RenewsAt.lte(now))
                    .add(
                        Expr::col(subscription::Column::RenewsAt)
                            .gt(Expr::col(subscription::Column::SyncedAt)),
                    ),
            )
            .add(
                Condition::all()
                    .add(subscription::Column::EndsAt.lte(now))
                    .add(
                        Expr::col(subscription::Column::EndsAt)
                            .gt(Expr::col(subscription::Column::SyncedAt)),
                    ),
            );
        let ids: Vec<String> = subscription::Entity::find()
            .select_only()
            .column(subscription::Column::Id)
            .filter(due)
            .into_tuple()
            .all(self.db())
            .await?;
        metrics::gauge!("octany_reconcile_backlog").set(ids.len() as f64);
        let mut report = ReconcileReport::default();
        for id in ids {
            report.synced += 1;
            if let Err(error) = self
                .sync_subscription_by(&SubscriptionId::new(id.clone()), Origin::Reconcile)
                .await
            {
                report.failed += 1;
                tracing::warn!(subscription = %id, %error, "reconcile could not re-sync a subscription");
            }
        }
        report.abandoned = self.lapse_checkouts().await?;
        Ok(report)
    }

    /// Marks abandoned the checkout intents that lapsed: opened and never
    /// returned from in the (short) lapse window, or returned from but
    /// never reported paid in `abandon_checkouts_after`.
    async fn lapse_checkouts(&self) -> Result<u64, SyncError> {
        let now = self.now();
        let before = |window: Duration| {
            now - chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX)
        };
        let options = &self.inner.options;
        let lapsed = Condition::any()
            .add(
                Condition::all()
                    .add(checkout::Column::Status.eq(checkout::CheckoutStatus::Opened))
                    .add(
                        checkout::Column::UpdatedAt
                            .lt(before(options.lapse_opened_checkouts_after)),
                    ),
            )
            .add(
                Condition::all()
                    .add(checkout::Column::Status.eq(checkout::CheckoutStatus::Awaiting))
                    .add(checkout::Column::UpdatedAt.lt(before(options.abandon_checkouts_after))),
            );
        Ok(checkout::Entity::update_many()
            .col_expr(
                checkout::Column::Status,
                Expr::value(checkout::CheckoutStatus::Abandoned),
            )
            .col_expr(checkout::Column::UpdatedAt, Expr::value(now))
            .filter(lapsed)
            .exec(self.db())
            .await?
            .rows_affected)
    }

    /// [`Syncer::reconcile`] on one instance at a time: takes the
    /// `reconcile` lease in the database (for at most `lease`), runs, gives
    /// it back. `None` when another instance holds it.
    pub async fn reconcile_exclusive(
        &self,
        lease: Duration,
    ) -> Result<Option<ReconcileReport>, SyncError> {
        let now = self.now();
        if !super::lease::acquire(self.db(), RECONCILE_LEASE, self.instance(), now, lease).await? {
            tracing::debug!("another instance is reconciling");
            return Ok(None);
        }
        let report = self.reconcile().await;
        super::lease::release(self.db(), RECONCILE_LEASE, self.instance()).await?;
        report.map(Some)
    }

    /// Every `every` (on the syncer's clock), until the returned task is
    /// aborted: delivers the billing events that are due
    /// ([`Syncer::deliver_due`]) and runs [`Syncer::reconcile_exclusive`];
    /// failures are logged. Safe to start on every instance of an app: one
    /// reconciles at a time, and each event is delivered by one.
    pub fn spawn_reconciler(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let syncer = self.clone();
        tokio::spawn(async move {
            loop {
                syncer.clock().sleep(every).await;
                match syncer.deliver_due().await {
                    Ok(0) => {}
                    Ok(delivered) => {
                        tracing::info!(delivered, "delivered billing events left over")
                    }
                    Err(error) => tracing::warn!(%error, "delivering due billing events failed"),
                }
                match syncer
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
            }
        })
    }
}
