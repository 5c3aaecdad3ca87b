//! A group's plan: of the deliveries queued together, what each one
//! writes, decided once from the group's rows as read, for every backend's
//! group write alike (`backend`).

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use super::consequences::{Consequences, record};
use crate::domain::model::Subscription;
use crate::mirror::entity::{event, subscription, webhook_delivery};
use crate::mirror::sync::Effects;
use crate::mirror::sync::apply::{self, Applied, Mark, Source};
use crate::mirror::sync::events::Origin;

/// One delivery's write, as the group needs it.
pub(crate) struct Write {
    pub(crate) subscription: Subscription,
    pub(crate) mark: Mark,
    pub(crate) data: serde_json::Value,
    pub(crate) claim: webhook_delivery::ActiveModel,
    pub(crate) origin: Origin,
}

/// What the group writes of each delivery (`None`: it runs as its own
/// unit), decided from the group's rows as read; `delivered`: no listener
/// is registered, so its events are recorded delivered.
pub(crate) fn plan<'a>(
    writes: &[Write],
    rows: &'a HashMap<String, subscription::Model>,
    now: DateTime<Utc>,
    delivered: bool,
) -> Vec<Option<Planned<'a>>> {
    let mut taken = BTreeSet::new();
    writes
        .iter()
        .map(|w| {
            let s = &w.subscription;
            // The group writes only a newer state (the rule's `Updated`);
            // a second delivery for a subscription would find it changed by
            // the first: either runs as its own unit.
            let source = Source::of(w.origin);
            let before = rows.get(s.id.as_str()).filter(|row| {
                apply::decide(row.sync_mark, w.mark.0, source, || row.data == w.data)
                    == Applied::Updated
                    && taken.insert(s.id.as_str())
            })?;
            let written = apply::Written {
                applied: Applied::Updated,
                before: Some(before.clone()),
            };
            let then = Consequences::of(s, &written, w.mark, source);
            if then.refetch || then.answers_checkouts.is_some() {
                return None;
            }
            let mut effects = Effects {
                subscriptions: 1,
                ..Effects::default()
            };
            let events = record(
                &then.events,
                &then.billable,
                w.origin,
                w.mark,
                now,
                delivered,
                &mut effects,
            );
            Some(Planned {
                before,
                events,
                effects,
            })
        })
        .collect()
}

/// The subscriptions `writes` write.
pub(crate) fn ids<'a>(writes: impl Iterator<Item = &'a Write>) -> BTreeSet<&'a str> {
    writes.map(|w| w.subscription.id.as_str()).collect()
}

/// The rows of `ids` by id, read in the order of their ids; `locked`:
/// `FOR UPDATE` (PostgreSQL), so that the group's locks are taken in that
/// order.
pub(crate) async fn rows(
    txn: &DatabaseTransaction,
    ids: BTreeSet<&str>,
    locked: bool,
) -> Result<HashMap<String, subscription::Model>, DbErr> {
    let mut find = subscription::Entity::find()
        .filter(subscription::Column::Id.is_in(ids))
        .order_by_asc(subscription::Column::Id);
    if locked {
        find = find.lock_exclusive();
    }
    Ok(find
        .all(txn)
        .await?
        .into_iter()
        .map(|row| (row.id.clone(), row))
        .collect())
}

/// What a group writes of one delivery.
pub(crate) struct Planned<'a> {
    /// Its subscription's row as the group read it.
    pub(crate) before: &'a subscription::Model,
    /// Its billing events' outbox rows.
    pub(crate) events: Vec<event::ActiveModel>,
    /// What writing it changed.
    pub(crate) effects: Effects,
}
