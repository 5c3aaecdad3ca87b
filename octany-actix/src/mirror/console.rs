//! What the operator's console reads (`web::console`): a billable found by
//! what support is given, its history across the tables, and the health
//! of the whole. Reads only; the console's actions go through
//! `web::ops`, audited.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, Func};
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, DbErr, EntityTrait, ExprTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect,
};

use crate::mirror::entity::{charge, checkout, event, lock, order, subscription, webhook_delivery};

/// The id prefix of the deliveries an endpoint check posts to this app
/// itself (`doctor`, the health page), which are not Octany's.
pub(crate) const ENDPOINT_CHECK: &str = "doctor-";

/// The console's reads on a database.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConsoleReads<'a>(pub(crate) &'a DatabaseConnection);

/// A billable's history, newest first in each list.
#[derive(Debug, Default)]
pub(crate) struct History {
    pub(crate) deliveries: Vec<webhook_delivery::Model>,
    pub(crate) events: Vec<event::Model>,
    pub(crate) checkouts: Vec<checkout::Model>,
    pub(crate) charges: Vec<charge::Model>,
}

/// The whole's health, as stored.
#[derive(Debug, Default)]
pub(crate) struct Stored {
    /// Deliveries whose applying failed: how many, and the newest.
    pub(crate) failed_deliveries: u64,
    pub(crate) newest_failed: Vec<webhook_delivery::Model>,
    /// Billing events whose listeners have not all run: how many, the
    /// oldest's time, and the oldest few.
    pub(crate) undelivered_events: u64,
    pub(crate) oldest_undelivered: Option<DateTime<Utc>>,
    pub(crate) undelivered: Vec<event::Model>,
    /// The leases (the reconcile's among them).
    pub(crate) leases: Vec<lock::Model>,
    /// Changes the reconcile made since the given time, and the newest.
    pub(crate) drift: u64,
    pub(crate) newest_drift: Vec<event::Model>,
    /// The newest delivery from Octany (a doctor's test excluded).
    pub(crate) last_delivery: Option<webhook_delivery::Model>,
    /// Requests to Octany since the given time: all, refused for the rate
    /// (429), failed (5xx or no answer).
    pub(crate) calls: u64,
    pub(crate) calls_limited: u64,
    pub(crate) calls_failed: u64,
}

