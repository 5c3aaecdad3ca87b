//! The web layer's error, and every error's HTTP answer, in one place.
//!
//! Every error body has one shape, `{"error": code, "message": text}`
//! (plus a link where one helps), and a 5xx body never carries database or
//! Octany detail: that goes to the log (and, for a webhook, to its
//! delivery row).

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use serde_json::{Value, json};

use crate::client::OctanyError;
use crate::mirror::sync::SyncError;
use crate::mirror::webhook::WebhookError;
use crate::web::settings::Settings;

/// Why the guard said no.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Denial {
    /// No access (or not to this plan).
    #[error("a subscription is required")]
    NotSubscribed,
    /// A checkout or first invoice is still being paid.
    #[error("the payment is still being processed")]
    PaymentProcessing,
    /// The billing database could not be read: denied, never admitted.
    #[error("billing is unavailable")]
    Unavailable,
    /// Subscribed, but no plan it holds turns this feature on.
    #[error("the plan does not include `{feature}`: upgrade to use it")]
    FeatureNotIncluded {
        /// The feature ([`Feature::NAME`](crate::Feature::NAME)).
        feature: &'static str,
    },
}

/// A billing action or question of the host failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BillingError {
    /// No `web::Data<Octany>` on the app.
    #[error(
        "octany_actix::Octany is not registered: call App::app_data(web::Data::new(octany.clone())) on the App itself \
         (state registered inside a scope is invisible to routes outside it)"
    )]
    NotRegistered,
    /// The mirror's database failed.
    #[error("the billing database is unavailable ({0}); try again shortly")]
    Database(#[from] sea_orm::DbErr),
    /// Octany refused or failed.
    #[error(transparent)]
    Octany(#[from] OctanyError),
    /// No such plan in the catalog.
    #[error("there is no plan `{0}`: configure it with OctanyBuilder::plans")]
    UnknownPlan(String),
    /// The billable already has access to that plan.
    #[error("already subscribed to this plan")]
    AlreadySubscribed,
    /// The action needs a subscription and there is none.
    #[error("there is no subscription to do that with")]
    NoSubscription,
    /// No receipt of that order for this billable: no such order, another
    /// billable's, or not paid (one answer for each).
    #[error("there is no receipt of order `{order}` for this account")]
    NoSuchReceipt {
        /// The order asked for.
        order: String,
    },
    /// No seller is configured, so there are no receipts.
    #[error("receipts are off: configure who sells with OctanyBuilder::seller")]
    ReceiptsOff,
    /// No comp has that id.
    #[error(
        "there is no comp `{id}`: list a billable's comps with Octany::comps (or the CLI's `comps`)"
    )]
    NoSuchComp {
        /// The id asked for.
        id: String,
    },
    /// A checkout for another plan of a group the billable already holds:
    /// it would make a second subscription, so it is a swap instead.
    #[error(
        "already subscribed to another plan of this group: a checkout would make a second subscription; \
         swap instead ({})",
        swap_path.as_deref().map_or("Billing::swap".to_owned(), |p| format!("confirm it at {p}"))
    )]
    SwapInstead {
        /// The mounted swap's confirmation page; `None` for a product the
        /// routes do not sell (swap with [`Billing::swap`](crate::billing::Billing::swap)).
        swap_path: Option<String>,
    },
    /// A one-off charge needs a live subscription whose billing method pays.
    #[error(
        "there is no live subscription whose billing method could pay this charge: sell the product at checkout \
         instead (OctanyBuilder::one_off_products, then send the customer to the checkout route)"
    )]
    ChargeNeedsSubscription,
    /// Octany made the order, and it was declined or failed: nothing was
    /// charged.
    #[error(
        "the charge was declined (order {} is {}): nothing was charged; ask the customer to update their card",
        .order.id, .order.state
    )]
    ChargeDeclined {
        /// The order, as mirrored.
        order: Box<crate::mirror::rows::OrderRow>,
    },
    /// Another request with the same idempotency key is making this charge.
    #[error(
        "this charge is being made by another request right now: reload in a moment to see how it ended"
    )]
    ChargeInProgress,
    /// The idempotency key was used before, for a different charge.
    #[error(
        "this idempotency key was used for a different charge: make a new key for each form you render"
    )]
    KeyReused,
    /// The one acting may only use this billable's billing, not change it
    /// ([`Billable::may_manage_billing`](crate::Billable::may_manage_billing)).
    #[error("{}", match managers {
        Some(who) => format!("only {who} can buy, change or cancel this plan"),
        None => "you cannot buy, change or cancel this plan".to_owned(),
    })]
    NotAllowed {
        /// Who can ([`Billable::billing_managers`](crate::Billable::billing_managers)).
        managers: Option<String>,
    },
    /// The billable's plans allow fewer of a limit than this would make
    /// (an invite past the seats, a downgrade while over the smaller
    /// plan's limit).
    #[error(
        "over the limit of {limit}: the plan allows {allowed} and this would make {would_be}; \
         upgrade, or use fewer first"
    )]
    OverLimit {
        /// The limit ([`Limit::NAME`](crate::Limit::NAME)).
        limit: &'static str,
        /// What the plan allows.
        allowed: u64,
        /// What there would be.
        would_be: u64,
    },
    /// The host's [`UsageCounts`](crate::UsageCounts) failed, so a swap
    /// could not be checked against the new plan's limits: refused.
    #[error("could not count {limit} to check the new plan's limits ({reason}); try again shortly")]
    UsageUnknown {
        /// The limit being counted.
        limit: &'static str,
        /// The host's error.
        reason: String,
    },
    /// A page of the library could not be rendered (a bug: report it).
    #[error("a billing page could not be rendered ({0}); this is a bug in octany-actix, report it")]
    Render(#[from] askama::Error),
}

