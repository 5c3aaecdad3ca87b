//! Guarding routes by a feature of the billable's plans.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{Error, FromRequest, HttpRequest};

use crate::domain::clock::Frozen;
use crate::domain::features::Feature;
use crate::domain::model::BillableRef;
use crate::domain::plan::AnyPlan;
use crate::web::billable::Billable;
use crate::web::error::Denial;
use crate::web::octany::Octany;

/// A user (`U`) whose plans turn on the feature `F`. It answers as
/// [`RequireSubscription`](super::RequireSubscription) does: a browser
/// without a subscription (or whose plan lacks `F`) is sent to the pricing
/// page, an API client gets 402 `subscription_required` or 403
/// `feature_not_included`, and a database failure is 503, never a pass.
///
/// ```no_run
/// # #[derive(Clone)] struct CurrentUser;
/// # impl octany_actix::Billable for CurrentUser { fn billable_id(&self) -> String { "1".into() } }
/// # impl actix_web::FromRequest for CurrentUser { type Error = actix_web::Error; type Future = std::future::Ready<Result<Self, Self::Error>>;
/// #   fn from_request(_: &actix_web::HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future { std::future::ready(Ok(CurrentUser)) } }
/// use octany_actix::guard::RequireFeature;
///
/// #[derive(octany_actix::Feature)]
/// struct Exports;
///
/// async fn export(allowed: RequireFeature<CurrentUser, Exports>) -> &'static str {
///     "report.csv"
/// }
/// ```
pub struct RequireFeature<U, F: Feature> {
    /// The user, as the host's extractor gave it.
    pub user: U,
    feature: PhantomData<F>,
}

impl<U: std::fmt::Debug, F: Feature> std::fmt::Debug for RequireFeature<U, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequireFeature")
            .field("user", &self.user)
            .field("feature", &F::NAME)
            .finish()
    }
}

/// The feature guard's decision for a billable.
pub(crate) async fn check_feature(
    octany: &Octany,
    billable: &BillableRef,
    feature: &'static str,
) -> Result<(), Denial> {
    let now = Frozen(octany.clock().now());
    let state = octany.access_at(billable, now.0).await.map_err(|error| {
        tracing::error!(%error, "the guard could not read billing state; denying");
        Denial::Unavailable
    })?;
    // A plan granting access carries it, or a comp grants it.
    if octany.carries_feature(&state, &now, feature) {
        return Ok(());
    }
    // Not subscribed at all: the subscription guard's answer (pricing, or
    // "payment processing"); subscribed: the plan lacks it.
    super::check::<AnyPlan>(octany, billable).await?;
    Err(Denial::FeatureNotIncluded { feature })
}

impl<U, F> FromRequest for RequireFeature<U, F>
where
    U: Billable + FromRequest + 'static,
    F: Feature,
{
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let user = U::from_request(req, payload);
        let req = req.clone();
        Box::pin(async move {
            let decide = |octany: Octany, billable: BillableRef| async move {
                check_feature(&octany, &billable, F::NAME).await
            };
            let (user, _, ()) = super::admit::<U, _, _>(&req, user, decide).await?;
            Ok(Self {
                user,
                feature: PhantomData,
            })
        })
    }
}

/// Guards a scope: only users whose plans turn on `F` get through.
///
/// ```no_run
/// # #[derive(Clone)] struct CurrentUser;
/// # impl octany_actix::Billable for CurrentUser { fn billable_id(&self) -> String { "1".into() } }
/// # impl actix_web::FromRequest for CurrentUser { type Error = actix_web::Error; type Future = std::future::Ready<Result<Self, Self::Error>>;
/// #   fn from_request(_: &actix_web::HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future { std::future::ready(Ok(CurrentUser)) } }
/// use actix_web::{middleware::from_fn, web};
/// #[derive(octany_actix::Feature)]
/// struct Api;
/// let api = web::scope("/api").wrap(from_fn(octany_actix::guard::require_feature::<CurrentUser, Api, _>));
/// ```
pub async fn require_feature<U, F, B>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, Error>
where
    U: Billable + FromRequest + 'static,
    F: Feature,
    B: MessageBody + 'static,
{
    super::middleware::through(req, next, |_: RequireFeature<U, F>, _| {}).await
}
