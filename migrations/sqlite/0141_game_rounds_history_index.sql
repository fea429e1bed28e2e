-- A player's history (issue 17, the CSV export) reads the player's rounds newest first: an
-- index holding every column it reads makes a page one range read, with no row lookup each
-- (by rowid, in no relation to time). It also serves what game_rounds_user served.
CREATE INDEX game_rounds_history
    ON game_rounds (client_id, user_id, created_at, provider, round_id, status, stake, net);
DROP INDEX game_rounds_user;
