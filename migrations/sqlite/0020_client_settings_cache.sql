-- Client settings are cached by every node (the money path reads limits and enabled providers
-- per movement): a change moves the cache epoch like users and clients do.
CREATE TRIGGER client_settings_insert_bump_epoch AFTER INSERT ON client_settings
BEGIN UPDATE cache_epoch SET epoch = epoch + 1 WHERE id = 1; END;
CREATE TRIGGER client_settings_update_bump_epoch AFTER UPDATE ON client_settings
BEGIN UPDATE cache_epoch SET epoch = epoch + 1 WHERE id = 1; END;
CREATE TRIGGER client_settings_delete_bump_epoch AFTER DELETE ON client_settings
BEGIN UPDATE cache_epoch SET epoch = epoch + 1 WHERE id = 1; END;
