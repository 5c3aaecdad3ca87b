//! `GET {billing}`: the billing page a host can use as it is (or restyle
//! with [`OctanyBuilder::stylesheet`](crate::OctanyBuilder::stylesheet)):
//! each current plan with its status and renewal or end date said plainly
//! (a cancelled plan: until when it is kept), the change and cancel
//! actions, the update-card and invoices links Octany gives, and the order
//! history with VAT and each paid order's receipt. Only who may manage the
//! billable's billing sees it; everyone sees only their own.

use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, HttpResponse};
use askama::Template;

use super::answers::{money, refuse_unless_allowed};
use crate::domain::model::{OrderState, SubscriptionStatus};
use crate::mirror::rows::{OrderRow, SubscriptionRow};
use crate::web::billable::Billable;
use crate::web::error::BillingError;
use crate::web::octany::Octany;

/// A plan as the page shows it.
struct ShownPlan {
    slug: String,
    name: String,
    said: String,
    price: String,
    method: Option<String>,
    cancel: Option<String>,
    update_card: Option<String>,
    invoices: Option<String>,
}

/// An order as the page shows it.
struct ShownOrder {
    id: String,
    date: String,
    what: String,
    total: String,
    vat: String,
    total_with_vat: String,
    state: String,
    receipt: Option<String>,
}

#[derive(Template)]
#[template(path = "octany/billing.html")]
struct BillingPage {
    plans: Vec<ShownPlan>,
    orders: Vec<ShownOrder>,
    pricing_path: String,
    back: String,
    stylesheet: Option<String>,
}

pub(super) async fn billing_page<U: Billable + FromRequest + 'static>(
    req: HttpRequest,
    user: U,
) -> Result<HttpResponse, BillingError> {
    let octany = Octany::from_request(&req)?;
    if let Some(refused) = refuse_unless_allowed(&req, &user, &octany)? {
        return Ok(refused);
    }
    let billing = octany.billing(&user);
    let now = octany.clock().now();
    let plans = billing
        .subscriptions()
        .await?
        .iter()
        .filter(|s| {
            !matches!(s.status, SubscriptionStatus::Expired) && s.ends_at.is_none_or(|e| e > now)
        })
        .map(|s| shown_plan(&octany, s, now))
        .collect();
    let settings = octany.settings();
    let orders = billing
        .orders()
        .await?
        .iter()
        .map(|o| {
            shown_order(
                o,
                settings
                    .seller
                    .is_some()
                    .then(|| settings.route_path("receipts")),
            )
        })
        .collect();
    let page = BillingPage {
        plans,
        orders,
        pricing_path: settings.pricing_path.clone(),
        back: settings.after_checkout_path.clone(),
        stylesheet: settings.stylesheet.clone(),
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "private, no-store"))
        .content_type("text/html; charset=utf-8")
        .body(page.render()?))
}

fn day(time: chrono::DateTime<chrono::Utc>) -> String {
    time.format("%Y-%m-%d").to_string()
}

fn shown_plan(
    octany: &Octany,
    s: &SubscriptionRow,
    now: chrono::DateTime<chrono::Utc>,
) -> ShownPlan {
    let sold = s.product_id.and_then(|id| octany.sold_as(id));
    let name = s
        .product_name
        .clone()
        .or_else(|| sold.map(|p| p.slug.clone()))
        .unwrap_or_else(|| "Your plan".to_owned());
    let said = match (&s.status, s.renews_at, s.ends_at) {
        (SubscriptionStatus::Cancelled, _, Some(end)) if end > now => format!(
            "Cancelled: you keep {name} until {}, and nothing more is charged.",
            day(end)
        ),
        (SubscriptionStatus::Trialing, Some(renews), _) => format!(
            "On trial until {}; the first payment is taken then.",
            day(renews)
        ),
        (SubscriptionStatus::Pending, ..) => "Waiting for the first payment.".to_owned(),
        (SubscriptionStatus::Delayed, ..) => {
            "A payment failed and is being retried: update your card.".to_owned()
        }
        (SubscriptionStatus::FutureStart, Some(starts), _) => {
            format!("Starts on {}.", day(starts))
        }
        (_, Some(renews), _) => format!("Active; renews on {}.", day(renews)),
        (status, ..) => format!("Status: {}.", status.as_str()),
    };
    let cancellable = !matches!(
        s.status,
        SubscriptionStatus::Cancelled | SubscriptionStatus::Expired
    );
    let cancel = sold
        .filter(|_| cancellable)
        .map(|p| format!("{}?plan={}", octany.settings().route_path("cancel"), p.slug));
    ShownPlan {
        slug: sold.map_or_else(|| s.id.clone(), |p| p.slug.clone()),
        name,
        said,
        price: format!("{} incl. VAT", money(s.price + s.vat, &s.currency, None)),
        method: s.billing_method_type.clone(),
        cancel,
        update_card: s.update_card_url.clone(),
        invoices: s.invoices_url.clone(),
    }
}

fn shown_order(o: &OrderRow, receipts: Option<String>) -> ShownOrder {
    let order = o.order();
    let date = order
        .as_ref()
        .and_then(|order| order.created_at)
        .unwrap_or(o.created_at);
    let what = order
        .as_ref()
        .and_then(|order| order.items.first())
        .and_then(|item| {
            item.description
                .clone()
                .or_else(|| item.product.as_ref().map(|p| p.name.clone()))
        })
        .unwrap_or_default();
    let paid = o.state == OrderState::Paid;
    ShownOrder {
        id: o.id.clone(),
        date: day(date),
        what,
        total: money(o.total, &o.currency, None),
        vat: money(o.total_with_vat - o.total, &o.currency, None),
        total_with_vat: money(o.total_with_vat, &o.currency, None),
        state: o.state.as_str().to_owned(),
        receipt: receipts.filter(|_| paid).map(|r| format!("{r}/{}", o.id)),
    }
}
