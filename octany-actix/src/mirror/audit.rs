//! The audit log's writer: an operator's action is recorded before it runs
//! (`started`) and marked after (`done` or `failed`, with what came of
//! it), so an action cut off midway keeps its row. Bookkeeping, read and
//! written through `mirror::api`.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use crate::mirror::entity::audit;

/// An action about to run.
#[derive(Debug, Clone)]
pub(crate) struct Begun<'a> {
    pub(crate) at: DateTime<Utc>,
    pub(crate) actor: &'a str,
    pub(crate) action: &'a str,
    pub(crate) billable: Option<&'a str>,
    pub(crate) target: Option<&'a str>,
    pub(crate) reason: &'a str,
}

/// The audit log on a database.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AuditLog<'a>(pub(crate) &'a DatabaseConnection);

impl AuditLog<'_> {
    /// Records `begun` as started; returns its row's id.
    pub(crate) async fn begin(&self, begun: Begun<'_>) -> Result<i64, DbErr> {
        let inserted = audit::Entity::insert(audit::ActiveModel {
            at: Set(begun.at),
            actor: Set(begun.actor.to_owned()),
            action: Set(begun.action.to_owned()),
            billable_ref: Set(begun.billable.map(str::to_owned)),
            target: Set(begun.target.map(str::to_owned)),
            reason: Set(begun.reason.to_owned()),
            outcome: Set("started".into()),
            detail: Set(None),
            ..Default::default()
        })
        .exec(self.0)
        .await?;
        Ok(inserted.last_insert_id)
    }

    /// Marks the entry `id` `done` or `failed`, with `detail`.
    pub(crate) async fn finish(&self, id: i64, done: bool, detail: &str) -> Result<(), DbErr> {
        audit::Entity::update_many()
            .col_expr(
                audit::Column::Outcome,
                Expr::value(if done { "done" } else { "failed" }),
            )
            .col_expr(audit::Column::Detail, Expr::value(Some(detail.to_owned())))
            .filter(audit::Column::Id.eq(id))
            .exec(self.0)
            .await?;
        Ok(())
    }

    /// The newest `limit` entries about `billable`, newest first; `None`:
    /// those about no one billable (the whole mirror's operations).
    pub(crate) async fn of(
        &self,
        billable: Option<&str>,
        limit: u64,
    ) -> Result<Vec<audit::Model>, DbErr> {
        let about = match billable {
            Some(billable) => audit::Column::BillableRef.eq(billable),
            None => audit::Column::BillableRef.is_null(),
        };
        audit::Entity::find()
            .filter(about)
            .order_by_desc(audit::Column::At)
            .order_by_desc(audit::Column::Id)
            .limit(limit)
            .all(self.0)
            .await
    }
}
