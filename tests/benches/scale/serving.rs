//! The instances served over HTTP behind a load balancer that spreads the webhooks.

use std::sync::atomic::{AtomicUsize, Ordering};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use octany_actix_tests::app::configure;

use super::*;

/// Forwards each webhook to the next instance, as a load balancer does.
struct Balancer {
    targets: Vec<String>,
    next: AtomicUsize,
    client: reqwest::Client,
}

async fn forward(req: HttpRequest, body: web::Bytes, lb: web::Data<Balancer>) -> HttpResponse {
    let target = &lb.targets[lb.next.fetch_add(1, Ordering::Relaxed) % lb.targets.len()];
    let mut out = lb.client.post(format!("{target}{}", req.path()));
    for (name, value) in req.headers() {
        if name != "host" && name != "content-length" {
            out = out.header(name.as_str(), value.as_bytes());
        }
    }
    match out.body(body).send().await {
        Ok(answer) => HttpResponse::build(
            actix_web::http::StatusCode::from_u16(answer.status().as_u16())
                .unwrap_or(actix_web::http::StatusCode::BAD_GATEWAY),
        )
        .body(answer.bytes().await.unwrap_or_default()),
        Err(_) => HttpResponse::BadGateway().finish(),
    }
}

pub(super) async fn serve_instance(
    octany: &Octany,
) -> Result<(String, actix_web::dev::ServerHandle), Error> {
    let octany = octany.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(octany.clone()))
            .configure(configure(&octany))
    })
    .workers(1)
    .disable_signals()
    .bind(("127.0.0.1", 0))?;
    let url = format!("http://{}", server.addrs()[0]);
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(server);
    Ok((url, handle))
}

pub(super) async fn serve_balancer(targets: Vec<String>) -> Result<String, Error> {
    let lb = web::Data::new(Balancer {
        targets,
        next: AtomicUsize::new(0),
        client: reqwest::Client::new(),
    });
    let server = HttpServer::new(move || {
        App::new()
            .app_data(lb.clone())
            .default_service(web::to(forward))
    })
    .workers(1)
    .disable_signals()
    .bind(("127.0.0.1", 0))?;
    let url = format!("http://{}", server.addrs()[0]);
    tokio::spawn(server.run());
    Ok(url)
}
