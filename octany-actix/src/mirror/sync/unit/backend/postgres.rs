//! PostgreSQL: writers run concurrently, so [`PG_GROUPS`] groups may be
//! written at once (units take no turn). Each unit or group first takes a
//! transaction-scoped advisory lock on everything it may touch, in one
//! order ([`advisory_locks`]): writers that share a row wait for each
//! other there, before either has written, so they cannot deadlock midway
//! (two groups inserting the same new subscriptions in the order each
//! received them did). Then the fast write claims the deliveries, locks
//! their rows and replaces the older ones in one statement however many
//! ([`claim_and_replace`]). A transient error is a serialization failure
//! or a deadlock (SQLSTATE `40001`, `40P01`): a write outside the unit of
//! work can still meet one, and so can the reconcile's lapse of old
//! checkout intents, which learns the billables it touches only as it
//! writes them (it locks nothing first).

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

    async fn lock(&self, txn: &DatabaseTransaction, keys: Vec<String>) -> Result<(), DbErr> {
        let Some(statement) = advisory_locks(&keys) else {
            return Ok(());
        };
        txn.execute_raw(statement).await.map(drop)
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

/// The first key of the library's advisory locks ("OCTY"); the second is
/// a hash of what is locked ([`lock_id`]). A host's own advisory locks of
/// the same first key would only make its writers wait for the library's.
const LOCK_CLASS: i32 = 0x4f43_5459;

/// The statement that takes a transaction-scoped advisory lock on each of
/// `keys`, in ascending order of their ids (every writer takes its locks in
/// that order, so no two can each hold one the other waits for); `None`
/// when there is nothing to lock. Two keys of one id lock once: a
/// collision makes writers that touch different rows wait for each other,
/// never deadlock. The ids go in one text parameter, so the statement's
/// text is the same whatever it locks and is prepared once a connection.
fn advisory_locks(keys: &[String]) -> Option<sea_orm::Statement> {
    let mut ids: Vec<i32> = keys.iter().map(|key| lock_id(key)).collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return None;
    }
    let ids: Vec<String> = ids.iter().map(i32::to_string).collect();
    Some(sea_orm::Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_advisory_xact_lock($1, k::int4) FROM unnest(string_to_array($2, ',')) AS k",
        [LOCK_CLASS.into(), ids.join(",").into()],
    ))
}

/// A key's advisory lock id: the first four bytes of its SHA-256, the same
/// on every instance.
fn lock_id(key: &str) -> i32 {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(key.as_bytes());
    i32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// PostgreSQL: for each of `fast` (at most one a subscription), in one
/// statement however many: insert its claim (`ON CONFLICT DO NOTHING`, in
/// the order of the keys); once every claim is in, lock the rows of the
/// subscriptions in the order of their ids; replace each row whose
/// delivery was claimed and whose mark is older, returning the row as it
/// was. The claims and rows are taken in these orders too, though the
/// advisory locks taken before already keep writers that share them
/// apart.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_are_taken_once_each_in_ascending_order() {
        let keys: Vec<String> = [
            "subscription:2",
            "billable:user:1",
            "subscription:1",
            "subscription:2",
        ]
        .iter()
        .map(|k| k.to_string())
        .collect();
        let statement = advisory_locks(&keys).unwrap();
        let mut ids: Vec<i32> = ["billable:user:1", "subscription:1", "subscription:2"]
            .iter()
            .map(|k| lock_id(k))
            .collect();
        ids.sort_unstable();
        let ids: Vec<String> = ids.iter().map(i32::to_string).collect();
        let values = statement.values.unwrap().0;
        assert_eq!(values[1], ids.join(",").into());
        assert_eq!(values[0], LOCK_CLASS.into());
        assert_eq!(lock_id("subscription:1"), lock_id("subscription:1"));
        assert_ne!(lock_id("subscription:1"), lock_id("subscription:2"));
        assert!(advisory_locks(&[]).is_none());
    }
}
