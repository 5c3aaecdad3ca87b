//! The app's configuration, from the environment, with development defaults.

use std::path::PathBuf;

use actix_web::cookie::Key;
use octany_actix::OctanyConfig;

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
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("bind", &self.bind)
            .field("public_url", &self.public_url)
            .field("database", &self.database_url.split('@').next_back())
            .field("data_dir", &self.data_dir)
            .field("octany", &self.octany)
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// Reads the environment: `OCTANY_ACCOUNT`, `OCTANY_API_KEY` and
    /// `OCTANY_WEBHOOK_SECRET` switch to real Octany (the secret is then
    /// required); `DATABASE_URL`, `PUBLIC_URL`, `SESSION_KEY` (hex, at least
    /// 64 bytes; generated and kept in the data directory for development),
    /// `EXAMPLE_DATA_DIR`.
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
                if config.webhook_secrets().is_empty() {
                    return Err("OCTANY_WEBHOOK_SECRET is not set: copy the webhook endpoint's secret from Octany's admin; the app will not accept unsigned webhooks".into());
                }
                Some(config)
            }
            None => None,
        };
        let session_key = match var("SESSION_KEY") {
            Some(hex) => {
                let bytes =
                    hex::decode(hex.trim()).map_err(|_| "SESSION_KEY must be hex".to_owned())?;
                Key::try_from(bytes.as_slice()).map_err(|_| {
                    "SESSION_KEY must hold at least 64 bytes (128 hex digits)".to_owned()
                })?
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
        })
    }
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
