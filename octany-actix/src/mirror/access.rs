//! What the guard reads: a billable's mirrored subscriptions and pending
//! checkout, cached for a short time and dropped by every sync of it.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder};

use crate::domain::clock::Clock;
use crate::domain::model::{AccessPolicy, Entitlement};
use crate::domain::plan::PlanSet;
use crate::mirror::entity::{checkout, subscription};

/// A billable's billing state, as the local mirror has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AccessState {
    /// Every mirrored subscription, newest first (shared, so the guard
    /// hands them out without copying).
    pub subscriptions: Vec<Arc<subscription::Model>>,
    /// The newest checkout the buyer came back from that Octany has not
    /// yet reported (an intent only opened is not one).
    pub pending_checkout: Option<checkout::Model>,
}

impl AccessState {
    /// Reads it from the database (two indexed queries).
    pub(crate) async fn load(db: &DatabaseConnection, billable: &str) -> Result<Self, DbErr> {
        let subscriptions = subscription::Entity::find()
            .filter(subscription::Column::BillableRef.eq(billable))
            .order_by_desc(subscription::Column::CreatedAt)
            .order_by_desc(subscription::Column::Id)
            .all(db)
            .await?
            .into_iter()
            .map(Arc::new)
            .collect();
        let pending_checkout = checkout::Entity::find()
            .filter(checkout::Column::BillableRef.eq(billable))
            .filter(checkout::Column::Status.eq(checkout::CheckoutStatus::Awaiting))
            .order_by_desc(checkout::Column::CreatedAt)
            .one(db)
            .await?;
        Ok(Self {
            subscriptions,
            pending_checkout,
        })
    }

    /// The subscription that grants access to a plan of `P`, if any.
    pub(crate) fn granting<P: PlanSet>(
        &self,
        clock: &dyn Clock,
        policy: AccessPolicy,
    ) -> Option<&Arc<subscription::Model>> {
        self.subscriptions
            .iter()
            .find(|s| P::admits(s.product_id) && s.has_access(clock, policy))
    }

    /// The current subscription: the one granting access, else the newest.
    pub(crate) fn current(
        &self,
        clock: &dyn Clock,
        policy: AccessPolicy,
    ) -> Option<&Arc<subscription::Model>> {
        self.granting::<crate::domain::plan::AnyPlan>(clock, policy)
            .or(self.subscriptions.first())
    }

    /// Whether a payment is still on its way: a checkout the buyer came
    /// back from, or a subscription Octany reports `pending` (an unpaid
    /// first invoice) that is not yet overdue.
    pub(crate) fn payment_pending(&self, clock: &dyn Clock, policy: AccessPolicy) -> bool {
        self.pending_checkout.is_some()
            || self.subscriptions.iter().any(|s| {
                s.status == crate::domain::model::SubscriptionStatus::Pending
                    && s.invoice_due_at(policy).is_none_or(|due| due > clock.now())
            })
    }
}

/// The guard's per-billable cache: answers for `ttl` (on the clock), and is
/// emptied for a billable whenever a sync changes it.
#[derive(Debug)]
pub(crate) struct AccessCache {
    ttl: Duration,
    entries: RwLock<HashMap<String, Cached>>,
}

/// A cached state and when it stops being trusted.
type Cached = (Arc<AccessState>, DateTime<Utc>);

impl AccessCache {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: RwLock::default(),
        }
    }

    pub(crate) fn get(&self, billable: &str, now: DateTime<Utc>) -> Option<Arc<AccessState>> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries
            .get(billable)
            .filter(|(_, expires)| *expires > now)
            .map(|(state, _)| state.clone())
    }

    pub(crate) fn put(&self, billable: &str, state: Arc<AccessState>, now: DateTime<Utc>) {
        if self.ttl.is_zero() {
            return;
        }
        let expires = now + chrono::Duration::from_std(self.ttl).unwrap_or(chrono::Duration::MAX);
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if entries.len() > 100_000 {
            entries.retain(|_, (_, e)| *e > now);
        }
        entries.insert(billable.to_owned(), (state, expires));
    }

    /// Forgets every billable.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn clear(&self) {
        self.entries
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    pub(crate) fn invalidate(&self, billable: &str) {
        self.entries
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(billable);
    }
}
