//! Back-off delays of the [`RetryPolicy`].

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

use crate::domain::limits::RetryPolicy;

impl RetryPolicy {
    /// The back-off delays, jittered, one per retry.
    pub(crate) fn backoff(&self) -> impl Iterator<Item = Duration> + Send + use<> {
        ExponentialBuilder::default()
            .with_min_delay(self.initial_backoff)
            .with_max_delay(self.max_backoff)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
            .build()
    }
}
