//! Failed-login throttling (DESIGN section 8): per account 5 failures per 15 minutes, per IP
//! 50, then 429 with `Retry-After` until the oldest failure leaves the window. Counted in the
//! database (`login_failures`), so every hub node on it sees the same counts; a success clears
//! the account's count, and only failures are ever counted.

use crate::store::{Store, StoreError};

pub const WINDOW_MS: i64 = 15 * 60 * 1000;
pub const PER_ACCOUNT: i64 = 5;
pub const PER_IP: i64 = 50;

/// The account key: the login scope as typed (so unknown accounts are throttled alike).
pub fn account_key(client_code: Option<&str>, username: &str) -> String {
    let scope =
        client_code.map_or_else(|| "platform".to_owned(), |c| c.trim().to_ascii_lowercase());
    let name: String = username
        .trim()
        .to_ascii_lowercase()
        .chars()
        .take(64)
        .collect();
    let scope: String = scope.chars().take(64).collect();
    format!("acct:{scope}:{name}")
}

pub fn ip_key(ip: &str) -> String {
    format!("ip:{ip}")
}

/// `Err(seconds)` if any key is over its limit: how long until it is not; else whether the
/// first key has recent failures (so a success knows whether there is anything to clear).
pub async fn check(
    store: &Store,
    keys: &[(&str, i64)],
    now_ms: i64,
) -> Result<Result<bool, u64>, StoreError> {
    let since = now_ms - WINDOW_MS;
    let mut wait = 0_i64;
    let mut first_failed = false;
    for (i, (key, limit)) in keys.iter().enumerate() {
        let (count, oldest) = store.login_failures(key, since).await?;
        if i == 0 {
            first_failed = count > 0;
        }
        if count >= *limit {
            let until = oldest.unwrap_or(now_ms) + WINDOW_MS;
            wait = wait.max(until - now_ms);
        }
    }
    Ok(if wait > 0 {
        Err(((wait + 999) / 1000) as u64)
    } else {
        Ok(first_failed)
    })
}

pub async fn failed(
    store: &Store,
    keys: &[&str],
    client_id: Option<&str>,
    now_ms: i64,
) -> Result<(), StoreError> {
    store
        .record_login_failure(keys, client_id, now_ms, now_ms - WINDOW_MS)
        .await
}

pub async fn succeeded(store: &Store, account_key: &str) -> Result<(), StoreError> {
    store.clear_login_failures(account_key).await
}