impl BillingError {
    /// A request the library refuses before anything is done (400,
    /// `invalid_request`): `reason` says what to change.
    pub(crate) fn invalid(reason: impl Into<String>) -> Self {
        Self::Octany(OctanyError::InvalidRequest {
            reason: reason.into(),
        })
    }
}

impl From<SyncError> for BillingError {
    fn from(error: SyncError) -> Self {
        match error {
            SyncError::Database(e) => Self::Database(e),
            SyncError::Octany(e) => Self::Octany(e),
            SyncError::Payload { event, source } => Self::Octany(OctanyError::Decode {
                status: 200,
                excerpt: event,
                source,
            }),
        }
    }
}

/// The one error body: `{"error": code, "message": text, ...extra}`.
fn body(status: StatusCode, code: &str, message: &str, extra: Value) -> HttpResponse {
    let mut body = json!({ "error": code, "message": message });
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body)
}

impl ResponseError for BillingError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::NotRegistered | Self::Render(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Database(_) | Self::UsageUnknown { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Octany(OctanyError::Validation { .. }) => StatusCode::UNPROCESSABLE_ENTITY,
            // Refused before it was sent: the caller's input, not Octany.
            Self::Octany(OctanyError::InvalidRequest { .. }) => StatusCode::BAD_REQUEST,
            // Not sent: too many wait for Octany's rate limit (this
            // billable's, or everyone's): try again shortly.
            Self::Octany(OctanyError::Busy { .. }) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Octany(_) => StatusCode::BAD_GATEWAY,
            Self::UnknownPlan(_)
            | Self::NoSuchComp { .. }
            | Self::NoSuchReceipt { .. }
            | Self::ReceiptsOff => StatusCode::NOT_FOUND,
            Self::NotAllowed { .. } | Self::OverLimit { .. } => StatusCode::FORBIDDEN,
            Self::AlreadySubscribed
            | Self::NoSubscription
            | Self::SwapInstead { .. }
            | Self::ChargeNeedsSubscription
            | Self::ChargeInProgress => StatusCode::CONFLICT,
            Self::ChargeDeclined { .. } => StatusCode::PAYMENT_REQUIRED,
            Self::KeyReused => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let code = match self {
            Self::NotRegistered => "octany_not_registered",
            Self::Database(_) => "billing_unavailable",
            Self::Octany(OctanyError::InvalidRequest { .. }) => "invalid_request",
            Self::Octany(OctanyError::Busy { .. }) => "busy",
            Self::Octany(_) => "octany_failed",
            Self::UnknownPlan(_) => "unknown_plan",
            Self::NotAllowed { .. } => "not_allowed",
            Self::AlreadySubscribed => "already_subscribed",
            Self::NoSubscription => "no_subscription",
            Self::NoSuchComp { .. } => "no_such_comp",
            Self::NoSuchReceipt { .. } => "no_such_receipt",
            Self::ReceiptsOff => "receipts_off",
            Self::SwapInstead { .. } => "swap_instead",
            Self::ChargeNeedsSubscription => "charge_needs_subscription",
            Self::ChargeDeclined { .. } => "charge_declined",
            Self::ChargeInProgress => "charge_in_progress",
            Self::KeyReused => "key_reused",
            Self::OverLimit { .. } => "over_limit",
            Self::UsageUnknown { .. } => "usage_unknown",
            Self::Render(_) => "internal",
        };
        // Database and Octany details go to the log, not to the browser.
        let message = match self {
            Self::Octany(OctanyError::Validation { .. } | OctanyError::InvalidRequest { .. }) => {
                self.to_string()
            }
            Self::Database(_) => {
                tracing::error!(error = %self, "billing request failed");
                "billing is unavailable; try again shortly".to_owned()
            }
            Self::UsageUnknown { limit, .. } => {
                tracing::error!(error = %self, "billing request failed");
                format!("could not count {limit} to check the new plan's limits; try again shortly")
            }
            Self::Octany(OctanyError::Busy { .. }) => {
                tracing::info!(error = %self, "billing request not sent: busy");
                BUSY.to_owned()
            }
            Self::Octany(_) => {
                tracing::error!(error = %self, "billing request failed");
                "Octany could not be reached; try again shortly".to_owned()
            }
            Self::Render(_) => {
                tracing::error!(error = %self, "billing request failed");
                "something went wrong on our side".to_owned()
            }
            other => other.to_string(),
        };
        let extra = match self {
            Self::SwapInstead { swap_path } => json!({ "swap_url": swap_path }),
            Self::ChargeDeclined { order } => json!({ "order": order.id, "state": order.state }),
            Self::OverLimit {
                limit,
                allowed,
                would_be,
            } => json!({ "limit": limit, "allowed": allowed, "would_be": would_be }),
            _ => Value::Null,
        };
        let mut response = body(self.status_code(), code, &message, extra);
        if matches!(self, Self::Octany(OctanyError::Busy { .. })) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
        }
        response
    }
}

