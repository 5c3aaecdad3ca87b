//! Writing Octany's state into the mirror: idempotent, safe under
//! concurrency, and never backwards.
//!
//! **The ordering rule.** Every row keeps `sync_mark`: the instant, by
//! Octany's clock, at which its stored state was true (a webhook's
//! `created_at`, or the `Date` of the API answer it came from), in
//! microseconds. An update is applied only when its mark is newer. Each
//! write is one atomic statement: `INSERT ... ON CONFLICT DO NOTHING`, then
//! `UPDATE ... WHERE sync_mark < :mark`; there is no read-then-insert race.
//! On an equal mark with different content: an answer of the API wins (it
//! is a read of the current state); two webhooks that disagree flag the
//! subscription `needs_sync`, and it is re-fetched from the API. Orders on
//! an equal mark keep the further state (`paid` beats `confirmed`).

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter, SqlErr,
    TransactionSession, TransactionTrait, TryInsertResult,
};

use crate::entity::{billable_ref, checkout, order, product, subscription};
use crate::model::{Order, OrderState, Product, Subscription};

/// What applying one resource did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// A new row.
    Inserted,
    /// A newer state replaced the row.
    Updated,
    /// The same state was already there.
    Unchanged,
    /// Older than the row: refused.
    Stale,
    /// As new as the row but different: flagged to be re-fetched.
    Conflict,
}

impl Applied {
    /// Whether the row changed.
    pub fn changed(self) -> bool {
        matches!(self, Applied::Inserted | Applied::Updated)
    }
}

/// Where a state came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A verified webhook.
    Webhook,
    /// A read of Octany's API.
    Api,
}

/// An instant as a mark (microseconds since the epoch).
pub fn mark(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

/// Inserts `row` unless a row with its primary key exists; true when it
/// inserted. One atomic statement on PostgreSQL and SQLite (`ON CONFLICT DO
/// NOTHING`, judged by rows affected); on MySQL, whose driver reports a
/// no-op `ON DUPLICATE KEY UPDATE` as one row found, a plain insert in a
/// savepoint whose unique violation means "already there".
pub(crate) async fn insert_if_absent<C, A>(conn: &C, row: A) -> Result<bool, DbErr>
where
    C: ConnectionTrait + TransactionTrait,
    A: ActiveModelTrait + Send,
{
    if conn.get_database_backend() != DbBackend::MySql {
        let result = A::Entity::insert(row)
            .on_conflict_do_nothing()
            .exec_without_returning(conn)
            .await?;
        return Ok(matches!(result, TryInsertResult::Inserted(n) if n > 0));
    }
    let savepoint = conn.begin().await?;
    match A::Entity::insert(row)
        .exec_without_returning(&savepoint)
        .await
    {
        Ok(_) => {
            savepoint.commit().await?;
            Ok(true)
        }
        Err(error) if matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            savepoint.rollback().await?;
            Ok(false)
        }
        Err(error) => Err(error),
    }
}

/// The write of every resource: the conditional update `newer` (applied
/// only when the row's mark is older), else an insert of `row` if the row
/// is absent, else (another writer inserted in between) `newer` once more.
/// `None` when nothing was written: the row is as new or newer.
async fn write_newer<C, A, F, Fut>(conn: &C, row: A, newer: F) -> Result<Option<Applied>, DbErr>
where
    C: ConnectionTrait + TransactionTrait,
    A: ActiveModelTrait + Send,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<sea_orm::UpdateResult, DbErr>>,
{
    if newer().await?.rows_affected > 0 {
        return Ok(Some(Applied::Updated));
    }
    if insert_if_absent(conn, row).await? {
        return Ok(Some(Applied::Inserted));
    }
    if newer().await?.rows_affected > 0 {
        return Ok(Some(Applied::Updated));
    }
    Ok(None)
}

