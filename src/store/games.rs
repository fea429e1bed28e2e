//! The game service's storage (issue 21): provider rows (which providers exist, their protocol
//! and status), the games catalogue filled from the providers' game lists, and game sessions
//! as players see them (listing, ending). SQL in `sql_games.rs`, compiled per backend.

use super::{Backend, Store, StoreResult};

/// One provider as registered (`providers` table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderRow {
    pub code: String,
    /// The compiled adapter module that speaks its wire protocol (`providers::build_adapter`).
    pub protocol: String,
    pub name: String,
    /// Default API address for configured accounts that give none.
    pub base_url: Option<String>,
    /// `active` or `disabled` (no new money in, no launch; money out always allowed).
    pub status: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What a `PATCH` changes; `None` leaves the column as it is.
#[derive(Debug, Clone, Default)]
pub struct ProviderPatch {
    pub name: Option<String>,
    /// `Some(None)` clears it.
    pub base_url: Option<Option<String>>,
    pub status: Option<String>,
}

/// One game of a provider's catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GameRow {
    pub provider: String,
    pub code: String,
    pub name: String,
    /// `slot`, `fishing`, `arcade`, `card`, `lottery`, `sports`, or `other`.
    pub game_type: String,
    /// `active`, or `removed` when the provider's list no longer has it.
    pub status: String,
    pub updated_at: i64,
}

/// A game as a provider lists it (before it is stored).
#[derive(Debug, Clone)]
pub struct ListedGame {
    pub code: String,
    pub name: String,
    pub game_type: String,
}

/// What a catalogue refresh changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CatalogueChange {
    pub added: u64,
    pub updated: u64,
    pub removed: u64,
    pub unchanged: u64,
}

/// The games a client may see: `providers` (already filtered by the caller: active, enabled
/// for the client), minus the client's switched-off games, optionally of one type, after the
/// cursor `(provider, code)`, in `(provider, code)` order.
#[derive(Debug, Clone)]
pub struct GameQuery {
    pub providers: Vec<String>,
    /// The client whose `client_games` switches apply (none: the platform's view).
    pub client_id: Option<String>,
    pub game_type: Option<String>,
    pub after: Option<(String, String)>,
    pub limit: i64,
}

/// A game session with how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GameSessionInfo {
    pub id: String,
    pub client_id: String,
    pub user_id: String,
    pub provider: String,
    pub game_code: String,
    /// `open` or `ended` (the column is `game_sessions.state`).
    pub status: String,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    /// The user who ended it, or `provider` (a final round report).
    pub ended_by: Option<String>,
}

pub const SESSION_OPEN: &str = "open";
pub const SESSION_ENDED: &str = "ended";
/// `ended_by` of sessions ended by a provider's report.
pub const ENDED_BY_PROVIDER: &str = "provider";

impl Store {
    pub async fn provider_rows(&self) -> StoreResult<Vec<ProviderRow>> {
        dispatch!(self, b => b.provider_rows().await)
    }

    /// Applies `patch` to a provider row; false when no such provider.
    pub async fn update_provider(
        &self,
        code: &str,
        patch: &ProviderPatch,
        now_ms: i64,
    ) -> StoreResult<bool> {
        dispatch!(self, b => b.update_provider(code, patch, now_ms).await)
    }

    /// Makes the stored catalogue of `provider` the listed one: new games added, changed ones
    /// updated, games no longer listed marked `removed` (an empty list removes nothing: a
    /// provider answering with no games is more likely broken than empty).
    pub async fn replace_games(
        &self,
        provider: &str,
        listed: &[ListedGame],
        now_ms: i64,
    ) -> StoreResult<CatalogueChange> {
        dispatch!(self, b => b.replace_games(provider, listed, now_ms).await)
    }

    /// Every stored game of one provider (`active` and `removed`), by code.
    pub async fn provider_games(&self, provider: &str) -> StoreResult<Vec<GameRow>> {
        dispatch!(self, b => b.provider_games(provider).await)
    }

    pub async fn list_games(&self, query: &GameQuery) -> StoreResult<Vec<GameRow>> {
        if query.providers.is_empty() {
            return Ok(Vec::new());
        }
        dispatch!(self, b => b.list_games(query).await)
    }

    pub async fn game_session(&self, id: &str) -> StoreResult<Option<GameSessionInfo>> {
        dispatch!(self, b => b.game_session(id).await)
    }

    /// A user's sessions, newest first, after the cursor (a session id: ids are time-ordered).
    pub async fn user_game_sessions(
        &self,
        user_id: &str,
        status: Option<&str>,
        before_id: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<GameSessionInfo>> {
        dispatch!(self, b => b.user_game_sessions(user_id, status, before_id, limit).await)
    }

    /// Ends one open session; false when it was no longer open.
    pub async fn end_game_session(&self, id: &str, by: &str, now_ms: i64) -> StoreResult<bool> {
        dispatch!(self, b => b.end_game_session(id, by, now_ms).await)
    }

    /// Ends the player's open sessions at a provider; how many ended.
    pub async fn end_player_sessions(
        &self,
        client_id: &str,
        user_id: &str,
        provider: &str,
        by: &str,
        now_ms: i64,
    ) -> StoreResult<u64> {
        dispatch!(self, b => b.end_player_sessions(client_id, user_id, provider, by, now_ms).await)
    }

    /// How many sessions the player still has open at a provider.
    pub async fn open_sessions_at(&self, user_id: &str, provider: &str) -> StoreResult<i64> {
        dispatch!(self, b => b.open_sessions_at(user_id, provider).await)
    }
}
