//! The app's pages: home, pricing, the guarded dashboard, and the account
//! page with its cancel, swap and add-on forms.

use actix_session::Session;
use actix_web::{HttpResponse, http::header, web};
use askama::Template;
use askama_web::WebTemplate;
use octany_actix::client::NewOrder;
use octany_actix::model::Product;
use octany_actix::model::{Entitlement, SubscriptionStatus};
use octany_actix::{BillingError, Plan, RequireSubscription};
use serde::Deserialize;

use crate::billing::{ADD_ON, AddOns, Plans};
use crate::errors::AppError;
use crate::{AppState, csrf, user};

/// What every page shows around its content.
#[derive(Debug)]
pub struct Layout {
    /// The signed-in user's e-mail.
    pub user: Option<String>,
    /// The session's CSRF token, for forms.
    pub csrf: String,
    /// The fake Octany's control page, when running against it.
    pub fake_control: Option<String>,
    /// Whether mails are caught for `/dev/mail`.
    pub caught_mail: bool,
}

impl Layout {
    /// The layout for `user` (if signed in).
    pub fn new(state: &AppState, session: &Session, user: Option<&user::Model>) -> Self {
        Self {
            user: user.map(|u| u.email.clone()),
            csrf: csrf::token(session),
            fake_control: state.fake_control.clone(),
            caught_mail: state.caught_mail.is_some(),
        }
    }
}

fn money(minor: i64) -> String {
    format!("{},{:02} kr", minor / 100, minor % 100)
}

fn price_with_vat(price: i64, vat_rate: i64) -> i64 {
    price + (price * vat_rate + 5000) / 10000
}

/// `GET /`: to the dashboard when signed in, else pricing.
pub async fn home(session: Session) -> HttpResponse {
    let to = if crate::sessions::user_id(&session).is_some() {
        "/dashboard"
    } else {
        "/pricing"
    };
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .finish()
}

/// A plan on the pricing page.
#[derive(Debug)]
pub struct PlanCard {
    /// Its slug.
    pub slug: &'static str,
    /// Its name.
    pub name: String,
    /// Its price with VAT.
    pub price: String,
    /// How often it renews.
    pub interval: String,
    /// Whether the user is on it.
    pub current: bool,
}

/// The pricing page (a user's, or a team's).
#[derive(Debug, Template, WebTemplate)]
#[template(path = "pricing.html")]
pub struct PricingPage {
    layout: Layout,
    plans: Vec<PlanCard>,
    add_ons: Vec<PlanCard>,
    signed_in: bool,
    /// Where the checkout routes are (`/billing` or `/team/billing`).
    billing_path: String,
    team: Option<ForTeam>,
    /// A team member who cannot buy for the team.
    ask_owner: bool,
}

/// A pricing page shown for a team.
#[derive(Debug)]
pub struct ForTeam {
    /// The team's name.
    pub name: String,
    /// Whether the viewer may buy for it (an owner).
    pub can_buy: bool,
}

async fn catalog(state: &AppState) -> Result<Vec<Product>, AppError> {
    Ok(state.octany.products().await?)
}

/// `GET /pricing`: the catalog with prices including VAT.
pub async fn pricing(
    state: web::Data<AppState>,
    session: Session,
    req: actix_web::HttpRequest,
) -> Result<PricingPage, AppError> {
    let user = <user::Model as actix_web::FromRequest>::extract(&req)
        .await
        .ok();
    pricing_for(
        &state,
        &session,
        user.as_ref(),
        &state.octany,
        user.as_ref(),
        None,
    )
    .await
}

