//! What plans carry, in the starter: a reports page only Pro opens, and a
//! metered API whose calls are billed at each renewal.

use actix_session::Session;
use actix_web::{HttpResponse, web};
use askama::Template;
use askama_web::WebTemplate;
use octany_actix::RequireSubscription;
use octany_actix::guard::RequireFeature;

use crate::billing::{ApiCalls, Reports};
use crate::errors::AppError;
use crate::pages::Layout;
use crate::{AppState, user};

/// `GET /reports`.
#[derive(Debug, Template, WebTemplate)]
#[template(path = "reports.html")]
pub struct ReportsPage {
    layout: Layout,
}

/// `GET /reports`: Pro's `Reports` feature only (Basic is sent to the
/// pricing page; an API client gets 403 `feature_not_included`).
pub async fn reports(
    state: web::Data<AppState>,
    session: Session,
    allowed: RequireFeature<user::Model, Reports>,
) -> ReportsPage {
    ReportsPage {
        layout: Layout::new(&state, &session, Some(&allowed.user)),
    }
}

/// `GET /api/ping`: a metered API call of a subscriber. Each call is
/// recorded under its own key (a retry of the same request would send the
/// same `Idempotency-Key` header and count once); the period's calls are
/// billed when the subscription renews.
pub async fn ping(
    state: web::Data<AppState>,
    paid: RequireSubscription<user::Model>,
    req: actix_web::HttpRequest,
) -> Result<HttpResponse, AppError> {
    let key = req
        .headers()
        .get("Idempotency-Key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let billing = state.octany.billing(&paid.user);
    billing.record_usage::<ApiCalls>(1, &key).await?;
    let usage = billing.usage::<ApiCalls>().await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "pong": true,
        "calls_this_period": usage.quantity,
        "estimated_charge": usage.amount,
    })))
}
