//! How much the client may ask of Octany: retries and pacing.

use std::time::Duration;

/// How the client retries (API.md section 3).
///
/// - a 429 waits `Retry-After` (at most [`RetryPolicy::max_retry_after`])
///   and retries, up to [`RetryPolicy::rate_limit_retries`] times, for any
///   method: a refused request did nothing;
/// - a GET is retried on 5xx and network errors with jittered exponential
///   back-off, up to [`RetryPolicy::max_attempts`] attempts in all;
/// - a POST is retried only when nothing was sent (connection refused);
///   creating orders and subscriptions reconcile by listing after the
///   write instead of retrying blindly;
/// - no retry starts once [`RetryPolicy::max_elapsed`] has passed.
///
/// ```
/// use octany_actix::client::RetryPolicy;
/// use std::time::Duration;
/// let policy = RetryPolicy::default().with_max_attempts(2).with_max_elapsed(Duration::from_secs(5));
/// assert_eq!(policy.max_attempts, 2);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all for a retryable failure (default 4).
    pub max_attempts: u32,
    /// The first back-off (default 200 ms), doubled each time, jittered.
    pub initial_backoff: Duration,
    /// The longest back-off (default 5 s).
    pub max_backoff: Duration,
    /// No retry starts after this much time since the first attempt (default 30 s).
    pub max_elapsed: Duration,
    /// How many 429s in a row are waited out (default 5).
    pub rate_limit_retries: u32,
    /// The longest `Retry-After` honoured; a longer one is cut to this (default 60 s).
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            max_elapsed: Duration::from_secs(30),
            rate_limit_retries: 5,
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            rate_limit_retries: 0,
            ..Self::default()
        }
    }

    /// Sets [`RetryPolicy::max_attempts`] (at least 1).
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Sets [`RetryPolicy::initial_backoff`] and [`RetryPolicy::max_backoff`].
    pub fn with_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max.max(initial);
        self
    }

    /// Sets [`RetryPolicy::max_elapsed`].
    pub fn with_max_elapsed(mut self, elapsed: Duration) -> Self {
        self.max_elapsed = elapsed;
        self
    }

    /// Sets [`RetryPolicy::rate_limit_retries`] and [`RetryPolicy::max_retry_after`].
    pub fn with_rate_limit(mut self, retries: u32, max_retry_after: Duration) -> Self {
        self.rate_limit_retries = retries;
        self.max_retry_after = max_retry_after;
        self
    }
}

/// How many requests the client sends at most.
///
/// With `burst` B and `per_minute` R, any one-minute window holds at most
/// B + R requests: the default (10 + 110) keeps within Octany's 120.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained requests a minute.
    pub per_minute: u32,
    /// Requests that may go at once after a quiet spell.
    pub burst: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            per_minute: 110,
            burst: 10,
        }
    }
}

/// The token bucket of a [`RateLimit`], in one place: the process's own
/// store and the database's shared one (whose `UPDATE` states the same
/// refill in SQL, with these numbers bound) both count by it.
impl RateLimit {
    /// The bucket's size: `burst`, at least one token.
    pub(crate) fn capacity(self) -> f64 {
        f64::from(self.burst.max(1))
    }

    /// Tokens added a microsecond.
    pub(crate) fn per_microsecond(self) -> f64 {
        f64::from(self.per_minute.max(1)) / 60e6
    }

    /// `tokens` held at `last_us`, refilled until `now_us` (microseconds).
    pub(crate) fn refilled(self, tokens: f64, last_us: i64, now_us: i64) -> f64 {
        (tokens + (now_us - last_us).max(0) as f64 * self.per_microsecond()).min(self.capacity())
    }

    /// How long until `available` tokens become `need`.
    pub(crate) fn wait_for(self, available: f64, need: f64) -> std::time::Duration {
        let per_second = self.per_microsecond() * 1e6;
        std::time::Duration::from_secs_f64(((need - available).max(0.0) / per_second).max(0.001))
    }
}
