// The hub's SQL, written once and compiled per backend: `sqlite.rs` and `mysql.rs` include this
// file after defining `Db` (the sqlx database type), `NAME`, `MIGRATOR`, `FOR_UPDATE` and
// `BEGIN_WRITE`.
// Portable SQL only: `?` placeholders, no RETURNING, no backend-specific functions.

use sqlx::{Pool, Row};

use super::types::*;
use crate::domain::{ClientStatus, Role, TransferState, UserStatus};

type DbRow = <Db as sqlx::Database>::Row;

#[derive(Clone)]
pub struct Backend {
    /// Money and other writes. On SQLite one connection (one writer at a time by design).
    write: Pool<Db>,
    read: Pool<Db>,
    /// SQLite: group-commit batches go to this thread (`sqlite_writer.rs`). Always
    /// `None` on MySQL, whose batches run through sqlx like everything else.
    ledger_writer: Option<std::sync::Arc<super::ledger::sqlite_writer::SqliteWriter>>,
    /// MySQL: the committer's own connection, kept between batches. Taking one from the pool
    /// and giving it back cost two pings (sqlx tests on acquire and on release): 2 of a lone
    /// deposit's ~14 round trips (issue 22). Unused on SQLite.
    ledger_conn: std::sync::Arc<tokio::sync::Mutex<Option<sqlx::pool::PoolConnection<Db>>>>,
    /// Report marks this node knows are stored (`report_feed.rs`): the feed skips them, so at
    /// ordinary rates a player's later entries in an hour cost it no marks query.
    marks_seen:
        std::sync::Arc<std::sync::Mutex<std::collections::HashSet<super::report_feed::Mark>>>,
    /// Touches (`report_feed::Touch`) whose marks this node knows are stored: the feed builds
    /// no marks for them.
    touches_seen:
        std::sync::Arc<std::sync::Mutex<std::collections::HashSet<super::report_feed::Touch>>>,
    /// Users the report feed has met: their role and parent (neither ever changes).
    owners_seen: std::sync::Arc<
        std::sync::Mutex<std::collections::HashMap<String, super::report_agents::Owner>>,
    >,
    /// First deposits this node knows are stored: (client, user) → hour.
    first_deposits_seen:
        std::sync::Arc<std::sync::Mutex<std::collections::HashMap<(String, String), i64>>>,
    /// One feed transaction at a time on this node: the periodic job and a report's catch-up
    /// gathering from the same cursor at once would make one of them undo its transaction,
    /// and under steady load a catch-up could lose every retry (a report then failed with
    /// 503 during a busy hour).
    feed_turn: std::sync::Arc<tokio::sync::Mutex<()>>,
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}

macro_rules! client_columns {
    () => {
        "id, code, name, currency, currency_exponent, status, created_at"
    };
}
macro_rules! user_columns {
    () => {
        "id, client_id, login_scope, parent_id, path, depth, role, username, password_hash, status, created_at"
    };
}

/// A text column decoded into its type (`Role`, `JournalKind`, `TransferState`, ...): a text
/// no variant matches is a column decode error (`StoreError::Database`), never a panic.
fn decode_text<T>(row: &DbRow, column: &str) -> Result<T, sqlx::Error>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    let text: String = row.try_get(column)?;
    text.parse().map_err(|e: T::Err| decode_error(column, e))
}

fn decode_error(column: &str, e: impl std::fmt::Display) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: e.to_string().into(),
    }
}

fn client_from_row(row: &DbRow) -> Result<ClientRow, sqlx::Error> {
    let code: String = row.try_get("currency")?;
    let currency = crate::domain::Currency::parse(&code, row.try_get("currency_exponent")?)
        .map_err(|e| decode_error("currency", e))?;
    Ok(ClientRow {
        id: row.try_get("id")?,
        code: row.try_get("code")?,
        name: row.try_get("name")?,
        currency,
        status: decode_text(row, "status")?,
        created_at: row.try_get("created_at")?,
    })
}

fn user_from_row(row: &DbRow) -> Result<UserRow, sqlx::Error> {
    Ok(UserRow {
        id: row.try_get("id")?,
        client_id: row.try_get("client_id")?,
        login_scope: row.try_get("login_scope")?,
        parent_id: row.try_get("parent_id")?,
        path: row.try_get("path")?,
        depth: row.try_get("depth")?,
        role: decode_text(row, "role")?,
        username: row.try_get("username")?,
        password_hash: row.try_get("password_hash")?,
        status: decode_text(row, "status")?,
        created_at: row.try_get("created_at")?,
    })
}

