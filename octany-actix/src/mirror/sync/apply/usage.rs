//! Metered usage's rows, written in the unit of work: a recorded use
//! (`octany_usage`, the same key twice counts once) and a closed period
//! (`octany_usage_periods`, written once: the first closer fixes what the
//! period is charged, and every later one reads it).

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel,
    QueryFilter, QuerySelect,
};

use super::insert_if_absent;
use crate::mirror::entity::{usage, usage_period};

/// Records one use; false when its key was recorded before.
pub(crate) async fn record<C: ConnectionTrait>(
    conn: &C,
    row: &usage::Model,
) -> Result<bool, DbErr> {
    insert_if_absent(conn, row.clone().into_active_model().reset_all()).await
}

/// How a closed period is priced: `unit_price` minor units per `per` units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Price {
    pub(crate) unit_price: i64,
    pub(crate) per: u64,
}

impl Price {
    /// What `quantity` costs, rounded to the nearest minor unit.
    pub(crate) fn of(&self, quantity: i64) -> i64 {
        let per = i128::from(self.per.max(1));
        let total = (i128::from(quantity) * i128::from(self.unit_price) + per / 2) / per;
        i64::try_from(total).unwrap_or(i64::MAX)
    }
}

/// Closes the period `key` of `row.billable_ref`'s meter: the first call
/// takes every open use recorded before `row.period_end` into it and fixes
/// its quantity and amount; a later call (another instance, a retry)
/// changes nothing and answers the period as the first one wrote it.
pub(crate) async fn close<C: ConnectionTrait>(
    conn: &C,
    row: &usage_period::Model,
    price: Price,
) -> Result<usage_period::Model, DbErr> {
    let find = || async {
        usage_period::Entity::find_by_id((row.billable_ref.clone(), row.key.clone()))
            .one(conn)
            .await?
            .ok_or_else(|| DbErr::RecordNotFound(format!("usage period {}", row.key)))
    };
    // The period's row first: a second closer waits on it here, then finds
    // it written and takes nothing.
    let placeholder = usage_period::Model {
        quantity: 0,
        amount: 0,
        ..row.clone()
    };
    if !insert_if_absent(conn, placeholder.into_active_model().reset_all()).await? {
        return find().await;
    }
    usage::Entity::update_many()
        .col_expr(usage::Column::PeriodKey, Expr::value(Some(row.key.clone())))
        .filter(usage::Column::BillableRef.eq(row.billable_ref.as_str()))
        .filter(usage::Column::Meter.eq(row.meter.as_str()))
        .filter(usage::Column::PeriodKey.is_null())
        .filter(usage::Column::RecordedAt.lt(row.period_end))
        .exec(conn)
        .await?;
    let quantity = total(conn, &row.billable_ref, &row.meter, Some(&row.key)).await?;
    usage_period::Entity::update_many()
        .col_expr(usage_period::Column::Quantity, Expr::value(quantity))
        .col_expr(
            usage_period::Column::Amount,
            Expr::value(price.of(quantity)),
        )
        .filter(usage_period::Column::BillableRef.eq(row.billable_ref.as_str()))
        .filter(usage_period::Column::Key.eq(row.key.as_str()))
        .exec(conn)
        .await?;
    find().await
}

/// The total of `billable`'s uses of `meter` in the period `period`
/// (`None`: the open uses, not yet in a period).
pub(crate) async fn total<C: ConnectionTrait>(
    conn: &C,
    billable: &str,
    meter: &str,
    period: Option<&str>,
) -> Result<i64, DbErr> {
    let in_period = match period {
        Some(key) => usage::Column::PeriodKey.eq(key),
        None => usage::Column::PeriodKey.is_null(),
    };
    let total: Option<Option<i64>> = usage::Entity::find()
        .select_only()
        .column_as(total_of_quantity(conn), "total")
        .filter(usage::Column::BillableRef.eq(billable))
        .filter(usage::Column::Meter.eq(meter))
        .filter(in_period)
        .into_tuple()
        .one(conn)
        .await?;
    Ok(total.flatten().unwrap_or(0))
}

/// `SUM(quantity)` as a 64-bit integer on every backend (PostgreSQL and
/// MySQL sum integers as decimals).
fn total_of_quantity<C: ConnectionTrait>(conn: &C) -> sea_orm::sea_query::SimpleExpr {
    match conn.get_database_backend() {
        sea_orm::DbBackend::MySql => Expr::cust("CAST(SUM(quantity) AS SIGNED)"),
        _ => Expr::cust("CAST(SUM(quantity) AS BIGINT)"),
    }
}
