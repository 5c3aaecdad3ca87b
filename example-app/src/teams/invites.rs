//! Invitations: an owner invites an e-mail address by a link (shown once, logged); the invited user opens it and joins.

use super::*;

use actix_web::cookie::{Cookie, CookieJar, Key};

/// The key that seals values kept in the session row (AES-256-GCM, by the
/// cookie crate's private jar), derived from `SESSION_KEY`.
#[derive(Clone)]
pub struct SealingKey(Key);

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealingKey(..)")
    }
}

impl SealingKey {
    /// A key of its own, derived from the session key's master bytes.
    pub fn derive_from(session_key: &Key) -> Self {
        Self(Key::derive_from(session_key.master()))
    }

    /// `value`, encrypted and authenticated.
    pub fn seal(&self, name: &str, value: &str) -> String {
        let mut jar = CookieJar::new();
        jar.private_mut(&self.0)
            .add(Cookie::new(name.to_owned(), value.to_owned()));
        jar.get(name)
            .map(|c| c.value().to_owned())
            .unwrap_or_default()
    }

    /// What [`SealingKey::seal`] sealed under `name`; `None` if it was not
    /// sealed by this key.
    pub fn unseal(&self, name: &str, sealed: &str) -> Option<String> {
        let mut jar = CookieJar::new();
        jar.add_original(Cookie::new(name.to_owned(), sealed.to_owned()));
        jar.private(&self.0).get(name).map(|c| c.value().to_owned())
    }
}

/// The invitation form.
#[derive(Debug, Deserialize)]
pub struct InviteForm {
    csrf: String,
    email: String,
}

/// `POST /team/invites`: an owner invites an e-mail address; the link is
/// shown once on the account page and logged (there is no mail server).
pub async fn invite(
    state: web::Data<AppState>,
    session: Session,
    member: TeamMember,
    req: HttpRequest,
    form: web::Form<InviteForm>,
) -> Result<HttpResponse, AppError> {
    csrf::check(&session, &form.csrf)?;
    if !member.is_owner() {
        return Err(AppError::NotOwner);
    }
    let email = match validate::email(&form.email) {
        Ok(email) => email,
        Err(problem) => {
            return Ok(HttpResponse::build(StatusCode::UNPROCESSABLE_ENTITY)
                .json(serde_json::json!({"error": "invalid_email", "message": problem})));
        }
    };
    // The count and the invitation in one transaction that first takes the
    // team's row (a no-op write: the row's lock on PostgreSQL and MySQL,
    // the database's write lock on SQLite), so two invitations sent at
    // once cannot both take the last seat.
    let now = state.clock.now();
    let txn = state.db.begin().await?;
    team::Entity::update_many()
        .col_expr(
            team::Column::Name,
            sea_orm::sea_query::Expr::col(team::Column::Name),
        )
        .filter(team::Column::Id.eq(member.team.id))
        .exec(&txn)
        .await?;
    // Every seat of the plan taken: refused before anything is written.
    let seats = state
        .teams
        .billing(&member)
        .allowance::<crate::billing::Seats>(seats_used_on(&txn, member.team.id, now).await?)
        .await?;
    if let Err(over) = seats.check(1) {
        txn.rollback().await?;
        tracing::info!(team = member.team.id, error = %over, "invitation refused");
        if crate::errors::wants_html(&req) {
            return Ok(see_other("/team/account?done=over_seats"));
        }
        return Err(over.into());
    }
    let token = random_hex();
    invite::Entity::insert(invite::ActiveModel {
        id: Set(digest(&token)),
        team_id: Set(member.team.id),
        email: Set(email.clone()),
        invited_by: Set(member.user.id),
        expires_at: Set(now + chrono::Duration::days(INVITE_DAYS)),
        accepted_at: Set(None),
        created_at: Set(now),
    })
    .exec_without_returning(&txn)
    .await?;
    txn.commit().await?;
    let link = format!("{}/invites/{token}", state.public_url);
    // The link is a credential: shown to the owner once, never logged, and
    // sealed in the session row until it is shown.
    tracing::info!(team = member.team.id, invited = %email, "invitation made");
    session
        .insert("invite_link", state.sealing.seal("invite_link", &link))
        .map_err(|e| AppError::Session(e.to_string()))?;
    Ok(see_other("/team/account?done=invited"))
}

/// A usable invitation by its link's token, and its team.
async fn usable(state: &AppState, token: &str) -> Result<(invite::Model, team::Model), AppError> {
    let found = invite::Entity::find_by_id(digest(token))
        .one(&state.db)
        .await?;
    let invite = found
        .filter(|i| i.accepted_at.is_none() && i.expires_at > state.clock.now())
        .ok_or(AppError::NotFound)?;
    let team = team::Entity::find_by_id(invite.team_id)
        .one(&state.db)
        .await?
        .ok_or(AppError::NotFound)?;
    Ok((invite, team))
}

/// The invitation page.
#[derive(Debug, Template, WebTemplate)]
#[template(path = "invite.html")]
pub struct InvitePage {
    layout: Layout,
    team: String,
    email: String,
    token: String,
    signed_in_as: Option<String>,
    next: String,
}

/// `GET /invites/{token}`: who is invited to what, and how to accept
/// (signed in with the invited e-mail), or 404 for a used, expired or
/// unknown link.
pub async fn invitation(
    state: web::Data<AppState>,
    session: Session,
    token: web::Path<String>,
) -> Result<InvitePage, AppError> {
    let (invite, team) = usable(&state, &token).await?;
    let user = match user_id(&session) {
        Some(id) => user::Entity::find_by_id(id).one(&state.db).await?,
        None => None,
    };
    let next: String =
        url::form_urlencoded::byte_serialize(format!("/invites/{token}").as_bytes()).collect();
    Ok(InvitePage {
        layout: Layout::new(&state, &session, user.as_ref()),
        team: team.name,
        email: invite.email,
        token: token.into_inner(),
        signed_in_as: user.map(|u| u.email),
        next,
    })
}

/// `POST /invites/{token}`: the invited user joins (once: the link is
/// used up in the same statement that checks it) and switches to the team.
pub async fn accept(
    state: web::Data<AppState>,
    session: Session,
    user: user::Model,
    token: web::Path<String>,
    form: web::Form<crate::auth::CsrfForm>,
) -> Result<HttpResponse, AppError> {
    csrf::check(&session, form.token())?;
    let (invite, team) = usable(&state, &token).await?;
    if invite.email != user.email {
        return Err(AppError::NotFound);
    }
    let now = state.clock.now();
    let txn = state.db.begin().await?;
    let used = invite::Entity::update_many()
        .col_expr(
            invite::Column::AcceptedAt,
            sea_orm::sea_query::Expr::value(now),
        )
        .filter(invite::Column::Id.eq(invite.id.clone()))
        .filter(invite::Column::AcceptedAt.is_null())
        .exec(&txn)
        .await?;
    if used.rows_affected != 1 {
        return Err(AppError::NotFound);
    }
    if member::Entity::find_by_id((team.id, user.id))
        .one(&txn)
        .await?
        .is_none()
    {
        member::Entity::insert(member::ActiveModel {
            team_id: Set(team.id),
            user_id: Set(user.id),
            role: Set(member::MEMBER.into()),
            created_at: Set(now),
        })
        .exec_without_returning(&txn)
        .await?;
    }
    txn.commit().await?;
    tracing::info!(
        team = team.id,
        member = user.id,
        "joined a team by invitation"
    );
    session
        .insert(TEAM_KEY, team.id)
        .map_err(|e| AppError::Session(e.to_string()))?;
    Ok(see_other("/team"))
}
