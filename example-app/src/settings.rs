//! The app's configuration, from the environment, with development defaults.

use std::path::PathBuf;

use std::sync::Arc;

use actix_web::cookie::Key;
use octany_actix::OctanyConfig;
use octany_actix::clock::{SharedClock, SystemClock};

use crate::passwords::Passwords;
use crate::throttle::Limits;

/// The shortest webhook secret accepted (Octany's secrets are 32 characters).
pub const WEBHOOK_SECRET_MIN: usize = 32;

/// Everything the app needs to run.
pub struct Settings {
    /// Where the app listens (`--bind`, default 127.0.0.1:8080; port 0 picks one).
    pub bind: String,
    /// The public address (`PUBLIC_URL`); by default `http://{bind}`.
    pub public_url: Option<String>,
    /// `DATABASE_URL`; by default a SQLite file in the data directory.
    pub database_url: String,
    /// Where development state lives (`EXAMPLE_DATA_DIR`).
    pub data_dir: PathBuf,
    /// Octany, or `None` to run against the in-process fake.
    pub octany: Option<OctanyConfig>,
    /// The session cookie's signing and encryption key.
    pub session_key: Key,
    /// Login and sign-up limits.
    pub limits: Limits,
    /// Believe `X-Forwarded-For` for the client's address
    /// (`TRUST_PROXY_HEADERS=1`; only behind a proxy that sets it).
    pub trust_proxy_headers: bool,
    /// The app's own clock (sessions, throttling).
    pub clock: SharedClock,
    /// Password hashing (at most half the cores at once).
    pub passwords: Passwords,
    /// The bearer token `/metrics` asks of clients not on this machine
    /// (`METRICS_TOKEN`; without it only local clients are answered).
    pub metrics_token: Option<String>,
    /// Whether the success page holds the status open as a stream and
    /// leaves the moment the payment settles (`STATUS_STREAM=off` turns it
    /// off: the page polls every 2.5 s, as before).
    pub status_stream: bool,
    /// Who sells, printed on receipts: `SELLER_NAME`, `SELLER_ORG_NUMBER`,
    /// `SELLER_VAT_NUMBER`, `SELLER_ADDRESS` (lines joined by `|`) and
    /// `SELLER_EMAIL`; against the fake a demo company when unset; against
    /// Octany no receipts until they are set.
    pub seller: Option<octany_actix::receipt::Seller>,
    /// Where the customer's e-mails go (`SMTP_URL`, lettre's form, e.g.
    /// `smtps://user:password@smtp.example.com`); without it, against the
    /// fake, they are caught in the data directory and shown at
    /// `/dev/mail`; against Octany, none are sent.
    pub smtp_url: Option<String>,
    /// Who they are from (`MAIL_FROM`).
    pub mail_from: String,
    /// The account that may open the billing console at `/admin/billing`
    /// (`ADMIN_EMAIL`); without it, against the fake, the first account
    /// made, and against Octany no one.
    pub admin_email: Option<String>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("bind", &self.bind)
            .field("public_url", &self.public_url)
            .field("database", &self.database_url.split('@').next_back())
            .field("data_dir", &self.data_dir)
            .field("octany", &self.octany)
            .field("limits", &self.limits)
            .field("trust_proxy_headers", &self.trust_proxy_headers)
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// Reads the environment: `OCTANY_ACCOUNT`, `OCTANY_API_KEY` and
    /// `OCTANY_WEBHOOK_SECRET` switch to real Octany (the secret is then
    /// required, at least 32 characters); `DATABASE_URL`, `PUBLIC_URL`,
    /// `SESSION_KEY` (hex, at least 64 random bytes; generated and kept in the
    /// data directory for development), `TRUST_PROXY_HEADERS`, the throttle's
    /// `LOGIN_LIMIT_PER_ACCOUNT`, `LOGIN_LIMIT_PER_ADDRESS` and
    /// `SIGNUP_LIMIT_PER_ADDRESS`, `METRICS_TOKEN`, `EXAMPLE_DATA_DIR`,
    /// `STATUS_STREAM`, the seller's `SELLER_*`, `SMTP_URL`, `MAIL_FROM`,
    /// `ADMIN_EMAIL`.
    pub fn from_env(bind: Option<String>) -> Result<Self, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let data_dir = var("EXAMPLE_DATA_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/data")));
        std::fs::create_dir_all(&data_dir).map_err(|e| {
            format!(
                "cannot create the data directory {}: {e}",
                data_dir.display()
            )
        })?;
        let octany = match var("OCTANY_ACCOUNT") {
            Some(_) => {
                let config = OctanyConfig::from_env().map_err(|e| e.to_string())?;
                check_webhook_secrets(&config)?;
                Some(config)
            }
            None => None,
        };
        let live = octany.is_some();
        let session_key = match var("SESSION_KEY") {
            Some(hex) => {
                let bytes = hex::decode(hex.trim())
                    .map_err(|_| format!("SESSION_KEY must be hex: {MAKE_KEY}"))?;
                session_key(&bytes)?
            }
            None if octany.is_some() => {
                return Err("SESSION_KEY is not set: generate one with `openssl rand -hex 64` (sessions would not survive a restart otherwise)".into());
            }
            None => development_key(&data_dir)?,
        };
        Ok(Self {
            bind: bind
                .or_else(|| var("BIND"))
                .unwrap_or_else(|| "127.0.0.1:8080".into()),
            public_url: var("PUBLIC_URL"),
            database_url: var("DATABASE_URL")
                .unwrap_or_else(|| format!("sqlite://{}/example.db?mode=rwc", data_dir.display())),
            data_dir,
            octany,
            session_key,
            limits: limits(&var)?,
            trust_proxy_headers: var("TRUST_PROXY_HEADERS")
                .is_some_and(|v| v == "1" || v == "true"),
            clock: Arc::new(SystemClock),
            passwords: Passwords::for_this_machine(),
            metrics_token: var("METRICS_TOKEN"),
            status_stream: var("STATUS_STREAM").is_none_or(|v| v != "off"),
            seller: match var("SELLER_NAME") {
                Some(name) => Some(seller_from(&var, name)?),
                None if live => None,
                None => Some(demo_seller()),
            },
            smtp_url: var("SMTP_URL"),
            mail_from: var("MAIL_FROM").unwrap_or_else(|| DEFAULT_FROM.into()),
            admin_email: var("ADMIN_EMAIL"),
        })
    }

    /// Development settings in `data_dir`: a SQLite file there, the
    /// in-process fake Octany, a fresh session key, port 0 (tests use this).
    pub fn development(data_dir: &std::path::Path) -> Self {
        Self {
            bind: "127.0.0.1:0".into(),
            public_url: None,
            database_url: format!("sqlite://{}/app.db?mode=rwc", data_dir.display()),
            data_dir: data_dir.to_owned(),
            octany: None,
            session_key: Key::generate(),
            limits: Limits::default(),
            trust_proxy_headers: false,
            clock: Arc::new(SystemClock),
            passwords: Passwords::for_this_machine(),
            metrics_token: None,
            status_stream: true,
            seller: Some(demo_seller()),
            smtp_url: None,
            mail_from: DEFAULT_FROM.into(),
            admin_email: None,
        }
    }
}

