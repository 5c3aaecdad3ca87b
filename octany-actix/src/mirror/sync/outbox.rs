//! The outbox: billing events written with the change, delivered after it.
//!
//! A unit of work writes its events to `octany_events` in its own
//! transaction; after commit the syncer delivers them to the host's
//! [`Listeners`]. Each delivery first claims the row for a while (a
//! conditional `UPDATE`), so with several instances one runs it; each
//! listener that succeeds is noted on the row and never run for it again;
//! one that fails is retried later with a growing pause. Events whose
//! delivery was cut off (the process died after commit) are picked up by
//! [`Syncer::deliver_due`](super::Syncer::deliver_due), which the
//! reconciler task runs on every tick.

use std::collections::BTreeSet;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use super::events::{BillingEvent, Event, Origin};
use super::mark;
use crate::domain::model::BillableRef;
use crate::mirror::entity::event;

/// What a listener may fail with.
pub type ListenerError = Box<dyn std::error::Error + Send + Sync>;

/// A listener's answer "not done, and not to be run again before this
/// time" (a declined usage charge waiting for its next attempt): the
/// outbox keeps the event for the listener and runs it again at that
/// time instead of backing off, and logs it as a wait, not a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NotBefore(pub(crate) DateTime<Utc>);

impl std::fmt::Display for NotBefore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "waits until {}", self.0.to_rfc3339())
    }
}

impl std::error::Error for NotBefore {}

/// What a delivery's listeners left undone.
#[derive(Debug, Default)]
struct Undone {
    /// The failures (errors and panics), each as `name: why`.
    failures: Vec<String>,
    /// The earliest time a waiting listener asked to be run again.
    not_before: Option<DateTime<Utc>>,
    /// Whether any failure was an error (not only waits).
    failed: bool,
}

type Handler =
    Arc<dyn Fn(Arc<Event>) -> BoxFuture<'static, Result<(), ListenerError>> + Send + Sync>;

/// A billing listener's name: how the outbox tells listeners apart (it
/// notes by name which have handled an event), so unique among an app's
/// listeners and stable across releases. Checked where the constant is
/// made: 1 to 64 of `a`–`z`, `0`–`9`, `-`, `_` and `.`, not beginning
/// with `octany.` (the library's own listeners).
///
/// ```
/// use octany_actix::sync::ListenerName;
/// const WELCOME: ListenerName = ListenerName::new("welcome-mail");
/// assert_eq!(WELCOME.as_str(), "welcome-mail");
/// ```
///
/// A name the outbox could not keep apart does not compile:
///
/// ```compile_fail
/// use octany_actix::sync::ListenerName;
/// const WELCOME: ListenerName = ListenerName::new("Welcome mail");
/// # let _ = WELCOME;
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ListenerName(&'static str);

impl ListenerName {
    /// `name`, checked (see the type); in a `const`, a bad name does not
    /// compile.
    ///
    /// # Panics
    ///
    /// Outside a `const`, on a bad name.
    pub const fn new(name: &'static str) -> Self {
        let bytes = name.as_bytes();
        assert!(
            !bytes.is_empty() && bytes.len() <= 64,
            "a listener's name is 1 to 64 characters"
        );
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            assert!(
                b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_' || b == b'.',
                "a listener's name is made of a-z, 0-9, '-', '_' and '.'"
            );
            i += 1;
        }
        let reserved = b"octany.";
        let mut own = bytes.len() >= reserved.len();
        let mut j = 0;
        while own && j < reserved.len() {
            own = bytes[j] == reserved[j];
            j += 1;
        }
        assert!(!own, "names beginning with `octany.` are the library's own");
        Self(name)
    }

    /// A name of the library's own listeners (`octany.…`).
    pub(crate) const fn library(name: &'static str) -> Self {
        Self(name)
    }

    /// The name.
    pub const fn as_str(&self) -> &'static str {
        self.0
    }
}

impl std::fmt::Display for ListenerName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// The host's code that runs once per billing event, after the change is
/// committed, whichever path brought it.
///
/// Each listener has a [`ListenerName`]: the outbox notes by name which
/// listeners have handled an event, so a listener that succeeded is not
/// run again when another one is retried. Two listeners of one name are
/// refused by [`OctanyBuilder::build`](crate::OctanyBuilder::build).
/// Delivery is at least once: a listener may see an event again only if
/// the process died between the listener's success and its noting, so
/// make it idempotent by [`Event::id`] where that matters.
///
/// ```
/// use octany_actix::sync::{BillingEvent, ListenerName, Listeners};
/// const WELCOME: ListenerName = ListenerName::new("welcome-mail");
/// let listeners = Listeners::new().on(WELCOME, |event| async move {
///     if let BillingEvent::SubscriptionStarted { subscription } = &event.event {
///         println!("welcome, {:?}", subscription.reference_id);
///     }
///     Ok(())
/// });
/// # let _ = listeners;
/// ```
#[derive(Clone, Default)]
pub struct Listeners {
    entries: Vec<(ListenerName, Handler)>,
    /// A name given twice (the first such), refused at build.
    twice: Option<ListenerName>,
}

