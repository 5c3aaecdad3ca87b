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
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

use crate::client::OctanyError;
use crate::client::lanes::{Lanes, Slot};
use crate::domain::clock::SharedClock;
use crate::domain::limits::RateLimit;

/// Who a request to Octany is for, which decides its turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Priority {
    /// A person is waiting for it (their action, the success page): first.
    #[default]
    Interactive,
    /// A poll (the status route): after interactive requests.
    Poll,
    /// Background work (reconcile, backfill, replays): last, and it leaves
    /// half the burst to the others.
    Background,
}

tokio::task_local! {
    static PRIORITY: Priority;
}

impl Priority {
    /// Runs `work` so that every request it makes to Octany waits its turn
    /// as this priority.
    ///
    /// ```
    /// # async fn demo(client: octany_actix::OctanyClient) {
    /// use octany_actix::client::Priority;
    /// let page = Priority::Background.scope(client.list_products(1)).await;
    /// # let _ = page; }
    /// ```
    pub async fn scope<F: Future>(self, work: F) -> F::Output {
        PRIORITY.scope(self, work).await
    }

    /// The priority of the running task ([`Priority::Interactive`] outside
    /// any [`scope`](Priority::scope)).
    pub fn current() -> Priority {
        PRIORITY.try_with(|p| *p).unwrap_or_default()
    }

    fn index(self) -> usize {
        self as usize
    }

