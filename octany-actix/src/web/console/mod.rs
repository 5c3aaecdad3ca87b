//! The operator's console: find a billable, read its timeline (webhooks,
//! syncs, API calls, billing events and their listeners, checkouts,
//! charges, comps, operators' actions) beside the guard's answer and its
//! reason, act on it (audited, `web::ops`), and see the health of the
//! whole. Server-rendered, no script, every action a form with a token.
//!
//! Who may: whoever the host's [`Staff`] extractor admits. The library
//! never decides who is an admin, and [`Octany::console`] cannot be
//! mounted without naming that extractor.

mod actions;
mod pages;
mod timeline;

use actix_web::{FromRequest, HttpResponse, web};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::domain::model::BillableRef;
use crate::web::octany::Octany;

/// The host's admin extractor, as the console asks it: who is acting, and
/// which billables they may see. Its extraction failing is the refusal
/// (answer 401 or 403 from `FromRequest` for anyone who is not staff);
/// the console has no other door.
///
/// ```
/// use std::future::{Ready, ready};
/// use actix_web::{FromRequest, HttpRequest, dev::Payload, error::ErrorForbidden};
/// use octany_actix::ops::Staff;
///
/// /// One of our support staff (here: named by a header a proxy sets).
/// struct Support { name: String }
///
/// impl FromRequest for Support {
///     type Error = actix_web::Error;
///     type Future = Ready<Result<Self, Self::Error>>;
///     fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
///         ready(match req.headers().get("x-staff").and_then(|v| v.to_str().ok()) {
///             Some(name) => Ok(Support { name: name.to_owned() }),
///             None => Err(ErrorForbidden("staff only")),
///         })
///     }
/// }
///
/// impl Staff for Support {
///     fn staff_name(&self) -> String { self.name.clone() }
/// }
///
/// # fn mount(octany: octany_actix::Octany) {
/// let app = actix_web::App::new().service(octany.console::<Support>("/admin/billing"));
/// # }
/// ```
///
/// A type that is not staff cannot mount it:
///
/// ```compile_fail
/// # fn mount(octany: octany_actix::Octany) {
/// let app = actix_web::App::new().service(octany.console::<()>("/admin/billing"));
/// # }
/// ```
pub trait Staff: FromRequest + 'static {
    /// Who acts, as the audit log records them (`anna@support`).
    fn staff_name(&self) -> String;

    /// Whether they may see and act for `billable`. A console scoped to
    /// one tenant answers false for every other: searches do not find
    /// them, their pages are 404, and the health page's lists leave them
    /// out. Default: every billable.
    fn may_see(&self, billable: &BillableRef) -> bool {
        let _ = billable;
        true
    }

    /// The billables `query` names in the host's own records (an account's
    /// sign-in e-mail, a team's name), found beside what the library finds
    /// in its own (billing e-mails and ids): a customer who never reached
    /// Octany is found too. Default: none.
    fn find(&self, query: &str) -> impl std::future::Future<Output = Vec<BillableRef>> {
        let _ = query;
        std::future::ready(Vec::new())
    }
}

/// Where the console is mounted, for its links.
#[derive(Debug, Clone)]
struct Mount(String);

impl Mount {
    fn path(&self, rest: &str) -> String {
        format!("{}/{rest}", self.0)
    }

    fn billable(&self, billable: &str) -> String {
        self.path(&format!("b/{}", encode(billable)))
    }
}

/// `text` as one URL path segment.
fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

