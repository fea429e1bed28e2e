-- Issue 19, staff security: a TOTP second factor (RFC 6238) per staff user, its secret sealed
-- like provider credentials (AES-256-GCM, associated data = user id); `last_step` refuses a
-- code's replay. Recovery codes are SHA-256 hashes of high-entropy codes, each usable once.
-- A login challenge is the hash of a short-lived token between password and code.
CREATE TABLE staff_totp (
    user_id VARCHAR(64) NOT NULL PRIMARY KEY,
    key_id VARCHAR(64) NOT NULL,
    nonce VARCHAR(255) NOT NULL,
    ciphertext VARCHAR(255) NOT NULL,
    enabled TINYINT NOT NULL DEFAULT 0,
    last_step BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE staff_recovery_codes (
    user_id VARCHAR(64) NOT NULL,
    code_hash VARCHAR(64) NOT NULL,
    used_at BIGINT NULL,
    PRIMARY KEY (user_id, code_hash)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE second_factor_challenges (
    token_hash VARCHAR(64) NOT NULL PRIMARY KEY,
    user_id VARCHAR(64) NOT NULL,
    purpose VARCHAR(64) NOT NULL,
    expires_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
