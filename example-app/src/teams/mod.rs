//! Teams that pay for their members: create a team, invite members by a
//! link (no mail server: the link is shown to the owner and logged), switch
//! between teams, and the team's own billing: its checkout, guard, account
//! page and billing events, under `/team` with octany-actix mounted a second
//! time at `/team/billing` ([`Octany::mounted_at`]).
//!
//! The current team lives in the session and is checked against the
//! membership table on every request, so a member who is removed loses the
//! team's pages at once, and no one reaches a team they do not belong to.

use std::future::Future;
use std::pin::Pin;

use actix_session::{Session, SessionExt};
use actix_web::dev::Payload;
use actix_web::error::InternalError;
use actix_web::http::{StatusCode, header};
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use askama::Template;
use askama_web::WebTemplate;
use octany_actix::model::Entitlement;
use octany_actix::{Billable, Octany, RequireSubscription};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    TransactionTrait,
};
use serde::Deserialize;

use crate::errors::AppError;
use crate::errors::wants_html;
use crate::pages::{self, Layout};
use crate::sessions::user_id;
use crate::team::{self, invite, member};
use crate::tokens::{digest, random_hex};
use crate::{AppState, csrf, user, validate};

pub mod invites;
use invites::{accept, invitation, invite};

/// The session key of the current team.
const TEAM_KEY: &str = "team_id";
/// How long an invitation link works.
const INVITE_DAYS: i64 = 7;

/// The team billing, mounted at `/team/billing`: refusals go to
/// `/team/pricing`, a paid checkout lands on `/team`.
pub fn mount(octany: &Octany) -> Octany {
    octany.mounted_at("/team/billing", "/team/pricing", "/team")
}

/// The team routes; `teams` is [`mount`]'s billing.
pub fn routes(cfg: &mut web::ServiceConfig, teams: &Octany) {
    cfg.route("/teams", web::get().to(list))
        .route("/teams", web::post().to(create))
        .route("/teams/switch", web::post().to(switch))
        .route("/invites/{token}", web::get().to(invitation))
        .route("/invites/{token}", web::post().to(accept))
        // The billing scope first: `/team` would otherwise take its paths.
        .service(teams.scope::<TeamMember>())
        .service(
            web::scope("/team")
                .app_data(web::Data::new(teams.clone()))
                .route("", web::get().to(dashboard))
                .route("/pricing", web::get().to(pricing))
                .route("/account", web::get().to(account))
                .route("/invites", web::post().to(invite))
                .route("/cancel", web::post().to(cancel)),
        );
}

/// The signed-in user acting for their current team: the billable of every
/// team page (billing goes to the team, `team:{id}`).
#[derive(Debug, Clone)]
pub struct TeamMember {
    /// The team.
    pub team: team::Model,
    /// The signed-in member.
    pub user: user::Model,
    /// `owner` or `member`.
    pub role: String,
}

impl TeamMember {
    /// Whether the member manages the team (billing, invitations).
    pub fn is_owner(&self) -> bool {
        self.role == member::OWNER
    }
}

impl Billable for TeamMember {
    fn billable_id(&self) -> String {
        self.team.billable_id()
    }
    fn billable_type(&self) -> &'static str {
        self.team.billable_type()
    }
    fn billing_email(&self) -> Option<String> {
        self.team.billing_email()
    }
    fn billing_name(&self) -> Option<String> {
        self.team.billing_name()
    }
    /// Owners buy, swap and cancel for the team; members use what it pays for.
    fn may_manage_billing(&self) -> bool {
        self.is_owner()
    }
    fn billing_managers(&self) -> Option<String> {
        Some("the team's owners".to_owned())
    }
}

/// The current team of the signed-in user, if they are (still) a member.
async fn current(
    state: &AppState,
    session: &Session,
    user: &user::Model,
) -> Result<Option<TeamMember>, AppError> {
    let Some(team_id) = session.get::<i64>(TEAM_KEY).ok().flatten() else {
        return Ok(None);
    };
    membership(state, team_id, user).await
}

