//! `GET`/`POST swap/{plan}`: the swap's confirmation page, saying what
//! changes and when, and its form (the intent the page opened is the form's
//! token).

use std::collections::HashMap;

use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use askama::Template;

use super::answers::{
    Query, busy_page, money, next_path, refuse_unless_allowed, see_other, with_next,
};
use crate::domain::model::{Product, ProductId};
use crate::mirror::rows::{CheckoutStatus, SubscriptionRow};
use crate::web::billable::Billable;
use crate::web::error::BillingError;
use crate::web::octany::Octany;

/// One side of a swap, as the confirmation page shows it.
struct PlanView {
    name: String,
    price: Option<String>,
}

#[derive(Template)]
#[template(path = "octany/swap.html")]
struct SwapPage {
    from: PlanView,
    to: PlanView,
    renews_at: Option<String>,
    action: String,
    intent: String,
    back: String,
    /// Why the swap cannot be made now (over one of the new plan's limits).
    refused: Option<String>,
}

/// The swap a billable would make: its group's live subscription, the
/// plan's product and group.
type SwapTarget = (SubscriptionRow, ProductId, &'static str);

/// The swap a billable would make to `slug`; `Err(response)` when there is
/// nothing to swap (none held: to the checkout; already on it: onwards).
async fn swap_target<U: Billable>(
    octany: &Octany,
    user: &U,
    slug: &str,
    query: &HashMap<String, String>,
) -> Result<Result<SwapTarget, HttpResponse>, BillingError> {
    let Some((product, group)) = octany
        .sold_at(slug)
        .and_then(|p| p.group.map(|g| (p.product, g)))
    else {
        return Err(BillingError::UnknownPlan(slug.to_owned()));
    };
    let billing = octany.billing(user).in_group_named(group);
    match billing.live_subscription().await {
        Ok(current) if current.product_id == Some(product) => {
            Ok(Err(see_other(&next_path(query, octany))))
        }
        Ok(current) => Ok(Ok((current, product, group))),
        Err(BillingError::NoSubscription) => Ok(Err(see_other(&with_next(
            octany.settings().route_path(&format!("checkout/{slug}")),
            query,
        )))),
        Err(other) => Err(other),
    }
}

pub(super) async fn swap_page<U: Billable + FromRequest + 'static>(
    req: HttpRequest,
    user: U,
    plan: web::Path<String>,
    query: Query,
) -> Result<HttpResponse, BillingError> {
    let octany = Octany::from_request(&req)?;
    if let Some(refused) = refuse_unless_allowed(&req, &user, &octany)? {
        return Ok(refused);
    }
    let slug = plan.into_inner();
    let (current, product, group) = match swap_target(&octany, &user, &slug, &query).await? {
        Ok(target) => target,
        Err(response) => return Ok(response),
    };
    let billing = octany.billing(&user).in_group_named(group);
    let refused = match billing.fits(product).await {
        Ok(()) => None,
        Err(over @ BillingError::OverLimit { .. }) => Some(over.to_string()),
        Err(other) => return Err(other),
    };
    let intent = billing.open_intent(product).await?;
    // The new plan as the product cache has it (name, price, VAT, interval).
    let to = octany.mirror().product(product).await?.map(Product::from);
    let interval = current
        .subscription()
        .and_then(|s| s.product)
        .and_then(|p| p.billing_interval().map(str::to_owned));
    let page = SwapPage {
        from: PlanView {
            name: current
                .product_name
                .clone()
                .unwrap_or_else(|| "your current plan".into()),
            price: Some(money(
                current.price + current.vat,
                &current.currency,
                interval.as_deref(),
            )),
        },
        to: PlanView {
            name: to
                .as_ref()
                .map(|p| p.name.clone())
                .unwrap_or_else(|| slug.clone()),
            price: to
                .as_ref()
                .map(|p| money(p.price_with_vat(), &p.currency, p.billing_interval())),
        },
        renews_at: current.renews_at.map(|t| t.format("%Y-%m-%d").to_string()),
        action: with_next(
            octany.settings().route_path(&format!("swap/{slug}")),
            &query,
        ),
        intent,
        back: next_path(&query, &octany),
        refused,
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .content_type("text/html; charset=utf-8")
        .body(page.render()?))
}

pub(super) async fn confirm_swap<U: Billable + FromRequest + 'static>(
    req: HttpRequest,
    user: U,
    plan: web::Path<String>,
    query: Query,
    form: web::Form<HashMap<String, String>>,
) -> Result<HttpResponse, BillingError> {
    let octany = Octany::from_request(&req)?;
    if let Some(refused) = refuse_unless_allowed(&req, &user, &octany)? {
        return Ok(refused);
    }
    let slug = plan.into_inner();
    let again = with_next(
        octany.settings().route_path(&format!("swap/{slug}")),
        &query,
    );
    let billing = octany.billing(&user);
    // The form's intent is the confirmation's token: made for this user and
    // plan by the page, unknown to another site.
    let intent = match form.get("intent") {
        Some(id) => billing.intent(id).await?,
        None => None,
    };
    let product = octany.sold_at(&slug).map(|p| p.product);
    let Some(intent) = intent.filter(|i| Some(i.product_id) == product) else {
        return Ok(see_other(&again));
    };
    if intent.status == CheckoutStatus::Completed {
        // Posted twice: the first did it.
        return Ok(see_other(&next_path(&query, &octany)));
    }
    let (_, product, group) = match swap_target(&octany, &user, &slug, &query).await? {
        Ok(target) => target,
        Err(response) => return Ok(response),
    };
    // The swap's write completes the intent (the unit of work completes
    // every intent the subscription's new product answers).
    let swapped = octany
        .billing(&user)
        .in_group_named(group)
        .swap_to(product)
        .await;
    if let Err(BillingError::OverLimit { .. }) = swapped {
        // The page says which limit and by how much.
        return Ok(see_other(&again));
    }
    busy_page(
        &req,
        &octany,
        swapped.map(|_| see_other(&next_path(&query, &octany))),
    )
}
