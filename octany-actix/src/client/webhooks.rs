use serde::{Deserialize, Serialize};

use super::OctanyClient;
use super::transport::Call;
use crate::client::Result;

/// A registered webhook endpoint. Octany does not return its secret: read
/// it from Octany's admin and configure it (`OCTANY_WEBHOOK_SECRET`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEndpoint {
    /// Its id, if Octany gives one.
    #[serde(
        default,
        deserialize_with = "crate::domain::model::lenient::opt_string"
    )]
    pub id: Option<String>,
    /// The URL deliveries go to.
    pub url: String,
}

impl OctanyClient {
    /// `POST /webhooks/endpoints`: registers `url` for deliveries.
    pub async fn register_webhook_endpoint(&self, url: &str) -> Result<WebhookEndpoint> {
        let body = serde_json::json!({ "url": url });
        self.data(Call::post(
            "webhooks/endpoints",
            "webhook endpoint",
            "webhooks/endpoints".into(),
            &body,
        ))
        .await
    }
}
