//! Client-side pacing, so a busy app (a backfill, many success pages)
//! stays under Octany's rate limit instead of collecting 429s.
//!
//! A token bucket on the injected [`Clock`](crate::domain::clock::Clock): general
//! rate-limiter crates keep their own clocks, which would not move with a
//! test's or the fake's virtual time.

use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::domain::clock::SharedClock;
use crate::domain::limits::RateLimit;

#[derive(Debug)]
pub(crate) struct Pacer {
    limit: RateLimit,
    state: Mutex<(f64, Option<DateTime<Utc>>)>,
}

impl Pacer {
    pub(super) fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            state: Mutex::new((f64::from(limit.burst.max(1)), None)),
        }
    }

    /// Takes a token, returning how long to wait first (zero when one is free).
    fn reserve(&self, now: DateTime<Utc>) -> Duration {
        let rate_per_sec = f64::from(self.limit.per_minute.max(1)) / 60.0;
        let capacity = f64::from(self.limit.burst.max(1));
        let mut state = self.state.lock().expect("pacer lock");
        let (tokens, last) = &mut *state;
        if let Some(last) = *last {
            let elapsed = (now - last).num_microseconds().unwrap_or(i64::MAX).max(0) as f64 / 1e6;
            *tokens = (*tokens + elapsed * rate_per_sec).min(capacity);
        }
        *last = Some(now);
        *tokens -= 1.0;
        if *tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-*tokens / rate_per_sec)
        }
    }

    /// Waits until a request may go.
    pub(super) async fn wait(&self, clock: &SharedClock) {
        let wait = self.reserve(clock.now());
        if !wait.is_zero() {
            tracing::debug!(
                wait_ms = wait.as_millis() as u64,
                "pacing requests to Octany"
            );
            clock.sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::clock::{Clock, ManualClock};
    use std::sync::Arc;

    #[tokio::test]
    async fn bursts_then_paces_to_the_rate() {
        let clock = ManualClock::at("2026-01-01T00:00:00Z".parse().unwrap());
        let shared: SharedClock = Arc::new(clock.clone());
        let pacer = Pacer::new(RateLimit {
            per_minute: 60,
            burst: 5,
        });
        let start = clock.now();
        for _ in 0..65 {
            pacer.wait(&shared).await;
        }
        assert_eq!(
            clock.sleeps().len(),
            60,
            "the first 5 go at once, the rest wait"
        );
        let took = (clock.now() - start).num_milliseconds();
        assert!(
            (59_900..=60_100).contains(&took),
            "60 more requests at 1/s take a minute: {took} ms"
        );
    }

    #[tokio::test]
    async fn no_window_of_a_minute_holds_more_than_burst_plus_rate() {
        let clock = ManualClock::at("2026-01-01T00:00:00Z".parse().unwrap());
        let shared: SharedClock = Arc::new(clock.clone());
        let pacer = Pacer::new(RateLimit::default());
        let mut sent = Vec::new();
        for _ in 0..400 {
            pacer.wait(&shared).await;
            sent.push(clock.now());
        }
        let most = sent
            .iter()
            .map(|t| {
                sent.iter()
                    .filter(|u| **u >= *t && **u < *t + chrono::Duration::seconds(60))
                    .count()
            })
            .max()
            .unwrap();
        assert!(most <= 120, "{most} requests in one minute");
    }
}
