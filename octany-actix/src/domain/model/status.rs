//! A subscription's status, as Octany names it.

use super::lenient::string_enum;

string_enum! {
    /// A subscription's status (API.md section 6). Stored as its text; an
    /// unknown one is kept as sent.
    #[derive(sea_orm::DeriveValueType)]
    #[sea_orm(value_type = "String")]
    pub enum SubscriptionStatus {
        /// Paid up and renewing.
        Active = "active",
        /// In a free trial.
        Trialing = "trialing",
        /// Created; the first payment has not settled.
        Pending = "pending",
        /// Bought; starts at a later date.
        FutureStart = "future_start",
        /// A renewal failed and Octany is retrying it.
        Delayed = "delayed",
        /// Retries gave up.
        Unpaid = "unpaid",
        /// Will not renew; may run until `ends_at`.
        Cancelled = "cancelled",
        /// Over.
        Expired = "expired",
    }
}

impl Default for SubscriptionStatus {
    fn default() -> Self {
        Self::Unknown(String::new())
    }
}
