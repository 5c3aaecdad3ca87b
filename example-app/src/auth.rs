//! Login, logout and password change, and the `user::Model` extractor
//! that octany-actix's guard composes with (sign-up is [`crate::signup`]).
//!
//! Logins are throttled ([`throttle`]),
//! passwords are hashed off the request workers
//! ([`Passwords`](crate::passwords::Passwords)), an unknown e-mail costs the
//! same as a wrong password, and a login renews the session's key.

use std::future::Future;
use std::pin::Pin;

use actix_session::{Session, SessionExt};
use actix_web::{
    FromRequest, HttpRequest, HttpResponse, dev::Payload, error::InternalError, http::header, web,
};
use askama::Template;
use askama_web::WebTemplate;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use serde::Deserialize;

use crate::errors::{AppError, wants_html};
use crate::pages::Layout;
use crate::sessions::{USER_KEY, user_id};
use crate::throttle::{self, Counted};
use crate::{AppState, csrf, passwords, sessions, user, validate};

/// The signed-in user; browsers without one are sent to `/login`.
impl FromRequest for user::Model {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let session = req.get_session();
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let html = wants_html(req);
        let path = req.path().to_owned();
        Box::pin(async move {
            let state = state.ok_or_else(|| {
                actix_web::error::ErrorInternalServerError("AppState is not registered")
            })?;
            let found = match user_id(&session) {
                Some(id) => user::Entity::find_by_id(id)
                    .one(&state.db)
                    .await
                    .map_err(AppError::from)?,
                None => None,
            };
            found.ok_or_else(|| {
                let response = if html {
                    let next: String =
                        url::form_urlencoded::byte_serialize(path.as_bytes()).collect();
                    HttpResponse::SeeOther()
                        .insert_header((header::LOCATION, format!("/login?next={next}")))
                        .finish()
                } else {
                    HttpResponse::Unauthorized()
                        .json(serde_json::json!({"error": "login_required", "message": "Log in to continue."}))
                };
                InternalError::from_response("login required", response).into()
            })
        })
    }
}

/// The sign-up and login page.
#[derive(Debug, Template, WebTemplate)]
#[template(path = "auth.html")]
pub struct AuthPage {
    layout: Layout,
    signup: bool,
    error: Option<String>,
    email: String,
    name: String,
    next: String,
}

/// The sign-up and login form.
#[derive(Debug, Deserialize)]
pub struct Credentials {
    pub(crate) email: String,
    pub(crate) password: String,
    #[serde(default)]
    pub(crate) name: String,
    pub(crate) csrf: String,
    #[serde(default)]
    pub(crate) next: String,
}

/// Where to go after signing in.
#[derive(Debug, Deserialize)]
pub struct Next {
    pub(crate) next: Option<String>,
}

impl AuthPage {
    pub(crate) fn new(state: &AppState, session: &Session, signup: bool, next: String) -> Self {
        Self {
            layout: Layout::new(state, session, None),
            signup,
            error: None,
            email: String::new(),
            name: String::new(),
            next,
        }
    }

    /// The form again, with the user's input (never the password) and why.
    pub(crate) fn again(
        mut self,
        status: actix_web::http::StatusCode,
        error: &str,
        form: &Credentials,
    ) -> HttpResponse {
        self.error = Some(error.to_owned());
        self.email = form
            .email
            .trim()
            .chars()
            .take(validate::EMAIL_MAX)
            .collect();
        self.name = form.name.trim().chars().take(validate::NAME_MAX).collect();
        crate::errors::html(status, &self)
    }
}

/// `GET /login`.
pub async fn login_form(
    state: web::Data<AppState>,
    session: Session,
    query: web::Query<Next>,
) -> AuthPage {
    AuthPage::new(
        &state,
        &session,
        false,
        query.next.clone().unwrap_or_default(),
    )
}

/// A new session key for the user (no fixation), then on to `next`.
pub(crate) fn signed_in(session: &Session, id: i64, next: &str) -> Result<HttpResponse, AppError> {
    session.renew();
    csrf::rotate(session);
    session
        .insert(USER_KEY, id)
        .map_err(|e| AppError::Session(e.to_string()))?;
    let to = if octany_actix::billing::is_local_path(next) {
        next
    } else {
        "/pricing"
    };
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .finish())
}

