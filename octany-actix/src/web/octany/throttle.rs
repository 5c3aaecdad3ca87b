//! The status route's sync of a billable from Octany, throttled per
//! billable and coalesced: many polls, one request.

use std::sync::Arc;

use crate::client::OctanyError;
use crate::domain::model::BillableRef;

use super::Octany;

impl Octany {
    /// Syncs a billable's subscriptions from Octany unless that was done in
    /// the last [`Settings::status_sync_interval`](crate::Settings::status_sync_interval); true when this call ran
    /// it. Polls for the same billable coalesce: one that comes while the
    /// sync runs waits for it (one request to Octany, and every poll
    /// answers from what it brought); if the caller running it goes away,
    /// a waiting one takes it over. A failure is logged and the local
    /// state stands.
    pub async fn sync_throttled(&self, billable: &BillableRef) -> bool {
        let now = self.inner.clock.now();
        let interval = chrono::Duration::from_std(self.settings.status_sync_interval)
            .unwrap_or(chrono::Duration::MAX);
        let sync = {
            let mut last = self
                .inner
                .last_sync
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            match last.get(billable.as_str()) {
                Some((at, sync)) if *at + interval > now => sync.clone(),
                _ => {
                    if last.len() > 100_000 {
                        last.retain(|_, (at, _)| *at + interval > now);
                    }
                    let sync = Arc::new(tokio::sync::OnceCell::new());
                    last.insert(billable.to_string(), (now, sync.clone()));
                    sync
                }
            }
        };
        let mut ran = false;
        sync.get_or_init(|| async {
            ran = true;
            crate::client::on_behalf_of(billable.as_str(), self.sync_now(billable)).await;
        })
        .await;
        ran
    }

    /// One sync of a billable's subscriptions, for [`Octany::sync_throttled`].
    async fn sync_now(&self, billable: &BillableRef) {
        match self
            .inner
            .syncer
            .sync_billable_subscriptions(billable)
            .await
        {
            Ok(_) => {}
            Err(crate::mirror::sync::SyncError::Octany(OctanyError::Busy { .. })) => {
                tracing::debug!("the request budget is busy; answering from the local mirror");
            }
            Err(error) => {
                tracing::warn!(%error, "syncing a billable from Octany failed; answering from the local mirror")
            }
        }
    }
}
