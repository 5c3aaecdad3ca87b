//! This app's webhook endpoint, checked from outside as Octany reaches it:
//! a signed `test.hook` posted to its public URL (what `doctor` and the
//! console's health page do).

use super::Octany;
use crate::mirror::webhook::signature::{SIGNATURE_HEADER, sign};

use crate::mirror::console::ENDPOINT_CHECK;

impl Octany {
    /// Whether the webhook secrets are set right, and what to say of them
    /// (`doctor` and the health page): at least one, none shorter than
    /// Octany's 32 characters.
    pub(crate) fn webhook_secret_check(&self) -> (bool, String) {
        let secrets = self.client().config().webhook_secrets();
        let short = secrets.iter().any(|s| s.expose().chars().count() < 32);
        match (secrets.len(), short) {
            (0, _) => (
                false,
                "OCTANY_WEBHOOK_SECRET is not set: copy the endpoint's secret from Octany's admin"
                    .into(),
            ),
            (_, true) => (
                false,
                "shorter than Octany's 32 characters: copy the whole secret from Octany's admin"
                    .into(),
            ),
            (n, false) => (true, format!("{n} configured")),
        }
    }

    /// Posts a signed `test.hook` to this app's webhook URL with the first
    /// configured secret: `Ok` saying so when the endpoint verified it,
    /// `Err` saying what to fix when it did not (no secret, refused,
    /// unreachable).
    pub(crate) async fn check_webhook_endpoint(&self) -> Result<String, String> {
        let config = self.client().config();
        let url = self.settings().route_url("webhook");
        let Some(secret) = config.webhook_secrets().first() else {
            return Err(
                "OCTANY_WEBHOOK_SECRET is not set: copy the endpoint's secret from Octany's admin"
                    .into(),
            );
        };
        let now = self.clock().now();
        let body = serde_json::to_vec(&serde_json::json!({
            "id": format!("{ENDPOINT_CHECK}{}", now.timestamp_micros()),
            "name": "test.hook",
            "account": config.account_number(),
            "created_at": now.to_rfc3339(),
            "data": {"from": "doctor"},
        }))
        .map_err(|e| e.to_string())?;
        let answer = reqwest::Client::new()
            .post(url.clone())
            .header(SIGNATURE_HEADER, sign(secret, &body))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await;
        match answer {
            Ok(answer) if answer.status().is_success() => {
                Ok(format!("{url} verified a signed test.hook"))
            }
            Ok(answer) => Err(format!(
                "{url} answered {} to a signed test.hook: is the app running there with this secret?",
                answer.status()
            )),
            Err(error) => Err(format!(
                "{url} cannot be reached ({error}): is the app running, and is PUBLIC_URL right?"
            )),
        }
    }
}