fn subscription_row(s: &Subscription, mark: i64, now: DateTime<Utc>) -> subscription::ActiveModel {
    let method = s.billing_method.as_ref();
    subscription::ActiveModel {
        id: Set(s.id.to_string()),
        billable_ref: Set(billable_ref(s.reference_id.as_deref())),
        reference_id: Set(s.reference_id.clone()),
        status: Set(s.status.to_string()),
        product_id: Set(s.product.as_ref().map(|p| p.id.0)),
        product_name: Set(s.product.as_ref().map(|p| p.name.clone())),
        price: Set(s.price),
        vat: Set(s.vat),
        currency: Set(s.currency.clone()),
        renews_at: Set(s.renews_at),
        ends_at: Set(s.ends_at),
        billing_method_type: Set(method.map(|m| m.kind.to_string())),
        billing_email: Set(method.and_then(|m| m.email.clone())),
        update_card_url: Set(s.update_card_url.clone()),
        invoices_url: Set(s.invoices_url.clone()),
        cancel_url: Set(s.cancel_url.clone()),
        data: Set(serde_json::to_value(s).expect("a subscription serializes")),
        sync_mark: Set(mark),
        needs_sync: Set(false),
        created_at: Set(now),
        updated_at: Set(now),
        synced_at: Set(now),
    }
}

/// Applies a subscription observed at `mark`.
pub async fn apply_subscription<C: ConnectionTrait + TransactionTrait>(
    conn: &C,
    s: &Subscription,
    mark: i64,
    source: Source,
    now: DateTime<Utc>,
) -> Result<Applied, DbErr> {
    let row = subscription_row(s, mark, now);
    let id = s.id.to_string();
    if billable_ref(s.reference_id.as_deref()).is_none() {
        tracing::info!(subscription = %id, "subscription names no billable (reference_id is not type:id); mirrored unlinked");
    }
    let update = subscription::ActiveModel {
        created_at: NotSet,
        ..row.clone()
    };
    let newer = || {
        subscription::Entity::update_many()
            .set(update.clone())
            .filter(subscription::Column::Id.eq(&id))
            .filter(subscription::Column::SyncMark.lt(mark))
            .exec(conn)
    };
    if let Some(applied) = write_newer(conn, row, newer).await? {
        return Ok(applied);
    }
    let Some(current) = subscription::Entity::find_by_id(&id).one(conn).await? else {
        return Ok(Applied::Stale);
    };
    if current.sync_mark != mark {
        return Ok(Applied::Stale);
    }
    let same = current.data == serde_json::to_value(s).expect("a subscription serializes");
    match (same, source) {
        (true, Source::Api) => {
            subscription::Entity::update_many()
                .col_expr(subscription::Column::SyncedAt, Expr::value(now))
                .col_expr(subscription::Column::NeedsSync, Expr::value(false))
                .filter(subscription::Column::Id.eq(&id))
                .exec(conn)
                .await?;
            Ok(Applied::Unchanged)
        }
        (true, Source::Webhook) => Ok(Applied::Unchanged),
        (false, Source::Api) => {
            subscription::Entity::update_many()
                .set(update)
                .filter(subscription::Column::Id.eq(&id))
                .filter(subscription::Column::SyncMark.lte(mark))
                .exec(conn)
                .await?;
            Ok(Applied::Updated)
        }
        (false, Source::Webhook) => {
            subscription::Entity::update_many()
                .col_expr(subscription::Column::NeedsSync, Expr::value(true))
                .filter(subscription::Column::Id.eq(&id))
                .exec(conn)
                .await?;
            Ok(Applied::Conflict)
        }
    }
}

fn state_rank(state: &OrderState) -> u8 {
    match state {
        OrderState::Pending => 0,
        OrderState::Confirmed => 1,
        OrderState::Unknown(_) => 2,
        OrderState::Failed => 3,
        OrderState::Paid => 4,
        OrderState::Refunded => 5,
    }
}

