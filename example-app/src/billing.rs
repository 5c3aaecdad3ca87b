//! What the app sells, and its octany-actix wiring (real Octany, or the
//! in-process fake with its webhooks pointed at the app).

use octany_actix::model::{AccessPolicy, ProductId};
use octany_actix::notices::{FileMailer, Mailer, SmtpMailer};
use octany_actix::sync::{BillingEvent, Listeners};
use octany_actix::{Feature, Limit, Meter, Octany, OctanyConfig, Plan};
use octany_fake::FakeOctany;
use rand::{TryRngCore, rngs::OsRng};
use sea_orm::DatabaseConnection;

use crate::settings::Settings;

/// Reports: a page only Pro opens (`/reports`).
#[derive(Debug, Feature)]
pub struct Reports;

/// A team's seats: its members and open invitations. One without a plan,
/// five on Basic, any number on Pro.
#[derive(Debug, Limit)]
#[octany(free = 1)]
pub struct Seats;

/// API calls (`GET /api/ping`), billed in arrears: 2 öre each, VAT
/// excluded, as an order of the fake's "API usage" product at each renewal.
#[derive(Debug)]
pub struct ApiCalls;

impl Meter for ApiCalls {
    const NAME: &'static str = "api_calls";
    const PRODUCT: ProductId = ProductId(1401);
    const UNIT_PRICE: i64 = 2;
}

/// The plans of the pricing page, and what each carries.
#[derive(Plan, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plans {
    /// Pro, monthly, with a 14-day trial.
    #[plan(product = 1225, features(Reports), limits(Seats = unlimited))]
    ProMonthly,
    /// Pro, yearly.
    #[plan(product = 1226, features(Reports), limits(Seats = unlimited))]
    ProYearly,
    /// Basic, monthly.
    #[plan(product = 1227, limits(Seats = 5))]
    Basic,
}

/// One-off products: sold at hosted checkout (`/billing/checkout/extra-seats`)
/// and charged on a subscriber's card from the account page.
#[derive(Plan, Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddOns {
    /// Extra seats.
    #[plan(product = 1400)]
    ExtraSeats,
}

/// The one-off add-on sold on the account page.
pub const ADD_ON: ProductId = ProductId(1400);

/// Where Octany comes from.
#[derive(Debug)]
pub struct Backend {
    /// The account's configuration.
    pub config: OctanyConfig,
    /// The in-process fake, when no account is configured.
    pub fake: Option<FakeOctany>,
}

/// The real account, or a fake started in-process (listening on a port of
/// its own) whose webhooks will go to `public_url`.
pub async fn backend(real: Option<OctanyConfig>) -> std::io::Result<Backend> {
    if let Some(config) = real {
        return Ok(Backend { config, fake: None });
    }
    let fake = FakeOctany::builder()
        .sample_catalog()
        .starting_at(chrono::Utc::now())
        .start()
        .await?;
    let mut secret = [0u8; 16];
    OsRng
        .try_fill_bytes(&mut secret)
        .expect("the OS has randomness");
    let config = fake.config().with_webhook_secret(hex::encode(secret));
    Ok(Backend {
        config,
        fake: Some(fake),
    })
}

/// Points the fake's webhooks at the app, once its address is known.
pub fn connect_fake(backend: &Backend, public_url: &str) {
    if let Some(fake) = &backend.fake {
        let secret = backend
            .config
            .webhook_secrets()
            .last()
            .expect("a secret was made")
            .expose()
            .to_owned();
        fake.add_webhook_endpoint(&format!("{public_url}/billing/webhook"), Some(&secret));
    }
}

/// Where the customer's e-mails are caught in development (no
/// `SMTP_URL`, against the fake): `/dev/mail` lists them.
pub fn caught_mail(backend: &Backend, settings: &Settings) -> Option<std::path::PathBuf> {
    (settings.smtp_url.is_none() && backend.fake.is_some()).then(|| settings.data_dir.join("mail"))
}

/// The notices' mailer: SMTP when configured, else caught in the data
/// directory against the fake; none against Octany without SMTP.
fn mailer(
    backend: &Backend,
    settings: &Settings,
) -> Result<Option<Box<dyn Mailer>>, octany_actix::notices::MailError> {
    if let Some(url) = &settings.smtp_url {
        return Ok(Some(Box::new(SmtpMailer::new(url, &settings.mail_from)?)));
    }
    match caught_mail(backend, settings) {
        Some(dir) => Ok(Some(Box::new(FileMailer::new(dir, &settings.mail_from)?))),
        None => Ok(None),
    }
}

/// The app's own mails (sign-up links): as the notices' when there is a
/// mailer for them; against Octany with no `SMTP_URL`, written into
/// `DATA_DIR/unsent-mail` for an operator to read (and said at start).
pub fn account_mailer(
    backend: &Backend,
    settings: &Settings,
) -> Result<Box<dyn Mailer>, octany_actix::notices::MailError> {
    if let Some(mailer) = mailer(backend, settings)? {
        return Ok(mailer);
    }
    let dir = settings.data_dir.join("unsent-mail");
    tracing::warn!(dir = %dir.display(), "SMTP_URL is not set: sign-up links are written here, not sent");
    Ok(Box::new(FileMailer::new(dir, &settings.mail_from)?))
}

/// The starter's billing listener (it logs what happened).
const LOG: octany_actix::sync::ListenerName = octany_actix::sync::ListenerName::new("log");

/// The app's billing.
pub fn octany(
    backend: &Backend,
    db: DatabaseConnection,
    public_url: &str,
    settings: &Settings,
) -> Result<Octany, octany_actix::config::ConfigError> {
    let listeners = Listeners::new().on(LOG, |event| async move {
        match &event.event {
            BillingEvent::SubscriptionStarted { subscription } => {
                tracing::info!(subscription = %subscription.id, billable = ?event.billable, "a subscription started (send a welcome e-mail here)");
            }
            BillingEvent::SubscriptionCancelled { subscription } => {
                tracing::info!(subscription = %subscription.id, ends_at = ?subscription.ends_at, "a subscription was cancelled");
            }
            other => tracing::info!(kind = other.kind(), billable = ?event.billable, "billing event"),
        }
        Ok(())
    });
    let mut builder = Octany::builder(backend.config.clone(), db)
        .public_base_url(public_url)
        .pricing_path("/pricing")
        .after_checkout_path("/dashboard")
        .plans::<Plans>()
        .one_off_products::<AddOns>()
        // The success page waits on a held stream of the status.
        .status_stream(settings.status_stream)
        // API calls are billed at each renewal, once per period.
        .meter::<ApiCalls>()
        // Swedish businesses pay by invoice: access while it is not yet due.
        // A failed renewal keeps access while Octany retries it (1, 3 and 5
        // days), with a banner on the dashboard asking for a new card.
        .access_policy(AccessPolicy {
            invoice_grants_access: true,
            delayed_keeps_access: true,
            ..AccessPolicy::default()
        })
        .listeners(listeners);
    if let Some(seller) = settings.seller.clone() {
        builder = builder.seller(seller);
    }
    match mailer(backend, settings) {
        Ok(Some(mailer)) => builder = builder.notices(mailer, octany_actix::config::Locale::En),
        Ok(None) => {
            tracing::warn!("SMTP_URL is not set: no receipts or payment notices are mailed")
        }
        Err(error) => tracing::error!(%error, "the mailer cannot be built: no notices are mailed"),
    }
    if let Some(fake) = &backend.fake {
        // The app reads the fake's virtual time, so its clock buttons move both.
        builder = builder.clock(fake.app_clock());
    }
    builder.build()
}
