//! Game provider adapters behind one trait ([`ProviderAdapter`]), and their simulators.
//!
//! An adapter turns the hub's few questions (register a player, move money under a serial
//! number, ask about a serial number, launch a game, verify a callback) into one provider's wire
//! protocol: signing or encryption, codes, amounts, timestamps. It never touches the ledger; the
//! transfer state machine (`transfers::service`) decides what an answer means for the money.
//! A new provider is one new module implementing the trait, plus a line in [`build_adapter`].

pub mod breaker;
pub mod credentials;
pub mod crypto;
pub mod jdb;
pub mod luckysports;
pub mod sim;
pub mod units;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::config::ProviderAccountSettings;

/// Provider names as they appear in URLs and account ids (kept in `domain`, below the metrics
/// and the ledger that name them too).
pub use crate::domain::PROVIDER_NAMES;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Which way a transfer goes (`in`: player → provider, `out`: provider → player); the type
/// the transfer rows store, in `domain` so the store can decode it.
pub use crate::domain::TransferDirection as Direction;

/// A transfer as the provider sees it. `amount_minor` is in the client's minor units; the
/// adapter converts exactly or refuses.
#[derive(Debug, Clone)]
pub struct TransferCall {
    pub serial: String,
    pub uid: String,
    pub direction: Direction,
    pub amount_minor: i64,
    pub exponent: u32,
}

/// What one transfer call tells us about the money.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferAnswer {
    /// Applied now; the player's provider balance after it, when the answer carries it.
    Applied { balance_minor: Option<i64> },
    /// The serial was applied by an earlier call (confirm with a status query).
    AlreadyApplied,
    /// Definitely not applied.
    Rejected {
        code: String,
        insufficient_funds: bool,
    },
    /// Not applied because the provider does not know the player (JDB 7501, LuckySports
    /// MEMBER_NOT_FOUND): register them again and resend the same serial once.
    UnknownPlayer { code: String },
    /// Not applied because the player is in a game; kick them and retry later (JDB 6901).
    PlayerInGame,
    /// Timeout, 5xx, "in progress", maintenance, an unmapped code: query by serial later.
    Unknown(String),
}

/// What a status query tells us about a serial number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckAnswer {
    Applied {
        balance_minor: Option<i64>,
    },
    /// The provider reports the transfer failed.
    Failed,
    /// The provider has no record of it. Proof that it never happened only once the request
    /// validity window has passed since our last send (see [`ProviderAdapter::request_window_ms`]).
    NotFound,
    Unknown(String),
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// Network failure, timeout, 5xx, maintenance.
    #[error("provider unavailable: {0}")]
    Unavailable(String),
    /// The provider answered with an error code.
    #[error("provider refused: {code} {message}")]
    Refused { code: String, message: String },
    /// The provider does not know the player (JDB 7501, LuckySports MEMBER_NOT_FOUND).
    #[error("provider does not know the player: {code}")]
    UnknownPlayer { code: String },
    /// An amount that does not convert exactly, or an answer we cannot read.
    #[error("{0}")]
    Invalid(String),
}

/// A game as a provider lists it. Serialized as `{code, name}` (the catalogue's answer shape).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct GameInfo {
    pub code: String,
    pub name: String,
    /// `slot`, `fishing`, `arcade`, `card`, `lottery`, `sports` or `other` (the adapter's
    /// reading of the provider's own type field).
    #[serde(skip)]
    pub game_type: &'static str,
}

/// A verified callback: which player, and which version of which round.
#[derive(Debug, Clone)]
pub struct RoundReport {
    pub uid: String,
    pub round_id: String,
    /// The game played, in our catalogue's codes ([`game_code`]); '' when the report names
    /// none we can read (the round's money still applies).
    pub game: String,
    pub version: i64,
    pub status: String,
    /// Payout minus stake, in wire units with `wire_exponent` decimals.
    pub net_wire: i64,
    /// The stake (bet amount, ≥ 0) in the same units: the round's turnover. 0 for a bet that
    /// does not stand (void, refunded, rejected, cancelled: the stake went back).
    pub stake_wire: i64,
    pub wire_exponent: u32,
    /// The round is over (settled or cancelled): the player's session at this provider may end.
    pub final_state: bool,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum CallbackError {
    #[error("this provider sends no callbacks")]
    Unsupported,
    #[error("missing or malformed authentication")]
    Unauthenticated,
    #[error("signature does not verify")]
    BadSignature,
    #[error("timestamp outside the accepted window")]
    Stale,
    #[error("unreadable callback: {0}")]
    Malformed(String),
}

/// The operator account a callback names, read before its signature can be checked.
pub struct CallbackEnvelope<'a> {
    pub headers: &'a actix_web::http::header::HeaderMap,
    pub body: &'a [u8],
    pub now_ms: i64,
}

