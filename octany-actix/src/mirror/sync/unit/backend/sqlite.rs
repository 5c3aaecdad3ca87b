//! SQLite: one writer at a time, so this syncer's units and groups take
//! turns (one turn); the fast write reads the deliveries' rows and writes
//! them in one batch, each delivery writing only if its row's mark is
//! older and its delivery new ([`claim_and_replace_batched`]). A transient
//! error is `BUSY` or `LOCKED` (and their extended codes): a unit that
//! read a row and finds it changed by another writer cannot write
//! (`BUSY_SNAPSHOT`) and runs again. (`BEGIN IMMEDIATE` gives the same
//! guarantee; in the webhooks benchmark it applied 747 deliveries a second
//! against 780 deferred, 4,000 unique, 16 at a time.)

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::NotSet, ActiveValue::Set, ColumnTrait, ConnectionTrait,
    DatabaseTransaction, DbBackend, DbErr, EntityTrait, QueryFilter,
};

use super::{Backend, Claimed, Fast, Grouping, delivery_seen, driver_code};
use crate::mirror::entity::{subscription, webhook_delivery};
use crate::mirror::sync::apply::subscription_row;

/// SQLite.
#[derive(Debug)]
pub(super) struct Sqlite;

#[async_trait::async_trait]
impl Backend for Sqlite {
    fn is_transient(&self, error: &DbErr) -> bool {
        driver_code(error)
            .and_then(|code| code.parse::<i32>().ok())
            .is_some_and(|code| matches!(code & 0xff, 5 | 6))
    }

    fn grouping(&self) -> Option<Grouping> {
        Some(Grouping {
            turns: 1,
            serial: true,
        })
    }

    async fn claim_and_replace(
        &self,
        txn: &DatabaseTransaction,
        fast: &[Fast<'_>],
        now: DateTime<Utc>,
    ) -> Result<Vec<Claimed>, DbErr> {
        claim_and_replace_batched(txn, fast, now).await
    }
}

/// SQLite: for each of `fast` (at most one a subscription), in one batch
/// (one hop to the driver's worker thread however many): read the rows as
/// they were, then replace each row whose mark is older if its delivery is
/// new, inserting the delivery's claim only if it did
/// ([`replace_claimed`]). A delivery it did not write is [`Claimed::No`].
/// The batch's statements run in order in one transaction: a writer that
/// commits between the read and a write makes the write fail (SQLite's
/// `BUSY_SNAPSHOT`), and the unit runs again.
async fn claim_and_replace_batched(
    conn: &DatabaseTransaction,
    fast: &[Fast<'_>],
    now: DateTime<Utc>,
) -> Result<Vec<Claimed>, DbErr> {
    use sea_orm::{FromQueryResult, QueryTrait};
    let ids: Vec<&str> = fast.iter().map(|f| f.subscription.id.as_str()).collect();
    let read = subscription::Entity::find()
        .filter(subscription::Column::Id.is_in(ids))
        .build(DbBackend::Sqlite);
    let mut statements = vec![read];
    statements.extend(fast.iter().flat_map(|f| replace_claimed(f, now)));
    // The read answers whole rows; each write that wrote, its
    // subscription's id alone.
    let mut before = std::collections::HashMap::new();
    let mut written = std::collections::BTreeSet::new();
    for row in conn.query_all_raw(batch(statements)).await? {
        if row.try_get::<i64>("", "sync_mark").is_ok() {
            let row = subscription::Model::from_query_result(&row, "")?;
            before.insert(row.id.clone(), row);
        } else {
            written.insert(row.try_get::<String>("", "id")?);
        }
    }
    Ok(fast
        .iter()
        .map(|f| {
            let id = f.subscription.id.as_str();
            match before.remove(id) {
                Some(before) if written.contains(id) => Claimed::Yes(Some(Box::new(before))),
                _ => Claimed::No,
            }
        })
        .collect())
}

/// SQLite: a webhook's newer state of a stored subscription and the claim
/// of its delivery, as statements that write only both together: the row
/// is replaced only if its mark is older (the ordering rule's `Updated`
/// for a webhook) and no delivery with the claim's key is stored, and the
/// claim is inserted only if it was ([`insert_if_written`]). The replace
/// answers one row (the subscription's id) when it wrote, none when it did
/// not.
fn replace_claimed(f: &Fast<'_>, now: DateTime<Utc>) -> [sea_orm::Statement; 2] {
    use sea_orm::QueryTrait;
    use sea_orm::sea_query::Query;
    let backend = DbBackend::Sqlite;
    let update = subscription::ActiveModel {
        created_at: NotSet,
        ..subscription_row(f.subscription, f.data.clone(), f.mark.0, now)
    };
    let mut write = subscription::Entity::update_many()
        .set(update)
        .filter(subscription::Column::Id.eq(f.subscription.id.as_str()))
        .filter(subscription::Column::SyncMark.lt(f.mark.0))
        .filter(Expr::not_exists(
            Query::select()
                .expr(Expr::val(1))
                .from(webhook_delivery::Entity)
                .and_where(webhook_delivery::Column::DeliveryId.eq(f.key()))
                .to_owned(),
        ))
        .into_query();
    write.returning_col(subscription::Column::Id);
    let mut claim = insert_if_written(f.claim.clone());
    claim.on_conflict(delivery_seen());
    [backend.build(&write), backend.build(&claim)]
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
fn batch(statements: Vec<sea_orm::Statement>) -> sea_orm::Statement {
    let mut sql = Vec::with_capacity(statements.len());
    let mut values = Vec::new();
    for statement in statements {
        sql.push(statement.sql);
        values.extend(statement.values.map(|v| v.0).unwrap_or_default());
    }
    sea_orm::Statement::from_sql_and_values(DbBackend::Sqlite, sql.join(";\n"), values)
}
