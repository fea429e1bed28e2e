// Identity and audit SQL (issue 3), compiled per backend like `sql.rs` and included after it,
// so it shares its `Db`, row helpers and column lists. Portable SQL only.

use super::identity::{AuditRow, NewAudit, SecretRow, UserFilter};

fn audit_from_row(row: &DbRow) -> Result<AuditRow, sqlx::Error> {
    Ok(AuditRow {
        seq: row.try_get("seq")?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
        entry: NewAudit {
            client_id: row.try_get("client_id")?,
            actor_id: row.try_get("actor_id")?,
            action: row.try_get("action")?,
            target_type: row.try_get("target_type")?,
            target_id: row.try_get("target_id")?,
            before: row.try_get("before_json")?,
            after: row.try_get("after_json")?,
            ip: row.try_get("ip")?,
            created_at: row.try_get("created_at")?,
        },
    })
}

fn secret_from_row(row: &DbRow) -> Result<SecretRow, sqlx::Error> {
    Ok(SecretRow {
        id: row.try_get("id")?,
        client_id: row.try_get("client_id")?,
        name: row.try_get("name")?,
        key_id: row.try_get("key_id")?,
        nonce: row.try_get("nonce")?,
        ciphertext: row.try_get("ciphertext")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        version: row.try_get("version")?,
    })
}

const AUDIT_COLUMNS: &str = super::sql_text::audit_columns!();

/// The exclusive upper bound of a path prefix range: `/a/b/` → `/a/b0` ('0' follows '/').
fn path_upper(prefix: &str) -> String {
    let mut upper = prefix.trim_end_matches('/').to_owned();
    upper.push('0');
    upper
}

impl Backend {
    // ---- audit ---------------------------------------------------------------------------

    /// Appends one row to the chain (`ledger::write::append_audit`, as money movements do): the
    /// head's lock (MySQL row lock, SQLite write lock) is taken first and held for the whole
    /// transaction, so appenders on any node queue up and each links to the true previous row.
    pub async fn audit_append(
        &self,
        e: &NewAudit,
        link: &(dyn Fn(&str, i64, &NewAudit) -> String + Sync),
    ) -> StoreResult<i64> {
        let mut tx = self.write.begin().await?;
        let seq = super::ledger::write::append_audit(&mut SqlxLedger(&mut tx), &[e], link).await?;
        tx.commit().await?;
        Ok(seq.expect("one row appended"))
    }

