//! Sign-up, confirmed by a link mailed to the address, so the form answers
//! the same whether or not the address has an account (no one learns who
//! uses the app by signing up as them).
//!
//! `POST /signup` hashes the password in every case, then mails either a
//! link that makes the account (a new address: the sign-up waits in
//! `signups`, found by the link's SHA-256) or a note that the address
//! already has one, and sends the browser to `/signup/sent` in both cases.
//! `GET /signup/confirm/{token}` shows a button (a mail scanner that
//! follows links makes nothing); posting it makes the account in one
//! transaction that takes the waiting row, so a link works once, and signs
//! the browser in.

use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use askama::Template;
use askama_web::WebTemplate;
use octany_actix::notices::{Mail, Mailer};
use sea_orm::entity::prelude::*;
use sea_orm::{ActiveValue::Set, QueryFilter, SqlErr, TransactionTrait};

use crate::auth::{AuthPage, Credentials, Next, client_address, signed_in};
use crate::errors::AppError;
use crate::pages::Layout;
use crate::throttle::{self, Counted};
use crate::tokens::{digest, random_hex};
use crate::{AppState, csrf, passwords, user, validate};

/// A sign-up waiting for its link to be followed.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "signups")]
pub struct Model {
    /// SHA-256 (hex) of the link's token.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// The address the link was mailed to.
    pub email: String,
    /// The name given.
    pub name: Option<String>,
    /// The password's hash (Argon2id PHC string).
    pub password_hash: String,
    /// Where to go once signed in (a local path, or empty).
    pub next: String,
    /// When the link stops working.
    pub expires_at: DateTimeUtc,
    /// When the form was posted.
    pub created_at: DateTimeUtc,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// How long a sign-up link works.
pub const LINK_TTL: chrono::Duration = chrono::Duration::hours(24);

/// The app's own mails (sign-up links): SMTP when `SMTP_URL` is set, else
/// written into the data directory (shown at `/dev/mail` against the fake).
pub struct AccountMail(Box<dyn Mailer>);

impl AccountMail {
    /// Sends through `mailer`.
    pub fn new(mailer: Box<dyn Mailer>) -> Self {
        Self(mailer)
    }
}

impl std::fmt::Debug for AccountMail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccountMail")
    }
}

/// The pages of a sign-up: link sent, confirm, link spent.
#[derive(Debug, Template, WebTemplate)]
#[template(path = "signup.html")]
pub struct SignupPage {
    layout: Layout,
    /// `sent`, `confirm` or `spent`.
    step: &'static str,
    token: String,
}

/// A mail to `to` from the app.
fn mail(to: &str, subject: &str, text: String) -> Mail {
    Mail {
        to: to.to_owned(),
        subject: subject.to_owned(),
        text,
        attachments: Vec::new(),
        message_id: format!("<signup.{}@example-app>", &random_hex()[..32]),
        kind: "signup".into(),
        locale: octany_actix::config::Locale::En,
        facts: Vec::new(),
    }
}

/// `GET /signup`.
pub async fn form(
    state: web::Data<AppState>,
    session: Session,
    query: web::Query<Next>,
) -> AuthPage {
    AuthPage::new(
        &state,
        &session,
        true,
        query.next.clone().unwrap_or_default(),
    )
}

/// `POST /signup`: the same answer, and the same work, for an address with
/// an account and one without.
pub async fn submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    form: web::Form<Credentials>,
) -> Result<HttpResponse, AppError> {
    csrf::check(&session, &form.csrf)?;
    let limits = state.limits;
    let address = client_address(&req, &state);
    // Every sign-up counts against the address, made or not.
    if let Err(refused) = throttle::attempt(
        &state.db,
        &state.clock,
        limits.window,
        &[Counted::new(
            "signup-address",
            &address,
            limits.signup_per_address,
        )],
    )
    .await?
    {
        return Err(AppError::TooMany(refused));
    }
    let page = AuthPage::new(&state, &session, true, form.next.clone());
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    let email = match validate::email(&form.email) {
        Ok(email) => email,
        Err(problem) => return Ok(page.again(unprocessable, problem, &form)),
    };
    let name = match validate::name(&form.name, false) {
        Ok(name) => name,
        Err(problem) => return Ok(page.again(unprocessable, problem, &form)),
    };
    if let Some(problem) = passwords::policy_problem(&form.password, &email, &name) {
        return Ok(page.again(unprocessable, &problem, &form));
    }
    let known = user::Entity::find()
        .filter(user::Column::Email.eq(&email))
        .one(&state.db)
        .await?
        .is_some();
    // Hashed either way, so a known address takes as long as a new one.
    let hash = state.passwords.hash(form.password.clone()).await?;
    let base = &state.public_url;
    let sent = if known {
        state.mail.0.send(&mail(
            &email,
            "You already have an account",
            format!(
                "Someone (you, perhaps) tried to sign up with this address, which already has an account.\r\n\r\nLog in at:\r\n\r\n{base}/login\r\n\r\nIf it was not you, nothing has changed: your account and password are as they were.\r\n"
            ),
        ))
        .await
    } else {
        let token = random_hex()[..32].to_owned();
        let next = if octany_actix::billing::is_local_path(&form.next) && form.next.len() <= 2048 {
            form.next.clone()
        } else {
            String::new()
        };
        Entity::insert(ActiveModel {
            id: Set(digest(&token)),
            email: Set(email.clone()),
            name: Set((!name.is_empty()).then_some(name)),
            password_hash: Set(hash),
            next: Set(next),
            expires_at: Set(state.clock.now() + LINK_TTL),
            created_at: Set(state.clock.now()),
        })
        .exec_without_returning(&state.db)
        .await?;
        state.mail.0.send(&mail(
            &email,
            "Confirm your e-mail address",
            format!(
                "Follow this link within 24 hours to confirm your address and finish signing up:\r\n\r\n{base}/signup/confirm/{token}\r\n\r\nIf you did not sign up, ignore this mail: no account is made.\r\n"
            ),
        ))
        .await
    };
    // Unsent: 503, and nothing to undo (a waiting row is pruned with its link).
    sent.map_err(|e| AppError::Mail(e.to_string()))?;
    Ok(HttpResponse::SeeOther()
        .insert_header((actix_web::http::header::LOCATION, "/signup/sent"))
        .finish())
}

