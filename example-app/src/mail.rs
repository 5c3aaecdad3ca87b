//! `GET /dev/mail`: the e-mails the app sent, caught in the data directory
//! when it runs against the fake Octany with no `SMTP_URL` (so a person
//! trying the starter sees each receipt and notice); `GET /dev/mail/{name}`
//! shows one as it would be sent. Not served otherwise.

use actix_web::http::header;
use actix_web::{HttpResponse, web};

use crate::AppState;
use crate::errors::AppError;

/// One caught mail, as the list shows it.
struct Caught {
    name: String,
    to: String,
    subject: String,
}

/// A header's value in a raw mail.
fn header_of(raw: &str, name: &str) -> String {
    raw.lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_default()
        .to_owned()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `GET /dev/mail`.
pub async fn list(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let dir = state.caught_mail.as_ref().ok_or(AppError::NotFound)?;
    let mut caught: Vec<(std::time::SystemTime, Caught)> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let raw = std::fs::read_to_string(e.path()).ok()?;
                    let at = e.metadata().and_then(|m| m.modified()).ok()?;
                    Some((
                        at,
                        Caught {
                            to: header_of(&raw, "To"),
                            subject: header_of(&raw, "Subject"),
                            name,
                        },
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    caught.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
    let rows: String = caught
        .iter()
        .map(|(_, c)| {
            format!(
                "<tr><td>{}</td><td><a href=\"/dev/mail/{}\">{}</a></td></tr>",
                escape(&c.to),
                escape(&c.name),
                escape(&c.subject)
            )
        })
        .collect();
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Caught mail</title></head><body><main id=\"caught-mail\"><h1>Mail the app sent</h1><p>Against the fake Octany with no <code>SMTP_URL</code>, the customer's e-mails are kept here instead of sent.</p><table><tr><th>To</th><th>Subject</th></tr>{}</table><p><a href=\"/account\">Back</a></p></main></body></html>",
        if rows.is_empty() {
            "<tr><td colspan=\"2\">None yet.</td></tr>".to_owned()
        } else {
            rows
        }
    );
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .content_type("text/html; charset=utf-8")
        .body(body))
}

/// `GET /dev/mail/{name}`: one mail, raw.
pub async fn show(
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let dir = state.caught_mail.as_ref().ok_or(AppError::NotFound)?;
    let name = name.into_inner();
    if name.contains('/') || name.contains("..") || !name.ends_with(".eml") {
        return Err(AppError::NotFound);
    }
    let raw = std::fs::read_to_string(dir.join(&name)).map_err(|_| AppError::NotFound)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .content_type("text/plain; charset=utf-8")
        .body(raw))
}
