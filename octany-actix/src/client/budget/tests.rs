//! The budget's pacing, priorities, bounds and waits, on a virtual clock.
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
    let budget = Budget::new(limit(), Arc::new(LocalTokens::default())).with_bounds(QueueBounds {
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
