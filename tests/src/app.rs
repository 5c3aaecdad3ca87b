//! A host app for tests: a user extractor, typed plans, guarded routes, and
//! the billing routes, wired to a fake Octany.

use std::future::{Ready, ready};
use std::time::Duration;

use actix_web::middleware::from_fn;
use actix_web::{FromRequest, HttpRequest, HttpResponse, dev::Payload, web};
use octany_actix::guard::RequireFeature;
use octany_actix::sync::Listeners;
use octany_actix::{Billable, Feature, Limit, Octany, Plan, RequireSubscription};
use octany_fake::FakeOctany;

use crate::TestDb;

/// The host's user, found from the `X-User` header (its id) as a session
/// would find it. Derives `Billable` like a sea-orm model would.
#[derive(Debug, Clone, PartialEq, Eq, Billable)]
#[billable(type = "user", id = "id", email = "email", name = "name")]
pub struct TestUser {
    /// Its id.
    pub id: i64,
    /// Its e-mail.
    pub email: String,
    /// Its name.
    pub name: Option<String>,
}

impl TestUser {
    /// User number `id`.
    pub fn new(id: i64) -> Self {
        Self {
            id,
            email: format!("user{id}@example.com"),
            name: Some(format!("User {id}")),
        }
    }
}

impl FromRequest for TestUser {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let id = req
            .headers()
            .get("X-User")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        ready(match id {
            Some(id) => Ok(TestUser::new(id)),
            None => Err(actix_web::error::InternalError::from_response(
                "login required",
                HttpResponse::Unauthorized()
                    .json(serde_json::json!({"error": "login required by the host"})),
            )
            .into()),
        })
    }
}

/// Exporting reports: Pro only.
#[derive(Debug, Feature)]
pub struct Exports;

/// The API: Pro only.
#[derive(Debug, Feature)]
pub struct Api;

/// Team members: one without a plan, six on Basic, any number on Pro.
#[derive(Debug, Limit)]
#[octany(free = 1)]
pub struct Seats;

/// Projects: 20 on Basic, 100 on Pro.
#[derive(Debug, Limit)]
pub struct Projects;

/// The plans the app sells.
#[derive(Plan, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plans {
    /// Pro, monthly (14-day trial in the fake's catalog).
    #[plan(product = 1225, features(Exports, Api), limits(Seats = unlimited, Projects = 100))]
    ProMonthly,
    /// Pro, yearly.
    #[plan(product = 1226, features(Exports, Api), limits(Seats = unlimited, Projects = 100))]
    ProYearly,
    /// Basic, monthly.
    #[plan(product = 1227, limits(Seats = 6, Projects = 20))]
    Basic,
}

/// The Pro plans only.
#[derive(Plan, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pro {
    /// Monthly.
    #[plan(product = 1225)]
    Monthly,
    /// Yearly.
    #[plan(product = 1226)]
    Yearly,
}

/// The one-off products the app sells at checkout.
#[derive(Plan, Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddOns {
    /// Extra seats (a one-off product in the fake's catalog).
    #[plan(product = 1400)]
    ExtraSeats,
}

/// Builds the app's `Octany` against `fake`, mirroring into `db`.
pub fn octany(db: &TestDb, fake: &FakeOctany, cache_ttl: Duration) -> Octany {
    octany_with(db, fake, cache_ttl, Listeners::new())
}

/// [`octany`] with billing-event listeners.
pub fn octany_with(
    db: &TestDb,
    fake: &FakeOctany,
    cache_ttl: Duration,
    listeners: Listeners,
) -> Octany {
    builder(db, fake, cache_ttl)
        .listeners(listeners)
        .build()
        .expect("the app's billing builds")
}

/// The app's `Octany` builder, for tests that configure more.
pub fn builder(db: &TestDb, fake: &FakeOctany, cache_ttl: Duration) -> octany_actix::OctanyBuilder {
    Octany::builder(
        fake.config().with_webhook_secret(crate::harness::SECRET),
        db.conn.clone(),
    )
    .public_base_url("http://localhost:8080")
    .pricing_path("/pricing")
    .after_checkout_path("/dashboard")
    .plans::<Plans>()
    .one_off_products::<AddOns>()
    .clock(fake.app_clock())
    .cache_ttl(cache_ttl)
}

async fn dashboard(paid: RequireSubscription<TestUser>) -> HttpResponse {
    HttpResponse::Ok()
        .json(serde_json::json!({"user": paid.user.id, "subscription": paid.grant().id}))
}

async fn reports(pro: RequireSubscription<TestUser, Pro>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"plan": format!("{:?}", pro.plan())}))
}

async fn exports(allowed: RequireFeature<TestUser, Exports>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"export": allowed.user.id}))
}

async fn scoped(granted: web::ReqData<std::sync::Arc<octany_actix::guard::Grant>>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"subscription": granted.id}))
}

/// The app's routes: `/dashboard` (extractor), `/reports` (Pro only),
/// `/exports` (the `Exports` feature), `/api/calls` (a scope behind the
/// `Api` feature), `/app/area` (a scope behind the middleware), and the billing routes that
/// `octany` mounts (`/billing/*`).
pub fn configure(octany: &Octany) -> impl Fn(&mut web::ServiceConfig) + Clone + use<> {
    let octany = octany.clone();
    move |cfg| routes(cfg, &octany)
}

fn routes(cfg: &mut web::ServiceConfig, octany: &Octany) {
    cfg.route("/dashboard", web::get().to(dashboard))
        .route("/reports", web::get().to(reports))
        .route("/exports", web::get().to(exports))
        .service(
            web::scope("/api")
                .wrap(from_fn(
                    octany_actix::guard::require_feature::<TestUser, Api, _>,
                ))
                .route(
                    "/calls",
                    web::get().to(|| async { HttpResponse::Ok().json("called") }),
                ),
        )
        .service(
            web::scope("/app")
                .wrap(from_fn(
                    octany_actix::guard::require_subscription::<TestUser, _>,
                ))
                .route("/area", web::get().to(scoped)),
        )
        .service(octany.scope::<TestUser>());
}
