//! `nashub admin …`: the way back in when something went wrong, run on the host against the
//! hub's own database (SQLite or MySQL, whatever the configuration names). Each command is
//! audited like its API counterpart, with the actor `cli` (no user did it).

use base64::Engine;
use serde_json::json;

use crate::audit::Event;
use crate::auth::{password, throttle};
use crate::domain::{Role, UserStatus, names, now_ms};
use crate::store::{Store, UserRow};
use crate::users::{NewUser, PLATFORM_SCOPE, create_user};

/// Who ran it, in the audit log.
const ACTOR: &str = "cli";

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("no user {username:?} in {scope}")]
    NoSuchUser { scope: String, username: String },
    #[error("{0}")]
    Invalid(String),
    #[error("{0} is taken")]
    Taken(String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// A password for the operator to pass on: the one given, or a fresh random one.
fn chosen_or_generated(given: Option<&str>) -> Result<(String, bool), AdminError> {
    match given {
        Some(p) => {
            names::password(p).map_err(|e| AdminError::Invalid(format!("password: {e}")))?;
            Ok((p.to_owned(), false))
        }
        None => {
            let mut bytes = [0_u8; 15];
            rand::fill(&mut bytes);
            Ok((
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
                true,
            ))
        }
    }
}

async fn find(store: &Store, client: Option<&str>, username: &str) -> Result<UserRow, AdminError> {
    let (scope, label) = match client {
        Some(code) => {
            let c = store
                .client_by_code(&code.trim().to_ascii_lowercase())
                .await
                .map_err(anyhow::Error::from)?
                .ok_or_else(|| AdminError::Invalid(format!("no client with code {code:?}")))?;
            (c.id.clone(), format!("client {code}"))
        }
        None => (PLATFORM_SCOPE.to_owned(), "the platform".to_owned()),
    };
    let name = username.trim().to_ascii_lowercase();
    store
        .user_by_login(&scope, &name)
        .await
        .map_err(anyhow::Error::from)?
        .ok_or(AdminError::NoSuchUser {
            scope: label,
            username: name,
        })
}

/// `nashub admin reset-password <user> [--client CODE] [--password P]`: a new password, every
/// session of the user ended, the user's login throttle cleared. Answers the password (shown
/// once when generated).
pub async fn reset_password(
    store: &Store,
    memory_kib: u32,
    client: Option<&str>,
    username: &str,
    given: Option<&str>,
) -> Result<(UserRow, String, bool), AdminError> {
    let user = find(store, client, username).await?;
    if user.status == UserStatus::Closed {
        return Err(AdminError::Invalid(format!(
            "user {username:?} is closed for good"
        )));
    }
    let (secret, generated) = chosen_or_generated(given)?;
    let to_hash = secret.clone();
    let hash = tokio::task::spawn_blocking(move || password::hash(&to_hash, memory_kib))
        .await
        .map_err(|e| anyhow::anyhow!("password hashing: {e}"))?;
    store
        .set_password(&user.id, &hash, None, now_ms())
        .await
        .map_err(anyhow::Error::from)?;
    throttle::succeeded(store, &throttle::account_key(client, username))
        .await
        .map_err(anyhow::Error::from)?;
    Event::new("user.password_reset")
        .actor(Some(ACTOR))
        .client(user.client_id.as_deref())
        .target("user", &user.id)
        .after(json!({ "sessions_ended": true, "by": ACTOR }))
        .record(store)
        .await
        .map_err(anyhow::Error::from)?;
    Ok((user, secret, generated))
}

/// `nashub admin create-super-admin <username> [--password P]`.
pub async fn create_super_admin(
    store: &Store,
    memory_kib: u32,
    username: &str,
    given: Option<&str>,
) -> Result<(UserRow, String, bool), AdminError> {
    let username = names::username(username).map_err(AdminError::Invalid)?;
    let (secret, generated) = chosen_or_generated(given)?;
    let new = NewUser {
        role: Role::SuperAdmin,
        username: username.clone(),
        password: secret.clone(),
        client: None,
        parent: None,
    };
    let user = match create_user(store, memory_kib, new).await {
        Err(crate::users::CreateUserError::Store(crate::store::StoreError::Duplicate(_))) => {
            return Err(AdminError::Taken(format!("username {username:?}")));
        }
        other => other.map_err(|e| anyhow::anyhow!("{e}"))?,
    };
    Event::new("user.create")
        .actor(Some(ACTOR))
        .target("user", &user.id)
        .after(json!({ "role": "super_admin", "username": username, "by": ACTOR }))
        .record(store)
        .await
        .map_err(anyhow::Error::from)?;
    Ok((user, secret, generated))
}

/// `nashub admin unlock <user> [--client CODE]`: clears the account's failed-login count, so
/// the login throttle (5 failures per 15 minutes) lets the user try again at once.
pub async fn unlock(
    store: &Store,
    client: Option<&str>,
    username: &str,
) -> Result<UserRow, AdminError> {
    let user = find(store, client, username).await?;
    throttle::succeeded(store, &throttle::account_key(client, username))
        .await
        .map_err(anyhow::Error::from)?;
    Event::new("user.unlock")
        .actor(Some(ACTOR))
        .client(user.client_id.as_deref())
        .target("user", &user.id)
        .after(json!({ "login_failures_cleared": true, "by": ACTOR }))
        .record(store)
        .await
        .map_err(anyhow::Error::from)?;
    Ok(user)
}
