//! Login and sign-up throttling, per account and per client address, in
//! rows of the app's database (so the limit holds across instances).
//!
//! An attempt first writes its row for every key it counts against, then
//! counts; an attempt that finds more rows in the window than the limit
//! takes its rows back and is refused with how long to wait. Writing
//! before counting means concurrent guesses cannot slip past together. A
//! login that succeeds takes its rows back too: only failures count.

use std::time::Duration;

use octany_actix::clock::SharedClock;
use sea_orm::entity::prelude::*;
use sea_orm::{ActiveValue::Set, DatabaseConnection, QueryFilter, QueryOrder};

/// An attempt row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "auth_attempts")]
pub struct Model {
    /// Id.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// SHA-256 (hex) of what is counted (`login-account:ada@example.com`),
    /// so the table holds no addresses.
    pub key: String,
    /// When.
    pub at: DateTimeUtc,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// How many attempts a window allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Failed logins per account (e-mail) per window (default 10).
    pub login_per_account: u32,
    /// Failed logins per client address per window (default 50: many people
    /// can share an address).
    pub login_per_address: u32,
    /// Sign-ups per client address per window (default 10).
    pub signup_per_address: u32,
    /// The window (default a minute).
    pub window: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            login_per_account: 10,
            login_per_address: 50,
            signup_per_address: 10,
            window: Duration::from_secs(60),
        }
    }
}

/// What an attempt counts against, and its limit.
#[derive(Debug, Clone)]
pub struct Counted {
    key: String,
    limit: u32,
}

impl Counted {
    /// `what` (e.g. `"login-account"`) of `value`, limited to `limit`.
    pub fn new(what: &str, value: &str, limit: u32) -> Self {
        let key = crate::tokens::digest(&format!("{what}:{value}"));
        Self { key, limit }
    }
}

/// An attempt let through: its rows count until the window passes, unless
/// [`forgiven`](Attempt::forgive).
#[derive(Debug)]
#[must_use]
pub struct Attempt {
    rows: Vec<i64>,
}

/// Refused: too many attempts; try again after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooMany {
    /// Until the oldest counted attempt leaves the window.
    pub retry_after: Duration,
}

/// Records an attempt against every key of `counted`, or refuses it when
/// any of them is over its limit within `window`.
pub async fn attempt(
    db: &DatabaseConnection,
    clock: &SharedClock,
    window: Duration,
    counted: &[Counted],
) -> Result<Result<Attempt, TooMany>, DbErr> {
    let now = clock.now();
    let since = now - chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
    let mut rows = Vec::with_capacity(counted.len());
    for c in counted {
        let row = Entity::insert(ActiveModel {
            key: Set(c.key.clone()),
            at: Set(now),
            ..Default::default()
        })
        .exec(db)
        .await?;
        rows.push(row.last_insert_id);
    }
    let mut wait = None::<Duration>;
    for c in counted {
        let in_window = Entity::find()
            .filter(Column::Key.eq(&c.key))
            .filter(Column::At.gt(since))
            .count(db)
            .await?;
        if in_window > u64::from(c.limit) {
            let oldest = Entity::find()
                .filter(Column::Key.eq(&c.key))
                .filter(Column::At.gt(since))
                .order_by_asc(Column::At)
                .one(db)
                .await?
                .map_or(now, |r| r.at);
            let until = (oldest - since).to_std().unwrap_or_default();
            let until = until.max(Duration::from_secs(1));
            wait = Some(wait.map_or(until, |w| w.max(until)));
        }
    }
    let attempt = Attempt { rows };
    match wait {
        Some(retry_after) => {
            attempt.forgive(db).await?;
            Ok(Err(TooMany { retry_after }))
        }
        None => Ok(Ok(attempt)),
    }
}

impl Attempt {
    /// Takes the attempt back (a login that succeeded counts for nothing).
    pub async fn forgive(self, db: &DatabaseConnection) -> Result<(), DbErr> {
        if !self.rows.is_empty() {
            Entity::delete_many()
                .filter(Column::Id.is_in(self.rows))
                .exec(db)
                .await?;
        }
        Ok(())
    }
}

/// Deletes attempts older than `window`; returns how many.
pub async fn prune(
    db: &DatabaseConnection,
    clock: &SharedClock,
    window: Duration,
) -> Result<u64, DbErr> {
    let since = clock.now() - chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
    Ok(Entity::delete_many()
        .filter(Column::At.lte(since))
        .exec(db)
        .await?
        .rows_affected)
}