/// The client's address: the peer's, or (with `TRUST_PROXY_HEADERS`, behind
/// one proxy) the last address of `X-Forwarded-For`, the one that proxy saw;
/// the first ones are whatever the client chose to send.
pub fn client_address(req: &HttpRequest, state: &AppState) -> String {
    if state.trust_proxy_headers
        && let Some(ip) = req
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .map(str::trim)
            .filter(|ip| ip.parse::<std::net::IpAddr>().is_ok())
    {
        return ip.to_owned();
    }
    req.peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default()
}

/// `POST /login`.
pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    form: web::Form<Credentials>,
) -> Result<HttpResponse, AppError> {
    csrf::check(&session, &form.csrf)?;
    let limits = state.limits;
    let email = form.email.trim().to_lowercase();
    let address = client_address(&req, &state);
    let found = user::Entity::find()
        .filter(user::Column::Email.eq(&email))
        .one(&state.db)
        .await?;
    // Counted against the account the lookup found, not the text typed: a
    // variant the column's collation matches to it (an accent on MySQL)
    // is the same account, and gets no attempts of its own.
    let account = found
        .as_ref()
        .map_or_else(|| email.clone(), |u| format!("user:{}", u.id));
    let attempt = match throttle::attempt(
        &state.db,
        &state.clock,
        limits.window,
        &[
            Counted::new("login-account", &account, limits.login_per_account),
            Counted::new("login-address", &address, limits.login_per_address),
        ],
    )
    .await?
    {
        Ok(attempt) => attempt,
        Err(refused) => {
            tracing::warn!(%address, "login throttled");
            return Err(AppError::TooMany(refused));
        }
    };
    // The same work whether or not the e-mail has an account.
    let stored = found.as_ref().map(|u| u.password_hash.clone());
    let verified = state
        .passwords
        .verify(form.password.clone(), stored)
        .await?;
    match found.filter(|_| verified) {
        Some(user) => {
            attempt.forgive(&state.db).await?;
            signed_in(&session, user.id, &form.next)
        }
        None => Ok(
            AuthPage::new(&state, &session, false, form.next.clone()).again(
                actix_web::http::StatusCode::UNAUTHORIZED,
                "Wrong e-mail or password.",
                &form,
            ),
        ),
    }
}

/// A form carrying only the CSRF token.
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

impl CsrfForm {
    /// The submitted token.
    pub fn token(&self) -> &str {
        &self.csrf
    }
}

/// `POST /logout`: the session's row is deleted, so its cookie is worthless.
pub async fn logout(session: Session, form: web::Form<CsrfForm>) -> Result<HttpResponse, AppError> {
    csrf::check(&session, &form.csrf)?;
    session.purge();
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/"))
        .finish())
}

/// The password change form.
#[derive(Debug, Deserialize)]
pub struct PasswordChange {
    csrf: String,
    current: String,
    new: String,
}

/// `POST /account/password`: checks the current password (throttled like a
/// login), applies the policy, and ends every session of the user; this one
/// continues under a new key.
pub async fn change_password(
    state: web::Data<AppState>,
    session: Session,
    user: user::Model,
    form: web::Form<PasswordChange>,
) -> Result<HttpResponse, AppError> {
    csrf::check(&session, &form.csrf)?;
    let limits = state.limits;
    let back = |query: &str| {
        HttpResponse::SeeOther()
            .insert_header((header::LOCATION, format!("/account?{query}")))
            .finish()
    };
    let attempt = match throttle::attempt(
        &state.db,
        &state.clock,
        limits.window,
        &[Counted::new(
            "login-account",
            &format!("user:{}", user.id),
            limits.login_per_account,
        )],
    )
    .await?
    {
        Ok(attempt) => attempt,
        Err(refused) => return Err(AppError::TooMany(refused)),
    };
    let verified = state
        .passwords
        .verify(form.current.clone(), Some(user.password_hash.clone()))
        .await?;
    if !verified {
        return Ok(back("failed=wrong-password"));
    }
    attempt.forgive(&state.db).await?;
    if passwords::policy_problem(
        &form.new,
        &user.email,
        user.name.as_deref().unwrap_or_default(),
    )
    .is_some()
    {
        return Ok(back("failed=weak-password"));
    }
    let hash = state.passwords.hash(form.new.clone()).await?;
    let id = user.id;
    let mut row: user::ActiveModel = user.into();
    row.password_hash = Set(hash);
    row.update(&state.db).await?;
    let ended = sessions::revoke_user(&state.db, id).await?;
    tracing::info!(
        user = id,
        sessions = ended,
        "password changed; every session ended"
    );
    session.renew();
    session
        .insert(USER_KEY, id)
        .map_err(|e| AppError::Session(e.to_string()))?;
    Ok(back("done=password"))
}
