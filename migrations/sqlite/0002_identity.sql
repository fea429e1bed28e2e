-- Identity and audit (issue 3), SQLite dialect.

-- Hash-chained audit trail. `seq` is assigned from `audit_head` inside the appending
-- transaction, so the chain stays linear even with several hub nodes appending.
CREATE TABLE audit_log (
    seq INTEGER PRIMARY KEY,
    client_id TEXT,
    actor_id TEXT,
    action TEXT NOT NULL,
    target_type TEXT,
    target_id TEXT,
    before_json TEXT,
    after_json TEXT,
    ip TEXT,
    created_at INTEGER NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_log_client ON audit_log (client_id, seq);

-- One row: the chain's last seq and hash. Updating it first serializes appenders.
CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY,
    client_id TEXT,
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, client_id, seq, hash)
VALUES (1, NULL, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- Per-user permission overrides on top of the role defaults: effect `grant` or `revoke`.
CREATE TABLE user_permissions (
    user_id TEXT NOT NULL REFERENCES users(id),
    client_id TEXT,
    permission TEXT NOT NULL,
    effect TEXT NOT NULL,
    granted_by TEXT,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, permission)
);

-- Failed logins, one row per failure and key (`acct:<scope>:<username>`, `ip:<addr>`);
-- shared by every node on this database.
CREATE TABLE login_failures (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    throttle_key TEXT NOT NULL,
    client_id TEXT,
    created_at INTEGER NOT NULL
);
CREATE INDEX login_failures_key ON login_failures (throttle_key, created_at);
CREATE INDEX login_failures_time ON login_failures (created_at);

CREATE TABLE client_settings (
    client_id TEXT PRIMARY KEY REFERENCES clients(id),
    settings TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);

-- Provider credentials, AES-256-GCM: base64 nonce and ciphertext (tag appended), key id for
-- rotation, the row id as associated data.
CREATE TABLE client_secrets (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients(id),
    name TEXT NOT NULL,
    key_id TEXT NOT NULL,
    nonce TEXT NOT NULL,
    ciphertext TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (client_id, name)
);

CREATE INDEX users_client_status ON users (client_id, status, id);
CREATE INDEX users_client_role ON users (client_id, role, id);
