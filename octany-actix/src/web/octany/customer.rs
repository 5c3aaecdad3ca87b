//! What the paying customer's pages need configured: how the success
//! page's status stream is bounded (per billable, per instance) and kept
//! alive, with the [`Watch`] each one waits on (`mirror::watch`), and the
//! seller printed on receipts, and the billing page's stylesheet.

use std::time::Duration;

use super::{Octany, OctanyBuilder};
use crate::mirror::watch::{Full, Watch};

impl OctanyBuilder {
    /// Whether the success page holds the status open as a stream and is
    /// told the moment the payment settles (default `true`); `false`
    /// leaves it polling the status route, as before.
    pub fn status_stream(mut self, on: bool) -> Self {
        self.settings.status_stream = on;
        self
    }

    /// How many status streams one billable (its tabs) and this instance
    /// may hold open at once (default 4 and 1,000); past either, the
    /// stream is refused with 429 and the page polls instead.
    pub fn status_waits(mut self, per_billable: usize, per_instance: usize) -> Self {
        self.settings.status_waits_per_billable = per_billable;
        self.settings.status_waits = per_instance;
        self
    }

    /// How often a held status stream sends a keep-alive (default 10 s). A
    /// closed tab is found out by the second write after it went, which
    /// frees its slot.
    pub fn status_heartbeat(mut self, every: Duration) -> Self {
        self.settings.status_heartbeat = every;
        self
    }

    /// Who sells, as printed on receipts (name, organisation and VAT
    /// numbers, address); without it there are no receipts.
    pub fn seller(mut self, seller: crate::domain::receipt::Seller) -> Self {
        self.settings.seller = Some(seller);
        self
    }

    /// A stylesheet the mounted billing page links after its own styles,
    /// so it takes the host's look (e.g. `/static/billing.css`).
    pub fn stylesheet(mut self, path: &str) -> Self {
        self.settings.stylesheet = Some(path.to_owned());
        self
    }
}

impl Octany {
    /// A wait for `billable`'s next change, in one of the bounded slots.
    pub(crate) fn watch(&self, billable: &str) -> Result<Watch, Full> {
        self.inner.syncer.watchers().watch(billable)
    }

    /// How many status streams this instance holds open now.
    #[doc(hidden)]
    pub fn status_waits(&self) -> usize {
        self.inner.syncer.watchers().held()
    }
}
