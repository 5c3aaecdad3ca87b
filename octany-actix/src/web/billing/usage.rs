//! Metered usage: recorded without a request to Octany, billed once per
//! paid period when the subscription renews (`web::octany::metering`).

use serde::Serialize;

use super::Billing;
use crate::domain::features::Meter;
use crate::mirror::sync::apply::usage::Price;
use crate::web::billable::Billable;
use crate::web::error::BillingError;

/// The longest usage key kept.
const MAX_KEY_LEN: usize = 128;

/// A billable's use of a [`Meter`] in the period under way (not yet
/// billed), and what it would be charged if the period closed now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// The meter ([`Meter::NAME`]).
    pub meter: &'static str,
    /// The units used.
    pub quantity: u64,
    /// What they cost, in minor units, VAT excluded.
    pub amount: i64,
}

impl<U: Billable> Billing<'_, U> {
    /// Records `quantity` units of `M` used by the billable, under `key`
    /// (the request's or the job's id): the same key twice counts once,
    /// from any number of instances at once. No request to Octany: one
    /// insert. Answers whether it counted (false: the key was recorded
    /// before). Anyone using the billable's product may record its usage;
    /// it is not an action on its billing.
    ///
    /// ```no_run
    /// # async fn demo(octany: &octany_actix::Octany, team: &impl octany_actix::Billable, request_id: &str) -> Result<(), octany_actix::BillingError> {
    /// # struct ApiCalls;
    /// # impl octany_actix::Meter for ApiCalls { const NAME: &'static str = "api_calls"; const PRODUCT: octany_actix::model::ProductId = octany_actix::model::ProductId(1401); const UNIT_PRICE: i64 = 2; }
    /// octany.billing(team).record_usage::<ApiCalls>(1, request_id).await?;
    /// # Ok(()) }
    /// ```
    pub async fn record_usage<M: Meter>(
        &self,
        quantity: u64,
        key: &str,
    ) -> Result<bool, BillingError> {
        if key.is_empty() || key.chars().count() > MAX_KEY_LEN {
            return Err(BillingError::invalid(format!(
                "a usage key is 1 to {MAX_KEY_LEN} characters"
            )));
        }
        let quantity = i64::try_from(quantity)
            .map_err(|_| BillingError::invalid("a usage quantity is at most 2^63 - 1"))?;
        Ok(self
            .octany
            .mirror()
            .record_usage(&self.reference(), M::NAME, key, quantity)
            .await?)
    }

    /// The billable's use of `M` not yet billed, and its estimated charge.
    pub async fn usage<M: Meter>(&self) -> Result<Usage, BillingError> {
        let quantity = self
            .octany
            .mirror()
            .open_usage(self.reference().as_str(), M::NAME)
            .await?;
        let price = Price {
            unit_price: M::UNIT_PRICE,
            per: M::PER,
        };
        Ok(Usage {
            meter: M::NAME,
            quantity: u64::try_from(quantity).unwrap_or(0),
            amount: price.of(quantity),
        })
    }
}