impl ConsoleReads<'_> {
    /// The billables `query` names: a billable reference that has rows, a
    /// subscription, order or checkout id, or a billing e-mail (any case).
    pub(crate) async fn find(&self, query: &str) -> Result<Vec<String>, DbErr> {
        let db = self.0;
        let mut found: Vec<String> = Vec::new();
        let mut add = |refs: Vec<Option<String>>| {
            for r in refs.into_iter().flatten() {
                if !found.contains(&r) {
                    found.push(r);
                }
            }
        };
        let by_ref = subscription::Column::BillableRef.eq(query);
        let subs: Vec<Option<String>> = subscription::Entity::find()
            .select_only()
            .column(subscription::Column::BillableRef)
            .filter(
                Condition::any()
                    .add(by_ref)
                    .add(subscription::Column::Id.eq(query))
                    .add(
                        Expr::expr(Func::lower(Expr::col(subscription::Column::BillingEmail)))
                            .eq(query.to_lowercase()),
                    ),
            )
            .limit(50)
            .into_tuple()
            .all(db)
            .await?;
        add(subs);
        let orders: Vec<Option<String>> = order::Entity::find()
            .select_only()
            .column(order::Column::BillableRef)
            .filter(
                Condition::any()
                    .add(order::Column::BillableRef.eq(query))
                    .add(order::Column::Id.eq(query)),
            )
            .limit(50)
            .into_tuple()
            .all(db)
            .await?;
        add(orders);
        let checkouts: Vec<String> = checkout::Entity::find()
            .select_only()
            .column(checkout::Column::BillableRef)
            .filter(
                Condition::any()
                    .add(checkout::Column::BillableRef.eq(query))
                    .add(checkout::Column::Id.eq(query)),
            )
            .limit(50)
            .into_tuple()
            .all(db)
            .await?;
        add(checkouts.into_iter().map(Some).collect());
        Ok(found)
    }

    /// `billable`'s history: the deliveries about it or its
    /// `resources` (its subscriptions' and orders' ids), its billing
    /// events, checkout intents and charges; at most `limit` of each.
    pub(crate) async fn history(
        &self,
        billable: &str,
        resources: &[String],
        limit: u64,
    ) -> Result<History, DbErr> {
        let db = self.0;
        let mut about = Condition::any().add(webhook_delivery::Column::BillableRef.eq(billable));
        if !resources.is_empty() {
            about = about.add(webhook_delivery::Column::Resource.is_in(resources.iter().cloned()));
        }
        Ok(History {
            deliveries: webhook_delivery::Entity::find()
                .filter(about)
                .order_by_desc(webhook_delivery::Column::ReceivedAt)
                .limit(limit)
                .all(db)
                .await?,
            events: event::Entity::find()
                .filter(event::Column::BillableRef.eq(billable))
                .order_by_desc(event::Column::CreatedAt)
                .order_by_desc(event::Column::OccurredMark)
                .limit(limit)
                .all(db)
                .await?,
            checkouts: checkout::Entity::find()
                .filter(checkout::Column::BillableRef.eq(billable))
                .order_by_desc(checkout::Column::CreatedAt)
                .limit(limit)
                .all(db)
                .await?,
            charges: charge::Entity::find()
                .filter(charge::Column::BillableRef.eq(billable))
                .order_by_desc(charge::Column::CreatedAt)
                .limit(limit)
                .all(db)
                .await?,
        })
    }

    /// The stored delivery `id`.
    pub(crate) async fn delivery(
        &self,
        id: &str,
    ) -> Result<Option<webhook_delivery::Model>, DbErr> {
        webhook_delivery::Entity::find_by_id(id).one(self.0).await
    }

    /// The health of the whole as stored; drift and calls counted since
    /// `since`; at most `limit` of each list.
    pub(crate) async fn stored(&self, since: DateTime<Utc>, limit: u64) -> Result<Stored, DbErr> {
        use crate::mirror::entity::api_call;
        let db = self.0;
        let failed = webhook_delivery::Column::ProcessedAt.is_null();
        let undelivered = event::Column::DeliveredAt.is_null();
        let drift = Condition::all()
            .add(event::Column::Origin.eq("reconcile"))
            .add(event::Column::CreatedAt.gte(since));
        let calls = api_call::Column::At.gte(since);
        Ok(Stored {
            failed_deliveries: webhook_delivery::Entity::find()
                .filter(failed.clone())
                .count(db)
                .await?,
            newest_failed: webhook_delivery::Entity::find()
                .filter(failed)
                .order_by_desc(webhook_delivery::Column::ReceivedAt)
                .limit(limit)
                .all(db)
                .await?,
            undelivered_events: event::Entity::find()
                .filter(undelivered.clone())
                .count(db)
                .await?,
            oldest_undelivered: event::Entity::find()
                .select_only()
                .column_as(event::Column::CreatedAt.min(), "oldest")
                .filter(undelivered.clone())
                .into_tuple::<Option<DateTime<Utc>>>()
                .one(db)
                .await?
                .flatten(),
            undelivered: event::Entity::find()
                .filter(undelivered)
                .order_by_asc(event::Column::CreatedAt)
                .limit(limit)
                .all(db)
                .await?,
            leases: lock::Entity::find().all(db).await?,
            drift: event::Entity::find()
                .filter(drift.clone())
                .count(db)
                .await?,
            newest_drift: event::Entity::find()
                .filter(drift)
                .order_by_desc(event::Column::CreatedAt)
                .limit(limit)
                .all(db)
                .await?,
            last_delivery: webhook_delivery::Entity::find()
                .filter(webhook_delivery::Column::DeliveryId.not_like(format!("{ENDPOINT_CHECK}%")))
                .order_by_desc(webhook_delivery::Column::ReceivedAt)
                .one(db)
                .await?,
            calls: api_call::Entity::find()
                .filter(calls.clone())
                .count(db)
                .await?,
            calls_limited: api_call::Entity::find()
                .filter(calls.clone())
                .filter(api_call::Column::Status.eq(429))
                .count(db)
                .await?,
            calls_failed: api_call::Entity::find()
                .filter(calls)
                .filter(
                    Condition::any()
                        .add(api_call::Column::Status.is_null())
                        .add(api_call::Column::Status.gte(500)),
                )
                .count(db)
                .await?,
        })
    }
}
