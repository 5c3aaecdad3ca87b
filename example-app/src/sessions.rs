//! Server-side sessions in the app's own database, behind actix-session's
//! [`SessionStore`]: the cookie carries only a random key; the row (found
//! by the key's SHA-256, so a copy of the table logs no one in) holds the
//! state and its expiry. Logging out deletes the row, so a cookie copied
//! before logout is refused after it; a password change deletes every
//! session of the user ([`revoke_user`]); logging in renews the key
//! (`Session::renew`), so a key planted before login is worthless.

use std::collections::HashMap;

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_web::cookie::time::Duration;
use octany_actix::clock::SharedClock;
use sea_orm::entity::prelude::*;
use sea_orm::{ActiveValue::Set, DatabaseConnection, QueryFilter};

use crate::tokens::{digest, random_hex};

/// A session row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sessions")]
pub struct Model {
    /// SHA-256 (hex) of the cookie's key.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// The signed-in user, when there is one (to revoke all of theirs).
    pub user_id: Option<i64>,
    /// The session state, as JSON.
    pub state: String,
    /// When the session ends.
    pub expires_at: DateTimeUtc,
    /// When it began.
    pub created_at: DateTimeUtc,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// The session key under which the signed-in user's id is kept.
pub const USER_KEY: &str = "user_id";

/// The signed-in user's id, if any.
pub fn user_id(session: &actix_session::Session) -> Option<i64> {
    session.get::<i64>(USER_KEY).ok().flatten()
}

/// Sessions stored in the app's database.
#[derive(Clone, Debug)]
pub struct DbSessionStore {
    db: DatabaseConnection,
    clock: SharedClock,
}

impl DbSessionStore {
    /// A store on `db`, timing expiry by `clock`.
    pub fn new(db: DatabaseConnection, clock: SharedClock) -> Self {
        Self { db, clock }
    }

    fn expiry(&self, ttl: &Duration) -> DateTimeUtc {
        self.clock.now() + chrono::Duration::seconds(ttl.whole_seconds().max(0))
    }
}

fn new_key() -> SessionKey {
    random_hex()
        .try_into()
        .expect("64 characters is a valid session key")
}

/// The user a state belongs to (actix-session keeps values as JSON text).
fn user_of(state: &HashMap<String, String>) -> Option<i64> {
    state.get(USER_KEY).and_then(|v| v.parse().ok())
}

impl SessionStore for DbSessionStore {
    async fn load(
        &self,
        session_key: &SessionKey,
    ) -> Result<Option<HashMap<String, String>>, LoadError> {
        let row = Entity::find_by_id(digest(session_key.as_ref()))
            .one(&self.db)
            .await
            .map_err(|e| LoadError::Other(e.into()))?;
        match row {
            Some(row) if row.expires_at > self.clock.now() => serde_json::from_str(&row.state)
                .map(Some)
                .map_err(|e| LoadError::Deserialization(e.into())),
            _ => Ok(None),
        }
    }

    async fn save(
        &self,
        session_state: HashMap<String, String>,
        ttl: &Duration,
    ) -> Result<SessionKey, SaveError> {
        let key = new_key();
        let state = serde_json::to_string(&session_state)
            .map_err(|e| SaveError::Serialization(e.into()))?;
        Entity::insert(ActiveModel {
            id: Set(digest(key.as_ref())),
            user_id: Set(user_of(&session_state)),
            state: Set(state),
            expires_at: Set(self.expiry(ttl)),
            created_at: Set(self.clock.now()),
        })
        .exec_without_returning(&self.db)
        .await
        .map_err(|e| SaveError::Other(e.into()))?;
        Ok(key)
    }

    async fn update(
        &self,
        session_key: SessionKey,
        session_state: HashMap<String, String>,
        ttl: &Duration,
    ) -> Result<SessionKey, UpdateError> {
        let state = serde_json::to_string(&session_state)
            .map_err(|e| UpdateError::Serialization(e.into()))?;
        let updated = Entity::update_many()
            .col_expr(Column::State, Expr::value(state))
            .col_expr(Column::UserId, Expr::value(user_of(&session_state)))
            .col_expr(Column::ExpiresAt, Expr::value(self.expiry(ttl)))
            .filter(Column::Id.eq(digest(session_key.as_ref())))
            .filter(Column::ExpiresAt.gt(self.clock.now()))
            .exec(&self.db)
            .await
            .map_err(|e| UpdateError::Other(e.into()))?;
        if updated.rows_affected == 1 {
            return Ok(session_key);
        }
        // Revoked or expired while this request ran (a logout, a password
        // change, another device's "log out everywhere"): a new key, never
        // the old one back, and signed out. Writing the state as it was
        // would bring a revoked sign-in back under the new key.
        let mut session_state = session_state;
        session_state.remove(USER_KEY);
        self.save(session_state, ttl).await.map_err(|e| match e {
            SaveError::Serialization(e) => UpdateError::Serialization(e),
            SaveError::Other(e) => UpdateError::Other(e),
        })
    }

    async fn update_ttl(&self, session_key: &SessionKey, ttl: &Duration) -> anyhow::Result<()> {
        Entity::update_many()
            .col_expr(Column::ExpiresAt, Expr::value(self.expiry(ttl)))
            .filter(Column::Id.eq(digest(session_key.as_ref())))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    async fn delete(&self, session_key: &SessionKey) -> anyhow::Result<()> {
        Entity::delete_by_id(digest(session_key.as_ref()))
            .exec(&self.db)
            .await?;
        Ok(())
    }
}

/// Ends every session of `user` (after a password change, say); returns
/// how many there were.
pub async fn revoke_user(db: &DatabaseConnection, user: i64) -> Result<u64, DbErr> {
    Ok(Entity::delete_many()
        .filter(Column::UserId.eq(user))
        .exec(db)
        .await?
        .rows_affected)
}

/// Deletes expired sessions; returns how many.
pub async fn prune(db: &DatabaseConnection, clock: &SharedClock) -> Result<u64, DbErr> {
    Ok(Entity::delete_many()
        .filter(Column::ExpiresAt.lte(clock.now()))
        .exec(db)
        .await?
        .rows_affected)
}