/// `GET /signup/sent`.
pub async fn sent(state: web::Data<AppState>, session: Session) -> SignupPage {
    SignupPage {
        layout: Layout::new(&state, &session, None),
        step: "sent",
        token: String::new(),
    }
}

/// The waiting sign-up of `token`, if its link still works.
async fn waiting(
    db: &impl ConnectionTrait,
    token: &str,
    now: DateTimeUtc,
) -> Result<Option<Model>, AppError> {
    Ok(Entity::find_by_id(digest(token))
        .filter(Column::ExpiresAt.gt(now))
        .one(db)
        .await?)
}

/// The page saying a link was used or has expired (410).
fn spent(state: &AppState, session: &Session) -> HttpResponse {
    let page = SignupPage {
        layout: Layout::new(state, session, None),
        step: "spent",
        token: String::new(),
    };
    crate::errors::html(StatusCode::GONE, &page)
}

/// `GET /signup/confirm/{token}`: a button, not the account (a link
/// followed by a mail scanner makes nothing).
pub async fn confirm_form(
    state: web::Data<AppState>,
    session: Session,
    token: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let token = token.into_inner();
    if waiting(&state.db, &token, state.clock.now())
        .await?
        .is_none()
    {
        return Ok(spent(&state, &session));
    }
    let page = SignupPage {
        layout: Layout::new(&state, &session, None),
        step: "confirm",
        token,
    };
    Ok(crate::errors::html(StatusCode::OK, &page))
}

/// `POST /signup/confirm/{token}`: the account is made and the browser
/// signed in, once; every waiting sign-up of the address ends with it.
pub async fn confirm(
    state: web::Data<AppState>,
    session: Session,
    token: web::Path<String>,
    form: web::Form<crate::auth::CsrfForm>,
) -> Result<HttpResponse, AppError> {
    csrf::check(&session, form.token())?;
    let now = state.clock.now();
    let Some(found) = waiting(&state.db, &token, now).await? else {
        return Ok(spent(&state, &session));
    };
    let txn = state.db.begin().await?;
    // The transaction's first statement takes every waiting sign-up of the
    // address (the rows on PostgreSQL and MySQL, the database on SQLite),
    // so a second post of this link or of another one mailed to the same
    // address (a double click, another tab) waits here, then finds its
    // row gone: a link works once, and an address makes one account.
    Entity::update_many()
        .col_expr(Column::ExpiresAt, Expr::col(Column::ExpiresAt))
        .filter(Column::Email.eq(&found.email))
        .exec(&txn)
        .await?;
    let Some(pending) = waiting(&txn, &token, now).await? else {
        return Ok(spent(&state, &session));
    };
    Entity::delete_many()
        .filter(Column::Email.eq(&pending.email))
        .exec(&txn)
        .await?;
    let created = user::Entity::insert(user::ActiveModel {
        email: Set(pending.email),
        name: Set(pending.name),
        password_hash: Set(pending.password_hash),
        created_at: Set(state.clock.now()),
        ..Default::default()
    })
    .exec(&txn)
    .await;
    let id = match created {
        Ok(created) => created.last_insert_id,
        // Confirmed by another link of the same address at the same moment.
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            drop(txn);
            return Ok(spent(&state, &session));
        }
        Err(e) => return Err(e.into()),
    };
    txn.commit().await?;
    tracing::info!(user = id, "signed up");
    signed_in(&session, id, &pending.next)
}

/// Deletes sign-ups whose links have expired; returns how many.
pub async fn prune(
    db: &sea_orm::DatabaseConnection,
    clock: &octany_actix::clock::SharedClock,
) -> Result<u64, DbErr> {
    Ok(Entity::delete_many()
        .filter(Column::ExpiresAt.lte(clock.now()))
        .exec(db)
        .await?
        .rows_affected)
}