async fn insert_account<'c, E>(executor: E, a: &NewAccount, now_ms: i64) -> Result<(), sqlx::Error>
where
    E: sqlx::Executor<'c, Database = Db>,
{
    sqlx::query(
        "INSERT INTO accounts (id, client_id, user_id, kind, currency, balance, version, allow_negative, created_at) \
         VALUES (?, ?, ?, ?, ?, 0, 0, ?, ?)",
    )
    .bind(&a.id)
    .bind(&a.client_id)
    .bind(&a.user_id)
    .bind(&a.kind)
    .bind(&a.currency)
    .bind(i64::from(a.allow_negative))
    .bind(now_ms)
    .execute(executor)
    .await?;
    Ok(())
}

impl Backend {
    pub fn name(&self) -> &'static str {
        NAME
    }

    pub async fn migrate(&self) -> StoreResult<()> {
        MIGRATOR.run(&self.write).await?;
        Ok(())
    }

    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    // ---- clients -------------------------------------------------------------------------

    pub async fn insert_client(&self, c: &ClientRow, accounts: &[NewAccount]) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO clients (id, code, name, currency, currency_exponent, status, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&c.id)
        .bind(&c.code)
        .bind(&c.name)
        .bind(&c.currency.code)
        .bind(i64::from(c.currency.exponent))
        .bind(c.status.as_str())
        .bind(c.created_at)
        .bind(c.created_at)
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Duplicate("client_code_taken"));
            }
            other => other?,
        };
        for a in accounts {
            insert_account(&mut *tx, a, c.created_at).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn client(&self, id: &str) -> StoreResult<Option<ClientRow>> {
        let sql = concat!("SELECT ", client_columns!(), " FROM clients WHERE id = ?");
        let row = sqlx::query(sql).bind(id).fetch_optional(&self.read).await?;
        Ok(row.as_ref().map(client_from_row).transpose()?)
    }

    pub async fn client_by_code(&self, code: &str) -> StoreResult<Option<ClientRow>> {
        let sql = concat!("SELECT ", client_columns!(), " FROM clients WHERE code = ?");
        let row = sqlx::query(sql)
            .bind(code)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.as_ref().map(client_from_row).transpose()?)
    }

    pub async fn list_clients(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<ClientRow>> {
        let sql = concat!(
            "SELECT ",
            client_columns!(),
            " FROM clients WHERE id > ? ORDER BY id LIMIT ?"
        );
        let rows = sqlx::query(sql)
            .bind(after.unwrap_or(""))
            .bind(limit)
            .fetch_all(&self.read)
            .await?;
        Ok(rows.iter().map(client_from_row).collect::<Result<_, _>>()?)
    }

    /// Changes name and/or status; false if no such client.
    pub async fn update_client(
        &self,
        id: &str,
        name: Option<&str>,
        status: Option<ClientStatus>,
        now_ms: i64,
    ) -> StoreResult<bool> {
        let exists = sqlx::query("SELECT id FROM clients WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.write)
            .await?;
        if exists.is_none() {
            return Ok(false);
        }
        sqlx::query("UPDATE clients SET name = COALESCE(?, name), status = COALESCE(?, status), updated_at = ? WHERE id = ?")
            .bind(name)
            .bind(status.map(ClientStatus::as_str))
            .bind(now_ms)
            .bind(id)
            .execute(&self.write)
            .await?;
        Ok(true)
    }

    // ---- users ---------------------------------------------------------------------------

    pub async fn insert_user(&self, u: &UserRow, wallet: Option<&NewAccount>) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        let sql = concat!(
            "INSERT INTO users (",
            user_columns!(),
            ", updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        );
        let inserted = sqlx::query(sql)
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
            .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Duplicate("username_taken"));
            }
            other => other?,
        };
        if let Some(a) = wallet {
            insert_account(&mut *tx, a, u.created_at).await?;
        }
        count_new_players(&mut tx, std::slice::from_ref(u)).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn user(&self, id: &str) -> StoreResult<Option<UserRow>> {
        let sql = concat!("SELECT ", user_columns!(), " FROM users WHERE id = ?");
        let row = sqlx::query(sql).bind(id).fetch_optional(&self.read).await?;
        Ok(row.as_ref().map(user_from_row).transpose()?)
    }

    pub async fn user_by_login(&self, scope: &str, username: &str) -> StoreResult<Option<UserRow>> {
        let sql = concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE login_scope = ? AND username = ?"
        );
        let row = sqlx::query(sql)
            .bind(scope)
            .bind(username)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.as_ref().map(user_from_row).transpose()?)
    }

    pub async fn children(
        &self,
        parent_id: &str,
        after: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<UserRow>> {
        let sql = concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE parent_id = ? AND id > ? ORDER BY id LIMIT ?"
        );
        let rows = sqlx::query(sql)
            .bind(parent_id)
            .bind(after.unwrap_or(""))
            .bind(limit)
            .fetch_all(&self.read)
            .await?;
        Ok(rows.iter().map(user_from_row).collect::<Result<_, _>>()?)
    }

    pub async fn users_by_ids(&self, ids: &[&str]) -> StoreResult<Vec<UserRow>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let marks = vec!["?"; ids.len()].join(", ");
        let sql = format!(
            concat!("SELECT ", user_columns!(), " FROM users WHERE id IN ({})"),
            marks
        );
        // Only `?` marks are interpolated; every id is bound.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in ids {
            query = query.bind(*id);
        }
        let rows = query.fetch_all(&self.read).await?;
        Ok(rows.iter().map(user_from_row).collect::<Result<_, _>>()?)
    }

    // ---- sessions ------------------------------------------------------------------------

    pub async fn insert_session(&self, s: &SessionRow, refresh_hash: &str) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        sqlx::query("INSERT INTO sessions (id, user_id, client_id, revoked, created_at, expires_at) VALUES (?, ?, ?, 0, ?, ?)")
            .bind(&s.id)
            .bind(&s.user_id)
            .bind(&s.client_id)
            .bind(s.created_at)
            .bind(s.expires_at)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO refresh_tokens (token_hash, session_id, used, created_at, expires_at) VALUES (?, ?, 0, ?, ?)")
            .bind(refresh_hash)
            .bind(&s.id)
            .bind(s.created_at)
            .bind(s.expires_at)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The expiry of a session that is not revoked.
    /// A live (unrevoked) session's user and expiry.
    pub async fn session_live_until(&self, session_id: &str) -> StoreResult<Option<(String, i64)>> {
        let row =
            sqlx::query("SELECT user_id, expires_at FROM sessions WHERE id = ? AND revoked = 0")
                .bind(session_id)
                .fetch_optional(&self.read)
                .await?;
        Ok(match row {
            Some(r) => Some((r.try_get("user_id")?, r.try_get("expires_at")?)),
            None => None,
        })
    }

    /// See `read_cache`: row 1 moves whenever a cached kind of row changes, row 2 whenever
    /// provider credentials change (one query for both).
    pub async fn cache_epoch(&self) -> StoreResult<(i64, i64)> {
        let rows = sqlx::query("SELECT id, epoch FROM cache_epoch WHERE id IN (1, 2)")
            .fetch_all(&self.read)
            .await?;
        let mut epochs = (0, 0);
        for row in rows {
            match row.try_get::<i64, _>("id")? {
                1 => epochs.0 = row.try_get("epoch")?,
                _ => epochs.1 = row.try_get("epoch")?,
            }
        }
        Ok(epochs)
    }

    pub async fn rotate_refresh(
        &self,
        old_hash: &str,
        new_hash: &str,
        now_ms: i64,
    ) -> StoreResult<RotateOutcome> {
        let mut tx = self.write.begin().await?;
        let row = sqlx::query(
            "SELECT t.session_id, t.used, t.expires_at, s.user_id, s.revoked, s.expires_at AS session_expires \
             FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id WHERE t.token_hash = ?",
        )
        .bind(old_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(RotateOutcome::Invalid);
        };
        let session_id: String = row.try_get("session_id")?;
        let user_id: String = row.try_get("user_id")?;
        let claimed =
            sqlx::query("UPDATE refresh_tokens SET used = 1 WHERE token_hash = ? AND used = 0")
                .bind(old_hash)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if claimed == 0 {
            // A rotated token came back: whoever holds it may be a thief. End the family.
            sqlx::query("UPDATE sessions SET revoked = 1 WHERE id = ?")
                .bind(&session_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(RotateOutcome::Reused);
        }
        let live = row.try_get::<i64, _>("revoked")? == 0
            && row.try_get::<i64, _>("session_expires")? > now_ms
            && row.try_get::<i64, _>("expires_at")? > now_ms;
        if !live {
            tx.rollback().await?;
            return Ok(RotateOutcome::Invalid);
        }
        let expires_at: i64 = row.try_get("session_expires")?;
        sqlx::query("INSERT INTO refresh_tokens (token_hash, session_id, used, created_at, expires_at) VALUES (?, ?, 0, ?, ?)")
            .bind(new_hash)
            .bind(&session_id)
            .bind(now_ms)
            .bind(expires_at)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(RotateOutcome::Rotated {
            session_id,
            user_id,
        })
    }

    pub async fn revoke_session(&self, session_id: &str) -> StoreResult<()> {
        sqlx::query("UPDATE sessions SET revoked = 1 WHERE id = ?")
            .bind(session_id)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    // ---- ledger --------------------------------------------------------------------------

    pub async fn account(&self, id: &str) -> StoreResult<Option<AccountRow>> {
        let row = sqlx::query("SELECT id, client_id, balance, version FROM accounts WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        Ok(match row {
            Some(r) => Some(AccountRow {
                id: r.try_get("id")?,
                client_id: r.try_get("client_id")?,
                balance: r.try_get("balance")?,
                version: r.try_get("version")?,
            }),
            None => None,
        })
    }

    // ---- ledger verification -------------------------------------------------------------

    pub async fn ledger_violation(&self) -> StoreResult<Option<String>> {
        // Each check selects only ids and text so both backends decode it the same way.
        let checks: [(&str, &str); 5] = [
            (
                "SELECT journal_id AS what, CAST(SUM(amount) AS CHAR) AS detail FROM postings \
                 GROUP BY journal_id HAVING SUM(amount) <> 0 LIMIT 1",
                "journal entry does not balance",
            ),
            (
                "SELECT j.id AS what, CAST(COUNT(p.id) AS CHAR) AS detail FROM journal j \
                 LEFT JOIN postings p ON p.journal_id = j.id GROUP BY j.id HAVING COUNT(p.id) < 2 LIMIT 1",
                "journal entry has fewer than two postings",
            ),
            (
                // No SUM over postings (SQLite's overflows past i64 even where every partial
                // balance fits): with the chain check below, the balance must equal the
                // `balance_after` of the posting at the account's version, and none lies beyond.
                "SELECT a.id AS what, CAST(a.balance AS CHAR) AS detail FROM accounts a \
                 LEFT JOIN postings p ON p.account_id = a.id AND p.account_version = a.version \
                 WHERE (a.version = 0 AND a.balance <> 0) \
                    OR (a.version <> 0 AND (p.balance_after IS NULL OR p.balance_after <> a.balance)) \
                    OR EXISTS (SELECT 1 FROM postings q WHERE q.account_id = a.id AND q.account_version > a.version) \
                 LIMIT 1",
                "account balance disagrees with its postings",
            ),
            (
                "SELECT what, detail FROM (SELECT CONCAT(account_id, ' v', CAST(account_version AS CHAR)) AS what, \
                   CAST(balance_after AS CHAR) AS detail, amount, balance_after, account_version, \
                   LAG(balance_after) OVER (PARTITION BY account_id ORDER BY account_version) AS prev_balance, \
                   LAG(account_version) OVER (PARTITION BY account_id ORDER BY account_version) AS prev_version \
                   FROM postings) chain \
                 WHERE balance_after - amount <> COALESCE(prev_balance, 0) \
                    OR account_version <> COALESCE(prev_version, 0) + 1 LIMIT 1",
                "posting balance_after does not chain",
            ),
            (
                "SELECT id AS what, CAST(balance AS CHAR) AS detail FROM accounts WHERE allow_negative = 0 AND balance < 0 LIMIT 1",
                "balance below zero",
            ),
        ];
        for (sql, meaning) in checks {
            if let Some(row) = sqlx::query(sql).fetch_optional(&self.read).await? {
                let what: String = row.try_get("what")?;
                let detail: String = row.try_get("detail")?;
                return Ok(Some(format!("{meaning}: {what} ({detail})")));
            }
        }
        self.client_sum_violation().await
    }

    /// Per client and currency, all accounts sum to zero. Summed here in i128, streaming:
    /// SQLite's `SUM()` fails with "integer overflow" once two balances near `i64::MAX` meet,
    /// which would stop the whole check.
    async fn client_sum_violation(&self) -> StoreResult<Option<String>> {
        use futures_util::TryStreamExt;
        let mut rows = sqlx::query(
            "SELECT client_id, currency, balance FROM accounts ORDER BY client_id, currency",
        )
        .fetch(&self.read);
        let mut current: Option<(String, String)> = None;
        let mut sum: i128 = 0;
        let report = |(client, currency): (String, String), sum: i128| {
            format!("client's accounts do not sum to zero: {client} {currency} ({sum})")
        };
        while let Some(row) = rows.try_next().await? {
            let key: (String, String) = (row.try_get("client_id")?, row.try_get("currency")?);
            let balance: i64 = row.try_get("balance")?;
            if current.as_ref() != Some(&key) {
                if let Some(done) = current.take()
                    && sum != 0
                {
                    return Ok(Some(report(done, sum)));
                }
                current = Some(key);
                sum = 0;
            }
            // At most 2^63 rows of at most 2^63 each: i128 cannot overflow.
            sum += i128::from(balance);
        }
        Ok(current.filter(|_| sum != 0).map(|done| report(done, sum)))
    }
}