    /// Newest first, below `before_seq`; one client's rows or (None) every row.
    pub async fn audit_page(
        &self,
        client_id: Option<&str>,
        before_seq: Option<i64>,
        action: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<AuditRow>> {
        let sql = format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq < ? AND (? IS NULL OR client_id = ?) \
             AND (? IS NULL OR action = ?) ORDER BY seq DESC LIMIT ?"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(before_seq.unwrap_or(i64::MAX))
            .bind(client_id)
            .bind(client_id)
            .bind(action)
            .bind(action)
            .bind(limit)
            .fetch_all(&self.read)
            .await?;
        Ok(rows.iter().map(audit_from_row).collect::<Result<_, _>>()?)
    }

    /// The chain in order, `limit` rows with a seq above `after_seq` (verification in batches).
    pub async fn audit_chain(&self, after_seq: i64, limit: i64) -> StoreResult<Vec<AuditRow>> {
        let sql =
            format!("SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(after_seq)
            .bind(limit)
            .fetch_all(&self.read)
            .await?;
        Ok(rows.iter().map(audit_from_row).collect::<Result<_, _>>()?)
    }

    pub async fn audit_head(&self) -> StoreResult<(i64, String)> {
        let row = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_one(&self.read)
            .await?;
        Ok((row.try_get("seq")?, row.try_get("hash")?))
    }

    // ---- users ---------------------------------------------------------------------------

    pub async fn list_users(&self, f: &UserFilter) -> StoreResult<Vec<UserRow>> {
        let (lo, hi) = match &f.under_path {
            Some(p) => (p.clone(), path_upper(p)),
            None => (String::new(), "\u{7f}".to_owned()),
        };
        let sql = concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE (? IS NULL OR client_id = ?) AND id > ? ",
            "AND path >= ? AND path < ? AND (? IS NULL OR role = ?) AND (? IS NULL OR status = ?) ",
            "AND (? IS NULL OR parent_id = ?) AND (? IS NULL OR username LIKE ?) ORDER BY id LIMIT ?"
        );
        let prefix = f
            .username_prefix
            .as_ref()
            .map(|p| format!("{}%", p.replace(['%', '_', '\\'], "")));
        let rows = sqlx::query(sql)
            .bind(&f.client_id)
            .bind(&f.client_id)
            .bind(f.after_id.as_deref().unwrap_or(""))
            .bind(&lo)
            .bind(&hi)
            .bind(f.role.map(Role::as_str))
            .bind(f.role.map(Role::as_str))
            .bind(f.status.map(UserStatus::as_str))
            .bind(f.status.map(UserStatus::as_str))
            .bind(&f.parent_id)
            .bind(&f.parent_id)
            .bind(&prefix)
            .bind(&prefix)
            .bind(f.limit)
            .fetch_all(&self.read)
            .await?;
        Ok(rows.iter().map(user_from_row).collect::<Result<_, _>>()?)
    }

    /// Every user strictly below `path`, in tree (path) order, after `after_path`: a range scan
    /// on the path index, whatever the depth or width of the tree.
    pub async fn subtree(
        &self,
        path: &str,
        after_path: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<UserRow>> {
        let sql = concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE path > ? AND path < ? ORDER BY path LIMIT ?"
        );
        let rows = sqlx::query(sql)
            .bind(after_path.unwrap_or(path))
            .bind(path_upper(path))
            .bind(limit)
            .fetch_all(&self.read)
            .await?;
        Ok(rows.iter().map(user_from_row).collect::<Result<_, _>>()?)
    }

    pub async fn subtree_count(&self, path: &str) -> StoreResult<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM users WHERE path > ? AND path < ?")
            .bind(path)
            .bind(path_upper(path))
            .fetch_one(&self.read)
            .await?;
        Ok(row.try_get("n")?)
    }

