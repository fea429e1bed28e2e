// Payment SQL (issue 18), included into `sqlite.rs` and `mysql.rs` after `sql_providers.rs`
// (whose `post_in_tx` it shares): every state change is a conditional UPDATE of the row plus
// the journal entry it implies, in one transaction, so a repeated webhook, a late answer and
// the reconciler can never move the same money twice.
use super::payments::{
    CapRefusal, PaymentBegin, PaymentCaps, PaymentChange, PaymentEventRow, PaymentFilter,
    PaymentRow,
};
use crate::domain::PaymentState;

macro_rules! payment_columns {
    () => {
        "id, client_id, user_id, kind, gateway, account, amount, paid_amount, fee, state, \
         gateway_ref, settlement_ref, checkout_url, destination, flagged, reason, idempotency_key, request_hash, \
         requested_by, decided_by, attempts, created_at, updated_at, settled_at"
    };
}

fn payment_from_row(row: &DbRow) -> Result<PaymentRow, sqlx::Error> {
    Ok(PaymentRow {
        id: row.try_get("id")?,
        client_id: row.try_get("client_id")?,
        user_id: row.try_get("user_id")?,
        kind: decode_text(row, "kind")?,
        gateway: row.try_get("gateway")?,
        account: row.try_get("account")?,
        amount: row.try_get("amount")?,
        paid_amount: row.try_get("paid_amount")?,
        fee: row.try_get("fee")?,
        state: decode_text(row, "state")?,
        gateway_ref: row.try_get("gateway_ref")?,
        settlement_ref: row.try_get("settlement_ref")?,
        checkout_url: row.try_get("checkout_url")?,
        destination: row.try_get("destination")?,
        flagged: row.try_get::<i64, _>("flagged")? != 0,
        reason: row.try_get("reason")?,
        idempotency_key: row.try_get("idempotency_key")?,
        request_hash: row.try_get("request_hash")?,
        requested_by: row.try_get("requested_by")?,
        decided_by: row.try_get("decided_by")?,
        attempts: row.try_get("attempts")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        settled_at: row.try_get("settled_at")?,
    })
}

/// `CAST(SUM(..) AS CHAR)` read back (both backends agree on text; MySQL's SUM is DECIMAL).
fn summed(row: &DbRow, column: &str) -> Result<i64, sqlx::Error> {
    let text: Option<String> = row.try_get(column)?;
    Ok(text.and_then(|t| t.parse().ok()).unwrap_or(0))
}

