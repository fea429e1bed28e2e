-- Game providers (DESIGN sections 3 and 5). Every table carries client_id.

CREATE TABLE provider_transfers (
    id VARCHAR(64) NOT NULL PRIMARY KEY,
    client_id VARCHAR(64) NOT NULL,
    user_id VARCHAR(64) NOT NULL,
    provider VARCHAR(32) NOT NULL,
    account VARCHAR(64) NOT NULL,
    direction VARCHAR(8) NOT NULL,
    amount BIGINT NOT NULL,
    serial VARCHAR(50) NOT NULL,
    idempotency_key VARCHAR(255) NOT NULL,
    request_hash VARCHAR(128) NOT NULL,
    state VARCHAR(16) NOT NULL,
    provider_balance BIGINT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    last_error VARCHAR(255) NULL,
    last_sent_at BIGINT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE KEY provider_transfers_serial (serial),
    UNIQUE KEY provider_transfers_idempotency (client_id, idempotency_key),
    KEY provider_transfers_open (state, updated_at),
    CONSTRAINT provider_transfers_client_fk FOREIGN KEY (client_id) REFERENCES clients (id),
    CONSTRAINT provider_transfers_user_fk FOREIGN KEY (user_id) REFERENCES users (id),
    CONSTRAINT provider_transfers_direction CHECK (direction IN ('in', 'out')),
    CONSTRAINT provider_transfers_amount CHECK (amount > 0),
    CONSTRAINT provider_transfers_state CHECK (state IN ('pending', 'unknown', 'succeeded', 'failed'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE provider_players (
    provider VARCHAR(32) NOT NULL,
    account VARCHAR(64) NOT NULL,
    uid VARCHAR(64) NOT NULL,
    client_id VARCHAR(64) NOT NULL,
    user_id VARCHAR(64) NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (provider, account, uid),
    CONSTRAINT provider_players_client_fk FOREIGN KEY (client_id) REFERENCES clients (id),
    CONSTRAINT provider_players_user_fk FOREIGN KEY (user_id) REFERENCES users (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE game_rounds (
    client_id VARCHAR(64) NOT NULL,
    provider VARCHAR(32) NOT NULL,
    round_id VARCHAR(64) NOT NULL,
    user_id VARCHAR(64) NOT NULL,
    version BIGINT NOT NULL,
    status VARCHAR(16) NOT NULL,
    net BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (client_id, provider, round_id),
    CONSTRAINT game_rounds_client_fk FOREIGN KEY (client_id) REFERENCES clients (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE game_sessions (
    id VARCHAR(64) NOT NULL PRIMARY KEY,
    client_id VARCHAR(64) NOT NULL,
    user_id VARCHAR(64) NOT NULL,
    provider VARCHAR(32) NOT NULL,
    game_code VARCHAR(64) NOT NULL,
    state VARCHAR(16) NOT NULL,
    started_at BIGINT NOT NULL,
    ended_at BIGINT NULL,
    KEY game_sessions_user (client_id, user_id, started_at),
    CONSTRAINT game_sessions_client_fk FOREIGN KEY (client_id) REFERENCES clients (id),
    CONSTRAINT game_sessions_user_fk FOREIGN KEY (user_id) REFERENCES users (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE client_games (
    client_id VARCHAR(64) NOT NULL,
    provider VARCHAR(32) NOT NULL,
    game_code VARCHAR(64) NOT NULL,
    enabled BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (client_id, provider, game_code),
    CONSTRAINT client_games_client_fk FOREIGN KEY (client_id) REFERENCES clients (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
