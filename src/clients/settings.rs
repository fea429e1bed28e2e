//! A client's settings document (DESIGN section 10, `/api/v1/clients/{id}/settings`): the type
//! stored as JSON in `client_settings`, its defaults, and how it is read back. The HTTP layer
//! validates a patch into it; the money path and the settlement service read it.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::domain::{Amount, format_minor};
use crate::ledger::settlement::Basis;
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
    /// Browser origins (`scheme://host[:port]`) of the client's own sites allowed by CORS.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// What agents' commission is a share of: `ngr` or `turnover` (issue 21;
    /// `ledger::settlement::Basis`).
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
    /// Hours before a player's raised (or removed) responsible-gaming limit applies (issue 19);
    /// lowering applies at once.
    #[serde(default = "default_cooloff_hours")]
    pub limit_raise_cooloff_hours: u32,
    /// The client's admins and agents must log in with a second factor (TOTP, issue 19).
    #[serde(default)]
    pub staff_totp_required: bool,
    /// Host names (`host[:port]`, lower case) that serve this client's player site (issue 27):
    /// a request for `/` on one of them shows the brand's site.
    #[serde(default)]
    pub site_hosts: Vec<String>,
}

/// Shortest and longest cooling-off a client may choose (hours).
pub const COOLOFF_HOURS: std::ops::RangeInclusive<u32> = 24..=720;

fn default_cooloff_hours() -> u32 {
    24
}

/// Commission bases a client may choose.
pub const COMMISSION_BASES: &[&str] = &["ngr", "turnover"];
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
            allowed_origins: Vec::new(),
            commission_basis: default_basis(),
            commission_negative_carryover: false,
            settlement_schedule: default_schedule(),
            timezone: default_timezone(),
            limit_raise_cooloff_hours: default_cooloff_hours(),
            staff_totp_required: false,
            site_hosts: Vec::new(),
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
    /// The commission basis (stored values were validated against [`COMMISSION_BASES`]).
    pub fn basis(&self) -> Option<Basis> {
        Basis::parse(&self.commission_basis)
    }

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

/// Parsed documents per client, each valid while the store's read cache hands out the very same
/// text (`Arc::ptr_eq`): the money path reads settings per movement, and parsing JSON there each
/// time would be work done twice. Holding the text keeps its address from being reused.
static PARSED: std::sync::LazyLock<dashmap::DashMap<String, Parsed>> =
    std::sync::LazyLock::new(dashmap::DashMap::new);
/// A stored text and what it parsed to.
type Parsed = (Arc<str>, Arc<Settings>);
static DEFAULTS: std::sync::LazyLock<Arc<Settings>> =
    std::sync::LazyLock::new(|| Arc::new(Settings::default()));
/// Entries before the map is simply emptied (a bound, not an LRU: a refill is one parse).
const PARSED_MAX: usize = 100_000;

/// The client's settings (cached by the store, parsed once per stored version), or the defaults
/// when none are stored.
pub async fn load(store: &Store, client_id: &str) -> Result<Arc<Settings>, SettingsError> {
    let Some(text) = store.client_settings(client_id).await? else {
        return Ok(DEFAULTS.clone());
    };
    if let Some(hit) = PARSED.get(client_id)
        && Arc::ptr_eq(&hit.0, &text)
    {
        return Ok(hit.1.clone());
    }
    let parsed: Arc<Settings> =
        Arc::new(serde_json::from_str(&text).map_err(|_| SettingsError::Undecodable)?);
    if PARSED.len() >= PARSED_MAX {
        PARSED.clear();
    }
    PARSED.insert(client_id.to_owned(), (text, parsed.clone()));
    Ok(parsed)
}

/// Most site host names one client may list.
pub const MAX_SITE_HOSTS: usize = 10;

/// A host name as a `Host` header carries it: `a-z 0-9 . -` labels and an optional port, lower
/// case; `None` for anything else.
pub fn parse_site_host(text: &str) -> Option<String> {
    let text = text.trim().to_ascii_lowercase();
    let (host, port) = match text.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (text.as_str(), None),
    };
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        });
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|n| n > 0));
    (host_ok && port_ok).then_some(text)
}

/// The client whose `site_hosts` lists `host` (the `Host` header, any case), if one does.
pub async fn client_of_site_host(store: &Store, host: &str) -> Result<Option<String>, StoreError> {
    let Some(host) = parse_site_host(host) else {
        return Ok(None);
    };
    Ok(store
        .all_client_settings()
        .await?
        .into_iter()
        .find(|(_, text)| {
            serde_json::from_str::<Settings>(text).is_ok_and(|s| s.site_hosts.contains(&host))
        })
        .map(|(client_id, _)| client_id))
}

/// Most origins one client may list.
pub const MAX_ORIGINS: usize = 20;

/// An origin as browsers send it: `http` or `https`, a host, an optional port, nothing else.
/// Answers the canonical (lower-case) form.
pub fn parse_origin(text: &str) -> Option<String> {
    let text = text.trim().to_ascii_lowercase();
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))?;
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || rest.starts_with('[') => (h, Some(p)),
        _ => (rest, None),
    };
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'[' | b']' | b':'));
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.parse::<u16>().is_ok());
    (host_ok && port_ok).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_accepted_basis_is_one_the_settlement_knows() {
        let known: Vec<&str> = Basis::ALL.iter().map(|b| b.as_str()).collect();
        assert_eq!(COMMISSION_BASES, known.as_slice());
    }

    #[test]
    fn site_hosts_are_host_and_port_only() {
        assert_eq!(
            parse_site_host("Play.Brand.example:8080").as_deref(),
            Some("play.brand.example:8080")
        );
        assert_eq!(parse_site_host("localhost").as_deref(), Some("localhost"));
        for bad in [
            "",
            "https://a.example",
            "a..b",
            "a.example/x",
            "a.example:0",
            "a b",
        ] {
            assert_eq!(parse_site_host(bad), None, "{bad}");
        }
    }

    #[test]
    fn origins_are_scheme_host_and_port_only() {
        assert_eq!(
            parse_origin("HTTPS://Play.Example.com:8443").as_deref(),
            Some("https://play.example.com:8443")
        );
        assert_eq!(
            parse_origin("http://localhost").as_deref(),
            Some("http://localhost")
        );
        for bad in [
            "ftp://x.example",
            "https://x.example/path",
            "https://",
            "x.example",
            "https://x.example:99999",
            "https://x.example:",
            "https://a b.example",
            "*",
        ] {
            assert_eq!(parse_origin(bad), None, "{bad}");
        }
    }

    #[test]
    fn limits_cap_what_they_name_only() {
        let mut s = Settings::default();
        s.limits.max_deposit = Some("100.00".into());
        assert!(s.check_limit(LimitKind::Deposit, 10_000, 2).is_ok());
        let Err(SettingsError::LimitExceeded { field, max, amount }) =
            s.check_limit(LimitKind::Deposit, 10_001, 2)
        else {
            panic!("not refused")
        };
        assert_eq!(
            (field, max.as_str(), amount.as_str()),
            ("limits.max_deposit", "100.00", "100.01")
        );
        assert!(s.check_limit(LimitKind::Withdrawal, i64::MAX, 2).is_ok());
        assert!(s.check_limit(LimitKind::Transfer, i64::MAX, 2).is_ok());
    }
}
