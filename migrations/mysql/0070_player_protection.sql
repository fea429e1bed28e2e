-- Issue 19, responsible gaming. A player's limits: `current_value` applies now; a raise (or a
-- removal) waits in `pending_*` until `pending_at` (the client's cooling-off), then applies.
-- Values are minor units of the client's currency, or minutes for `session_minutes`; NULL =
-- no limit. A row in `player_protection` exists for every player who ever set a limit or an
-- exclusion: the money path reads it first and skips every check when there is none.
CREATE TABLE player_limits (
    user_id VARCHAR(64) NOT NULL,
    name VARCHAR(32) NOT NULL,
    client_id VARCHAR(64) NOT NULL,
    current_value BIGINT NULL,
    pending_set TINYINT NOT NULL DEFAULT 0,
    pending_value BIGINT NULL,
    pending_at BIGINT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Time-out or self-exclusion (`exclusion_kind`, until `excluded_until`; NULL = permanent) and
-- the play session the session limit and reality checks measure. Its row is locked (FOR
-- UPDATE) while a limited movement is decided and committed, on every node.
CREATE TABLE player_protection (
    user_id VARCHAR(64) NOT NULL PRIMARY KEY,
    client_id VARCHAR(64) NOT NULL,
    exclusion_kind VARCHAR(16) NULL,
    excluded_at BIGINT NULL,
    excluded_until BIGINT NULL,
    reality_check_minutes BIGINT NULL,
    play_started_at BIGINT NULL,
    play_last_at BIGINT NULL,
    reality_checked_at BIGINT NULL,
    updated_at BIGINT NOT NULL,
    KEY player_protection_play (play_last_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
