//! An app's billing side wired to a database and a fake Octany, for tests.

use chrono::{DateTime, Utc};
use octany_actix::config::Secret;
use octany_actix::engine::{SyncOptions, Syncer, WebhookReceiver};
use octany_actix::sync::Listeners;
use octany_fake::{FakeOctany, php_json_encode, sign};
use serde_json::{Value, json};

use crate::TestDb;

/// The webhook secret every harness uses.
pub const SECRET: &str = "test-secret-0123456789abcdefghij";

/// A database, a fake Octany, and the syncer and receiver between them.
#[derive(Debug)]
pub struct Harness {
    /// The test's own database.
    pub db: TestDb,
    /// The fake Octany (no webhook endpoint registered).
    pub fake: FakeOctany,
    /// The syncer.
    pub syncer: Syncer,
    /// The receiver (secret [`SECRET`]).
    pub receiver: WebhookReceiver,
}

impl Harness {
    /// Wires `db` to a fresh fake with the sample catalog.
    pub async fn new(db: TestDb) -> Harness {
        Self::with_listeners(db, Listeners::new()).await
    }

    /// [`Harness::new`] with billing-event listeners on the syncer.
    pub async fn with_listeners(db: TestDb, listeners: Listeners) -> Harness {
        // The fake's clock (the syncer's) starts after the dates the tests'
        // deliveries carry: a delivery dated ahead of the app's clock is not
        // believed.
        let fake = FakeOctany::builder()
            .sample_catalog()
            .starting_at(at("2026-06-01T00:00:00Z"))
            .start()
            .await
            .expect("the fake starts");
        let options = SyncOptions::default().with_listeners(listeners);
        let syncer = Syncer::with_options(db.conn.clone(), fake.client(), options);
        let receiver =
            WebhookReceiver::new(syncer.clone(), &[Secret::new(SECRET)]).expect("a secret is set");
        Harness {
            db,
            fake,
            syncer,
            receiver,
        }
    }

    /// Gives the database back, for [`crate::run`] to drop.
    pub async fn finish(self) -> TestDb {
        self.fake.stop().await;
        self.db
    }
}

/// A subscription as API.md shapes it.
pub fn subscription_json(id: u64, reference: &str, status: &str, ends_at: Option<&str>) -> Value {
    json!({
        "id": id, "customer_id": 5521093, "price": 9900, "vat": 2475, "currency": "sek",
        "renews_at": if ends_at.is_none() { json!("2026-06-25T09:29:51+00:00") } else { Value::Null },
        "ends_at": ends_at, "reference_id": reference, "reference_name": "Åsa Öberg", "status": status,
        "product": {"id": 1225, "name": "Pro monthly", "type": "subscription", "interval": "month", "price": 9900, "currency": "sek", "vat_rate": 2500},
        "billing_method": {"type": "stripe", "name": "Visa", "email": "asa@example.com",
            "person": {"first_name": "Åsa", "last_name": "Öberg", "email": "asa@example.com", "phone": false, "locale": "sv", "personal_identity_number": null},
            "address": null, "company": null},
        "update_card_url": "https://app.octany.com/portal/card/abc",
        "invoices_url": "https://app.octany.com/portal/invoices/abc",
        "cancel_url": "https://app.octany.com/portal/cancel/abc"
    })
}

/// An order as API.md shapes it.
pub fn order_json(id: u64, reference: &str, state: &str) -> Value {
    json!({
        "id": id, "customer_id": 5521093, "total": 9900, "total_with_vat": 12375, "currency": "sek",
        "reference_id": reference, "reference_name": null, "state": state,
        "billing_method": {"type": "stripe", "name": null, "email": null, "person": null, "address": null, "company": null},
        "items": [{"description": "Pro monthly", "quantity": "1", "price": 9900, "vat": 2475,
                   "product": {"id": 1225, "name": "Pro monthly", "type": "month", "price": 9900, "currency": "sek", "vat_rate": 2500}}]
    })
}

/// A webhook envelope.
pub fn envelope(delivery: u64, name: &str, created_at: DateTime<Utc>, data: Value) -> Value {
    json!({
        "id": delivery, "name": name, "account": 1042,
        "created_at": created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, false), "data": data
    })
}

/// The bytes Octany would send (PHP's `json_encode`) and their signature.
pub fn signed(envelope: &Value) -> (Vec<u8>, String) {
    let body = php_json_encode(envelope);
    let signature = sign(SECRET, &body);
    (body, signature)
}

/// An instant, from RFC 3339 text.
pub fn at(text: &str) -> DateTime<Utc> {
    text.parse().expect("an RFC 3339 instant")
}

/// Log lines, as text, for a test to read: a `tracing_subscriber` writer
/// (`.with_writer(move || logs.clone())`).
#[derive(Clone, Debug, Default)]
pub struct Logs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}