impl Backend {
    /// The outbox step: the payment row and, for a withdrawal, the hold, in ONE transaction,
    /// after the caps were checked in it. A reused idempotency key returns the existing row.
    pub async fn begin_payment(
        &self,
        p: &PaymentRow,
        hold: Option<&NewEntry>,
        caps: Option<&PaymentCaps>,
        audit_key: &[u8; 32],
    ) -> StoreResult<PaymentBegin> {
        let mut tx = self.write.begin().await?;
        if let Some(existing) = self
            .payment_by_key_in(&mut tx, &p.client_id, &p.idempotency_key)
            .await?
        {
            tx.rollback().await?;
            return if existing.request_hash == p.request_hash {
                Ok(PaymentBegin::Existing(Box::new(existing)))
            } else {
                Err(StoreError::IdempotencyConflict)
            };
        }
        if let Some(caps) = caps
            && let Some(refusal) = check_caps(&mut tx, p, caps).await?
        {
            tx.rollback().await?;
            return Ok(PaymentBegin::Refused(refusal));
        }
        let inserted = sqlx::query(concat!(
            "INSERT INTO payments (",
            payment_columns!(),
            ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(&p.id)
        .bind(&p.client_id)
        .bind(&p.user_id)
        .bind(p.kind.as_str())
        .bind(&p.gateway)
        .bind(&p.account)
        .bind(p.amount)
        .bind(p.paid_amount)
        .bind(p.fee)
        .bind(p.state.as_str())
        .bind(&p.gateway_ref)
        .bind(&p.settlement_ref)
        .bind(&p.checkout_url)
        .bind(&p.destination)
        .bind(i64::from(p.flagged))
        .bind(&p.reason)
        .bind(&p.idempotency_key)
        .bind(&p.request_hash)
        .bind(&p.requested_by)
        .bind(&p.decided_by)
        .bind(p.attempts)
        .bind(p.created_at)
        .bind(p.updated_at)
        .bind(p.settled_at)
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => {
                // Another node took the key meanwhile.
                tx.rollback().await?;
                return match self
                    .payment_by_key(&p.client_id, &p.idempotency_key)
                    .await?
                {
                    Some(row) if row.request_hash == p.request_hash => {
                        Ok(PaymentBegin::Existing(Box::new(row)))
                    }
                    Some(_) => Err(StoreError::IdempotencyConflict),
                    None => Err(StoreError::Database(e)),
                };
            }
            other => other?,
        };
        let posted = match hold {
            Some(entry) => Some(post_in_tx(&mut tx, entry, audit_key).await?),
            None => None,
        };
        tx.commit().await?;
        Ok(PaymentBegin::Created(posted))
    }

    async fn payment_by_key_in(
        &self,
        tx: &mut sqlx::Transaction<'_, Db>,
        client_id: &str,
        key: &str,
    ) -> StoreResult<Option<PaymentRow>> {
        let sql = concat!(
            "SELECT ",
            payment_columns!(),
            " FROM payments WHERE client_id = ? AND idempotency_key = ?"
        );
        let row = sqlx::query(sql)
            .bind(client_id)
            .bind(key)
            .fetch_optional(&mut **tx)
            .await?;
        Ok(row.as_ref().map(payment_from_row).transpose()?)
    }

    async fn payment_by_key(&self, client_id: &str, key: &str) -> StoreResult<Option<PaymentRow>> {
        let sql = concat!(
            "SELECT ",
            payment_columns!(),
            " FROM payments WHERE client_id = ? AND idempotency_key = ?"
        );
        let row = sqlx::query(sql)
            .bind(client_id)
            .bind(key)
            .fetch_optional(&self.write)
            .await?;
        Ok(row.as_ref().map(payment_from_row).transpose()?)
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "the transition's fields, then the chain key"
    )]
    pub async fn transition_payment(
        &self,
        id: &str,
        from: &[PaymentState],
        to: PaymentState,
        c: &PaymentChange,
        entry: Option<&NewEntry>,
        audit_key: &[u8; 32],
    ) -> StoreResult<Option<Option<PostedEntry>>> {
        let mut tx = self.write.begin().await?;
        let marks = vec!["?"; from.len()].join(", ");
        let sql = format!(
            "UPDATE payments SET state = ?, gateway_ref = COALESCE(?, gateway_ref), \
             settlement_ref = COALESCE(?, settlement_ref), checkout_url = COALESCE(?, checkout_url), paid_amount = COALESCE(?, paid_amount), \
             fee = COALESCE(?, fee), flagged = COALESCE(?, flagged), reason = COALESCE(?, reason), \
             decided_by = COALESCE(?, decided_by), settled_at = COALESCE(?, settled_at), \
             updated_at = ? WHERE id = ? AND state IN ({marks})"
        );
        // Only `?` marks are interpolated.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(to.as_str())
            .bind(&c.gateway_ref)
            .bind(&c.settlement_ref)
            .bind(&c.checkout_url)
            .bind(c.paid_amount)
            .bind(c.fee)
            .bind(c.flagged.map(i64::from))
            .bind(&c.reason)
            .bind(&c.decided_by)
            .bind(c.settled_at)
            .bind(crate::domain::now_ms())
            .bind(id);
        for f in from {
            q = q.bind(f.as_str());
        }
        if q.execute(&mut *tx).await?.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        let posted = match entry {
            Some(e) => Some(post_in_tx(&mut tx, e, audit_key).await?),
            None => None,
        };
        tx.commit().await?;
        Ok(Some(posted))
    }

