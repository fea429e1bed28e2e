-- Game service (issue 21): provider registration as data, the games catalogue, and ended
-- game sessions. `providers` and `games` are platform reference data (no client_id: every
-- client reads the same rows; a sharded deployment replicates them to every shard).

-- Which providers exist. `protocol` names the compiled adapter module that speaks to it
-- (`providers::build_adapter`); `status` 'disabled' refuses new money in and launches, never
-- money out. `base_url` is the default API address of configured accounts that give none.
CREATE TABLE providers (
    code VARCHAR(32) NOT NULL PRIMARY KEY,
    protocol VARCHAR(32) NOT NULL,
    name VARCHAR(128) NOT NULL,
    base_url VARCHAR(512) NULL,
    status VARCHAR(16) NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT providers_status CHECK (status IN ('active', 'disabled'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
INSERT INTO providers (code, protocol, name, base_url, status, created_at, updated_at)
VALUES ('jdb', 'jdb', 'JDB Games', NULL, 'active', 0, 0),
       ('luckysports', 'luckysports', 'LuckySports', NULL, 'active', 0, 0);

-- The providers' game lists as last fetched. A game gone from its provider's list is kept as
-- 'removed' (sessions and switches may still name it).
CREATE TABLE games (
    provider VARCHAR(32) NOT NULL,
    code VARCHAR(64) NOT NULL,
    name VARCHAR(255) NOT NULL,
    game_type VARCHAR(32) NOT NULL,
    status VARCHAR(16) NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (provider, code),
    KEY games_type (game_type, provider, code),
    CONSTRAINT games_status CHECK (status IN ('active', 'removed'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Who ended a session: a user id, or 'provider' (a final round report).
ALTER TABLE game_sessions ADD COLUMN ended_by VARCHAR(64) NULL;
CREATE INDEX game_sessions_user_id ON game_sessions (user_id, id);
