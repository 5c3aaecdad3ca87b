//! What the web layer asks of the mirror: named reads, and named writes
//! that each run as one unit of work. The web layer holds no connection
//! and queries no table; this is its whole door into the database.
//!
//! - **Reads**: a billable's state as the guard decides on it, its
//!   subscriptions and orders, a product, a checkout intent, a charge.
//! - **Writes**: what Octany answered to an action (a subscription or an
//!   order), and the app's own rows: open a checkout intent, the buyer's
//!   return from it, record a charge, mark it made (in the same
//!   transaction as its order), release it, take it over. Each goes
//!   through [`Syncer`]'s unit of work, so each change is announced to the
//!   guard's cache (and, on PostgreSQL, to the other instances) as a
//!   webhook's change is.
//!
//! The bookkeeping tables are written by the modules that own them, never
//! from here: webhook deliveries by the receiver (`mirror::webhook`),
//! billing events by the outbox (`sync::outbox`), leases by
//! `sync::lease`, the shared request budget by `mirror::budget`, the
//! notices' claims by `mirror::notices` (asked through here), the API-call
//! log by `mirror::api_calls` (read and pruned through here), the audit
//! log by `mirror::audit` (through here); the console's reads are
//! `mirror::console`'s (through here).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, DbErr, EntityTrait, QueryFilter, QueryOrder};

use crate::client::NewOrder;
use crate::domain::clock::Clock;
use crate::domain::model::{
    AccessPolicy, BillableRef, Order, ProductId, Subscription, SubscriptionId,
};
use crate::mirror::access::AccessState;
use crate::mirror::audit;
use crate::mirror::entity::api_call::Model as ApiCallRow;
use crate::mirror::entity::{
    charge, checkout, comp, event, order, product, subscription, usage, usage_period,
};
use crate::mirror::sync::apply::usage::Price;
use crate::mirror::sync::{Batch, Done, Local, Mark, Origin, SyncError, Syncer};

/// The mirror as the web layer sees it (see the module's documentation).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mirror<'a> {
    syncer: &'a Syncer,
}

impl<'a> Mirror<'a> {
    /// The mirror `syncer` writes.
    pub(crate) fn of(syncer: &'a Syncer) -> Self {
        Self { syncer }
    }

    /// On PostgreSQL, listens for the changes other instances commit and
    /// tells this instance's caches (`mirror::revocation`).
    #[cfg(feature = "postgres")]
    pub(crate) fn hear_changes(&self) -> Option<tokio::task::JoinHandle<()>> {
        let (cache, watchers) = (self.syncer.access_cache(), self.syncer.watchers());
        crate::mirror::revocation::spawn(self.syncer.db(), cache.clone(), watchers.clone())
    }

    /// `billable`'s state as the guard decides on it, from this instance's
    /// cache while fresh at `now` (`AccessCache::state`); `any_price`:
    /// whether a product is a plan sold at any price.
    pub(crate) async fn access(
        &self,
        billable: &str,
        now: DateTime<Utc>,
        any_price: &(dyn Fn(ProductId) -> bool + Sync),
    ) -> Result<Arc<AccessState>, DbErr> {
        let (cache, db) = (self.syncer.access_cache(), self.syncer.db());
        cache.state(db, billable, now, any_price).await
    }

    /// [`Mirror::access`] read from the database, past the cache (for
    /// decisions that cannot be undone, such as opening a checkout).
    pub(crate) async fn access_fresh(
        &self,
        billable: &str,
        now: DateTime<Utc>,
        any_price: &(dyn Fn(ProductId) -> bool + Sync),
    ) -> Result<Arc<AccessState>, DbErr> {
        let (cache, db) = (self.syncer.access_cache(), self.syncer.db());
        cache.fresh(db, billable, now, any_price).await
    }

    /// Whether a payment of `billable` is on its way (see
    /// [`AccessState::payment_pending`]).
    pub(crate) async fn payment_pending(
        &self,
        state: &AccessState,
        billable: &str,
        clock: &dyn Clock,
        policy: AccessPolicy,
    ) -> Result<bool, DbErr> {
        state
            .payment_pending(self.syncer.db(), billable, clock, policy)
            .await
    }