impl std::fmt::Debug for Listeners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|(name, _)| name.as_str()))
            .finish()
    }
}

impl Listeners {
    /// No listeners.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the listener `name`. A name already added is noted, and
    /// [`OctanyBuilder::build`](crate::OctanyBuilder::build) refuses it;
    /// until then only the first of that name runs.
    pub fn on<F, Fut>(mut self, name: ListenerName, listener: F) -> Self
    where
        F: Fn(Arc<Event>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), ListenerError>> + Send + 'static,
    {
        if self.entries.iter().any(|(n, _)| *n == name) {
            self.twice.get_or_insert(name);
            return self;
        }
        self.entries
            .push((name, Arc::new(move |e| listener(e).boxed())));
        self
    }

    /// A name given to two listeners, if one was.
    pub(crate) fn given_twice(&self) -> Option<ListenerName> {
        self.twice
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Runs the listeners not yet in `done`, one after another; adds those
    /// that succeed to `done` and returns what they left undone.
    async fn run(&self, event: Arc<Event>, done: &mut BTreeSet<String>) -> Undone {
        let mut undone = Undone::default();
        for (name, handler) in &self.entries {
            if done.contains(name.as_str()) {
                continue;
            }
            match AssertUnwindSafe(handler(event.clone()))
                .catch_unwind()
                .await
            {
                Ok(Ok(())) => {
                    done.insert(name.as_str().to_owned());
                }
                Ok(Err(error)) => {
                    match error.downcast_ref::<NotBefore>() {
                        Some(NotBefore(at)) => {
                            undone.not_before = Some(undone.not_before.map_or(*at, |t| t.min(*at)));
                        }
                        None => undone.failed = true,
                    }
                    undone.failures.push(format!("{name}: {error}"));
                }
                Err(_) => {
                    undone.failed = true;
                    undone
                        .failures
                        .push(format!("{name}: the listener panicked"));
                }
            }
        }
        undone
    }
}

/// How long a claim on an event lasts before another instance may take it.
pub(crate) const CLAIM: Duration = Duration::from_secs(60);

/// The pause before retrying an event after `attempts` failed deliveries:
/// 10 s doubling, at most an hour.
fn backoff(attempts: i32) -> Duration {
    let exponent = u32::try_from(attempts.clamp(1, 20) - 1).unwrap_or(0);
    Duration::from_secs(10u64.saturating_mul(1 << exponent.min(9))).min(Duration::from_secs(3600))
}

/// A stored event as listeners get it; `Err` when this version cannot read
/// its payload.
fn read(row: &event::Model) -> Result<Event, serde_json::Error> {
    Ok(Event {
        id: row.id.clone(),
        billable: row.billable_ref.clone(),
        origin: Origin::from_name(&row.origin),
        occurred_at: DateTime::from_timestamp_micros(row.occurred_mark).unwrap_or_default(),
        event: serde_json::from_str::<BillingEvent>(&row.payload)?,
    })
}

/// The stored events of `billable`, in the order they happened (by
/// Octany's clock; those of one instant, which one change made together,
/// in the order of their names, so the order is the same on every run);
/// those this version cannot read are left out.
pub(crate) async fn of_billable<C: ConnectionTrait>(
    conn: &C,
    billable: &BillableRef,
) -> Result<Vec<Event>, DbErr> {
    let rows = event::Entity::find()
        .filter(event::Column::BillableRef.eq(billable.clone()))
        .order_by_asc(event::Column::OccurredMark)
        .order_by_asc(event::Column::Kind)
        .order_by_asc(event::Column::CreatedAt)
        .all(conn)
        .await?;
    Ok(rows.iter().filter_map(|row| read(row).ok()).collect())
}

/// A new event's row. With no listeners to run it is born delivered.
pub(crate) fn row(
    event: &BillingEvent,
    billable: Option<BillableRef>,
    origin: Origin,
    occurred: i64,
    now: DateTime<Utc>,
    delivered: bool,
) -> event::ActiveModel {
    event::ActiveModel {
        id: Set(uuid::Uuid::new_v4().to_string()),
        kind: Set(event.kind().to_owned()),
        billable_ref: Set(billable),
        origin: Set(origin.as_str().to_owned()),
        payload: Set(serde_json::to_string(event).expect("a billing event serializes")),
        occurred_mark: Set(occurred),
        created_at: Set(now),
        attempts: Set(0),
        next_attempt_at: Set(mark(now)),
        delivered_at: Set(delivered.then_some(now)),
        done_listeners: Set("[]".to_owned()),
        last_error: Set(None),
        claimed_by: Set(None),
        claimed_until: Set(0),
    }
}

/// Writes events inside the unit's transaction: every unit's written
/// together, in one statement (`unit::write`).
pub(crate) async fn write<C: ConnectionTrait>(
    conn: &C,
    rows: Vec<event::ActiveModel>,
) -> Result<(), DbErr> {
    if !rows.is_empty() {
        event::Entity::insert_many(rows)
            .exec_without_returning(conn)
            .await?;
    }
    Ok(())
}

/// Takes the event for `holder` unless it is delivered, not yet due, or
/// held by another instance. True when taken.
async fn claim<C: ConnectionTrait>(
    conn: &C,
    id: &str,
    holder: &str,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let until = mark(now + chrono::Duration::from_std(CLAIM).unwrap_or(chrono::Duration::MAX));
    let taken = event::Entity::update_many()
        .col_expr(
            event::Column::ClaimedBy,
            Expr::value(Some(holder.to_owned())),
        )
        .col_expr(event::Column::ClaimedUntil, Expr::value(until))
        .filter(event::Column::Id.eq(id))
        .filter(event::Column::DeliveredAt.is_null())
        .filter(event::Column::NextAttemptAt.lte(mark(now)))
        .filter(event::Column::ClaimedUntil.lte(mark(now)))
        .exec(conn)
        .await?;
    Ok(taken.rows_affected == 1)
}

/// Makes the undelivered event `id` due now (an operator's retry); false
/// when it is delivered or unknown.
pub(crate) async fn make_due<C: ConnectionTrait>(
    conn: &C,
    id: &str,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let due = event::Entity::update_many()
        .col_expr(event::Column::NextAttemptAt, Expr::value(mark(now)))
        .filter(event::Column::Id.eq(id))
        .filter(event::Column::DeliveredAt.is_null())
        .exec(conn)
        .await?;
    Ok(due.rows_affected == 1)
}

/// The ids of undelivered events that are due and not held, oldest first.
pub(crate) async fn due<C: ConnectionTrait>(
    conn: &C,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<String>, DbErr> {
    // `delivered_at IS NULL` as the partial index states it (000008).
    event::Entity::find()
        .select_only()
        .column(event::Column::Id)
        .filter(event::Column::DeliveredAt.is_null())
        .filter(event::Column::NextAttemptAt.lte(mark(now)))
        .filter(event::Column::ClaimedUntil.lte(mark(now)))
        .order_by_asc(event::Column::CreatedAt)
        .order_by_asc(event::Column::Id)
        .limit(limit)
        .into_tuple()
        .all(conn)
        .await
}

/// Delivers one event to `listeners` if `holder` can claim it; records the
/// outcome. True when it was delivered to every listener now.
pub(crate) async fn deliver<C: ConnectionTrait>(
    conn: &C,
    listeners: &Listeners,
    id: &str,
    holder: &str,
    now: impl Fn() -> DateTime<Utc>,
) -> Result<bool, DbErr> {
    if !claim(conn, id, holder, now()).await? {
        return Ok(false);
    }
    let Some(row) = event::Entity::find_by_id(id).one(conn).await? else {
        return Ok(false);
    };
    let mut done: BTreeSet<String> = serde_json::from_str(&row.done_listeners).unwrap_or_default();
    let undone = match read(&row) {
        Ok(event) => listeners.run(Arc::new(event), &mut done).await,
        Err(error) => Undone {
            failures: vec![format!(
                "the stored event cannot be read by this version ({error}); it is kept"
            )],
            not_before: None,
            failed: true,
        },
    };
    let finished = now();
    let attempts = row.attempts + 1;
    let delivered = undone.failures.is_empty();
    let last_error = (!delivered).then(|| undone.failures.join("; "));
    let next = match (&last_error, undone.failed, undone.not_before) {
        (Some(error), true, _) => {
            tracing::error!(event = %row.id, kind = %row.kind, attempts, %error, "a billing listener failed; it will be retried");
            finished + chrono::Duration::from_std(backoff(attempts)).unwrap_or_default()
        }
        // Only waits: run again when the first is due.
        (Some(error), false, Some(at)) => {
            tracing::info!(event = %row.id, kind = %row.kind, %error, "a billing listener waits; it will be run again then");
            at
        }
        _ => finished,
    };
    event::Entity::update_many()
        .col_expr(event::Column::Attempts, Expr::value(attempts))
        .col_expr(
            event::Column::DoneListeners,
            Expr::value(serde_json::to_string(&done).expect("names serialize")),
        )
        .col_expr(
            event::Column::DeliveredAt,
            Expr::value(delivered.then_some(finished)),
        )
        .col_expr(event::Column::LastError, Expr::value(last_error))
        .col_expr(event::Column::NextAttemptAt, Expr::value(mark(next)))
        .col_expr(
            event::Column::ClaimedBy,
            Expr::value(Option::<String>::None),
        )
        .col_expr(event::Column::ClaimedUntil, Expr::value(0i64))
        .filter(event::Column::Id.eq(id))
        .filter(event::Column::ClaimedBy.eq(holder))
        .exec(conn)
        .await?;
    Ok(delivered)
}

#[cfg(test)]
mod tests {
    use super::backoff;
    use std::time::Duration;

    #[test]
    fn retries_back_off_to_an_hour() {
        assert_eq!(backoff(1), Duration::from_secs(10));
        assert_eq!(backoff(2), Duration::from_secs(20));
        assert_eq!(backoff(5), Duration::from_secs(160));
        assert_eq!(backoff(40), Duration::from_secs(3600));
    }
}
