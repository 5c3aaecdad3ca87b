//! Backfilling the whole account: streaming, resumable, progress reported.

use super::{Batch, Mark, Origin, SyncError, Syncer};
use crate::client::SubscriptionFilter;
use crate::domain::model::SubscriptionId;

/// Where a backfill starts and what it includes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackfillOptions {
    /// The page to start from (1, or `next_page` of the last progress report
    /// to resume).
    pub start_page: u32,
    /// Also sync each subscription's orders (one more request per
    /// subscription; mind the rate limit).
    pub with_orders: bool,
    /// Also refresh the product cache first.
    pub products: bool,
}

impl Default for BackfillOptions {
    fn default() -> Self {
        Self {
            start_page: 1,
            with_orders: false,
            products: true,
        }
    }
}

/// How far a backfill has come.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackfillProgress {
    /// The page just written.
    pub page: u32,
    /// The page to resume from if stopped now; `None` when done.
    pub next_page: Option<u32>,
    /// Pages in all, as Octany says.
    pub total_pages: Option<u32>,
    /// Subscriptions seen so far (this run).
    pub subscriptions: u64,
    /// Orders seen so far (this run).
    pub orders: u64,
}

impl Syncer {
    /// Mirrors every subscription of the account, page after page (one page
    /// in memory), each page in one transaction; calls `progress` after each
    /// page. Stop it at any time and resume from `next_page`. Requests go
    /// through the client, which waits out 429s with `Retry-After`.
    pub async fn backfill(
        &self,
        options: BackfillOptions,
        progress: impl FnMut(&BackfillProgress) + Send,
    ) -> Result<BackfillProgress, SyncError> {
        // Background work: it waits behind any person's requests.
        crate::client::Priority::Background
            .scope(self.backfill_pages(options, progress))
            .await
    }

    async fn backfill_pages(
        &self,
        options: BackfillOptions,
        mut progress: impl FnMut(&BackfillProgress) + Send,
    ) -> Result<BackfillProgress, SyncError> {
        if options.products {
            self.sync_products().await?;
        }
        let mut state = BackfillProgress {
            page: options.start_page.max(1),
            ..BackfillProgress::default()
        };
        let filter = SubscriptionFilter::default();
        let mut page_no = state.page;
        loop {
            let page = self.client().list_subscriptions(&filter, page_no).await?;
            let mark = Mark::of(page.observed_at);
            let ids: Vec<SubscriptionId> = page.data.iter().map(|s| s.id.clone()).collect();
            state.subscriptions += page.data.len() as u64;
            let more = page.has_next();
            state.total_pages = page
                .pagination
                .total_pages
                .and_then(|t| u32::try_from(t).ok());
            self.ingest(
                Batch::default().subscriptions(page.data, mark),
                Origin::Backfill,
            )
            .await?;
            if options.with_orders {
                for id in &ids {
                    state.orders += self.sync_orders_by(id, Origin::Backfill).await?.orders;
                }
            }
            state.page = page_no;
            state.next_page = more.then_some(page_no + 1);
            progress(&state);
            match state.next_page {
                Some(next) => page_no = next,
                None => return Ok(state),
            }
        }
    }
}
