//! `octany_products`: the catalog cache.

pub(crate) use self::table::ActiveModel;
pub use self::table::{Column, Entity, Model};

/// The sea-orm plumbing of the table (its active model, iterators and
/// relation type): not part of the API.
#[doc(hidden)]
pub mod table {
    use sea_orm::entity::prelude::*;

    use crate::domain::model::ProductId;
    use serde::Serialize;

    /// A cached product.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize)]
    #[sea_orm(table_name = "octany_products")]
    pub struct Model {
        /// Octany's product id.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: ProductId,
        /// Name.
        pub name: String,
        /// Kind (`recurring_donation`, ...).
        pub kind: Option<String>,
        /// `month`, `year`, ...; `None` for one-off.
        pub interval: Option<String>,
        /// Price, VAT excluded.
        pub price: i64,
        /// Currency.
        pub currency: String,
        /// VAT rate, percent times 100.
        pub vat_rate: i64,
        /// The whole product as last seen.
        pub data: Json,
        /// Octany's time of the stored state, microseconds since the epoch.
        pub sync_mark: i64,
        /// Last changed here (local time).
        pub updated_at: DateTimeUtc,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

impl From<Model> for crate::domain::model::Product {
    fn from(row: Model) -> Self {
        Self {
            id: row.id,
            name: row.name,
            kind: row.kind,
            interval: row.interval,
            price: row.price,
            currency: row.currency,
            vat_rate: row.vat_rate,
        }
    }
}
