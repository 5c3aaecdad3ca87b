//! `GET /dev/mail`: the e-mails the app sent, caught in the data directory
//! when it runs against the fake Octany with no `SMTP_URL` (so a person
//! trying the starter sees each receipt, notice and sign-up link);
//! `GET /dev/mail/{name}` shows one as it would be sent, with its links to
//! follow. Not served otherwise.

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

/// One caught mail: as it would be sent, and the links in it.
#[derive(Debug, Template, WebTemplate)]
#[template(path = "caught_one.html")]
pub struct CaughtOne {
    subject: String,
    raw: String,
    links: Vec<String>,
}

/// The web addresses a mail's text gives on lines of their own (as the
/// app's mails do), to follow from the page.
pub fn links(raw: &str) -> Vec<String> {
    raw.lines()
        .map(str::trim)
        .filter(|l| l.starts_with("http://") || l.starts_with("https://"))
        .filter(|l| !l.contains(char::is_whitespace))
        .map(str::to_owned)
        .collect()
}

/// `GET /dev/mail/{name}`: one mail, raw, with its links.
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
    let page = CaughtOne {
        subject: header_of(&raw, "Subject"),
        links: links(&raw),
        raw,
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .content_type("text/html; charset=utf-8")
        .body(
            page.render()
                .map_err(|e| AppError::Session(e.to_string()))?,
        ))
}
