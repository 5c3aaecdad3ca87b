//! What a notice is about, as [`Mail::facts`](super::Mail::facts): the names a host's own
//! templates read.

use chrono::{DateTime, Utc};

use super::plan_name;
use crate::domain::model::{Order, Subscription};
use crate::web::octany::Octany;

impl Octany {
    /// What a notice about `subscription` can say (see [`Mail::facts`](super::Mail::facts)).
    pub(super) fn subscription_facts(&self, subscription: &Subscription) -> Vec<(String, String)> {
        let price = subscription.price + subscription.vat;
        let day = |t: DateTime<Utc>| t.format("%Y-%m-%d").to_string();
        [
            ("plan", Some(plan_name(subscription))),
            (
                "price",
                Some(crate::domain::receipt::amount(
                    price,
                    &subscription.currency,
                )),
            ),
            ("renews_at", subscription.renews_at.map(day)),
            ("ends_at", subscription.ends_at.map(day)),
            ("update_card", subscription.update_card_url.clone()),
            ("invoices", subscription.invoices_url.clone()),
            ("billing", Some(self.settings().route_url("").to_string())),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((name.to_owned(), value?)))
        .collect()
    }

    /// What a notice about `order` can say (see [`Mail::facts`](super::Mail::facts)).
    pub(super) fn order_facts(&self, order: &Order) -> Vec<(String, String)> {
        let total = order.total_with_vat;
        let receipt = self.settings().seller.as_ref().map(|_| {
            self.settings()
                .route_url(&format!("receipts/{}", order.id))
                .to_string()
        });
        [
            ("order", Some(order.id.to_string())),
            (
                "total",
                Some(crate::domain::receipt::amount(total, &order.currency)),
            ),
            ("receipt", receipt),
            ("billing", Some(self.settings().route_url("").to_string())),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((name.to_owned(), value?)))
        .collect()
    }
}
