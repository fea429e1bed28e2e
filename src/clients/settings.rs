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
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            enabled_providers: PROVIDERS.iter().map(|p| (*p).to_owned()).collect(),
            commission_rate: "0.0000".into(),
            revenue_share_rate: "0.0000".into(),
            branding: Branding::default(),
            limits: Limits::default(),
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
