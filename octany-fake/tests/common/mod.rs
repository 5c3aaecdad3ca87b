//! Helpers shared by the fake Octany's tests.
#![allow(dead_code)]

use hmac::{Hmac, KeyInit, Mac};
use octany_fake::{CheckoutOutcome, CheckoutParams, FakeOctany};
use serde_json::Value;
use sha2::Sha256;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub(crate) const ACCOUNT: &str = "0b6f1a52-3c4d-4e5f-8a9b-0c1d2e3f4a5b";
pub(crate) const KEY: &str = "fake-key-0123456789";
pub(crate) const SECRET: &str = "whsec0123456789abcdef0123456789ab";

pub(crate) async fn fake() -> FakeOctany {
    FakeOctany::builder()
        .account(ACCOUNT, KEY)
        .starting_at("2026-01-01T00:00:00Z".parse().unwrap())
        .sample_catalog()
        .start()
        .await
        .expect("the fake starts")
}

/// A webhook endpoint that answers 200 and records what it receives.
pub(crate) async fn hook_server() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    server
}

/// A fake with an endpoint pointed at a fresh recording server.
pub(crate) async fn fake_with_hooks() -> (FakeOctany, MockServer) {
    let hooks = hook_server().await;
    let fake = fake().await;
    fake.add_webhook_endpoint(&format!("{}/hook", hooks.uri()), Some(SECRET));
    (fake, hooks)
}

/// A delivery as the endpoint saw it.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub id: String,
    pub name: String,
    pub envelope: Value,
    pub body: Vec<u8>,
    pub signature: String,
}

pub(crate) async fn received(server: &MockServer) -> Vec<Received> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|r| {
            let envelope: Value = serde_json::from_slice(&r.body).expect("deliveries are JSON");
            Received {
                id: envelope["id"].to_string(),
                name: envelope["name"].as_str().unwrap_or_default().to_owned(),
                signature: r
                    .headers
                    .get("Octany-Signature")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned(),
                body: r.body,
                envelope,
            }
        })
        .collect()
}

pub(crate) async fn event_names(server: &MockServer) -> Vec<String> {
    received(server).await.into_iter().map(|r| r.name).collect()
}

/// Plain HMAC-SHA256, hex: independent of the library's own signer.
pub(crate) fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub(crate) fn buyer(reference: &str) -> CheckoutParams {
    CheckoutParams {
        reference_id: Some(reference.into()),
        email: Some(format!("{}@example.com", reference.replace(':', "-"))),
        first_name: Some("Åsa".into()),
        last_name: Some("Öberg".into()),
        ..Default::default()
    }
}

/// Buys Pro monthly (1225) by card for `reference`; returns the subscription id.
pub(crate) fn subscribe(fake: &FakeOctany, reference: &str) -> String {
    fake.checkout(1225, &buyer(reference), CheckoutOutcome::Succeed)
        .expect("checkout succeeds")
        .subscription
        .expect("a recurring product makes a subscription")
        .id
        .to_string()
}

pub(crate) fn http() -> reqwest::Client {
    octany_actix::install_crypto_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// `METHOD {api_url}/api/{ACCOUNT}/{path}` with the key; returns status and JSON.
pub(crate) async fn api(
    fake: &FakeOctany,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    api_as(fake, ACCOUNT, KEY, method, path, body).await
}

pub(crate) async fn api_as(
    fake: &FakeOctany,
    account: &str,
    key: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let url = format!("{}/api/{account}/{path}", fake.api_url());
    let mut request = http()
        .request(method.parse().unwrap(), url)
        .header("X-API-KEY", key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}
