//! The request budget: Octany allows about 120 requests a minute per key,
//! and every instance of an app shares the key, so every instance must
//! share one budget.
//!
//! - **Tokens** live in a [`TokenStore`]: this process's own by default, or
//!   one every instance shares (the Octany handle installs one in the app's
//!   database, so N instances together stay within the limit).
//! - **Priorities**: [`Priority::Interactive`] (a person waits: a cancel, the
//!   success page) goes before [`Priority::Poll`] (the status route) before
//!   [`Priority::Background`] (reconcile, backfill). Within a process,
//!   waiters queue by priority; across processes, a lower priority takes a
//!   token only while a share of the burst is left over, which keeps that
//!   share for interactive requests of every instance.
//! - **Bounded, and cancellable**: each priority's queue has a bound; a full
//!   queue answers at once with [`OctanyError::Busy`]. A waiter whose caller
//!   has gone (a closed tab) leaves the queue when its future is dropped,
//!   so it holds no place and takes no token.
//!
//! Waiting runs on the injected [`Clock`](crate::domain::clock::Clock), so
//! tests and the fake's virtual time pace as real time would.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

use crate::client::OctanyError;
use crate::client::lanes::{Lanes, Slot};
use crate::client::priority::Priority;
use crate::domain::clock::SharedClock;
use crate::domain::limits::RateLimit;

/// Where the budget's tokens are kept.
///
/// [`take`](TokenStore::take) is one atomic step: refill the bucket for the
/// time since it was last touched (at most `limit.burst` tokens, at
/// `limit.per_minute`), then take one token if at least `1 + reserve` are
/// there. The library has a store for this process and one in the app's
/// database, shared by every instance.
#[async_trait::async_trait]
pub trait TokenStore: Send + Sync + std::fmt::Debug {
    /// Takes a token (`Ok(None)`), or says how long until one may be taken.
    async fn take(
        &self,
        now: DateTime<Utc>,
        limit: RateLimit,
        reserve: f64,
    ) -> Result<Option<Duration>, OctanyError>;
}

/// Tokens of this process only.
#[derive(Debug, Default)]
pub(crate) struct LocalTokens {
    /// Tokens, and when they were counted (µs); `None` is a full bucket.
    state: Mutex<Option<(f64, i64)>>,
}

#[async_trait::async_trait]
impl TokenStore for LocalTokens {
    async fn take(
        &self,
        now: DateTime<Utc>,
        limit: RateLimit,
        reserve: f64,
    ) -> Result<Option<Duration>, OctanyError> {
        let now_us = now.timestamp_micros();
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (tokens, last) = state.unwrap_or((limit.capacity(), now_us));
        let available = limit.refilled(tokens, last, now_us);
        let need = 1.0 + reserve;
        if available >= need {
            *state = Some((available - 1.0, now_us.max(last)));
            Ok(None)
        } else {
            *state = Some((available, now_us.max(last)));
            Ok(Some(limit.wait_for(available, need)))
        }
    }
}

/// How many may wait, per priority and per billable, and for how long,
/// before the next is told "busy" ([`OctanyError::Busy`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueBounds {
    /// Interactive waiters (default 256).
    pub interactive: usize,
    /// Polls (default 32).
    pub poll: usize,
    /// Background requests (default 8).
    pub background: usize,
    /// Requests of one billable under way at once, per instance (default
    /// 2): one account holds at most this many places in the shared queue.
    pub per_billable: usize,
    /// Requests of one billable waiting behind those (default 8); more are
    /// busy at once.
    pub per_billable_waiting: usize,
    /// The longest an interactive request or a poll waits for its turn
    /// (default 10 s); a person is told "busy, try again" rather than kept
    /// waiting, and the place is freed (even if the person's HTTP client
    /// is gone and the server still runs the handler).
    pub longest_wait: Duration,
}

impl Default for QueueBounds {
    fn default() -> Self {
        Self {
            interactive: 256,
            poll: 32,
            background: 8,
            per_billable: 2,
            per_billable_waiting: 8,
            longest_wait: Duration::from_secs(10),
        }
    }
}

impl QueueBounds {
    fn of(&self, priority: Priority) -> usize {
        match priority {
            Priority::Interactive => self.interactive,
            Priority::Poll => self.poll,
            Priority::Background => self.background,
        }
    }
}

/// The budget of one client: its token store, and its waiters by priority.
#[derive(Debug)]
pub(crate) struct Budget {
    limit: RateLimit,
    bounds: QueueBounds,
    store: Arc<dyn TokenStore>,
    queues: Mutex<Queues>,
    turn: Notify,
    lanes: Lanes,
}

#[derive(Debug, Default)]
struct Queues {
    waiting: [VecDeque<u64>; 3],
    next: u64,
}

/// A place in a queue; leaving (done, or the caller gone) frees it.
struct Place<'a> {
    budget: &'a Budget,
    priority: Priority,
    id: u64,
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        let mut queues = self.budget.lock();
        let queue = &mut queues.waiting[self.priority.index()];
        if let Some(at) = queue.iter().position(|id| *id == self.id) {
            queue.remove(at);
        }
        drop(queues);
        self.budget.turn.notify_waiters();
    }
}

impl Budget {
    pub(crate) fn new(limit: RateLimit, store: Arc<dyn TokenStore>) -> Self {
        Self {
            limit,
            bounds: QueueBounds::default(),
            store,
            queues: Mutex::default(),
            turn: Notify::new(),
            lanes: Lanes::default(),
        }
    }