/// What a person is told when their request was not sent because too many
/// wait for Octany.
pub(crate) const BUSY: &str =
    "Billing is busy right now and nothing was done: try again in a few seconds";

impl ResponseError for WebhookError {
    fn status_code(&self) -> StatusCode {
        match self {
            WebhookError::BadSignature => StatusCode::UNAUTHORIZED,
            WebhookError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            WebhookError::Malformed(_) => StatusCode::BAD_REQUEST,
            WebhookError::UnknownDelivery(_) => StatusCode::NOT_FOUND,
            // Kept for replay; a retry could not read it either.
            WebhookError::Apply(SyncError::Payload { .. }) => StatusCode::BAD_REQUEST,
            WebhookError::Apply(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let code = match self {
            WebhookError::BadSignature => "bad_signature",
            WebhookError::TooLarge { .. } => "too_large",
            WebhookError::Malformed(_) => "malformed",
            WebhookError::UnknownDelivery(_) => "unknown_delivery",
            WebhookError::Apply(SyncError::Payload { .. }) => "unreadable_data",
            WebhookError::Apply(_) => "apply_failed",
        };
        // The apply error's detail stays in the log and on the delivery row.
        let message = match self {
            WebhookError::Apply(_) => "applying the delivery failed; it will be retried".to_owned(),
            other => other.to_string(),
        };
        body(self.status_code(), code, &message, Value::Null)
    }
}

pub(crate) fn wants_html(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

/// The guard's default answers: for browsers (`Accept: text/html`) a 303 to
/// the pricing page (or to the success page while a payment is
/// processing); for API clients 402 with the error body; 503 when billing
/// is unavailable.
pub(crate) fn rejection(req: &HttpRequest, denial: &Denial, settings: &Settings) -> HttpResponse {
    let redirect = |to: &str| {
        HttpResponse::SeeOther()
            .insert_header((header::LOCATION, to))
            .finish()
    };
    match (denial, wants_html(req)) {
        (Denial::Unavailable, _) => {
            let mut answer = body(
                StatusCode::SERVICE_UNAVAILABLE,
                "billing_unavailable",
                "billing is unavailable; try again shortly",
                Value::Null,
            );
            answer
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
            answer
        }
        (Denial::NotSubscribed | Denial::FeatureNotIncluded { .. }, true) => {
            redirect(&settings.pricing_path)
        }
        (Denial::FeatureNotIncluded { feature }, false) => body(
            StatusCode::FORBIDDEN,
            "feature_not_included",
            &denial.to_string(),
            json!({ "feature": feature, "pricing_url": settings.pricing_path }),
        ),
        (Denial::PaymentProcessing, true) => redirect(&settings.route_path("success")),
        (Denial::NotSubscribed, false) => body(
            StatusCode::PAYMENT_REQUIRED,
            "subscription_required",
            "a subscription is required",
            json!({ "pricing_url": settings.pricing_path }),
        ),
        (Denial::PaymentProcessing, false) => {
            let mut answer = body(
                StatusCode::PAYMENT_REQUIRED,
                "payment_processing",
                "the payment is still being processed",
                json!({ "status_url": settings.route_path("status") }),
            );
            answer
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("3"));
            answer
        }
    }
}

#[cfg(test)]
mod tests {
    use actix_web::body::MessageBody;

    use super::*;

    fn body_of(error: &dyn ResponseError) -> (u16, String) {
        let response = error.error_response();
        let status = response.status().as_u16();
        let bytes = response.into_body().try_into_bytes().unwrap_or_default();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    #[test]
    fn a_5xx_answer_keeps_octanys_and_the_databases_words_to_the_log() {
        let octany = BillingError::Octany(OctanyError::Server {
            status: 500,
            attempts: 4,
            excerpt: "<pre>Stack trace: PDOException at /var/www".into(),
        });
        let (status, text) = body_of(&octany);
        assert_eq!(status, 502);
        assert!(
            !text.contains("PDOException") && !text.contains("Stack"),
            "{text}"
        );
        assert!(text.contains(r#""error":"octany_failed""#), "{text}");
        let database = BillingError::Database(sea_orm::DbErr::Custom(
            "relation \"octany_subscriptions\" does not exist".into(),
        ));
        let (status, text) = body_of(&database);
        assert_eq!(status, 503);
        assert!(!text.contains("relation"), "{text}");
        let webhook = WebhookError::Apply(SyncError::Database(sea_orm::DbErr::Custom(
            "deadlock detected on octany_orders".into(),
        )));
        let (status, text) = body_of(&webhook);
        assert_eq!(status, 500);
        assert!(!text.contains("octany_orders"), "{text}");
        assert!(text.contains(r#""error":"apply_failed""#), "{text}");
    }

    #[test]
    fn a_4xx_answer_says_what_to_do() {
        let (status, text) = body_of(&BillingError::UnknownPlan("gold".into()));
        assert_eq!(status, 404);
        assert!(text.contains("OctanyBuilder::plans"), "{text}");
    }
}
