//! `octany_comps`: a local grant of a plan or of features to a billable,
//! without Octany, audited (who, when, why) and revocable.

use sea_orm::entity::prelude::*;

/// A comp.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "octany_comps")]
pub(crate) struct Model {
    /// Its id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// Who it is for (`team:7`).
    pub billable_ref: String,
    /// The plan it grants, if it grants one.
    pub product_id: Option<i64>,
    /// The features it grants beside (comma-separated names).
    pub features: Option<String>,
    /// Why.
    pub reason: String,
    /// Who granted it.
    pub granted_by: String,
    /// When (the app's clock).
    pub created_at: DateTimeUtc,
    /// When it ends by itself; `None`: when revoked.
    pub ends_at: Option<DateTimeUtc>,
    /// When it was revoked.
    pub revoked_at: Option<DateTimeUtc>,
    /// Who revoked it.
    pub revoked_by: Option<String>,
}

/// The feature names a `features` column holds (comma-separated).
pub(crate) fn feature_names(column: Option<String>) -> Vec<String> {
    column
        .map(|f| {
            f.split(',')
                .filter(|n| !n.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
