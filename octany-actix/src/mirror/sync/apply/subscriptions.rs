//! Writing a subscription: the locked read-decide-write every backend
//! runs, and the single statements that do the same in fewer round trips
//! where a backend allows (PostgreSQL's locked `UPDATE … FROM`, SQLite's
//! batch whose statements write only all together).

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter, TransactionTrait,
};

use super::{
    Applied, Source, Written, decide, locked_or_inserted, subscription_row, to_the_second,
};
use crate::domain::model::Subscription;
use crate::mirror::entity::{event, subscription, webhook_delivery};

/// Applies a subscription observed at `mark` (`data`: its
/// [`subscription_data`](super::subscription_data)): the locked
/// read-decide-write every backend runs (a backend's one-statement form of
/// the common case, [`replace_if_older`], is tried first by the unit).
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

/// PostgreSQL: replaces the row of `s` with its state observed at `mark` if
/// the row's mark is older (the rule's `Updated`), in one statement that
/// locks the row, compares and writes; returns the row as it was. `None`
/// when the row is absent or not older (the caller then runs
/// [`apply_subscription`], which reads it and decides).
pub(crate) async fn replace_if_older<C: ConnectionTrait>(
    conn: &C,
    s: &Subscription,
    data: &serde_json::Value,
    mark: i64,
    now: DateTime<Utc>,
) -> Result<Option<subscription::Model>, DbErr> {
    use sea_orm::{FromQueryResult, Statement, Value};
    let update = subscription::ActiveModel {
        created_at: NotSet,
        ..subscription_row(s, data.clone(), mark, now)
    };
    let mut values: Vec<Value> = vec![s.id.as_str().into(), mark.into()];
    let sets = set_list(&update, &mut values);
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
/// [`subscription_data`](super::subscription_data) and its mark) in one statement, `UPDATE … FROM
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
