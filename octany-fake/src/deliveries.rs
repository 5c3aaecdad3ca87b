//! Webhook deliveries: signed PHP-encoded bodies, POSTed asynchronously,
//! retried with back-off under one delivery id, and logged.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::{Notify, mpsc};

use super::php_json::sign;
use crate::SIGNATURE_HEADER;
use octany_actix::clock::SharedClock;
use octany_actix::config::Secret;

/// How the fake retries a delivery the endpoint did not accept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct DeliveryPolicy {
    /// Attempts in all (default 5).
    pub max_attempts: u32,
    /// The first back-off, doubled after each failure (default 50 ms).
    pub backoff: Duration,
    /// How long an endpoint may take to answer (default 5 s).
    pub timeout: Duration,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            backoff: Duration::from_millis(50),
            timeout: Duration::from_secs(5),
        }
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Queued, being sent, or waiting to be retried.
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Every attempt failed.
    Failed,
    /// Dropped by fault injection; never sent.
    Dropped,
    /// Held while its endpoint is paused.
    Paused,
}

/// One attempt to deliver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryAttempt {
    /// When it was made (transport time).
    pub at: DateTime<Utc>,
    /// The endpoint's HTTP status, if it answered.
    pub status: Option<u16>,
    /// What went wrong, if it did not answer.
    pub error: Option<String>,
    /// How long it took.
    pub latency_ms: u64,
}

/// The log of one delivery: one event to one endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryRecord {
    /// The delivery id (the envelope's `id`).
    pub delivery_id: String,
    /// The event name.
    pub event: String,
    /// The endpoint's id.
    pub endpoint_id: u64,
    /// The endpoint's URL.
    pub url: String,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// How many copies were sent out (2 when duplicated).
    pub copies: u32,
    /// Every attempt, of every copy.
    pub attempts: Vec<DeliveryAttempt>,
    /// The exact body sent (PHP's `json_encode`).
    pub body: String,
}

#[derive(Clone)]
pub(crate) struct Job {
    pub delivery_id: String,
    pub endpoint_id: u64,
    pub url: String,
    pub secret: Secret,
    pub body: Arc<Vec<u8>>,
    pub hold: Option<Duration>,
}

pub(crate) struct Dispatcher {
    tx: mpsc::UnboundedSender<Job>,
    inner: Arc<Inner>,
}

struct Inner {
    log: Mutex<Log>,
    in_flight: AtomicUsize,
    idle: Notify,
    paused: Mutex<HashSet<u64>>,
    held: Mutex<Vec<Job>>,
    http: reqwest::Client,
    clock: SharedClock,
    policy: Mutex<DeliveryPolicy>,
}

#[derive(Default)]
struct Log {
    records: Vec<DeliveryRecord>,
    index: HashMap<String, usize>,
}

impl Log {
    fn get(&mut self, id: &str) -> Option<&mut DeliveryRecord> {
        self.index.get(id).map(|i| &mut self.records[*i])
    }
}

impl Dispatcher {
    pub(super) fn start(clock: SharedClock, policy: DeliveryPolicy) -> Self {
        octany_actix::install_crypto_provider();
        let http = reqwest::Client::builder()
            .user_agent("Octany/1.0")
            .build()
            .expect("an HTTP client builds");
        let inner = Arc::new(Inner {
            log: Mutex::default(),
            in_flight: AtomicUsize::new(0),
            idle: Notify::new(),
            paused: Mutex::default(),
            held: Mutex::default(),
            http,
            clock,
            policy: Mutex::new(policy),
        });
        let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
        let worker = inner.clone();
        tokio::spawn(async move {
            while let Some(job) = rx.recv().await {
                if worker
                    .paused
                    .lock()
                    .expect("lock")
                    .contains(&job.endpoint_id)
                {
                    worker.set_status(&job.delivery_id, DeliveryStatus::Paused);
                    worker.held.lock().expect("lock").push(job);
                    worker.finish();
                    continue;
                }
                match job.hold {
                    Some(hold) => {
                        let worker = worker.clone();
                        tokio::spawn(async move {
                            worker.clock.sleep(hold).await;
                            worker.deliver(job, 1).await;
                        });
                    }
                    None => {
                        // The first attempt in queue order, so deliveries
                        // without faults arrive in the order they happened.
                        if !worker.attempt(&job).await {
                            let worker = worker.clone();
                            tokio::spawn(async move { worker.deliver(job, 2).await });
                        }
                    }
                }
            }
        });
        Self { tx, inner }
    }

