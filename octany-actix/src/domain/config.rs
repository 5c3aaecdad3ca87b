//! Configuration of the Octany account this app bills through.

use std::fmt;
use std::time::Duration;

use url::Url;

use crate::domain::limits::{RateLimit, RetryPolicy};

/// The production REST host (the part before `/api`).
pub(crate) const DEFAULT_API_URL: &str = "https://api.octany.com";
/// The production hosted-checkout host.
pub(crate) const DEFAULT_CHECKOUT_URL: &str = "https://checkout.octany.com";

/// A value that must never reach a log: an API key or a webhook secret.
///
/// Its `Debug` and `Display` print `***`; read it with [`Secret::expose`].
///
/// ```
/// use octany_actix::config::Secret;
/// let s = Secret::new("hunter2");
/// assert_eq!(format!("{s:?}"), "Secret(***)");
/// assert_eq!(s.expose(), "hunter2");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself. Do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The language of Octany's validation messages (`X-Locale`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locale {
    /// Swedish, `sv`.
    Sv,
    /// English, `en`.
    En,
}

impl Locale {
    /// The code Octany expects.
    pub fn as_str(self) -> &'static str {
        match self {
            Locale::Sv => "sv",
            Locale::En => "en",
        }
    }
}

impl std::str::FromStr for Locale {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "sv" => Ok(Locale::Sv),
            "en" => Ok(Locale::En),
            other => Err(format!(
                "`{other}` is not a locale Octany knows; use `sv` or `en`"
            )),
        }
    }
}

/// A configuration value is missing or malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A required environment variable is not set.
    #[error("{var} is not set: set it to {what}")]
    Missing {
        /// The variable's name.
        var: &'static str,
        /// What it should hold.
        what: &'static str,
    },
    /// A value is set but cannot be used.
    #[error("{var} is malformed: {reason}")]
    Invalid {
        /// The variable or setting's name.
        var: &'static str,
        /// What is wrong and how to fix it.
        reason: String,
    },
}

/// Everything needed to talk to one Octany account.
///
/// Required values go in [`OctanyConfig::new`]; the rest have production
/// defaults and `with_*` setters. [`OctanyConfig::from_env`] reads the
/// `OCTANY_*` variables. `Debug` never shows the key or a secret.
///
/// ```
/// use octany_actix::config::OctanyConfig;
/// let config = OctanyConfig::new("8f14e45f-ceea-467f-a0e6-a6f4f7c3b2d1", "key")
///     .unwrap()
///     .with_webhook_secret("0123456789abcdef0123456789abcdef");
/// assert!(!format!("{config:?}").contains("0123456789abcdef"));
/// ```
#[derive(Clone)]
pub struct OctanyConfig {
    account: String,
    api_key: Secret,
    api_url: Url,
    checkout_url: Url,
    locale: Option<Locale>,
    request_timeout: Duration,
    connect_timeout: Duration,
    webhook_secrets: Vec<Secret>,
    retry: RetryPolicy,
    rate_limit: Option<RateLimit>,
    account_number: Option<u64>,
}

impl OctanyConfig {
    /// A configuration for `account` (the account UUID) with `api_key`, using
    /// Octany's production hosts.
    pub fn new(
        account: impl Into<String>,
        api_key: impl Into<String>,
    ) -> Result<Self, ConfigError> {
        let account = account.into().trim().to_owned();
        uuid::Uuid::parse_str(&account).map_err(|_| ConfigError::Invalid {
            var: "OCTANY_ACCOUNT",
            reason: "the account is the UUID shown in Octany's admin (e.g. 8f14e45f-ceea-467f-a0e6-a6f4f7c3b2d1)".into(),
        })?;
        let api_key = api_key.into().trim().to_owned();
        if api_key.is_empty() {
            return Err(ConfigError::Invalid {
                var: "OCTANY_API_KEY",
                reason: "the API key is empty; copy it from Octany's admin".into(),
            });
        }
        Ok(Self {
            account,
            api_key: Secret(api_key),
            api_url: Url::parse(DEFAULT_API_URL).expect("default URL parses"),
            checkout_url: Url::parse(DEFAULT_CHECKOUT_URL).expect("default URL parses"),
            locale: None,
            request_timeout: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(5),
            webhook_secrets: Vec::new(),
            retry: RetryPolicy::default(),
            rate_limit: Some(RateLimit::default()),
            account_number: None,
        })
    }