impl Octany {
    /// The operator's console, mounted at `path` behind `S`, the host's
    /// admin extractor ([`Staff`]):
    ///
    /// - `GET {path}?q=`: find a billable by reference, billing e-mail,
    ///   subscription, order or checkout id (one match goes straight to it);
    /// - `GET {path}/b/{billable}`: its plans with the guard's answer and
    ///   the rule behind it, and its timeline, newest first: each webhook
    ///   delivery (applied, unchanged, stale, duplicate, failed; with its
    ///   body), each billing event (which poll, reconcile, action or
    ///   webhook made it) and its listeners, each request to Octany, each
    ///   checkout, charge and comp, each operator's action;
    /// - `POST {path}/b/{billable}/{resync,cancel,swap,comps}`,
    ///   `POST {path}/comps/{id}/revoke`, `POST {path}/deliveries/{id}/replay`,
    ///   `POST {path}/events/{id}/retry`, `POST {path}/health/endpoint`:
    ///   the actions, each with a reason, audited (`web::ops`);
    /// - `GET {path}/health`: failed deliveries, the outbox's backlog, the
    ///   request budget, the reconcile's lease, backlog and drift, the
    ///   webhook endpoint (and a check of it: a signed `test.hook` posted
    ///   to it, as `doctor` does).
    ///
    /// Every form carries a token bound to the member of staff, the
    /// action and its target, made with the API key and valid for a day:
    /// another site cannot post one.
    pub fn console<S: Staff>(&self, path: &str) -> actix_web::Scope {
        let mount = Mount(path.trim_end_matches('/').to_owned());
        web::scope(&mount.0)
            .app_data(web::Data::new(self.clone()))
            .app_data(web::Data::new(mount))
            .route("", web::get().to(pages::search::<S>))
            .route("/", web::get().to(pages::search::<S>))
            .route("/health", web::get().to(pages::health::<S>))
            .route("/console.css", web::get().to(stylesheet))
            .route("/b/{billable}", web::get().to(pages::billable::<S>))
            .route(
                "/b/{billable}/{action}",
                web::post().to(actions::on_billable::<S>),
            )
            .route(
                "/comps/{id}/revoke",
                web::post().to(actions::revoke_comp::<S>),
            )
            .route(
                "/deliveries/{id}/replay",
                web::post().to(actions::replay::<S>),
            )
            .route("/events/{id}/retry", web::post().to(actions::retry::<S>))
            .route(
                "/health/endpoint",
                web::post().to(actions::check_endpoint::<S>),
            )
    }
}

/// `GET console.css`: the console's look, a file (no inline style or
/// script for a host's `Content-Security-Policy` to allow).
async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("cache-control", "public, max-age=3600"))
        .body(include_str!(
            "../../../templates/octany/console/console.css"
        ))
}

/// A form's token's MAC: under the API key, of the member of staff, the
/// action, its target and the day it was made.
fn mac(octany: &Octany, staff: &str, action: &str, target: &str, day: i64) -> Hmac<Sha256> {
    let key = octany.client().config().api_key().expose().as_bytes();
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    for part in [
        "octany-actix console",
        staff,
        action,
        target,
        &day.to_string(),
    ] {
        mac.update(part.as_bytes());
        mac.update(b"\0");
    }
    mac
}

/// Today, as the tokens count days.
fn today(octany: &Octany) -> i64 {
    octany.clock().now().timestamp().div_euclid(86_400)
}

/// The token a form for `action` on `target` carries today.
fn token(octany: &Octany, staff: &str, action: &str, target: &str) -> String {
    let day = today(octany);
    hex::encode(
        mac(octany, staff, action, target, day)
            .finalize()
            .into_bytes(),
    )
}

/// Whether `given` is a token of today's or yesterday's for this member
/// of staff, action and target (compared in constant time).
fn token_holds(octany: &Octany, staff: &str, action: &str, target: &str, given: &str) -> bool {
    let Ok(given) = hex::decode(given) else {
        return false;
    };
    let today = today(octany);
    [today, today - 1].into_iter().any(|day| {
        mac(octany, staff, action, target, day)
            .verify_slice(&given)
            .is_ok()
    })
}

/// The console's refusal of a billable the member of staff may not see:
/// the same as for one that does not exist.
fn not_found() -> HttpResponse {
    HttpResponse::NotFound()
        .content_type("text/plain; charset=utf-8")
        .body("No such billable here.")
}
