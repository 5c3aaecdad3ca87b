//! Writing a subscription: the locked read-decide-write every backend
//! runs, and the fast write of the common webhook (a new delivery's claim
//! with a newer state of a stored subscription) for one delivery or many,
//! in the fewest round trips a backend allows: PostgreSQL's one statement
//! ([`claim_and_replace`]), SQLite's read and one batch
//! ([`claim_and_replace_batched`]).

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter, TransactionTrait,
};

use super::{
    Applied, Mark, Source, Written, decide, locked_or_inserted, subscription_row, to_the_second,
};
use crate::domain::model::Subscription;
use crate::mirror::entity::{subscription, webhook_delivery};

/// Applies a subscription observed at `mark` (`data`: its
/// [`subscription_data`](super::subscription_data)): the locked
/// read-decide-write every backend runs (for a new webhook delivery, the
/// unit first tries its backend's fast write, [`Fast`]).
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

/// A new webhook delivery of one subscription's state, for the backend's
/// fewest-round-trip write ([`claim_and_replace`],
/// [`claim_and_replace_batched`]): its claim (the delivery's row, recorded
/// processed) and the state observed at `mark`.
pub(crate) struct Fast<'a> {
    pub(crate) claim: webhook_delivery::ActiveModel,
    pub(crate) subscription: &'a Subscription,
    /// Its [`subscription_data`](super::subscription_data).
    pub(crate) data: &'a serde_json::Value,
    pub(crate) mark: Mark,
}

impl Fast<'_> {
    /// The delivery's key.
    fn key(&self) -> String {
        self.claim
            .delivery_id
            .try_as_ref()
            .cloned()
            .unwrap_or_default()
    }
}

/// What the fast write did with one delivery.
#[derive(Debug)]
pub(crate) enum Claimed {
    /// It claimed nothing (a delivery seen before, a row changed since it
    /// was read, a backend with no fast write): the unit's hook claims or
    /// finds the delivery, and its state is applied as usual.
    No,
    /// Claimed; the row as it was if a newer state replaced it, `None` when
    /// the row is absent or not older (the unit applies it as usual).
    Yes(Option<Box<subscription::Model>>),
}

/// PostgreSQL: for each of `fast` (at most one a subscription), in one
/// statement however many: insert its claim (`ON CONFLICT DO NOTHING`, in
/// the order of the keys); once every claim is in, lock the rows of the
/// subscriptions in the order of their ids; replace each row whose
/// delivery was claimed and whose mark is older, returning the row as it
/// was. Every writer claims before it locks, and in these orders, so
/// writers never deadlock on each other's claims and rows.
pub(crate) async fn claim_and_replace<C: ConnectionTrait>(
    conn: &C,
    fast: &[Fast<'_>],
    now: DateTime<Utc>,
) -> Result<Vec<Claimed>, DbErr> {
    use sea_orm::{FromQueryResult, IdenStatic, Iterable, QueryTrait, Statement, Value};
    let mut claims: Vec<_> = fast.iter().map(|f| (f.key(), f.claim.clone())).collect();
    claims.sort_by(|a, b| a.0.cmp(&b.0));
    let mut claim =
        webhook_delivery::Entity::insert_many(claims.into_iter().map(|c| c.1)).into_query();
    claim
        .on_conflict(delivery_seen())
        .returning_col(webhook_delivery::Column::DeliveryId);
    let claim = DbBackend::Postgres.build(&claim);
    let mut values: Vec<Value> = claim.values.map(|v| v.0).unwrap_or_default();
    let next = |value: Value, values: &mut Vec<Value>| {
        values.push(value);
        format!("${}", values.len())
    };
    let columns: Vec<_> = subscription::Column::iter()
        .filter(|c| !matches!(c, subscription::Column::CreatedAt))
        .collect();
    let mut tuples = Vec::with_capacity(fast.len());
    let mut ids = Vec::with_capacity(fast.len());
    for f in fast {
        let row = subscription_row(f.subscription, f.data.clone(), f.mark.0, now);
        let mut tuple = vec![next(f.key().into(), &mut values)];
        for column in &columns {
            let value = row.get(*column).into_value();
            tuple.push(next(
                value.expect("subscription_row sets every column"),
                &mut values,
            ));
        }
        tuples.push(format!("({})", tuple.join(", ")));
        ids.push(next(f.subscription.id.as_str().into(), &mut values));
    }
    let name = |c: &subscription::Column| format!("\"{}\"", c.as_str());
    let names: Vec<String> = columns.iter().map(name).collect();
    let sets: Vec<String> = columns
        .iter()
        .filter(|c| !matches!(c, subscription::Column::Id))
        .map(|c| format!("{0} = v.{0}", name(c)))
        .collect();
    let sql = format!(
        "WITH claim AS ({claim}), \
         replaced AS (UPDATE octany_subscriptions AS s SET {sets} \
           FROM (VALUES {tuples}) AS v(octany_delivery, {names}), \
                (SELECT * FROM octany_subscriptions WHERE id IN ({ids}) \
                   AND (SELECT count(*) FROM claim) > 0 ORDER BY id FOR UPDATE) AS old \
           WHERE s.id = old.id AND v.id = old.id AND old.sync_mark < v.sync_mark \
             AND v.octany_delivery IN (SELECT delivery_id FROM claim) \
           RETURNING v.octany_delivery, old.*) \
         SELECT claim.delivery_id AS octany_claimed, replaced.* \
         FROM claim LEFT JOIN replaced ON replaced.octany_delivery = claim.delivery_id",
        claim = claim.sql,
        sets = sets.join(", "),
        tuples = tuples.join(", "),
        names = names.join(", "),
        ids = ids.join(", "),
    );
    let answered = conn
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            values,
        ))
        .await?;
    let mut claimed = std::collections::HashMap::with_capacity(answered.len());
    for row in answered {
        let key: String = row.try_get("", "octany_claimed")?;
        let before = match row.try_get::<Option<String>>("", "id")? {
            Some(_) => Some(Box::new(subscription::Model::from_query_result(&row, "")?)),
            None => None,
        };
        claimed.insert(key, before);
    }
    Ok(fast
        .iter()
        .map(|f| match claimed.remove(&f.key()) {
            Some(before) => Claimed::Yes(before),
            None => Claimed::No,
        })
        .collect())
}

/// SQLite: for each of `fast` (at most one a subscription), in one batch
/// (one hop to the driver's worker thread however many): read the rows as
/// they were, then replace each row whose mark is older if its delivery is
/// new, inserting the delivery's claim only if it did
/// ([`replace_claimed`]). A delivery it did not write is [`Claimed::No`].
/// The batch's statements run in order in one transaction: a writer that
/// commits between the read and a write makes the write fail (SQLite's
/// `BUSY_SNAPSHOT`), and the unit runs again.
pub(crate) async fn claim_and_replace_batched<C: ConnectionTrait>(
    conn: &C,
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
fn batch(statements: Vec<sea_orm::Statement>) -> sea_orm::Statement {
    let mut sql = Vec::with_capacity(statements.len());
    let mut values = Vec::new();
    for statement in statements {
        sql.push(statement.sql);
        values.extend(statement.values.map(|v| v.0).unwrap_or_default());
    }
    sea_orm::Statement::from_sql_and_values(DbBackend::Sqlite, sql.join(";\n"), values)
}
