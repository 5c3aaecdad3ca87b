//! Injectable time.
//!
//! Every decision that depends on "now" (entitlement, grace periods, retry
//! back-off, the fake Octany's life cycle) reads it from a [`Clock`], never
//! from the system directly, so tests and the fake can move time.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;

/// A source of the current time, and of waiting.
///
/// Implement it to control time in tests; [`SystemClock`] is the real one and
/// [`ManualClock`] a virtual one that moves only when told.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;

    /// Waits for `duration`. The system clock really waits; a virtual clock
    /// moves its time forward and returns at once, so code that backs off
    /// under test runs instantly and the wait can be asserted.
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A virtual clock that moves only when told: by [`ManualClock::advance`],
/// [`ManualClock::set`], or by code that [`Clock::sleep`]s on it.
///
/// Clones share the same time.
///
/// ```
/// use octany_actix::clock::{Clock, ManualClock};
/// use std::time::Duration;
///
/// let clock = ManualClock::at("2026-01-01T00:00:00Z".parse().unwrap());
/// clock.advance(Duration::from_secs(3600));
/// assert_eq!(clock.now().to_rfc3339(), "2026-01-01T01:00:00+00:00");
/// ```
#[derive(Clone)]
pub struct ManualClock {
    now: Arc<Mutex<DateTime<Utc>>>,
    slept: Arc<Mutex<Vec<Duration>>>,
}

impl ManualClock {
    /// A clock standing at `now`.
    pub fn at(now: DateTime<Utc>) -> Self {
        Self {
            now: Arc::new(Mutex::new(now)),
            slept: Arc::default(),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX);
        let mut now = self.now.lock().expect("clock lock poisoned");
        *now = now.checked_add_signed(by).unwrap_or(*now);
    }

    /// Puts the clock at `instant` (which may be in its past).
    pub fn set(&self, instant: DateTime<Utc>) {
        *self.now.lock().expect("clock lock poisoned") = instant;
    }

    /// Every duration code has slept on this clock so far, in order.
    pub fn sleeps(&self) -> Vec<Duration> {
        self.slept.lock().expect("clock lock poisoned").clone()
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("now", &self.now())
            .finish()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().expect("clock lock poisoned")
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        self.slept
            .lock()
            .expect("clock lock poisoned")
            .push(duration);
        self.advance(duration);
        Box::pin(std::future::ready(()))
    }
}

/// A clock stopped at one instant: a decision that asks "now" several
/// times (the guard's: the cache, then each rule) reads the real clock once
/// and decides everything at that instant.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Frozen(pub(crate) DateTime<Utc>);

impl Clock for Frozen {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

/// A shared clock, as the library stores it.
pub type SharedClock = Arc<dyn Clock>;

/// The instant `age` before `now`; `None` when that is before the Unix
/// epoch, which no row of the mirror is (a prune "older than" a thousand
/// years then deletes nothing, where the subtraction would panic and every
/// database refuses some such date).
pub(crate) fn ago(now: DateTime<Utc>, age: Duration) -> Option<DateTime<Utc>> {
    chrono::TimeDelta::from_std(age)
        .ok()
        .and_then(|age| now.checked_sub_signed(age))
        .filter(|at| at.timestamp() >= 0)
}
