//! Guarding routes by paying status.
//!
//! [`RequireSubscription`] is the API: an extractor that composes with the
//! host's own user extractor (`U: Billable + FromRequest`), so the library
//! never reads sessions and the host's 401 passes through untouched.
//! [`require_subscription`] and [`require_plan`] guard a whole scope with
//! `actix_web::middleware::from_fn`. [`RequireFeature`] and
//! [`require_feature`] do the same for a feature of the billable's plans. The guard reads only the local mirror
//! (through a short cache); a database failure denies (503), never admits.

mod feature;
mod middleware;

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::error::InternalError;
use actix_web::{FromRequest, HttpRequest};

use crate::domain::clock::Frozen;
use crate::domain::model::{BillableRef, SubscriptionStatus};
use crate::domain::plan::{AnyPlan, Plan, PlanSet};
pub use crate::mirror::access::Grant;
use crate::mirror::rows::SubscriptionRow;
use crate::web::billable::Billable;
use crate::web::error::BillingError;
use crate::web::octany::Octany;

pub use feature::{RequireFeature, require_feature};
pub use middleware::{require_plan, require_subscription};

pub use crate::web::error::Denial;

/// A user (`U`) with access to a plan of `P` (any plan by default), and the
/// subscription that grants it.
///
/// The guard decides on a narrow read (id, plan, status, dates); the whole
/// row (price, portal links, Octany's JSON) is read when a handler asks for
/// it with [`subscription`](RequireSubscription::subscription), once.
///
/// ```no_run
/// # #[derive(Clone)] struct CurrentUser;
/// # impl octany_actix::Billable for CurrentUser { fn billable_id(&self) -> String { "1".into() } }
/// # impl actix_web::FromRequest for CurrentUser { type Error = actix_web::Error; type Future = std::future::Ready<Result<Self, Self::Error>>;
/// #   fn from_request(_: &actix_web::HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future { std::future::ready(Ok(CurrentUser)) } }
/// use octany_actix::{BillingError, Plan, RequireSubscription};
///
/// #[derive(Plan, Clone, Copy, Debug, PartialEq, Eq)]
/// enum Pro {
///     #[plan(product = 1225)]
///     Monthly,
/// }
///
/// async fn dashboard(paid: RequireSubscription<CurrentUser>) -> Result<String, BillingError> {
///     Ok(format!("plan {:?}", paid.subscription().await?.product_name))
/// }
///
/// async fn reports(pro: RequireSubscription<CurrentUser, Pro>) -> String {
///     format!("{:?} ({})", pro.plan(), pro.status())
/// }
/// ```
pub struct RequireSubscription<U, P = AnyPlan> {
    /// The user, as the host's extractor gave it.
    pub user: U,
    grant: Arc<Grant>,
    octany: Octany,
    full: tokio::sync::OnceCell<Arc<SubscriptionRow>>,
    plan: PhantomData<P>,
}

impl<U, P: Plan> RequireSubscription<U, P> {
    /// The plan the subscription is on.
    pub fn plan(&self) -> P {
        self.grant
            .product_id
            .and_then(P::from_product)
            .expect("the guard admitted only subscriptions to a plan of P")
    }
}

impl<U, P> RequireSubscription<U, P> {
    /// What the guard decided on: the granting subscription's id, plan,
    /// status and dates (no database read).
    pub fn grant(&self) -> &Grant {
        &self.grant
    }

    /// The granting subscription's status (no database read).
    pub fn status(&self) -> &SubscriptionStatus {
        &self.grant.status
    }

    /// The granting subscription's whole row, read from the database the
    /// first time it is asked for. Access granted by a comp alone
    /// ([`Grant::comp`]) has no Octany subscription:
    /// [`BillingError::NoSubscription`].
    pub async fn subscription(&self) -> Result<Arc<SubscriptionRow>, BillingError> {
        self.full
            .get_or_try_init(|| async {
                self.octany
                    .mirror()
                    .subscription(&self.grant.id)
                    .await?
                    .map(Arc::new)
                    .ok_or(BillingError::NoSubscription)
            })
            .await
            .cloned()
    }
}

impl<U: std::fmt::Debug, P> std::fmt::Debug for RequireSubscription<U, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequireSubscription")
            .field("user", &self.user)
            .field("subscription", &self.grant.id)
            .finish()
    }
}

/// The guard's decision for a billable, shared by the extractor and the
/// middleware.
pub(crate) async fn check<P: PlanSet>(
    octany: &Octany,
    billable: &BillableRef,
) -> Result<Arc<Grant>, Denial> {
    // One reading of the clock: the cache and every rule decide at it.
    let now = Frozen(octany.clock().now());
    let state = octany.access_at(billable, now.0).await.map_err(|error| {
        tracing::error!(%error, "the guard could not read billing state; denying");
        Denial::Unavailable
    })?;
    let settings = octany.settings();
    if let Some(granting) = state.granting::<P>(&now, settings.policy) {
        return Ok(granting.clone());
    }
    // Refused: is a payment on its way? (Asked only now, not on every grant,
    // and boxed, so that a grant's future stays small.)
    let pending = Box::pin(octany.mirror().payment_pending(
        &state,
        billable.as_str(),
        &now,
        settings.policy,
    ))
    .await
    .map_err(|error| {
        tracing::error!(%error, "the guard could not read billing state; denying");
        Denial::Unavailable
    })?;
    Err(if pending {
        Denial::PaymentProcessing
    } else {
        Denial::NotSubscribed
    })
}

/// The host's user (`user`, its extractor's future) and the registered
/// `Octany` of `req`, and `decide`'s answer for the user's billable; a
/// refusal is the `Octany`'s rejection, shared by every guard extractor.
pub(crate) async fn admit<U, T, Fut>(
    req: &HttpRequest,
    user: U::Future,
    decide: impl FnOnce(Octany, BillableRef) -> Fut,
) -> Result<(U, Octany, T), actix_web::Error>
where
    U: Billable + FromRequest,
    Fut: Future<Output = Result<T, Denial>>,
{
    let user = user.await.map_err(Into::into)?;
    let octany = Octany::from_request(req)?;
    match decide(octany.clone(), user.billable_ref()).await {
        Ok(admitted) => Ok((user, octany, admitted)),
        Err(denial) => {
            let response = octany.reject(req, &denial);
            Err(InternalError::from_response(denial, response).into())
        }
    }
}

impl<U, P> FromRequest for RequireSubscription<U, P>
where
    U: Billable + FromRequest + 'static,
    P: PlanSet,
{
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let user = U::from_request(req, payload);
        let req = req.clone();
        Box::pin(async move {
            let decide = |octany: Octany, billable: BillableRef| async move {
                check::<P>(&octany, &billable).await
            };
            let (user, octany, grant) = admit::<U, _, _>(&req, user, decide).await?;
            Ok(Self {
                user,
                grant,
                octany,
                full: tokio::sync::OnceCell::new(),
                plan: PhantomData,
            })
        })
    }
}
