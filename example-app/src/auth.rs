//! Sign-up, login, logout (argon2id), and the `user::Model` extractor that
//! octany-actix's guard composes with.

use std::future::Future;
use std::pin::Pin;

use actix_session::{Session, SessionExt};
use actix_web::{
    FromRequest, HttpRequest, HttpResponse, dev::Payload, error::InternalError, http::header, web,
};
use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash};
use askama::Template;
use askama_web::WebTemplate;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use serde::Deserialize;

use crate::pages::Layout;
use crate::{AppState, csrf, user};

const USER_KEY: &str = "user_id";

fn wants_html(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|accept| {
            accept.contains("text/html") || accept.contains("*/*") && !accept.contains("json")
        })
}

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
            let id = session.get::<i64>(USER_KEY).ok().flatten();
            let found = match id {
                Some(id) => user::Entity::find_by_id(id)
                    .one(&state.db)
                    .await
                    .map_err(actix_web::error::ErrorServiceUnavailable)?,
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
                        .json(serde_json::json!({"error": "login required"}))
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
    next: String,
}

/// The sign-up and login form.
#[derive(Debug, Deserialize)]
pub struct Credentials {
    email: String,
    password: String,
    #[serde(default)]
    name: String,
    csrf: String,
    #[serde(default)]
    next: String,
}

/// Where to go after signing in.
#[derive(Debug, Deserialize)]
pub struct Next {
    next: Option<String>,
}

async fn page(
    state: &AppState,
    session: &Session,
    signup: bool,
    error: Option<String>,
    email: String,
    next: String,
) -> AuthPage {
    AuthPage {
        layout: Layout::new(state, session, None),
        signup,
        error,
        email,
        next,
    }
}

/// `GET /signup`.
pub async fn signup_form(
    state: web::Data<AppState>,
    session: Session,
    query: web::Query<Next>,
) -> AuthPage {
    page(
        &state,
        &session,
        true,
        None,
        String::new(),
        query.next.clone().unwrap_or_default(),
    )
    .await
}

/// `GET /login`.
pub async fn login_form(
    state: web::Data<AppState>,
    session: Session,
    query: web::Query<Next>,
) -> AuthPage {
    page(
        &state,
        &session,
        false,
        None,
        String::new(),
        query.next.clone().unwrap_or_default(),
    )
    .await
}

fn signed_in(session: &Session, id: i64, next: &str) -> actix_web::Result<HttpResponse> {
    session.renew();
    session.insert(USER_KEY, id)?;
    let to = if octany_actix::billing::is_local_path(next) {
        next
    } else {
        "/pricing"
    };
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .finish())
}

/// `POST /signup`.
pub async fn signup(
    state: web::Data<AppState>,
    session: Session,
    form: web::Form<Credentials>,
) -> actix_web::Result<HttpResponse> {
    csrf::check(&session, &form.csrf)?;
    let email = form.email.trim().to_lowercase();
    let taken = user::Entity::find()
        .filter(user::Column::Email.eq(&email))
        .one(&state.db)
        .await
        .map_err(actix_web::error::ErrorServiceUnavailable)?;
    let problem = if !email.contains('@') || email.len() > 255 {
        Some("Enter an e-mail address.")
    } else if form.password.chars().count() < 8 {
        Some("Choose a password of at least 8 characters.")
    } else if taken.is_some() {
        Some("That e-mail already has an account: log in instead.")
    } else {
        None
    };
    if let Some(problem) = problem {
        let page = page(
            &state,
            &session,
            true,
            Some(problem.to_owned()),
            email,
            form.next.clone(),
        )
        .await;
        return Ok(HttpResponse::UnprocessableEntity()
            .content_type("text/html; charset=utf-8")
            .body(page.render().unwrap_or_default()));
    }
    let hash = Argon2::default()
        .hash_password(form.password.as_bytes())
        .map_err(actix_web::error::ErrorInternalServerError)?
        .to_string();
    let name = form.name.trim();
    let created = user::Entity::insert(user::ActiveModel {
        email: Set(email.clone()),
        name: Set((!name.is_empty()).then(|| name.to_owned())),
        password_hash: Set(hash),
        created_at: Set(state.octany.clock().now()),
        ..Default::default()
    })
    .exec(&state.db)
    .await
    .map_err(actix_web::error::ErrorServiceUnavailable)?;
    tracing::info!(user = created.last_insert_id, "signed up");
    signed_in(&session, created.last_insert_id, &form.next)
}

/// `POST /login`.
pub async fn login(
    state: web::Data<AppState>,
    session: Session,
    form: web::Form<Credentials>,
) -> actix_web::Result<HttpResponse> {
    csrf::check(&session, &form.csrf)?;
    let email = form.email.trim().to_lowercase();
    let found = user::Entity::find()
        .filter(user::Column::Email.eq(&email))
        .one(&state.db)
        .await
        .map_err(actix_web::error::ErrorServiceUnavailable)?;
    let verified = found.filter(|u| {
        PasswordHash::new(&u.password_hash)
            .map(|hash| {
                Argon2::default()
                    .verify_password(form.password.as_bytes(), &hash)
                    .is_ok()
            })
            .unwrap_or(false)
    });
    match verified {
        Some(user) => signed_in(&session, user.id, &form.next),
        None => {
            let page = page(
                &state,
                &session,
                false,
                Some("Wrong e-mail or password.".into()),
                email,
                form.next.clone(),
            )
            .await;
            Ok(HttpResponse::Unauthorized()
                .content_type("text/html; charset=utf-8")
                .body(page.render().unwrap_or_default()))
        }
    }
}

/// A form carrying only the CSRF token.
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

/// `POST /logout`.
pub async fn logout(
    session: Session,
    form: web::Form<CsrfForm>,
) -> actix_web::Result<HttpResponse> {
    csrf::check(&session, &form.csrf)?;
    session.purge();
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/"))
        .finish())
}
