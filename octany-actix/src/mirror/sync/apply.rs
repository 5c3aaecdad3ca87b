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

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter, QuerySelect, SqlErr,
    TransactionSession, TransactionTrait, TryInsertResult,
};

use crate::domain::model::{Order, OrderState, Product, Subscription};
use crate::mirror::entity::{
    billable_ref, checkout, event, order, product, subscription, webhook_delivery,
};

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

/// An instant as a mark (microseconds since the epoch).
pub(crate) fn mark(at: DateTime<Utc>) -> i64 {
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

/// What a write found and did: the row as it was before (`None` when it
/// was absent), and what became of it.
pub(crate) struct Written<M> {
    /// What the write did.
    pub applied: Applied,
    /// The row before the write.
    pub before: Option<M>,
}

impl<M> Written<M> {
    fn inserted() -> Self {
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
async fn locked<C, E>(
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
async fn locked_or_inserted<C, A>(
    conn: &C,
    id: <<A::Entity as EntityTrait>::PrimaryKey as sea_orm::PrimaryKeyTrait>::ValueType,
    row: A,
) -> Result<Option<<A::Entity as EntityTrait>::Model>, DbErr>
where
    C: ConnectionTrait + TransactionTrait,
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

fn subscription_row(
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
fn to_the_second(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(at.timestamp(), 0).unwrap_or(at)
}

/// A subscription as the mirror keeps it in `data`.
pub(crate) fn subscription_data(s: &Subscription) -> serde_json::Value {
    serde_json::to_value(s).expect("a subscription serializes")
}

/// Applies a subscription observed at `mark` (`data`: its
/// [`subscription_data`]).
pub(crate) async fn apply_subscription<C: ConnectionTrait + TransactionTrait>(
    conn: &C,
    s: &Subscription,
    data: &serde_json::Value,
    mark: i64,
    source: Source,
    now: DateTime<Utc>,
) -> Result<Written<subscription::Model>, DbErr> {
    let row = subscription_row(s, data.clone(), mark, now);
    let id = s.id.to_string();
    if billable_ref(s.reference_id.as_deref()).is_none() {
        tracing::info!(subscription = %id, "subscription names no billable (reference_id is not type:id); mirrored unlinked");
    }
    let update = subscription::ActiveModel {
        created_at: NotSet,
        ..row.clone()
    };
    // The common case, a newer state of a stored row, in one statement on
    // PostgreSQL (lock, compare, write, and the row as it was).
    if conn.get_database_backend() == DbBackend::Postgres
        && let Some(before) = replace_if_older(conn, &id, &update, mark).await?
    {
        return Ok(Written {
            applied: Applied::Updated,
            before: Some(before),
        });
    }
    let Some(current) = locked_or_inserted(conn, id.clone(), row).await? else {
        return Ok(Written::inserted());
    };
    let by_id = || subscription::Entity::update_many().filter(subscription::Column::Id.eq(&id));
    let applied = match (current.sync_mark.cmp(&mark), current.data == *data, source) {
        (std::cmp::Ordering::Greater, ..) => Applied::Stale,
        (std::cmp::Ordering::Less, ..) | (std::cmp::Ordering::Equal, false, Source::Api) => {
            by_id().set(update).exec(conn).await?;
            Applied::Updated
        }
        (std::cmp::Ordering::Equal, true, Source::Api) => {
            by_id()
                .col_expr(
                    subscription::Column::SyncedAt,
                    Expr::value(to_the_second(now)),
                )
                .col_expr(subscription::Column::NeedsSync, Expr::value(false))
                .exec(conn)
                .await?;
            Applied::Unchanged
        }
        (std::cmp::Ordering::Equal, true, Source::Webhook) => Applied::Unchanged,
        (std::cmp::Ordering::Equal, false, Source::Webhook) => {
            by_id()
                .col_expr(subscription::Column::NeedsSync, Expr::value(true))
                .exec(conn)
                .await?;
            Applied::Conflict
        }
    };
    Ok(Written {
        applied,
        before: Some(current),
    })
}

/// PostgreSQL: the `SET` list of `update`, its values appended to `values`
/// and numbered after those already there.
fn set_list(update: &subscription::ActiveModel, values: &mut Vec<sea_orm::Value>) -> String {
    use sea_orm::{IdenStatic, Iterable};
    let mut sets = Vec::new();
    for column in subscription::Column::iter() {
        if matches!(column, subscription::Column::Id) {
            continue;
        }
        if let Set(value) = update.get(column) {
            values.push(value);
            sets.push(format!("\"{}\" = ${}", column.as_str(), values.len()));
        }
    }
    sets.join(", ")
}

/// PostgreSQL: the statement that replaces the row of `$id` with the `SET`
/// list if its mark is older than `$mark` (locking it, comparing, writing)
/// and returns the row as it was; `only_if` is a further condition on the
/// locked read.
fn replace_sql(sets: &str, id: usize, mark: usize, only_if: &str) -> String {
    format!(
        "UPDATE octany_subscriptions AS s SET {sets} \
         FROM (SELECT * FROM octany_subscriptions WHERE id = ${id}{only_if} FOR UPDATE) AS old \
         WHERE s.id = old.id AND old.sync_mark < ${mark} RETURNING old.*"
    )
}

/// PostgreSQL: replaces the row of `id` with `update` if its mark is older
/// than `mark`, in one statement that locks the row, compares and writes;
/// returns the row as it was. `None` when the row is absent or not older
/// (the caller then reads it and decides).
async fn replace_if_older<C: ConnectionTrait>(
    conn: &C,
    id: &str,
    update: &subscription::ActiveModel,
    mark: i64,
) -> Result<Option<subscription::Model>, DbErr> {
    use sea_orm::{FromQueryResult, Statement, Value};
    let mut values: Vec<Value> = vec![id.into(), mark.into()];
    let sets = set_list(update, &mut values);
    let row = conn
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            replace_sql(&sets, 1, 2, ""),
            values,
        ))
        .await?;
    row.map(|row| subscription::Model::from_query_result(&row, ""))
        .transpose()
}

/// What [`claim_and_replace`] did.
pub(crate) enum Claimed {
    /// The claim inserted nothing (seen before): nothing else was done.
    No,
    /// Claimed; the row as it was if a newer state replaced it, `None` when
    /// the row is absent or not older (the caller applies it as usual).
    Yes(Option<Box<subscription::Model>>),
}

/// PostgreSQL: inserts `claim` (a new delivery's row, `ON CONFLICT DO
/// NOTHING`) and, only if it inserted, [`replace_if_older`] of `s`, in one
/// statement: a new webhook delivery for a stored subscription costs one
/// round trip instead of two.
pub(crate) async fn claim_and_replace<C: ConnectionTrait>(
    conn: &C,
    claim: webhook_delivery::ActiveModel,
    s: &Subscription,
    data: &serde_json::Value,
    mark: i64,
    now: DateTime<Utc>,
) -> Result<Claimed, DbErr> {
    use sea_orm::{FromQueryResult, Statement};
    let claim = claim_all(vec![claim]);
    let update = subscription::ActiveModel {
        created_at: NotSet,
        ..subscription_row(s, data.clone(), mark, now)
    };
    let mut values = claim.values.map(|v| v.0).unwrap_or_default();
    values.push(s.id.to_string().into());
    let id = values.len();
    values.push(mark.into());
    let sets = set_list(&update, &mut values);
    let replace = replace_sql(&sets, id, id + 1, " AND EXISTS (SELECT 1 FROM claim)");
    let sql = format!(
        "WITH claim AS ({}), replaced AS ({replace}) \
         SELECT (SELECT count(*) FROM claim) AS octany_claimed, replaced.* \
         FROM (SELECT 1) AS one LEFT JOIN replaced ON TRUE",
        claim.sql
    );
    let row = conn
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            values,
        ))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("the claim's answer".into()))?;
    if row.try_get::<i64>("", "octany_claimed")? == 0 {
        return Ok(Claimed::No);
    }
    if row.try_get::<Option<String>>("", "id")?.is_none() {
        return Ok(Claimed::Yes(None));
    }
    Ok(Claimed::Yes(Some(Box::new(
        subscription::Model::from_query_result(&row, "")?,
    ))))
}

