//! A client's settings document (DESIGN section 10, `/api/v1/clients/{id}/settings`): the type
//! stored as JSON in `client_settings`, its defaults, and how it is read back. The HTTP layer
//! validates a patch into it; the money path and the settlement service read it.

use serde::{Deserialize, Serialize};

use crate::store::{Store, StoreError};

/// Providers a client can enable (DESIGN section 10).
pub use crate::domain::PROVIDER_NAMES as PROVIDERS;

#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Branding {
    pub display_name: Option<String>,
    pub logo_url: Option<String>,
    pub primary_color: Option<String>,
}

/// Limits in the client's currency, as decimal strings; absent = no limit.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub max_deposit: Option<String>,
    pub max_withdrawal: Option<String>,
    pub max_transfer: Option<String>,
}

/// The stored settings document; every field of a `PATCH` replaces the stored one.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub enabled_providers: Vec<String>,
    pub commission_rate: String,
    pub revenue_share_rate: String,
    #[serde(default)]
    pub branding: Branding,
    #[serde(default)]
    pub limits: Limits,
    /// What agents' commission is a share of: `ngr` (issue 21; the only basis so far).
    #[serde(default = "default_basis")]
    pub commission_basis: String,
    /// An agent's negative period result reduces its next periods' commission until recovered.
    #[serde(default)]
    pub commission_negative_carryover: bool,
    /// `none`, `daily`, `weekly` (Monday to Monday) or `monthly`: periods the scheduler
    /// settles by itself, `settlement_grace_secs` after they end, in `timezone`.
    #[serde(default = "default_schedule")]
    pub settlement_schedule: String,
    /// IANA time zone name of the schedule's midnight (`UTC`, `Asia/Manila`, ...).
    #[serde(default = "default_timezone")]
    pub timezone: String,
}

/// Commission bases a client may choose.
pub const COMMISSION_BASES: &[&str] = &["ngr"];
/// Settlement schedules a client may choose.
pub const SCHEDULES: &[&str] = &["none", "daily", "weekly", "monthly"];

fn default_basis() -> String {
    "ngr".into()
}

fn default_schedule() -> String {
    "none".into()
}

fn default_timezone() -> String {
    "UTC".into()
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            enabled_providers: PROVIDERS.iter().map(|p| (*p).to_owned()).collect(),
            commission_rate: "0.0000".into(),
            revenue_share_rate: "0.0000".into(),
            branding: Branding::default(),
            limits: Limits::default(),
            commission_basis: default_basis(),
            commission_negative_carryover: false,
            settlement_schedule: default_schedule(),
            timezone: default_timezone(),
        }
    }
}

/// The client's stored settings, or the defaults when none are stored; `None` when the stored
/// document does not decode.
pub async fn stored(store: &Store, client_id: &str) -> Result<Option<Settings>, StoreError> {
    Ok(match store.client_settings(client_id).await? {
        Some(text) => serde_json::from_str(&text).ok(),
        None => Some(Settings::default()),
    })
}