    pub(crate) fn with_bounds(mut self, bounds: QueueBounds) -> Self {
        self.bounds = bounds;
        self
    }

    pub(crate) fn with_store(mut self, store: Arc<dyn TokenStore>) -> Self {
        self.store = store;
        self
    }

    /// The same limit, bounds and store, with no one waiting.
    pub(crate) fn fresh(&self) -> Self {
        Self::new(self.limit, self.store.clone()).with_bounds(self.bounds)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queues> {
        self.queues.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many wait now, per priority (interactive, poll, background).
    pub(crate) fn waiting(&self) -> [usize; 3] {
        let queues = self.lock();
        [0, 1, 2].map(|i| queues.waiting[i].len())
    }

    fn enqueue(&self, priority: Priority) -> Result<Place<'_>, OctanyError> {
        let mut queues = self.lock();
        let queue_len = queues.waiting[priority.index()].len();
        if queue_len >= self.bounds.of(priority) {
            return Err(OctanyError::Busy {
                priority,
                waiting: queue_len,
            });
        }
        queues.next += 1;
        let id = queues.next;
        queues.waiting[priority.index()].push_back(id);
        Ok(Place {
            budget: self,
            priority,
            id,
        })
    }

    /// Whether no one of `priority` or more urgent waits.
    fn nobody_ahead(&self, priority: Priority) -> bool {
        let queues = self.lock();
        queues.waiting[..=priority.index()]
            .iter()
            .all(VecDeque::is_empty)
    }

    /// Whether `place` is first: at the front of the highest priority
    /// anyone waits at.
    fn is_first(&self, place: &Place<'_>) -> bool {
        let queues = self.lock();
        queues
            .waiting
            .iter()
            .find_map(|q| q.front())
            .is_some_and(|id| *id == place.id)
    }

    /// Waits for a place in the billable's lane (when the task acts for
    /// one), then for a token as the task's [`Priority`]; the slot is held
    /// until the request is answered. Dropping the future leaves the queue.
    pub(crate) async fn acquire(&self, clock: &SharedClock) -> Result<Slot, OctanyError> {
        let priority = Priority::current();
        let started = clock.now();
        let lane = self
            .lanes
            .enter(self.bounds.per_billable, self.bounds.per_billable_waiting);
        tokio::pin!(lane);
        let full = |waiting| OctanyError::Busy { priority, waiting };
        let slot = match futures_util::FutureExt::now_or_never(lane.as_mut()) {
            Some(slot) => slot.map_err(full)?,
            None if priority == Priority::Background => lane.await.map_err(full)?,
            // In the billable's line: the longest wait counts from here.
            None => tokio::select! {
                slot = lane => slot.map_err(full)?,
                _ = clock.sleep(self.bounds.longest_wait) => return Err(self.too_long(priority)),
            },
        };
        let outcome = self.acquire_as(clock, priority, started).await;
        let label = priority.label();
        match &outcome {
            Ok(waited) => metrics::histogram!("octany_budget_wait_seconds", "priority" => label)
                .record(waited.as_secs_f64()),
            Err(OctanyError::Busy { .. }) => {
                metrics::counter!("octany_budget_busy_total", "priority" => label).increment(1)
            }
            Err(_) => {}
        }
        outcome.map(|_| slot)
    }

    /// "Busy" for one of `priority` whose wait has passed its deadline.
    fn too_long(&self, priority: Priority) -> OctanyError {
        OctanyError::Busy {
            priority,
            waiting: self.lock().waiting[priority.index()].len(),
        }
    }

    async fn acquire_as(
        &self,
        clock: &SharedClock,
        priority: Priority,
        started: DateTime<Utc>,
    ) -> Result<Duration, OctanyError> {
        let reserve = priority.reserve(f64::from(self.limit.burst.max(1)));
        // No one as urgent waits: take a token straight away if there is one.
        // Only a request that must wait takes a place in the queue.
        if self.nobody_ahead(priority)
            && self
                .store
                .take(clock.now(), self.limit, reserve)
                .await?
                .is_none()
        {
            return Ok(Duration::ZERO);
        }
        let place = self.enqueue(priority)?;
        // A person (or their poll) waits at most `longest_wait`; background
        // work waits as long as it takes.
        let deadline = (priority != Priority::Background).then(|| {
            started
                + chrono::Duration::from_std(self.bounds.longest_wait)
                    .unwrap_or(chrono::Duration::MAX)
        });
        loop {
            let turn = self.turn.notified();
            tokio::pin!(turn);
            turn.as_mut().enable();
            if deadline.is_some_and(|d| clock.now() >= d) {
                drop(place);
                return Err(self.too_long(priority));
            }
            if !self.is_first(&place) {
                turn.await;
                continue;
            }
            match self.store.take(clock.now(), self.limit, reserve).await? {
                None => {
                    drop(place);
                    return Ok((clock.now() - started).to_std().unwrap_or_default());
                }
                Some(wait) => {
                    // Never past the deadline: the loop then says "busy".
                    let wait = match deadline {
                        Some(d) => wait.min((d - clock.now()).to_std().unwrap_or_default()),
                        None => wait,
                    };
                    tracing::debug!(
                        wait_ms = wait.as_millis() as u64,
                        ?priority,
                        "pacing requests to Octany"
                    );
                    // Wake early when someone more urgent arrives.
                    tokio::select! {
                        _ = clock.sleep(wait.min(Duration::from_secs(5))) => {}
                        _ = turn => {}
                    }
                    // A virtual clock's sleep is over at once: let others run.
                    tokio::task::yield_now().await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