    /// Every subscription of `billable`, newest first.
    pub(crate) async fn subscriptions_of(
        &self,
        billable: &str,
    ) -> Result<Vec<subscription::Model>, DbErr> {
        subscription::Entity::find()
            .filter(subscription::Column::BillableRef.eq(billable))
            .order_by_desc(subscription::Column::CreatedAt)
            .order_by_desc(subscription::Column::Id)
            .all(self.syncer.db())
            .await
    }

    /// The subscription `id`.
    pub(crate) async fn subscription(
        &self,
        id: &str,
    ) -> Result<Option<subscription::Model>, DbErr> {
        subscription::Entity::find_by_id(id)
            .one(self.syncer.db())
            .await
    }

    /// Every order of `billable`, newest first.
    pub(crate) async fn orders_of(&self, billable: &str) -> Result<Vec<order::Model>, DbErr> {
        order::Entity::find()
            .filter(order::Column::BillableRef.eq(billable))
            .order_by_desc(order::Column::CreatedAt)
            .order_by_desc(order::Column::Id)
            .all(self.syncer.db())
            .await
    }

    /// The order `id`.
    pub(crate) async fn order(&self, id: &str) -> Result<Option<order::Model>, DbErr> {
        order::Entity::find_by_id(id).one(self.syncer.db()).await
    }

    /// The product `id` as the product cache has it.
    pub(crate) async fn product(&self, id: ProductId) -> Result<Option<product::Model>, DbErr> {
        product::Entity::find_by_id(id).one(self.syncer.db()).await
    }

    /// The product cache, by product id.
    pub(crate) async fn products(&self) -> Result<Vec<product::Model>, DbErr> {
        product::Entity::find()
            .order_by_asc(product::Column::Id)
            .all(self.syncer.db())
            .await
    }

    /// `billable`'s checkout intent `id`, if it is one of theirs. A
    /// subscription's checkout is completed by the subscription, before or
    /// after its first order arrives (by webhook or poll): its `order_id`
    /// is read as that first order, when the mirror has it.
    pub(crate) async fn intent(
        &self,
        billable: &BillableRef,
        id: &str,
    ) -> Result<Option<checkout::Model>, DbErr> {
        let Some(mut intent) = checkout::Entity::find_by_id(id)
            .one(self.syncer.db())
            .await?
            .filter(|c| c.billable_ref == *billable)
        else {
            return Ok(None);
        };
        if intent.order_id.is_none()
            && let Some(subscription) = &intent.subscription_id
        {
            intent.order_id = order::Entity::find()
                .filter(order::Column::SubscriptionId.eq(subscription.as_str()))
                .order_by_asc(order::Column::CreatedAt)
                .order_by_asc(order::Column::Id)
                .one(self.syncer.db())
                .await?
                .map(|o| o.id);
        }
        Ok(Some(intent))
    }

    /// `billable`'s newest intent awaiting Octany's word (`awaiting`) or,
    /// with `awaiting` false, its newest intent of any status.
    pub(crate) async fn newest_intent(
        &self,
        billable: &BillableRef,
        awaiting: bool,
    ) -> Result<Option<checkout::Model>, DbErr> {
        let mut find = checkout::Entity::find()
            .filter(checkout::Column::BillableRef.eq(billable.as_str()))
            .order_by_desc(checkout::Column::UpdatedAt)
            .order_by_desc(checkout::Column::CreatedAt);
        if awaiting {
            find = find.filter(checkout::Column::Status.eq(checkout::CheckoutStatus::Awaiting));
        }
        find.one(self.syncer.db()).await
    }

    /// `billable`'s charge under `key`.
    pub(crate) async fn charge(
        &self,
        billable: &str,
        key: &str,
    ) -> Result<Option<charge::Model>, DbErr> {
        charge::Entity::find_by_id((billable.to_owned(), key.to_owned()))
            .one(self.syncer.db())
            .await
    }

    /// Runs one write of the app's own rows as a unit of work.
    async fn write(&self, write: Local, origin: Origin) -> Result<Done, SyncError> {
        self.written(Batch::default().local(write), origin).await
    }

    /// Runs `batch`, whose last item is a write of the app's own rows, as
    /// a unit of work; what that write did.
    async fn written(&self, batch: Batch, origin: Origin) -> Result<Done, SyncError> {
        let effects = self.syncer.ingest(batch, origin).await?;
        Ok(effects
            .done
            .into_iter()
            .last()
            .expect("a local write answers what it did"))
    }

