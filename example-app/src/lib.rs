//! The example app: a small SaaS on octany-actix, meant to be copied.
//!
//! With nothing configured it runs on a SQLite file and an in-process fake
//! Octany; with `OCTANY_ACCOUNT`, `OCTANY_API_KEY` and
//! `OCTANY_WEBHOOK_SECRET` it bills through real Octany.

pub mod admin;
pub mod auth;
pub mod billing;
pub mod cli;
pub mod csrf;
pub mod db;
pub mod errors;
pub mod features;
pub mod mail;
pub mod pages;
pub mod passwords;
pub mod sessions;
pub mod settings;
pub mod signup;
pub mod team;
pub mod teams;
pub mod telemetry;
pub mod throttle;
pub mod tokens;
pub mod user;
pub mod validate;

use std::net::TcpListener;
use std::time::Duration;

use actix_session::SessionMiddleware;
use actix_session::config::PersistentSession;
use actix_web::cookie::SameSite;
use actix_web::dev::ServerHandle;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use octany_actix::Octany;
use octany_actix::clock::SharedClock;
use octany_fake::FakeOctany;
use sea_orm::DatabaseConnection;

pub use settings::Settings;

/// What every handler shares.
#[derive(Debug)]
pub struct AppState {
    /// The database.
    pub db: DatabaseConnection,
    /// Billing of users (at `/billing`).
    pub octany: Octany,
    /// Billing of teams (at `/team/billing`): the same client and mirror.
    pub teams: Octany,
    /// The fake's control page, when running against it.
    pub fake_control: Option<String>,
    /// Where the customer's e-mails are caught (development): `/dev/mail`.
    pub caught_mail: Option<std::path::PathBuf>,
    /// The app's own time (sessions, throttling): the system's.
    pub clock: SharedClock,
    /// Password hashing off the request workers.
    pub passwords: passwords::Passwords,
    /// Login and sign-up limits.
    pub limits: throttle::Limits,
    /// Whether to believe the proxy's `X-Forwarded-For` for client addresses.
    pub trust_proxy_headers: bool,
    /// The app's public address (invitation links are built from it).
    pub public_url: String,
    /// What `/metrics` asks of clients not on this machine (`METRICS_TOKEN`;
    /// a `Secret`, so that the state's `Debug` does not print it).
    pub metrics_token: Option<octany_actix::config::Secret>,
    /// The app's own mails (sign-up links).
    pub mail: signup::AccountMail,
    /// Seals what the session row must not hold in the clear (an
    /// invitation link between its making and its showing).
    pub sealing: teams::invites::SealingKey,
    /// Who may open the billing console (`ADMIN_EMAIL`; without it, against
    /// the fake, the first account): `admin::Admin`.
    pub admin_email: Option<String>,
}