    /// Sets a user's status; leaving `active` ends every session of the user in the same
    /// transaction. False if no such user.
    pub async fn set_user_status(
        &self,
        id: &str,
        status: UserStatus,
        now_ms: i64,
    ) -> StoreResult<bool> {
        let mut tx = self.write.begin().await?;
        if status == UserStatus::Closed {
            // Freeze first: the UPDATE takes the accounts' row locks (the ledger writers read
            // `closed` under the same locks), so the balances checked below cannot change
            // before COMMIT and no movement can follow it.
            sqlx::query("UPDATE accounts SET closed = 1 WHERE user_id = ?")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            let holding: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM accounts WHERE user_id = ? AND balance <> 0",
            )
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
            // A transfer still in flight would post to the wallet once the provider answers.
            let in_flight: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM provider_transfers WHERE user_id = ? AND state IN ('pending', 'unknown')",
            )
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
            if holding > 0 || in_flight > 0 {
                tx.rollback().await?;
                return Err(StoreError::NotClosable(if holding > 0 {
                    "balance_not_zero"
                } else {
                    "transfers_in_flight"
                }));
            }
        }
        let n = sqlx::query("UPDATE users SET status = ?, updated_at = ? WHERE id = ?")
            .bind(status.as_str())
            .bind(now_ms)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if status != UserStatus::Active {
            sqlx::query("UPDATE sessions SET revoked = 1 WHERE user_id = ? AND revoked = 0")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(n > 0)
    }

    pub async fn rename_user(&self, id: &str, username: &str, now_ms: i64) -> StoreResult<()> {
        let done = sqlx::query("UPDATE users SET username = ?, updated_at = ? WHERE id = ?")
            .bind(username)
            .bind(now_ms)
            .bind(id)
            .execute(&self.write)
            .await;
        match done {
            Err(e) if is_unique_violation(&e) => Err(StoreError::Duplicate("username_taken")),
            other => other.map(|_| ()).map_err(StoreError::from),
        }
    }

    /// New password hash; ends every other session of the user.
    pub async fn set_password(
        &self,
        id: &str,
        hash: &str,
        keep_session: Option<&str>,
        now_ms: i64,
    ) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        sqlx::query("UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?")
            .bind(hash)
            .bind(now_ms)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE sessions SET revoked = 1 WHERE user_id = ? AND id <> ?")
            .bind(id)
            .bind(keep_session.unwrap_or(""))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Ends every live session of a user; answers how many.
    pub async fn revoke_user_sessions(&self, user_id: &str) -> StoreResult<u64> {
        let done = sqlx::query("UPDATE sessions SET revoked = 1 WHERE user_id = ? AND revoked = 0")
            .bind(user_id)
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected())
    }

    pub async fn revoke_client_sessions(&self, client_id: &str) -> StoreResult<()> {
        sqlx::query("UPDATE sessions SET revoked = 1 WHERE client_id = ? AND revoked = 0")
            .bind(client_id)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// For benchmarks and imports: many users in one transaction (no wallets).
    pub async fn insert_users_bulk(&self, users: &[UserRow]) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        let sql = concat!(
            "INSERT INTO users (",
            user_columns!(),
            ", updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        );
        for u in users {
            sqlx::query(sql)
                .bind(&u.id)
                .bind(&u.client_id)
                .bind(&u.login_scope)
                .bind(&u.parent_id)
                .bind(&u.path)
                .bind(u.depth)
                .bind(u.role.as_str())
                .bind(&u.username)
                .bind(&u.password_hash)
                .bind(u.status.as_str())
                .bind(u.created_at)
                .bind(u.created_at)
                .execute(&mut *tx)
                .await?;
        }
        count_new_players(&mut tx, users).await?;
        tx.commit().await?;
        Ok(())
    }

    // ---- permissions ---------------------------------------------------------------------

    /// `(permission, effect)` overrides of one user.
    pub async fn permission_overrides(&self, user_id: &str) -> StoreResult<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT permission, effect FROM user_permissions WHERE user_id = ? ORDER BY permission",
        )
        .bind(user_id)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("permission")?, r.try_get("effect")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Sets (effect Some) or clears (None) one override.
    pub async fn set_permission(
        &self,
        user_id: &str,
        client_id: Option<&str>,
        permission: &str,
        effect: Option<&str>,
        by: &str,
        now_ms: i64,
    ) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        sqlx::query("DELETE FROM user_permissions WHERE user_id = ? AND permission = ?")
            .bind(user_id)
            .bind(permission)
            .execute(&mut *tx)
            .await?;
        if let Some(effect) = effect {
            sqlx::query("INSERT INTO user_permissions (user_id, client_id, permission, effect, granted_by, created_at) VALUES (?, ?, ?, ?, ?, ?)")
                .bind(user_id)
                .bind(client_id)
                .bind(permission)
                .bind(effect)
                .bind(by)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    // ---- login throttling ----------------------------------------------------------------

    /// Failures of `key` at or after `since`: how many, and the oldest one's time.
    pub async fn login_failures(
        &self,
        key: &str,
        since_ms: i64,
    ) -> StoreResult<(i64, Option<i64>)> {
        let row = sqlx::query("SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM login_failures WHERE throttle_key = ? AND created_at >= ?")
            .bind(key)
            .bind(since_ms)
            .fetch_one(&self.read)
            .await?;
        Ok((row.try_get("n")?, row.try_get("oldest")?))
    }

    /// Records one failure under each key and forgets every failure older than `prune_before`
    /// (an index range delete, so the table stays as small as the window).
    pub async fn record_login_failure(
        &self,
        keys: &[&str],
        client_id: Option<&str>,
        now_ms: i64,
        prune_before: i64,
    ) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        sqlx::query("DELETE FROM login_failures WHERE created_at < ?")
            .bind(prune_before)
            .execute(&mut *tx)
            .await?;
        for key in keys {
            sqlx::query(
                "INSERT INTO login_failures (throttle_key, client_id, created_at) VALUES (?, ?, ?)",
            )
            .bind(*key)
            .bind(client_id)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn clear_login_failures(&self, key: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM login_failures WHERE throttle_key = ?")
            .bind(key)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    // ---- client settings and secrets -----------------------------------------------------

    pub async fn client_settings(&self, client_id: &str) -> StoreResult<Option<String>> {
        let row = sqlx::query("SELECT settings FROM client_settings WHERE client_id = ?")
            .bind(client_id)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.map(|r| r.try_get("settings")).transpose()?)
    }

    /// Every client's stored settings document (for the CORS origin list).
    pub async fn all_client_settings(&self) -> StoreResult<Vec<(String, String)>> {
        let rows = sqlx::query("SELECT client_id, settings FROM client_settings")
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("client_id")?, r.try_get("settings")?)))
            .collect()
    }

    pub async fn put_client_settings(
        &self,
        client_id: &str,
        settings: &str,
        now_ms: i64,
    ) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        let n = sqlx::query(
            "UPDATE client_settings SET settings = ?, updated_at = ? WHERE client_id = ?",
        )
        .bind(settings)
        .bind(now_ms)
        .bind(client_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            sqlx::query(
                "INSERT INTO client_settings (client_id, settings, updated_at) VALUES (?, ?, ?)",
            )
            .bind(client_id)
            .bind(settings)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn client_secret(
        &self,
        client_id: &str,
        name: &str,
    ) -> StoreResult<Option<SecretRow>> {
        let row = sqlx::query("SELECT id, client_id, name, key_id, nonce, ciphertext, created_at, updated_at, version FROM client_secrets WHERE client_id = ? AND name = ?")
            .bind(client_id)
            .bind(name)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.as_ref().map(secret_from_row).transpose()?)
    }

    pub async fn client_secrets(&self, client_id: &str) -> StoreResult<Vec<SecretRow>> {
        let rows = sqlx::query("SELECT id, client_id, name, key_id, nonce, ciphertext, created_at, updated_at, version FROM client_secrets WHERE client_id = ? ORDER BY name")
            .bind(client_id)
            .fetch_all(&self.read)
            .await?;
        Ok(rows.iter().map(secret_from_row).collect::<Result<_, _>>()?)
    }

    /// Every sealed value (current secrets and kept versions) not sealed under `key_id`:
    /// what a key rotation re-seals.
    pub async fn sealed_not_under(&self, key_id: &str) -> StoreResult<Vec<super::SealedValue>> {
        let rows = sqlx::query(
            "SELECT id, 0 AS archived, version, key_id, nonce, ciphertext FROM client_secrets WHERE key_id <> ? \
             UNION ALL \
             SELECT secret_id AS id, 1 AS archived, version, key_id, nonce, ciphertext FROM client_secret_versions WHERE key_id <> ?",
        )
        .bind(key_id)
        .bind(key_id)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(super::SealedValue {
                    secret_id: r.try_get("id")?,
                    archived: r.try_get::<i64, _>("archived")? == 1,
                    version: r.try_get("version")?,
                    key_id: r.try_get("key_id")?,
                    nonce: r.try_get("nonce")?,
                    ciphertext: r.try_get("ciphertext")?,
                })
            })
            .collect()
    }

    /// Replaces one sealed value with the same content sealed under another key, only if it is
    /// still sealed as read (a concurrent change wins). Answers whether it was replaced.
    pub async fn reseal(
        &self,
        old: &super::SealedValue,
        key_id: &str,
        nonce: &str,
        ciphertext: &str,
    ) -> StoreResult<bool> {
        let sql = if old.archived {
            "UPDATE client_secret_versions SET key_id = ?, nonce = ?, ciphertext = ? \
             WHERE secret_id = ? AND version = ? AND key_id = ? AND nonce = ?"
        } else {
            "UPDATE client_secrets SET key_id = ?, nonce = ?, ciphertext = ? \
             WHERE id = ? AND version = ? AND key_id = ? AND nonce = ?"
        };
        let done = sqlx::query(sql)
            .bind(key_id)
            .bind(nonce)
            .bind(ciphertext)
            .bind(&old.secret_id)
            .bind(old.version)
            .bind(&old.key_id)
            .bind(&old.nonce)
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Inserts or replaces the secret `(client_id, name)`, keeping the row id it was sealed with
    /// (its associated data); a replaced version is kept in `client_secret_versions`. Returns
    /// the version now stored (1 for a new secret).
    pub async fn put_client_secret(&self, s: &SecretRow) -> StoreResult<i64> {
        let mut tx = self.write.begin().await?;
        // A write first: locks the row (MySQL) or the database (SQLite) before it is read, so
        // two replacements of one secret queue instead of both archiving the same version.
        sqlx::query("UPDATE client_secrets SET version = version WHERE id = ? AND client_id = ?")
            .bind(&s.id)
            .bind(&s.client_id)
            .execute(&mut *tx)
            .await?;
        let current: Option<i64> =
            sqlx::query_scalar("SELECT version FROM client_secrets WHERE id = ? AND client_id = ?")
                .bind(&s.id)
                .bind(&s.client_id)
                .fetch_optional(&mut *tx)
                .await?;
        let version = match current {
            Some(v) => {
                sqlx::query(
                    "INSERT INTO client_secret_versions (secret_id, version, key_id, nonce, ciphertext, replaced_at) \
                     SELECT id, version, key_id, nonce, ciphertext, ? FROM client_secrets WHERE id = ?",
                )
                .bind(s.updated_at)
                .bind(&s.id)
                .execute(&mut *tx)
                .await?;
                sqlx::query("UPDATE client_secrets SET key_id = ?, nonce = ?, ciphertext = ?, updated_at = ?, version = ? WHERE id = ?")
                    .bind(&s.key_id)
                    .bind(&s.nonce)
                    .bind(&s.ciphertext)
                    .bind(s.updated_at)
                    .bind(v + 1)
                    .bind(&s.id)
                    .execute(&mut *tx)
                    .await?;
                v + 1
            }
            None => {
                sqlx::query("INSERT INTO client_secrets (id, client_id, name, key_id, nonce, ciphertext, created_at, updated_at, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1)")
                    .bind(&s.id)
                    .bind(&s.client_id)
                    .bind(&s.name)
                    .bind(&s.key_id)
                    .bind(&s.nonce)
                    .bind(&s.ciphertext)
                    .bind(s.created_at)
                    .bind(s.updated_at)
                    .execute(&mut *tx)
                    .await?;
                1
            }
        };
        tx.commit().await?;
        Ok(version)
    }

    /// `(client_id, name, version)` of every stored secret: what a node compares with the
    /// provider accounts it built (no ciphertext read).
    pub async fn secret_versions(&self) -> StoreResult<Vec<(String, String, i64)>> {
        let rows = sqlx::query("SELECT client_id, name, version FROM client_secrets")
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("client_id")?,
                    r.try_get("name")?,
                    r.try_get("version")?,
                ))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    /// One version of a secret: the current row, or a replaced one (sealed for the same row id).
    pub async fn client_secret_version(
        &self,
        client_id: &str,
        name: &str,
        version: i64,
    ) -> StoreResult<Option<SecretRow>> {
        if let Some(current) = self.client_secret(client_id, name).await?
            && current.version == version
        {
            return Ok(Some(current));
        }
        let row = sqlx::query(
            "SELECT s.id, s.client_id, s.name, v.key_id, v.nonce, v.ciphertext, s.created_at, v.replaced_at AS updated_at, v.version \
             FROM client_secret_versions v JOIN client_secrets s ON s.id = v.secret_id \
             WHERE s.client_id = ? AND s.name = ? AND v.version = ?",
        )
        .bind(client_id)
        .bind(name)
        .bind(version)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.as_ref().map(secret_from_row).transpose()?)
    }
}
