//! Writing Octany's state into the mirror: idempotent, safe under
//! concurrency, and never backwards.
//!
//! **The ordering rule.** Every row keeps `sync_mark`: the instant, by
//! Octany's clock, at which its stored state was true (a webhook's
//! `created_at`, or the `Date` of the API answer it came from), in
//! microseconds. An update is applied only when its mark is newer. Each
//! write reads its row locked (inserting it when absent), decides, and
//! writes, so no other writer can come between the decision and the write.
//! On an equal mark with different content: an answer of the API wins (it
//! is a read of the current state); two webhooks that disagree flag the
//! subscription `needs_sync`, and it is re-fetched from the API. Orders on
//! an equal mark keep the further state (`paid` beats `confirmed`).
//!
//! Subscriptions are written here by the locked read-decide-write (the
//! fast write of a new webhook delivery, one or many, is each backend's
//! own: `unit::backend`); the app's own rows (checkout intents, charges)
//! in [`local`].

mod local;
pub(crate) mod usage;

pub(crate) use local::{Done, Local, complete_checkouts, write as write_local};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter, QuerySelect, SqlErr,
    TryInsertResult,
};

use crate::domain::model::{Order, OrderState, Product, Subscription};
use crate::mirror::entity::{billable_ref, order, product, subscription};
use crate::mirror::sync::events::Origin;

/// What applying one resource did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Applied {
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
    pub(crate) fn changed(self) -> bool {
        matches!(self, Applied::Inserted | Applied::Updated)
    }
}

/// Where a state came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// A verified webhook.
    Webhook,
    /// A read of Octany's API.
    Api,
}

/// The ordering rule for a subscription, the one every write of it asks
/// (the locked read-decide-write; the fast writes of a new webhook
/// delivery write only its `Updated`, on the same comparison,
/// `stored < mark`): what a state observed at `mark`, brought from
/// `source`, does to a stored row whose mark is `stored`; `same` tells
/// whether their contents are equal (asked only on equal marks).
pub(crate) fn decide(
    stored: i64,
    mark: i64,
    source: Source,
    same: impl FnOnce() -> bool,
) -> Applied {
    use std::cmp::Ordering::{Equal, Greater, Less};
    match stored.cmp(&mark) {
        Greater => Applied::Stale,
        Less => Applied::Updated,
        Equal => match (same(), source) {
            (false, Source::Api) => Applied::Updated,
            (true, _) => Applied::Unchanged,
            (false, Source::Webhook) => Applied::Conflict,
        },
    }
}

impl Source {
    /// Where a state brought by `origin` came from.
    pub(crate) fn of(origin: Origin) -> Self {
        match origin {
            Origin::Webhook => Source::Webhook,
            _ => Source::Api,
        }
    }
}

/// An instant as a mark (microseconds since the epoch).
pub(crate) fn mark(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

/// When a state was true by Octany's clock: a webhook's `created_at`, or the
/// `Date` of the API answer it came in. Never the local clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Mark(pub(crate) i64);

impl Mark {
    /// The mark of an observation Octany dated; an undated one gets the
    /// lowest mark, which fills an absent row but never overwrites a
    /// stored one.
    pub(crate) fn of(at: Option<DateTime<Utc>>) -> Self {
        Self(at.map_or(0, mark))
    }

    /// Whether Octany dated it.
    pub(crate) fn is_dated(self) -> bool {
        self.0 > 0
    }
}

/// Inserts `row` unless a row with its primary key exists; true when it
/// inserted. One atomic statement on PostgreSQL and SQLite (`ON CONFLICT DO
/// NOTHING`, judged by rows affected). On MySQL, whose driver reports a
/// no-op `ON DUPLICATE KEY UPDATE` as one row found, a plain insert whose
/// unique violation means "already there": MySQL undoes the failed
/// statement alone and the transaction goes on, so no savepoint is needed
/// (PostgreSQL would abort the whole transaction).
pub(crate) async fn insert_if_absent<C, A>(conn: &C, row: A) -> Result<bool, DbErr>
where
    C: ConnectionTrait,
    A: ActiveModelTrait + Send,
{
    if conn.get_database_backend() != DbBackend::MySql {
        let result = A::Entity::insert(row)
            .on_conflict_do_nothing()
            .exec_without_returning(conn)
            .await?;
        return Ok(matches!(result, TryInsertResult::Inserted(n) if n > 0));
    }
    match A::Entity::insert(row).exec_without_returning(conn).await {
        Ok(_) => Ok(true),
        Err(error) if matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            Ok(false)
        }
        Err(error) => Err(error),
    }
}

/// What a write found and did: the row as it was before (`None` when it
/// was absent), and what became of it.
pub(crate) struct Written<M> {
    /// What the write did.
    pub applied: Applied,
    /// The row before the write.
    pub before: Option<M>,
}