/// How long a session lasts after its last change (a login renews it).
pub const SESSION_TTL: actix_web::cookie::time::Duration =
    actix_web::cookie::time::Duration::days(7);

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
    maintenance: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Serves until the server stops (Ctrl-C).
    pub async fn wait(self) -> std::io::Result<()> {
        let result = self
            .task
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        self.reconciler.abort();
        self.maintenance.abort();
        result
    }

    /// Stops the server, the reconciler and the fake.
    pub async fn stop(self) {
        self.server.stop(true).await;
        self.reconciler.abort();
        self.maintenance.abort();
        if let Some(fake) = self.fake {
            fake.stop().await;
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Connects, migrates, starts billing (or the fake), and serves.
pub async fn start(settings: Settings) -> Result<Running, BoxError> {
    let db = db::connect(&settings.database_url).await?;
    start_on(settings, db).await
}

/// [`start`] on a database already connected (`settings.database_url` is
/// not used).
pub async fn start_on(settings: Settings, db: DatabaseConnection) -> Result<Running, BoxError> {
    // First, so that every metric from here on is recorded.
    let metrics = telemetry::handle();
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
    let octany = billing::octany(&backend, db.clone(), &url, &settings)?;
    if let Err(error) = octany.sync_products().await {
        tracing::warn!(%error, "could not load the catalog from Octany; the pricing page will be empty until it can");
    }
    billing::connect_fake(&backend, &url);
    if backend.fake.is_none() && settings.admin_email.is_none() {
        tracing::warn!(
            "ADMIN_EMAIL is not set: the billing console at /admin/billing admits no one"
        );
    }
    let teams = teams::mount(&octany);
    let state = web::Data::new(AppState {
        db: db.clone(),
        octany: octany.clone(),
        teams: teams.clone(),
        fake_control: backend.fake.as_ref().map(FakeOctany::control_url),
        caught_mail: billing::caught_mail(&backend, &settings),
        clock: settings.clock.clone(),
        passwords: settings.passwords.clone(),
        limits: settings.limits,
        trust_proxy_headers: settings.trust_proxy_headers,
        public_url: url.clone(),
        sealing: teams::invites::SealingKey::derive_from(&settings.session_key),
        admin_email: settings.admin_email.clone(),
        mail: signup::AccountMail::new(billing::account_mailer(&backend, &settings)?),
        metrics_token: settings
            .metrics_token
            .clone()
            .map(octany_actix::config::Secret::new),
    });
    let billing_data = web::Data::new(octany.clone());
    let store = sessions::DbSessionStore::new(db.clone(), settings.clock.clone());
    let key = settings.session_key.clone();
    let secure = url.starts_with("https://");
    let server = HttpServer::new(move || {
        App::new()
            .wrap(
                SessionMiddleware::builder(store.clone(), key.clone())
                    .cookie_name(
                        if secure {
                            "__Host-session"
                        } else {
                            "example_session"
                        }
                        .into(),
                    )
                    .cookie_http_only(true)
                    .cookie_same_site(SameSite::Lax)
                    .cookie_secure(secure)
                    .session_lifecycle(PersistentSession::default().session_ttl(SESSION_TTL))
                    .build(),
            )
            .wrap(from_fn(errors::error_pages))
            .wrap(errors::hardening_headers(secure))
            .wrap(tracing_actix_web::TracingLogger::default())
            .app_data(state.clone())
            .app_data(billing_data.clone())
            .configure(routes)
            .service(billing_data.scope::<user::Model>())
            // Support's console, for the admin only (`admin::Admin`).
            .service(billing_data.console::<admin::Admin>("/admin/billing"))
            .configure(|cfg| teams::routes(cfg, &teams))
    })
    // A client that closes its connection ends its request: a closed tab
    // waiting for Octany frees its place at once (actix's default keeps
    // the handler running).
    .h1_allow_half_closed(false)
    .listen(listener)?
    .run();
    let handle = server.handle();
    let task = tokio::spawn(server);
    let reconciler = octany.spawn_background(Duration::from_secs(60));
    let maintenance = tokio::spawn(maintain(
        db.clone(),
        settings.clock.clone(),
        settings.limits,
        metrics,
    ));
    Ok(Running {
        url,
        octany,
        fake: backend.fake,
        db,
        server: handle,
        task,
        reconciler,
        maintenance,
    })
}

/// Every minute: expired sessions and sign-up links and old login attempts
/// are deleted, and
/// the metrics' histograms are compacted.
async fn maintain(
    db: DatabaseConnection,
    clock: SharedClock,
    limits: throttle::Limits,
    metrics: metrics_exporter_prometheus::PrometheusHandle,
) {
    let mut every = tokio::time::interval(Duration::from_secs(60));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        match sessions::prune(&db, &clock).await {
            Ok(n) if n > 0 => tracing::debug!(sessions = n, "expired sessions deleted"),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "could not delete expired sessions"),
        }
        if let Err(error) = signup::prune(&db, &clock).await {
            tracing::warn!(%error, "could not delete expired sign-up links");
        }
        if let Err(error) = throttle::prune(&db, &clock, limits.window).await {
            tracing::warn!(%error, "could not delete old login attempts");
        }
        metrics.run_upkeep();
    }
}

/// The app's own routes (the billing routes are `Octany::scope`'s).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(pages::home))
        .route("/signup", web::get().to(signup::form))
        .route("/signup", web::post().to(signup::submit))
        .route("/signup/sent", web::get().to(signup::sent))
        .route(
            "/signup/confirm/{token}",
            web::get().to(signup::confirm_form),
        )
        .route("/signup/confirm/{token}", web::post().to(signup::confirm))
        .route("/login", web::get().to(auth::login_form))
        .route("/login", web::post().to(auth::login))
        .route("/logout", web::post().to(auth::logout))
        .route("/pricing", web::get().to(pages::pricing))
        .route("/dashboard", web::get().to(pages::dashboard))
        .route("/account", web::get().to(pages::account))
        .route("/reports", web::get().to(features::reports))
        .route("/api/ping", web::get().to(features::ping))
        .route("/account/swap", web::post().to(pages::swap))
        .route("/account/add-on", web::post().to(pages::add_on))
        .route("/account/password", web::post().to(auth::change_password))
        .route("/metrics", web::get().to(telemetry::metrics))
        .route("/dev/mail", web::get().to(mail::list))
        .route("/dev/mail/{name}", web::get().to(mail::show));
}
