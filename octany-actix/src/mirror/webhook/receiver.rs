//! The webhook receiver: verify, then hand the delivery to the syncer's
//! unit of work, whose transaction also claims the delivery (the dedupe)
//! and marks it processed.

use std::sync::Arc;

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use super::signature::verify;
use crate::domain::config::{ConfigError, Secret};
use crate::domain::model::{EventName, WebhookEnvelope};
use crate::mirror::entity::webhook_delivery;
use crate::mirror::sync::{Batch, Delivery, Origin, SyncError, Syncer};

/// The default largest body accepted: 1 MiB.
pub(crate) const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// The longest delivery id and event name the deliveries table holds.
const ID_MAX: usize = 100;

/// How far ahead of this app's clock a delivery's `created_at` may be (clock
/// skew); beyond it the date is not believed.
const FUTURE_SKEW: chrono::Duration = chrono::Duration::minutes(10);

/// A delivery the receiver refused or could not apply. Each maps to one
/// HTTP status (401, 413, 400, 500), in `octany_actix::error`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// Missing, empty or wrong `Octany-Signature` (401). Nothing is stored.
    #[error(
        "the Octany-Signature header is missing or does not match: check OCTANY_WEBHOOK_SECRET against the endpoint's secret in Octany's admin"
    )]
    BadSignature,
    /// The body is over the limit (413).
    #[error("the webhook body is larger than the {limit}-byte limit")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// The body is not a webhook envelope (400).
    #[error("the webhook body is not an Octany envelope: {0}")]
    Malformed(String),
    /// No delivery with that id is stored, so there is nothing to replay (404).
    #[error("no delivery `{0}` is stored: list them in octany_webhook_deliveries")]
    UnknownDelivery(String),
    /// Applying failed (500, so that Octany retries); recorded on the delivery.
    #[error("applying the delivery failed; Octany will retry it: {0}")]
    Apply(#[from] SyncError),
}

/// What the receiver did with an accepted delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// Applied (a known event).
    Applied,
    /// An event this version does not know: stored, acknowledged.
    Stored,
    /// Seen and applied before: acknowledged, not applied again.
    Duplicate,
}

/// What a replay did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Deliveries replayed.
    pub replayed: u64,
    /// Of those, the ones that failed again.
    pub failed: u64,
}

/// Receives Octany's webhooks: verifies each delivery and applies it
/// through the syncer's unit of work. [`Octany::scope`](crate::Octany::scope)
/// mounts it at `POST {billing_path}/webhook`.
#[derive(Clone, Debug)]
pub struct WebhookReceiver {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    syncer: Syncer,
    secrets: Vec<Secret>,
    insecure: bool,
    body_limit: usize,
}

impl WebhookReceiver {
    /// A receiver verifying deliveries against `secrets` (several while
    /// rotating). With no secret it refuses: an app must not start open.
    pub fn new(syncer: Syncer, secrets: &[Secret]) -> Result<Self, ConfigError> {
        let secrets: Vec<Secret> = secrets
            .iter()
            .filter(|s| !s.expose().is_empty())
            .cloned()
            .collect();
        if secrets.is_empty() {
            return Err(ConfigError::Missing {
                var: "OCTANY_WEBHOOK_SECRET",
                what: "the webhook endpoint's secret from Octany's admin (or enable insecure development mode explicitly)",
            });
        }
        Ok(Self::build(syncer, secrets, false))
    }

    /// A receiver that does not check signatures: for development only.
    /// Anyone who can reach the endpoint can then write billing state.
    pub fn insecure_development_mode(syncer: Syncer) -> Self {
        tracing::warn!("webhook signatures are NOT checked (insecure development mode)");
        Self::build(syncer, Vec::new(), true)
    }

    fn build(syncer: Syncer, secrets: Vec<Secret>, insecure: bool) -> Self {
        Self {
            inner: Arc::new(Inner {
                syncer,
                secrets,
                insecure,
                body_limit: DEFAULT_BODY_LIMIT,
            }),
        }
    }