    /// Opens a checkout intent of `billable` for `product`, or reuses the
    /// one it opened in the last `reuse_for`; its id.
    pub(crate) async fn open_intent(
        &self,
        billable: &BillableRef,
        product: ProductId,
        reuse_for: chrono::Duration,
    ) -> Result<String, SyncError> {
        let open = Local::OpenIntent {
            billable: billable.clone(),
            product,
            id: uuid::Uuid::new_v4().to_string(),
            reuse_since: self.syncer.clock().now() - reuse_for,
        };
        match self.write(open, Origin::Action).await? {
            Done::Opened(id) => Ok(id),
            other => unreachable!("opening an intent answered {other:?}"),
        }
    }

    /// The buyer came back through the success URL of `billable`'s intent
    /// `id`: an opened (or lapsed) intent now awaits Octany's word. The
    /// intent as it now stands.
    pub(crate) async fn return_from_checkout(
        &self,
        billable: &BillableRef,
        id: &str,
    ) -> Result<Option<checkout::Model>, SyncError> {
        let returned = Local::Returned {
            billable: billable.clone(),
            id: id.to_owned(),
        };
        match self.write(returned, Origin::Action).await? {
            Done::Returned(intent) => Ok(intent),
            other => unreachable!("a return from checkout answered {other:?}"),
        }
    }

    /// Records the charge of `order` to `billable` under `key`, about to
    /// be sent on `subscription` whose orders were `known` before it; false
    /// when the key is taken.
    pub(crate) async fn record_charge(
        &self,
        billable: &BillableRef,
        key: &str,
        subscription: &SubscriptionId,
        order: &NewOrder,
        known: &[&str],
    ) -> Result<bool, SyncError> {
        let now = self.syncer.clock().now();
        let row = charge::Model {
            billable_ref: billable.to_string(),
            key: key.to_owned(),
            subscription_id: subscription.to_string(),
            product_id: order.product_id.0,
            amount: order.amount,
            description: order.description.clone(),
            state: charge::ChargeState::Sending,
            order_id: None,
            known_orders: serde_json::to_string(known).expect("strings serialize"),
            attempted_at: now,
            created_at: now,
            updated_at: now,
        };
        self.charge_write(Local::RecordCharge(Box::new(row)), None)
            .await
    }

    /// `billable`'s charge under `key` made `made` (as Octany had it at
    /// `date`) on `subscription`: the order and the charge's mark are
    /// written in one unit of work.
    pub(crate) async fn charge_made(
        &self,
        billable: &BillableRef,
        key: &str,
        subscription: &SubscriptionId,
        made: Order,
        date: Option<DateTime<Utc>>,
    ) -> Result<(), SyncError> {
        let write = Local::ChargeMade {
            billable: billable.clone(),
            key: key.to_owned(),
            order: made.id.to_string(),
        };
        let order = Batch::default().order(made, Some(subscription.clone()), Mark::of(date));
        self.charge_write(write, Some(order)).await.map(drop)
    }

    /// Frees `billable`'s key `key`: Octany refused its charge and made
    /// nothing.
    pub(crate) async fn release_charge(
        &self,
        billable: &BillableRef,
        key: &str,
    ) -> Result<(), SyncError> {
        let release = Local::ReleaseCharge {
            billable: billable.clone(),
            key: key.to_owned(),
        };
        self.charge_write(release, None).await.map(drop)
    }

    /// Takes over `billable`'s charge under `key`, last sent at
    /// `attempted_at` by a request that died; false when another request
    /// took it first.
    pub(crate) async fn take_over_charge(
        &self,
        billable: &BillableRef,
        key: &str,
        attempted_at: DateTime<Utc>,
    ) -> Result<bool, SyncError> {
        let take = Local::TakeOverCharge {
            billable: billable.clone(),
            key: key.to_owned(),
            attempted_at,
        };
        self.charge_write(take, None).await
    }

    async fn charge_write(&self, write: Local, with: Option<Batch>) -> Result<bool, SyncError> {
        match self
            .written(with.unwrap_or_default().local(write), Origin::Action)
            .await?
        {
            Done::Charge(written) => Ok(written),
            other => unreachable!("a charge's write answered {other:?}"),
        }
    }

