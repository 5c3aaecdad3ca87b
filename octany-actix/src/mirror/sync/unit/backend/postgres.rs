//! PostgreSQL: writers run concurrently, so [`PG_GROUPS`] groups may be
//! written at once (units take no turn). A newer state of a stored
//! subscription is written in one statement ([`apply::replace_if_older`]),
//! and a lone delivery's claim is folded into that write
//! ([`apply::claim_and_replace`], one round trip); a group
//! claims its deliveries before it locks their rows, as a unit does, and
//! both in order, so that groups and units never deadlock; it writes in
//! five statements whatever its size ([`apply::claim_all`],
//! [`apply::replace_all`]). A transient error is a serialization failure
//! or a deadlock (SQLSTATE `40001`, `40P01`).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter};
use tokio::sync::OwnedSemaphorePermit;

use super::{Backend, Group, Grouping, sqlstate_transient};
use crate::domain::model::Subscription;
use crate::mirror::entity::{subscription, webhook_delivery};
use crate::mirror::sync::apply::{self, Claimed, Mark};
use crate::mirror::sync::unit::Hook;
use crate::mirror::sync::unit::plan::{Write, ids, plan, rows};
use crate::mirror::sync::{Effects, outbox};

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

    async fn claim_and_write(
        &self,
        txn: &DatabaseTransaction,
        hook: &dyn Hook,
        s: &Subscription,
        data: &serde_json::Value,
        mark: Mark,
        now: DateTime<Utc>,
    ) -> Result<Claimed, DbErr> {
        match hook.claim() {
            Some(claim) => apply::claim_and_replace(txn, claim, s, data, mark.0, now).await,
            None => Ok(Claimed::No),
        }
    }

    async fn replace_if_older(
        &self,
        txn: &DatabaseTransaction,
        s: &Subscription,
        data: &serde_json::Value,
        mark: Mark,
        now: DateTime<Utc>,
    ) -> Result<Option<subscription::Model>, DbErr> {
        apply::replace_if_older(txn, s, data, mark.0, now).await
    }

    /// PostgreSQL, one transaction of five statements whatever the group's
    /// size (a group of one runs as its own unit, in two): read the group's
    /// rows and decide; claim the deliveries it writes (a delivery already
    /// stored is not claimed, and runs as its own unit); lock their rows
    /// (a row changed since it was read has its delivery's claim taken
    /// back, one statement more, and the delivery runs as its own unit);
    /// replace them; insert their events; commit. Every writer claims its
    /// delivery before it locks a row, and a group claims and locks in the
    /// order of the keys, so groups and units cannot deadlock.
    async fn write_group(
        &self,
        group: Group<'_>,
        writes: &[Write],
        _turn: &mut Option<OwnedSemaphorePermit>,
        txn: Option<DatabaseTransaction>,
    ) -> Result<Vec<Option<Effects>>, DbErr> {
        // Alone, a delivery writes in fewer statements as its own unit.
        if writes.len() == 1 {
            return Ok(vec![None]);
        }
        let key = |w: &Write| {
            w.claim
                .delivery_id
                .try_as_ref()
                .cloned()
                .unwrap_or_default()
        };
        let txn = match txn {
            Some(txn) => txn,
            None => self.begin(group.db).await?,
        };
        let seen = rows(&txn, ids(writes.iter()), false).await?;
        let now = group.clock.now();
        let planned = plan(writes, &seen, now, group.delivered);
        // A plan writes a subscription once, so a delivery once.
        let claims: Vec<_> = writes
            .iter()
            .zip(&planned)
            .filter(|(_, plan)| plan.is_some())
            .map(|(w, _)| (key(w), w.claim.clone()))
            .collect::<std::collections::BTreeMap<_, _>>()
            .into_values()
            .collect();
        if claims.is_empty() {
            txn.commit().await?;
            return Ok(writes.iter().map(|_| None).collect());
        }
        let claimed: BTreeSet<String> = txn
            .query_all_raw(apply::claim_all(claims))
            .await?
            .iter()
            .filter_map(|row| row.try_get::<String>("", "delivery_id").ok())
            .collect();
        let planned: Vec<_> = writes
            .iter()
            .zip(planned)
            .map(|(w, plan)| plan.filter(|_| claimed.contains(&key(w))))
            .collect();
        let planned_writes = writes
            .iter()
            .zip(&planned)
            .filter(|(_, plan)| plan.is_some())
            .map(|(w, _)| w);
        let locked = rows(&txn, ids(planned_writes), true).await?;
        let mut states = Vec::new();
        let mut events = Vec::new();
        let mut unwritten = Vec::new();
        let mut answers = Vec::with_capacity(writes.len());
        for (w, plan) in writes.iter().zip(planned) {
            let Some(plan) = plan else {
                answers.push(None);
                continue;
            };
            if locked.get(w.subscription.id.as_str()) != Some(plan.before) {
                // Changed since it was read: its claim is taken back.
                unwritten.push(key(w));
                answers.push(None);
                continue;
            }
            states.push((&w.subscription, &w.data, w.mark.0));
            events.extend(plan.events);
            answers.push(Some(plan.effects));
        }
        if !unwritten.is_empty() {
            webhook_delivery::Entity::delete_many()
                .filter(webhook_delivery::Column::DeliveryId.is_in(unwritten))
                .exec(&txn)
                .await?;
        }
        if !states.is_empty() {
            txn.execute_raw(apply::replace_all(&states, now)).await?;
        }
        outbox::write(&txn, events).await?;
        txn.commit().await?;
        Ok(answers)
    }
}
