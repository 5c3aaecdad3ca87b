//! The guard for a whole scope, built on the extractor.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{Error, FromRequest, HttpRequest};

use super::RequireSubscription;
use crate::domain::plan::{AnyPlan, Plan, PlanSet};
use crate::web::billable::Billable;

/// Runs the guard extractor `E` before a scope's handlers: a refusal is
/// answered at once; what it admitted goes to `keep` (to put in the
/// request's extensions), then the handlers run.
pub(super) async fn through<E, B>(
    req: ServiceRequest,
    next: Next<B>,
    keep: impl FnOnce(E, &HttpRequest),
) -> Result<ServiceResponse<EitherBody<B>>, Error>
where
    E: FromRequest<Error = Error>,
    B: MessageBody + 'static,
{
    let (http, mut payload) = req.into_parts();
    match E::from_request(&http, &mut payload).await {
        Ok(admitted) => {
            keep(admitted, &http);
            let req = ServiceRequest::from_parts(http, payload);
            Ok(next.call(req).await?.map_into_left_body())
        }
        Err(refused) => {
            Ok(ServiceResponse::new(http, refused.error_response()).map_into_right_body())
        }
    }
}

async fn guard<U, P, B>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, Error>
where
    U: Billable + FromRequest + 'static,
    P: PlanSet,
    B: MessageBody + 'static,
{
    through(req, next, |granted: RequireSubscription<U, P>, http| {
        // Handlers behind the scope can read it with ReqData<Arc<Grant>>.
        actix_web::HttpMessage::extensions_mut(http).insert(granted.grant);
    })
    .await
}

/// Guards a scope: only users with access get through; the rest get the
/// guard's rejection. What it granted on is in the request's extensions
/// (`web::ReqData<Arc<octany_actix::guard::Grant>>`).
///
/// ```no_run
/// # #[derive(Clone)] struct CurrentUser;
/// # impl octany_actix::Billable for CurrentUser { fn billable_id(&self) -> String { "1".into() } }
/// # impl actix_web::FromRequest for CurrentUser { type Error = actix_web::Error; type Future = std::future::Ready<Result<Self, Self::Error>>;
/// #   fn from_request(_: &actix_web::HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future { std::future::ready(Ok(CurrentUser)) } }
/// use actix_web::{middleware::from_fn, web};
/// let app = web::scope("/app").wrap(from_fn(octany_actix::guard::require_subscription::<CurrentUser, _>));
/// ```
pub async fn require_subscription<U, B>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, Error>
where
    U: Billable + FromRequest + 'static,
    B: MessageBody + 'static,
{
    guard::<U, AnyPlan, B>(req, next).await
}

/// Guards a scope for subscribers to a plan of `P`.
pub async fn require_plan<U, P, B>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, Error>
where
    U: Billable + FromRequest + 'static,
    P: Plan,
    B: MessageBody + 'static,
{
    guard::<U, P, B>(req, next).await
}
