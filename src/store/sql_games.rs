// Game service SQL (issue 21): provider rows, the games catalogue, game sessions. Included into
// `sqlite.rs` and `mysql.rs` after `sql.rs`.

use super::games::{
    CatalogueChange, GameQuery, GameRow, GameSessionInfo, ListedGame, ProviderPatch, ProviderRow,
};

fn provider_from_row(row: &DbRow) -> Result<ProviderRow, sqlx::Error> {
    Ok(ProviderRow {
        code: row.try_get("code")?,
        protocol: row.try_get("protocol")?,
        name: row.try_get("name")?,
        base_url: row.try_get("base_url")?,
        status: row.try_get("status")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn game_from_row(row: &DbRow) -> Result<GameRow, sqlx::Error> {
    Ok(GameRow {
        provider: row.try_get("provider")?,
        code: row.try_get("code")?,
        name: row.try_get("name")?,
        game_type: row.try_get("game_type")?,
        status: row.try_get("status")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn session_from_row(row: &DbRow) -> Result<GameSessionInfo, sqlx::Error> {
    Ok(GameSessionInfo {
        id: row.try_get("id")?,
        client_id: row.try_get("client_id")?,
        user_id: row.try_get("user_id")?,
        provider: row.try_get("provider")?,
        game_code: row.try_get("game_code")?,
        status: row.try_get("state")?,
        started_at: row.try_get("started_at")?,
        ended_at: row.try_get("ended_at")?,
        ended_by: row.try_get("ended_by")?,
    })
}

macro_rules! session_columns {
    () => {
        "id, client_id, user_id, provider, game_code, state, started_at, ended_at, ended_by"
    };
}

macro_rules! game_columns {
    () => {
        "g.provider, g.code, g.name, g.game_type, g.status, g.updated_at"
    };
}

impl Backend {
    pub async fn provider_rows(&self) -> StoreResult<Vec<ProviderRow>> {
        let rows = sqlx::query(
            "SELECT code, protocol, name, base_url, status, created_at, updated_at FROM providers ORDER BY code",
        )
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .iter()
            .map(provider_from_row)
            .collect::<Result<_, _>>()?)
    }

    pub async fn update_provider(
        &self,
        code: &str,
        patch: &ProviderPatch,
        now_ms: i64,
    ) -> StoreResult<bool> {
        // One statement whatever the patch names: a NULL flag keeps the column.
        let (set_url, url) = match &patch.base_url {
            Some(url) => (1_i64, url.clone()),
            None => (0, None),
        };
        let done = sqlx::query(
            "UPDATE providers SET name = COALESCE(?, name), base_url = CASE WHEN ? = 1 THEN ? ELSE base_url END, status = COALESCE(?, status), updated_at = ? WHERE code = ?",
        )
        .bind(&patch.name)
        .bind(set_url)
        .bind(url)
        .bind(&patch.status)
        .bind(now_ms)
        .bind(code)
        .execute(&self.write)
        .await?;
        if done.rows_affected() > 0 {
            return Ok(true);
        }
        // MySQL counts changed rows only: an unchanged row is not a missing one.
        let exists: Option<String> =
            sqlx::query_scalar("SELECT code FROM providers WHERE code = ?")
                .bind(code)
                .fetch_optional(&self.write)
                .await?;
        Ok(exists.is_some())
    }

    pub async fn replace_games(
        &self,
        provider: &str,
        listed: &[ListedGame],
        now_ms: i64,
    ) -> StoreResult<CatalogueChange> {
        let stored: std::collections::HashMap<String, GameRow> = self
            .provider_games(provider)
            .await?
            .into_iter()
            .map(|g| (g.code.clone(), g))
            .collect();
        let mut change = CatalogueChange::default();
        let mut seen = std::collections::HashSet::new();
        for game in listed {
            if !seen.insert(game.code.as_str()) {
                continue;
            }
            match stored.get(&game.code) {
                Some(old)
                    if old.name == game.name
                        && old.game_type == game.game_type
                        && old.status == "active" =>
                {
                    change.unchanged += 1;
                }
                Some(_) => {
                    sqlx::query("UPDATE games SET name = ?, game_type = ?, status = 'active', updated_at = ? WHERE provider = ? AND code = ?")
                        .bind(&game.name)
                        .bind(&game.game_type)
                        .bind(now_ms)
                        .bind(provider)
                        .bind(&game.code)
                        .execute(&self.write)
                        .await?;
                    change.updated += 1;
                }
                None => {
                    let inserted = sqlx::query("INSERT INTO games (provider, code, name, game_type, status, created_at, updated_at) VALUES (?, ?, ?, ?, 'active', ?, ?)")
                        .bind(provider)
                        .bind(&game.code)
                        .bind(&game.name)
                        .bind(&game.game_type)
                        .bind(now_ms)
                        .bind(now_ms)
                        .execute(&self.write)
                        .await;
                    match inserted {
                        // Another node's refresh stored it first: the same list, the same row.
                        Err(e) if is_unique_violation(&e) => change.unchanged += 1,
                        other => {
                            other?;
                            change.added += 1;
                        }
                    }
                }
            }
        }
        if !listed.is_empty() {
            for old in stored.values() {
                if old.status == "active" && !seen.contains(old.code.as_str()) {
                    sqlx::query("UPDATE games SET status = 'removed', updated_at = ? WHERE provider = ? AND code = ? AND status = 'active'")
                        .bind(now_ms)
                        .bind(provider)
                        .bind(&old.code)
                        .execute(&self.write)
                        .await?;
                    change.removed += 1;
                }
            }
        }
        Ok(change)
    }

    pub async fn provider_games(&self, provider: &str) -> StoreResult<Vec<GameRow>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            game_columns!(),
            " FROM games g WHERE g.provider = ? ORDER BY g.code"
        ))
        .bind(provider)
        .fetch_all(&self.read)
        .await?;
        Ok(rows.iter().map(game_from_row).collect::<Result<_, _>>()?)
    }

    pub async fn list_games(&self, q: &GameQuery) -> StoreResult<Vec<GameRow>> {
        let marks = vec!["?"; q.providers.len()].join(", ");
        let mut sql = format!(
            "SELECT {} FROM games g WHERE g.status = 'active' AND g.provider IN ({marks})",
            game_columns!()
        );
        if q.client_id.is_some() {
            // A game switched off by the client, or its whole provider ('*').
            sql.push_str(
                " AND NOT EXISTS (SELECT 1 FROM client_games c WHERE c.client_id = ? AND c.provider = g.provider AND c.game_code IN (g.code, '*') AND c.enabled = 0)",
            );
        }
        if q.game_type.is_some() {
            sql.push_str(" AND g.game_type = ?");
        }
        if q.after.is_some() {
            sql.push_str(" AND (g.provider > ? OR (g.provider = ? AND g.code > ?))");
        }
        sql.push_str(" ORDER BY g.provider, g.code LIMIT ?");
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for p in &q.providers {
            query = query.bind(p);
        }
        if let Some(client) = &q.client_id {
            query = query.bind(client);
        }
        if let Some(t) = &q.game_type {
            query = query.bind(t);
        }
        if let Some((provider, code)) = &q.after {
            query = query.bind(provider).bind(provider).bind(code);
        }
        let rows = query.bind(q.limit).fetch_all(&self.read).await?;
        Ok(rows.iter().map(game_from_row).collect::<Result<_, _>>()?)
    }

    pub async fn game_session(&self, id: &str) -> StoreResult<Option<GameSessionInfo>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            session_columns!(),
            " FROM game_sessions WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.write)
        .await?;
        Ok(row.as_ref().map(session_from_row).transpose()?)
    }

    pub async fn user_game_sessions(
        &self,
        user_id: &str,
        status: Option<&str>,
        before_id: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<GameSessionInfo>> {
        let mut sql = concat!(
            "SELECT ",
            session_columns!(),
            " FROM game_sessions WHERE user_id = ?"
        )
        .to_owned();
        if status.is_some() {
            sql.push_str(" AND state = ?");
        }
        if before_id.is_some() {
            sql.push_str(" AND id < ?");
        }
        sql.push_str(" ORDER BY id DESC LIMIT ?");
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(user_id);
        if let Some(s) = status {
            query = query.bind(s);
        }
        if let Some(b) = before_id {
            query = query.bind(b);
        }
        let rows = query.bind(limit).fetch_all(&self.read).await?;
        Ok(rows
            .iter()
            .map(session_from_row)
            .collect::<Result<_, _>>()?)
    }

    pub async fn end_game_session(&self, id: &str, by: &str, now_ms: i64) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE game_sessions SET state = 'ended', ended_at = ?, ended_by = ? WHERE id = ? AND state = 'open'",
        )
        .bind(now_ms)
        .bind(by)
        .bind(id)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn end_player_sessions(
        &self,
        client_id: &str,
        user_id: &str,
        provider: &str,
        by: &str,
        now_ms: i64,
    ) -> StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE game_sessions SET state = 'ended', ended_at = ?, ended_by = ? WHERE client_id = ? AND user_id = ? AND provider = ? AND state = 'open'",
        )
        .bind(now_ms)
        .bind(by)
        .bind(client_id)
        .bind(user_id)
        .bind(provider)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected())
    }

    pub async fn open_sessions_at(&self, user_id: &str, provider: &str) -> StoreResult<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM game_sessions WHERE user_id = ? AND provider = ? AND state = 'open'",
        )
        .bind(user_id)
        .bind(provider)
        .fetch_one(&self.write)
        .await?)
    }
}