    /// Records `quantity` of `meter` used by `billable` under `key`, at
    /// the clock's now; false when the key was recorded before (it counts
    /// once).
    pub(crate) async fn record_usage(
        &self,
        billable: &BillableRef,
        meter: &str,
        key: &str,
        quantity: i64,
    ) -> Result<bool, SyncError> {
        let row = usage::Model {
            billable_ref: billable.to_string(),
            meter: meter.to_owned(),
            key: key.to_owned(),
            quantity,
            recorded_at: self.syncer.clock().now(),
            period_key: None,
        };
        match self
            .write(Local::RecordUsage(Box::new(row)), Origin::Action)
            .await?
        {
            Done::Usage(recorded) => Ok(recorded),
            other => unreachable!("recording usage answered {other:?}"),
        }
    }

    /// Closes the period `key` of `billable`'s `meter`, ended by
    /// `subscription`'s renewal at `period_end`, priced at `price`; the
    /// period as its first closer wrote it.
    pub(crate) async fn close_period(
        &self,
        billable: &BillableRef,
        meter: &str,
        key: &str,
        subscription: &SubscriptionId,
        period_end: DateTime<Utc>,
        price: Price,
    ) -> Result<usage_period::Model, SyncError> {
        let row = usage_period::Model {
            billable_ref: billable.to_string(),
            key: key.to_owned(),
            meter: meter.to_owned(),
            subscription_id: subscription.to_string(),
            quantity: 0,
            amount: 0,
            period_end,
            closed_at: self.syncer.clock().now(),
        };
        match self
            .write(Local::ClosePeriod(Box::new(row), price), Origin::Action)
            .await?
        {
            Done::Period(period) => Ok(*period),
            other => unreachable!("closing a period answered {other:?}"),
        }
    }

    /// The total of `billable`'s uses of `meter` not yet in a closed period.
    pub(crate) async fn open_usage(&self, billable: &str, meter: &str) -> Result<i64, DbErr> {
        crate::mirror::sync::apply::usage::total(self.syncer.db(), billable, meter, None).await
    }

    /// Grants the comp `row`.
    pub(crate) async fn grant_comp(&self, row: comp::Model) -> Result<(), SyncError> {
        self.write(Local::GrantComp(Box::new(row)), Origin::Action)
            .await
            .map(drop)
    }

    /// Revokes `billable`'s comp `id`, by `by`; false when it was revoked
    /// before (or is not theirs).
    pub(crate) async fn revoke_comp(
        &self,
        billable: &BillableRef,
        id: &str,
        by: &str,
    ) -> Result<bool, SyncError> {
        let revoke = Local::RevokeComp {
            billable: billable.clone(),
            id: id.to_owned(),
            by: by.to_owned(),
        };
        match self.write(revoke, Origin::Action).await? {
            Done::Comp(revoked) => Ok(revoked),
            other => unreachable!("revoking a comp answered {other:?}"),
        }
    }

    /// Every comp of `billable`, revoked and ended ones too, newest first.
    pub(crate) async fn comps_of(&self, billable: &str) -> Result<Vec<comp::Model>, DbErr> {
        comp::Entity::find()
            .filter(comp::Column::BillableRef.eq(billable))
            .order_by_desc(comp::Column::CreatedAt)
            .order_by_desc(comp::Column::Id)
            .all(self.syncer.db())
            .await
    }

    /// The newest `limit` calls to Octany for `billable` (`mirror::api_calls`).
    pub(crate) async fn api_calls_of(
        &self,
        billable: &str,
        limit: u64,
    ) -> Result<Vec<ApiCallRow>, DbErr> {
        crate::mirror::api_calls::of(self.syncer.db(), billable, limit).await
    }

    /// Deletes the API-call log's lines older than `before`.
    pub(crate) async fn prune_api_calls(&self, before: DateTime<Utc>) -> Result<u64, DbErr> {
        crate::mirror::api_calls::prune(self.syncer.db(), before).await
    }

