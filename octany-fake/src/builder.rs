//! Configuring and starting a [`FakeOctany`].

use std::sync::{Arc, Mutex};

use actix_web::{App, HttpServer, web};
use chrono::{DateTime, Utc};

use crate::deliveries::{DeliveryPolicy, Dispatcher};
use crate::*;

/// Configures and starts a [`FakeOctany`].
#[must_use]
#[derive(Debug)]
pub struct FakeOctanyBuilder {
    port: u16,
    now: DateTime<Utc>,
    seed: u64,
    account: (Option<String>, Option<String>),
    products: Vec<FakeProduct>,
    webhooks: Vec<(String, Option<String>)>,
    legacy: bool,
    faults: Faults,
    delivery: DeliveryPolicy,
    life_cycle: LifeCycle,
    transport: SharedClock,
    transport_virtual: bool,
}

impl FakeOctanyBuilder {
    pub(crate) fn new() -> Self {
        Self {
            port: 0,
            // The real time to the second, as the standalone fake: an app
            // on the system clock then agrees with Octany about what is due.
            now: DateTime::from_timestamp(SystemClock.now().timestamp(), 0).expect("a valid time"),
            seed: 1,
            account: (None, None),
            products: Vec::new(),
            webhooks: Vec::new(),
            legacy: false,
            faults: Faults::default(),
            delivery: DeliveryPolicy::default(),
            life_cycle: LifeCycle::default(),
            transport: Arc::new(SystemClock),
            transport_virtual: false,
        }
    }

    /// Listens on this port (default 0: one the OS picks).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Starts the virtual clock here (default: the real time when the
    /// builder is made, to the second, so that an app reading the system
    /// clock agrees with the fake until the fake's clock is moved; then
    /// give the app [`FakeOctany::app_clock`]). Tests that compare dates
    /// start it at a fixed time.
    pub fn starting_at(mut self, now: DateTime<Utc>) -> Self {
        self.now = now;
        self
    }

    /// Seeds the random source of faults, ids and secrets (default 1).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Uses this account UUID and API key instead of generated ones.
    pub fn account(mut self, uuid: impl Into<String>, api_key: impl Into<String>) -> Self {
        self.account = (Some(uuid.into()), Some(api_key.into()));
        self
    }

    /// Adds a product.
    pub fn product(mut self, product: FakeProduct) -> Self {
        self.products.push(product);
        self
    }

    /// Adds [`sample_catalog`].
    pub fn sample_catalog(mut self) -> Self {
        self.products.extend(sample_catalog());
        self
    }

    /// Registers a webhook endpoint (with this secret, or a generated one).
    pub fn webhook(mut self, url: impl Into<String>, secret: Option<&str>) -> Self {
        self.webhooks.push((url.into(), secret.map(str::to_owned)));
        self
    }

    /// Sends the older pagination spelling (`perPage`, `links: []`).
    pub fn legacy_pagination(mut self, legacy: bool) -> Self {
        self.legacy = legacy;
        self
    }

    /// Starts with these faults.
    pub fn faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    /// How deliveries are retried.
    pub fn delivery_policy(mut self, policy: DeliveryPolicy) -> Self {
        self.delivery = policy;
        self
    }

    /// How the life cycle is timed.
    pub fn life_cycle(mut self, life_cycle: LifeCycle) -> Self {
        self.life_cycle = life_cycle;
        self
    }

    /// The clock of the transport (API latency, rate-limit windows,
    /// delivery back-off); the system clock by default. Billing time is the
    /// separate virtual clock.
    pub fn transport_clock(mut self, clock: SharedClock) -> Self {
        self.transport = clock;
        self.transport_virtual = false;
        self
    }

    /// The transport runs on the virtual clock too: the rate limit counts
    /// requests a virtual minute, and waiting (a client pacing itself, a
    /// delivery's back-off) moves billing time. For simulations of weeks
    /// that must still keep to the per-minute limit.
    pub fn transport_on_virtual_clock(mut self) -> Self {
        self.transport_virtual = true;
        self
    }

    /// Binds 127.0.0.1 and starts serving (call from within a Tokio runtime).
    pub async fn start(self) -> std::io::Result<FakeOctany> {
        let mut state = State::new(self.seed);
        state.legacy = self.legacy;
        state.faults = self.faults;
        state.life_cycle = self.life_cycle;
        let account = state.add_account(self.account.0, self.account.1);
        for product in self.products {
            state.accounts[account].products.insert(product.id, product);
        }
        for (url, secret) in &self.webhooks {
            state
                .add_endpoint(account, url, secret.clone())
                .map_err(|e| {
                    std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{e:?}"))
                })?;
        }
        let clock = ManualClock::at(self.now);
        let transport: SharedClock = if self.transport_virtual {
            Arc::new(clock.clone())
        } else {
            self.transport
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            clock,
            dispatcher: Dispatcher::start(transport.clone(), self.delivery),
            transport,
        });
        let data = web::Data::from(shared.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .configure(api::routes)
                .configure(checkout::routes)
                .configure(control::routes)
        })
        .workers(2)
        .disable_signals()
        .bind(("127.0.0.1", self.port))?;
        let addr = server.addrs()[0];
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        shared.lock().base_url = format!("http://{addr}");
        Ok(FakeOctany {
            shared,
            addr,
            handle,
        })
    }
}
