//! Security notices over the channels: a login from a device (user agent) or an IP address the
//! user has not logged in from before, and a password change. Only hashes of the user agent
//! and address are kept (`user_devices`). The first login ever is not "new". A failure here is
//! logged, never fails the login.

use sha2::{Digest, Sha256};

use super::{Template, send, send_keyed};
use crate::domain::rfc3339_ms;
use crate::store::{Store, UserRow};

fn fingerprint(kind: &str, value: &str) -> String {
    let mut h = Sha256::new();
    h.update(kind.as_bytes());
    h.update([0]);
    h.update(value.as_bytes());
    hex::encode(&h.finalize()[..16])
}

/// Records the login's device and address; notifies the user when either is new to them.
pub async fn login_seen(
    store: &Store,
    user: &UserRow,
    session_id: &str,
    ip: Option<&str>,
    user_agent: Option<&str>,
    now_ms: i64,
) {
    if user.client_id.is_none() {
        return;
    }
    let device = user_agent.unwrap_or("unknown device");
    let address = ip.unwrap_or("unknown address");
    let mut new_to_user = false;
    for (kind, value) in [("ua", device), ("ip", address)] {
        match store
            .touch_device(&user.id, kind, &fingerprint(kind, value), now_ms)
            .await
        {
            Ok((new, had_before)) => new_to_user |= new && had_before,
            Err(e) => {
                tracing::warn!(error = %e, user_id = %user.id, "login device not recorded");
                return;
            }
        }
    }
    if !new_to_user {
        return;
    }
    let device: String = device.chars().take(120).collect();
    let time = rfc3339_ms(now_ms);
    if let Err(e) = send_keyed(
        store,
        &user.id,
        Template::NewDeviceLogin,
        &[("ip", address), ("device", &device), ("time", &time)],
        Some(session_id),
    )
    .await
    {
        tracing::warn!(error = %e, user_id = %user.id, "new device notice not queued");
    }
}

/// Tells the user their password changed.
pub async fn password_changed(store: &Store, user_id: &str, now_ms: i64) {
    let time = rfc3339_ms(now_ms);
    if let Err(e) = send(
        store,
        user_id,
        Template::PasswordChanged,
        &[("time", &time)],
    )
    .await
    {
        tracing::warn!(error = %e, user_id, "password change notice not queued");
    }
}
