//! The app's own rows, written in the unit of work beside Octany's state:
//! checkout intents (`octany_checkouts`), charges (`octany_charges`) and
//! metered usage (`octany_usage`, `octany_usage_periods`: `usage`) and
//! comps (`octany_comps`).
//!
//! Each write answers what it did ([`Done`]) and which billables it
//! changed, and the unit announces those as it announces a subscription's
//! change: the guard's cache drops them at the commit, and on PostgreSQL
//! the checkouts table's trigger tells the other instances. Nothing else
//! writes these tables.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect,
};

use super::insert_if_absent;
use super::usage::{self, Price};
use crate::domain::model::{BillableRef, ProductId};
use crate::mirror::entity::{charge, checkout, comp, usage as usage_row, usage_period};

/// A write of the app's own rows (see the module's documentation).
#[derive(Debug, Clone)]
pub(crate) enum Local {
    /// Opens a checkout intent of `billable` for `product` under `id`, or
    /// reuses the one it opened for it since `reuse_since` (reopening a
    /// checkout adds no row).
    OpenIntent {
        billable: BillableRef,
        product: ProductId,
        id: String,
        reuse_since: DateTime<Utc>,
    },
    /// The buyer came back through the success URL of `billable`'s intent
    /// `id`: opened (or lapsed), it now awaits Octany's word.
    Returned { billable: BillableRef, id: String },
    /// Marks abandoned the intents opened and not returned from since
    /// before `opened_before`, and those awaiting since before
    /// `awaiting_before`.
    Lapse {
        opened_before: DateTime<Utc>,
        awaiting_before: DateTime<Utc>,
    },
    /// Records a charge, about to be sent, under its key; not written when
    /// the key is taken.
    RecordCharge(Box<charge::Model>),
    /// The charge of `billable` under `key` made order `order`.
    ChargeMade {
        billable: BillableRef,
        key: String,
        order: String,
    },
    /// Octany refused the charge under `key` and made nothing: the key is
    /// free again.
    ReleaseCharge { billable: BillableRef, key: String },
    /// Takes over the charge under `key`, last sent at `attempted_at`,
    /// whose sender died; not written when another request took it first.
    TakeOverCharge {
        billable: BillableRef,
        key: String,
        attempted_at: DateTime<Utc>,
    },
    /// Records one use of a meter under the caller's key; not written when
    /// the key was recorded before.
    RecordUsage(Box<usage_row::Model>),
    /// Closes a period of a billable's meter (written once; see
    /// `usage::close`).
    ClosePeriod(Box<usage_period::Model>, Price),
    /// Grants a comp.
    GrantComp(Box<comp::Model>),
    /// Revokes `billable`'s comp `id` (`by` whom, at the unit's now); not
    /// written when it was revoked before.
    RevokeComp {
        billable: BillableRef,
        id: String,
        by: String,
    },
}

/// What a [`Local`] write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Done {
    /// The id of the intent opened or reused.
    Opened(String),
    /// The intent as it now stands (`None`: the billable has no intent of
    /// that id).
    Returned(Option<checkout::Model>),
    /// How many intents lapsed.
    Lapsed(u64),
    /// Whether the charge's row was written.
    Charge(bool),
    /// Whether the use was recorded (false: its key was recorded before).
    Usage(bool),
    /// The period as its first closer wrote it.
    Period(Box<usage_period::Model>),
    /// Whether the comp was granted or revoked (false: revoked before).
    Comp(bool),
}

