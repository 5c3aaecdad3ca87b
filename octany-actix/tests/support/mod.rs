//! What the client tests share: a client pointed at a local server, on a
//! manual clock.
#![allow(dead_code)]

use std::sync::Arc;

use octany_actix::client::{OctanyClient, RetryPolicy};
use octany_actix::clock::ManualClock;
use octany_actix::config::{Locale, OctanyConfig};
use serde_json::{Value, json};
use wiremock::MockServer;

pub(crate) const ACCOUNT: &str = "8f14e45f-ceea-467f-a0e6-a6f4f7c3b2d1";
pub(crate) const KEY: &str = "test-key-123";

pub(crate) fn base() -> String {
    format!("/api/{ACCOUNT}")
}

pub(crate) fn clock() -> ManualClock {
    ManualClock::at("2026-05-01T00:00:00Z".parse().unwrap())
}

pub(crate) fn client(server: &MockServer, clock: &ManualClock) -> OctanyClient {
    let config = OctanyConfig::new(ACCOUNT, KEY)
        .unwrap()
        .with_api_url(&server.uri())
        .unwrap()
        .with_locale(Locale::Sv)
        .with_retry(RetryPolicy::default().with_max_attempts(4));
    OctanyClient::with_clock(config, Arc::new(clock.clone())).unwrap()
}

pub(crate) fn subscription(id: u64, status: &str) -> Value {
    json!({"id": id, "status": status, "reference_id": "user:42", "price": 9900, "vat": 2475,
           "currency": "sek", "product": {"id": 1225, "name": "Pro"}})
}