impl<M> Written<M> {
    pub(super) fn inserted() -> Self {
        Self {
            applied: Applied::Inserted,
            before: None,
        }
    }
}

/// Reads the row of `id` for update: `SELECT ... FOR UPDATE` on PostgreSQL
/// and MySQL. SQLite has no row locks: there a unit whose row changed
/// after it read it cannot write (`BUSY_SNAPSHOT`) and runs again. With the row locked, the
/// decision taken from it (and the events derived from it) cannot be
/// overtaken by another writer.
pub(super) async fn locked<C, E>(
    conn: &C,
    id: <E::PrimaryKey as sea_orm::PrimaryKeyTrait>::ValueType,
) -> Result<Option<E::Model>, DbErr>
where
    C: ConnectionTrait,
    E: EntityTrait,
{
    E::find_by_id(id).lock_exclusive().one(conn).await
}

/// The row of `id` locked, inserting `row` first when absent: `None` when
/// this call inserted it, else the locked row as it stood (another writer
/// may have inserted it in between; then its committed row).
pub(super) async fn locked_or_inserted<C, A>(
    conn: &C,
    id: <<A::Entity as EntityTrait>::PrimaryKey as sea_orm::PrimaryKeyTrait>::ValueType,
    row: A,
) -> Result<Option<<A::Entity as EntityTrait>::Model>, DbErr>
where
    C: ConnectionTrait,
    A: ActiveModelTrait + Send,
    <<A::Entity as EntityTrait>::PrimaryKey as sea_orm::PrimaryKeyTrait>::ValueType: Clone,
{
    if let Some(current) = locked::<C, A::Entity>(conn, id.clone()).await? {
        return Ok(Some(current));
    }
    if insert_if_absent(conn, row).await? {
        return Ok(None);
    }
    locked::<C, A::Entity>(conn, id)
        .await?
        .map(Some)
        .ok_or_else(|| DbErr::RecordNotFound("a row that another writer had just inserted".into()))
}

pub(crate) fn subscription_row(
    s: &Subscription,
    data: serde_json::Value,
    mark: i64,
    now: DateTime<Utc>,
) -> subscription::ActiveModel {
    let method = s.billing_method.as_ref();
    subscription::ActiveModel {
        id: Set(s.id.to_string()),
        billable_ref: Set(billable_ref(s.reference_id.as_deref())),
        reference_id: Set(s.reference_id.clone()),
        status: Set(s.status.clone()),
        product_id: Set(s.product.as_ref().map(|p| p.id)),
        product_name: Set(s.product.as_ref().map(|p| p.name.clone())),
        price: Set(s.price),
        list_price: Set(s.product.as_ref().map(|p| p.price)),
        vat: Set(s.vat),
        currency: Set(s.currency.clone()),
        renews_at: Set(s.renews_at),
        ends_at: Set(s.ends_at),
        billing_method_type: Set(method.map(|m| m.kind.to_string())),
        billing_email: Set(method.and_then(|m| m.email.clone())),
        update_card_url: Set(s.update_card_url.clone()),
        invoices_url: Set(s.invoices_url.clone()),
        cancel_url: Set(s.cancel_url.clone()),
        data: Set(data),
        sync_mark: Set(mark),
        needs_sync: Set(false),
        created_at: Set(now),
        updated_at: Set(now),
        synced_at: Set(to_the_second(now)),
    }
}

/// `at` without its fraction of a second. Octany's dates have none, so a
/// read in the same second as an end or a renewal cannot tell whether it
/// came before Octany acted on it: kept to the second, `synced_at` is then
/// not after that date, and the reconcile reads the row again.
pub(super) fn to_the_second(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(at.timestamp(), 0).unwrap_or(at)
}

/// A subscription as the mirror keeps it in `data`.
pub(crate) fn subscription_data(s: &Subscription) -> serde_json::Value {
    serde_json::to_value(s).expect("a subscription serializes")
}

