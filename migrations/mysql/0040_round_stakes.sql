-- Issue 21: commission on turnover. A round keeps the stake of its latest applied version
-- (minor units of the client's currency, converted exactly as the net) and when it was first
-- applied: a period's turnover is the stakes of the rounds first applied in it, so a resettled
-- round counts once. Rounds recorded before stakes were carried have stake 0 (no turnover is
-- known for them) and their last change as their first.
ALTER TABLE game_rounds
    ADD COLUMN stake BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN created_at BIGINT NOT NULL DEFAULT 0,
    ADD CONSTRAINT game_rounds_stake_check CHECK (stake >= 0),
    ADD KEY game_rounds_created (client_id, created_at);
UPDATE game_rounds SET created_at = updated_at;
