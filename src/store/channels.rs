//! Channels in the store (issue 19): contact details, preferences, languages, templates, the
//! outbox and login devices; the SQL is in `sql_channels.rs`.

use super::{Backend, Store, StoreResult};
use crate::domain::{Category, Channel, DeliveryState};

/// A user's address on one channel.
#[derive(Debug, Clone)]
pub struct ContactRow {
    pub user_id: String,
    pub channel: Channel,
    pub client_id: String,
    pub address: String,
    pub verified_at: Option<i64>,
    /// SHA-256 (hex) of the pending verification code.
    pub code_hash: Option<String>,
    pub code_expires_at: i64,
    pub code_attempts: i64,
    pub updated_at: i64,
}

/// A client's override of one template in one language.
#[derive(Debug, Clone)]
pub struct TemplateRow {
    pub client_id: String,
    pub template: String,
    pub language: String,
    pub subject: String,
    pub text_body: String,
    pub html_body: Option<String>,
    pub updated_at: i64,
}

/// One outbox message (one channel, one recipient), rendered when queued.
#[derive(Debug, Clone)]
pub struct MessageRow {
    pub id: String,
    pub client_id: String,
    pub user_id: Option<String>,
    pub channel: Channel,
    pub template: String,
    pub category: Category,
    pub recipient: String,
    pub language: String,
    pub subject: String,
    pub text_body: String,
    pub html_body: Option<String>,
    pub state: DeliveryState,
    pub reason: Option<String>,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub lease_owner: Option<String>,
    pub lease_until: i64,
    pub provider_ref: Option<String>,
    pub dedupe_key: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub sent_at: Option<i64>,
    pub delivered_at: Option<i64>,
}

/// How a claimed message's attempt ended.
#[derive(Debug, Clone)]
pub struct MessageOutcome<'a> {
    pub state: DeliveryState,
    pub reason: Option<&'a str>,
    pub provider_ref: Option<&'a str>,
    pub next_attempt_at: i64,
    pub sent_at: Option<i64>,
    pub now: i64,
}

impl Store {
    pub async fn contacts(&self, user_id: &str) -> StoreResult<Vec<ContactRow>> {
        dispatch!(self, b => b.contacts(user_id).await)
    }

    pub async fn contact(
        &self,
        user_id: &str,
        channel: Channel,
    ) -> StoreResult<Option<ContactRow>> {
        dispatch!(self, b => b.contact(user_id, channel).await)
    }

    /// Stores a (new) address, unverified, with its pending code.
    pub async fn put_contact(&self, c: &ContactRow) -> StoreResult<()> {
        dispatch!(self, b => b.put_contact(c).await)
    }

    pub async fn count_code_attempt(&self, user_id: &str, channel: Channel) -> StoreResult<()> {
        dispatch!(self, b => b.count_code_attempt(user_id, channel).await)
    }

    /// Marks verified if the pending code is still `code_hash`; false if it changed meanwhile.
    pub async fn verify_contact(
        &self,
        user_id: &str,
        channel: Channel,
        code_hash: &str,
        now_ms: i64,
    ) -> StoreResult<bool> {
        dispatch!(self, b => b.verify_contact(user_id, channel, code_hash, now_ms).await)
    }

    pub async fn delete_contact(&self, user_id: &str, channel: Channel) -> StoreResult<bool> {
        dispatch!(self, b => b.delete_contact(user_id, channel).await)
    }

    /// Stored preferences (absent ones are the defaults).
    pub async fn preferences(&self, user_id: &str) -> StoreResult<Vec<(Channel, Category, bool)>> {
        dispatch!(self, b => b.preferences(user_id).await)
    }

    pub async fn put_preference(
        &self,
        user_id: &str,
        channel: Channel,
        category: Category,
        opted_in: bool,
        now_ms: i64,
    ) -> StoreResult<()> {
        dispatch!(self, b => b.put_preference(user_id, channel, category, opted_in, now_ms).await)
    }

    pub async fn user_language(&self, user_id: &str) -> StoreResult<Option<String>> {
        dispatch!(self, b => b.user_language(user_id).await)
    }

    pub async fn put_user_language(
        &self,
        user_id: &str,
        language: &str,
        now_ms: i64,
    ) -> StoreResult<()> {
        dispatch!(self, b => b.put_user_language(user_id, language, now_ms).await)
    }

    pub async fn client_default_language(&self, client_id: &str) -> StoreResult<Option<String>> {
        dispatch!(self, b => b.client_default_language(client_id).await)
    }

