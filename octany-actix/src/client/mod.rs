//! The Octany REST client (API.md sections 1 to 4, 7 and 9).
//!
//! One async method per endpoint, typed requests and responses, retries by
//! [`RetryPolicy`], list-after-write for the two writes that create money
//! movements, and a `tracing` span per request (method, path template,
//! status, attempt, elapsed; never the key or personal data).
//!
//! ```no_run
//! # async fn demo() -> Result<(), octany_actix::OctanyError> {
//! use futures_util::TryStreamExt;
//! use octany_actix::client::{OctanyClient, SubscriptionFilter};
//! use octany_actix::config::OctanyConfig;
//!
//! let client = OctanyClient::new(OctanyConfig::from_env()?)?;
//! let mine: Vec<_> = client
//!     .stream_subscriptions(SubscriptionFilter::reference_id("user:42"))
//!     .try_collect()
//!     .await?;
//! # Ok(()) }
//! ```

mod budget;
mod calls;
mod checkout;
mod error;
mod lanes;
mod orders;
mod pagination;
mod priority;
mod products;
mod retry;
mod subscriptions;
mod transport;
mod webhooks;

use std::sync::Arc;

use crate::domain::clock::{SharedClock, SystemClock};
use crate::domain::config::OctanyConfig;

pub use crate::domain::limits::{RateLimit, RetryPolicy};
pub(crate) use budget::LocalTokens;
pub use budget::{QueueBounds, TokenStore};
pub(crate) use calls::{CallRecord, CallSink};
pub use checkout::CheckoutRequest;
pub(crate) use checkout::is_acceptable_success_url;
pub use error::OctanyError;
pub(crate) use error::Result;
pub(crate) use lanes::on_behalf_of;
pub use orders::NewOrder;
pub use pagination::{Page, Pagination};
pub use priority::Priority;
pub use products::ProductUpdate;
pub use subscriptions::{NewSubscription, SubscriptionFilter};
pub use webhooks::WebhookEndpoint;

/// A client for one Octany account. Cheap to clone (it is an `Arc`).
#[derive(Clone, Debug)]
pub struct OctanyClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    config: OctanyConfig,
    base: url::Url,
    clock: SharedClock,
    budget: Option<budget::Budget>,
    calls: calls::CallLog,
}

impl OctanyClient {
    /// A client on the system clock.
    pub fn new(config: OctanyConfig) -> Result<Self> {
        Self::with_clock(config, Arc::new(SystemClock))
    }

    /// A client whose back-off waits and retry deadlines run on `clock`.
    pub fn with_clock(config: OctanyConfig, clock: SharedClock) -> Result<Self> {
        install_crypto_provider();
        let http = reqwest::Client::builder()
            .user_agent(concat!("octany-actix/", env!("CARGO_PKG_VERSION")))
            .timeout(config.request_timeout())
            .connect_timeout(config.connect_timeout())
            .build()
            .map_err(|source| crate::client::OctanyError::Transport {
                attempts: 0,
                source,
            })?;
        Ok(Self {
            inner: Arc::new(Inner {
                base: config.api_base(),
                budget: config.rate_limit().map(|limit| {
                    budget::Budget::new(limit, Arc::new(budget::LocalTokens::default()))
                }),
                http,
                config,
                clock,
                calls: calls::CallLog::default(),
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &OctanyConfig {
        &self.inner.config
    }

    /// The clock.
    pub fn clock(&self) -> &SharedClock {
        &self.inner.clock
    }

    /// This client with its request budget kept in `store`, which other
    /// clients (other instances of the app) share, so together they stay
    /// within the rate limit; the Octany handle does this with the app's
    /// database. Without a rate limit configured, nothing changes.
    pub fn sharing_budget(self, store: Arc<dyn TokenStore>) -> Self {
        self.rebuilt(|budget| budget.with_store(store))
    }

    /// This client with other bounds on its budget's queues.
    pub fn with_queue_bounds(self, bounds: QueueBounds) -> Self {
        self.rebuilt(|budget| budget.with_bounds(bounds))
    }

    /// This client with each exchange with Octany recorded in `sink`.
    pub(crate) fn logging_calls(self, sink: std::sync::Arc<dyn CallSink>) -> Self {
        let mut rebuilt = self.rebuilt(|budget| budget);
        if let Some(inner) = Arc::get_mut(&mut rebuilt.inner) {
            inner.calls = calls::CallLog(Some(sink));
        }
        rebuilt
    }

    fn rebuilt(self, change: impl FnOnce(budget::Budget) -> budget::Budget) -> Self {
        let inner = match Arc::try_unwrap(self.inner) {
            Ok(inner) => inner,
            Err(shared) => Inner {
                http: shared.http.clone(),
                config: shared.config.clone(),
                base: shared.base.clone(),
                clock: shared.clock.clone(),
                budget: shared.budget.as_ref().map(budget::Budget::fresh),
                calls: shared.calls.clone(),
            },
        };
        Self {
            inner: Arc::new(Inner {
                budget: inner.budget.map(change),
                ..inner
            }),
        }
    }

    /// How many requests wait for the budget now: interactive, polls,
    /// background.
    pub fn waiting(&self) -> [usize; 3] {
        self.inner
            .budget
            .as_ref()
            .map_or([0; 3], budget::Budget::waiting)
    }
}

/// Installs rustls' ring provider once per process, so that every TLS user
/// in the process (this client, sqlx) agrees on one; a provider already
/// installed by the host is kept. Every client constructor calls it; call it
/// yourself before building other rustls clients.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
