-- Issue 19, staff security: a TOTP second factor (RFC 6238) per staff user, its secret sealed
-- like provider credentials (AES-256-GCM, associated data = user id); `last_step` refuses a
-- code's replay. Recovery codes are SHA-256 hashes of high-entropy codes, each usable once.
-- A login challenge is the hash of a short-lived token between password and code.
CREATE TABLE staff_totp (
    user_id TEXT NOT NULL PRIMARY KEY,
    key_id TEXT NOT NULL,
    nonce TEXT NOT NULL,
    ciphertext TEXT NOT NULL,
    enabled INTEGER NOT NULL DEFAULT 0,
    last_step INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE staff_recovery_codes (
    user_id TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    used_at INTEGER NULL,
    PRIMARY KEY (user_id, code_hash)
);

CREATE TABLE second_factor_challenges (
    token_hash TEXT NOT NULL PRIMARY KEY,
    user_id TEXT NOT NULL,
    purpose TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
