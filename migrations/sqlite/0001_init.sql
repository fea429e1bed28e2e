-- nashub schema, SQLite dialect. Timestamps are epoch milliseconds; money is i64 minor units.
CREATE TABLE clients (
    id TEXT PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    currency TEXT NOT NULL,
    currency_exponent INTEGER NOT NULL CHECK (currency_exponent BETWEEN 0 AND 8),
    status TEXT NOT NULL DEFAULT 'active',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    client_id TEXT REFERENCES clients(id),
    login_scope TEXT NOT NULL,
    parent_id TEXT REFERENCES users(id),
    path TEXT NOT NULL,
    depth INTEGER NOT NULL,
    role TEXT NOT NULL,
    username TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'active',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (login_scope, username)
);
CREATE INDEX users_client ON users (client_id, id);
CREATE INDEX users_parent ON users (parent_id, id);
CREATE INDEX users_path ON users (path);

CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    client_id TEXT,
    revoked INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id),
    used INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients(id),
    user_id TEXT REFERENCES users(id),
    kind TEXT NOT NULL,
    currency TEXT NOT NULL,
    balance INTEGER NOT NULL DEFAULT 0,
    version INTEGER NOT NULL DEFAULT 0,
    allow_negative INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    CHECK (allow_negative = 1 OR balance >= 0)
);
CREATE INDEX accounts_client ON accounts (client_id);

CREATE TABLE journal (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients(id),
    idempotency_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    kind TEXT NOT NULL,
    actor_id TEXT,
    subject_account_id TEXT NOT NULL,
    memo TEXT,
    created_at INTEGER NOT NULL,
    UNIQUE (client_id, idempotency_key)
);

CREATE TABLE postings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    journal_id TEXT NOT NULL REFERENCES journal(id),
    account_id TEXT NOT NULL REFERENCES accounts(id),
    client_id TEXT NOT NULL,
    amount INTEGER NOT NULL,
    balance_after INTEGER NOT NULL,
    account_version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (account_id, account_version)
);
CREATE INDEX postings_journal ON postings (journal_id);