    /// Reads `OCTANY_ACCOUNT` and `OCTANY_API_KEY` (required),
    /// `OCTANY_API_URL`, `OCTANY_CHECKOUT_URL`, `OCTANY_WEBHOOK_SECRET`
    /// (comma-separated, to rotate secrets), `OCTANY_LOCALE` and
    /// `OCTANY_ACCOUNT_NUMBER`.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// [`OctanyConfig::from_env`] over any source of variables, e.g. a map in
    /// a test or a secrets store.
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let account = get("OCTANY_ACCOUNT").ok_or(ConfigError::Missing {
            var: "OCTANY_ACCOUNT",
            what: "the account UUID shown in Octany's admin",
        })?;
        let key = get("OCTANY_API_KEY").ok_or(ConfigError::Missing {
            var: "OCTANY_API_KEY",
            what: "the API key from Octany's admin",
        })?;
        let mut config = Self::new(account, key)?;
        if let Some(url) = get("OCTANY_API_URL") {
            config = config.with_api_url_named(&url, "OCTANY_API_URL")?;
        }
        if let Some(url) = get("OCTANY_CHECKOUT_URL") {
            config.checkout_url = parse_base_url(&url, "OCTANY_CHECKOUT_URL")?;
        }
        if let Some(secrets) = get("OCTANY_WEBHOOK_SECRET") {
            for secret in secrets.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                config = config.with_webhook_secret(secret);
            }
        }
        if let Some(number) = get("OCTANY_ACCOUNT_NUMBER") {
            let number = number.trim().parse().map_err(|_| ConfigError::Invalid {
                var: "OCTANY_ACCOUNT_NUMBER",
                reason:
                    "the account's numeric id (the `account` of its webhooks) is a whole number"
                        .into(),
            })?;
            config = config.with_account_number(number);
        }
        if let Some(locale) = get("OCTANY_LOCALE") {
            let locale = locale.parse().map_err(|reason| ConfigError::Invalid {
                var: "OCTANY_LOCALE",
                reason,
            })?;
            config = config.with_locale(locale);
        }
        Ok(config)
    }

    /// The account's numeric id, the `account` of its webhook envelopes
    /// (`OCTANY_ACCOUNT_NUMBER`): when set, the receiver refuses (400) a
    /// delivery for any other account.
    pub fn with_account_number(mut self, number: u64) -> Self {
        self.account_number = Some(number);
        self
    }

    /// The account's numeric id, when configured.
    pub fn account_number(&self) -> Option<u64> {
        self.account_number
    }

    /// Uses another REST host, given as the part before `/api`
    /// (e.g. `https://app.octany.com`, or the fake Octany's `api_url`).
    pub fn with_api_url(self, url: &str) -> Result<Self, ConfigError> {
        self.with_api_url_named(url, "OCTANY_API_URL")
    }

    fn with_api_url_named(mut self, url: &str, var: &'static str) -> Result<Self, ConfigError> {
        let mut parsed = parse_base_url(url, var)?;
        // Accept a value that already ends in /api or /api/{account}.
        let path = parsed.path().trim_end_matches('/').to_owned();
        let trimmed = path
            .strip_suffix(&format!("/api/{}", self.account))
            .or_else(|| path.strip_suffix("/api"))
            .unwrap_or(&path)
            .to_owned();
        parsed.set_path(&format!("{trimmed}/"));
        self.api_url = parsed;
        Ok(self)
    }

    /// Uses another hosted-checkout host (e.g. the fake Octany's `checkout_url`).
    pub fn with_checkout_url(mut self, url: &str) -> Result<Self, ConfigError> {
        self.checkout_url = parse_base_url(url, "OCTANY_CHECKOUT_URL")?;
        Ok(self)
    }

    /// Adds a webhook signing secret. Add several while rotating: a delivery
    /// signed with any of them is accepted.
    pub fn with_webhook_secret(mut self, secret: impl Into<String>) -> Self {
        let secret = secret.into().trim().to_owned();
        if !secret.is_empty() {
            self.webhook_secrets.push(Secret(secret));
        }
        self
    }

    /// Sends `X-Locale` so validation messages come in that language.
    pub fn with_locale(mut self, locale: Locale) -> Self {
        self.locale = Some(locale);
        self
    }

    /// The longest one request may take, retries not counted (default 15 s).
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The longest connecting may take (default 5 s).
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How failed requests are retried.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Paces requests client-side (default [`RateLimit::default`]: 110 a
    /// minute, bursts of 10), so the app stays under Octany's limit.
    pub fn with_rate_limit(mut self, limit: RateLimit) -> Self {
        self.rate_limit = Some(limit);
        self
    }

    /// Sends requests as fast as the app makes them (429s are still waited
    /// out). For tests against a fake without a limit.
    pub fn without_rate_limit(mut self) -> Self {
        self.rate_limit = None;
        self
    }

    /// The client-side pacing, if any.
    pub fn rate_limit(&self) -> Option<RateLimit> {
        self.rate_limit
    }

    /// The account UUID.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// The API key.
    pub fn api_key(&self) -> &Secret {
        &self.api_key
    }

    /// The REST host, ending in `/` (the part before `api/{account}`).
    pub fn api_url(&self) -> &Url {
        &self.api_url
    }

    /// The REST base of this account: `{api_url}/api/{account}/`.
    pub fn api_base(&self) -> Url {
        self.api_url
            .join(&format!("api/{}/", self.account))
            .expect("account is a UUID, so the base URL is valid")
    }

    /// The hosted-checkout host.
    pub fn checkout_url(&self) -> &Url {
        &self.checkout_url
    }

    /// The locale sent as `X-Locale`, if any.
    pub fn locale(&self) -> Option<Locale> {
        self.locale
    }

    /// The per-request timeout.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// The connect timeout.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// The webhook secrets, newest last.
    pub fn webhook_secrets(&self) -> &[Secret] {
        &self.webhook_secrets
    }

    /// The retry policy.
    pub fn retry(&self) -> &RetryPolicy {
        &self.retry
    }
}

