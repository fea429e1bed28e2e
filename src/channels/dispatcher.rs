//! The outbox dispatcher, one per node: takes due messages under a lease, sends them and
//! records the outcome.
//!
//! Never twice, never lost: a message is claimed with an UPDATE guarded by the state and
//! attempt count read (another node's claim makes it affect no row), then recorded `sending`
//! (one more attempt) before the send, and `sent`, `queued` (retry at a backed-off time) or
//! `failed` after it. A node that dies mid-send leaves the row `sending`; when its lease runs
//! out another node takes it as in doubt: an SMS is first looked up at the gateway by
//! recipient and body (Twilio has no idempotency key) and recorded if found; an email, which
//! SMTP cannot look up, goes to the dead-letter list with reason `outcome_unknown` for an
//! admin to retry or not. An SMS whose earlier attempt failed (a timeout may have gone through)
//! is looked up the same way before it is sent again.
//!
//! Rate limits count messages `sent` in the window (client: per minute, recipient address: per
//! hour) in the database, so all nodes share them (two nodes deciding at once may each send
//! one over). A limited message waits (`queued`, reason `rate_limited`) and costs no attempt.

use std::sync::Arc;
use std::time::Duration;

use super::sms::{Sms, SmsGateway, Twilio};
use super::transport_settings::{SmsSettings, SmtpSettings, secret_name};
use super::{SendError, WAKE, count, email};
use crate::domain::{Channel, Clock, DeliveryState};
use crate::secrets::{Sealed, SecretBox};
use crate::store::{MessageOutcome, MessageRow, Store, StoreError};

/// Messages taken per look at the outbox.
const BATCH: i64 = 32;

#[derive(Debug, Clone)]
pub struct DispatchSettings {
    pub interval: Duration,
    pub lease_ms: i64,
    pub max_attempts: u32,
    pub retry_base_ms: i64,
    pub retry_max_ms: i64,
    pub per_client_per_minute: u32,
    pub per_recipient_per_hour: u32,
}

impl DispatchSettings {
    pub fn from_config(s: &crate::config::Settings) -> Self {
        Self {
            interval: Duration::from_millis(s.channel_dispatch_interval_ms),
            lease_ms: s.channel_lease_ms as i64,
            max_attempts: s.channel_max_attempts.max(1),
            retry_base_ms: s.channel_retry_base_ms as i64,
            retry_max_ms: s.channel_retry_max_ms as i64,
            per_client_per_minute: s.channel_rate_per_client_per_minute,
            per_recipient_per_hour: s.channel_rate_per_recipient_per_hour,
        }
    }

    /// Delay before attempt `attempts + 1`: base × 2^(attempts − 1), at most the maximum.
    pub fn backoff_ms(&self, attempts: i64) -> i64 {
        let doublings = attempts.saturating_sub(1).clamp(0, 30) as u32;
        self.retry_base_ms
            .saturating_mul(1_i64 << doublings)
            .min(self.retry_max_ms)
    }
}

#[derive(Clone)]
pub struct Dispatcher {
    store: Store,
    secrets: Arc<SecretBox>,
    clock: Clock,
    settings: DispatchSettings,
    /// This node's lease name.
    owner: String,
    /// Where gateways report delivery: `<base>/callbacks/sms/<client id>`.
    callback_base: Arc<str>,
}

/// The URL an SMS gateway reports a client's deliveries to (also what its signature covers).
pub fn status_callback_url(base: &str, client_id: &str) -> String {
    format!("{}/callbacks/sms/{client_id}", base.trim_end_matches('/'))
}

impl Dispatcher {
    pub fn new(
        store: Store,
        secrets: Arc<SecretBox>,
        clock: Clock,
        settings: DispatchSettings,
        callback_base: &str,
    ) -> Self {
        Self {
            store,
            secrets,
            clock,
            settings,
            owner: format!("node-{}", crate::domain::new_id()),
            callback_base: callback_base.into(),
        }
    }