/// Applies `write` at `now`: what it did, and the billables it changed.
pub(crate) async fn write<C: ConnectionTrait>(
    conn: &C,
    write: &Local,
    now: DateTime<Utc>,
) -> Result<(Done, Vec<BillableRef>), DbErr> {
    let changed = |done: Done, billable: &BillableRef, yes: bool| {
        (done, if yes { vec![billable.clone()] } else { vec![] })
    };
    Ok(match write {
        Local::OpenIntent {
            billable,
            product,
            id,
            reuse_since,
        } => changed(
            Done::Opened(open_intent(conn, billable, *product, id, *reuse_since, now).await?),
            billable,
            true,
        ),
        Local::Returned { billable, id } => {
            let (intent, moved) = returned(conn, billable, id, now).await?;
            changed(Done::Returned(intent), billable, moved)
        }
        Local::Lapse {
            opened_before,
            awaiting_before,
        } => {
            let billables = lapse(conn, *opened_before, *awaiting_before, now).await?;
            (Done::Lapsed(billables.len() as u64), dedup(billables))
        }
        Local::RecordCharge(row) => {
            let billable = BillableRef::parse(&row.billable_ref);
            let active = row.as_ref().clone().into_active_model().reset_all();
            let written = insert_if_absent(conn, active).await?;
            let changed = billable.filter(|_| written).into_iter().collect();
            (Done::Charge(written), changed)
        }
        Local::ChargeMade {
            billable,
            key,
            order,
        } => {
            let made = of_charge(billable, key)
                .col_expr(
                    charge::Column::State,
                    Expr::value(charge::ChargeState::Made),
                )
                .col_expr(charge::Column::OrderId, Expr::value(Some(order.clone())))
                .col_expr(charge::Column::UpdatedAt, Expr::value(now))
                .exec(conn)
                .await?;
            changed(Done::Charge(made.rows_affected == 1), billable, true)
        }
        Local::ReleaseCharge { billable, key } => {
            let released = charge::Entity::delete_many()
                .filter(charge::Column::BillableRef.eq(billable.as_str()))
                .filter(charge::Column::Key.eq(key.as_str()))
                .exec(conn)
                .await?;
            changed(Done::Charge(released.rows_affected == 1), billable, true)
        }
        Local::TakeOverCharge {
            billable,
            key,
            attempted_at,
        } => {
            let taken = of_charge(billable, key)
                .col_expr(charge::Column::AttemptedAt, Expr::value(now))
                .col_expr(charge::Column::UpdatedAt, Expr::value(now))
                .filter(charge::Column::State.eq(charge::ChargeState::Sending))
                .filter(charge::Column::AttemptedAt.eq(*attempted_at))
                .exec(conn)
                .await?;
            let taken = taken.rows_affected == 1;
            changed(Done::Charge(taken), billable, taken)
        }
        // Usage changes no access: nothing to announce.
        Local::RecordUsage(row) => (Done::Usage(usage::record(conn, row).await?), vec![]),
        Local::ClosePeriod(row, price) => (
            Done::Period(Box::new(usage::close(conn, row, *price).await?)),
            vec![],
        ),
        Local::GrantComp(row) => {
            comp::Entity::insert(row.as_ref().clone().into_active_model().reset_all())
                .exec_without_returning(conn)
                .await?;
            let billable = BillableRef::parse(&row.billable_ref);
            (Done::Comp(true), billable.into_iter().collect())
        }
        Local::RevokeComp { billable, id, by } => {
            let revoked = comp::Entity::update_many()
                .col_expr(comp::Column::RevokedAt, Expr::value(Some(now)))
                .col_expr(comp::Column::RevokedBy, Expr::value(Some(by.clone())))
                .filter(comp::Column::Id.eq(id.as_str()))
                .filter(comp::Column::BillableRef.eq(billable.as_str()))
                .filter(comp::Column::RevokedAt.is_null())
                .exec(conn)
                .await?;
            let revoked = revoked.rows_affected == 1;
            changed(Done::Comp(revoked), billable, revoked)
        }
    })
}

fn of_charge(billable: &BillableRef, key: &str) -> sea_orm::UpdateMany<charge::Entity> {
    charge::Entity::update_many()
        .filter(charge::Column::BillableRef.eq(billable.as_str()))
        .filter(charge::Column::Key.eq(key))
}

fn dedup(mut billables: Vec<BillableRef>) -> Vec<BillableRef> {
    billables.sort();
    billables.dedup();
    billables
}