    /// The audit log of operators' actions (`mirror::audit`).
    pub(crate) fn audit(&self) -> audit::AuditLog<'a> {
        audit::AuditLog(self.syncer.db())
    }

    /// What the operator's console reads (`mirror::console`).
    pub(crate) fn console(&self) -> crate::mirror::console::ConsoleReads<'a> {
        crate::mirror::console::ConsoleReads(self.syncer.db())
    }

    /// How many subscriptions the reconcile would re-read now.
    pub(crate) async fn reconcile_backlog(&self) -> Result<u64, SyncError> {
        self.syncer.reconcile_backlog().await
    }

    /// The billable a stored billing event concerns (`None`: no such
    /// event, or one about no billable).
    pub(crate) async fn event_billable(&self, id: &str) -> Result<Option<String>, DbErr> {
        let row = event::Entity::find_by_id(id).one(self.syncer.db()).await?;
        Ok(row.and_then(|row| row.billable_ref).map(|b| b.to_string()))
    }

    /// The comp `id`.
    pub(crate) async fn comp(&self, id: &str) -> Result<Option<comp::Model>, DbErr> {
        comp::Entity::find_by_id(id).one(self.syncer.db()).await
    }

    /// Writes a subscription Octany answered to an action (as it was at
    /// `date`).
    pub(crate) async fn record_subscription(
        &self,
        s: Subscription,
        date: Option<DateTime<Utc>>,
    ) -> Result<(), SyncError> {
        self.syncer
            .ingest(
                Batch::default().subscription(s, Mark::of(date)),
                Origin::Action,
            )
            .await
            .map(drop)
    }

    /// Writes an order Octany answered (as it was at `date`).
    pub(crate) async fn record_order(
        &self,
        o: Order,
        date: Option<DateTime<Utc>>,
    ) -> Result<(), SyncError> {
        self.syncer
            .ingest(
                Batch::default().order(o, None, Mark::of(date)),
                Origin::Action,
            )
            .await
            .map(drop)
    }
}

/// The notices' bookkeeping (`mirror::notices`).
impl Mirror<'_> {
    /// Claims a notice for sending (see [`crate::mirror::notices::claim`]).
    pub(crate) async fn claim_notice(
        &self,
        row: crate::mirror::entity::notice::Model,
        now: DateTime<Utc>,
    ) -> Result<crate::mirror::notices::Claim, DbErr> {
        crate::mirror::notices::claim(self.syncer, row, now).await
    }

    /// The mail server accepted the notice.
    pub(crate) async fn notice_sent(
        &self,
        event_id: &str,
        kind: &str,
        now: DateTime<Utc>,
    ) -> Result<(), DbErr> {
        crate::mirror::notices::sent(self.syncer, event_id, kind, now).await
    }

    /// The mail server refused the notice: tried again later.
    pub(crate) async fn notice_refused(
        &self,
        event_id: &str,
        kind: &str,
        error: &str,
    ) -> Result<(), DbErr> {
        crate::mirror::notices::unsent(self.syncer, event_id, kind, "failed", error).await
    }

    /// The connection was lost mid-send: not sent again.
    pub(crate) async fn notice_uncertain(
        &self,
        event_id: &str,
        kind: &str,
        error: &str,
    ) -> Result<(), DbErr> {
        crate::mirror::notices::unsent(self.syncer, event_id, kind, "uncertain", error).await
    }

    /// The active subscriptions renewing after `from` and at the latest at
    /// `to` (the notices' renewal reminders).
    pub(crate) async fn renewing_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<subscription::Model>, DbErr> {
        subscription::Entity::find()
            .filter(subscription::Column::Status.eq("active"))
            .filter(subscription::Column::RenewsAt.gt(from))
            .filter(subscription::Column::RenewsAt.lte(to))
            .all(self.syncer.db())
            .await
    }

    /// The subscriptions waiting for their first invoice to be paid (the
    /// notices' due-soon reminders).
    pub(crate) async fn awaiting_invoices(&self) -> Result<Vec<subscription::Model>, DbErr> {
        subscription::Entity::find()
            .filter(subscription::Column::Status.eq("pending"))
            .all(self.syncer.db())
            .await
    }

    /// The notices of one billing event.
    pub(crate) async fn notices_of_event(
        &self,
        event_id: &str,
    ) -> Result<Vec<crate::mirror::entity::notice::Model>, DbErr> {
        crate::mirror::notices::of_event(self.syncer, event_id).await
    }
}