/// The pricing page of `billable` (when signed in), sold through `octany`'s
/// routes.
pub async fn pricing_for<B: octany_actix::Billable>(
    state: &AppState,
    session: &Session,
    user: Option<&user::Model>,
    octany: &octany_actix::Octany,
    billable: Option<&B>,
    team: Option<ForTeam>,
) -> Result<PricingPage, AppError> {
    let products = catalog(state).await?;
    let current = match billable {
        Some(b) => octany
            .billing(b)
            .subscription()
            .await
            .ok()
            .flatten()
            .and_then(|s| s.product_id),
        None => None,
    };
    let plans = Plans::all()
        .iter()
        .filter_map(|plan| {
            let p = products.iter().find(|p| p.id == plan.product_id())?;
            Some(PlanCard {
                slug: plan.slug(),
                name: p.name.clone(),
                price: money(price_with_vat(p.price, p.vat_rate)),
                interval: p.interval.clone().unwrap_or_default(),
                current: current == Some(p.id),
            })
        })
        .collect();
    // Add-ons are sold to people; a team buys plans.
    let add_ons = AddOns::all()
        .iter()
        .filter(|_| team.is_none())
        .filter_map(|add_on| {
            let p = products.iter().find(|p| p.id == add_on.product_id())?;
            Some(PlanCard {
                slug: add_on.slug(),
                name: p.name.clone(),
                price: money(price_with_vat(p.price, p.vat_rate)),
                interval: String::new(),
                current: false,
            })
        })
        .collect();
    Ok(PricingPage {
        layout: Layout::new(state, session, user),
        plans,
        add_ons,
        signed_in: user.is_some(),
        billing_path: octany.settings().billing_path.clone(),
        ask_owner: team.as_ref().is_some_and(|t| !t.can_buy),
        team,
    })
}

/// The dashboard.
#[derive(Debug, Template, WebTemplate)]
#[template(path = "dashboard.html")]
pub struct DashboardPage {
    layout: Layout,
    plan: String,
    status: String,
    invoice_due: Option<String>,
    /// The renewal's payment failed and Octany retries it: where to update
    /// the card (Octany's page), when known.
    payment_failed: Option<String>,
}

/// `GET /dashboard`: subscribers only (and invoice customers while their
/// invoice is not yet due).
pub async fn dashboard(
    state: web::Data<AppState>,
    session: Session,
    paid: RequireSubscription<user::Model>,
) -> Result<DashboardPage, AppError> {
    let policy = state.octany.settings().policy;
    if paid.grant().comp {
        // Granted by support (a comp): no Octany subscription to show.
        return Ok(DashboardPage {
            layout: Layout::new(&state, &session, Some(&paid.user)),
            plan: "a plan granted by support".into(),
            status: paid.status().to_string(),
            invoice_due: None,
            payment_failed: None,
        });
    }
    // The guard decided on a narrow read; the page wants the plan's name.
    let subscription = paid.subscription().await?;
    Ok(DashboardPage {
        layout: Layout::new(&state, &session, Some(&paid.user)),
        plan: subscription.product_name.clone().unwrap_or_default(),
        status: paid.status().to_string(),
        invoice_due: paid
            .grant()
            .invoice_due_at(policy)
            .map(|t| t.format("%Y-%m-%d").to_string()),
        payment_failed: (subscription.status == SubscriptionStatus::Delayed)
            .then(|| subscription.update_card_url.clone().unwrap_or_default()),
    })
}

/// An order on the account page.
#[derive(Debug)]
pub struct OrderRow {
    /// Its id.
    pub id: String,
    /// Its state.
    pub state: String,
    /// Its total with VAT.
    pub total: String,
    /// What it was for.
    pub description: String,
}

