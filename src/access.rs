//! Who may see and act on whom (DESIGN section 6). The caller's client and identity come from
//! the token; a target in another client is invisible, one outside an agent's subtree is
//! forbidden.

use crate::auth::Caller;
use crate::domain::{Currency, Role};
use crate::store::{ClientRow, Store, StoreError, UserRow};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// The caller may read and act on the target within its role's permissions.
    Within,
    /// The target belongs to another client: answer as if it did not exist.
    OtherClient,
    /// Same client, outside the caller's subtree (or another player).
    Outside,
}

/// Why a rule refused; the HTTP layer answers 404 (naming what is hidden), 403, or as for
/// the store's error.
#[derive(Debug, thiserror::Error)]
pub enum Denied {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("forbidden")]
    Forbidden,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Reach {
    /// `Within` passes; another client's `what` does not exist (404); outside is 403.
    pub fn require(self, what: &'static str) -> Result<(), Denied> {
        match self {
            Reach::Within => Ok(()),
            Reach::OtherClient => Err(Denied::NotFound(what)),
            Reach::Outside => Err(Denied::Forbidden),
        }
    }
}

/// A client's own records (its journal, its provider switches, its client-wide notices): the
/// platform and the client's admins are within; the client's other users are outside (403);
/// anyone else is in another client (404).
pub fn client_reach(caller: &Caller, client_id: &str) -> Reach {
    let own = caller.client_id.as_deref() == Some(client_id);
    match caller.role {
        Role::SuperAdmin => Reach::Within,
        Role::ClientAdmin if own => Reach::Within,
        _ if own => Reach::Outside,
        _ => Reach::OtherClient,
    }
}

/// The client a listing covers: the platform names one (or none: every client); anyone else
/// lists their own, and naming another client is answered as if it did not exist.
pub fn listed_client(caller: &Caller, requested: Option<&str>) -> Result<Option<String>, Denied> {
    match (caller.role, requested) {
        (Role::SuperAdmin, requested) => Ok(requested.map(str::to_owned)),
        (_, Some(id)) if Some(id) != caller.client_id.as_deref() => Err(Denied::NotFound("client")),
        _ => Ok(caller.client_id.clone()),
    }
}

/// A client by id; none is 404 `client`.
pub async fn client(store: &Store, id: &str) -> Result<ClientRow, Denied> {
    store.client(id).await?.ok_or(Denied::NotFound("client"))
}

/// The client and currency of a user's wallet: a client's players, agents and admins have one
/// (anyone else: 404 `wallet`); the wallet's currency is its client's.
pub async fn wallet_client(store: &Store, user: &UserRow) -> Result<(ClientRow, Currency), Denied> {
    let client = client(store, wallet_owner_client(user)?).await?;
    let currency = client.currency.clone();
    Ok((client, currency))
}

/// The client whose currency a user's wallet holds: a client's players, agents and admins
/// have a wallet, anyone else none (404 `wallet`).
pub fn wallet_owner_client(user: &UserRow) -> Result<&str, Denied> {
    user.client_id
        .as_deref()
        .filter(|_| user.role.has_wallet())
        .ok_or(Denied::NotFound("wallet"))
}

pub async fn reach(store: &Store, caller: &Caller, target: &UserRow) -> Result<Reach, StoreError> {
    if caller.role == Role::SuperAdmin {
        return Ok(Reach::Within);
    }
    if target.client_id != caller.client_id {
        return Ok(Reach::OtherClient);
    }
    Ok(match caller.role {
        Role::SuperAdmin | Role::ClientAdmin => Reach::Within,
        Role::Player => {
            if target.id == caller.user_id {
                Reach::Within
            } else {
                Reach::Outside
            }
        }
        Role::Agent => match store.user(&caller.user_id).await? {
            Some(me) if target.path.starts_with(&me.path) => Reach::Within,
            _ => Reach::Outside,
        },
    })
}
