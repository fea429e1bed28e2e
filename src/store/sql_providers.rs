// Provider SQL (DESIGN section 5), included into `sqlite.rs` and `mysql.rs` after `sql.rs`.

// Every state change of a transfer is one transaction: a conditional UPDATE of the row (which
// only moves forward) together with the journal entry it implies, so a duplicate or late answer
// can never post twice and a crash can never leave the row and the money disagreeing.
use super::providers::{
    BeginOutcome, GameSessionRow, ProviderPlayer, RoundOutcome, RoundUpdate, TransferRow,
};

fn transfer_from_row(row: &DbRow) -> Result<TransferRow, sqlx::Error> {
    Ok(TransferRow {
        id: row.try_get("id")?,
        client_id: row.try_get("client_id")?,
        user_id: row.try_get("user_id")?,
        provider: row.try_get("provider")?,
        account: row.try_get("account")?,
        direction: decode_text(row, "direction")?,
        amount: row.try_get("amount")?,
        serial: row.try_get("serial")?,
        idempotency_key: row.try_get("idempotency_key")?,
        request_hash: row.try_get("request_hash")?,
        state: decode_text(row, "state")?,
        provider_balance: row.try_get("provider_balance")?,
        attempts: row.try_get("attempts")?,
        last_sent_at: row.try_get("last_sent_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        last_error: row.try_get("last_error")?,
    })
}

macro_rules! transfer_columns {
    () => {
        "id, client_id, user_id, provider, account, direction, amount, serial, idempotency_key, request_hash, \
         state, provider_balance, attempts, last_sent_at, created_at, updated_at, last_error"
    };
}

/// Posts `e` inside `tx` (which also changes `provider_transfers` or `game_rounds`), so that a
/// provider transition and its money commit together: `ledger_write::write` with a batch of one,
/// the same planner, rows and guards as every other money write.
async fn post_in_tx(
    tx: &mut sqlx::Transaction<'_, Db>,
    e: &NewEntry,
    audit_key: &[u8; 32],
) -> StoreResult<PostedEntry> {
    e.assert_balanced();
    let link = |prev: &str, seq: i64, row: &NewAudit| {
        super::audit_chain::link_hash(audit_key, prev, seq, row)
    };
    let mut results = super::ledger::write::write(&mut SqlxLedger(tx), &[e], &link).await?;
    match results.pop().expect("one result per entry")? {
        PostOutcome::Committed(posted) => Ok(posted),
        // The transfer or round row guards its keys, so a used key means that guard was
        // bypassed: refuse rather than answer for money this transition did not move.
        PostOutcome::Replayed(_) => Err(StoreError::IdempotencyConflict),
    }
}

impl Backend {
    /// Creates accounts that do not exist yet (provider house accounts of older clients).
    pub async fn ensure_accounts(&self, accounts: &[NewAccount]) -> StoreResult<()> {
        for a in accounts {
            let exists = sqlx::query("SELECT id FROM accounts WHERE id = ?")
                .bind(&a.id)
                .fetch_optional(&self.write)
                .await?;
            if exists.is_none() {
                match insert_account(&self.write, a, crate::domain::now_ms()).await {
                    Err(e) if is_unique_violation(&e) => {}
                    other => other?,
                }
            }
        }
        Ok(())
    }

    /// The outbox step: the transfer row (`pending`) and, for transfer-in, the hold, in ONE
    /// transaction. A reused idempotency key returns the existing row instead.
    pub async fn begin_transfer(
        &self,
        t: &TransferRow,
        hold: Option<&NewEntry>,
        audit_key: &[u8; 32],
    ) -> StoreResult<BeginOutcome> {
        let mut tx = self.write.begin().await?;
        let inserted = sqlx::query(concat!(
            "INSERT INTO provider_transfers (",
            transfer_columns!(),
            ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(&t.id)
        .bind(&t.client_id)
        .bind(&t.user_id)
        .bind(&t.provider)
        .bind(&t.account)
        .bind(t.direction.as_str())
        .bind(t.amount)
        .bind(&t.serial)
        .bind(&t.idempotency_key)
        .bind(&t.request_hash)
        .bind(t.state.as_str())
        .bind(t.provider_balance)
        .bind(t.attempts)
        .bind(t.last_sent_at)
        .bind(t.created_at)
        .bind(t.updated_at)
        .bind(&t.last_error)
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => {
                tx.rollback().await?;
                let existing = self
                    .transfer_by_key(&t.client_id, &t.idempotency_key)
                    .await?;
                return match existing {
                    Some(row) if row.request_hash == t.request_hash => {
                        Ok(BeginOutcome::Existing(Box::new(row)))
                    }
                    Some(_) => Err(StoreError::IdempotencyConflict),
                    None => Err(StoreError::Database(e)),
                };
            }
            other => other?,
        };
        // A transfer-out has no hold, yet its money would land in the wallet once the provider
        // paid it out: a closed wallet refuses it here, before anything is sent.
        let closed = format!("SELECT closed FROM accounts WHERE id = ?{FOR_UPDATE}");
        let wallet_closed: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(closed))
            .bind(crate::ledger::accounts::wallet_id(&t.user_id))
            .fetch_optional(&mut *tx)
            .await?;
        if wallet_closed.is_some_and(|c| c != 0) {
            tx.rollback().await?;
            return Err(StoreError::AccountClosed(
                crate::ledger::accounts::wallet_id(&t.user_id),
            ));
        }
        let posted = match hold {
            Some(entry) => Some(post_in_tx(&mut tx, entry, audit_key).await?),
            None => None,
        };
        tx.commit().await?;
        Ok(BeginOutcome::Created(posted))
    }

    /// Moves a transfer from one of `from` to `to` and posts `entry` with it, atomically.
    /// `None` when the row was no longer in a `from` state (someone else moved it first).
    #[allow(
        clippy::too_many_arguments,
        reason = "the transition's fields, then the chain key"
    )]
    pub async fn transition_transfer(
        &self,
        id: &str,
        from: &[TransferState],
        to: TransferState,
        provider_balance: Option<i64>,
        last_error: Option<&str>,
        entry: Option<&NewEntry>,
        audit_key: &[u8; 32],
    ) -> StoreResult<Option<Option<PostedEntry>>> {
        let mut tx = self.write.begin().await?;
        let marks = vec!["?"; from.len()].join(", ");
        let sql = format!(
            "UPDATE provider_transfers SET state = ?, provider_balance = COALESCE(?, provider_balance), \
             last_error = ?, updated_at = ? WHERE id = ? AND state IN ({marks})"
        );
        // Only `?` marks are interpolated.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(to.as_str())
            .bind(provider_balance)
            .bind(last_error)
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

    /// Records one more send of a non-terminal transfer (for the status-query waiting rule).
    pub async fn mark_transfer_sent(&self, id: &str, now_ms: i64) -> StoreResult<()> {
        sqlx::query("UPDATE provider_transfers SET attempts = attempts + 1, last_sent_at = ?, updated_at = ? WHERE id = ? AND state IN ('pending', 'unknown')")
            .bind(now_ms)
            .bind(now_ms)
            .bind(id)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    pub async fn transfer(&self, id: &str) -> StoreResult<Option<TransferRow>> {
        let sql = concat!(
            "SELECT ",
            transfer_columns!(),
            " FROM provider_transfers WHERE id = ?"
        );
        let row = sqlx::query(sql)
            .bind(id)
            .fetch_optional(&self.write)
            .await?;
        Ok(row.as_ref().map(transfer_from_row).transpose()?)
    }

    pub async fn transfer_by_key(
        &self,
        client_id: &str,
        key: &str,
    ) -> StoreResult<Option<TransferRow>> {
        let sql = concat!(
            "SELECT ",
            transfer_columns!(),
            " FROM provider_transfers WHERE client_id = ? AND idempotency_key = ?"
        );
        let row = sqlx::query(sql)
            .bind(client_id)
            .bind(key)
            .fetch_optional(&self.write)
            .await?;
        Ok(row.as_ref().map(transfer_from_row).transpose()?)
    }

    /// Non-terminal transfers last touched before `before_ms`, oldest first.
    pub async fn open_transfers(
        &self,
        before_ms: i64,
        limit: i64,
    ) -> StoreResult<Vec<TransferRow>> {
        let sql = concat!(
            "SELECT ",
            transfer_columns!(),
            " FROM provider_transfers WHERE state IN ('pending', 'unknown') AND updated_at < ? ORDER BY updated_at LIMIT ?"
        );
        let rows = sqlx::query(sql)
            .bind(before_ms)
            .bind(limit)
            .fetch_all(&self.write)
            .await?;
        Ok(rows
            .iter()
            .map(transfer_from_row)
            .collect::<Result<_, _>>()?)
    }

    pub async fn count_transfers_by_state(&self) -> StoreResult<Vec<(String, TransferState, i64)>> {
        let rows = sqlx::query("SELECT provider, state, COUNT(*) AS n FROM provider_transfers GROUP BY provider, state")
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("provider")?,
                    decode_text(r, "state")?,
                    r.try_get("n")?,
                ))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    // ---- players, rounds, sessions -------------------------------------------------------

    /// Remembers that `uid` at (provider, account) is this user; true if newly recorded.
    pub async fn record_provider_player(&self, p: &ProviderPlayer) -> StoreResult<bool> {
        let inserted = sqlx::query(
            "INSERT INTO provider_players (provider, account, uid, client_id, user_id, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&p.provider)
        .bind(&p.account)
        .bind(&p.uid)
        .bind(&p.client_id)
        .bind(&p.user_id)
        .bind(crate::domain::now_ms())
        .execute(&self.write)
        .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => Ok(false),
            other => other.map(|_| true).map_err(StoreError::from),
        }
    }

    pub async fn provider_player(
        &self,
        provider: &str,
        account: &str,
        uid: &str,
    ) -> StoreResult<Option<ProviderPlayer>> {
        let row = sqlx::query("SELECT provider, account, uid, client_id, user_id FROM provider_players WHERE provider = ? AND account = ? AND uid = ?")
            .bind(provider)
            .bind(account)
            .bind(uid)
            .fetch_optional(&self.read)
            .await?;
        row.map(|r| {
            Ok(ProviderPlayer {
                provider: r.try_get("provider")?,
                account: r.try_get("account")?,
                uid: r.try_get("uid")?,
                client_id: r.try_get("client_id")?,
                user_id: r.try_get("user_id")?,
            })
        })
        .transpose()
        .map_err(|e: sqlx::Error| e.into())
    }

    /// Applies one version of a round: only a higher version than the one applied moves money,
    /// by the difference of net results, in the same transaction as the round row. The row
    /// keeps the latest version's stake; `created_at` (first applied) never changes.
    pub async fn apply_round(
        &self,
        r: &RoundUpdate,
        entry_for: &(dyn Fn(i64) -> Option<NewEntry> + Sync),
        audit_key: &[u8; 32],
    ) -> StoreResult<RoundOutcome> {
        let now = crate::domain::now_ms();
        let mut tx = self.write.begin().await?;
        let existing = sqlx::query("SELECT version, net, stake, created_at, game FROM game_rounds WHERE client_id = ? AND provider = ? AND round_id = ?")
            .bind(&r.client_id)
            .bind(&r.provider)
            .bind(&r.round_id)
            .fetch_optional(&mut *tx)
            .await?;
        // The round's rollup row (issue 17): its own hour, whenever a later version comes.
        let mut rollup = (super::report_feed::hour_of(now), 1_i64, r.stake, r.net);
        // A later version names the game the round was first applied with (its rollup rows).
        let mut game = r.game.clone();
        let previous_net = match &existing {
            Some(row) => {
                let version: i64 = row.try_get("version")?;
                if version >= r.version {
                    tx.rollback().await?;
                    return Ok(RoundOutcome::Stale);
                }
                let net: i64 = row.try_get("net")?;
                let stake: i64 = row.try_get("stake")?;
                let created: i64 = row.try_get("created_at")?;
                game = row.try_get("game")?;
                rollup = (
                    super::report_feed::hour_of(created),
                    0,
                    r.stake - stake,
                    r.net - net,
                );
                let updated = sqlx::query(
                    "UPDATE game_rounds SET version = ?, status = ?, net = ?, stake = ?, updated_at = ? \
                     WHERE client_id = ? AND provider = ? AND round_id = ? AND version = ?",
                )
                .bind(r.version)
                .bind(&r.status)
                .bind(r.net)
                .bind(r.stake)
                .bind(now)
                .bind(&r.client_id)
                .bind(&r.provider)
                .bind(&r.round_id)
                .bind(version)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if updated == 0 {
                    tx.rollback().await?;
                    return Ok(RoundOutcome::Raced);
                }
                net
            }
            None => {
                let inserted = sqlx::query(
                    "INSERT INTO game_rounds (client_id, provider, round_id, game, user_id, version, status, net, stake, updated_at, created_at, fed) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
                )
                .bind(&r.client_id)
                .bind(&r.provider)
                .bind(&r.round_id)
                .bind(&r.game)
                .bind(&r.user_id)
                .bind(r.version)
                .bind(&r.status)
                .bind(r.net)
                .bind(r.stake)
                .bind(now)
                .bind(now)
                .execute(&mut *tx)
                .await;
                match inserted {
                    Err(e) if is_unique_violation(&e) => {
                        tx.rollback().await?;
                        return Ok(RoundOutcome::Raced);
                    }
                    other => other?,
                };
                0
            }
        };
        let delta = r
            .net
            .checked_sub(previous_net)
            .ok_or_else(|| StoreError::BalanceOverflow("game_results".into()))?;
        if let Some(entry) = entry_for(delta) {
            post_in_tx(&mut tx, &entry, audit_key).await?;
        }
        let (hour, rounds, stake, net) = rollup;
        sqlx::query(ROUNDS_ROLLUP_UPSERT)
            .bind(&r.client_id)
            .bind(hour)
            .bind(&r.provider)
            .bind(&game)
            .bind(&r.user_id)
            .bind(rounds)
            .bind(stake)
            .bind(net)
            .execute(&mut *tx)
            .await?;
        sqlx::query(ROUNDS_CLIENT_ROLLUP_UPSERT)
            .bind(&r.client_id)
            .bind(hour)
            .bind(&r.provider)
            .bind(&game)
            .bind(rounds)
            .bind(stake)
            .bind(net)
            .execute(&mut *tx)
            .await?;
        round_agent_rollup(
            &mut tx,
            &r.client_id,
            &r.user_id,
            hour,
            &r.provider,
            rounds,
            stake,
            net,
        )
        .await?;
        tx.commit().await?;
        Ok(RoundOutcome::Applied { delta })
    }

    pub async fn insert_game_session(&self, s: &GameSessionRow) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO game_sessions (id, client_id, user_id, provider, game_code, state, started_at, ended_at) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
        )
        .bind(&s.id)
        .bind(&s.client_id)
        .bind(&s.user_id)
        .bind(&s.provider)
        .bind(&s.game_code)
        .bind(&s.state)
        .bind(s.started_at)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    // ---- games per client ----------------------------------------------------------------

    pub async fn set_client_game(
        &self,
        client_id: &str,
        provider: &str,
        game: &str,
        enabled: bool,
    ) -> StoreResult<()> {
        let now = crate::domain::now_ms();
        for _ in 0..2 {
            let updated = sqlx::query("UPDATE client_games SET enabled = ?, updated_at = ? WHERE client_id = ? AND provider = ? AND game_code = ?")
                .bind(i64::from(enabled))
                .bind(now)
                .bind(client_id)
                .bind(provider)
                .bind(game)
                .execute(&self.write)
                .await?
                .rows_affected();
            if updated > 0 {
                return Ok(());
            }
            let inserted = sqlx::query("INSERT INTO client_games (client_id, provider, game_code, enabled, updated_at) VALUES (?, ?, ?, ?, ?)")
                .bind(client_id)
                .bind(provider)
                .bind(game)
                .bind(i64::from(enabled))
                .bind(now)
                .execute(&self.write)
                .await;
            match inserted {
                // Another writer inserted it first: update that row.
                Err(e) if is_unique_violation(&e) => continue,
                other => {
                    other?;
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Game codes (and `*` for the whole provider) this client has switched off.
    pub async fn disabled_games(
        &self,
        client_id: &str,
        provider: &str,
    ) -> StoreResult<Vec<String>> {
        let rows = sqlx::query("SELECT game_code FROM client_games WHERE client_id = ? AND provider = ? AND enabled = 0")
            .bind(client_id)
            .bind(provider)
            .fetch_all(&self.read)
            .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get("game_code"))
            .collect::<Result<_, _>>()?)
    }
}
