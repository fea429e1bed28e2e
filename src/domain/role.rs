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
