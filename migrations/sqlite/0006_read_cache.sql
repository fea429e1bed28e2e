-- One row every hub node polls: bumped by triggers whenever a row that nodes cache changes
-- (sessions revoked, users, clients, permission overrides), so caches drop stale copies.
CREATE TABLE cache_epoch (
    id INTEGER PRIMARY KEY,
    epoch INTEGER NOT NULL
);
INSERT INTO cache_epoch (id, epoch) VALUES (1, 0);

CREATE TRIGGER sessions_bump_epoch AFTER UPDATE ON sessions
BEGIN UPDATE cache_epoch SET epoch = epoch + 1 WHERE id = 1; END;
CREATE TRIGGER users_bump_epoch AFTER UPDATE ON users
BEGIN UPDATE cache_epoch SET epoch = epoch + 1 WHERE id = 1; END;
CREATE TRIGGER clients_bump_epoch AFTER UPDATE ON clients
BEGIN UPDATE cache_epoch SET epoch = epoch + 1 WHERE id = 1; END;
CREATE TRIGGER perms_insert_bump_epoch AFTER INSERT ON user_permissions
BEGIN UPDATE cache_epoch SET epoch = epoch + 1 WHERE id = 1; END;
CREATE TRIGGER perms_update_bump_epoch AFTER UPDATE ON user_permissions
BEGIN UPDATE cache_epoch SET epoch = epoch + 1 WHERE id = 1; END;
CREATE TRIGGER perms_delete_bump_epoch AFTER DELETE ON user_permissions
BEGIN UPDATE cache_epoch SET epoch = epoch + 1 WHERE id = 1; END;