    pub async fn put_client_default_language(
        &self,
        client_id: &str,
        language: &str,
        now_ms: i64,
    ) -> StoreResult<()> {
        dispatch!(self, b => b.put_client_default_language(client_id, language, now_ms).await)
    }

    pub async fn channel_template(
        &self,
        client_id: &str,
        template: &str,
        language: &str,
    ) -> StoreResult<Option<TemplateRow>> {
        dispatch!(self, b => b.channel_template(client_id, template, language).await)
    }

    pub async fn channel_templates(&self, client_id: &str) -> StoreResult<Vec<TemplateRow>> {
        dispatch!(self, b => b.channel_templates(client_id).await)
    }

    pub async fn put_channel_template(&self, t: &TemplateRow) -> StoreResult<()> {
        dispatch!(self, b => b.put_channel_template(t).await)
    }

    pub async fn delete_channel_template(
        &self,
        client_id: &str,
        template: &str,
        language: &str,
    ) -> StoreResult<bool> {
        dispatch!(self, b => b.delete_channel_template(client_id, template, language).await)
    }

    /// Queues messages in one transaction; false (nothing written) when their dedupe key was
    /// used before: the event was already queued.
    pub async fn insert_messages(&self, rows: &[MessageRow]) -> StoreResult<bool> {
        dispatch!(self, b => b.insert_messages(rows).await)
    }

    pub async fn message(&self, id: &str) -> StoreResult<Option<MessageRow>> {
        dispatch!(self, b => b.message(id).await)
    }

    /// A client's messages, newest first, optionally in one state.
    pub async fn client_messages(
        &self,
        client_id: &str,
        state: Option<DeliveryState>,
        before: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<MessageRow>> {
        dispatch!(self, b => b.client_messages(client_id, state, before, limit).await)
    }

    pub async fn user_messages(
        &self,
        user_id: &str,
        before: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<MessageRow>> {
        dispatch!(self, b => b.user_messages(user_id, before, limit).await)
    }

    /// Queued (or abandoned `sending`) messages due at `now` whose lease has run out.
    pub async fn due_messages(&self, now_ms: i64, limit: i64) -> StoreResult<Vec<MessageRow>> {
        dispatch!(self, b => b.due_messages(now_ms, limit).await)
    }

    /// Takes a lease on a message still as it was read (state and attempts); false when
    /// another node took it first.
    pub async fn claim_message(
        &self,
        m: &MessageRow,
        owner: &str,
        now_ms: i64,
        lease_until: i64,
    ) -> StoreResult<bool> {
        dispatch!(self, b => b.claim_message(m, owner, now_ms, lease_until).await)
    }

    /// Records `sending` (one more attempt) before the send, under the lease.
    pub async fn mark_sending(&self, id: &str, owner: &str, now_ms: i64) -> StoreResult<bool> {
        dispatch!(self, b => b.mark_sending(id, owner, now_ms).await)
    }

    /// Records an attempt's end and releases the lease.
    pub async fn finish_message(
        &self,
        id: &str,
        owner: &str,
        o: &MessageOutcome<'_>,
    ) -> StoreResult<bool> {
        dispatch!(self, b => b.finish_message(id, owner, o).await)
    }

    /// A delivery report: `sent` becomes `delivered` or `failed` (never backwards).
    pub async fn message_report(
        &self,
        client_id: &str,
        provider_ref: &str,
        state: DeliveryState,
        reason: Option<&str>,
        now_ms: i64,
    ) -> StoreResult<bool> {
        dispatch!(self, b => b.message_report(client_id, provider_ref, state, reason, now_ms).await)
    }

    /// A dead-lettered (`failed`) message queued again with fresh attempts.
    pub async fn retry_message(&self, id: &str, now_ms: i64) -> StoreResult<bool> {
        dispatch!(self, b => b.retry_message(id, now_ms).await)
    }

    /// Messages of a client sent at or after `since`.
    pub async fn client_sent_since(&self, client_id: &str, since_ms: i64) -> StoreResult<i64> {
        dispatch!(self, b => b.client_sent_since(client_id, since_ms).await)
    }

    /// Messages to a recipient (address) sent at or after `since`.
    pub async fn recipient_sent_since(&self, recipient: &str, since_ms: i64) -> StoreResult<i64> {
        dispatch!(self, b => b.recipient_sent_since(recipient, since_ms).await)
    }

    /// Records a login's device fingerprint; returns (new for this user, user had any before).
    pub async fn touch_device(
        &self,
        user_id: &str,
        kind: &str,
        fingerprint: &str,
        now_ms: i64,
    ) -> StoreResult<(bool, bool)> {
        dispatch!(self, b => b.touch_device(user_id, kind, fingerprint, now_ms).await)
    }
}
