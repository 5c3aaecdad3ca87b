//! The logs an operator reads.
//!
//! - The audit log: each operator's action (`web::ops`), who took it, why
//!   and how it ended.
//! - The API-call log: each exchange the library had with Octany for a
//!   billable (method, path, status, attempt, time), written off the
//!   request path by `mirror::api_calls` and pruned with the deliveries
//!   (`Operator::prune`). Never the key. On by default;
//!   `api_call_log(false)` turns it off.

use crate::domain::model::BillableRef;
use crate::mirror::rows::{ApiCall, AuditEntry};
use crate::web::error::BillingError;

use super::{Octany, OctanyBuilder};

impl OctanyBuilder {
    /// Whether each request to Octany is logged (`octany_api_calls`,
    /// read by [`Octany::api_calls`]); default on. The log is written by a
    /// task of its own from a bounded queue: no request waits for it, and
    /// when the queue is full a line is dropped (counted in
    /// `octany_api_calls_dropped_total`), never a request slowed.
    pub fn api_call_log(mut self, on: bool) -> Self {
        self.api_call_log = on;
        self
    }
}

impl Octany {
    /// The newest `limit` requests the library made to Octany for
    /// `billable`, newest first (empty with the log off).
    ///
    /// Who may: an operator (support, the CLI); no mounted route reads it.
    pub async fn api_calls(
        &self,
        billable: &BillableRef,
        limit: u64,
    ) -> Result<Vec<ApiCall>, BillingError> {
        Ok(self
            .mirror()
            .api_calls_of(billable.as_str(), limit)
            .await?
            .into_iter()
            .map(ApiCall::from)
            .collect())
    }

    /// The newest `limit` audit entries about `billable`, newest first.
    ///
    /// Who may: an operator; no mounted route reads it.
    pub async fn audit(
        &self,
        billable: &BillableRef,
        limit: u64,
    ) -> Result<Vec<AuditEntry>, BillingError> {
        let rows = self
            .mirror()
            .audit()
            .of(Some(billable.as_str()), limit)
            .await?;
        Ok(rows.into_iter().map(AuditEntry::from).collect())
    }

    /// The newest `limit` audit entries about no one billable, newest
    /// first: the whole mirror's operations ([`Operator::backfill`],
    /// [`Operator::reconcile`], the replays, [`Operator::prune`], the
    /// endpoint's checks).
    ///
    /// Who may: an operator; no mounted route reads it.
    ///
    /// [`Operator::backfill`]: crate::ops::Operator::backfill
    /// [`Operator::reconcile`]: crate::ops::Operator::reconcile
    /// [`Operator::prune`]: crate::ops::Operator::prune
    pub async fn audit_of_operations(&self, limit: u64) -> Result<Vec<AuditEntry>, BillingError> {
        let rows = self.mirror().audit().of(None, limit).await?;
        Ok(rows.into_iter().map(AuditEntry::from).collect())
    }
}
