//! Gateway accounts: per client, its own (credentials sealed in `client_secrets` under
//! `pay:<gateway>`, like providers' own accounts), else the embedded simulator's account when the
//! hub runs it. A payment records the account it was made with (`stripe@v<version>` or
//! `stripe-sim`), so it resolves against the same credentials after they change.

use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use serde::Deserialize;

use super::gateway::PaymentGateway;
use super::sim::{self, PaySimHandle};
use super::stripe::{self, StripeAccount};
use crate::secrets::{Sealed, SecretBox};
use crate::store::{SecretRow, Store, StoreError};

/// Label of the embedded simulator's account.
pub const SIM_LABEL: &str = "stripe-sim";
/// Time a gateway call may take before its outcome counts as unknown.
const GATEWAY_TIMEOUT: Duration = Duration::from_secs(5);

/// The secret's name in `client_secrets`.
pub fn secret_name(gateway: &str) -> String {
    format!("pay:{gateway}")
}

/// A client's gateway credential document (validated before it is sealed).
#[derive(Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GatewayCredentials {
    /// `https://api.stripe.com`, or a simulator's address
    pub base_url: String,
    /// the secret API key (`sk_...`)
    pub api_key: String,
    /// the webhook endpoint's signing secret (`whsec_...`)
    pub webhook_secret: String,
    /// deposit fee in basis points of the amount (default 0)
    #[serde(default)]
    pub fee_bps: i64,
    /// fixed deposit fee, minor units (default 0)
    #[serde(default)]
    pub fee_fixed: i64,
    /// fee per payout, minor units (default 0)
    #[serde(default)]
    pub payout_fee: i64,
}

impl std::fmt::Debug for GatewayCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayCredentials")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl GatewayCredentials {
    /// Names the field at fault, never its value.
    pub fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        if !(self.base_url.starts_with("http://") || self.base_url.starts_with("https://")) {
            return Err(("credentials.base_url", "must be an http or https URL"));
        }
        if self.api_key.is_empty() || self.api_key.len() > 256 {
            return Err(("credentials.api_key", "1 to 256 characters"));
        }
        if self.webhook_secret.is_empty() || self.webhook_secret.len() > 256 {
            return Err(("credentials.webhook_secret", "1 to 256 characters"));
        }
        if !(0..=10_000).contains(&self.fee_bps) {
            return Err(("credentials.fee_bps", "0 to 10000"));
        }
        if self.fee_fixed < 0 || self.payout_fee < 0 {
            return Err(("credentials.fee_fixed", "fees are not negative"));
        }
        Ok(())
    }

    fn build(&self) -> anyhow::Result<StripeAccount> {
        Ok(StripeAccount::new(
            &self.base_url,
            &self.api_key,
            &self.webhook_secret,
            GATEWAY_TIMEOUT,
        )?
        .with_fees(self.fee_bps, self.fee_fixed, self.payout_fee))
    }
}

/// One usable account.
pub struct GatewayAccount {
    pub label: String,
    pub gateway: Arc<dyn PaymentGateway>,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("no account of this gateway serves the client")]
    NotConfigured,
    #[error("the client's gateway credentials cannot be opened")]
    Unusable,
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct Gateways {
    /// The embedded simulator and its account (no configured gateways: the default).
    embedded: Option<(PaySimHandle, Arc<GatewayAccount>)>,
    /// (client, version) → account built from that version of its credentials.
    own: DashMap<(String, i64), Arc<GatewayAccount>>,
    secrets: Arc<SecretBox>,
}

impl Gateways {
    /// With `embedded_sim`, starts the Stripe simulator on loopback (in memory) and serves every
    /// client without credentials of its own with it.
    pub fn start(embedded_sim: bool, secrets: Arc<SecretBox>) -> anyhow::Result<Self> {
        let embedded = if embedded_sim {
            let handle = sim::spawn("127.0.0.1:0", sim::PayFaults::default())?;
            let account = StripeAccount::new(
                &handle.base_url(),
                sim::SIM_API_KEY,
                sim::SIM_WEBHOOK_SECRET,
                GATEWAY_TIMEOUT,
            )?
            .with_fees(sim::SIM_FEE_BPS, sim::SIM_FEE_FIXED, sim::SIM_PAYOUT_FEE);
            Some((
                handle,
                Arc::new(GatewayAccount {
                    label: SIM_LABEL.into(),
                    gateway: Arc::new(account),
                }),
            ))
        } else {
            None
        };
        Ok(Self {
            embedded,
            own: DashMap::new(),
            secrets,
        })
    }

    /// The embedded simulator's address, if this hub runs one.
    pub fn embedded_base_url(&self) -> Option<String> {
        self.embedded.as_ref().map(|(h, _)| h.base_url())
    }

    /// Tells the embedded simulator where the hub's webhooks are.
    pub fn set_webhook_base(&self, hub_base: &str) {
        if let Some((h, _)) = &self.embedded {
            h.set_webhook_url(&format!("{hub_base}/callbacks/payments/{}", stripe::NAME));
        }
    }

    /// The account serving `client_id` at `gateway` now.
    pub async fn account_for(
        &self,
        store: &Store,
        client_id: &str,
        gateway: &str,
    ) -> Result<Arc<GatewayAccount>, RegistryError> {
        if gateway != stripe::NAME {
            return Err(RegistryError::NotConfigured);
        }
        if let Some(row) = store
            .client_secret(client_id, &secret_name(gateway))
            .await?
        {
            return self.own_account(client_id, &row);
        }
        self.embedded
            .as_ref()
            .map(|(_, a)| a.clone())
            .ok_or(RegistryError::NotConfigured)
    }

    /// The account a payment was made with (`label` as stored on it).
    pub async fn account_by_label(
        &self,
        store: &Store,
        client_id: &str,
        gateway: &str,
        label: &str,
    ) -> Result<Arc<GatewayAccount>, RegistryError> {
        if label == SIM_LABEL {
            return self
                .embedded
                .as_ref()
                .map(|(_, a)| a.clone())
                .ok_or(RegistryError::NotConfigured);
        }
        let version: i64 = label
            .rsplit_once("@v")
            .and_then(|(_, v)| v.parse().ok())
            .ok_or(RegistryError::NotConfigured)?;
        if let Some(a) = self.own.get(&(client_id.to_owned(), version)) {
            return Ok(a.clone());
        }
        let row = store
            .client_secret_version(client_id, &secret_name(gateway), version)
            .await?
            .ok_or(RegistryError::NotConfigured)?;
        self.own_account(client_id, &row)
    }

    fn own_account(
        &self,
        client_id: &str,
        row: &SecretRow,
    ) -> Result<Arc<GatewayAccount>, RegistryError> {
        let key = (client_id.to_owned(), row.version);
        if let Some(a) = self.own.get(&key) {
            return Ok(a.clone());
        }
        let plain = self
            .secrets
            .open(
                &row.id,
                &Sealed {
                    key_id: row.key_id.clone(),
                    nonce: row.nonce.clone(),
                    ciphertext: row.ciphertext.clone(),
                },
            )
            .map_err(|_| RegistryError::Unusable)?;
        let creds: GatewayCredentials =
            serde_json::from_slice(&plain).map_err(|_| RegistryError::Unusable)?;
        let account = creds.build().map_err(|_| RegistryError::Unusable)?;
        let built = Arc::new(GatewayAccount {
            label: format!("{}@v{}", stripe::NAME, row.version),
            gateway: Arc::new(account),
        });
        self.own.insert(key, built.clone());
        Ok(built)
    }
}
