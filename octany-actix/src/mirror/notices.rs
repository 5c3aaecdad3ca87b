//! The notices' bookkeeping (`octany_notices`): each e-mail about a
//! billing event is claimed before it is sent and marked once the mail
//! server accepted it. What that promises:
//!
//! - a listener retried, or two instances delivering the same event, send
//!   it once: the second finds it sent, or being sent;
//! - a send the server refused (or that never reached it) is released and
//!   tried again by the outbox;
//! - a sender that died while sending (killed between the server's
//!   acceptance and the mark, or before it even connected) leaves a claim
//!   no one finishes: after [`CLAIM`] it is marked `uncertain` and **not**
//!   sent again, so a notice is never sent twice, at the price that one in
//!   that window may not be sent at all. It is logged for an operator.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, DbErr, EntityTrait, IntoActiveModel, QueryFilter};

use crate::mirror::entity::notice;
use crate::mirror::sync::Syncer;
use crate::mirror::sync::apply::insert_if_absent;

/// How long a claim is left to the sender that holds it.
pub(crate) const CLAIM: chrono::Duration = chrono::Duration::minutes(5);

/// What a claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Claim {
    /// This caller sends it now.
    Send,
    /// It was sent before: nothing to do.
    Sent,
    /// Another sender holds it now: try again later.
    Busy,
    /// Its sender died while sending: not sent again.
    Uncertain,
}

/// Claims the notice `kind` of event `event_id` for sending.
pub(crate) async fn claim(
    syncer: &Syncer,
    row: notice::Model,
    now: DateTime<Utc>,
) -> Result<Claim, DbErr> {
    let db = syncer.db();
    if insert_if_absent(db, row.clone().into_active_model().reset_all()).await? {
        return Ok(Claim::Send);
    }
    let key = (row.event_id.clone(), row.kind.clone());
    let Some(found) = notice::Entity::find_by_id(key).one(db).await? else {
        return Ok(Claim::Busy);
    };
    Ok(match found.state.as_str() {
        "sent" => Claim::Sent,
        "uncertain" => Claim::Uncertain,
        "failed" => {
            // Refused before: this caller tries again, unless another just did.
            let retaken = notice::Entity::update_many()
                .col_expr(notice::Column::State, Expr::value("sending"))
                .col_expr(notice::Column::ClaimedAt, Expr::value(now))
                .col_expr(notice::Column::Attempts, Expr::value(found.attempts + 1))
                .filter(notice::Column::EventId.eq(found.event_id.as_str()))
                .filter(notice::Column::Kind.eq(found.kind.as_str()))
                .filter(notice::Column::State.eq("failed"))
                .exec(db)
                .await?;
            if retaken.rows_affected == 1 {
                Claim::Send
            } else {
                Claim::Busy
            }
        }
        _ if found.claimed_at + CLAIM > now => Claim::Busy,
        _ => {
            // The sender died while sending: it may have been accepted.
            let marked = notice::Entity::update_many()
                .col_expr(notice::Column::State, Expr::value("uncertain"))
                .filter(notice::Column::EventId.eq(found.event_id.as_str()))
                .filter(notice::Column::Kind.eq(found.kind.as_str()))
                .filter(notice::Column::State.eq("sending"))
                .filter(notice::Column::ClaimedAt.eq(found.claimed_at))
                .exec(db)
                .await?;
            if marked.rows_affected == 1 {
                tracing::error!(
                    event = %found.event_id,
                    kind = %found.kind,
                    recipient = %found.recipient,
                    "a notice's sender died while sending it; it may or may not have been delivered, and is not sent again (resend it by hand if the recipient did not get it)"
                );
            }
            Claim::Uncertain
        }
    })
}

/// Marks the notice sent (the mail server accepted it).
pub(crate) async fn sent(
    syncer: &Syncer,
    event_id: &str,
    kind: &str,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    notice::Entity::update_many()
        .col_expr(notice::Column::State, Expr::value("sent"))
        .col_expr(notice::Column::SentAt, Expr::value(Some(now)))
        .col_expr(
            notice::Column::LastError,
            Expr::value(Option::<String>::None),
        )
        .filter(notice::Column::EventId.eq(event_id))
        .filter(notice::Column::Kind.eq(kind))
        .exec(syncer.db())
        .await?;
    Ok(())
}

/// Ends the send of a notice in `state`: `failed` after a refusal
/// (nothing was accepted: the next delivery of its event tries again), or
/// `uncertain` when the connection was lost mid-send (not sent again).
pub(crate) async fn unsent(
    syncer: &Syncer,
    event_id: &str,
    kind: &str,
    state: &'static str,
    error: &str,
) -> Result<(), DbErr> {
    notice::Entity::update_many()
        .col_expr(notice::Column::State, Expr::value(state))
        .col_expr(
            notice::Column::LastError,
            Expr::value(Some(error.to_owned())),
        )
        .filter(notice::Column::EventId.eq(event_id))
        .filter(notice::Column::Kind.eq(kind))
        .filter(notice::Column::State.eq("sending"))
        .exec(syncer.db())
        .await?;
    Ok(())
}

/// The notices of `event_id`, for tests and the operator.
pub(crate) async fn of_event(syncer: &Syncer, event_id: &str) -> Result<Vec<notice::Model>, DbErr> {
    notice::Entity::find()
        .filter(notice::Column::EventId.eq(event_id))
        .all(syncer.db())
        .await
}
