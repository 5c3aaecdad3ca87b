//! Who a request to Octany is for, which decides its turn in the request
//! budget (`budget`): a task-local priority the budget reads.

use std::future::Future;

/// Who a request to Octany is for, which decides its turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Priority {
    /// A person is waiting for it (their action, the success page): first.
    #[default]
    Interactive,
    /// A poll (the status route): after interactive requests.
    Poll,
    /// Background work (reconcile, backfill, replays): last, and it leaves
    /// half the burst to the others.
    Background,
}

tokio::task_local! {
    static PRIORITY: Priority;
}

impl Priority {
    /// Runs `work` so that every request it makes to Octany waits its turn
    /// as this priority.
    ///
    /// ```
    /// # async fn demo(client: octany_actix::OctanyClient) {
    /// use octany_actix::client::Priority;
    /// let page = Priority::Background.scope(client.list_products(1)).await;
    /// # let _ = page; }
    /// ```
    pub async fn scope<F: Future>(self, work: F) -> F::Output {
        PRIORITY.scope(self, work).await
    }

    /// The priority of the running task ([`Priority::Interactive`] outside
    /// any [`scope`](Priority::scope)).
    pub fn current() -> Priority {
        PRIORITY.try_with(|p| *p).unwrap_or_default()
    }

    pub(super) fn index(self) -> usize {
        self as usize
    }

    pub(super) fn label(self) -> &'static str {
        match self {
            Priority::Interactive => "interactive",
            Priority::Poll => "poll",
            Priority::Background => "background",
        }
    }

    /// The share of the burst a request of this priority must leave over.
    pub(super) fn reserve(self, burst: f64) -> f64 {
        match self {
            Priority::Interactive => 0.0,
            Priority::Poll => (burst * 0.3).floor(),
            Priority::Background => (burst * 0.5).floor(),
        }
    }
}