/// The seller named by the environment (`SELLER_*`); each is required.
fn seller_from(
    var: &dyn Fn(&str) -> Option<String>,
    name: String,
) -> Result<octany_actix::receipt::Seller, String> {
    let needed = |key: &str| {
        var(key).ok_or_else(|| {
            format!("{key} is not set: receipts need the seller's {key} beside SELLER_NAME")
        })
    };
    Ok(octany_actix::receipt::Seller {
        name,
        organisation_number: needed("SELLER_ORG_NUMBER")?,
        vat_number: needed("SELLER_VAT_NUMBER")?,
        address: needed("SELLER_ADDRESS")?
            .split('|')
            .map(|line| line.trim().to_owned())
            .filter(|line| !line.is_empty())
            .collect(),
        email: var("SELLER_EMAIL"),
    })
}

/// The sender of the customer's e-mails unless `MAIL_FROM` says.
const DEFAULT_FROM: &str = "Example SaaS <billing@example.com>";

/// The seller of the demo (the fake's receipts).
fn demo_seller() -> octany_actix::receipt::Seller {
    octany_actix::receipt::Seller {
        name: "Exempel AB (demo)".into(),
        organisation_number: "556677-8899".into(),
        vat_number: "SE556677889901".into(),
        address: vec!["Storgatan 1".into(), "111 22 Stockholm".into()],
        email: Some("billing@example.se".into()),
    }
}

