-- Issue 22: nodes cache whether a player has a protection row (asked on every deposit); a new
-- row moves the read cache's epoch like any other cached kind of row.
CREATE TRIGGER player_protection_bump_epoch AFTER INSERT ON player_protection
BEGIN UPDATE cache_epoch SET epoch = epoch + 1 WHERE id = 1; END;
