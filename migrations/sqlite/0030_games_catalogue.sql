-- Game service (issue 21): provider registration as data, the games catalogue, and ended
-- game sessions. `providers` and `games` are platform reference data (no client_id: every
-- client reads the same rows; a sharded deployment replicates them to every shard).

-- Which providers exist. `protocol` names the compiled adapter module that speaks to it
-- (`providers::build_adapter`); `status` 'disabled' refuses new money in and launches, never
-- money out. `base_url` is the default API address of configured accounts that give none.
CREATE TABLE providers (
    code TEXT PRIMARY KEY,
    protocol TEXT NOT NULL,
    name TEXT NOT NULL,
    base_url TEXT,
    status TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
INSERT INTO providers (code, protocol, name, base_url, status, created_at, updated_at)
VALUES ('jdb', 'jdb', 'JDB Games', NULL, 'active', 0, 0),
       ('luckysports', 'luckysports', 'LuckySports', NULL, 'active', 0, 0);

-- The providers' game lists as last fetched. A game gone from its provider's list is kept as
-- 'removed' (sessions and switches may still name it).
CREATE TABLE games (
    provider TEXT NOT NULL,
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    game_type TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'removed')),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (provider, code)
);
CREATE INDEX games_type ON games (game_type, provider, code);

-- Who ended a session: a user id, or 'provider' (a final round report).
ALTER TABLE game_sessions ADD COLUMN ended_by TEXT;
CREATE INDEX game_sessions_user_id ON game_sessions (user_id, id);
