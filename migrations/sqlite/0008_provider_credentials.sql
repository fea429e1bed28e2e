-- Per-client provider accounts (issue 6): every sealed credential document has a version,
-- replaced versions are kept (sealed, same associated data) so a transfer sent with them can
-- still be resolved, and a second `cache_epoch` row moves whenever credentials change, so every
-- hub node rebuilds that client's provider account within one poll.
ALTER TABLE client_secrets ADD COLUMN version INTEGER NOT NULL DEFAULT 1;

CREATE TABLE client_secret_versions (
    secret_id TEXT NOT NULL REFERENCES client_secrets(id),
    version INTEGER NOT NULL,
    key_id TEXT NOT NULL,
    nonce TEXT NOT NULL,
    ciphertext TEXT NOT NULL,
    replaced_at INTEGER NOT NULL,
    PRIMARY KEY (secret_id, version)
);

INSERT INTO cache_epoch (id, epoch) VALUES (2, 0);

CREATE TRIGGER client_secrets_insert_bump_epoch AFTER INSERT ON client_secrets
BEGIN UPDATE cache_epoch SET epoch = epoch + 1 WHERE id = 2; END;
CREATE TRIGGER client_secrets_update_bump_epoch AFTER UPDATE ON client_secrets
BEGIN UPDATE cache_epoch SET epoch = epoch + 1 WHERE id = 2; END;
CREATE TRIGGER client_secrets_delete_bump_epoch AFTER DELETE ON client_secrets
BEGIN UPDATE cache_epoch SET epoch = epoch + 1 WHERE id = 2; END;
