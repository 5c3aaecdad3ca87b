use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::Method;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use super::OctanyClient;
use crate::client::{OctanyError, Result};

/// One request to Octany, described.
pub(crate) struct Call<'a> {
    pub method: Method,
    /// Relative to the account's REST base, e.g. `subscription/76963688`.
    pub path: String,
    /// The path with placeholders, for logs, e.g. `subscription/{id}`.
    pub template: &'static str,
    /// What a 404 means is missing, e.g. `subscription`.
    pub resource: &'static str,
    pub query: Vec<(&'static str, String)>,
    pub body: Option<&'a serde_json::Value>,
}

impl<'a> Call<'a> {
    pub(crate) fn get(template: &'static str, resource: &'static str, path: String) -> Self {
        Self {
            method: Method::GET,
            path,
            template,
            resource,
            query: Vec::new(),
            body: None,
        }
    }

    pub(crate) fn post(
        template: &'static str,
        resource: &'static str,
        path: String,
        body: &'a serde_json::Value,
    ) -> Self {
        Self {
            method: Method::POST,
            body: Some(body),
            ..Self::get(template, resource, path)
        }
    }

    pub(crate) fn query(mut self, name: &'static str, value: impl ToString) -> Self {
        self.query.push((name, value.to_string()));
        self
    }
}

/// What came back: status, body, and Octany's `Date` (the instant the
/// answer was true, in Octany's clock).
pub(crate) struct Answer {
    pub status: u16,
    pub body: Bytes,
    pub date: Option<chrono::DateTime<chrono::Utc>>,
}

/// `{"data": ...}`, with or without the older `status`/`success` beside it.
#[derive(Deserialize)]
struct Data<T> {
    data: T,
}

/// Laravel's error body, tolerated in any shape.
#[derive(Deserialize, Default)]
struct ErrorBody {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    errors: BTreeMap<String, serde_json::Value>,
}

impl OctanyClient {
    /// Sends `call` and parses `data` out of the envelope.
    pub(crate) async fn data<T: DeserializeOwned>(&self, call: Call<'_>) -> Result<T> {
        self.data_observed(call).await.map(|(data, _)| data)
    }

    /// [`OctanyClient::data`] with Octany's `Date` of the answer.
    pub(crate) async fn data_observed<T: DeserializeOwned>(
        &self,
        call: Call<'_>,
    ) -> Result<(T, Option<chrono::DateTime<chrono::Utc>>)> {
        let answer = self.send(&call).await?;
        decode::<Data<T>>(answer.status, &answer.body).map(|d| (d.data, answer.date))
    }

    /// Sends `call` and parses the whole body, with Octany's `Date`.
    pub(crate) async fn body_observed<T: DeserializeOwned>(
        &self,
        call: Call<'_>,
    ) -> Result<(T, Option<chrono::DateTime<chrono::Utc>>)> {
        let answer = self.send(&call).await?;
        decode(answer.status, &answer.body).map(|body| (body, answer.date))
    }

    /// Sends `call` and parses a page of a list, noting when it was true.
    pub(crate) async fn page<T: DeserializeOwned>(&self, call: Call<'_>) -> Result<super::Page<T>> {
        let (mut page, date): (super::Page<T>, _) = self.body_observed(call).await?;
        page.observed_at = date;
        Ok(page)
    }

    /// Sends `call` and ignores the body.
    pub(crate) async fn unit(&self, call: Call<'_>) -> Result<()> {
        self.send(&call).await.map(drop)
    }

    /// Sends `call`, retrying as the policy allows, within one span.
    async fn send(&self, call: &Call<'_>) -> Result<Answer> {
        let span = tracing::debug_span!(
            "octany.request",
            method = %call.method,
            path = call.template,
            status = tracing::field::Empty,
            attempt = tracing::field::Empty,
            elapsed_ms = tracing::field::Empty,
        );
        self.send_with_retries(call).instrument(span).await
    }

