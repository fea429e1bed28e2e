// Responsible-gaming SQL (issue 19), written once and `include!`d after `sql.rs` into both
// backends. Rows: `store::protection`.

use super::protection::{LimitRow, ProtectionRow, WalletFlow};

macro_rules! protection_columns {
    () => {
        "user_id, client_id, exclusion_kind, excluded_at, excluded_until, reality_check_minutes, \
         play_started_at, play_last_at, reality_checked_at, updated_at"
    };
}

fn protection_from_row(row: &DbRow) -> Result<ProtectionRow, sqlx::Error> {
    Ok(ProtectionRow {
        user_id: row.try_get("user_id")?,
        client_id: row.try_get("client_id")?,
        exclusion_kind: row.try_get("exclusion_kind")?,
        excluded_at: row.try_get("excluded_at")?,
        excluded_until: row.try_get("excluded_until")?,
        reality_check_minutes: row.try_get("reality_check_minutes")?,
        play_started_at: row.try_get("play_started_at")?,
        play_last_at: row.try_get("play_last_at")?,
        reality_checked_at: row.try_get("reality_checked_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn limit_from_row(row: &DbRow) -> Result<LimitRow, sqlx::Error> {
    let pending: i64 = row.try_get("pending_set")?;
    Ok(LimitRow {
        name: row.try_get("name")?,
        current_value: row.try_get("current_value")?,
        pending_set: pending != 0,
        pending_value: row.try_get("pending_value")?,
        pending_at: row.try_get("pending_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl Backend {
    pub async fn player_protection(&self, user_id: &str) -> StoreResult<Option<ProtectionRow>> {
        let sql = concat!(
            "SELECT ",
            protection_columns!(),
            " FROM player_protection WHERE user_id = ?"
        );
        let row = sqlx::query(sql)
            .bind(user_id)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.as_ref().map(protection_from_row).transpose()?)
    }

    pub async fn player_limits(&self, user_id: &str) -> StoreResult<Vec<LimitRow>> {
        let rows = sqlx::query(
            "SELECT name, current_value, CAST(pending_set AS SIGNED) AS pending_set, pending_value, \
             pending_at, updated_at FROM player_limits WHERE user_id = ? ORDER BY name",
        )
        .bind(user_id)
        .fetch_all(&self.read)
        .await?;
        Ok(rows.iter().map(limit_from_row).collect::<Result<_, _>>()?)
    }

    /// The player's protection row, created if missing, locked (MySQL) in `tx`.
    async fn locked_protection(
        tx: &mut sqlx::Transaction<'static, Db>,
        user_id: &str,
        client_id: &str,
        now_ms: i64,
    ) -> StoreResult<ProtectionRow> {
        let sql = format!(
            "SELECT {} FROM player_protection WHERE user_id = ?{FOR_UPDATE}",
            protection_columns!()
        );
        let found = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .bind(user_id)
            .fetch_optional(&mut **tx)
            .await?;
        if let Some(row) = found {
            return Ok(protection_from_row(&row)?);
        }
        sqlx::query(
            "INSERT INTO player_protection (user_id, client_id, updated_at) VALUES (?, ?, ?)",
        )
        .bind(user_id)
        .bind(client_id)
        .bind(now_ms)
        .execute(&mut **tx)
        .await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(user_id)
            .fetch_one(&mut **tx)
            .await?;
        Ok(protection_from_row(&row)?)
    }

    pub async fn change_limit<F>(
        &self,
        user_id: &str,
        client_id: &str,
        name: &str,
        now_ms: i64,
        decide: F,
    ) -> StoreResult<(Option<LimitRow>, LimitRow)>
    where
        F: FnOnce(Option<&LimitRow>) -> LimitRow + Send,
    {
        let mut tx = self.write.begin_with(BEGIN_WRITE).await?;
        Self::locked_protection(&mut tx, user_id, client_id, now_ms).await?;
        let old = sqlx::query(
            "SELECT name, current_value, CAST(pending_set AS SIGNED) AS pending_set, pending_value, \
             pending_at, updated_at FROM player_limits WHERE user_id = ? AND name = ?",
        )
        .bind(user_id)
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?
        .as_ref()
        .map(limit_from_row)
        .transpose()?;
        let new = decide(old.as_ref());
        sqlx::query("DELETE FROM player_limits WHERE user_id = ? AND name = ?")
            .bind(user_id)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO player_limits (user_id, name, client_id, current_value, pending_set, \
             pending_value, pending_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(user_id)
        .bind(name)
        .bind(client_id)
        .bind(new.current_value)
        .bind(i64::from(new.pending_set))
        .bind(new.pending_value)
        .bind(new.pending_at)
        .bind(new.updated_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((old, new))
    }

    pub async fn change_protection<F>(
        &self,
        user_id: &str,
        client_id: &str,
        now_ms: i64,
        decide: F,
    ) -> StoreResult<(ProtectionRow, Option<ProtectionRow>)>
    where
        F: FnOnce(&ProtectionRow) -> Option<ProtectionRow> + Send,
    {
        let mut tx = self.write.begin_with(BEGIN_WRITE).await?;
        let old = Self::locked_protection(&mut tx, user_id, client_id, now_ms).await?;
        let Some(new) = decide(&old) else {
            tx.commit().await?;
            return Ok((old, None));
        };
        sqlx::query(
            "UPDATE player_protection SET exclusion_kind = ?, excluded_at = ?, excluded_until = ?, \
             reality_check_minutes = ?, updated_at = ? WHERE user_id = ?",
        )
        .bind(&new.exclusion_kind)
        .bind(new.excluded_at)
        .bind(new.excluded_until)
        .bind(new.reality_check_minutes)
        .bind(new.updated_at)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((old, Some(new)))
    }

    pub async fn wallet_flows(
        &self,
        account_id: &str,
        since_ms: i64,
    ) -> StoreResult<Vec<WalletFlow>> {
        let rows = sqlx::query(
            "SELECT j.kind, p.amount, p.created_at FROM postings p JOIN journal j ON j.id = p.journal_id \
             WHERE p.account_id = ? AND p.created_at >= ? AND j.kind IN \
             ('deposit', 'credit', 'provider_hold', 'provider_release', 'provider_credit') \
             ORDER BY p.created_at",
        )
        .bind(account_id)
        .bind(since_ms)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(WalletFlow {
                    kind: decode_text(r, "kind")?,
                    amount: r.try_get("amount")?,
                    at: r.try_get("created_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    pub async fn touch_play(&self, user_id: &str, now_ms: i64, gap_ms: i64) -> StoreResult<()> {
        // `play_last_at` is assigned last: MySQL evaluates assignments left to right.
        sqlx::query(
            "UPDATE player_protection SET \
             play_started_at = CASE WHEN play_last_at IS NULL OR play_last_at < ? THEN ? ELSE play_started_at END, \
             reality_checked_at = CASE WHEN play_last_at IS NULL OR play_last_at < ? THEN NULL ELSE reality_checked_at END, \
             play_last_at = ? WHERE user_id = ?",
        )
        .bind(now_ms - gap_ms)
        .bind(now_ms)
        .bind(now_ms - gap_ms)
        .bind(now_ms)
        .bind(user_id)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    pub async fn reality_checks_due(
        &self,
        now_ms: i64,
        gap_ms: i64,
    ) -> StoreResult<Vec<ProtectionRow>> {
        let sql = concat!(
            "SELECT ",
            protection_columns!(),
            " FROM player_protection WHERE play_last_at >= ? AND reality_check_minutes IS NOT NULL \
             AND COALESCE(reality_checked_at, play_started_at) + reality_check_minutes * 60000 <= ? \
             LIMIT 1000"
        );
        let rows = sqlx::query(sql)
            .bind(now_ms - gap_ms)
            .bind(now_ms)
            .fetch_all(&self.read)
            .await?;
        Ok(rows
            .iter()
            .map(protection_from_row)
            .collect::<Result<_, _>>()?)
    }

    pub async fn mark_reality_checked(&self, user_id: &str, at_ms: i64) -> StoreResult<()> {
        sqlx::query("UPDATE player_protection SET reality_checked_at = ? WHERE user_id = ?")
            .bind(at_ms)
            .bind(user_id)
            .execute(&self.write)
            .await?;
        Ok(())
    }
}

impl Backend {
    /// Audit rows whose action starts with `prefix`, newest first (the protection report).
    pub async fn audit_page_prefix(
        &self,
        client_id: Option<&str>,
        target_user: Option<&str>,
        before_seq: Option<i64>,
        prefix: &str,
        limit: i64,
    ) -> StoreResult<Vec<super::identity::AuditRow>> {
        let sql = format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq < ? AND (? IS NULL OR client_id = ?) \
             AND (? IS NULL OR target_id = ?) AND action LIKE ? ORDER BY seq DESC LIMIT ?"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(before_seq.unwrap_or(i64::MAX))
            .bind(client_id)
            .bind(client_id)
            .bind(target_user)
            .bind(target_user)
            .bind(format!("{prefix}%"))
            .bind(limit)
            .fetch_all(&self.read)
            .await?;
        Ok(rows.iter().map(audit_from_row).collect::<Result<_, _>>()?)
    }
}

impl Backend {
    pub async fn put_totp(&self, row: &super::protection::TotpRow, now_ms: i64) -> StoreResult<()> {
        let mut tx = self.write.begin_with(BEGIN_WRITE).await?;
        for sql in [
            "DELETE FROM staff_totp WHERE user_id = ?",
            "DELETE FROM staff_recovery_codes WHERE user_id = ?",
        ] {
            sqlx::query(sql)
                .bind(&row.user_id)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "INSERT INTO staff_totp (user_id, key_id, nonce, ciphertext, enabled, last_step, created_at, updated_at) \
             VALUES (?, ?, ?, ?, 0, 0, ?, ?)",
        )
        .bind(&row.user_id)
        .bind(&row.key_id)
        .bind(&row.nonce)
        .bind(&row.ciphertext)
        .bind(now_ms)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn totp(&self, user_id: &str) -> StoreResult<Option<super::protection::TotpRow>> {
        let row = sqlx::query(
            "SELECT user_id, key_id, nonce, ciphertext, CAST(enabled AS SIGNED) AS enabled, last_step \
             FROM staff_totp WHERE user_id = ?",
        )
        .bind(user_id)
        .fetch_optional(&self.write)
        .await?;
        let Some(r) = row else {
            return Ok(None);
        };
        let enabled: i64 = r.try_get("enabled")?;
        Ok(Some(super::protection::TotpRow {
            user_id: r.try_get("user_id")?,
            key_id: r.try_get("key_id")?,
            nonce: r.try_get("nonce")?,
            ciphertext: r.try_get("ciphertext")?,
            enabled: enabled != 0,
            last_step: r.try_get("last_step")?,
        }))
    }

    pub async fn enable_totp(
        &self,
        user_id: &str,
        code_hashes: &[String],
        step: i64,
        now_ms: i64,
    ) -> StoreResult<bool> {
        let mut tx = self.write.begin_with(BEGIN_WRITE).await?;
        let done = sqlx::query(
            "UPDATE staff_totp SET enabled = 1, last_step = ?, updated_at = ? WHERE user_id = ? AND enabled = 0",
        )
        .bind(step)
        .bind(now_ms)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        for hash in code_hashes {
            sqlx::query("INSERT INTO staff_recovery_codes (user_id, code_hash) VALUES (?, ?)")
                .bind(user_id)
                .bind(hash)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    pub async fn use_totp_step(&self, user_id: &str, step: i64) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE staff_totp SET last_step = ? WHERE user_id = ? AND enabled = 1 AND last_step < ?",
        )
        .bind(step)
        .bind(user_id)
        .bind(step)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn use_recovery_code(
        &self,
        user_id: &str,
        code_hash: &str,
        now_ms: i64,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE staff_recovery_codes SET used_at = ? WHERE user_id = ? AND code_hash = ? AND used_at IS NULL",
        )
        .bind(now_ms)
        .bind(user_id)
        .bind(code_hash)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn delete_totp(&self, user_id: &str) -> StoreResult<bool> {
        let mut tx = self.write.begin_with(BEGIN_WRITE).await?;
        let done = sqlx::query("DELETE FROM staff_totp WHERE user_id = ?")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM staff_recovery_codes WHERE user_id = ?")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn insert_challenge(
        &self,
        token_hash: &str,
        user_id: &str,
        purpose: &str,
        expires_at: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO second_factor_challenges (token_hash, user_id, purpose, expires_at) VALUES (?, ?, ?, ?)",
        )
        .bind(token_hash)
        .bind(user_id)
        .bind(purpose)
        .bind(expires_at)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    pub async fn challenge_user(
        &self,
        token_hash: &str,
        purpose: &str,
        now_ms: i64,
    ) -> StoreResult<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT user_id FROM second_factor_challenges WHERE token_hash = ? AND purpose = ? AND expires_at > ?",
        )
        .bind(token_hash)
        .bind(purpose)
        .bind(now_ms)
        .fetch_optional(&self.write)
        .await?)
    }

    pub async fn drop_challenge(&self, token_hash: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM second_factor_challenges WHERE token_hash = ?")
            .bind(token_hash)
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
