//! Creating a user: the one path for `POST /api/v1/users` (after its checks of who may create
//! whom, `http/users.rs`) and for the bootstrap super admin (`startup`). Places the user in its
//! client's tree, hashes the password off the async threads, and stores the user with its
//! wallet (roles that have one) in one transaction.

use crate::auth::password;
use crate::domain::{Role, UserStatus, new_id, now_ms};
use crate::ledger::accounts;
use crate::store::{ClientRow, Store, StoreError, UserRow};

/// The `users.path` column's width on MySQL (about 220 levels of ids).
pub const MAX_PATH_CHARS: usize = 8192;

/// Login scope of platform users (usernames are unique per scope).
pub const PLATFORM_SCOPE: &str = "platform";

/// A user to create; the caller has validated the names and decided that it may.
pub struct NewUser<'a> {
    pub role: Role,
    /// A valid username (`domain::names::username`).
    pub username: String,
    /// A valid password (`domain::names::password`), hashed here.
    pub password: String,
    /// The user's client; `None` for a platform user.
    pub client: Option<&'a ClientRow>,
    /// The user above it in the client's tree; `None` for a tree's root.
    pub parent: Option<&'a UserRow>,
}

#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    /// The path below the parent would not fit the column.
    #[error("the tree is too deep below this parent")]
    TooDeep,
    #[error("password hashing did not finish")]
    Hash,
    /// `StoreError::Duplicate` when the username is taken in its scope.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Creates the user, `active`, with a wallet when its role has one.
pub async fn create_user(
    store: &Store,
    password_hash_memory_kib: u32,
    new: NewUser<'_>,
) -> Result<UserRow, CreateUserError> {
    let NewUser {
        role,
        username,
        password: secret,
        client,
        parent,
    } = new;
    let id = new_id();
    let (path, depth) = match parent {
        Some(p) => (format!("{}{id}/", p.path), p.depth + 1),
        None => (format!("/{id}/"), 0),
    };
    if path.len() > MAX_PATH_CHARS {
        return Err(CreateUserError::TooDeep);
    }
    let password_hash =
        tokio::task::spawn_blocking(move || password::hash(&secret, password_hash_memory_kib))
            .await
            .map_err(|_| CreateUserError::Hash)?;
    let client_id = client.map(|c| c.id.clone());
    let user = UserRow {
        id,
        login_scope: client_id
            .clone()
            .unwrap_or_else(|| PLATFORM_SCOPE.to_owned()),
        client_id,
        parent_id: parent.map(|p| p.id.clone()),
        path,
        depth,
        role,
        username,
        password_hash,
        status: UserStatus::Active,
        created_at: now_ms(),
    };
    let wallet = client
        .filter(|_| role.has_wallet())
        .map(|c| accounts::wallet(&c.id, &user.id, &c.currency.code));
    store.insert_user(&user, wallet.as_ref()).await?;
    Ok(user)
}
