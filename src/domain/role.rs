//! Roles of the user tree (DESIGN section 6).

use std::fmt;
use std::str::FromStr;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    SuperAdmin,
    ClientAdmin,
    Agent,
    Player,
}

impl Role {
    pub const ALL: [Role; 4] = [
        Role::SuperAdmin,
        Role::ClientAdmin,
        Role::Agent,
        Role::Player,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::SuperAdmin => "super_admin",
            Role::ClientAdmin => "client_admin",
            Role::Agent => "agent",
            Role::Player => "player",
        }
    }

    /// Whether a user of this role may have children in the tree.
    pub fn can_parent(self) -> bool {
        matches!(self, Role::ClientAdmin | Role::Agent)
    }

    /// Whether users of this role hold a wallet in the client's currency.
    pub fn has_wallet(self) -> bool {
        !matches!(self, Role::SuperAdmin)
    }

    /// Whether the role administers a client's cash (deposit, withdraw).
    pub fn is_admin(self) -> bool {
        matches!(self, Role::SuperAdmin | Role::ClientAdmin)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "super_admin" => Ok(Role::SuperAdmin),
            "client_admin" => Ok(Role::ClientAdmin),
            "agent" => Ok(Role::Agent),
            "player" => Ok(Role::Player),
            other => Err(format!("unknown role {other:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `users.role` is decoded with this `FromStr`: every role reads back as itself.
    #[test]
    fn roles_round_trip() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
            assert_eq!(role.to_string(), role.as_str());
            assert_eq!(
                serde_json::to_value(role).unwrap(),
                serde_json::json!(role.as_str())
            );
            assert!(role.as_str().to_uppercase().parse::<Role>().is_err());
        }
        assert!("".parse::<Role>().is_err());
    }

    proptest! {
        #[test]
        fn only_role_names_parse(
            text in prop_oneof![
                proptest::sample::select(&Role::ALL[..]).prop_map(|r| r.as_str().to_owned()),
                "[a-z_ ]{0,14}",
            ]
        ) {
            match text.parse::<Role>() {
                Ok(role) => prop_assert_eq!(role.as_str(), text.as_str()),
                Err(_) => prop_assert!(Role::ALL.iter().all(|r| r.as_str() != text)),
            }
        }
    }
}
