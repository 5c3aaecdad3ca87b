//! Leases in the database: of several instances, one at a time holds a
//! job. Taking one is a single conditional `UPDATE` (the row is created
//! once, if absent); a lease lapses by itself if its holder dies.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
};

use super::apply::{insert_if_absent, mark};
use crate::mirror::entity::lock;

/// Takes (or renews) the lease `name` for `holder` until `now + ttl`, unless
/// another holder's lease is still running. True when taken.
pub(crate) async fn acquire<C: ConnectionTrait>(
    conn: &C,
    name: &str,
    holder: &str,
    now: DateTime<Utc>,
    ttl: Duration,
) -> Result<bool, DbErr> {
    insert_if_absent(
        conn,
        lock::ActiveModel {
            name: Set(name.to_owned()),
            holder: Set(String::new()),
            expires_at: Set(0),
        },
    )
    .await?;
    let until = mark(now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX));
    let taken = lock::Entity::update_many()
        .col_expr(lock::Column::Holder, Expr::value(holder.to_owned()))
        .col_expr(lock::Column::ExpiresAt, Expr::value(until))
        .filter(lock::Column::Name.eq(name))
        .filter(
            Condition::any()
                .add(lock::Column::ExpiresAt.lte(mark(now)))
                .add(lock::Column::Holder.eq(holder)),
        )
        .exec(conn)
        .await?;
    Ok(taken.rows_affected > 0)
}

/// Extends `holder`'s lease to `now + ttl`, only while it still holds it
/// (an expired lease that no one else took counts as held). False when
/// another holder has it.
pub(crate) async fn renew<C: ConnectionTrait>(
    conn: &C,
    name: &str,
    holder: &str,
    now: DateTime<Utc>,
    ttl: Duration,
) -> Result<bool, DbErr> {
    let until = mark(now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX));
    let kept = lock::Entity::update_many()
        .col_expr(lock::Column::ExpiresAt, Expr::value(until))
        .filter(lock::Column::Name.eq(name))
        .filter(lock::Column::Holder.eq(holder))
        .exec(conn)
        .await?;
    Ok(kept.rows_affected > 0)
}

/// Gives the lease back (only if `holder` holds it).
pub(crate) async fn release<C: ConnectionTrait>(
    conn: &C,
    name: &str,
    holder: &str,
) -> Result<(), DbErr> {
    lock::Entity::update_many()
        .col_expr(lock::Column::ExpiresAt, Expr::value(0i64))
        .filter(lock::Column::Name.eq(name))
        .filter(lock::Column::Holder.eq(holder))
        .exec(conn)
        .await?;
    Ok(())
}
