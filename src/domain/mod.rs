//! Domain types that validate on construction, so the inside never re-checks.

pub mod audit;
pub mod calendar;
pub mod channel;
pub mod clock;
pub mod money;
pub mod names;
pub mod payment;
pub mod role;
pub mod status;
pub(crate) mod text_enum;
pub mod transfer;

pub use audit::NewAudit;
pub use channel::{Category, Channel, DeliveryState};
pub use clock::Clock;
pub use money::{Amount, AmountError, Currency, format_minor};
pub use payment::{PaymentKind, PaymentState};
pub use role::Role;
pub use status::{ClientStatus, UserStatus};
pub use text_enum::UnknownName;
pub use transfer::{TransferDirection, TransferState};

/// Provider names as they appear in URLs, account ids and metric labels (each adapter's `NAME`,
/// `providers::PROVIDER_NAMES`).
pub const PROVIDER_NAMES: &[&str] = &["jdb", "luckysports"];

/// Payment gateway protocols (URL segment of `/callbacks/payments/{gateway}`, metric labels).
pub const GATEWAY_NAMES: &[&str] = &["stripe"];

/// Milliseconds since the Unix epoch: the one timestamp type stored in both databases.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// RFC 3339 rendering of a stored timestamp.
pub fn rfc3339_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A new time-ordered opaque id.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