/// Applies a subscription observed at `mark` (`data`: its
/// [`subscription_data`]): the locked read-decide-write every backend
/// runs (for a new webhook delivery, the unit first tries its backend's
/// fast write, `unit::backend::Fast`).
pub(crate) async fn apply_subscription<C: ConnectionTrait>(
    conn: &C,
    s: &Subscription,
    data: &serde_json::Value,
    mark: i64,
    source: Source,
    now: DateTime<Utc>,
) -> Result<Written<subscription::Model>, DbErr> {
    let row = subscription_row(s, data.clone(), mark, now);
    let id = s.id.to_string();
    let update = subscription::ActiveModel {
        created_at: NotSet,
        ..row.clone()
    };
    let Some(current) = locked_or_inserted(conn, id.clone(), row).await? else {
        return Ok(Written::inserted());
    };
    let by_id = || subscription::Entity::update_many().filter(subscription::Column::Id.eq(&id));
    let applied = decide(current.sync_mark, mark, source, || current.data == *data);
    match (applied, source) {
        (Applied::Updated, _) => {
            by_id().set(update).exec(conn).await?;
        }
        // A read of the API confirms the row: it is fresh.
        (Applied::Unchanged, Source::Api) => {
            by_id()
                .col_expr(
                    subscription::Column::SyncedAt,
                    Expr::value(to_the_second(now)),
                )
                .col_expr(subscription::Column::NeedsSync, Expr::value(false))
                .exec(conn)
                .await?;
        }
        // Two webhooks disagree on one instant: the API settles it.
        (Applied::Conflict, _) => {
            by_id()
                .col_expr(subscription::Column::NeedsSync, Expr::value(true))
                .exec(conn)
                .await?;
        }
        _ => {}
    }
    Ok(Written {
        applied,
        before: Some(current),
    })
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
/// (a known link is never replaced by an unknown one). On an equal mark the
/// further state wins (`paid` beats `confirmed`).
pub(crate) async fn apply_order<C: ConnectionTrait>(
    conn: &C,
    o: &Order,
    subscription: Option<&str>,
    mark: i64,
    now: DateTime<Utc>,
) -> Result<Written<order::Model>, DbErr> {
    let id = o.id.to_string();
    let subscription = subscription
        .map(str::to_owned)
        .or_else(|| o.subscription_id.as_ref().map(ToString::to_string));
    let row = order::ActiveModel {
        id: Set(id.clone()),
        subscription_id: Set(subscription.clone()),
        billable_ref: Set(billable_ref(o.reference_id.as_deref())),
        reference_id: Set(o.reference_id.clone()),
        state: Set(o.state.clone()),
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
    let Some(current) = locked_or_inserted(conn, id.clone(), row).await? else {
        return Ok(Written::inserted());
    };
    let by_id = || order::Entity::update_many().filter(order::Column::Id.eq(&id));
    let further = state_rank(&o.state) > state_rank(&current.state);
    let applied = if current.sync_mark < mark || (current.sync_mark == mark && further) {
        by_id().set(update).exec(conn).await?;
        Applied::Updated
    } else {
        if current.sync_mark > mark && subscription.is_some() && current.subscription_id.is_none() {
            // An older listing still knows which subscription it belongs to.
            by_id()
                .col_expr(order::Column::SubscriptionId, Expr::value(subscription))
                .exec(conn)
                .await?;
        }
        if current.sync_mark > mark {
            Applied::Stale
        } else {
            Applied::Unchanged
        }
    };
    Ok(Written {
        applied,
        before: Some(current),
    })
}

/// Applies a product observed at `mark`.
pub(crate) async fn apply_product<C: ConnectionTrait>(
    conn: &C,
    p: &Product,
    mark: i64,
    now: DateTime<Utc>,
) -> Result<Applied, DbErr> {
    let row = product::ActiveModel {
        id: Set(p.id),
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
    let Some(current) = locked_or_inserted(conn, p.id, row.clone()).await? else {
        return Ok(Applied::Inserted);
    };
    if current.sync_mark >= mark {
        return Ok(Applied::Stale);
    }
    product::Entity::update_many()
        .set(row)
        .filter(product::Column::Id.eq(p.id.0))
        .exec(conn)
        .await?;
    Ok(Applied::Updated)
}

/// Removes a product deleted at `mark` (unless a newer state is stored).
pub(crate) async fn delete_product<C: ConnectionTrait>(
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

#[cfg(test)]
mod tests {
    use super::{Applied, Source, decide};

    #[test]
    fn the_ordering_rule_for_a_subscription() {
        let never = || panic!("contents are compared only on equal marks");
        // Older than the row: refused, whoever brings it.
        assert_eq!(decide(10, 9, Source::Webhook, never), Applied::Stale);
        assert_eq!(decide(10, 9, Source::Api, never), Applied::Stale);
        // Newer: written.
        assert_eq!(decide(10, 11, Source::Webhook, never), Applied::Updated);
        assert_eq!(decide(10, 11, Source::Api, never), Applied::Updated);
        // As new, the same: nothing to write.
        assert_eq!(decide(10, 10, Source::Webhook, || true), Applied::Unchanged);
        assert_eq!(decide(10, 10, Source::Api, || true), Applied::Unchanged);
        // As new, different: the API's read wins; two webhooks conflict.
        assert_eq!(decide(10, 10, Source::Api, || false), Applied::Updated);
        assert_eq!(decide(10, 10, Source::Webhook, || false), Applied::Conflict);
    }
}
