-- Issue 17: game statistics per game (see migrations/sqlite/0160_round_games.sql). Game codes
-- are at most 24 characters (`providers::game_code`), so per-game series fit report_marks.
ALTER TABLE game_rounds ADD COLUMN game VARCHAR(32) NOT NULL DEFAULT '';

ALTER TABLE report_rounds
    ADD COLUMN game VARCHAR(32) NOT NULL DEFAULT '' AFTER provider,
    DROP PRIMARY KEY,
    ADD PRIMARY KEY (client_id, hour, provider, game, user_id);
ALTER TABLE report_rounds_client
    ADD COLUMN game VARCHAR(32) NOT NULL DEFAULT '' AFTER provider,
    DROP PRIMARY KEY,
    ADD PRIMARY KEY (client_id, hour, provider, game);

INSERT INTO report_marks (client_id, series, bucket, user_id)
SELECT DISTINCT client_id, CONCAT('players:', provider, '::h'), created_at - created_at % 3600000, user_id
FROM game_rounds WHERE fed = 1;
INSERT INTO report_counts (client_id, series, bucket, n)
SELECT client_id, series, bucket, COUNT(*) FROM report_marks WHERE series LIKE 'players:%::h'
GROUP BY client_id, series, bucket;
ALTER TABLE report_zone_series ADD COLUMN games_since BIGINT NOT NULL DEFAULT 0;
UPDATE report_zone_series SET games_since = (FLOOR(UNIX_TIMESTAMP() * 1000 / 3600000) + 1) * 3600000;
