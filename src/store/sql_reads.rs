// Batched reads of the GraphQL read model (`reads.rs`), included into `sqlite.rs` and
// `mysql.rs` after `sql.rs` and `sql_providers.rs`.

/// `?, ?, ...`: one mark per id (only marks are interpolated; every id is bound).
fn id_marks(n: usize) -> String {
    vec!["?"; n].join(", ")
}

impl Backend {
    pub async fn clients_by_ids(&self, ids: &[&str]) -> StoreResult<Vec<ClientRow>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            concat!(
                "SELECT ",
                client_columns!(),
                " FROM clients WHERE id IN ({})"
            ),
            id_marks(ids.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in ids {
            query = query.bind(*id);
        }
        let rows = query.fetch_all(&self.read).await?;
        Ok(rows.iter().map(client_from_row).collect::<Result<_, _>>()?)
    }

    pub async fn accounts_by_ids(&self, ids: &[&str]) -> StoreResult<Vec<AccountRow>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT id, client_id, balance, version FROM accounts WHERE id IN ({})",
            id_marks(ids.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in ids {
            query = query.bind(*id);
        }
        let rows = query.fetch_all(&self.read).await?;
        rows.iter()
            .map(|r| {
                Ok(AccountRow {
                    id: r.try_get("id")?,
                    client_id: r.try_get("client_id")?,
                    balance: r.try_get("balance")?,
                    version: r.try_get("version")?,
                })
            })
            .collect()
    }

    pub async fn postings_of(
        &self,
        journal_ids: &[&str],
    ) -> StoreResult<Vec<(String, JournalLine)>> {
        if journal_ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT journal_id, account_id, amount, balance_after FROM postings \
             WHERE journal_id IN ({}) ORDER BY journal_id, account_id",
            id_marks(journal_ids.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in journal_ids {
            query = query.bind(*id);
        }
        let rows = query.fetch_all(&self.read).await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("journal_id")?,
                    JournalLine {
                        account_id: r.try_get("account_id")?,
                        amount: r.try_get("amount")?,
                        balance_after: r.try_get("balance_after")?,
                    },
                ))
            })
            .collect()
    }

    pub async fn user_transfers(
        &self,
        user_id: &str,
        before_id: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<TransferRow>> {
        let sql = concat!(
            "SELECT ",
            transfer_columns!(),
            " FROM provider_transfers WHERE user_id = ? AND (? IS NULL OR id < ?) \
             ORDER BY id DESC LIMIT ?"
        );
        let rows = sqlx::query(sql)
            .bind(user_id)
            .bind(before_id)
            .bind(before_id)
            .bind(limit)
            .fetch_all(&self.read)
            .await?;
        Ok(rows
            .iter()
            .map(transfer_from_row)
            .collect::<Result<_, _>>()?)
    }
}
