//! Who may open the billing console (`/admin/billing`): the account named
//! by `ADMIN_EMAIL`, or, without it, the first account made. The library
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

/// Whether `user` is the admin: `ADMIN_EMAIL`'s account, else the first.
pub async fn is_admin(state: &AppState, user: &user::Model) -> Result<bool, AppError> {
    if let Some(admin) = &state.admin_email {
        return Ok(admin.eq_ignore_ascii_case(&user.email));
    }
    let first = user::Entity::find()
        .order_by_asc(user::Column::Id)
        .one(&state.db)
        .await?;
    Ok(first.is_some_and(|first| first.id == user.id))
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