    /// Runs until the process ends: a look every interval, and at once when a message is
    /// queued on this node.
    pub async fn run(self) {
        loop {
            let woken = WAKE.notified();
            match self.tick().await {
                // A full batch: more may be due.
                Ok(n) if n as i64 >= BATCH => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "channel dispatcher"),
            }
            tokio::select! {
                () = woken => {}
                () = tokio::time::sleep(self.settings.interval) => {}
            }
        }
    }

    /// One look at the outbox; returns how many due messages it saw.
    pub async fn tick(&self) -> Result<usize, StoreError> {
        let now = self.clock.now_ms();
        let due = self.store.due_messages(now, BATCH).await?;
        metrics::gauge!(crate::metrics::CHANNEL_DUE).set(due.len() as f64);
        let n = due.len();
        for m in due {
            if let Err(e) = self.process(m).await {
                tracing::warn!(error = %e, "channel message not processed");
            }
        }
        Ok(n)
    }

    async fn process(&self, m: MessageRow) -> Result<(), StoreError> {
        let now = self.clock.now_ms();
        if !self
            .store
            .claim_message(&m, &self.owner, now, now + self.settings.lease_ms)
            .await?
        {
            return Ok(());
        }
        if m.state == DeliveryState::Queued
            && let Some(until) = self.rate_limited(&m, now).await?
        {
            return self
                .finish(
                    &m,
                    DeliveryState::Queued,
                    Some("rate_limited"),
                    None,
                    until,
                    None,
                )
                .await;
        }
        let result = match m.channel {
            Channel::Email => self.email(&m).await?,
            Channel::Sms => self.sms(&m).await?,
        };
        let now = self.clock.now_ms();
        match result {
            Attempt::Sent(provider_ref) => {
                self.finish(
                    &m,
                    DeliveryState::Sent,
                    None,
                    Some(&provider_ref),
                    now,
                    Some(now),
                )
                .await
            }
            Attempt::Failed(e) => {
                let attempts = m.attempts + 1;
                let reason = super::truncate(&e.reason, 255);
                metrics::counter!(crate::metrics::CHANNEL_SEND_FAILURES, "channel" => m.channel.as_str(), "kind" => if e.permanent { "permanent" } else { "transient" }).increment(1);
                if e.permanent || attempts >= i64::from(self.settings.max_attempts) {
                    self.finish(&m, DeliveryState::Failed, Some(&reason), None, now, None)
                        .await
                } else {
                    let at = now + self.settings.backoff_ms(attempts);
                    self.finish(&m, DeliveryState::Queued, Some(&reason), None, at, None)
                        .await
                }
            }
            Attempt::InDoubt(reason) => {
                self.finish(&m, DeliveryState::Failed, Some(reason), None, now, None)
                    .await
            }
            Attempt::Later(reason) => {
                let at = now + self.settings.backoff_ms(m.attempts.max(1));
                self.finish(&m, DeliveryState::Queued, Some(&reason), None, at, None)
                    .await
            }
        }
    }

    async fn finish(
        &self,
        m: &MessageRow,
        state: DeliveryState,
        reason: Option<&str>,
        provider_ref: Option<&str>,
        next_attempt_at: i64,
        sent_at: Option<i64>,
    ) -> Result<(), StoreError> {
        let outcome = MessageOutcome {
            state,
            reason,
            provider_ref,
            next_attempt_at,
            sent_at,
            now: self.clock.now_ms(),
        };
        if self
            .store
            .finish_message(&m.id, &self.owner, &outcome)
            .await?
            && matches!(state, DeliveryState::Sent | DeliveryState::Failed)
        {
            count(m.channel, state);
        }
        Ok(())
    }

    /// When a message over a rate limit may go, or None.
    async fn rate_limited(&self, m: &MessageRow, now: i64) -> Result<Option<i64>, StoreError> {
        let per_client = i64::from(self.settings.per_client_per_minute);
        if per_client > 0
            && self
                .store
                .client_sent_since(&m.client_id, now - 60_000)
                .await?
                >= per_client
        {
            metrics::counter!(crate::metrics::CHANNEL_RATE_LIMITED, "scope" => "client")
                .increment(1);
            return Ok(Some(now + 1_000));
        }
        let per_recipient = i64::from(self.settings.per_recipient_per_hour);
        if per_recipient > 0
            && self
                .store
                .recipient_sent_since(&m.recipient, now - 3_600_000)
                .await?
                >= per_recipient
        {
            metrics::counter!(crate::metrics::CHANNEL_RATE_LIMITED, "scope" => "recipient")
                .increment(1);
            return Ok(Some(now + 60_000));
        }
        Ok(None)
    }

    /// The client's sealed transport document for a channel, opened.
    async fn transport(
        &self,
        client_id: &str,
        channel: Channel,
    ) -> Result<Option<serde_json::Map<String, serde_json::Value>>, StoreError> {
        let Some(row) = self
            .store
            .client_secret(client_id, secret_name(channel))
            .await?
        else {
            return Ok(None);
        };
        let sealed = Sealed {
            key_id: row.key_id,
            nonce: row.nonce,
            ciphertext: row.ciphertext,
        };
        Ok(self
            .secrets
            .open(&row.id, &sealed)
            .ok()
            .and_then(|plain| serde_json::from_slice(&plain).ok()))
    }

    async fn email(&self, m: &MessageRow) -> Result<Attempt, StoreError> {
        if m.state == DeliveryState::Sending {
            return Ok(Attempt::InDoubt(
                "outcome_unknown: the sending node stopped mid-send",
            ));
        }
        let settings = match self.transport(&m.client_id, Channel::Email).await? {
            Some(doc) => match SmtpSettings::parse(&doc) {
                Ok(s) => s,
                Err(e) => {
                    return Ok(Attempt::Failed(SendError::permanent(format!(
                        "email settings: {}",
                        e.field
                    ))));
                }
            },
            None => {
                return Ok(Attempt::Failed(SendError::permanent(
                    "email_not_configured",
                )));
            }
        };
        if !self
            .store
            .mark_sending(&m.id, &self.owner, self.clock.now_ms())
            .await?
        {
            return Ok(Attempt::Later("lease lost".into()));
        }
        let started = std::time::Instant::now();
        let result = email::send(&settings, m).await;
        metrics::histogram!(crate::metrics::CHANNEL_SEND_DURATION, "channel" => "email")
            .record(started.elapsed().as_secs_f64());
        Ok(match result {
            Ok(id) => Attempt::Sent(id),
            Err(e) => Attempt::Failed(e),
        })
    }

    async fn sms(&self, m: &MessageRow) -> Result<Attempt, StoreError> {
        let settings = match self.transport(&m.client_id, Channel::Sms).await? {
            Some(doc) => match SmsSettings::parse(&doc) {
                Ok(s) => s,
                Err(e) => {
                    return Ok(Attempt::Failed(SendError::permanent(format!(
                        "sms settings: {}",
                        e.field
                    ))));
                }
            },
            None => return Ok(Attempt::Failed(SendError::permanent("sms_not_configured"))),
        };
        let gateway = Twilio::new(settings);
        let callback = status_callback_url(&self.callback_base, &m.client_id);
        let sms = Sms {
            to: &m.recipient,
            body: &m.text_body,
            status_callback: Some(&callback),
        };
        // An earlier attempt may have gone through (a crash mid-send, a timeout): look first.
        if m.state == DeliveryState::Sending || m.attempts > 0 {
            match gateway.lookup(&sms).await {
                Ok(Some(found)) => return Ok(Attempt::Sent(found.provider_ref)),
                Ok(None) => {}
                Err(e) => {
                    return Ok(Attempt::Later(format!(
                        "lookup before resend: {}",
                        e.reason
                    )));
                }
            }
        }
        if !self
            .store
            .mark_sending(&m.id, &self.owner, self.clock.now_ms())
            .await?
        {
            return Ok(Attempt::Later("lease lost".into()));
        }
        let started = std::time::Instant::now();
        let result = gateway.send(&sms).await;
        metrics::histogram!(crate::metrics::CHANNEL_SEND_DURATION, "channel" => "sms")
            .record(started.elapsed().as_secs_f64());
        Ok(match result {
            Ok(accepted) => Attempt::Sent(accepted.provider_ref),
            Err(e) => Attempt::Failed(e),
        })
    }
}

enum Attempt {
    Sent(String),
    Failed(SendError),
    /// Sent or not, nobody knows: dead-lettered for an admin.
    InDoubt(&'static str),
    /// Not attempted; look again later.
    Later(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap() {
        let s = DispatchSettings {
            interval: Duration::from_secs(1),
            lease_ms: 1,
            max_attempts: 5,
            retry_base_ms: 1_000,
            retry_max_ms: 5_000,
            per_client_per_minute: 0,
            per_recipient_per_hour: 0,
        };
        let delays: Vec<i64> = (1..=5).map(|a| s.backoff_ms(a)).collect();
        assert_eq!(delays, [1_000, 2_000, 4_000, 5_000, 5_000]);
    }
}
