// Settlements SQL, written once and `include!`d into both backends (needs `FOR_UPDATE`,
// `BEGIN_WRITE`).

use super::settlements::{
    CommissionRow, FixOutcome, PlayerTurnover, RevenueShareRow, Settlement, SettlementRow,
    SubjectNgr,
};

macro_rules! settlement_columns {
    () => {
        "id, client_id, idempotency_key, period_start, period_end, currency, ngr, state, created_by, created_at, posted_at, origin"
    };
}

fn settlement_from_row(row: &DbRow) -> Result<SettlementRow, sqlx::Error> {
    Ok(SettlementRow {
        id: row.try_get("id")?,
        client_id: row.try_get("client_id")?,
        idempotency_key: row.try_get("idempotency_key")?,
        period_start: row.try_get("period_start")?,
        period_end: row.try_get("period_end")?,
        currency: row.try_get("currency")?,
        ngr: row.try_get("ngr")?,
        state: row.try_get("state")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        posted_at: row.try_get("posted_at")?,
        origin: row.try_get("origin")?,
    })
}

macro_rules! commission_columns {
    () => {
        "settlement_id, agent_id, client_id, players, ngr, rate, amount, journal_id, status, basis, earned, carried_in, carry_out"
    };
}

fn commission_from_row(row: &DbRow) -> Result<CommissionRow, sqlx::Error> {
    Ok(CommissionRow {
        settlement_id: row.try_get("settlement_id")?,
        agent_id: row.try_get("agent_id")?,
        client_id: row.try_get("client_id")?,
        players: row.try_get("players")?,
        ngr: row.try_get("ngr")?,
        rate: row.try_get("rate")?,
        amount: row.try_get("amount")?,
        journal_id: row.try_get("journal_id")?,
        status: row.try_get("status")?,
        basis: row.try_get("basis")?,
        earned: row.try_get("earned")?,
        carried_in: row.try_get("carried_in")?,
        carry_out: row.try_get("carry_out")?,
    })
}

/// `CAST(SUM(..) AS CHAR)` read back: both backends agree on text.
fn sum_text(row: &DbRow, column: &str) -> StoreResult<i64> {
    let text: Option<String> = row.try_get(column)?;
    let text = text.unwrap_or_else(|| "0".into());
    text.trim()
        .parse()
        .map_err(|_| StoreError::BalanceOverflow(format!("sum {text}")))
}

impl Backend {
    pub async fn ngr_by_subject(
        &self,
        client_id: &str,
        result_accounts: &[String],
        start_id: &str,
        end_id: &str,
    ) -> StoreResult<Vec<SubjectNgr>> {
        if result_accounts.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT j.subject_account_id AS subject, CAST(SUM(p.amount) AS CHAR) AS ngr \
             FROM journal j JOIN postings p ON p.journal_id = j.id \
             WHERE j.client_id = ? AND j.id >= ? AND j.id < ? AND j.kind = 'game_result' \
             AND p.account_id IN ({}) \
             GROUP BY j.subject_account_id ORDER BY j.subject_account_id",
            placeholders(result_accounts.len())
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(client_id)
            .bind(start_id)
            .bind(end_id);
        for account in result_accounts {
            q = q.bind(account);
        }
        q.fetch_all(&self.read)
            .await?
            .iter()
            .map(|row| {
                Ok(SubjectNgr {
                    subject_account_id: row.try_get("subject")?,
                    ngr: sum_text(row, "ngr")?,
                })
            })
            .collect()
    }