    async fn send_with_retries(&self, call: &Call<'_>) -> Result<Answer> {
        let policy = self.config().retry();
        let clock = self.clock();
        let started = clock.now();
        let mut backoff = super::retry::backoff(policy);
        let (mut attempts, mut failures, mut rate_limited) = (0u32, 0u32, 0u32);
        loop {
            attempts += 1;
            let sent = Instant::now();
            let sent_at = clock.now();
            let outcome = self.attempt(call, attempts).await;
            if !matches!(outcome, Err(OctanyError::Busy { .. })) {
                self.inner.calls.record(|| super::CallRecord {
                    at: sent_at,
                    method: call.method.to_string(),
                    path: call.path.clone(),
                    status: match &outcome {
                        Ok(answer) => Some(answer.status),
                        Err(e) => e.status(),
                    },
                    attempt: attempts,
                    duration_ms: u32::try_from(sent.elapsed().as_millis()).unwrap_or(u32::MAX),
                    billable: super::lanes::current_billable().map(|b| b.to_string()),
                    error: outcome
                        .as_ref()
                        .err()
                        .map(|e| e.to_string().chars().take(500).collect()),
                });
            }
            let status = match &outcome {
                Ok(answer) => status_class(answer.status),
                Err(OctanyError::Busy { .. }) => "not_sent",
                Err(e) => e.status().map_or("error", status_class),
            };
            metrics::counter!("octany_api_requests_total", "status" => status).increment(1);
            let span = tracing::Span::current();
            span.record("attempt", attempts);
            span.record("elapsed_ms", sent.elapsed().as_millis() as u64);
            match &outcome {
                Ok(answer) => span.record("status", answer.status),
                Err(e) => span.record("status", e.status().unwrap_or(0)),
            };
            let delay = match &outcome {
                Ok(_) => return outcome,
                Err(OctanyError::RateLimited { retry_after }) => {
                    rate_limited += 1;
                    if rate_limited > policy.rate_limit_retries {
                        return outcome;
                    }
                    retry_after
                        .unwrap_or(policy.initial_backoff)
                        .min(policy.max_retry_after)
                }
                Err(error) => {
                    failures += 1;
                    if failures >= policy.max_attempts || !retryable(&call.method, error) {
                        return outcome;
                    }
                    backoff.next().unwrap_or(policy.max_backoff)
                }
            };
            let elapsed = (clock.now() - started).to_std().unwrap_or(Duration::ZERO);
            if elapsed + delay > policy.max_elapsed {
                return outcome;
            }
            if let Err(error) = &outcome {
                tracing::warn!(attempt = attempts, delay_ms = delay.as_millis() as u64, %error, "retrying Octany request");
            }
            clock.sleep(delay).await;
        }
    }

    async fn attempt(&self, call: &Call<'_>, attempts: u32) -> Result<Answer> {
        // Held until the answer is read: one of the billable's requests under way.
        let _slot = match &self.inner.budget {
            Some(budget) => Some(budget.acquire(self.clock()).await?),
            None => None,
        };
        let url = self
            .inner
            .base
            .join(&call.path)
            .expect("paths are built from ids and constants");
        let mut request = self
            .inner
            .http
            .request(call.method.clone(), url)
            .header("X-API-KEY", self.config().api_key().expose())
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(locale) = self.config().locale() {
            request = request.header("X-Locale", locale.as_str());
        }
        if !call.query.is_empty() {
            request = request.query(&call.query);
        }
        if let Some(body) = call.body {
            request = request.json(body);
        }
        let transport = |source: reqwest::Error| OctanyError::Transport {
            attempts,
            source: source.without_url(),
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let date = response
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| chrono::DateTime::parse_from_rfc2822(v).ok())
            .map(|d| d.to_utc());
        let body = response.bytes().await.map_err(transport)?;
        if (200..300).contains(&status) {
            return Ok(Answer { status, body, date });
        }
        Err(status_error(
            status,
            &body,
            retry_after,
            call.resource,
            attempts,
        ))
    }
}

/// Whether a failed request may be sent again as it is.
/// A status as the metrics label it: `2xx`, `429`, `4xx`, `5xx`.
fn status_class(status: u16) -> &'static str {
    match status {
        200..=299 => "2xx",
        429 => "429",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => "other",
    }
}

fn retryable(method: &Method, error: &OctanyError) -> bool {
    match error {
        // Nothing reached Octany: safe for any method.
        OctanyError::Transport { source, .. } if source.is_connect() => true,
        OctanyError::Transport { .. } | OctanyError::Server { .. } => *method == Method::GET,
        _ => false,
    }
}

fn status_error(
    status: u16,
    body: &[u8],
    retry_after: Option<Duration>,
    resource: &'static str,
    attempts: u32,
) -> OctanyError {
    let parsed: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let message = parsed.message.unwrap_or_else(|| excerpt(body));
    match status {
        401 | 403 => OctanyError::Unauthorized { status, message },
        404 => OctanyError::NotFound { resource, message },
        422 => OctanyError::Validation {
            message,
            errors: parsed
                .errors
                .into_iter()
                .map(|(field, v)| {
                    let msgs = match v {
                        serde_json::Value::Array(items) => items
                            .into_iter()
                            .map(|m| {
                                m.as_str()
                                    .map(str::to_owned)
                                    .unwrap_or_else(|| m.to_string())
                            })
                            .collect(),
                        serde_json::Value::String(s) => vec![s],
                        other => vec![other.to_string()],
                    };
                    (field, msgs)
                })
                .collect(),
        },
        429 => OctanyError::RateLimited { retry_after },
        500..=599 => OctanyError::Server {
            status,
            attempts,
            excerpt: excerpt(body),
        },
        _ => OctanyError::Rejected { status, message },
    }
}

fn decode<T: DeserializeOwned>(status: u16, body: &[u8]) -> Result<T> {
    serde_json::from_slice(body).map_err(|source| OctanyError::Decode {
        status,
        excerpt: excerpt(body),
        source,
    })
}

/// The first 200 characters of a body, for error messages.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut cut: String = text.chars().take(200).collect();
    if text.chars().count() > 200 {
        cut.push('…');
    }
    cut
}