    /// Logs a delivery and queues it (or logs it dropped).
    pub(super) fn enqueue(&self, record: DeliveryRecord, jobs: Vec<Job>) {
        let mut log = self.inner.log.lock().expect("lock");
        let position = log.records.len();
        log.index.insert(record.delivery_id.clone(), position);
        log.records.push(record);
        drop(log);
        for job in jobs {
            self.inner.in_flight.fetch_add(1, Ordering::SeqCst);
            if self.tx.send(job).is_err() {
                self.inner.finish();
            }
        }
    }

    pub(super) fn records(&self) -> Vec<DeliveryRecord> {
        self.inner.log.lock().expect("lock").records.clone()
    }

    pub(super) fn set_policy(&self, policy: DeliveryPolicy) {
        *self.inner.policy.lock().expect("lock") = policy;
    }

    /// Holds new deliveries to `endpoint` until released.
    pub(super) fn pause(&self, endpoint: u64) {
        self.inner.paused.lock().expect("lock").insert(endpoint);
    }

    /// Sends every held delivery of `endpoint`, in the order they were held.
    pub(super) fn release(&self, endpoint: u64) {
        self.inner.paused.lock().expect("lock").remove(&endpoint);
        let mut held = self.inner.held.lock().expect("lock");
        let (release, keep): (Vec<Job>, Vec<Job>) =
            held.drain(..).partition(|j| j.endpoint_id == endpoint);
        *held = keep;
        drop(held);
        for job in release {
            self.inner
                .set_status(&job.delivery_id, DeliveryStatus::Pending);
            self.inner.in_flight.fetch_add(1, Ordering::SeqCst);
            if self.tx.send(job).is_err() {
                self.inner.finish();
            }
        }
    }

    /// Waits until no delivery is queued, being sent, or waiting for a retry
    /// (held deliveries of paused endpoints do not count).
    pub(super) async fn settled(&self) {
        loop {
            let notified = self.inner.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.inner.in_flight.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Inner {
    fn finish(&self) {
        if self.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.idle.notify_waiters();
        }
    }

    fn set_status(&self, id: &str, status: DeliveryStatus) {
        if let Some(record) = self.log.lock().expect("lock").get(id) {
            record.status = status;
        }
    }

    /// Attempts from number `first` on, backing off before each retry,
    /// until delivered or out of attempts.
    async fn deliver(&self, job: Job, first: u32) {
        let policy = self.policy.lock().expect("lock").clone();
        let mut attempt = first;
        while attempt <= policy.max_attempts {
            if attempt > 1 {
                let doublings = (attempt - 2).min(16);
                self.clock
                    .sleep(policy.backoff.saturating_mul(1 << doublings))
                    .await;
            }
            if self.attempt_inner(&job).await {
                self.finish();
                return;
            }
            attempt += 1;
        }
        if let Some(record) = self.log.lock().expect("lock").get(&job.delivery_id)
            && record.status != DeliveryStatus::Delivered
        {
            record.status = DeliveryStatus::Failed;
        }
        self.finish();
    }

    /// One attempt; true when delivered (and then the job is finished).
    async fn attempt(&self, job: &Job) -> bool {
        let ok = self.attempt_inner(job).await;
        if ok {
            self.finish();
        }
        ok
    }

    async fn attempt_inner(&self, job: &Job) -> bool {
        let timeout = self.policy.lock().expect("lock").timeout;
        let signature = sign(job.secret.expose(), &job.body);
        let started = Instant::now();
        let at = self.clock.now();
        let sent = self
            .http
            .post(&job.url)
            .timeout(timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature)
            .body(job.body.as_ref().clone())
            .send()
            .await;
        let latency_ms = started.elapsed().as_millis() as u64;
        let (status, error) = match sent {
            Ok(response) => (Some(response.status().as_u16()), None),
            Err(e) => (None, Some(e.without_url().to_string())),
        };
        let ok = status.is_some_and(|s| (200..300).contains(&s));
        tracing::debug!(delivery = %job.delivery_id, url = %job.url, ?status, latency_ms, "fake Octany delivered a webhook");
        let mut log = self.log.lock().expect("lock");
        if let Some(record) = log.get(&job.delivery_id) {
            record.attempts.push(DeliveryAttempt {
                at,
                status,
                error,
                latency_ms,
            });
            if ok {
                record.status = DeliveryStatus::Delivered;
            }
        }
        ok
    }
}
