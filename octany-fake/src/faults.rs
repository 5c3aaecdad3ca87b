//! Fault injection: what can go wrong between an app and Octany, switchable
//! at run time; the random ones are drawn from the fake's seeded source, so
//! one seed gives one sequence of faults.

use serde::{Deserialize, Serialize};

/// The faults in force. All off by default.
///
/// ```
/// use octany_fake::Faults;
/// let chaos = Faults { api_error_rate: 0.1, webhook_drop_rate: 0.3, ..Faults::default() };
/// assert!(chaos.api_error_rate > 0.0);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Added to every API response, in milliseconds.
    pub api_latency_ms: u64,
    /// Share (0 to 1) of API requests answered 500 or 503 without effect.
    pub api_error_rate: f64,
    /// Requests a minute allowed per API key; past it, 429 with `Retry-After`.
    /// Octany's reported limit is 120.
    pub rate_limit_per_minute: Option<u32>,
    /// Share of API requests answered 429 (`Retry-After: 1`) without effect,
    /// beside the per-minute limit.
    pub rate_limited_rate: f64,
    /// Share of POSTs that take effect but whose response is lost
    /// (answered 502, as a gateway does when the upstream reply never came).
    pub lost_response_rate: f64,
    /// Share of webhook deliveries never sent.
    pub webhook_drop_rate: f64,
    /// Share of webhook deliveries sent twice (same delivery id).
    pub webhook_duplicate_rate: f64,
    /// Share of webhook deliveries held back before sending.
    pub webhook_delay_rate: f64,
    /// The longest hold-back of a delayed delivery, in milliseconds.
    pub webhook_delay_max_ms: u64,
    /// Deliveries go out in shuffled order (each held back a random time
    /// within `webhook_reorder_window_ms`).
    pub webhook_reorder: bool,
    /// The window of shuffling, in milliseconds (default 0 means 200).
    pub webhook_reorder_window_ms: u64,
    /// A payment at the hosted checkout settles this long after the buyer
    /// pays, in real milliseconds (a card check, Swish, a bank): the
    /// browser is sent to the success URL at once (its `{subscriptionId}`
    /// empty), and the subscription or order appears, with its webhooks,
    /// only then. 0: at once. A declined card is still refused at once.
    pub settlement_delay_ms: u64,
    /// With `settlement_delay_ms`: the settled payment sends no webhook
    /// (the app must find it by polling).
    pub settlement_without_webhooks: bool,
}

impl Faults {
    /// No faults.
    pub fn none() -> Self {
        Self::default()
    }

    /// Octany's reported rate limit, 120 requests a minute, and nothing else.
    pub fn octany_rate_limit() -> Self {
        Self {
            rate_limit_per_minute: Some(120),
            ..Self::default()
        }
    }
}
