// Issue 21 SQL (agent rates, commission statuses, job leases, game sessions, revenue
// collections), written once and `include!`d into both backends (needs `FOR_UPDATE`,
// `BEGIN_WRITE`).

use super::commission::{CollectionFix, CollectionRow};

macro_rules! collection_columns {
    () => {
        "id, client_id, settlement_id, direction, amount, memo, idempotency_key, request_hash, journal_id, created_by, created_at"
    };
}

fn collection_from_row(row: &DbRow) -> Result<CollectionRow, sqlx::Error> {
    Ok(CollectionRow {
        id: row.try_get("id")?,
        client_id: row.try_get("client_id")?,
        settlement_id: row.try_get("settlement_id")?,
        direction: row.try_get("direction")?,
        amount: row.try_get("amount")?,
        memo: row.try_get("memo")?,
        idempotency_key: row.try_get("idempotency_key")?,
        request_hash: row.try_get("request_hash")?,
        journal_id: row.try_get("journal_id")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
    })
}

impl Backend {
    pub async fn agent_rates(&self, client_id: &str) -> StoreResult<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT user_id, rate FROM agent_commission_rates WHERE client_id = ? ORDER BY user_id",
        )
        .bind(client_id)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("user_id")?, r.try_get("rate")?)))
            .collect()
    }

    pub async fn put_agent_rate(
        &self,
        user_id: &str,
        client_id: &str,
        rate: &str,
        by: &str,
        now_ms: i64,
    ) -> StoreResult<()> {
        let mut tx = self.write.begin_with(BEGIN_WRITE).await?;
        sqlx::query("DELETE FROM agent_commission_rates WHERE user_id = ?")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO agent_commission_rates (user_id, client_id, rate, updated_by, updated_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(user_id)
        .bind(client_id)
        .bind(rate)
        .bind(by)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn commission_carry(&self, client_id: &str, agent_id: &str) -> StoreResult<i64> {
        let v: Option<i64> = sqlx::query_scalar(
            "SELECT amount FROM commission_carry WHERE client_id = ? AND agent_id = ?",
        )
        .bind(client_id)
        .bind(agent_id)
        .fetch_optional(&self.read)
        .await?;
        Ok(v.unwrap_or(0).min(0))
    }

    pub async fn commission_carries(&self, client_id: &str) -> StoreResult<Vec<(String, i64)>> {
        let rows = sqlx::query("SELECT agent_id, amount FROM commission_carry WHERE client_id = ?")
            .bind(client_id)
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("agent_id")?, r.try_get("amount")?)))
            .collect()
    }

    pub async fn transition_commission(
        &self,
        settlement_id: &str,
        agent_id: &str,
        from: &[&str],
        to: &str,
        journal_id: Option<&str>,
    ) -> StoreResult<bool> {
        if from.is_empty() {
            return Ok(false);
        }
        let sql = format!(
            "UPDATE commissions SET status = ?, journal_id = COALESCE(?, journal_id) \
             WHERE settlement_id = ? AND agent_id = ? AND status IN ({})",
            placeholders(from.len())
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(to)
            .bind(journal_id)
            .bind(settlement_id)
            .bind(agent_id);
        for f in from {
            q = q.bind(*f);
        }
        Ok(q.execute(&self.write).await?.rows_affected() == 1)
    }

    pub async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> StoreResult<bool> {
        let updated = sqlx::query(
            "UPDATE job_leases SET holder = ?, expires_at = ? \
             WHERE name = ? AND (expires_at < ? OR holder = ?)",
        )
        .bind(holder)
        .bind(now_ms.saturating_add(ttl_ms))
        .bind(name)
        .bind(now_ms)
        .bind(holder)
        .execute(&self.write)
        .await?
        .rows_affected();
        Ok(updated == 1)
    }

    pub async fn clients_with_settings(&self) -> StoreResult<Vec<(String, Option<String>)>> {
        let rows = sqlx::query(
            "SELECT c.id AS id, s.settings AS settings FROM clients c \
             LEFT JOIN client_settings s ON s.client_id = c.id \
             WHERE c.status = 'active' ORDER BY c.id",
        )
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("settings")?)))
            .collect()
    }

    pub async fn fix_collection(
        &self,
        c: &CollectionRow,
        share: i64,
    ) -> StoreResult<CollectionFix> {
        let mut tx = self.write.begin_with(BEGIN_WRITE).await?;
        let lock = format!("SELECT id FROM clients WHERE id = ?{FOR_UPDATE}");
        sqlx::query(sqlx::AssertSqlSafe(lock))
            .bind(&c.client_id)
            .fetch_optional(&mut *tx)
            .await?;
        let by_key = sqlx::query(concat!(
            "SELECT ",
            collection_columns!(),
            " FROM revenue_collections WHERE client_id = ? AND idempotency_key = ?"
        ))
        .bind(&c.client_id)
        .bind(&c.idempotency_key)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = by_key {
            tx.rollback().await?;
            let first = collection_from_row(&row)?;
            return Ok(if first.request_hash == c.request_hash {
                CollectionFix::Fixed(Box::new(first), false)
            } else {
                CollectionFix::KeyConflict
            });
        }
        let known: Option<String> =
            sqlx::query_scalar("SELECT id FROM settlements WHERE client_id = ? AND id = ?")
                .bind(&c.client_id)
                .bind(&c.settlement_id)
                .fetch_optional(&mut *tx)
                .await?;
        if known.is_none() {
            tx.rollback().await?;
            return Ok(CollectionFix::NoSettlement);
        }
        let rows = sqlx::query(
            "SELECT direction, amount FROM revenue_collections WHERE client_id = ? AND settlement_id = ?",
        )
        .bind(&c.client_id)
        .bind(&c.settlement_id)
        .fetch_all(&mut *tx)
        .await?;
        let mut collected: i64 = 0;
        for r in &rows {
            let direction: String = r.try_get("direction")?;
            let amount: i64 = r.try_get("amount")?;
            collected = if direction == "collect" {
                collected.saturating_add(amount)
            } else {
                collected.saturating_sub(amount)
            };
        }
        let room = if c.direction == "collect" {
            share.saturating_sub(collected)
        } else {
            collected
        };
        if c.amount > room {
            tx.rollback().await?;
            return Ok(CollectionFix::Exceeds(room.max(0)));
        }
        sqlx::query(concat!(
            "INSERT INTO revenue_collections (",
            collection_columns!(),
            ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(&c.id)
        .bind(&c.client_id)
        .bind(&c.settlement_id)
        .bind(&c.direction)
        .bind(c.amount)
        .bind(&c.memo)
        .bind(&c.idempotency_key)
        .bind(&c.request_hash)
        .bind(&c.journal_id)
        .bind(&c.created_by)
        .bind(c.created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(CollectionFix::Fixed(Box::new(c.clone()), true))
    }

    pub async fn record_collection_posted(&self, id: &str, journal_id: &str) -> StoreResult<()> {
        sqlx::query("UPDATE revenue_collections SET journal_id = ? WHERE id = ?")
            .bind(journal_id)
            .bind(id)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    pub async fn collections(
        &self,
        client_id: &str,
        settlement_id: Option<&str>,
    ) -> StoreResult<Vec<CollectionRow>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            collection_columns!(),
            " FROM revenue_collections WHERE client_id = ? AND (? IS NULL OR settlement_id = ?) ORDER BY id"
        ))
        .bind(client_id)
        .bind(settlement_id)
        .bind(settlement_id)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .iter()
            .map(collection_from_row)
            .collect::<Result<_, _>>()?)
    }
}
