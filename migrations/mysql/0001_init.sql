-- nashub schema, MySQL 8 / MariaDB 10.11 dialect. Binary collation: keys are case-sensitive,
-- as on SQLite. Timestamps are epoch milliseconds; money is i64 minor units.
CREATE TABLE clients (
    id VARCHAR(64) NOT NULL PRIMARY KEY,
    code VARCHAR(64) NOT NULL UNIQUE,
    name VARCHAR(255) NOT NULL,
    currency VARCHAR(8) NOT NULL,
    currency_exponent BIGINT NOT NULL CHECK (currency_exponent BETWEEN 0 AND 8),
    status VARCHAR(16) NOT NULL DEFAULT 'active',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE users (
    id VARCHAR(64) NOT NULL PRIMARY KEY,
    client_id VARCHAR(64) NULL,
    login_scope VARCHAR(64) NOT NULL,
    parent_id VARCHAR(64) NULL,
    path VARCHAR(2048) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    depth BIGINT NOT NULL,
    role VARCHAR(16) NOT NULL,
    username VARCHAR(64) NOT NULL,
    password_hash VARCHAR(255) NOT NULL,
    status VARCHAR(16) NOT NULL DEFAULT 'active',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE KEY users_login (login_scope, username),
    KEY users_client (client_id, id),
    KEY users_parent (parent_id, id),
    KEY users_path (path(767)),
    CONSTRAINT users_client_fk FOREIGN KEY (client_id) REFERENCES clients (id),
    CONSTRAINT users_parent_fk FOREIGN KEY (parent_id) REFERENCES users (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE sessions (
    id VARCHAR(64) NOT NULL PRIMARY KEY,
    user_id VARCHAR(64) NOT NULL,
    client_id VARCHAR(64) NULL,
    revoked BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    KEY sessions_user (user_id),
    CONSTRAINT sessions_user_fk FOREIGN KEY (user_id) REFERENCES users (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE refresh_tokens (
    token_hash VARCHAR(128) NOT NULL PRIMARY KEY,
    session_id VARCHAR(64) NOT NULL,
    used BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    KEY refresh_tokens_session (session_id),
    CONSTRAINT refresh_tokens_session_fk FOREIGN KEY (session_id) REFERENCES sessions (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE accounts (
    id VARCHAR(160) NOT NULL PRIMARY KEY,
    client_id VARCHAR(64) NOT NULL,
    user_id VARCHAR(64) NULL,
    kind VARCHAR(64) NOT NULL,
    currency VARCHAR(8) NOT NULL,
    balance BIGINT NOT NULL DEFAULT 0,
    version BIGINT NOT NULL DEFAULT 0,
    allow_negative BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    KEY accounts_client (client_id),
    CONSTRAINT accounts_client_fk FOREIGN KEY (client_id) REFERENCES clients (id),
    CONSTRAINT accounts_user_fk FOREIGN KEY (user_id) REFERENCES users (id),
    CONSTRAINT accounts_non_negative CHECK (allow_negative = 1 OR balance >= 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE journal (
    id VARCHAR(64) NOT NULL PRIMARY KEY,
    client_id VARCHAR(64) NOT NULL,
    idempotency_key VARCHAR(255) NOT NULL,
    request_hash VARCHAR(128) NOT NULL,
    kind VARCHAR(32) NOT NULL,
    actor_id VARCHAR(64) NULL,
    subject_account_id VARCHAR(160) NOT NULL,
    memo VARCHAR(512) NULL,
    created_at BIGINT NOT NULL,
    UNIQUE KEY journal_idempotency (client_id, idempotency_key),
    CONSTRAINT journal_client_fk FOREIGN KEY (client_id) REFERENCES clients (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE postings (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    journal_id VARCHAR(64) NOT NULL,
    account_id VARCHAR(160) NOT NULL,
    client_id VARCHAR(64) NOT NULL,
    amount BIGINT NOT NULL,
    balance_after BIGINT NOT NULL,
    account_version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE KEY postings_account_version (account_id, account_version),
    KEY postings_journal (journal_id),
    CONSTRAINT postings_journal_fk FOREIGN KEY (journal_id) REFERENCES journal (id),
    CONSTRAINT postings_account_fk FOREIGN KEY (account_id) REFERENCES accounts (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