/// The throttle's limits, each overridable: `LOGIN_LIMIT_PER_ACCOUNT`,
/// `LOGIN_LIMIT_PER_ADDRESS`, `SIGNUP_LIMIT_PER_ADDRESS` (per minute).
fn limits(var: &dyn Fn(&str) -> Option<String>) -> Result<Limits, String> {
    let mut limits = Limits::default();
    for (name, field) in [
        ("LOGIN_LIMIT_PER_ACCOUNT", &mut limits.login_per_account),
        ("LOGIN_LIMIT_PER_ADDRESS", &mut limits.login_per_address),
        ("SIGNUP_LIMIT_PER_ADDRESS", &mut limits.signup_per_address),
    ] {
        if let Some(value) = var(name) {
            *field = value
                .trim()
                .parse()
                .map_err(|_| format!("{name} must be a whole number of attempts per minute"))?;
        }
    }
    Ok(limits)
}

const MAKE_KEY: &str = "generate one with `openssl rand -hex 64`";

/// Refuses webhook secrets shorter than Octany's (a short secret can be
/// guessed, and then anyone can forge a payment).
fn check_webhook_secrets(config: &OctanyConfig) -> Result<(), String> {
    if config.webhook_secrets().is_empty() {
        return Err("OCTANY_WEBHOOK_SECRET is not set: copy the webhook endpoint's secret from Octany's admin; the app will not accept unsigned webhooks".into());
    }
    if config
        .webhook_secrets()
        .iter()
        .any(|s| s.expose().chars().count() < WEBHOOK_SECRET_MIN)
    {
        return Err(format!(
            "OCTANY_WEBHOOK_SECRET is shorter than {WEBHOOK_SECRET_MIN} characters: copy the endpoint's whole secret from Octany's admin (Octany's are {WEBHOOK_SECRET_MIN}), or make one with `openssl rand -hex 32` and set it on the endpoint"
        ));
    }
    Ok(())
}

/// A session key from at least 64 bytes that look random: a key with few
/// distinct bytes (all zeros, a repeated pattern, a typed phrase) is refused.
/// 64 random bytes have about 57 distinct values; fewer than 32 happens by
/// chance with a probability below 10^-20.
pub fn session_key(bytes: &[u8]) -> Result<Key, String> {
    let key = Key::try_from(bytes).map_err(|_| {
        format!("SESSION_KEY must hold at least 64 bytes (128 hex digits): {MAKE_KEY}")
    })?;
    let mut seen = [false; 256];
    for b in bytes {
        seen[usize::from(*b)] = true;
    }
    let distinct = seen.iter().filter(|s| **s).count();
    if distinct < 32 {
        return Err(format!(
            "SESSION_KEY has too little entropy ({distinct} distinct bytes of {}): it looks typed or patterned, not random; {MAKE_KEY}",
            bytes.len()
        ));
    }
    Ok(key)
}

/// A key generated once and kept in the data directory, so development
/// sessions survive restarts.
fn development_key(dir: &std::path::Path) -> Result<Key, String> {
    let path = dir.join("session.key");
    if let Ok(hex) = std::fs::read_to_string(&path)
        && let Ok(bytes) = hex::decode(hex.trim())
        && let Ok(key) = Key::try_from(bytes.as_slice())
    {
        return Ok(key);
    }
    let key = Key::generate();
    std::fs::write(&path, hex::encode(key.master()))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(key)
}