async fn membership(
    state: &AppState,
    team_id: i64,
    user: &user::Model,
) -> Result<Option<TeamMember>, AppError> {
    let Some(row) = member::Entity::find_by_id((team_id, user.id))
        .one(&state.db)
        .await?
    else {
        return Ok(None);
    };
    let Some(team) = team::Entity::find_by_id(team_id).one(&state.db).await? else {
        return Ok(None);
    };
    Ok(Some(TeamMember {
        team,
        user: user.clone(),
        role: row.role,
    }))
}

/// The current team; without one (or no longer a member) browsers are
/// sent to `/teams`, others get 404.
impl FromRequest for TeamMember {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let user = user::Model::from_request(req, payload);
        let session = req.get_session();
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let html = wants_html(req);
        Box::pin(async move {
            let user = user.await?;
            let state = state.ok_or_else(|| {
                actix_web::error::ErrorInternalServerError("AppState is not registered")
            })?;
            match current(&state, &session, &user).await? {
                Some(found) => Ok(found),
                None => {
                    let response = if html {
                        HttpResponse::SeeOther()
                            .insert_header((header::LOCATION, "/teams"))
                            .finish()
                    } else {
                        HttpResponse::NotFound().json(serde_json::json!({"error": "no_team", "message": "Choose a team you belong to first."}))
                    };
                    Err(InternalError::from_response("no current team", response).into())
                }
            }
        })
    }
}

/// A team in the list.
#[derive(Debug)]
pub struct TeamRow {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// The user's role in it.
    pub role: String,
    /// Whether it is the current one.
    pub current: bool,
}

/// `/teams`: the user's teams, switching, and a new team's form.
#[derive(Debug, Template, WebTemplate)]
#[template(path = "teams.html")]
pub struct TeamsPage {
    layout: Layout,
    teams: Vec<TeamRow>,
    personal: bool,
    error: Option<String>,
    name: String,
}

async fn teams_page(
    state: &AppState,
    session: &Session,
    user: &user::Model,
    error: Option<String>,
    name: String,
) -> Result<TeamsPage, AppError> {
    let memberships = member::Entity::find()
        .filter(member::Column::UserId.eq(user.id))
        .all(&state.db)
        .await?;
    let current = session.get::<i64>(TEAM_KEY).ok().flatten();
    let found = team::Entity::find()
        .filter(team::Column::Id.is_in(memberships.iter().map(|m| m.team_id)))
        .order_by_asc(team::Column::Name)
        .all(&state.db)
        .await?;
    let teams = found
        .into_iter()
        .map(|t| TeamRow {
            current: current == Some(t.id),
            role: memberships
                .iter()
                .find(|m| m.team_id == t.id)
                .map(|m| m.role.clone())
                .unwrap_or_default(),
            id: t.id,
            name: t.name,
        })
        .collect::<Vec<_>>();
    Ok(TeamsPage {
        layout: Layout::new(state, session, Some(user)),
        personal: !teams.iter().any(|t| t.current),
        teams,
        error,
        name,
    })
}

/// `GET /teams`.
pub async fn list(
    state: web::Data<AppState>,
    session: Session,
    user: user::Model,
) -> Result<TeamsPage, AppError> {
    teams_page(&state, &session, &user, None, String::new()).await
}

/// The new team form.
#[derive(Debug, Deserialize)]
pub struct NewTeam {
    csrf: String,
    name: String,
}

/// `POST /teams`: the user creates a team, owns it, and switches to it.
pub async fn create(
    state: web::Data<AppState>,
    session: Session,
    user: user::Model,
    form: web::Form<NewTeam>,
) -> Result<HttpResponse, AppError> {
    csrf::check(&session, &form.csrf)?;
    let name = match validate::name(&form.name, true) {
        Ok(name) => name,
        Err(problem) => {
            let kept = form.name.trim().chars().take(validate::NAME_MAX).collect();
            let page = teams_page(&state, &session, &user, Some(problem.to_owned()), kept).await?;
            return Ok(crate::errors::html(StatusCode::UNPROCESSABLE_ENTITY, &page));
        }
    };
    let now = state.clock.now();
    let txn = state.db.begin().await?;
    let made = team::Entity::insert(team::ActiveModel {
        name: Set(name),
        billing_email: Set(user.email.clone()),
        created_at: Set(now),
        ..Default::default()
    })
    .exec(&txn)
    .await?;
    member::Entity::insert(member::ActiveModel {
        team_id: Set(made.last_insert_id),
        user_id: Set(user.id),
        role: Set(member::OWNER.into()),
        created_at: Set(now),
    })
    .exec_without_returning(&txn)
    .await?;
    txn.commit().await?;
    tracing::info!(team = made.last_insert_id, owner = user.id, "team created");
    session
        .insert(TEAM_KEY, made.last_insert_id)
        .map_err(|e| AppError::Session(e.to_string()))?;
    Ok(see_other("/team/account"))
}