/// Applies an order observed at `mark`; `subscription` links it when known
/// (a known link is never replaced by an unknown one).
pub async fn apply_order<C: ConnectionTrait + TransactionTrait>(
    conn: &C,
    o: &Order,
    subscription: Option<&str>,
    mark: i64,
    now: DateTime<Utc>,
) -> Result<Applied, DbErr> {
    let id = o.id.to_string();
    let subscription = subscription
        .map(str::to_owned)
        .or_else(|| o.subscription_id.as_ref().map(ToString::to_string));
    let row = order::ActiveModel {
        id: Set(id.clone()),
        subscription_id: Set(subscription.clone()),
        billable_ref: Set(billable_ref(o.reference_id.as_deref())),
        reference_id: Set(o.reference_id.clone()),
        state: Set(o.state.to_string()),
        total: Set(o.total),
        total_with_vat: Set(o.total_with_vat),
        currency: Set(o.currency.clone()),
        remote_id: Set(o.remote_id.clone()),
        items: Set(serde_json::to_value(&o.items).expect("items serialize")),
        data: Set(serde_json::to_value(o).expect("an order serializes")),
        sync_mark: Set(mark),
        created_at: Set(now),
        updated_at: Set(now),
    };
    let update = order::ActiveModel {
        created_at: NotSet,
        subscription_id: if subscription.is_some() {
            row.subscription_id.clone()
        } else {
            NotSet
        },
        ..row.clone()
    };
    let newer = || {
        order::Entity::update_many()
            .set(update.clone())
            .filter(order::Column::Id.eq(&id))
            .filter(order::Column::SyncMark.lt(mark))
            .exec(conn)
    };
    if let Some(applied) = write_newer(conn, row, newer).await? {
        return Ok(applied);
    }
    let Some(current) = order::Entity::find_by_id(&id).one(conn).await? else {
        return Ok(Applied::Stale);
    };
    if current.sync_mark != mark {
        if subscription.is_some() && current.subscription_id.is_none() {
            // An older listing still knows which subscription it belongs to.
            order::Entity::update_many()
                .col_expr(order::Column::SubscriptionId, Expr::value(subscription))
                .filter(order::Column::Id.eq(&id))
                .exec(conn)
                .await?;
        }
        return Ok(Applied::Stale);
    }
    if state_rank(&o.state) <= state_rank(&current.order_state()) {
        return Ok(Applied::Unchanged);
    }
    // Compare-and-set on the state read, so two racing ties cannot both win.
    let further = order::Entity::update_many()
        .set(update)
        .filter(order::Column::Id.eq(&id))
        .filter(order::Column::SyncMark.eq(mark))
        .filter(order::Column::State.eq(current.state))
        .exec(conn)
        .await?;
    Ok(if further.rows_affected > 0 {
        Applied::Updated
    } else {
        Applied::Unchanged
    })
}

/// Applies a product observed at `mark`.
pub async fn apply_product<C: ConnectionTrait + TransactionTrait>(
    conn: &C,
    p: &Product,
    mark: i64,
    now: DateTime<Utc>,
) -> Result<Applied, DbErr> {
    let row = product::ActiveModel {
        id: Set(p.id.0),
        name: Set(p.name.clone()),
        kind: Set(p.kind.clone()),
        interval: Set(p.billing_interval().map(str::to_owned)),
        price: Set(p.price),
        currency: Set(p.currency.clone()),
        vat_rate: Set(p.vat_rate),
        data: Set(serde_json::to_value(p).expect("a product serializes")),
        sync_mark: Set(mark),
        updated_at: Set(now),
    };
    let newer = || {
        product::Entity::update_many()
            .set(row.clone())
            .filter(product::Column::Id.eq(p.id.0))
            .filter(product::Column::SyncMark.lt(mark))
            .exec(conn)
    };
    Ok(write_newer(conn, row.clone(), newer)
        .await?
        .unwrap_or(Applied::Stale))
}

/// Removes a product deleted at `mark` (unless a newer state is stored).
pub async fn delete_product<C: ConnectionTrait>(
    conn: &C,
    p: &Product,
    mark: i64,
) -> Result<bool, DbErr> {
    let deleted = product::Entity::delete_many()
        .filter(product::Column::Id.eq(p.id.0))
        .filter(product::Column::SyncMark.lte(mark))
        .exec(conn)
        .await?;
    Ok(deleted.rows_affected > 0)
}

/// Completes the pending checkouts of `billable` for `product` that this
/// subscription or order answers.
pub async fn complete_checkouts<C: ConnectionTrait>(
    conn: &C,
    billable: &str,
    product: i64,
    subscription: Option<&str>,
    order: Option<&str>,
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let done = checkout::Entity::update_many()
        .col_expr(checkout::Column::Status, Expr::value(checkout::COMPLETED))
        .col_expr(
            checkout::Column::SubscriptionId,
            Expr::value(subscription.map(str::to_owned)),
        )
        .col_expr(
            checkout::Column::OrderId,
            Expr::value(order.map(str::to_owned)),
        )
        .col_expr(checkout::Column::CompletedAt, Expr::value(Some(now)))
        .col_expr(checkout::Column::UpdatedAt, Expr::value(now))
        .filter(checkout::Column::BillableRef.eq(billable))
        .filter(checkout::Column::ProductId.eq(product))
        .filter(checkout::Column::Status.eq(checkout::PENDING))
        .exec(conn)
        .await?;
    Ok(done.rows_affected)
}
