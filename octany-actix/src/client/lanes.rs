//! One billable's share of the budget: at most a few of its requests to
//! Octany at once (per instance), and a short line behind them; past that,
//! "busy" at once. So one account (a script, forty tabs) holds at most a
//! few places in the queue every account shares, and another account's
//! request waits behind those few, not behind all of its.
//!
//! The web layer says whom a request is for ([`on_behalf_of`]); requests
//! for no one (reconcile, backfill) have no lane.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

tokio::task_local! {
    static BILLABLE: Arc<str>;
}

/// Runs `work` with every request to Octany it makes counted in
/// `billable`'s lane.
pub(crate) async fn on_behalf_of<F: Future>(billable: &str, work: F) -> F::Output {
    BILLABLE.scope(Arc::from(billable), work).await
}

/// The billable the running task's requests are for, if it said.
pub(crate) fn current_billable() -> Option<Arc<str>> {
    BILLABLE.try_with(Arc::clone).ok()
}

/// The lanes of one client, by billable.
#[derive(Debug, Default)]
pub(crate) struct Lanes {
    lanes: Mutex<HashMap<Arc<str>, Arc<Lane>>>,
}

#[derive(Debug)]
struct Lane {
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
}

/// A request's place in its billable's lane, held until it is answered.
#[derive(Debug)]
pub(crate) struct Slot(#[allow(dead_code)] Option<OwnedSemaphorePermit>);

/// Counts a waiter out of its lane however its wait ends.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Lanes {
    /// Enters the running task's billable's lane: at once if fewer than
    /// `in_flight` of its requests are under way, else behind them, or
    /// `Err(how many wait)` when `waiting` already wait there (the budget
    /// answers that "busy").
    pub(crate) async fn enter(&self, in_flight: usize, waiting: usize) -> Result<Slot, usize> {
        let Ok(billable) = BILLABLE.try_with(Arc::clone) else {
            return Ok(Slot(None));
        };
        let lane = self.lane(billable, in_flight);
        if let Ok(permit) = lane.permits.clone().try_acquire_owned() {
            return Ok(Slot(Some(permit)));
        }
        let ahead = lane.waiting.fetch_add(1, Ordering::Relaxed);
        let _counted = Waiting(&lane.waiting);
        if ahead >= waiting {
            metrics::counter!("octany_budget_busy_total", "priority" => "one_billable")
                .increment(1);
            return Err(ahead);
        }
        let permit = lane
            .permits
            .clone()
            .acquire_owned()
            .await
            .expect("a lane's semaphore is never closed");
        Ok(Slot(Some(permit)))
    }

    fn lane(&self, billable: Arc<str>, in_flight: usize) -> Arc<Lane> {
        let mut lanes = self.lanes.lock().unwrap_or_else(|e| e.into_inner());
        if lanes.len() > 10_000 {
            // Idle lanes (no request under way or waiting) are let go.
            lanes.retain(|_, lane| {
                Arc::strong_count(lane) > 1 || lane.permits.available_permits() < in_flight
            });
        }
        lanes
            .entry(billable)
            .or_insert_with(|| {
                Arc::new(Lane {
                    permits: Arc::new(Semaphore::new(in_flight.max(1))),
                    waiting: AtomicUsize::new(0),
                })
            })
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use super::*;

    #[tokio::test]
    async fn one_billable_gets_a_few_places_and_a_short_line_and_others_go_past() {
        let lanes = Lanes::default();
        let (first, second) = on_behalf_of("user:1", async {
            (
                lanes.enter(2, 1).await.unwrap(),
                lanes.enter(2, 1).await.unwrap(),
            )
        })
        .await;
        // A third waits behind the two under way; a fourth is told "busy".
        let mut third = Box::pin(on_behalf_of("user:1", lanes.enter(2, 1)));
        assert!((&mut third).now_or_never().is_none(), "waits");
        let fourth = on_behalf_of("user:1", lanes.enter(2, 1)).await;
        assert!(matches!(fourth, Err(1)), "{fourth:?}");
        // Another billable is not behind any of them.
        let other = on_behalf_of("user:2", lanes.enter(2, 1)).now_or_never();
        assert!(matches!(other, Some(Ok(Slot(Some(_))))), "{other:?}");
        // Requests for no one (the reconcile) have no lane.
        assert!(matches!(
            lanes.enter(2, 1).now_or_never(),
            Some(Ok(Slot(None)))
        ));
        // One answered: the waiting one goes on, and the line is free again.
        drop(first);
        let third = third.await.unwrap();
        let fifth = Box::pin(on_behalf_of("user:1", lanes.enter(2, 1)));
        drop((second, third));
        assert!(fifth.await.is_ok());
    }
}
