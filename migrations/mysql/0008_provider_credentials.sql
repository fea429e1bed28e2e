-- Per-client provider accounts (issue 6): every sealed credential document has a version,
-- replaced versions are kept (sealed, same associated data) so a transfer sent with them can
-- still be resolved, and a second `cache_epoch` row moves whenever credentials change, so every
-- hub node rebuilds that client's provider account within one poll.
ALTER TABLE client_secrets ADD COLUMN version BIGINT NOT NULL DEFAULT 1;

CREATE TABLE client_secret_versions (
    secret_id VARCHAR(64) NOT NULL,
    version BIGINT NOT NULL,
    key_id VARCHAR(64) NOT NULL,
    nonce VARCHAR(64) NOT NULL,
    ciphertext TEXT NOT NULL,
    replaced_at BIGINT NOT NULL,
    PRIMARY KEY (secret_id, version),
    CONSTRAINT client_secret_versions_secret_fk FOREIGN KEY (secret_id) REFERENCES client_secrets (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

INSERT INTO cache_epoch (id, epoch) VALUES (2, 0);

CREATE TRIGGER client_secrets_insert_bump_epoch AFTER INSERT ON client_secrets
FOR EACH ROW UPDATE cache_epoch SET epoch = epoch + 1 WHERE id = 2;
CREATE TRIGGER client_secrets_update_bump_epoch AFTER UPDATE ON client_secrets
FOR EACH ROW UPDATE cache_epoch SET epoch = epoch + 1 WHERE id = 2;
CREATE TRIGGER client_secrets_delete_bump_epoch AFTER DELETE ON client_secrets
FOR EACH ROW UPDATE cache_epoch SET epoch = epoch + 1 WHERE id = 2;
