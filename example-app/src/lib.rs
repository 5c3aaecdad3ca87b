//! The example app: a small SaaS on octany-actix, meant to be copied.
//!
//! With nothing configured it runs on a SQLite file and an in-process fake
//! Octany; with `OCTANY_ACCOUNT`, `OCTANY_API_KEY` and
//! `OCTANY_WEBHOOK_SECRET` it bills through real Octany.

pub mod auth;
pub mod billing;
pub mod cli;
pub mod csrf;
pub mod db;
pub mod pages;
pub mod settings;
pub mod user;

use std::net::TcpListener;
use std::time::Duration;

use actix_session::SessionMiddleware;
use actix_session::storage::CookieSessionStore;
use actix_web::cookie::SameSite;
use actix_web::dev::ServerHandle;
use actix_web::{App, HttpServer, web};
use octany_actix::Octany;
use octany_fake::FakeOctany;
use sea_orm::DatabaseConnection;

pub use settings::Settings;

/// What every handler shares.
#[derive(Debug)]
pub struct AppState {
    /// The database.
    pub db: DatabaseConnection,
    /// Billing.
    pub octany: Octany,
    /// The fake's control page, when running against it.
    pub fake_control: Option<String>,
}

/// A running app.
#[derive(Debug)]
pub struct Running {
    /// Where to open it.
    pub url: String,
    /// Its billing.
    pub octany: Octany,
    /// The in-process fake, when no account is configured.
    pub fake: Option<FakeOctany>,
    /// The database.
    pub db: DatabaseConnection,
    server: ServerHandle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    reconciler: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Serves until the server stops (Ctrl-C).
    pub async fn wait(self) -> std::io::Result<()> {
        let result = self
            .task
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        self.reconciler.abort();
        result
    }

    /// Stops the server, the reconciler and the fake.
    pub async fn stop(self) {
        self.server.stop(true).await;
        self.reconciler.abort();
        if let Some(fake) = self.fake {
            fake.stop().await;
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Connects, migrates, starts billing (or the fake), and serves.
pub async fn start(settings: Settings) -> Result<Running, BoxError> {
    let db = db::connect(&settings.database_url).await?;
    db::migrate(&db).await?;
    let listener = TcpListener::bind(&settings.bind)
        .map_err(|e| format!("cannot listen on {}: {e}", settings.bind))?;
    let addr = listener.local_addr()?;
    let host = if addr.ip().is_unspecified() {
        "127.0.0.1".to_owned()
    } else {
        addr.ip().to_string()
    };
    let url = settings
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{host}:{}", addr.port()))
        .trim_end_matches('/')
        .to_owned();
    let backend = billing::backend(settings.octany.clone()).await?;
    let octany = billing::octany(&backend, db.clone(), &url)?;
    if let Err(error) = octany.syncer().sync_products().await {
        tracing::warn!(%error, "could not load the catalog from Octany; the pricing page will be empty until it can");
    }
    billing::connect_fake(&backend, &url);
    let state = web::Data::new(AppState {
        db: db.clone(),
        octany: octany.clone(),
        fake_control: backend.fake.as_ref().map(FakeOctany::control_url),
    });
    let billing_data = web::Data::new(octany.clone());
    let key = settings.session_key.clone();
    let secure = url.starts_with("https://");
    let server = HttpServer::new(move || {
        App::new()
            .wrap(
                SessionMiddleware::builder(CookieSessionStore::default(), key.clone())
                    .cookie_name("example_session".into())
                    .cookie_http_only(true)
                    .cookie_same_site(SameSite::Lax)
                    .cookie_secure(secure)
                    .build(),
            )
            .wrap(tracing_actix_web::TracingLogger::default())
            .app_data(state.clone())
            .app_data(billing_data.clone())
            .configure(routes)
            .service(billing_data.scope::<user::Model>())
    })
    .listen(listener)?
    .run();
    let handle = server.handle();
    let task = tokio::spawn(server);
    let reconciler = octany.syncer().spawn_reconciler(Duration::from_secs(60));
    Ok(Running {
        url,
        octany,
        fake: backend.fake,
        db,
        server: handle,
        task,
        reconciler,
    })
}

/// The app's own routes (the billing routes are `Octany::scope`'s).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(pages::home))
        .route("/signup", web::get().to(auth::signup_form))
        .route("/signup", web::post().to(auth::signup))
        .route("/login", web::get().to(auth::login_form))
        .route("/login", web::post().to(auth::login))
        .route("/logout", web::post().to(auth::logout))
        .route("/pricing", web::get().to(pages::pricing))
        .route("/dashboard", web::get().to(pages::dashboard))
        .route("/account", web::get().to(pages::account))
        .route("/account/cancel", web::post().to(pages::cancel))
        .route("/account/swap", web::post().to(pages::swap))
        .route("/account/add-on", web::post().to(pages::add_on));
}
