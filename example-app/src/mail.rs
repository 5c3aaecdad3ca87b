//! `GET /dev/mail`: the e-mails the app sent, caught in the data directory
//! when it runs against the fake Octany with no `SMTP_URL` (so a person
//! trying the starter sees each receipt and notice); `GET /dev/mail/{name}`
//! shows one as it would be sent. Not served otherwise.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use askama::Template;
use askama_web::WebTemplate;

use crate::AppState;
use crate::errors::AppError;

/// One caught mail, as the list shows it.
#[derive(Debug)]
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

/// The list of caught mails.
#[derive(Debug, Template, WebTemplate)]
#[template(path = "caught_mail.html")]
pub struct CaughtPage {
    mails: Vec<Caught>,
}

/// `GET /dev/mail`.
pub async fn list(state: web::Data<AppState>) -> Result<CaughtPage, AppError> {
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
    Ok(CaughtPage {
        mails: caught.into_iter().map(|(_, c)| c).collect(),
    })
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
