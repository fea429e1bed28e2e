-- Identity and audit (issue 3), MySQL 8 / MariaDB 10.11 dialect.

-- Hash-chained audit trail. `seq` is assigned from `audit_head` inside the appending
-- transaction (whose row lock serializes appenders on every node), so the chain stays linear.
CREATE TABLE audit_log (
    seq BIGINT NOT NULL PRIMARY KEY,
    client_id VARCHAR(64) NULL,
    actor_id VARCHAR(64) NULL,
    action VARCHAR(64) NOT NULL,
    target_type VARCHAR(32) NULL,
    target_id VARCHAR(160) NULL,
    before_json TEXT NULL,
    after_json TEXT NULL,
    ip VARCHAR(64) NULL,
    created_at BIGINT NOT NULL,
    prev_hash CHAR(64) NOT NULL,
    hash CHAR(64) NOT NULL,
    KEY audit_log_client (client_id, seq)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE audit_head (
    id BIGINT NOT NULL PRIMARY KEY,
    client_id VARCHAR(64) NULL,
    seq BIGINT NOT NULL,
    hash CHAR(64) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
INSERT INTO audit_head (id, client_id, seq, hash)
VALUES (1, NULL, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE user_permissions (
    user_id VARCHAR(64) NOT NULL,
    client_id VARCHAR(64) NULL,
    permission VARCHAR(64) NOT NULL,
    effect VARCHAR(16) NOT NULL,
    granted_by VARCHAR(64) NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, permission),
    CONSTRAINT user_permissions_user_fk FOREIGN KEY (user_id) REFERENCES users (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE login_failures (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    throttle_key VARCHAR(255) NOT NULL,
    client_id VARCHAR(64) NULL,
    created_at BIGINT NOT NULL,
    KEY login_failures_key (throttle_key, created_at),
    KEY login_failures_time (created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE client_settings (
    client_id VARCHAR(64) NOT NULL PRIMARY KEY,
    settings TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT client_settings_client_fk FOREIGN KEY (client_id) REFERENCES clients (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE client_secrets (
    id VARCHAR(64) NOT NULL PRIMARY KEY,
    client_id VARCHAR(64) NOT NULL,
    name VARCHAR(64) NOT NULL,
    key_id VARCHAR(64) NOT NULL,
    nonce VARCHAR(64) NOT NULL,
    ciphertext TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE KEY client_secrets_name (client_id, name),
    CONSTRAINT client_secrets_client_fk FOREIGN KEY (client_id) REFERENCES clients (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE INDEX users_client_status ON users (client_id, status, id);
CREATE INDEX users_client_role ON users (client_id, role, id);

-- Deep agent trees: room for about 220 levels of 36-character ids (was about 55).
ALTER TABLE users MODIFY path VARCHAR(8192) CHARACTER SET ascii COLLATE ascii_bin NOT NULL;
