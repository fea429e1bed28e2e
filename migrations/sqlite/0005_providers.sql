-- Game providers (DESIGN sections 3 and 5). Every table carries client_id.

-- One row per transfer intent: the outbox of the transfer-wallet state machine. `serial` is the
-- number the provider sees, created once and reused on every retry and status query.
CREATE TABLE provider_transfers (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients(id),
    user_id TEXT NOT NULL REFERENCES users(id),
    provider TEXT NOT NULL,
    account TEXT NOT NULL,
    direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    amount INTEGER NOT NULL CHECK (amount > 0),
    serial TEXT NOT NULL UNIQUE,
    idempotency_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'unknown', 'succeeded', 'failed')),
    provider_balance INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    last_sent_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (client_id, idempotency_key)
);
CREATE INDEX provider_transfers_open ON provider_transfers (state, updated_at);

-- Players registered at a provider account (so the account named in a callback finds the client).
CREATE TABLE provider_players (
    provider TEXT NOT NULL,
    account TEXT NOT NULL,
    uid TEXT NOT NULL,
    client_id TEXT NOT NULL REFERENCES clients(id),
    user_id TEXT NOT NULL REFERENCES users(id),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (provider, account, uid)
);

-- Rounds / bets as reported by a provider: the highest version applied, and its net result.
CREATE TABLE game_rounds (
    client_id TEXT NOT NULL REFERENCES clients(id),
    provider TEXT NOT NULL,
    round_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    status TEXT NOT NULL,
    net INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (client_id, provider, round_id)
);

CREATE TABLE game_sessions (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients(id),
    user_id TEXT NOT NULL REFERENCES users(id),
    provider TEXT NOT NULL,
    game_code TEXT NOT NULL,
    state TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    ended_at INTEGER
);
CREATE INDEX game_sessions_user ON game_sessions (client_id, user_id, started_at);

-- Per client: a provider (`game_code` '*') or one of its games switched off by the client's
-- admins. No row: enabled.
CREATE TABLE client_games (
    client_id TEXT NOT NULL REFERENCES clients(id),
    provider TEXT NOT NULL,
    game_code TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (client_id, provider, game_code)
);