async fn open_intent<C: ConnectionTrait>(
    conn: &C,
    billable: &BillableRef,
    product: ProductId,
    id: &str,
    reuse_since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<String, DbErr> {
    let recent = checkout::Entity::find()
        .filter(checkout::Column::BillableRef.eq(billable.as_str()))
        .filter(checkout::Column::ProductId.eq(product))
        .filter(checkout::Column::Status.eq(checkout::CheckoutStatus::Opened))
        .filter(checkout::Column::UpdatedAt.gt(reuse_since))
        .order_by_desc(checkout::Column::UpdatedAt)
        .one(conn)
        .await?;
    if let Some(recent) = recent {
        checkout::Entity::update_many()
            .col_expr(checkout::Column::UpdatedAt, Expr::value(now))
            .filter(checkout::Column::Id.eq(recent.id.as_str()))
            .exec(conn)
            .await?;
        return Ok(recent.id);
    }
    checkout::Entity::insert(checkout::ActiveModel {
        id: sea_orm::Set(id.to_owned()),
        billable_ref: sea_orm::Set(billable.clone()),
        product_id: sea_orm::Set(product),
        status: sea_orm::Set(checkout::CheckoutStatus::Opened),
        subscription_id: sea_orm::Set(None),
        order_id: sea_orm::Set(None),
        created_at: sea_orm::Set(now),
        updated_at: sea_orm::Set(now),
        completed_at: sea_orm::Set(None),
    })
    .exec_without_returning(conn)
    .await?;
    Ok(id.to_owned())
}

/// The intent `id` of `billable` after its buyer came back, and whether
/// this moved it to awaiting.
async fn returned<C: ConnectionTrait>(
    conn: &C,
    billable: &BillableRef,
    id: &str,
    now: DateTime<Utc>,
) -> Result<(Option<checkout::Model>, bool), DbErr> {
    let find = || async {
        Ok::<_, DbErr>(
            checkout::Entity::find_by_id(id)
                .one(conn)
                .await?
                .filter(|c| c.billable_ref == *billable),
        )
    };
    let Some(intent) = find().await? else {
        return Ok((None, false));
    };
    let returnable = [
        checkout::CheckoutStatus::Opened,
        checkout::CheckoutStatus::Abandoned,
    ];
    if !returnable.contains(&intent.status) {
        return Ok((Some(intent), false));
    }
    let moved = checkout::Entity::update_many()
        .col_expr(
            checkout::Column::Status,
            Expr::value(checkout::CheckoutStatus::Awaiting),
        )
        .col_expr(checkout::Column::UpdatedAt, Expr::value(now))
        .filter(checkout::Column::Id.eq(id))
        .filter(checkout::Column::Status.is_in(returnable))
        .exec(conn)
        .await?;
    Ok((find().await?, moved.rows_affected > 0))
}

/// Marks the lapsed intents abandoned (see [`Local::Lapse`]); the
/// billable of each.
async fn lapse<C: ConnectionTrait>(
    conn: &C,
    opened_before: DateTime<Utc>,
    awaiting_before: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Vec<BillableRef>, DbErr> {
    let lapsed = Condition::any()
        .add(
            Condition::all()
                .add(checkout::Column::Status.eq(checkout::CheckoutStatus::Opened))
                .add(checkout::Column::UpdatedAt.lt(opened_before)),
        )
        .add(
            Condition::all()
                .add(checkout::Column::Status.eq(checkout::CheckoutStatus::Awaiting))
                .add(checkout::Column::UpdatedAt.lt(awaiting_before)),
        );
    let found: Vec<(String, BillableRef)> = checkout::Entity::find()
        .select_only()
        .column(checkout::Column::Id)
        .column(checkout::Column::BillableRef)
        .filter(lapsed.clone())
        .into_tuple()
        .all(conn)
        .await?;
    if found.is_empty() {
        return Ok(Vec::new());
    }
    let (ids, billables): (Vec<String>, Vec<BillableRef>) = found.into_iter().unzip();
    checkout::Entity::update_many()
        .col_expr(
            checkout::Column::Status,
            Expr::value(checkout::CheckoutStatus::Abandoned),
        )
        .col_expr(checkout::Column::UpdatedAt, Expr::value(now))
        .filter(checkout::Column::Id.is_in(ids))
        .filter(lapsed)
        .exec(conn)
        .await?;
    Ok(billables)
}

/// Completes the checkout intents of `billable` for `product` that this
/// subscription or order answers: opened, awaiting, or lapsed (a buyer
/// who paid after the lapse window).
pub(crate) async fn complete_checkouts<C: ConnectionTrait>(
    conn: &C,
    billable: &str,
    product: i64,
    subscription: Option<&str>,
    order: Option<&str>,
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let done = checkout::Entity::update_many()
        .col_expr(
            checkout::Column::Status,
            Expr::value(checkout::CheckoutStatus::Completed),
        )
        .col_expr(
            checkout::Column::SubscriptionId,
            Expr::value(subscription.map(str::to_owned)),
        )
        .col_expr(
            checkout::Column::OrderId,
            Expr::value(order.map(str::to_owned)),
        )
        .col_expr(checkout::Column::CompletedAt, Expr::value(Some(now)))
        .col_expr(checkout::Column::UpdatedAt, Expr::value(now))
        .filter(checkout::Column::BillableRef.eq(billable))
        .filter(checkout::Column::ProductId.eq(product))
        .filter(checkout::Column::Status.is_in([
            checkout::CheckoutStatus::Opened,
            checkout::CheckoutStatus::Awaiting,
            checkout::CheckoutStatus::Abandoned,
        ]))
        .exec(conn)
        .await?;
    Ok(done.rows_affected)
}