/// The switch form: a team's id, or empty for personal.
#[derive(Debug, Deserialize)]
pub struct Switch {
    csrf: String,
    #[serde(default)]
    team: String,
}

/// `POST /teams/switch`: to one of the user's teams (404 for any other), or
/// back to personal billing.
pub async fn switch(
    state: web::Data<AppState>,
    session: Session,
    user: user::Model,
    form: web::Form<Switch>,
) -> Result<HttpResponse, AppError> {
    csrf::check(&session, &form.csrf)?;
    if form.team.is_empty() {
        session.remove(TEAM_KEY);
        return Ok(see_other("/dashboard"));
    }
    let id: i64 = form.team.parse().map_err(|_| AppError::NotFound)?;
    if membership(&state, id, &user).await?.is_none() {
        return Err(AppError::NotFound);
    }
    session
        .insert(TEAM_KEY, id)
        .map_err(|e| AppError::Session(e.to_string()))?;
    Ok(see_other("/team"))
}

fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .finish()
}

/// The team's dashboard.
#[derive(Debug, Template, WebTemplate)]
#[template(path = "team_dashboard.html")]
pub struct TeamDashboard {
    layout: Layout,
    team: String,
    plan: String,
    status: String,
}

/// `GET /team`: for members of a paying team only (the guard reads the
/// team's subscription; refusals go to `/team/pricing`).
pub async fn dashboard(
    state: web::Data<AppState>,
    session: Session,
    paid: RequireSubscription<TeamMember>,
) -> Result<TeamDashboard, AppError> {
    // A comp (granted by support) has no Octany subscription to show.
    let plan = if paid.grant().comp {
        "a plan granted by support".to_owned()
    } else {
        paid.subscription()
            .await?
            .product_name
            .clone()
            .unwrap_or_default()
    };
    Ok(TeamDashboard {
        layout: Layout::new(&state, &session, Some(&paid.user.user)),
        team: paid.user.team.name.clone(),
        plan,
        status: paid.status().to_string(),
    })
}

/// `GET /team/pricing`: the plans, bought for the team by its owners.
pub async fn pricing(
    state: web::Data<AppState>,
    session: Session,
    member: TeamMember,
) -> Result<pages::PricingPage, AppError> {
    let for_team = pages::ForTeam {
        name: member.team.name.clone(),
        can_buy: member.is_owner(),
    };
    pages::pricing_for(
        &state,
        &session,
        Some(&member.user),
        &state.teams,
        Some(&member),
        Some(for_team),
    )
    .await
}

/// A member on the team's account page.
#[derive(Debug)]
pub struct MemberRow {
    /// E-mail.
    pub email: String,
    /// Role.
    pub role: String,
}

/// `GET /team/account`: members, invitations and the team's subscription.
#[derive(Debug, Template, WebTemplate)]
#[template(path = "team_account.html")]
pub struct TeamAccount {
    layout: Layout,
    team: String,
    owner: bool,
    members: Vec<MemberRow>,
    pending: Vec<(String, String)>,
    invite_link: Option<String>,
    /// Seats used (members and open invitations) against the plan's.
    seats: String,
    plan: Option<String>,
    status: String,
    ends: Option<String>,
    can_cancel: bool,
    flash: Option<String>,
}

/// What the last team action did.
#[derive(Debug, Deserialize)]
pub struct TeamFlash {
    done: Option<String>,
}

