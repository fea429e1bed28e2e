//! Account ids and each client's house accounts.
//!
//! Ids are derived, not looked up: a user's wallet is `w:<user id>`, a house account is
//! `h:<client id>:<name>`. House accounts may go negative (external cash is negative by what
//! operators brought in); wallets never may.

/// An account to create (with its client, or its user).
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub id: String,
    pub client_id: String,
    pub user_id: Option<String>,
    pub kind: String,
    pub currency: String,
    pub allow_negative: bool,
}

/// External cash: the other side of every deposit and withdrawal.
pub const CASH: &str = "cash";
/// Money on its way to or from a provider (transfer state machine, DESIGN section 5).
pub const IN_FLIGHT: &str = "in_flight";
pub const COMMISSION_PAYABLE: &str = "commission_payable";
pub const PLATFORM_REVENUE: &str = "platform_revenue";
/// What the platform has collected of its revenue share (issue 21; created when first used).
pub const PLATFORM_COLLECTED: &str = "platform_collected";
/// The other side of admins' manual corrections.
pub const ADJUSTMENTS: &str = "adjustments";

const HOUSE_ACCOUNTS: &[&str] = &[
    CASH,
    IN_FLIGHT,
    COMMISSION_PAYABLE,
    PLATFORM_REVENUE,
    ADJUSTMENTS,
];

/// Withdrawals requested and not yet paid out or returned (issue 18).
pub const WITHDRAWALS_PENDING: &str = "withdrawals_pending";
/// Fees the payment gateways charged (negative by what they took).
pub const PAYMENT_FEES: &str = "payment_fees";

/// What a payment gateway settles with the client: deposits come from it, payouts go to it.
pub fn gateway_account(gateway: &str) -> String {
    format!("gateway:{gateway}")
}

/// A client's payment house accounts for `gateway` (created when first used).
pub fn payment_house_accounts(client_id: &str, currency: &str, gateway: &str) -> Vec<NewAccount> {
    [
        WITHDRAWALS_PENDING.to_owned(),
        PAYMENT_FEES.to_owned(),
        gateway_account(gateway),
    ]
    .into_iter()
    .map(|name| NewAccount {
        id: house_id(client_id, &name),
        client_id: client_id.to_owned(),
        user_id: None,
        kind: name,
        currency: currency.to_owned(),
        allow_negative: true,
    })
    .collect()
}

/// What a provider holds for this client's players; mirrors the provider's balances.
pub fn held_at_provider(provider: &str) -> String {
    format!("held_at_provider:{provider}")
}

/// The players' wins and losses at a provider (negative when players win).
pub fn game_results(provider: &str) -> String {
    format!("game_results:{provider}")
}

/// Every provider's house accounts of a client (all may go negative, like other house accounts).
pub fn provider_house_accounts(client_id: &str, currency: &str) -> Vec<NewAccount> {
    crate::domain::PROVIDER_NAMES
        .iter()
        .flat_map(|p| [held_at_provider(p), game_results(p)])
        .map(|name| NewAccount {
            id: house_id(client_id, &name),
            client_id: client_id.to_owned(),
            user_id: None,
            kind: name,
            currency: currency.to_owned(),
            allow_negative: true,
        })
        .collect()
}

pub fn wallet_id(user_id: &str) -> String {
    format!("w:{user_id}")
}

pub fn house_id(client_id: &str, name: &str) -> String {
    format!("h:{client_id}:{name}")
}

pub fn house_accounts(client_id: &str, currency: &str) -> Vec<NewAccount> {
    HOUSE_ACCOUNTS
        .iter()
        .map(|name| NewAccount {
            id: house_id(client_id, name),
            client_id: client_id.to_owned(),
            user_id: None,
            kind: (*name).to_owned(),
            currency: currency.to_owned(),
            allow_negative: true,
        })
        .chain(provider_house_accounts(client_id, currency))
        .collect()
}

pub fn wallet(client_id: &str, user_id: &str, currency: &str) -> NewAccount {
    NewAccount {
        id: wallet_id(user_id),
        client_id: client_id.to_owned(),
        user_id: Some(user_id.to_owned()),
        kind: "wallet".into(),
        currency: currency.to_owned(),
        allow_negative: false,
    }
}
