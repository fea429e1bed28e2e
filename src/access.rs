//! Who may see and act on whom (DESIGN section 6). The caller's client and identity come from
//! the token; a target in another client is invisible, one outside an agent's subtree is
//! forbidden.

use crate::auth::Caller;
use crate::domain::Role;
use crate::store::{Store, StoreError, UserRow};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// The caller may read and act on the target within its role's permissions.
    Within,
    /// The target belongs to another client: answer as if it did not exist.
    OtherClient,
    /// Same client, outside the caller's subtree (or another player).
    Outside,
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
