//! Waiting for a billable's state to change: the held status request (the
//! success page's stream) registers a [`Watch`] and sleeps on it, costing
//! no database work, until a change of that billable is announced: by this
//! instance's unit of work at its commit (`Syncer::notify`: the syncer
//! holds the watchers), or, on PostgreSQL, by another instance's
//! (`mirror::revocation`).
//!
//! Bounded: at most `per_billable` watches of one billable (its open tabs)
//! and `per_instance` in all; a watch's slot is given back when it is
//! dropped (the stream ended or its client went away).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

/// The watches of one instance.
#[derive(Debug)]
pub(crate) struct Watchers {
    billables: Mutex<HashMap<String, Watched>>,
    held: AtomicUsize,
    per_billable: usize,
    per_instance: usize,
}

/// One billable's watches: the channel they wait on, and how many there are.
#[derive(Debug)]
struct Watched {
    changes: watch::Sender<u64>,
    held: usize,
}

/// Why a watch was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Full {
    /// The billable already holds its share.
    Billable,
    /// The instance holds as many as it may.
    Instance,
}

/// A registered wait for one billable's change; its slot is freed on drop.
#[derive(Debug)]
pub(crate) struct Watch {
    watchers: Arc<Watchers>,
    billable: String,
    changes: watch::Receiver<u64>,
}

impl Watchers {
    /// No watches yet; at most `per_billable` of one billable and
    /// `per_instance` in all.
    pub(crate) fn new(per_billable: usize, per_instance: usize) -> Arc<Self> {
        Arc::new(Self {
            billables: Mutex::default(),
            held: AtomicUsize::new(0),
            per_billable,
            per_instance,
        })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Watched>> {
        self.billables.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a wait for `billable`'s next change. Register before
    /// reading the state it waits to see change, so a change committed in
    /// between is not missed.
    pub(crate) fn watch(self: &Arc<Self>, billable: &str) -> Result<Watch, Full> {
        let mut billables = self.lock();
        if self.held.load(Ordering::Acquire) >= self.per_instance {
            return Err(Full::Instance);
        }
        let watched = billables
            .entry(billable.to_owned())
            .or_insert_with(|| Watched {
                changes: watch::Sender::new(0),
                held: 0,
            });
        if watched.held >= self.per_billable {
            return Err(Full::Billable);
        }
        watched.held += 1;
        self.held.fetch_add(1, Ordering::AcqRel);
        Ok(Watch {
            watchers: self.clone(),
            billable: billable.to_owned(),
            changes: watched.changes.subscribe(),
        })
    }

    /// Wakes the watches of `billable`: its state changed.
    pub(crate) fn changed(&self, billable: &str) {
        if let Some(watched) = self.lock().get(billable) {
            watched.changes.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// Wakes every watch: changes may have been missed (the connection
    /// that hears other instances was lost).
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn all_changed(&self) {
        for watched in self.lock().values() {
            watched.changes.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// How many watches are held now.
    pub(crate) fn held(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }
}

impl Watch {
    /// Marks every change so far as seen: the caller is about to read the
    /// state, and only a later change should wake it.
    pub(crate) fn seen(&mut self) {
        self.changes.borrow_and_update();
    }

    /// Waits for the billable's next change since the last one seen (or
    /// since the watch was made).
    pub(crate) async fn changed(&mut self) {
        // The sender lives while this watch is registered.
        let _ = self.changes.changed().await;
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut billables = self.watchers.lock();
        if let Some(watched) = billables.get_mut(&self.billable) {
            watched.held = watched.held.saturating_sub(1);
            if watched.held == 0 {
                billables.remove(&self.billable);
            }
        }
        self.watchers.held.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_change_wakes_its_billables_watches_and_no_other() {
        let watchers = Watchers::new(4, 100);
        let mut ann = watchers.watch("user:1").unwrap();
        let bo = watchers.watch("user:2").unwrap();
        watchers.changed("user:1");
        tokio::time::timeout(std::time::Duration::from_secs(5), ann.changed())
            .await
            .expect("woken");
        assert!(!bo.changes.has_changed().unwrap(), "user:2 did not change");
    }

    #[tokio::test]
    async fn a_change_between_the_watch_and_the_wait_is_not_missed() {
        let watchers = Watchers::new(4, 100);
        let mut watch = watchers.watch("user:1").unwrap();
        watchers.changed("user:1");
        // Awaited only now: the change is still seen.
        tokio::time::timeout(std::time::Duration::from_secs(5), watch.changed())
            .await
            .expect("seen");
    }

    #[test]
    fn the_caps_hold_and_a_dropped_watch_frees_its_slot() {
        let watchers = Watchers::new(2, 3);
        let a = watchers.watch("user:1").unwrap();
        let b = watchers.watch("user:1").unwrap();
        assert_eq!(watchers.watch("user:1").unwrap_err(), Full::Billable);
        let c = watchers.watch("user:2").unwrap();
        assert_eq!(watchers.watch("user:3").unwrap_err(), Full::Instance);
        assert_eq!(watchers.held(), 3);
        drop(a);
        assert_eq!(watchers.held(), 2);
        let again = watchers.watch("user:1").unwrap();
        drop((b, c, again));
        assert_eq!(watchers.held(), 0);
        assert!(watchers.lock().is_empty(), "no billable left behind");
    }
}