/// The account page.
#[derive(Debug, Template, WebTemplate)]
#[template(path = "account.html")]
pub struct AccountPage {
    layout: Layout,
    email: String,
    plan: Option<String>,
    status: String,
    renews: Option<String>,
    ends: Option<String>,
    on_grace: bool,
    can_cancel: bool,
    method: String,
    swaps: Vec<(&'static str, String)>,
    add_on: String,
    charge_key: String,
    orders: Vec<OrderRow>,
    portal: Option<String>,
    /// API calls this period, and their estimated charge (VAT excluded).
    usage: (u64, String),
    flash: Option<String>,
    error: Option<String>,
}

/// What the last action did.
#[derive(Debug, Deserialize)]
pub struct Flash {
    done: Option<String>,
    failed: Option<String>,
}

/// `GET /account`: the current subscription, orders and actions.
pub async fn account(
    state: web::Data<AppState>,
    session: Session,
    user: user::Model,
    query: web::Query<Flash>,
) -> Result<AccountPage, AppError> {
    let billing = state.octany.billing(&user);
    let clock = state.octany.clock().clone();
    let current = billing.subscription().await?;
    let products = catalog(&state).await?;
    let date = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d").to_string();
    let orders = billing
        .orders()
        .await?
        .into_iter()
        .map(|o| OrderRow {
            id: o.id.clone(),
            state: o.state.to_string(),
            total: money(o.total_with_vat),
            description: o
                .items
                .get(0)
                .and_then(|i| i["description"].as_str())
                .unwrap_or_default()
                .to_owned(),
        })
        .collect();
    let swaps = Plans::all()
        .iter()
        .filter(|p| current.as_ref().and_then(|s| s.product_id) != Some(p.product_id()))
        .filter_map(|p| {
            products
                .iter()
                .find(|x| x.id == p.product_id())
                .map(|x| (p.slug(), x.name.clone()))
        })
        .collect();
    let add_on = products
        .iter()
        .find(|p| p.id == ADD_ON)
        .map(|p| {
            format!(
                "{} ({})",
                p.name,
                money(price_with_vat(p.price, p.vat_rate))
            )
        })
        .unwrap_or_default();
    let flash = query.done.as_deref().map(|done| match done {
        "cancelled" => {
            "Your subscription is cancelled. You keep access until the end of the paid period."
                .to_owned()
        }
        "swapped" => "Your plan was changed.".to_owned(),
        "charged" => "Thank you: the add-on was charged.".to_owned(),
        "password" => {
            "Your password was changed, and every other session was logged out.".to_owned()
        }
        _ => "Done.".to_owned(),
    });
    let error = query.failed.as_deref().map(|failed| match failed {
        "declined" => "The card was declined, so the add-on was not charged. Update the card and try again.",
        "in-progress" => "That purchase is still being made: reload this page in a moment.",
        "wrong-password" => "The current password was wrong, so the password was not changed.",
        "weak-password" => "The new password is too short or too easy to guess (at least 10 characters, not a common password), so it was not changed.",
        _ => "That did not work; nothing was changed. Try again in a moment.",
    }.to_owned());
    Ok(AccountPage {
        layout: Layout::new(&state, &session, Some(&user)),
        email: user.email.clone(),
        plan: current.as_ref().and_then(|s| s.product_name.clone()),
        status: current
            .as_ref()
            .map(|s| s.status.to_string())
            .unwrap_or_else(|| "none".into()),
        renews: current.as_ref().and_then(|s| s.renews_at).map(date),
        ends: current.as_ref().and_then(|s| s.ends_at).map(date),
        on_grace: current
            .as_ref()
            .is_some_and(|s| s.on_grace_period(clock.as_ref())),
        can_cancel: current
            .as_ref()
            .is_some_and(|s| s.is_paying(clock.as_ref())),
        method: current
            .as_ref()
            .and_then(|s| s.billing_method_type.clone())
            .unwrap_or_default(),
        swaps,
        add_on,
        // One key per rendered form: a double submit charges once.
        charge_key: uuid::Uuid::new_v4().to_string(),
        orders,
        portal: current.and_then(|s| s.update_card_url),
        usage: {
            let usage = billing.usage::<crate::billing::ApiCalls>().await?;
            (usage.quantity, money(usage.amount))
        },
        flash,
        error,
    })
}

/// The account page's forms.
#[derive(Debug, Deserialize)]
pub struct ActionForm {
    csrf: String,
    #[serde(default)]
    plan: String,
    #[serde(default)]
    key: String,
}

fn back(done: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, format!("/account?done={done}")))
        .finish()
}

/// `POST /account/swap`.
pub async fn swap(
    state: web::Data<AppState>,
    session: Session,
    user: user::Model,
    form: web::Form<ActionForm>,
) -> Result<HttpResponse, AppError> {
    csrf::check(&session, &form.csrf)?;
    let plan = Plans::from_slug(&form.plan).ok_or(AppError::NotFound)?;
    state.octany.billing(&user).swap(plan).await?;
    Ok(back("swapped"))
}

/// `POST /account/add-on`: a one-off charge, made once per rendered form
/// (its idempotency key), however often the form is posted.
pub async fn add_on(
    state: web::Data<AppState>,
    session: Session,
    user: user::Model,
    form: web::Form<ActionForm>,
) -> Result<HttpResponse, AppError> {
    csrf::check(&session, &form.csrf)?;
    let order = NewOrder {
        product_id: ADD_ON,
        amount: None,
        description: Some("Extra seats".into()),
    };
    let failed = |why: &str| {
        HttpResponse::SeeOther()
            .insert_header((header::LOCATION, format!("/account?failed={why}")))
            .finish()
    };
    match state.octany.billing(&user).charge(&form.key, order).await {
        Ok(_) => Ok(back("charged")),
        Err(BillingError::ChargeDeclined { .. }) => Ok(failed("declined")),
        Err(BillingError::ChargeInProgress) => Ok(failed("in-progress")),
        Err(other) => Err(other.into()),
    }
}