/// `GET /team/account`.
pub async fn account(
    state: web::Data<AppState>,
    session: Session,
    member: TeamMember,
    query: web::Query<TeamFlash>,
) -> Result<TeamAccount, AppError> {
    let rows = member::Entity::find()
        .filter(member::Column::TeamId.eq(member.team.id))
        .all(&state.db)
        .await?;
    let users = user::Entity::find()
        .filter(user::Column::Id.is_in(rows.iter().map(|r| r.user_id)))
        .order_by_asc(user::Column::Email)
        .all(&state.db)
        .await?;
    let members = users
        .into_iter()
        .map(|u| MemberRow {
            role: rows
                .iter()
                .find(|r| r.user_id == u.id)
                .map(|r| r.role.clone())
                .unwrap_or_default(),
            email: u.email,
        })
        .collect();
    let now = state.clock.now();
    let pending = invite::Entity::find()
        .filter(invite::Column::TeamId.eq(member.team.id))
        .filter(invite::Column::AcceptedAt.is_null())
        .filter(invite::Column::ExpiresAt.gt(now))
        .order_by_asc(invite::Column::CreatedAt)
        .all(&state.db)
        .await?
        .into_iter()
        .map(|i| (i.email, i.expires_at.format("%Y-%m-%d").to_string()))
        .collect();
    // The link of an invitation just made is shown once (only its hash is kept).
    let invite_link = session
        .remove_as::<String>("invite_link")
        .and_then(Result::ok)
        .and_then(|sealed| state.sealing.unseal("invite_link", &sealed));
    let billing = state.teams.billing(&member);
    let current = billing.subscription().await?;
    let clock = state.teams.clock().clone();
    let seats = billing
        .allowance::<crate::billing::Seats>(seats_used(&state, member.team.id).await?)
        .await?;
    Ok(TeamAccount {
        layout: Layout::new(&state, &session, Some(&member.user)),
        team: member.team.name.clone(),
        owner: member.is_owner(),
        members,
        pending,
        invite_link,
        seats: match seats.allowed {
            Some(allowed) => format!("{} of {allowed}", seats.used),
            None => format!("{} (no limit on this plan)", seats.used),
        },
        plan: current.as_ref().and_then(|s| s.product_name.clone()),
        status: current.as_ref().map(|s| s.status.to_string()).unwrap_or_else(|| "none".into()),
        ends: current.as_ref().and_then(|s| s.ends_at).map(|t| t.format("%Y-%m-%d").to_string()),
        can_cancel: member.is_owner() && current.as_ref().is_some_and(|s| s.is_paying(clock.as_ref())),
        flash: query.done.as_deref().map(|done| match done {
            "invited" => "Invitation made: send the link below to the person you invited.",
            "over_seats" => "Every seat of the team's plan is taken (members and open invitations count): upgrade the team's plan to invite more.",
            "cancelled" => "The team's subscription is cancelled. Members keep access until the end of the paid period.",
            _ => "Done.",
        }.to_owned()),
    })
}

/// The seats a team uses: its members and its open invitations.
pub async fn seats_used(state: &AppState, team: i64) -> Result<u64, AppError> {
    seats_used_on(&state.db, team, state.clock.now()).await
}

/// [`seats_used`] on `conn` (a transaction that holds the team's lock).
pub async fn seats_used_on<C: sea_orm::ConnectionTrait>(
    conn: &C,
    team: i64,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<u64, AppError> {
    let members = member::Entity::find()
        .filter(member::Column::TeamId.eq(team))
        .count(conn)
        .await?;
    let open = invite::Entity::find()
        .filter(invite::Column::TeamId.eq(team))
        .filter(invite::Column::AcceptedAt.is_null())
        .filter(invite::Column::ExpiresAt.gt(now))
        .count(conn)
        .await?;
    Ok(members + open)
}

/// `POST /team/cancel`: an owner cancels the team's subscription.
pub async fn cancel(
    state: web::Data<AppState>,
    session: Session,
    member: TeamMember,
    form: web::Form<crate::auth::CsrfForm>,
) -> Result<HttpResponse, AppError> {
    csrf::check(&session, form.token())?;
    if !member.is_owner() {
        return Err(AppError::NotOwner);
    }
    state.teams.billing(&member).cancel().await?;
    Ok(see_other("/team/account?done=cancelled"))
}
