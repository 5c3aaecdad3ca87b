//! The webhook delivery a unit of work records beside what it applies:
//! its claim (the dedupe), in the unit's transaction, so that it commits
//! only with what the delivery changed; its outcome when it changed
//! nothing; and, outside a failed transaction, the failure, kept for
//! Octany's retry and for replay. The receiver (`mirror::webhook`) makes
//! it; the unit writes it (`Syncer::write`), the backends' fast write
//! inserting its claim with the subscription it replaces.

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, DatabaseTransaction, EntityTrait, ExprTrait,
    QueryFilter,
};

use crate::domain::model::{EventName, WebhookEnvelope};
use crate::mirror::entity::webhook_delivery;
use crate::mirror::sync::apply::insert_if_absent;

/// A delivery's outcome when it is applied, until the unit says it
/// changed nothing ([`Delivery::after`]): `stored` for an event this version
/// does not know, else `applied`.
fn applied(envelope: &WebhookEnvelope) -> &'static str {
    match envelope.event_name() {
        EventName::Unknown(_) => "stored",
        _ => "applied",
    }
}

/// A webhook delivery in its unit of work: claimed first (the dedupe),
/// in one statement that also records it processed (the body written
/// once), so the claim commits only with what it applied.
pub(crate) struct Delivery {
    /// The delivery's row as it is recorded when it is applied: processed
    /// now (the claim: a failure rolls it back, and [`Delivery::record_failure`]
    /// writes it again with the error).
    row: webhook_delivery::ActiveModel,
    /// The delivery's key.
    id: String,
    replay: bool,
    now: chrono::DateTime<chrono::Utc>,
    /// Its outcome when applied ([`applied`]).
    applied: &'static str,
}

impl Delivery {
    /// The delivery `envelope`, received with `body` at `now`, about
    /// `billable` and `resource` (`Batch::about`, for the operator's
    /// timeline).
    pub(crate) fn new(
        envelope: &WebhookEnvelope,
        body: &str,
        replay: bool,
        now: chrono::DateTime<chrono::Utc>,
        billable: Option<String>,
        resource: Option<String>,
    ) -> Self {
        let applied = applied(envelope);
        let row = webhook_delivery::ActiveModel {
            delivery_id: Set(envelope.id.to_string()),
            event: Set(envelope.name.clone()),
            body: Set(body.to_owned()),
            received_at: Set(now),
            processed_at: Set(Some(now)),
            attempts: Set(1),
            last_error: Set(None),
            billable_ref: Set(billable),
            resource: Set(resource),
            outcome: Set(Some(applied.to_owned())),
            duplicates: Set(0),
            last_duplicate_at: Set(None),
        };
        Self {
            row,
            id: envelope.id.to_string(),
            replay,
            now,
            applied,
        }
    }

    /// The delivery's row when applying it failed with `error`.
    fn failed(&self, error: &str) -> webhook_delivery::ActiveModel {
        webhook_delivery::ActiveModel {
            processed_at: Set(None),
            last_error: Set(Some(error.to_owned())),
            outcome: Set(None),
            ..self.row.clone()
        }
    }

    /// The row the unit inserts first when the delivery is new (recorded
    /// processed), for the backend's fast write to insert with the unit's
    /// one subscription (`backend::Fast`); when that claimed it,
    /// [`Delivery::before`] is not run. When a row with its key is stored,
    /// the fast write claims nothing, and `before` runs and decides. A
    /// replay always runs `before`.
    pub(super) fn claim(&self) -> Option<&webhook_delivery::ActiveModel> {
        (!self.replay).then_some(&self.row)
    }

    /// Records the delivery, or finds it: true when it is to be applied now
    /// (new, failed before, or replayed), false when it was applied already.
    pub(super) async fn before(&self, txn: &DatabaseTransaction) -> Result<bool, sea_orm::DbErr> {
        let id = &self.id;
        if insert_if_absent(txn, self.row.clone()).await? {
            return Ok(true);
        }
        // Applied before: counted, for the timeline (it came again and was
        // not applied), in the statement that finds it so.
        if !self.replay {
            let counted = webhook_delivery::Entity::update_many()
                .col_expr(
                    webhook_delivery::Column::Duplicates,
                    Expr::col(webhook_delivery::Column::Duplicates).add(1),
                )
                .col_expr(
                    webhook_delivery::Column::LastDuplicateAt,
                    Expr::value(Some(self.now)),
                )
                .filter(webhook_delivery::Column::DeliveryId.eq(id))
                .filter(webhook_delivery::Column::ProcessedAt.is_not_null())
                .exec(txn)
                .await?;
            if counted.rows_affected > 0 {
                return Ok(false);
            }
        }
        // Failed before, or replayed: counted, and processed if this commits.
        webhook_delivery::Entity::update_many()
            .col_expr(
                webhook_delivery::Column::Attempts,
                Expr::col(webhook_delivery::Column::Attempts).add(1),
            )
            .col_expr(
                webhook_delivery::Column::ProcessedAt,
                Expr::value(Some(self.now)),
            )
            .col_expr(
                webhook_delivery::Column::LastError,
                Expr::value(Option::<String>::None),
            )
            .col_expr(webhook_delivery::Column::Outcome, Expr::value(self.applied))
            .filter(webhook_delivery::Column::DeliveryId.eq(id))
            .exec(txn)
            .await?;
        Ok(true)
    }

    /// Records what applying did when it changed nothing (an older or
    /// equal state): the row was written `applied`, the common case, so
    /// only the others cost a statement.
    pub(super) async fn after(
        &self,
        txn: &DatabaseTransaction,
        verdict: &'static str,
    ) -> Result<(), sea_orm::DbErr> {
        if verdict == "applied" {
            return Ok(());
        }
        webhook_delivery::Entity::update_many()
            .col_expr(webhook_delivery::Column::Outcome, Expr::value(verdict))
            .filter(webhook_delivery::Column::DeliveryId.eq(&self.id))
            .exec(txn)
            .await?;
        Ok(())
    }

    /// Keeps the delivery, whose applying failed, with the error, for
    /// Octany's retry and for replay: outside the failed transaction, which
    /// rolled its claim back.
    pub(crate) async fn record_failure(&self, db: &DatabaseConnection, error: &str) {
        let id = &self.id;
        let result = async {
            if !insert_if_absent(db, self.failed(error)).await? {
                // The failed transaction's increment rolled back with it: count
                // this attempt here.
                webhook_delivery::Entity::update_many()
                    .col_expr(
                        webhook_delivery::Column::Attempts,
                        Expr::col(webhook_delivery::Column::Attempts).add(1),
                    )
                    .col_expr(
                        webhook_delivery::Column::LastError,
                        Expr::value(Some(error.to_owned())),
                    )
                    .col_expr(
                        webhook_delivery::Column::ProcessedAt,
                        Expr::value(Option::<chrono::DateTime<chrono::Utc>>::None),
                    )
                    .col_expr(
                        webhook_delivery::Column::Outcome,
                        Expr::value(Option::<String>::None),
                    )
                    .filter(webhook_delivery::Column::DeliveryId.eq(id))
                    // Applied meanwhile by another request: it stays applied.
                    .filter(webhook_delivery::Column::ProcessedAt.is_null())
                    .exec(db)
                    .await?;
            }
            Ok::<_, sea_orm::DbErr>(())
        }
        .await;
        if let Err(e) = result {
            tracing::error!(delivery = %id, error = %e, "could not record a failed webhook delivery");
        }
    }
}