impl fmt::Debug for OctanyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OctanyConfig")
            .field("account", &self.account)
            .field("api_key", &self.api_key)
            .field("api_url", &self.api_url.as_str())
            .field("checkout_url", &self.checkout_url.as_str())
            .field("locale", &self.locale)
            .field("request_timeout", &self.request_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("webhook_secrets", &self.webhook_secrets.len())
            .field("retry", &self.retry)
            .field("rate_limit", &self.rate_limit)
            .field("account_number", &self.account_number)
            .finish()
    }
}

fn parse_base_url(url: &str, var: &'static str) -> Result<Url, ConfigError> {
    let parsed = Url::parse(url.trim()).map_err(|e| ConfigError::Invalid {
        var,
        reason: format!(
            "`{url}` is not an absolute URL ({e}); write it like https://api.octany.com"
        ),
    })?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err(ConfigError::Invalid {
            var,
            reason: format!("`{url}` must be an http(s) URL with a host"),
        });
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const ACCOUNT: &str = "8f14e45f-ceea-467f-a0e6-a6f4f7c3b2d1";

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn from_vars_names_the_missing_variable() {
        let err = OctanyConfig::from_vars(vars(&[("OCTANY_API_KEY", "k")])).unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Missing {
                var: "OCTANY_ACCOUNT",
                ..
            }
        ));
        assert!(err.to_string().contains("OCTANY_ACCOUNT"));
        let err = OctanyConfig::from_vars(vars(&[("OCTANY_ACCOUNT", ACCOUNT)])).unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Missing {
                var: "OCTANY_API_KEY",
                ..
            }
        ));
    }

    #[test]
    fn from_vars_names_the_malformed_variable() {
        let err =
            OctanyConfig::from_vars(vars(&[("OCTANY_ACCOUNT", "42"), ("OCTANY_API_KEY", "k")]))
                .unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Invalid {
                var: "OCTANY_ACCOUNT",
                ..
            }
        ));
        let err = OctanyConfig::from_vars(vars(&[
            ("OCTANY_ACCOUNT", ACCOUNT),
            ("OCTANY_API_KEY", "k"),
            ("OCTANY_API_URL", "not a url"),
        ]))
        .unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Invalid {
                var: "OCTANY_API_URL",
                ..
            }
        ));
        let err = OctanyConfig::from_vars(vars(&[
            ("OCTANY_ACCOUNT", ACCOUNT),
            ("OCTANY_API_KEY", "k"),
            ("OCTANY_LOCALE", "de"),
        ]))
        .unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Invalid {
                var: "OCTANY_LOCALE",
                ..
            }
        ));
    }

    #[test]
    fn from_vars_reads_every_variable() {
        let config = OctanyConfig::from_vars(vars(&[
            ("OCTANY_ACCOUNT", ACCOUNT),
            ("OCTANY_API_KEY", "key-1"),
            ("OCTANY_API_URL", "http://127.0.0.1:9000"),
            ("OCTANY_CHECKOUT_URL", "http://127.0.0.1:9001"),
            ("OCTANY_WEBHOOK_SECRET", "old-secret, new-secret"),
            ("OCTANY_LOCALE", "sv"),
        ]))
        .unwrap();
        assert_eq!(config.account(), ACCOUNT);
        assert_eq!(config.api_key().expose(), "key-1");
        assert_eq!(
            config.api_base().as_str(),
            format!("http://127.0.0.1:9000/api/{ACCOUNT}/")
        );
        assert_eq!(config.checkout_url().as_str(), "http://127.0.0.1:9001/");
        let secrets: Vec<_> = config
            .webhook_secrets()
            .iter()
            .map(Secret::expose)
            .collect();
        assert_eq!(secrets, ["old-secret", "new-secret"]);
        assert_eq!(config.locale(), Some(Locale::Sv));
    }

    #[test]
    fn api_url_may_already_carry_the_api_path() {
        for given in [
            "https://app.octany.com",
            "https://app.octany.com/",
            "https://app.octany.com/api",
            &format!("https://app.octany.com/api/{ACCOUNT}"),
        ] {
            let config = OctanyConfig::new(ACCOUNT, "k")
                .unwrap()
                .with_api_url(given)
                .unwrap();
            assert_eq!(
                config.api_base().as_str(),
                format!("https://app.octany.com/api/{ACCOUNT}/"),
                "from {given}"
            );
        }
    }

    #[test]
    fn debug_hides_key_and_secrets() {
        let config = OctanyConfig::new(ACCOUNT, "the-api-key")
            .unwrap()
            .with_webhook_secret("the-webhook-secret");
        let printed = format!("{config:?}");
        assert!(!printed.contains("the-api-key"), "{printed}");
        assert!(!printed.contains("the-webhook-secret"), "{printed}");
        assert!(printed.contains(ACCOUNT));
    }
}