/// SQLite: a webhook's newer state of a stored subscription, the claim of
/// its delivery (`claim`, the delivery's row) and its `events`, as
/// statements that write only all together: the row is replaced only if it
/// is still `before` (its mark and content as read) and no delivery with
/// the claim's key is stored; the claim and the events are inserted only
/// if it was ([`insert_if_written`]). They answer one row (the
/// subscription's id) when they wrote, none when they wrote nothing (a
/// duplicate, a delivery that failed before, a row changed meanwhile).
/// Several deliveries' statements go in one [`batch`] (the group commit of
/// `sync::unit::group`).
pub(crate) fn replace_claimed(
    s: &Subscription,
    data: &serde_json::Value,
    mark: i64,
    now: DateTime<Utc>,
    before: &subscription::Model,
    claim: webhook_delivery::ActiveModel,
    events: Vec<event::ActiveModel>,
) -> Vec<sea_orm::Statement> {
    use sea_orm::QueryTrait;
    use sea_orm::sea_query::Query;
    let backend = DbBackend::Sqlite;
    let update = subscription::ActiveModel {
        created_at: NotSet,
        ..subscription_row(s, data.clone(), mark, now)
    };
    let key = claim.delivery_id.try_as_ref().cloned().unwrap_or_default();
    let mut write = subscription::Entity::update_many()
        .set(update)
        .filter(subscription::Column::Id.eq(s.id.as_str()))
        .filter(subscription::Column::SyncMark.eq(before.sync_mark))
        .filter(subscription::Column::Data.eq(before.data.clone()))
        .filter(Expr::not_exists(
            Query::select()
                .expr(Expr::val(1))
                .from(webhook_delivery::Entity)
                .and_where(webhook_delivery::Column::DeliveryId.eq(key))
                .to_owned(),
        ))
        .into_query();
    write.returning_col(subscription::Column::Id);
    let mut claim = insert_if_written(claim);
    claim.on_conflict(delivery_seen());
    let mut sql = vec![backend.build(&write), backend.build(&claim)];
    sql.extend(
        events
            .into_iter()
            .map(|row| backend.build(&insert_if_written(row))),
    );
    sql
}

