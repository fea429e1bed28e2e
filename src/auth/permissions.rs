//! Named permissions and their defaults per role (DESIGN section 6). Carried in the access
//! token's `perms` claim; handlers check role and reach, and issue 3 adds per-user grants.

use crate::domain::Role;

pub fn defaults(role: Role) -> &'static [&'static str] {
    match role {
        Role::SuperAdmin => &[
            "clients.manage",
            "users.create",
            "users.read",
            "wallets.cash",
            "notifications.send",
            "audit.read",
        ],
        Role::ClientAdmin => &[
            "clients.read",
            "users.create",
            "users.read",
            "wallets.cash",
            "providers.transfer",
            "notifications.send",
            "audit.read",
        ],
        Role::Agent => &[
            "users.create",
            "users.read",
            "wallets.downline",
            "providers.transfer",
        ],
        Role::Player => &["users.read_self", "providers.transfer"],
    }
}