    pub async fn mark_payment_attempt(&self, id: &str, reason: Option<&str>) -> StoreResult<()> {
        let now = crate::domain::now_ms();
        sqlx::query("UPDATE payments SET attempts = attempts + 1, reason = COALESCE(?, reason), updated_at = ? WHERE id = ?")
            .bind(reason)
            .bind(now)
            .bind(id)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    pub async fn payment(&self, id: &str) -> StoreResult<Option<PaymentRow>> {
        let sql = concat!("SELECT ", payment_columns!(), " FROM payments WHERE id = ?");
        let row = sqlx::query(sql)
            .bind(id)
            .fetch_optional(&self.write)
            .await?;
        Ok(row.as_ref().map(payment_from_row).transpose()?)
    }

    pub async fn payment_by_ref(
        &self,
        gateway: &str,
        gateway_ref: &str,
    ) -> StoreResult<Option<PaymentRow>> {
        let sql = concat!(
            "SELECT ",
            payment_columns!(),
            " FROM payments WHERE gateway = ? AND gateway_ref = ?"
        );
        let row = sqlx::query(sql)
            .bind(gateway)
            .bind(gateway_ref)
            .fetch_optional(&self.write)
            .await?;
        Ok(row.as_ref().map(payment_from_row).transpose()?)
    }

    pub async fn open_payments(&self, before_ms: i64, limit: i64) -> StoreResult<Vec<PaymentRow>> {
        let sql = concat!(
            "SELECT ",
            payment_columns!(),
            " FROM payments WHERE state IN ('created', 'pending', 'requested', 'approved', 'processing') \
             AND updated_at < ? ORDER BY updated_at LIMIT ?"
        );
        let rows = sqlx::query(sql)
            .bind(before_ms)
            .bind(limit)
            .fetch_all(&self.write)
            .await?;
        Ok(rows
            .iter()
            .map(payment_from_row)
            .collect::<Result<_, _>>()?)
    }

    pub async fn payments(&self, f: &PaymentFilter) -> StoreResult<Vec<PaymentRow>> {
        let (low, high) = match &f.path_prefix {
            Some(p) => (p.clone(), path_upper(p)),
            None => (String::new(), "\u{7f}".to_owned()),
        };
        let sql = concat!(
            "SELECT ",
            payment_columns!(),
            " FROM payments WHERE (? IS NULL OR client_id = ?) AND (? IS NULL OR user_id = ?) \
             AND (? IS NULL OR kind = ?) AND (? IS NULL OR state = ?) AND (? IS NULL OR id < ?) \
             AND (? = 0 OR user_id IN (SELECT id FROM users WHERE path >= ? AND path < ?)) \
             ORDER BY id DESC LIMIT ?"
        );
        let kind = f.kind.map(|k| k.as_str());
        let state = f.state.map(|s| s.as_str());
        let rows = sqlx::query(sql)
            .bind(&f.client_id)
            .bind(&f.client_id)
            .bind(&f.user_id)
            .bind(&f.user_id)
            .bind(kind)
            .bind(kind)
            .bind(state)
            .bind(state)
            .bind(&f.before_id)
            .bind(&f.before_id)
            .bind(i64::from(f.path_prefix.is_some()))
            .bind(low)
            .bind(high)
            .bind(f.limit)
            .fetch_all(&self.read)
            .await?;
        Ok(rows
            .iter()
            .map(payment_from_row)
            .collect::<Result<_, _>>()?)
    }

    pub async fn settled_payments(
        &self,
        client_id: &str,
        gateway: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> StoreResult<Vec<PaymentRow>> {
        let sql = concat!(
            "SELECT ",
            payment_columns!(),
            " FROM payments WHERE client_id = ? AND gateway = ? AND state = 'paid' \
             AND settled_at >= ? AND settled_at < ? ORDER BY id"
        );
        let rows = sqlx::query(sql)
            .bind(client_id)
            .bind(gateway)
            .bind(from_ms)
            .bind(to_ms)
            .fetch_all(&self.read)
            .await?;
        Ok(rows
            .iter()
            .map(payment_from_row)
            .collect::<Result<_, _>>()?)
    }

    pub async fn insert_payment_event(&self, e: &PaymentEventRow) -> StoreResult<bool> {
        let inserted = sqlx::query(
            "INSERT INTO payment_events (gateway, event_id, payment_id, event_type, payload, received_at, processed_at) \
             VALUES (?, ?, ?, ?, ?, ?, NULL)",
        )
        .bind(&e.gateway)
        .bind(&e.event_id)
        .bind(&e.payment_id)
        .bind(&e.event_type)
        .bind(&e.payload)
        .bind(e.received_at)
        .execute(&self.write)
        .await;
        match inserted {
            Err(err) if is_unique_violation(&err) => Ok(false),
            other => other.map(|_| true).map_err(StoreError::from),
        }
    }

    pub async fn unprocessed_payment_events(
        &self,
        before_ms: i64,
        limit: i64,
    ) -> StoreResult<Vec<PaymentEventRow>> {
        let rows = sqlx::query(
            "SELECT gateway, event_id, payment_id, event_type, payload, received_at FROM payment_events \
             WHERE processed_at IS NULL AND received_at < ? ORDER BY received_at LIMIT ?",
        )
        .bind(before_ms)
        .bind(limit)
        .fetch_all(&self.write)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PaymentEventRow {
                    gateway: r.try_get("gateway")?,
                    event_id: r.try_get("event_id")?,
                    payment_id: r.try_get("payment_id")?,
                    event_type: r.try_get("event_type")?,
                    payload: r.try_get("payload")?,
                    received_at: r.try_get("received_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    pub async fn mark_payment_event_processed(
        &self,
        gateway: &str,
        event_id: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE payment_events SET processed_at = ? WHERE gateway = ? AND event_id = ?",
        )
        .bind(crate::domain::now_ms())
        .bind(gateway)
        .bind(event_id)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    pub async fn payment_settings(&self, client_id: &str) -> StoreResult<Option<String>> {
        let row = sqlx::query("SELECT settings FROM payment_settings WHERE client_id = ?")
            .bind(client_id)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.map(|r| r.try_get("settings")).transpose()?)
    }

    pub async fn put_payment_settings(&self, client_id: &str, text: &str) -> StoreResult<()> {
        let now = crate::domain::now_ms();
        let updated = sqlx::query(
            "UPDATE payment_settings SET settings = ?, updated_at = ? WHERE client_id = ?",
        )
        .bind(text)
        .bind(now)
        .bind(client_id)
        .execute(&self.write)
        .await?
        .rows_affected();
        if updated == 0 {
            let inserted = sqlx::query(
                "INSERT INTO payment_settings (client_id, settings, updated_at) VALUES (?, ?, ?)",
            )
            .bind(client_id)
            .bind(text)
            .bind(now)
            .execute(&self.write)
            .await;
            match inserted {
                Err(e) if is_unique_violation(&e) => {
                    sqlx::query("UPDATE payment_settings SET settings = ?, updated_at = ? WHERE client_id = ?")
                        .bind(text)
                        .bind(now)
                        .bind(client_id)
                        .execute(&self.write)
                        .await?;
                }
                other => {
                    other?;
                }
            }
        }
        Ok(())
    }
}

/// The caps of a new payment, read in its transaction.
async fn check_caps(
    tx: &mut sqlx::Transaction<'_, Db>,
    p: &PaymentRow,
    caps: &PaymentCaps,
) -> StoreResult<Option<CapRefusal>> {
    if let Some(max) = caps.pending_max {
        let open: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM payments WHERE user_id = ? AND kind = 'withdrawal' \
             AND state IN ('requested', 'approved', 'processing')",
        )
        .bind(&p.user_id)
        .fetch_one(&mut **tx)
        .await?;
        if open + 1 > max {
            return Ok(Some(CapRefusal::PendingWithdrawals { open }));
        }
    }
    if let Some(max) = caps.daily_max {
        let row = sqlx::query(
            "SELECT CAST(SUM(amount) AS CHAR) AS used FROM payments WHERE user_id = ? AND kind = ? \
             AND created_at >= ? AND state NOT IN ('failed', 'expired', 'cancelled', 'rejected')",
        )
        .bind(&p.user_id)
        .bind(p.kind.as_str())
        .bind(caps.day_start_ms)
        .fetch_one(&mut **tx)
        .await?;
        let used = summed(&row, "used")?;
        if used.saturating_add(p.amount) > max {
            return Ok(Some(CapRefusal::DailyTotal { used }));
        }
    }
    if let Some(since) = caps.deposits_settled_before_ms {
        let recent: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM payments WHERE user_id = ? AND kind = 'deposit' AND state = 'paid' \
             AND settled_at > ?",
        )
        .bind(&p.user_id)
        .bind(since)
        .fetch_one(&mut **tx)
        .await?;
        if recent > 0 {
            return Ok(Some(CapRefusal::DepositNotSettled));
        }
    }
    Ok(None)
}
