//! Named permissions and their defaults per role (DESIGN section 6). A user's effective set is
//! its role's defaults plus per-user grants minus per-user revocations; the authenticator loads
//! it on every request, so a revocation takes effect at once (the token's `perms` claim is only
//! the set at issue time). Handlers check a permission *and* the caller's reach.

use std::sync::{Arc, OnceLock};

use crate::domain::Role;

pub const CLIENTS_MANAGE: &str = "clients.manage";
pub const CLIENTS_READ: &str = "clients.read";
pub const USERS_CREATE: &str = "users.create";
pub const USERS_READ: &str = "users.read";
pub const USERS_READ_SELF: &str = "users.read_self";
pub const USERS_MANAGE: &str = "users.manage";
pub const PERMISSIONS_MANAGE: &str = "permissions.manage";
pub const WALLETS_CASH: &str = "wallets.cash";
pub const WALLETS_DOWNLINE: &str = "wallets.downline";
pub const PROVIDERS_TRANSFER: &str = "providers.transfer";
pub const NOTIFICATIONS_SEND: &str = "notifications.send";
pub const AUDIT_READ: &str = "audit.read";
/// Request deposits and withdrawals for players in reach (a player always may for itself).
pub const PAYMENTS_REQUEST: &str = "payments.request";
/// Approve or reject withdrawals of players in reach (issue 18).
pub const PAYMENTS_APPROVE: &str = "payments.approve";

/// Every permission name the hub knows.
pub const ALL: &[&str] = &[
    CLIENTS_MANAGE,
    CLIENTS_READ,
    USERS_CREATE,
    USERS_READ,
    USERS_READ_SELF,
    USERS_MANAGE,
    PERMISSIONS_MANAGE,
    WALLETS_CASH,
    WALLETS_DOWNLINE,
    PROVIDERS_TRANSFER,
    NOTIFICATIONS_SEND,
    AUDIT_READ,
    PAYMENTS_REQUEST,
    PAYMENTS_APPROVE,
];

pub fn defaults(role: Role) -> &'static [&'static str] {
    match role {
        Role::SuperAdmin => &[
            CLIENTS_MANAGE,
            CLIENTS_READ,
            USERS_CREATE,
            USERS_READ,
            USERS_MANAGE,
            PERMISSIONS_MANAGE,
            WALLETS_CASH,
            NOTIFICATIONS_SEND,
            AUDIT_READ,
            PAYMENTS_APPROVE,
        ],
        Role::ClientAdmin => &[
            CLIENTS_READ,
            USERS_CREATE,
            USERS_READ,
            USERS_MANAGE,
            PERMISSIONS_MANAGE,
            WALLETS_CASH,
            PROVIDERS_TRANSFER,
            NOTIFICATIONS_SEND,
            AUDIT_READ,
            PAYMENTS_REQUEST,
            PAYMENTS_APPROVE,
        ],
        Role::Agent => &[
            USERS_CREATE,
            USERS_READ,
            USERS_MANAGE,
            WALLETS_DOWNLINE,
            PROVIDERS_TRANSFER,
            PAYMENTS_REQUEST,
        ],
        Role::Player => &[USERS_READ_SELF, PROVIDERS_TRANSFER],
    }
}

/// Permissions that may be granted to a user of `role`: never platform powers to a client's
/// user, and nothing beyond the role's own scope (a player cannot become an admin by grants;
/// roles are changed by no endpoint).
pub fn grantable(role: Role, permission: &str) -> bool {
    let client_scope = [
        USERS_CREATE,
        USERS_READ,
        USERS_MANAGE,
        WALLETS_CASH,
        WALLETS_DOWNLINE,
        PROVIDERS_TRANSFER,
        NOTIFICATIONS_SEND,
        AUDIT_READ,
        PERMISSIONS_MANAGE,
        CLIENTS_READ,
        PAYMENTS_REQUEST,
        PAYMENTS_APPROVE,
    ];
    match role {
        Role::SuperAdmin => ALL.contains(&permission),
        Role::ClientAdmin => client_scope.contains(&permission),
        // Agents act on their subtree only; these are the powers that make sense there.
        Role::Agent => [
            USERS_CREATE,
            USERS_READ,
            USERS_MANAGE,
            WALLETS_DOWNLINE,
            PROVIDERS_TRANSFER,
            PAYMENTS_REQUEST,
            PAYMENTS_APPROVE,
        ]
        .contains(&permission),
        Role::Player => [USERS_READ_SELF, PROVIDERS_TRANSFER].contains(&permission),
    }
}

/// [`effective`], shared. Nearly every caller has no overrides and gets its role's set as built
/// once, instead of a fresh list of strings per request.
pub fn effective_shared(role: Role, overrides: &[(String, String)]) -> Arc<[String]> {
    static BY_ROLE: OnceLock<[Arc<[String]>; 4]> = OnceLock::new();
    if !overrides.is_empty() {
        return effective(role, overrides).into();
    }
    let by_role = BY_ROLE.get_or_init(|| {
        [
            Role::SuperAdmin,
            Role::ClientAdmin,
            Role::Agent,
            Role::Player,
        ]
        .map(|r| effective(r, &[]).into())
    });
    by_role[role as usize].clone()
}

/// Defaults, plus `grant` overrides, minus `revoke` overrides.
pub fn effective(role: Role, overrides: &[(String, String)]) -> Vec<String> {
    let mut perms: Vec<String> = defaults(role).iter().map(|p| (*p).to_owned()).collect();
    for (perm, effect) in overrides {
        match effect.as_str() {
            "grant" if grantable(role, perm) && !perms.contains(perm) => perms.push(perm.clone()),
            "revoke" => perms.retain(|p| p != perm),
            _ => {}
        }
    }
    perms.sort();
    perms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_set_is_the_effective_set() {
        let grant = vec![("wallets.cash".to_owned(), "grant".to_owned())];
        for role in [
            Role::SuperAdmin,
            Role::ClientAdmin,
            Role::Agent,
            Role::Player,
        ] {
            assert_eq!(&*effective_shared(role, &[]), &effective(role, &[])[..]);
            assert_eq!(
                &*effective_shared(role, &grant),
                &effective(role, &grant)[..]
            );
        }
    }

    #[test]
    fn overrides_apply_within_the_role() {
        let o = vec![
            ("wallets.cash".to_owned(), "grant".to_owned()),
            ("clients.manage".to_owned(), "grant".to_owned()),
            ("users.create".to_owned(), "revoke".to_owned()),
        ];
        let p = effective(Role::Agent, &o);
        assert!(
            !p.contains(&"wallets.cash".to_owned()),
            "not grantable to agents"
        );
        assert!(!p.contains(&"clients.manage".to_owned()));
        assert!(!p.contains(&"users.create".to_owned()));
        assert!(p.contains(&"users.read".to_owned()));
    }
}
