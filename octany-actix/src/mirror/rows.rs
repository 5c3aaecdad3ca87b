//! The mirror's rows as a host reads them: what the billing handle and the
//! guard hand out. Plain structs with public fields; the tables behind them
//! (their sea-orm entities and columns) are the library's own and not part
//! of its API, so a migration can change them without breaking a host.
//! The product cache is read as [`model::Product`](crate::model::Product)
//! ([`Octany::products`](crate::Octany::products)).

pub use crate::mirror::entity::checkout::{CheckoutStatus, Model as CheckoutIntent};
pub use crate::mirror::entity::order::Model as OrderRow;
pub use crate::mirror::entity::subscription::Model as SubscriptionRow;
