-- Issue 19, responsible gaming. A player's limits: `current_value` applies now; a raise (or a
-- removal) waits in `pending_*` until `pending_at` (the client's cooling-off), then applies.
-- Values are minor units of the client's currency, or minutes for `session_minutes`; NULL =
-- no limit. A row in `player_protection` exists for every player who ever set a limit or an
-- exclusion: the money path reads it first and skips every check when there is none.
CREATE TABLE player_limits (
    user_id TEXT NOT NULL REFERENCES users(id),
    name TEXT NOT NULL,
    client_id TEXT NOT NULL,
    current_value INTEGER,
    pending_set INTEGER NOT NULL DEFAULT 0,
    pending_value INTEGER,
    pending_at INTEGER,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, name)
);

-- Time-out or self-exclusion (`exclusion_kind`, until `excluded_until`; NULL = permanent) and
-- the play session the session limit and reality checks measure.
CREATE TABLE player_protection (
    user_id TEXT PRIMARY KEY REFERENCES users(id),
    client_id TEXT NOT NULL,
    exclusion_kind TEXT,
    excluded_at INTEGER,
    excluded_until INTEGER,
    reality_check_minutes INTEGER,
    play_started_at INTEGER,
    play_last_at INTEGER,
    reality_checked_at INTEGER,
    updated_at INTEGER NOT NULL
);
CREATE INDEX player_protection_play ON player_protection (play_last_at);