/// PostgreSQL: inserts `claims` (new deliveries' rows) in one statement, a
/// delivery already stored left as it is; it answers the `delivery_id` of
/// each row it inserted.
pub(crate) fn claim_all(claims: Vec<webhook_delivery::ActiveModel>) -> sea_orm::Statement {
    use sea_orm::QueryTrait;
    let mut insert = webhook_delivery::Entity::insert_many(claims).into_query();
    insert
        .on_conflict(delivery_seen())
        .returning_col(webhook_delivery::Column::DeliveryId);
    DbBackend::Postgres.build(&insert)
}

/// PostgreSQL: replaces the rows of `states` (each a subscription, its
/// [`subscription_data`] and its mark) in one statement, `UPDATE … FROM
/// (VALUES …)`. The caller has locked the rows and found each older.
pub(crate) fn replace_all(
    states: &[(&Subscription, &serde_json::Value, i64)],
    now: DateTime<Utc>,
) -> sea_orm::Statement {
    use sea_orm::{IdenStatic, Iterable};
    let columns: Vec<_> = subscription::Column::iter()
        .filter(|c| !matches!(c, subscription::Column::CreatedAt))
        .collect();
    let mut values: Vec<sea_orm::Value> = Vec::new();
    let mut tuples = Vec::with_capacity(states.len());
    for (s, data, mark) in states {
        let row = subscription_row(s, (*data).clone(), *mark, now);
        let mut tuple = Vec::with_capacity(columns.len());
        for column in &columns {
            let value = row.get(*column).into_value();
            values.push(value.expect("subscription_row sets every column"));
            tuple.push(format!("${}", values.len()));
        }
        tuples.push(format!("({})", tuple.join(", ")));
    }
    let name = |c: &subscription::Column| format!("\"{}\"", c.as_str());
    let names: Vec<String> = columns.iter().map(name).collect();
    let sets: Vec<String> = columns
        .iter()
        .filter(|c| !matches!(c, subscription::Column::Id))
        .map(|c| format!("{0} = v.{0}", name(c)))
        .collect();
    let sql = format!(
        "UPDATE octany_subscriptions AS s SET {} FROM (VALUES {}) AS v({}) WHERE s.id = v.id",
        sets.join(", "),
        tuples.join(", "),
        names.join(", "),
    );
    sea_orm::Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

/// The claim's conflict clause: a delivery already stored is left as it is.
fn delivery_seen() -> sea_orm::sea_query::OnConflict {
    sea_orm::sea_query::OnConflict::column(webhook_delivery::Column::DeliveryId)
        .do_nothing()
        .to_owned()
}

/// SQLite: `INSERT INTO … (the row's set columns) SELECT (their values)
/// WHERE changes() = 1`, which inserts only if the statement before it in
/// the batch wrote its one row.
fn insert_if_written<A: ActiveModelTrait>(row: A) -> sea_orm::sea_query::InsertStatement {
    use sea_orm::Iterable;
    use sea_orm::sea_query::Query;
    let mut columns = Vec::new();
    let mut select = Query::select();
    for column in <A::Entity as EntityTrait>::Column::iter() {
        if let Set(value) | sea_orm::ActiveValue::Unchanged(value) = row.get(column) {
            columns.push(column);
            select.expr(Expr::val(value));
        }
    }
    select.and_where(Expr::cust("changes() = 1"));
    Query::insert()
        .into_table(A::Entity::default())
        .columns(columns)
        .select_from(select)
        .expect("as many values as columns")
        .to_owned()
}

/// SQLite: several statements sent as one (one hop to the driver's worker
/// thread instead of one each); their `?` placeholders take the values in
/// order. Rows come back from each statement that returns any, in order.
pub(crate) fn batch(statements: Vec<sea_orm::Statement>) -> sea_orm::Statement {
    let mut sql = Vec::with_capacity(statements.len());
    let mut values = Vec::new();
    for statement in statements {
        sql.push(statement.sql);
        values.extend(statement.values.map(|v| v.0).unwrap_or_default());
    }
    sea_orm::Statement::from_sql_and_values(DbBackend::Sqlite, sql.join(";\n"), values)
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
pub(crate) async fn apply_order<C: ConnectionTrait + TransactionTrait>(
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
pub(crate) async fn apply_product<C: ConnectionTrait + TransactionTrait>(
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

/// Completes the checkout intents of `billable` for `product` that this
/// subscription or order answers: opened, awaiting, or lapsed (a buyer
/// who paid after the lapse window).
pub(crate) async fn complete_checkouts<C: ConnectionTrait>(
    conn: &C,
    billable: &str,
    product: i64,
    subscription: Option<&str>,
    order: Option<&str>,
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let done = checkout::Entity::update_many()
        .col_expr(
            checkout::Column::Status,
            Expr::value(checkout::CheckoutStatus::Completed),
        )
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
        .filter(checkout::Column::Status.is_in([
            checkout::CheckoutStatus::Opened,
            checkout::CheckoutStatus::Awaiting,
            checkout::CheckoutStatus::Abandoned,
        ]))
        .exec(conn)
        .await?;
    Ok(done.rows_affected)
}
