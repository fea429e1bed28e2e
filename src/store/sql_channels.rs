// Channels SQL (issue 19), `include!`d after `sql.rs` into both backends. Upserts are an UPDATE
// then an INSERT (no dialect-specific upsert); the outbox claim is an UPDATE guarded by the
// state and attempt count read, so two nodes never both hold one message.

use super::channels::{ContactRow, MessageOutcome, MessageRow, TemplateRow};
use crate::domain::{Category, Channel, DeliveryState};

macro_rules! message_columns {
    () => {
        "id, client_id, user_id, channel, template, category, recipient, language, subject, \
         text_body, html_body, state, reason, attempts, next_attempt_at, lease_owner, lease_until, \
         provider_ref, dedupe_key, created_at, updated_at, sent_at, delivered_at"
    };
}

macro_rules! contact_columns {
    () => {
        "user_id, channel, client_id, address, verified_at, code_hash, code_expires_at, \
         code_attempts, updated_at"
    };
}

fn contact_from_row(r: &DbRow) -> Result<ContactRow, sqlx::Error> {
    Ok(ContactRow {
        user_id: r.try_get("user_id")?,
        channel: decode_text(r, "channel")?,
        client_id: r.try_get("client_id")?,
        address: r.try_get("address")?,
        verified_at: r.try_get("verified_at")?,
        code_hash: r.try_get("code_hash")?,
        code_expires_at: r.try_get("code_expires_at")?,
        code_attempts: r.try_get::<i64, _>("code_attempts")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn template_from_row(r: &DbRow) -> Result<TemplateRow, sqlx::Error> {
    Ok(TemplateRow {
        client_id: r.try_get("client_id")?,
        template: r.try_get("template")?,
        language: r.try_get("language")?,
        subject: r.try_get("subject")?,
        text_body: r.try_get("text_body")?,
        html_body: r.try_get("html_body")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn message_from_row(r: &DbRow) -> Result<MessageRow, sqlx::Error> {
    Ok(MessageRow {
        id: r.try_get("id")?,
        client_id: r.try_get("client_id")?,
        user_id: r.try_get("user_id")?,
        channel: decode_text(r, "channel")?,
        template: r.try_get("template")?,
        category: decode_text(r, "category")?,
        recipient: r.try_get("recipient")?,
        language: r.try_get("language")?,
        subject: r.try_get("subject")?,
        text_body: r.try_get("text_body")?,
        html_body: r.try_get("html_body")?,
        state: decode_text(r, "state")?,
        reason: r.try_get("reason")?,
        attempts: r.try_get::<i64, _>("attempts")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
        lease_owner: r.try_get("lease_owner")?,
        lease_until: r.try_get("lease_until")?,
        provider_ref: r.try_get("provider_ref")?,
        dedupe_key: r.try_get("dedupe_key")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        sent_at: r.try_get("sent_at")?,
        delivered_at: r.try_get("delivered_at")?,
    })
}

impl Backend {
    pub async fn contacts(&self, user_id: &str) -> StoreResult<Vec<ContactRow>> {
        let sql = concat!(
            "SELECT ",
            contact_columns!(),
            " FROM user_contacts WHERE user_id = ? ORDER BY channel"
        );
        let rows = sqlx::query(sql)
            .bind(user_id)
            .fetch_all(&self.write)
            .await?;
        Ok(rows
            .iter()
            .map(contact_from_row)
            .collect::<Result<_, _>>()?)
    }

    pub async fn contact(
        &self,
        user_id: &str,
        channel: Channel,
    ) -> StoreResult<Option<ContactRow>> {
        let sql = concat!(
            "SELECT ",
            contact_columns!(),
            " FROM user_contacts WHERE user_id = ? AND channel = ?"
        );
        let row = sqlx::query(sql)
            .bind(user_id)
            .bind(channel.as_str())
            .fetch_optional(&self.write)
            .await?;
        Ok(row.as_ref().map(contact_from_row).transpose()?)
    }

    pub async fn put_contact(&self, c: &ContactRow) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        let n = sqlx::query(
            "UPDATE user_contacts SET address = ?, verified_at = ?, code_hash = ?, \
             code_expires_at = ?, code_attempts = ?, updated_at = ? WHERE user_id = ? AND channel = ?",
        )
        .bind(&c.address)
        .bind(c.verified_at)
        .bind(&c.code_hash)
        .bind(c.code_expires_at)
        .bind(c.code_attempts)
        .bind(c.updated_at)
        .bind(&c.user_id)
        .bind(c.channel.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            sqlx::query(concat!(
                "INSERT INTO user_contacts (",
                contact_columns!(),
                ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ))
            .bind(&c.user_id)
            .bind(c.channel.as_str())
            .bind(&c.client_id)
            .bind(&c.address)
            .bind(c.verified_at)
            .bind(&c.code_hash)
            .bind(c.code_expires_at)
            .bind(c.code_attempts)
            .bind(c.updated_at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn count_code_attempt(&self, user_id: &str, channel: Channel) -> StoreResult<()> {
        sqlx::query(
            "UPDATE user_contacts SET code_attempts = code_attempts + 1 WHERE user_id = ? AND channel = ?",
        )
        .bind(user_id)
        .bind(channel.as_str())
        .execute(&self.write)
        .await?;
        Ok(())
    }

    pub async fn verify_contact(
        &self,
        user_id: &str,
        channel: Channel,
        code_hash: &str,
        now_ms: i64,
    ) -> StoreResult<bool> {
        let n = sqlx::query(
            "UPDATE user_contacts SET verified_at = ?, code_hash = NULL, updated_at = ? \
             WHERE user_id = ? AND channel = ? AND code_hash = ?",
        )
        .bind(now_ms)
        .bind(now_ms)
        .bind(user_id)
        .bind(channel.as_str())
        .bind(code_hash)
        .execute(&self.write)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    pub async fn delete_contact(&self, user_id: &str, channel: Channel) -> StoreResult<bool> {
        let n = sqlx::query("DELETE FROM user_contacts WHERE user_id = ? AND channel = ?")
            .bind(user_id)
            .bind(channel.as_str())
            .execute(&self.write)
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    pub async fn preferences(&self, user_id: &str) -> StoreResult<Vec<(Channel, Category, bool)>> {
        let rows = sqlx::query(
            "SELECT channel, category, opted_in FROM channel_preferences WHERE user_id = ?",
        )
        .bind(user_id)
        .fetch_all(&self.write)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push((
                decode_text(r, "channel")?,
                decode_text(r, "category")?,
                r.try_get::<i64, _>("opted_in")? != 0,
            ));
        }
        Ok(out)
    }

    pub async fn put_preference(
        &self,
        user_id: &str,
        channel: Channel,
        category: Category,
        opted_in: bool,
        now_ms: i64,
    ) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        let n = sqlx::query(
            "UPDATE channel_preferences SET opted_in = ?, updated_at = ? \
             WHERE user_id = ? AND channel = ? AND category = ?",
        )
        .bind(i64::from(opted_in))
        .bind(now_ms)
        .bind(user_id)
        .bind(channel.as_str())
        .bind(category.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            sqlx::query(
                "INSERT INTO channel_preferences (user_id, channel, category, opted_in, updated_at) \
                 VALUES (?, ?, ?, ?, ?)",
            )
            .bind(user_id)
            .bind(channel.as_str())
            .bind(category.as_str())
            .bind(i64::from(opted_in))
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn user_language(&self, user_id: &str) -> StoreResult<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT language FROM user_languages WHERE user_id = ?")
                .bind(user_id)
                .fetch_optional(&self.write)
                .await?,
        )
    }

    pub async fn put_user_language(
        &self,
        user_id: &str,
        language: &str,
        now_ms: i64,
    ) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        let n =
            sqlx::query("UPDATE user_languages SET language = ?, updated_at = ? WHERE user_id = ?")
                .bind(language)
                .bind(now_ms)
                .bind(user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if n == 0 {
            sqlx::query(
                "INSERT INTO user_languages (user_id, language, updated_at) VALUES (?, ?, ?)",
            )
            .bind(user_id)
            .bind(language)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn client_default_language(&self, client_id: &str) -> StoreResult<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT default_language FROM client_channel_settings WHERE client_id = ?",
        )
        .bind(client_id)
        .fetch_optional(&self.write)
        .await?)
    }

    pub async fn put_client_default_language(
        &self,
        client_id: &str,
        language: &str,
        now_ms: i64,
    ) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        let n = sqlx::query(
            "UPDATE client_channel_settings SET default_language = ?, updated_at = ? WHERE client_id = ?",
        )
        .bind(language)
        .bind(now_ms)
        .bind(client_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            sqlx::query(
                "INSERT INTO client_channel_settings (client_id, default_language, updated_at) VALUES (?, ?, ?)",
            )
            .bind(client_id)
            .bind(language)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn channel_template(
        &self,
        client_id: &str,
        template: &str,
        language: &str,
    ) -> StoreResult<Option<TemplateRow>> {
        let row = sqlx::query(
            "SELECT client_id, template, language, subject, text_body, html_body, updated_at \
             FROM channel_templates WHERE client_id = ? AND template = ? AND language = ?",
        )
        .bind(client_id)
        .bind(template)
        .bind(language)
        .fetch_optional(&self.write)
        .await?;
        Ok(row.as_ref().map(template_from_row).transpose()?)
    }

    pub async fn channel_templates(&self, client_id: &str) -> StoreResult<Vec<TemplateRow>> {
        let rows = sqlx::query(
            "SELECT client_id, template, language, subject, text_body, html_body, updated_at \
             FROM channel_templates WHERE client_id = ? ORDER BY template, language",
        )
        .bind(client_id)
        .fetch_all(&self.write)
        .await?;
        Ok(rows
            .iter()
            .map(template_from_row)
            .collect::<Result<_, _>>()?)
    }

    pub async fn put_channel_template(&self, t: &TemplateRow) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        let n = sqlx::query(
            "UPDATE channel_templates SET subject = ?, text_body = ?, html_body = ?, updated_at = ? \
             WHERE client_id = ? AND template = ? AND language = ?",
        )
        .bind(&t.subject)
        .bind(&t.text_body)
        .bind(&t.html_body)
        .bind(t.updated_at)
        .bind(&t.client_id)
        .bind(&t.template)
        .bind(&t.language)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            sqlx::query(
                "INSERT INTO channel_templates (client_id, template, language, subject, text_body, html_body, updated_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&t.client_id)
            .bind(&t.template)
            .bind(&t.language)
            .bind(&t.subject)
            .bind(&t.text_body)
            .bind(&t.html_body)
            .bind(t.updated_at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn delete_channel_template(
        &self,
        client_id: &str,
        template: &str,
        language: &str,
    ) -> StoreResult<bool> {
        let n = sqlx::query(
            "DELETE FROM channel_templates WHERE client_id = ? AND template = ? AND language = ?",
        )
        .bind(client_id)
        .bind(template)
        .bind(language)
        .execute(&self.write)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    pub async fn insert_messages(&self, rows: &[MessageRow]) -> StoreResult<bool> {
        let mut tx = self.write.begin().await?;
        for m in rows {
            let inserted = sqlx::query(concat!(
                "INSERT INTO channel_messages (",
                message_columns!(),
                ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ))
            .bind(&m.id)
            .bind(&m.client_id)
            .bind(&m.user_id)
            .bind(m.channel.as_str())
            .bind(&m.template)
            .bind(m.category.as_str())
            .bind(&m.recipient)
            .bind(&m.language)
            .bind(&m.subject)
            .bind(&m.text_body)
            .bind(&m.html_body)
            .bind(m.state.as_str())
            .bind(&m.reason)
            .bind(m.attempts)
            .bind(m.next_attempt_at)
            .bind(&m.lease_owner)
            .bind(m.lease_until)
            .bind(&m.provider_ref)
            .bind(&m.dedupe_key)
            .bind(m.created_at)
            .bind(m.updated_at)
            .bind(m.sent_at)
            .bind(m.delivered_at)
            .execute(&mut *tx)
            .await;
            match inserted {
                Ok(_) => {}
                // The dedupe key was used: this event's messages were queued before.
                Err(e) if is_unique_violation(&e) => return Ok(false),
                Err(e) => return Err(e.into()),
            }
        }
        tx.commit().await?;
        Ok(true)
    }

    pub async fn message(&self, id: &str) -> StoreResult<Option<MessageRow>> {
        let sql = concat!(
            "SELECT ",
            message_columns!(),
            " FROM channel_messages WHERE id = ?"
        );
        let row = sqlx::query(sql)
            .bind(id)
            .fetch_optional(&self.write)
            .await?;
        Ok(row.as_ref().map(message_from_row).transpose()?)
    }

    pub async fn client_messages(
        &self,
        client_id: &str,
        state: Option<DeliveryState>,
        before: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<MessageRow>> {
        let sql = concat!(
            "SELECT ",
            message_columns!(),
            " FROM channel_messages WHERE client_id = ? AND (? IS NULL OR state = ?) AND id < ? \
             ORDER BY id DESC LIMIT ?"
        );
        let state = state.map(DeliveryState::as_str);
        let rows = sqlx::query(sql)
            .bind(client_id)
            .bind(state)
            .bind(state)
            .bind(before.unwrap_or("~"))
            .bind(limit)
            .fetch_all(&self.write)
            .await?;
        Ok(rows
            .iter()
            .map(message_from_row)
            .collect::<Result<_, _>>()?)
    }

    pub async fn user_messages(
        &self,
        user_id: &str,
        before: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<MessageRow>> {
        let sql = concat!(
            "SELECT ",
            message_columns!(),
            " FROM channel_messages WHERE user_id = ? AND id < ? ORDER BY id DESC LIMIT ?"
        );
        let rows = sqlx::query(sql)
            .bind(user_id)
            .bind(before.unwrap_or("~"))
            .bind(limit)
            .fetch_all(&self.write)
            .await?;
        Ok(rows
            .iter()
            .map(message_from_row)
            .collect::<Result<_, _>>()?)
    }

    pub async fn due_messages(&self, now_ms: i64, limit: i64) -> StoreResult<Vec<MessageRow>> {
        let sql = concat!(
            "SELECT ",
            message_columns!(),
            " FROM channel_messages WHERE state IN ('queued', 'sending') AND next_attempt_at <= ? \
             AND lease_until <= ? ORDER BY next_attempt_at LIMIT ?"
        );
        let rows = sqlx::query(sql)
            .bind(now_ms)
            .bind(now_ms)
            .bind(limit)
            .fetch_all(&self.write)
            .await?;
        Ok(rows
            .iter()
            .map(message_from_row)
            .collect::<Result<_, _>>()?)
    }

    pub async fn claim_message(
        &self,
        m: &MessageRow,
        owner: &str,
        now_ms: i64,
        lease_until: i64,
    ) -> StoreResult<bool> {
        let n = sqlx::query(
            "UPDATE channel_messages SET lease_owner = ?, lease_until = ?, updated_at = ? \
             WHERE id = ? AND state = ? AND attempts = ? AND lease_until <= ?",
        )
        .bind(owner)
        .bind(lease_until)
        .bind(now_ms)
        .bind(&m.id)
        .bind(m.state.as_str())
        .bind(m.attempts)
        .bind(now_ms)
        .execute(&self.write)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    pub async fn mark_sending(&self, id: &str, owner: &str, now_ms: i64) -> StoreResult<bool> {
        let n = sqlx::query(
            "UPDATE channel_messages SET state = 'sending', attempts = attempts + 1, updated_at = ? \
             WHERE id = ? AND lease_owner = ?",
        )
        .bind(now_ms)
        .bind(id)
        .bind(owner)
        .execute(&self.write)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    pub async fn finish_message(
        &self,
        id: &str,
        owner: &str,
        o: &MessageOutcome<'_>,
    ) -> StoreResult<bool> {
        let n = sqlx::query(
            "UPDATE channel_messages SET state = ?, reason = ?, \
             provider_ref = COALESCE(?, provider_ref), next_attempt_at = ?, \
             sent_at = COALESCE(?, sent_at), lease_owner = NULL, lease_until = 0, updated_at = ? \
             WHERE id = ? AND lease_owner = ?",
        )
        .bind(o.state.as_str())
        .bind(o.reason)
        .bind(o.provider_ref)
        .bind(o.next_attempt_at)
        .bind(o.sent_at)
        .bind(o.now)
        .bind(id)
        .bind(owner)
        .execute(&self.write)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    pub async fn message_report(
        &self,
        client_id: &str,
        provider_ref: &str,
        state: DeliveryState,
        reason: Option<&str>,
        now_ms: i64,
    ) -> StoreResult<bool> {
        let n = sqlx::query(
            "UPDATE channel_messages SET state = ?, reason = ?, \
             delivered_at = CASE WHEN ? = 'delivered' THEN ? ELSE delivered_at END, updated_at = ? \
             WHERE client_id = ? AND provider_ref = ? AND channel = 'sms' AND state = 'sent'",
        )
        .bind(state.as_str())
        .bind(reason)
        .bind(state.as_str())
        .bind(now_ms)
        .bind(now_ms)
        .bind(client_id)
        .bind(provider_ref)
        .execute(&self.write)
        .await?
        .rows_affected();
        Ok(n >= 1)
    }

    pub async fn retry_message(&self, id: &str, now_ms: i64) -> StoreResult<bool> {
        let n = sqlx::query(
            "UPDATE channel_messages SET state = 'queued', attempts = 0, next_attempt_at = ?, \
             reason = NULL, updated_at = ? WHERE id = ? AND state = 'failed'",
        )
        .bind(now_ms)
        .bind(now_ms)
        .bind(id)
        .execute(&self.write)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    pub async fn client_sent_since(&self, client_id: &str, since_ms: i64) -> StoreResult<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM channel_messages WHERE client_id = ? AND sent_at >= ?",
        )
        .bind(client_id)
        .bind(since_ms)
        .fetch_one(&self.write)
        .await?)
    }

    pub async fn recipient_sent_since(&self, recipient: &str, since_ms: i64) -> StoreResult<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM channel_messages WHERE recipient = ? AND sent_at >= ?",
        )
        .bind(recipient)
        .bind(since_ms)
        .fetch_one(&self.write)
        .await?)
    }

    pub async fn touch_device(
        &self,
        user_id: &str,
        kind: &str,
        fingerprint: &str,
        now_ms: i64,
    ) -> StoreResult<(bool, bool)> {
        let mut tx = self.write.begin().await?;
        let known = sqlx::query(
            "UPDATE user_devices SET last_seen = ? WHERE user_id = ? AND kind = ? AND fingerprint = ?",
        )
        .bind(now_ms)
        .bind(user_id)
        .bind(kind)
        .bind(fingerprint)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;
        if known {
            tx.commit().await?;
            return Ok((false, true));
        }
        let before: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM user_devices WHERE user_id = ? AND kind = ?")
                .bind(user_id)
                .bind(kind)
                .fetch_one(&mut *tx)
                .await?;
        let inserted = sqlx::query(
            "INSERT INTO user_devices (user_id, kind, fingerprint, first_seen, last_seen) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(user_id)
        .bind(kind)
        .bind(fingerprint)
        .bind(now_ms)
        .bind(now_ms)
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            // A concurrent login recorded it first: not new.
            Err(e) if is_unique_violation(&e) => return Ok((false, true)),
            Err(e) => return Err(e.into()),
        }
        tx.commit().await?;
        Ok((true, before > 0))
    }
}
