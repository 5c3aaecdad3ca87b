//! Prometheus metrics at `/metrics`: octany-actix's counters and histograms
//! (deliveries applied, duplicate and failed, apply latency, API requests
//! by status, budget wait, reconcile backlog, guard cache hits) through the
//! `metrics` facade, rendered by `metrics-exporter-prometheus`.
//!
//! Metrics say how many customers and how busy the app is, so they are
//! answered only to one presenting `Authorization: Bearer $METRICS_TOKEN`,
//! or, with no token set, to a client on this machine that came through no
//! proxy (a scraper beside the app): behind a reverse proxy on the same
//! host every visitor's peer is the loopback address, and the proxy's
//! forwarding headers are what tell them apart.

use std::sync::OnceLock;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use subtle::ConstantTimeEq;

use crate::AppState;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's recorder, installed on first use (a process has one).
pub fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!(
                    "a metrics recorder was already installed; /metrics shows only this one's"
                );
            }
            handle
        })
        .clone()
}

fn allowed(req: &HttpRequest, state: &AppState) -> bool {
    if let Some(token) = state.metrics_token.as_ref().map(|t| t.expose()) {
        let presented = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        return bool::from(presented.as_bytes().ct_eq(token.as_bytes()));
    }
    let proxied = ["forwarded", "x-forwarded-for", "x-real-ip"]
        .iter()
        .any(|name| req.headers().contains_key(*name));
    !proxied && req.peer_addr().is_some_and(|a| a.ip().is_loopback())
}

/// `GET /metrics`: the Prometheus text format.
pub async fn metrics(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if !allowed(&req, &state) {
        return HttpResponse::NotFound().finish();
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(handle().render())
}
