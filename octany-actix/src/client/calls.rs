//! The API-call log's source: one record per exchange with Octany (method,
//! path, status, attempt, time taken, the billable it was for), handed to a
//! sink that writes it off the request path (`mirror::api_calls`). Never
//! the key: it travels in a header, and a record holds none.

use std::sync::Arc;

use chrono::{DateTime, Utc};

/// One exchange with Octany, as the log keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CallRecord {
    /// When it asked for its turn (the client's clock).
    pub(crate) at: DateTime<Utc>,
    /// `GET`, `POST`, ...
    pub(crate) method: String,
    /// The path under the account's REST base, e.g. `subscription/42`.
    pub(crate) path: String,
    /// Octany's status; `None` when nothing was answered.
    pub(crate) status: Option<u16>,
    /// Which attempt of the call this was (1 for the first).
    pub(crate) attempt: u32,
    /// From asking for its turn to the answer read: its wait for the
    /// request budget is included.
    pub(crate) duration_ms: u32,
    /// The billable it was made for, when the web layer said.
    pub(crate) billable: Option<String>,
    /// Why it failed, when it did.
    pub(crate) error: Option<String>,
}

/// Where records go; `record` must not wait (it runs on the request path).
pub(crate) trait CallSink: Send + Sync + 'static {
    fn record(&self, call: CallRecord);
}

/// The client's sink, if it logs its calls.
#[derive(Clone, Default)]
pub(crate) struct CallLog(pub(crate) Option<Arc<dyn CallSink>>);

impl std::fmt::Debug for CallLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "CallLog(on)"
        } else {
            "CallLog(off)"
        })
    }
}

impl CallLog {
    pub(crate) fn record(&self, call: impl FnOnce() -> CallRecord) {
        if let Some(sink) = &self.0 {
            sink.record(call());
        }
    }
}
