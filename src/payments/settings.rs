//! A client's payment rules (`GET/PUT /api/v1/clients/{id}/payment-settings`), stored as JSON in
//! `payment_settings`. Amounts are decimal strings in the client's currency; absent = no limit.

use serde::{Deserialize, Serialize};

use crate::domain::Amount;
use crate::store::{Store, StoreError};

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PaymentSettings {
    /// Gateways players of this client may use (`stripe`).
    pub enabled_gateways: Vec<String>,
    pub min_deposit: Option<String>,
    pub max_deposit: Option<String>,
    pub min_withdrawal: Option<String>,
    pub max_withdrawal: Option<String>,
    /// Per player and UTC day, over requests not failed, expired, cancelled or rejected.
    pub daily_deposit_max: Option<String>,
    pub daily_withdrawal_max: Option<String>,
    /// Withdrawals up to this amount are approved at once; absent: every one waits for a person.
    pub auto_approve_max: Option<String>,
    /// Open withdrawals (requested, approved, processing) a player may have.
    pub pending_withdrawals_max: Option<i64>,
    /// A withdrawal is refused while a deposit credited less than this many seconds ago
    /// (the gateway's chargeback/settlement window) is not settled.
    pub withdraw_after_deposit_secs: i64,
    /// How long a hosted checkout stays open (Stripe: 30 minutes to 24 hours).
    pub checkout_expires_secs: i64,
}

impl Default for PaymentSettings {
    fn default() -> Self {
        Self {
            enabled_gateways: vec![super::stripe::NAME.to_owned()],
            min_deposit: None,
            max_deposit: None,
            min_withdrawal: None,
            max_withdrawal: None,
            daily_deposit_max: None,
            daily_withdrawal_max: None,
            auto_approve_max: None,
            pending_withdrawals_max: None,
            withdraw_after_deposit_secs: 0,
            checkout_expires_secs: 1800,
        }
    }
}

impl PaymentSettings {
    /// Refuses a document with an unknown gateway or an amount not in the currency's exponent;
    /// `Err` names the field.
    pub fn validate(&self, exponent: u32) -> Result<(), (&'static str, String)> {
        for g in &self.enabled_gateways {
            if !super::gateway::GATEWAY_NAMES.contains(&g.as_str()) {
                return Err(("enabled_gateways", format!("unknown gateway {g:?}")));
            }
        }
        let amounts = [
            ("min_deposit", &self.min_deposit),
            ("max_deposit", &self.max_deposit),
            ("min_withdrawal", &self.min_withdrawal),
            ("max_withdrawal", &self.max_withdrawal),
            ("daily_deposit_max", &self.daily_deposit_max),
            ("daily_withdrawal_max", &self.daily_withdrawal_max),
            ("auto_approve_max", &self.auto_approve_max),
        ];
        for (field, value) in amounts {
            if let Some(text) = value {
                match Amount::parse(text, exponent) {
                    Ok(a) if a.minor() >= 0 => {}
                    _ => {
                        return Err((
                            field,
                            "a non-negative decimal string in the client's currency".into(),
                        ));
                    }
                }
            }
        }
        if self.pending_withdrawals_max.is_some_and(|n| n < 1) {
            return Err(("pending_withdrawals_max", "at least 1".into()));
        }
        if self.withdraw_after_deposit_secs < 0 {
            return Err(("withdraw_after_deposit_secs", "not negative".into()));
        }
        if !(1800..=86_400).contains(&self.checkout_expires_secs) {
            return Err(("checkout_expires_secs", "1800 to 86400".into()));
        }
        Ok(())
    }

    /// A stored amount in minor units (validated when written).
    pub fn minor(text: &Option<String>, exponent: u32) -> Option<i64> {
        text.as_deref()
            .and_then(|t| Amount::parse(t, exponent).ok())
            .map(Amount::minor)
    }
}

/// The client's payment settings, or the defaults.
pub async fn load(store: &Store, client_id: &str) -> Result<PaymentSettings, StoreError> {
    Ok(store
        .payment_settings(client_id)
        .await?
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default())
}
