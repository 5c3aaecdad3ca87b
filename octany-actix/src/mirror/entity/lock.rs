//! `octany_locks`: a lease per job, so that of several app instances
//! sharing a database one at a time does it.

use sea_orm::entity::prelude::*;

/// A lease.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "octany_locks")]
pub(crate) struct Model {
    /// The job, e.g. `reconcile`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    /// Who holds it (an instance's random id).
    pub holder: String,
    /// When it lapses, microseconds since the epoch (the syncer's clock).
    pub expires_at: i64,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
