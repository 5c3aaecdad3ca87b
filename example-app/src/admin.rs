//! Who may open the billing console (`/admin/billing`): the account named
//! by `ADMIN_EMAIL`; without it, in development (against the fake), the
//! first account made, and against Octany no one (a warning at start:
//! the first account of a live app is whoever signs up first). The library
//! mounts the console only behind this extractor; everyone else signed in
//! gets 404 (the console is not said to exist), and a visitor is sent to
//! log in.

use std::future::Future;
use std::pin::Pin;

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use octany_actix::model::BillableRef;
use sea_orm::sea_query::{Expr, Func};
use sea_orm::{DatabaseConnection, EntityTrait, ExprTrait, QueryFilter, QueryOrder};

use crate::errors::AppError;
use crate::{AppState, user};

/// A signed-in user who is the app's admin.
#[derive(Debug, Clone)]
pub struct Admin {
    /// Who.
    pub user: user::Model,
    /// The app's database: the console finds accounts by e-mail in it.
    db: DatabaseConnection,
}

impl FromRequest for Admin {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let signed_in = user::Model::from_request(req, payload);
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let user = signed_in.await?;
            let state = state.ok_or(AppError::NotFound)?;
            if is_admin(&state, &user).await? {
                Ok(Admin {
                    user,
                    db: state.db.clone(),
                })
            } else {
                tracing::warn!(
                    user = user.id,
                    "refused the billing console to a user who is not the admin"
                );
                Err(AppError::NotFound.into())
            }
        })
    }
}

/// Whether `user` is the admin (see the module's documentation).
pub async fn is_admin(state: &AppState, user: &user::Model) -> Result<bool, AppError> {
    let development = state.fake_control.is_some();
    if state.admin_email.is_some() || !development {
        return Ok(admits(state.admin_email.as_deref(), false, &user.email));
    }
    let first = user::Entity::find()
        .order_by_asc(user::Column::Id)
        .one(&state.db)
        .await?;
    Ok(admits(
        None,
        first.is_some_and(|first| first.id == user.id),
        &user.email,
    ))
}

/// The rule: `ADMIN_EMAIL`'s account (any case) when it is set, else the
/// first account when that is allowed (development).
fn admits(admin_email: Option<&str>, first_allowed: bool, email: &str) -> bool {
    match admin_email {
        Some(admin) => admin.eq_ignore_ascii_case(email),
        None => first_allowed,
    }
}

impl octany_actix::ops::Staff for Admin {
    /// The audit log names the admin by e-mail.
    fn staff_name(&self) -> String {
        self.user.email.clone()
    }

    /// An account by its sign-in e-mail (any case), subscribed or not.
    async fn find(&self, query: &str) -> Vec<BillableRef> {
        let found = user::Entity::find()
            .filter(
                Expr::expr(Func::lower(Expr::col(user::Column::Email))).eq(query.to_lowercase()),
            )
            .one(&self.db)
            .await;
        match found {
            Ok(Some(user)) => vec![octany_actix::Billable::billable_ref(&user)],
            Ok(None) => Vec::new(),
            Err(error) => {
                tracing::warn!(%error, "the console could not search the accounts");
                Vec::new()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::admits;

    #[test]
    fn admin_email_names_the_admin_else_the_first_account_where_allowed() {
        assert!(admits(Some("Ops@Example.com"), false, "ops@example.com"));
        assert!(!admits(Some("ops@example.com"), true, "first@example.com"));
        assert!(admits(None, true, "first@example.com"));
        // Against Octany with no ADMIN_EMAIL: no one.
        assert!(!admits(None, false, "first@example.com"));
    }
}