/// One provider protocol bound to one operator account.
pub trait ProviderAdapter: Send + Sync {
    fn provider(&self) -> &'static str;
    /// The provider's request-validity window plus our clock-skew margin: a "not found" older
    /// than this since our last send proves the transfer never happened.
    fn request_window_ms(&self) -> i64;
    /// Registers the player (wallet in `currency`); an existing player is success.
    fn ensure_player<'a>(
        &'a self,
        uid: &'a str,
        currency: &'a str,
    ) -> BoxFuture<'a, Result<(), CallError>>;
    fn transfer<'a>(&'a self, call: &'a TransferCall) -> BoxFuture<'a, TransferAnswer>;
    fn check<'a>(&'a self, serial: &'a str, exponent: u32) -> BoxFuture<'a, CheckAnswer>;
    fn balance<'a>(&'a self, uid: &'a str, exponent: u32) -> BoxFuture<'a, Result<i64, CallError>>;
    fn launch<'a>(
        &'a self,
        uid: &'a str,
        game: &'a str,
        lang: &'a str,
    ) -> BoxFuture<'a, Result<String, CallError>>;
    fn games(&self) -> BoxFuture<'_, Result<Vec<GameInfo>, CallError>>;
    /// The operator id a callback claims to come from (before verification).
    fn callback_operator(&self, env: &CallbackEnvelope<'_>) -> Option<String>;
    /// Verifies and parses a callback addressed to this account.
    fn verify_callback(&self, env: &CallbackEnvelope<'_>) -> Result<RoundReport, CallbackError>;
    /// Takes the player out of any game so a withdrawal can follow (JDB 6901); default: nothing.
    fn kick<'a>(&'a self, _uid: &'a str) -> BoxFuture<'a, Result<(), CallError>> {
        Box::pin(async { Ok(()) })
    }
    /// Round changes since the cursor `since` (0 at start) and the next cursor. The provider's
    /// records are the source of truth; callbacks only bring them sooner.
    fn pull_rounds(&self, since: i64) -> BoxFuture<'_, Result<(Vec<RoundReport>, i64), CallError>> {
        Box::pin(async move { Ok((Vec::new(), since)) })
    }
}

/// The adapter for a configured account.
pub fn build_adapter(s: &ProviderAccountSettings) -> anyhow::Result<Arc<dyn ProviderAdapter>> {
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_millis(s.timeout_ms))
        .connect_timeout(std::time::Duration::from_millis(s.timeout_ms.min(2000)))
        .pool_max_idle_per_host(64)
        .build()?;
    Ok(match s.provider.as_str() {
        jdb::NAME => Arc::new(jdb::JdbAdapter::new(s, http)?),
        luckysports::NAME => Arc::new(luckysports::LuckySportsAdapter::new(s, http)?),
        other => anyhow::bail!("unknown provider {other:?} (known: {PROVIDER_NAMES:?})"),
    })
}

/// The uid a player has at every provider: the user id without hyphens, lowercase (JDB allows
/// `a-z0-9_-`, and a hex uuid fits any provider's member id rules).
pub fn provider_uid(user_id: &str) -> String {
    user_id.replace('-', "").to_ascii_lowercase()
}

/// Longest game code a round keeps: per-game distinct-player series
/// (`players:<provider>:<game>:m:<zone>`) must fit `report_marks.series` (80 on MySQL).
pub const GAME_CODE_MAX: usize = 24;

/// A provider's game identifier as a round's game code: letters, digits, `-`, `_`, `.`, at most
/// [`GAME_CODE_MAX`]; anything else is '' (unknown game) rather than a code reports would split
/// or series names could not hold.
pub fn game_code(raw: &str) -> String {
    let ok = raw.len() <= GAME_CODE_MAX
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok { raw.to_owned() } else { String::new() }
}

/// A fresh serial number: letters and digits only, at most 32 characters (JDB: ≤ 50).
pub fn new_serial() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

/// The trace's client span of one provider call (disabled, so free, while traces are off); its
/// position goes to the provider as `traceparent`.
pub fn call_span(provider: &'static str, account: &str, method: &'static str) -> tracing::Span {
    tracing::info_span!(
        target: crate::otel::TARGET,
        "provider.call",
        otel.name = %format_args!("{provider} {method}"),
        otel.kind = "client",
        provider,
        account,
        method,
        otel.status_code = tracing::field::Empty,
    )
}

/// Marks a call that got no usable answer as failed in its trace (refusals are answers).
pub fn trace_outcome<T>(span: &tracing::Span, result: &Result<T, CallError>) {
    if matches!(result, Err(CallError::Unavailable(_))) {
        span.record("otel.status_code", "ERROR");
    }
}

/// Records one provider call's latency and outcome (`ok`, `refused`, `unavailable`), labelled
/// with the provider and the account (configured name, or `{provider}:{client code}` for a
/// client's own account).
pub fn observe_call<T>(
    provider: &'static str,
    account: &str,
    method: &'static str,
    started: std::time::Instant,
    result: &Result<T, CallError>,
) {
    let outcome = match result {
        Ok(_) => "ok",
        Err(CallError::Unavailable(_)) => "unavailable",
        Err(CallError::Refused { .. } | CallError::UnknownPlayer { .. }) => "refused",
        Err(CallError::Invalid(_)) => "invalid",
    };
    metrics::histogram!(crate::metrics::PROVIDER_CALL_DURATION, "provider" => provider, "account" => account.to_owned(), "method" => method)
        .record(started.elapsed().as_secs_f64());
    metrics::counter!(crate::metrics::PROVIDER_CALLS, "provider" => provider, "account" => account.to_owned(), "method" => method, "outcome" => outcome)
        .increment(1);
}

#[cfg(test)]
mod tests {
    #[test]
    fn provider_names_are_the_adapters_names() {
        assert_eq!(
            super::PROVIDER_NAMES,
            [super::jdb::NAME, super::luckysports::NAME]
        );
    }
}