    fn map(self, f: impl FnOnce(&mut Inner)) -> Self {
        let mut inner = Arc::try_unwrap(self.inner).unwrap_or_else(|shared| Inner {
            syncer: shared.syncer.clone(),
            secrets: shared.secrets.clone(),
            insecure: shared.insecure,
            body_limit: shared.body_limit,
        });
        f(&mut inner);
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The largest body accepted (default 1 MiB).
    pub fn with_body_limit(self, bytes: usize) -> Self {
        self.map(|inner| inner.body_limit = bytes)
    }

    /// The largest body accepted.
    pub fn body_limit(&self) -> usize {
        self.inner.body_limit
    }

    /// The syncer deliveries are applied with.
    pub fn syncer(&self) -> &Syncer {
        &self.inner.syncer
    }

    /// Verifies and applies one delivery: its `Octany-Signature` header value
    /// and its body exactly as received.
    pub async fn receive(
        &self,
        signature: Option<&str>,
        body: &[u8],
    ) -> Result<Received, WebhookError> {
        let started = std::time::Instant::now();
        let outcome = self.receive_unmeasured(signature, body).await;
        let label = match &outcome {
            Ok(Received::Applied) => "applied",
            Ok(Received::Stored) => "stored",
            Ok(Received::Duplicate) => "duplicate",
            Err(WebhookError::Apply(_)) => "failed",
            Err(_) => "refused",
        };
        metrics::counter!("octany_webhook_deliveries_total", "outcome" => label).increment(1);
        // Wall time: a latency, not a decision.
        metrics::histogram!("octany_webhook_apply_seconds", "outcome" => label)
            .record(started.elapsed().as_secs_f64());
        outcome
    }

    async fn receive_unmeasured(
        &self,
        signature: Option<&str>,
        body: &[u8],
    ) -> Result<Received, WebhookError> {
        if body.len() > self.inner.body_limit {
            return Err(WebhookError::TooLarge {
                limit: self.inner.body_limit,
            });
        }
        if !self.inner.insecure {
            let signature = signature.unwrap_or_default();
            if !verify(&self.inner.secrets, body, signature) {
                tracing::warn!(
                    signature_present = !signature.is_empty(),
                    bytes = body.len(),
                    "refused a webhook with a bad signature; nothing stored"
                );
                return Err(WebhookError::BadSignature);
            }
        }
        let envelope: WebhookEnvelope =
            serde_json::from_slice(body).map_err(|e| WebhookError::Malformed(e.to_string()))?;
        let text = std::str::from_utf8(body).map_err(|e| WebhookError::Malformed(e.to_string()))?;
        if let Err(problem) = self.storable(&envelope) {
            tracing::error!(delivery = ?envelope.id.as_str(), event = ?envelope.name, %problem, "refused a signed webhook that cannot be stored (400)");
            return Err(WebhookError::Malformed(problem));
        }
        self.process(&envelope, text, false).await
    }

    /// Whether a signed delivery can be recorded as it is: an id and event
    /// name that fit their columns, without control characters (PostgreSQL
    /// refuses NUL), and, when the account's number is configured, its
    /// account. Anything else is refused with 400 and logged, never a 500
    /// that Octany would retry for ever.
    fn storable(&self, envelope: &WebhookEnvelope) -> Result<(), String> {
        for (what, text) in [
            ("id", envelope.id.as_str()),
            ("name", envelope.name.as_str()),
        ] {
            if text.chars().count() > ID_MAX {
                return Err(format!(
                    "the delivery's {what} is longer than {ID_MAX} characters"
                ));
            }
            if text.chars().any(char::is_control) {
                return Err(format!("the delivery's {what} contains control characters"));
            }
        }
        if let Some(ours) = self.inner.syncer.client().config().account_number() {
            let theirs = envelope.account.as_deref().unwrap_or_default();
            if theirs != ours.to_string() {
                return Err(format!(
                    "the delivery is for account `{theirs}`, not this app's account {ours} (OCTANY_ACCOUNT_NUMBER)"
                ));
            }
        }
        Ok(())
    }

    /// Claims, applies and records a delivery in one unit of work (run
    /// again on a transient conflict), which then tells caches, delivers
    /// the billing events and re-fetches conflicts. A failure is recorded
    /// on the delivery, outside the failed transaction.
    async fn process(
        &self,
        envelope: &WebhookEnvelope,
        body: &str,
        replay: bool,
    ) -> Result<Received, WebhookError> {
        let syncer = &self.inner.syncer;
        let now = syncer.clock().now();
        // A date far ahead of ours is not believed: the delivery is applied
        // as undated (it fills an absent row, overwrites nothing) and its
        // resource re-read from Octany, whose answer settles it. Believing it
        // would freeze the row: nothing dated earlier could replace it.
        let undated;
        let envelope = match envelope.created_at {
            Some(at) if at > now + FUTURE_SKEW => {
                tracing::warn!(delivery = %envelope.id, created_at = %at, "a webhook dated in the future: its date is ignored and Octany is asked instead");
                undated = WebhookEnvelope {
                    created_at: None,
                    ..envelope.clone()
                };
                &undated
            }
            _ => envelope,
        };
        let batch = Batch::webhook(envelope);
        let (billable, resource) = match &batch {
            Ok(batch) => batch.about(),
            Err(_) => (None, None),
        };
        let delivery = Arc::new(Delivery::new(
            envelope, body, replay, now, billable, resource,
        ));
        let applied = match batch {
            Ok(batch) => {
                let recorded = Some(delivery.clone());
                syncer.ingest_with(batch, Origin::Webhook, recorded).await
            }
            Err(error) => Err(error),
        };
        match applied {
            Ok(Some(_)) => {}
            Ok(None) => {
                tracing::debug!(delivery = %envelope.id, "duplicate webhook delivery acknowledged");
                return Ok(Received::Duplicate);
            }
            Err(error) => {
                delivery
                    .record_failure(syncer.db(), &error.to_string())
                    .await;
                if matches!(error, SyncError::Payload { .. }) {
                    tracing::error!(delivery = %envelope.id, event = %envelope.name, %error, "a webhook's data cannot be read; kept for replay, answering 400 (a retry could not read it either)");
                } else {
                    tracing::error!(delivery = %envelope.id, event = %envelope.name, %error, "applying a webhook failed; answering 500 so Octany retries");
                }
                return Err(error.into());
            }
        }
        Ok(match envelope.event_name() {
            EventName::Unknown(name) => {
                tracing::info!(delivery = %envelope.id, event = %name, "stored a webhook event this version does not know");
                Received::Stored
            }
            _ => Received::Applied,
        })
    }

    /// Re-applies one stored delivery, as if it had just arrived. Its signature was checked when it was stored.
    pub async fn replay(&self, delivery_id: &str) -> Result<Received, WebhookError> {
        let db = self.inner.syncer.db();
        let row = webhook_delivery::Entity::find_by_id(delivery_id)
            .one(db)
            .await
            .map_err(SyncError::from)?
            .ok_or_else(|| WebhookError::UnknownDelivery(delivery_id.to_owned()))?;
        let envelope: WebhookEnvelope =
            serde_json::from_str(&row.body).map_err(|e| WebhookError::Malformed(e.to_string()))?;
        self.process(&envelope, &row.body, true).await
    }

    /// Replays every delivery whose applying failed.
    pub async fn replay_failed(&self) -> Result<ReplayReport, WebhookError> {
        self.replay_where(webhook_delivery::Column::ProcessedAt.is_null())
            .await
    }

    /// Replays every delivery first received at or after `since` (and
    /// before `until`, if given), applied or not: after a bug fix, say. A
    /// newer state is never overwritten by an older one, so replaying is safe.
    pub async fn replay_received_since(
        &self,
        since: chrono::DateTime<chrono::Utc>,
        until: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<ReplayReport, WebhookError> {
        let mut range =
            sea_orm::Condition::all().add(webhook_delivery::Column::ReceivedAt.gte(since));
        if let Some(until) = until {
            range = range.add(webhook_delivery::Column::ReceivedAt.lt(until));
        }
        self.replay_where(range).await
    }

    /// Deletes the deliveries applied more than `older_than` ago (those
    /// that failed are kept for replay); returns how many. Their dedupe
    /// goes with them: keep them longer than Octany retries (days).
    pub async fn prune(&self, older_than: std::time::Duration) -> Result<u64, SyncError> {
        let syncer = &self.inner.syncer;
        let Some(before) = crate::domain::clock::ago(syncer.clock().now(), older_than) else {
            return Ok(0);
        };
        let deleted = webhook_delivery::Entity::delete_many()
            .filter(webhook_delivery::Column::ProcessedAt.lt(before))
            .exec(syncer.db())
            .await?;
        Ok(deleted.rows_affected)
    }

    async fn replay_where(
        &self,
        condition: impl sea_orm::sea_query::IntoCondition,
    ) -> Result<ReplayReport, WebhookError> {
        let failed: Vec<String> = webhook_delivery::Entity::find()
            .filter(condition)
            .order_by_asc(webhook_delivery::Column::ReceivedAt)
            .all(self.inner.syncer.db())
            .await
            .map_err(SyncError::from)?
            .into_iter()
            .map(|row| row.delivery_id)
            .collect();
        let mut report = ReplayReport::default();
        for id in failed {
            report.replayed += 1;
            if let Err(error) = self.replay(&id).await {
                report.failed += 1;
                tracing::warn!(delivery = %id, %error, "replay failed again");
            }
        }
        Ok(report)
    }
}
