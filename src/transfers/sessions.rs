//! Game sessions (issue 21): opened by a launch (`transfers::games`), ended by the player, by
//! someone who reaches them, or by a provider's report of a finished round.
//!
//! What "ended" closes: the session's row (`open` → `ended`, `ended_at`, `ended_by`), once; and,
//! when it was the player's last open session at that provider, a best-effort kick (JDB action
//! 17) so the player leaves the game there and a withdrawal can follow. What it does not close:
//! rounds still running at the provider. Their money is at the provider and real, so their
//! later versions (callbacks, pulls) keep being applied after the session ended, exactly as
//! before; neither protocol ties a round to a launch, so the hub does not either.

use super::service::{ProviderError, Providers};
use crate::domain::now_ms;
use crate::store::{ClientRow, ENDED_BY_PROVIDER, GameSessionInfo, SESSION_OPEN};

impl Providers {
    /// Ends `session` on behalf of `by` (a user id); `operator` says whether that is someone
    /// other than the player. Idempotent: an ended session is answered as it is.
    pub async fn end_session(
        &self,
        client: &ClientRow,
        session: GameSessionInfo,
        by: &str,
        operator: bool,
    ) -> Result<(GameSessionInfo, bool), ProviderError> {
        if session.status != SESSION_OPEN {
            return Ok((session, false));
        }
        let store = &self.inner.store;
        let ended = store.end_game_session(&session.id, by, now_ms()).await?;
        let row = store
            .game_session(&session.id)
            .await?
            .unwrap_or(session.clone());
        if ended {
            metrics::counter!(crate::metrics::GAME_SESSIONS_ENDED, "by" => if operator { "operator" } else { "player" }).increment(1);
            if store.open_sessions_at(&row.user_id, &row.provider).await? == 0 {
                self.kick_later(client.clone(), row.clone());
            }
        }
        Ok((row, ended))
    }

    /// Takes the player out of the game at the provider, in the background (best effort: the
    /// answer does not wait for the provider, and a failure only leaves them in the game).
    fn kick_later(&self, client: ClientRow, session: GameSessionInfo) {
        let providers = self.clone();
        crate::rt::spawn(async move {
            let Ok(account) = providers.account_for(&client, &session.provider).await else {
                return;
            };
            if !account.breaker.allow() {
                return;
            }
            let uid = crate::providers::provider_uid(&session.user_id);
            let kicked = account.adapter.kick(&uid).await;
            account.record(!matches!(
                kicked,
                Err(crate::providers::CallError::Unavailable(_))
            ));
            if let Err(e) = kicked {
                tracing::info!(provider = %session.provider, session = %session.id, error = %e, "kick after session end failed");
            }
        });
    }

    /// A provider reported a finished round: the player's open sessions there end (neither
    /// protocol sends a session-end message; a settled or cancelled round is our reading of
    /// "the game is over").
    pub(super) async fn end_sessions_by_provider(
        &self,
        client_id: &str,
        user_id: &str,
        provider: &str,
    ) -> Result<(), ProviderError> {
        let ended = self
            .inner
            .store
            .end_player_sessions(client_id, user_id, provider, ENDED_BY_PROVIDER, now_ms())
            .await?;
        if ended > 0 {
            metrics::counter!(crate::metrics::GAME_SESSIONS_ENDED, "by" => "provider")
                .increment(ended);
        }
        Ok(())
    }
}
