//! PostgreSQL: writers run concurrently, so [`PG_GROUPS`] groups may be
//! written at once (units take no turn); the fast write claims the
//! deliveries, locks their rows and replaces the older ones in one
//! statement however many ([`claim_and_replace`]). A transient
//! error is a serialization failure or a deadlock (SQLSTATE `40001`,
//! `40P01`).

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, EntityTrait,
};

use super::{Backend, Claimed, Fast, Grouping, delivery_seen, sqlstate_transient};
use crate::mirror::entity::{subscription, webhook_delivery};
use crate::mirror::sync::apply::subscription_row;

/// How many groups may be written at once. One is forming while one
/// commits; more make smaller groups. In the webhooks benchmark over HTTP
/// (16 connections, a pool of 5), 1, 2, 3, 5 and 8 applied 0.99, 0.99,
/// 0.95, 0.83 and 0.72 of the hand-written receiver's deliveries.
const PG_GROUPS: usize = 2;

/// PostgreSQL.
#[derive(Debug)]
pub(super) struct Postgres;

#[async_trait::async_trait]
impl Backend for Postgres {
    fn is_transient(&self, error: &DbErr) -> bool {
        sqlstate_transient(error)
    }

    fn grouping(&self) -> Option<Grouping> {
        Some(Grouping {
            turns: PG_GROUPS,
            serial: false,
        })
    }

    async fn claim_and_replace(
        &self,
        txn: &DatabaseTransaction,
        fast: &[Fast<'_>],
        now: DateTime<Utc>,
    ) -> Result<Vec<Claimed>, DbErr> {
        claim_and_replace(txn, fast, now).await
    }
}

/// PostgreSQL: for each of `fast` (at most one a subscription), in one
/// statement however many: insert its claim (`ON CONFLICT DO NOTHING`, in
/// the order of the keys); once every claim is in, lock the rows of the
/// subscriptions in the order of their ids; replace each row whose
/// delivery was claimed and whose mark is older, returning the row as it
/// was. Every writer claims before it locks, and in these orders, so
/// writers never deadlock on each other's claims and rows.
async fn claim_and_replace(
    conn: &DatabaseTransaction,
    fast: &[Fast<'_>],
    now: DateTime<Utc>,
) -> Result<Vec<Claimed>, DbErr> {
    use sea_orm::{FromQueryResult, IdenStatic, Iterable, QueryTrait, Statement, Value};
    let mut claims: Vec<_> = fast.iter().map(|f| (f.key(), f.claim.clone())).collect();
    claims.sort_by_key(|c| c.0);
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
        .map(|f| match claimed.remove(f.key()) {
            Some(before) => Claimed::Yes(before),
            None => Claimed::No,
        })
        .collect())
}
