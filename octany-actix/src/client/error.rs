//! Errors from talking to Octany.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::client::priority::Priority;
use crate::domain::config::ConfigError;

/// A call to Octany failed. Each message says what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OctanyError {
    /// 401/403: the key is wrong, missing, or of another account.
    #[error(
        "Octany refused the API key (HTTP {status}: {message}): check that OCTANY_API_KEY is the key of account OCTANY_ACCOUNT"
    )]
    Unauthorized {
        /// 401 or 403.
        status: u16,
        /// Octany's message.
        message: String,
    },
    /// 404: no such resource in this account.
    #[error(
        "Octany has no {resource} with that id in this account (HTTP 404: {message}): check the id and the account"
    )]
    NotFound {
        /// What was asked for, e.g. `subscription`.
        resource: &'static str,
        /// Octany's message.
        message: String,
    },
    /// 422: Octany validated the request and refused it.
    #[error("Octany refused the request as invalid: {message}{}: correct the named fields", fields(.errors))]
    Validation {
        /// Octany's summary.
        message: String,
        /// Messages per field.
        errors: BTreeMap<String, Vec<String>>,
    },
    /// 429, still after the retries the policy allows.
    #[error("Octany is rate limiting this key (HTTP 429, retry after {}): make fewer requests (about 120 a minute are allowed)", retry_after.map(|d| format!("{} s", d.as_secs())).unwrap_or_else(|| "an unstated time".into()))]
    RateLimited {
        /// What Octany's `Retry-After` said.
        retry_after: Option<Duration>,
    },
    /// Not sent: the request budget's queue for this priority is full (a
    /// burst of polls, say). Answer from the local mirror, or try again soon.
    #[error(
        "not sent: {waiting} {priority:?} request(s) already wait for Octany's rate limit; answer from the local state, or try again in a few seconds"
    )]
    Busy {
        /// The priority whose queue is full.
        priority: Priority,
        /// How many wait in it.
        waiting: usize,
    },
    /// Another 4xx.
    #[error(
        "Octany refused the request (HTTP {status}: {message}): this is likely a bug in the request; report it"
    )]
    Rejected {
        /// The status.
        status: u16,
        /// Octany's message.
        message: String,
    },
    /// 5xx, still after the retries the policy allows.
    #[error(
        "Octany failed (HTTP {status}) after {attempts} attempt(s): try again later; the body began: {excerpt}"
    )]
    Server {
        /// The status.
        status: u16,
        /// How many attempts were made.
        attempts: u32,
        /// The start of the body.
        excerpt: String,
    },
    /// Octany could not be reached, or the connection broke.
    #[error(
        "could not reach Octany after {attempts} attempt(s) ({source}): check OCTANY_API_URL and the network"
    )]
    Transport {
        /// How many attempts were made.
        attempts: u32,
        /// The cause (its URL removed, as it may hold personal data).
        #[source]
        source: reqwest::Error,
    },
    /// Octany answered with a body this library cannot read.
    #[error(
        "Octany answered HTTP {status} with a body this library cannot read ({source}); the body began: {excerpt}. Report it with that excerpt"
    )]
    Decode {
        /// The status.
        status: u16,
        /// The start of the body.
        excerpt: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// A write whose answer was lost, and whose outcome could not be
    /// checked either.
    #[error(
        "Octany may or may not have done `{action}`: its answer was lost and checking afterwards failed too ({source}). Look at Octany before trying again"
    )]
    Unconfirmed {
        /// The write, e.g. `create order`.
        action: &'static str,
        /// Why the check failed.
        #[source]
        source: Box<OctanyError>,
    },
    /// The request was not sent because it is malformed.
    #[error("the request was not sent: {reason}")]
    InvalidRequest {
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// The configuration is incomplete or malformed.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

fn fields(errors: &BTreeMap<String, Vec<String>>) -> String {
    errors
        .iter()
        .map(|(field, msgs)| format!("; {field}: {}", msgs.join(" ")))
        .collect()
}

impl OctanyError {
    /// Whether a write that failed this way may nevertheless have happened:
    /// Octany failed (5xx), the connection broke after sending, or the
    /// answer could not be read.
    pub fn is_ambiguous(&self) -> bool {
        match self {
            Self::Server { .. } | Self::Decode { .. } => true,
            Self::Transport { source, .. } => !source.is_connect() && !source.is_builder(),
            _ => false,
        }
    }

    /// The HTTP status Octany answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Unauthorized { status, .. }
            | Self::Rejected { status, .. }
            | Self::Server { status, .. }
            | Self::Decode { status, .. } => Some(*status),
            Self::NotFound { .. } => Some(404),
            Self::Validation { .. } => Some(422),
            Self::RateLimited { .. } => Some(429),
            _ => None,
        }
    }
}

/// A result of a call to Octany.
pub(crate) type Result<T, E = OctanyError> = std::result::Result<T, E>;
