//! Back-off delays of the [`RetryPolicy`].

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

use crate::domain::limits::RetryPolicy;

/// The back-off delays of `policy`, jittered, one per retry.
pub(crate) fn backoff(policy: &RetryPolicy) -> impl Iterator<Item = Duration> + Send + use<> {
    ExponentialBuilder::default()
        .with_min_delay(policy.initial_backoff)
        .with_max_delay(policy.max_backoff)
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .build()
}
