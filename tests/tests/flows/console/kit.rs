//! The console tests' host and hands: a staff extractor, requests as
//! a member of staff, the forms and timeline read off a page.

use std::future::{Ready, ready};

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::{FromRequest, HttpRequest, dev::Payload};
use octany_actix_tests::TestDb;
use octany_actix_tests::sea_orm::{ConnectionTrait, Statement};

use super::*;

/// The host's staff: named by `X-Staff`; `X-Tenant` scopes them to one
/// billable. Anyone else is refused (403) by the extractor itself.
pub(super) struct Support {
    name: String,
    tenant: Option<String>,
}

impl FromRequest for Support {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let header = |name| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        ready(match header("X-Staff") {
            Some(name) => Ok(Support {
                name,
                tenant: header("X-Tenant"),
            }),
            None => Err(actix_web::error::ErrorForbidden("staff only")),
        })
    }
}

impl octany_actix::ops::Staff for Support {
    fn staff_name(&self) -> String {
        self.name.clone()
    }

    fn may_see(&self, billable: &BillableRef) -> bool {
        self.tenant
            .as_deref()
            .is_none_or(|t| billable.as_str() == t)
    }
}

pub(super) const CONSOLE: &str = "/admin/billing";

/// Who asks: a member of staff (and their tenant), or no one.
pub(super) type Who<'a> = Option<(&'a str, Option<&'a str>)>;

/// Calls the console as `who`: a GET, or a POST of `form`.
pub(super) async fn ask<S, B>(
    app: &S,
    who: Who<'_>,
    path: &str,
    form: Option<&[(&str, &str)]>,
) -> (u16, String, Option<String>)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let uri = format!("{CONSOLE}{path}");
    let mut request = match form {
        Some(form) => actix_web::test::TestRequest::post()
            .uri(&uri)
            .set_form(form.to_vec()),
        None => actix_web::test::TestRequest::get().uri(&uri),
    };
    if let Some((name, tenant)) = who {
        request = request.insert_header(("X-Staff", name));
        if let Some(tenant) = tenant {
            request = request.insert_header(("X-Tenant", tenant));
        }
    }
    let response = actix_web::test::call_service(app, request.to_request()).await;
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = actix_web::test::read_body(response).await;
    (
        status,
        String::from_utf8_lossy(&body).into_owned(),
        location,
    )
}

/// The token of the form posting to `action` (a path under the console).
/// The inside of the page's `<section id="{id}">`.
pub(super) fn section<'a>(html: &'a str, id: &str) -> &'a str {
    html.split(&format!("<section id=\"{id}\">"))
        .nth(1)
        .and_then(|s| s.split("</section>").next())
        .unwrap_or_else(|| panic!("no section {id}: {html}"))
}

pub(super) fn token(html: &str, action: &str) -> String {
    let at = html
        .find(&format!(r#"action="{CONSOLE}{action}""#))
        .unwrap_or_else(|| panic!("no form posts to {action}"));
    hidden(&html[at..], "token").unwrap()
}

/// The timeline's lines: (source, outcome class, what).
pub(super) fn timeline(html: &str) -> Vec<(String, String, String)> {
    html.split(r#"<tr class="entry "#)
        .skip(1)
        .map(|row| {
            let source = row.split('"').next().unwrap().to_owned();
            let what = row
                .split(r#"<td class="what">"#)
                .nth(1)
                .unwrap()
                .split("</td>")
                .next()
                .unwrap()
                .to_owned();
            let outcome = row
                .split(r#"class="outcome "#)
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
                .to_owned();
            (source, outcome, what)
        })
        .collect()
}

/// The console app, behind `Support`.
macro_rules! console_app {
    ($octany:expr) => {
        actix_web::test::init_service(
            actix_web::App::new()
                .app_data(actix_web::web::Data::new($octany.clone()))
                .service($octany.console::<Support>(CONSOLE)),
        )
        .await
    };
}

/// An audit log row: who, what, on whom, why, how it ended.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct AuditRow {
    pub(super) actor: String,
    pub(super) action: String,
    pub(super) billable: Option<String>,
    pub(super) reason: String,
    pub(super) outcome: String,
}

/// Every audit row, oldest first.
pub(super) async fn audit_rows(db: &TestDb) -> Vec<AuditRow> {
    let rows = db
        .conn
        .query_all_raw(Statement::from_string(
            db.db_backend(),
            "SELECT actor, action, billable_ref, reason, outcome FROM octany_audit ORDER BY id"
                .to_owned(),
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|r| AuditRow {
            actor: r.try_get("", "actor").unwrap(),
            action: r.try_get("", "action").unwrap(),
            billable: r.try_get("", "billable_ref").unwrap(),
            reason: r.try_get("", "reason").unwrap(),
            outcome: r.try_get("", "outcome").unwrap(),
        })
        .collect()
}

pub(super) fn anna() -> Who<'static> {
    Some(("anna@support", None))
}

/// Posts the form of `action` found on the billable's page, with `extra`
/// fields and a reason; answers the status and where it went.
pub(super) async fn act<S, B>(
    app: &S,
    billable: &str,
    action: &str,
    extra: &[(&str, &str)],
) -> (u16, String, Option<String>)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let encoded = billable.replace(':', "%3A");
    let (_, page, _) = ask(app, anna(), &format!("/b/{encoded}"), None).await;
    let token = token(&page, action);
    let mut form = vec![("token", token.as_str()), ("reason", "ticket 99")];
    form.extend_from_slice(extra);
    ask(app, anna(), action, Some(&form)).await
}
