//! The smallest complete app on octany-actix, to read in one sitting: one
//! user table, two plans, a guarded route, the mounted billing routes, the
//! background task, a listener, and the in-process fake Octany.
//! (Its sign-in takes any e-mail: put your own authentication there.)

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use actix_session::{Session, SessionExt, SessionMiddleware, storage::CookieSessionStore};
use actix_web::{App, FromRequest, HttpRequest, HttpResponse, HttpServer, dev::Payload, web};
use octany_actix::sync::{BillingEvent, ListenerName, Listeners};
use octany_actix::{Octany, Plan, RequireSubscription};
use octany_actix_migrations::MigratorTrait;
use octany_fake::FakeOctany;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    Set,
};

/// The users: a sea-orm entity that is the billable.
pub mod user {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, octany_actix::Billable)]
    #[sea_orm(table_name = "users")]
    #[billable(type = "user", id = "id", email = "email")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        #[sea_orm(unique)]
        pub email: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// What the app sells (ids of the fake's sample catalog).
#[derive(Plan, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plans {
    #[plan(product = 1225)]
    ProMonthly,
    #[plan(product = 1227)]
    Basic,
}

/// The signed-in user, found from the session (401 when there is none).
impl FromRequest for user::Model {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let id = req.get_session().get::<i64>("user_id").ok().flatten();
        let db = req.app_data::<web::Data<DatabaseConnection>>().cloned();
        Box::pin(async move {
            let (Some(id), Some(db)) = (id, db) else {
                return Err(actix_web::error::ErrorUnauthorized("sign in first"));
            };
            user::Entity::find_by_id(id)
                .one(db.get_ref())
                .await
                .map_err(actix_web::error::ErrorServiceUnavailable)?
                .ok_or_else(|| actix_web::error::ErrorUnauthorized("sign in first"))
        })
    }
}

/// The home and pricing page: sign in, then buy.
async fn home() -> HttpResponse {
    HttpResponse::Ok().content_type("text/html").body(
        r#"<form method="post" action="/login"><input name="email" placeholder="you@example.com"><button>Sign in</button></form>
<p><a href="/billing/checkout/pro-monthly">Pro, monthly</a> · <a href="/billing/checkout/basic">Basic</a>
 · <a href="/dashboard">Dashboard</a> · <a href="/billing/cancel?next=/">Cancel</a></p>"#,
    )
}

#[derive(serde::Deserialize)]
struct Login {
    email: String,
}

/// Signs in as `email`, making the user the first time (a demo: no password).
async fn login(
    db: web::Data<DatabaseConnection>,
    session: Session,
    form: web::Form<Login>,
) -> actix_web::Result<HttpResponse> {
    let unavailable = actix_web::error::ErrorServiceUnavailable;
    let users = user::Entity::find().filter(user::Column::Email.eq(&form.email));
    let user = match users.one(db.get_ref()).await.map_err(unavailable)? {
        Some(user) => user,
        None => user::ActiveModel { email: Set(form.email.clone()), ..Default::default() }
            .insert(db.get_ref())
            .await
            .map_err(unavailable)?,
    };
    session.renew();
    session.insert("user_id", user.id)?;
    Ok(HttpResponse::SeeOther().insert_header(("Location", "/")).finish())
}

/// Subscribers only: anyone else is sent to the pricing page (`/`).
async fn dashboard(paid: RequireSubscription<user::Model>) -> HttpResponse {
    HttpResponse::Ok().body(format!("Welcome, {}: you are subscribed.", paid.user.email))
}

/// The app's URL, the fake, and the server to await.
pub type Running = (String, FakeOctany, actix_web::dev::Server);

/// Starts the fake, the database, billing and the app on `bind`.
pub async fn start(bind: &str) -> Result<Running, Box<dyn std::error::Error + Send + Sync>> {
    let fake = FakeOctany::builder().sample_catalog().start().await?;
    let db = sea_orm::Database::connect("sqlite::memory:").await?;
    octany_actix_migrations::Migrator::up(&db, None).await?;
    let schema = sea_orm::Schema::new(db.get_database_backend());
    db.execute(&schema.create_table_from_entity(user::Entity)).await?;
    let listener = std::net::TcpListener::bind(bind)?;
    let url = format!("http://{}", listener.local_addr()?);
    fake.add_webhook_endpoint(
        &format!("{url}/billing/webhook"),
        Some("example-webhook-secret-0123456789"),
    );
    let listeners = Listeners::new().on(ListenerName::new("welcome"), |event| async move {
        if let BillingEvent::SubscriptionStarted { subscription } = &event.event {
            tracing::info!(billable = ?event.billable, plan = ?subscription.product_id(), "send a welcome e-mail here");
        }
        Ok(())
    });
    let octany = Octany::builder(fake.config(), db.clone())
        .public_base_url(&url)
        .pricing_path("/")
        .after_checkout_path("/dashboard")
        .plans::<Plans>()
        .listeners(listeners)
        .build()?;
    octany.spawn_background(Duration::from_secs(60));
    // Load it from your configuration (64 bytes): a generated key logs everyone out at a restart.
    let key = actix_web::cookie::Key::generate();
    let (billing, db) = (web::Data::new(octany), web::Data::new(db));
    let server = HttpServer::new(move || {
        App::new()
            .wrap(SessionMiddleware::new(CookieSessionStore::default(), key.clone()))
            .app_data(billing.clone())
            .app_data(db.clone())
            .service(billing.scope::<user::Model>())
            .route("/", web::get().to(home))
            .route("/login", web::post().to(login))
            .route("/dashboard", web::get().to(dashboard))
    })
    // A closed tab ends its request (and its place in the queue for Octany).
    .h1_allow_half_closed(false)
    .listen(listener)?
    .run();
    Ok((url, fake, server))
}
