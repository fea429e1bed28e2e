//! A client's settings document (DESIGN section 10, `/api/v1/clients/{id}/settings`): the type
//! stored as JSON in `client_settings`, its defaults, and how it is read back. The HTTP layer
//! validates a patch into it; the money path and the settlement service read it.

use serde::{Deserialize, Serialize};

use crate::domain::{Amount, format_minor};
use crate::store::{Store, StoreError};

/// Providers a client can enable (DESIGN section 10).
pub use crate::domain::PROVIDER_NAMES as PROVIDERS;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Branding {
    pub display_name: Option<String>,
    pub logo_url: Option<String>,
    pub primary_color: Option<String>,
}

/// Limits in the client's currency, as decimal strings; absent = no limit.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
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

/// A movement that a client's `limits` name; each limit caps one movement's amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    /// Money into a player's wallet: an admin's deposit or an agent's credit.
    Deposit,
    /// Money out of a player's wallet: an admin's withdrawal or an agent's debit.
    Withdrawal,
    /// A transfer from the wallet into a provider. Transfers back are never capped: a limit
    /// must not strand a player's money at a provider.
    Transfer,
}

impl LimitKind {
    /// The setting's name, as the API and the error name it.
    pub fn field(self) -> &'static str {
        match self {
            LimitKind::Deposit => "limits.max_deposit",
            LimitKind::Withdrawal => "limits.max_withdrawal",
            LimitKind::Transfer => "limits.max_transfer",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{amount} is over this casino's {field} of {max}")]
    LimitExceeded {
        field: &'static str,
        max: String,
        amount: String,
    },
    #[error("the game provider {0} is not enabled for this casino")]
    ProviderNotEnabled(String),
    #[error("the client's stored settings do not decode")]
    Undecodable,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Settings {
    /// The cap on `kind` in minor units, if one is set (stored values were validated against
    /// the client's exponent when they were written).
    pub fn max_minor(&self, kind: LimitKind, exponent: u32) -> Option<i64> {
        let text = match kind {
            LimitKind::Deposit => &self.limits.max_deposit,
            LimitKind::Withdrawal => &self.limits.max_withdrawal,
            LimitKind::Transfer => &self.limits.max_transfer,
        };
        text.as_deref()
            .and_then(|t| Amount::parse(t, exponent).ok())
            .map(Amount::minor)
    }

    /// Refuses an amount (minor units, positive) above the limit on `kind`.
    pub fn check_limit(
        &self,
        kind: LimitKind,
        amount: i64,
        exponent: u32,
    ) -> Result<(), SettingsError> {
        match self.max_minor(kind, exponent) {
            Some(max) if amount > max => Err(SettingsError::LimitExceeded {
                field: kind.field(),
                max: format_minor(max, exponent),
                amount: format_minor(amount, exponent),
            }),
            _ => Ok(()),
        }
    }

    pub fn provider_enabled(&self, provider: &str) -> bool {
        self.enabled_providers.iter().any(|p| p == provider)
    }

    /// Refuses a provider that is not in `enabled_providers`.
    pub fn require_provider(&self, provider: &str) -> Result<(), SettingsError> {
        if self.provider_enabled(provider) {
            Ok(())
        } else {
            Err(SettingsError::ProviderNotEnabled(provider.to_owned()))
        }
    }
}

/// The client's settings (cached by the store), or the defaults when none are stored.
pub async fn load(store: &Store, client_id: &str) -> Result<Settings, SettingsError> {
    stored(store, client_id)
        .await?
        .ok_or(SettingsError::Undecodable)
}

/// The client's stored settings, or the defaults when none are stored; `None` when the stored
/// document does not decode.
pub async fn stored(store: &Store, client_id: &str) -> Result<Option<Settings>, StoreError> {
    Ok(match store.client_settings(client_id).await? {
        Some(text) => serde_json::from_str(&text).ok(),
        None => Some(Settings::default()),
    })
}