    pub async fn turnover_by_player(
        &self,
        client_id: &str,
        start_ms: i64,
        end_ms: i64,
        only: Option<(&str, &str)>,
    ) -> StoreResult<Vec<PlayerTurnover>> {
        let filter = if only.is_some() {
            " AND user_id = ? AND provider = ?"
        } else {
            ""
        };
        let sql = format!(
            "SELECT user_id, CAST(SUM(stake) AS CHAR) AS turnover FROM game_rounds \
             WHERE client_id = ? AND created_at >= ? AND created_at < ?{filter} \
             GROUP BY user_id ORDER BY user_id"
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(client_id)
            .bind(start_ms)
            .bind(end_ms);
        if let Some((user_id, provider)) = only {
            q = q.bind(user_id).bind(provider);
        }
        q.fetch_all(&self.read)
            .await?
            .iter()
            .map(|row| {
                Ok(PlayerTurnover {
                    user_id: row.try_get("user_id")?,
                    turnover: sum_text(row, "turnover")?,
                })
            })
            .collect()
    }

    pub async fn fix_settlement(
        &self,
        s: &Settlement,
        carry_over: bool,
    ) -> StoreResult<FixOutcome> {
        let h = &s.header;
        let mut tx = self.write.begin_with(BEGIN_WRITE).await?;
        // Serializes settlements of one client across nodes (SQLite: the write lock already).
        let lock = format!("SELECT id FROM clients WHERE id = ?{FOR_UPDATE}");
        sqlx::query(sqlx::AssertSqlSafe(lock))
            .bind(&h.client_id)
            .fetch_optional(&mut *tx)
            .await?;
        let by_key = sqlx::query(
            "SELECT id, period_start, period_end FROM settlements WHERE client_id = ? AND idempotency_key = ?",
        )
        .bind(&h.client_id)
        .bind(&h.idempotency_key)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = by_key {
            tx.rollback().await?;
            let (start, end): (i64, i64) =
                (row.try_get("period_start")?, row.try_get("period_end")?);
            if (start, end) != (h.period_start, h.period_end) {
                return Err(StoreError::IdempotencyConflict);
            }
            return Ok(FixOutcome::Replayed(row.try_get("id")?));
        }
        let overlap = sqlx::query(
            "SELECT id, period_start, period_end FROM settlements \
             WHERE client_id = ? AND period_start < ? AND period_end > ? ORDER BY period_start LIMIT 1",
        )
        .bind(&h.client_id)
        .bind(h.period_end)
        .bind(h.period_start)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = overlap {
            tx.rollback().await?;
            let (start, end): (i64, i64) =
                (row.try_get("period_start")?, row.try_get("period_end")?);
            let id: String = row.try_get("id")?;
            return Ok(if (start, end) == (h.period_start, h.period_end) {
                FixOutcome::Existing(id)
            } else {
                FixOutcome::Overlaps(id)
            });
        }
        if carry_over {
            for c in &s.commissions {
                let stored: Option<i64> = sqlx::query_scalar(
                    "SELECT amount FROM commission_carry WHERE client_id = ? AND agent_id = ?",
                )
                .bind(&c.client_id)
                .bind(&c.agent_id)
                .fetch_optional(&mut *tx)
                .await?;
                if stored.unwrap_or(0).min(0) != c.carried_in {
                    tx.rollback().await?;
                    return Ok(FixOutcome::CarryMoved);
                }
            }
        }
        sqlx::query(concat!(
            "INSERT INTO settlements (",
            settlement_columns!(),
            ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(&h.id)
        .bind(&h.client_id)
        .bind(&h.idempotency_key)
        .bind(h.period_start)
        .bind(h.period_end)
        .bind(&h.currency)
        .bind(h.ngr)
        .bind(&h.state)
        .bind(&h.created_by)
        .bind(h.created_at)
        .bind(h.posted_at)
        .bind(&h.origin)
        .execute(&mut *tx)
        .await?;
        for c in &s.commissions {
            sqlx::query(concat!(
                "INSERT INTO commissions (",
                commission_columns!(),
                ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ))
            .bind(&c.settlement_id)
            .bind(&c.agent_id)
            .bind(&c.client_id)
            .bind(c.players)
            .bind(c.ngr)
            .bind(&c.rate)
            .bind(c.amount)
            .bind(&c.journal_id)
            .bind(&c.status)
            .bind(&c.basis)
            .bind(c.earned)
            .bind(c.carried_in)
            .bind(c.carry_out)
            .execute(&mut *tx)
            .await?;
            if carry_over {
                sqlx::query("DELETE FROM commission_carry WHERE client_id = ? AND agent_id = ?")
                    .bind(&c.client_id)
                    .bind(&c.agent_id)
                    .execute(&mut *tx)
                    .await?;
                if c.carry_out < 0 {
                    sqlx::query(
                        "INSERT INTO commission_carry (client_id, agent_id, amount, updated_at) VALUES (?, ?, ?, ?)",
                    )
                    .bind(&c.client_id)
                    .bind(&c.agent_id)
                    .bind(c.carry_out)
                    .bind(h.created_at)
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        let r = &s.revenue_share;
        sqlx::query(
            "INSERT INTO revenue_shares (settlement_id, client_id, base, rate, amount, journal_id) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&r.settlement_id)
        .bind(&r.client_id)
        .bind(r.base)
        .bind(&r.rate)
        .bind(r.amount)
        .bind(&r.journal_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(FixOutcome::Created)
    }

    pub async fn settlement(&self, client_id: &str, id: &str) -> StoreResult<Option<Settlement>> {
        let header = sqlx::query(concat!(
            "SELECT ",
            settlement_columns!(),
            " FROM settlements WHERE client_id = ? AND id = ?"
        ))
        .bind(client_id)
        .bind(id)
        .fetch_optional(&self.read)
        .await?;
        let Some(header) = header else {
            return Ok(None);
        };
        let header = settlement_from_row(&header)?;
        let commissions = sqlx::query(concat!(
            "SELECT ",
            commission_columns!(),
            " FROM commissions WHERE settlement_id = ? ORDER BY agent_id"
        ))
        .bind(id)
        .fetch_all(&self.read)
        .await?
        .iter()
        .map(commission_from_row)
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
        let row = sqlx::query(
            "SELECT settlement_id, client_id, base, rate, amount, journal_id FROM revenue_shares WHERE settlement_id = ?",
        )
        .bind(id)
        .fetch_one(&self.read)
        .await?;
        let revenue_share = RevenueShareRow {
            settlement_id: row.try_get("settlement_id")?,
            client_id: row.try_get("client_id")?,
            base: row.try_get("base")?,
            rate: row.try_get("rate")?,
            amount: row.try_get("amount")?,
            journal_id: row.try_get("journal_id")?,
        };
        Ok(Some(Settlement {
            header,
            commissions,
            revenue_share,
        }))
    }

    pub async fn commissions_earned(
        &self,
        client_id: &str,
        from: i64,
        to: i64,
    ) -> StoreResult<std::collections::HashMap<String, i64>> {
        let rows = sqlx::query(
            "SELECT c.agent_id, CAST(SUM(c.amount) AS CHAR) AS amount FROM settlements s \
             JOIN commissions c ON c.settlement_id = s.id \
             WHERE s.client_id = ? AND s.period_start >= ? AND s.period_start < ? \
             GROUP BY c.agent_id",
        )
        .bind(client_id)
        .bind(from)
        .bind(to)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("agent_id")?, text_i64(r, "amount")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    pub async fn settlements(
        &self,
        client_id: &str,
        before_start: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<SettlementRow>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            settlement_columns!(),
            " FROM settlements WHERE client_id = ? AND period_start < ? ORDER BY period_start DESC LIMIT ?"
        ))
        .bind(client_id)
        .bind(before_start.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .iter()
            .map(settlement_from_row)
            .collect::<Result<_, _>>()?)
    }

    pub async fn pending_settlements(&self) -> StoreResult<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT client_id, id FROM settlements WHERE state = 'pending' ORDER BY id",
        )
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("client_id")?, r.try_get("id")?)))
            .collect()
    }

    pub async fn record_commission_posted(
        &self,
        settlement_id: &str,
        agent_id: &str,
        journal_id: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE commissions SET journal_id = ?, status = 'paid' WHERE settlement_id = ? AND agent_id = ? AND status IN ('approved', 'paid')",
        )
        .bind(journal_id)
        .bind(settlement_id)
        .bind(agent_id)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// The last step: the revenue share's entry, and the settlement done.
    pub async fn record_revenue_share_posted(
        &self,
        settlement_id: &str,
        journal_id: Option<&str>,
        now_ms: i64,
    ) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        sqlx::query("UPDATE revenue_shares SET journal_id = ? WHERE settlement_id = ?")
            .bind(journal_id)
            .bind(settlement_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE settlements SET state = 'posted', posted_at = ? WHERE id = ? AND state = 'pending'")
            .bind(now_ms)
            .bind(settlement_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