    fn label(self) -> &'static str {
        match self {
            Priority::Interactive => "interactive",
            Priority::Poll => "poll",
            Priority::Background => "background",
        }
    }

    /// The share of the burst a request of this priority must leave over.
    fn reserve(self, burst: f64) -> f64 {
        match self {
            Priority::Interactive => 0.0,
            Priority::Poll => (burst * 0.3).floor(),
            Priority::Background => (burst * 0.5).floor(),
        }
    }
}

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
        let slot = match futures_util::FutureExt::now_or_never(lane.as_mut()) {
            Some(slot) => slot?,
            None if priority == Priority::Background => lane.await?,
            // In the billable's line: the longest wait counts from here.
            None => tokio::select! {
                slot = lane => slot?,
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
mod tests {
    use super::*;
    use crate::domain::clock::{Clock, ManualClock};

    fn limit() -> RateLimit {
        RateLimit {
            per_minute: 60,
            burst: 2,
        }
    }

    fn budget() -> (Arc<Budget>, SharedClock, ManualClock) {
        let manual = ManualClock::at("2026-01-01T00:00:00Z".parse().unwrap());
        let clock: SharedClock = Arc::new(manual.clone());
        let budget = Arc::new(Budget::new(limit(), Arc::new(LocalTokens::default())));
        (budget, clock, manual)
    }

    #[tokio::test]
    async fn bursts_then_paces_to_the_rate() {
        let (budget, clock, manual) = budget();
        let start = manual.now();
        for _ in 0..5 {
            budget.acquire(&clock).await.unwrap();
        }
        // Two at once (the burst), then one a second.
        let elapsed = (manual.now() - start).num_milliseconds();
        assert!((2900..=3100).contains(&elapsed), "{elapsed} ms");
    }

    #[tokio::test]
    async fn a_background_request_leaves_half_the_burst() {
        let clock: SharedClock = Arc::new(ManualClock::at("2026-01-01T00:00:00Z".parse().unwrap()));
        let limit = RateLimit {
            per_minute: 60,
            burst: 10,
        };
        let store = LocalTokens::default();
        let now = clock.now();
        let mut taken = 0;
        while store
            .take(now, limit, Priority::Background.reserve(10.0))
            .await
            .unwrap()
            .is_none()
        {
            taken += 1;
        }
        assert_eq!(taken, 5, "background stops with five tokens left");
        assert!(
            store.take(now, limit, 0.0).await.unwrap().is_none(),
            "an interactive request still goes"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn interactive_goes_before_polls_before_background() {
        // The system clock: a refused head really sleeps (until a turn wakes
        // it), where a virtual clock's sleep ends at once and the head would
        // spin, taking a token a moment after someone more urgent arrived.
        let clock: SharedClock = Arc::new(crate::domain::clock::SystemClock);
        // A store that refuses until opened keeps everyone waiting while they
        // arrive: background first, interactive last.
        let gate = Arc::new(GatedStore::default());
        let gated = Arc::new(Budget::new(limit(), gate.clone()));
        let mut tasks = Vec::new();
        for priority in [Priority::Background, Priority::Poll, Priority::Interactive] {
            let (waiter, clock) = (gated.clone(), clock.clone());
            tasks.push(tokio::spawn(priority.scope(async move {
                waiter.acquire(&clock).await.unwrap();
            })));
            while gated.waiting().iter().sum::<usize>() < tasks.len() {
                tokio::task::yield_now().await;
            }
        }
        gate.open();
        gated.turn.notify_waiters();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(
            gate.order(),
            [Priority::Interactive, Priority::Poll, Priority::Background]
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_gone_caller_leaves_the_queue_and_a_full_queue_is_busy_at_once() {
        let gate = Arc::new(GatedStore::default());
        let clock: SharedClock = Arc::new(ManualClock::at("2026-01-01T00:00:00Z".parse().unwrap()));
        let budget = Arc::new(Budget::new(limit(), gate.clone()).with_bounds(QueueBounds {
            interactive: 4,
            poll: 2,
            background: 1,
            // The gate holds them on a virtual clock that races ahead.
            longest_wait: Duration::from_secs(86_400 * 365),
            ..QueueBounds::default()
        }));
        let mut polls = Vec::new();
        for _ in 0..2 {
            let (budget, clock) = (budget.clone(), clock.clone());
            polls.push(tokio::spawn(
                Priority::Poll.scope(async move { budget.acquire(&clock).await }),
            ));
        }
        while budget.waiting()[1] < 2 {
            tokio::task::yield_now().await;
        }
        let busy = Priority::Poll.scope(budget.acquire(&clock)).await;
        assert!(
            matches!(busy, Err(OctanyError::Busy { waiting: 2, .. })),
            "{busy:?}"
        );
        // Both callers go away (a closed tab): their places are freed.
        for p in &polls {
            p.abort();
        }
        for p in polls {
            let _ = p.await;
        }
        assert_eq!(budget.waiting(), [0, 0, 0]);
        gate.open();
        assert!(Priority::Poll.scope(budget.acquire(&clock)).await.is_ok());
        assert_eq!(gate.taken(), 1, "the gone callers took no token");
    }

    /// A store that refuses until opened, then gives every token asked,
    /// noting the priority of each taker.
    #[derive(Debug, Default)]
    struct GatedStore {
        open: std::sync::atomic::AtomicBool,
        order: Mutex<Vec<Priority>>,
    }

    impl GatedStore {
        fn open(&self) {
            self.open.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        fn taken(&self) -> usize {
            self.order.lock().unwrap().len()
        }
        fn order(&self) -> Vec<Priority> {
            self.order.lock().unwrap().clone()
        }
    }

    #[async_trait::async_trait]
    impl TokenStore for GatedStore {
        async fn take(
            &self,
            _: DateTime<Utc>,
            _: RateLimit,
            _: f64,
        ) -> Result<Option<Duration>, OctanyError> {
            if self.open.load(std::sync::atomic::Ordering::SeqCst) {
                self.order.lock().unwrap().push(Priority::current());
                Ok(None)
            } else {
                // Long, so that only the gate's opening lets anyone through.
                Ok(Some(Duration::from_secs(3600)))
            }
        }
    }

    #[tokio::test]
    async fn a_wait_in_a_billables_line_ends_at_the_longest_wait_too() {
        let manual = ManualClock::at("2026-01-01T00:00:00Z".parse().unwrap());
        let clock: SharedClock = Arc::new(manual.clone());
        let budget =
            Budget::new(limit(), Arc::new(LocalTokens::default())).with_bounds(QueueBounds {
                per_billable: 1,
                longest_wait: Duration::from_secs(2),
                ..QueueBounds::default()
            });
        let under_way = crate::client::on_behalf_of("user:1", budget.acquire(&clock))
            .await
            .unwrap();
        let started = manual.now();
        let behind = crate::client::on_behalf_of("user:1", budget.acquire(&clock)).await;
        assert!(
            matches!(behind, Err(OctanyError::Busy { .. })),
            "{behind:?}"
        );
        assert_eq!(
            manual.now() - started,
            chrono::Duration::seconds(2),
            "told at the longest wait"
        );
        drop(under_way);
        assert!(
            crate::client::on_behalf_of("user:1", budget.acquire(&clock))
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn a_person_is_told_busy_rather_than_kept_past_the_longest_wait() {
        // One token every 10 s; a person waits at most 2 s.
        let slow = RateLimit {
            per_minute: 6,
            burst: 1,
        };
        let manual = ManualClock::at("2026-01-01T00:00:00Z".parse().unwrap());
        let clock: SharedClock = Arc::new(manual.clone());
        let budget = Budget::new(slow, Arc::new(LocalTokens::default())).with_bounds(QueueBounds {
            longest_wait: Duration::from_secs(2),
            ..QueueBounds::default()
        });
        assert!(budget.acquire(&clock).await.is_ok(), "the burst's token");
        let started = manual.now();
        let person = budget.acquire(&clock).await;
        assert!(
            matches!(
                person,
                Err(OctanyError::Busy {
                    priority: Priority::Interactive,
                    ..
                })
            ),
            "{person:?}"
        );
        assert_eq!(
            manual.now() - started,
            chrono::Duration::seconds(2),
            "told at the longest wait, not at the token"
        );
        assert_eq!(budget.waiting(), [0, 0, 0], "its place is freed");
        // Background work waits as long as it takes.
        assert!(
            Priority::Background
                .scope(budget.acquire(&clock))
                .await
                .is_ok()
        );
        assert!(manual.now() >= started + chrono::Duration::seconds(9));
    }
}
