-- Issue 17: game statistics per game. A round carries its provider's game code (JDB
-- `<gType>-<mType>` from its history rows, LuckySports `sportsbook`: its bet records name no
-- game); rounds applied before this migration have none ('').
ALTER TABLE game_rounds ADD COLUMN game TEXT NOT NULL DEFAULT '';

-- The round rollups gain the game in their keys (rebuilt: SQLite cannot change a primary key).
-- Every existing row is of rounds without a game.
CREATE TABLE report_rounds_games (
    client_id TEXT NOT NULL,
    hour INTEGER NOT NULL,
    provider TEXT NOT NULL,
    game TEXT NOT NULL DEFAULT '',
    user_id TEXT NOT NULL,
    rounds INTEGER NOT NULL,
    stake INTEGER NOT NULL,
    net INTEGER NOT NULL,
    PRIMARY KEY (client_id, hour, provider, game, user_id)
) WITHOUT ROWID;
INSERT INTO report_rounds_games (client_id, hour, provider, game, user_id, rounds, stake, net)
SELECT client_id, hour, provider, '', user_id, rounds, stake, net FROM report_rounds;
DROP TABLE report_rounds;
ALTER TABLE report_rounds_games RENAME TO report_rounds;

CREATE TABLE report_rounds_client_games (
    client_id TEXT NOT NULL,
    hour INTEGER NOT NULL,
    provider TEXT NOT NULL,
    game TEXT NOT NULL DEFAULT '',
    rounds INTEGER NOT NULL,
    stake INTEGER NOT NULL,
    net INTEGER NOT NULL,
    PRIMARY KEY (client_id, hour, provider, game)
) WITHOUT ROWID;
INSERT INTO report_rounds_client_games (client_id, hour, provider, game, rounds, stake, net)
SELECT client_id, hour, provider, '', rounds, stake, net FROM report_rounds_client;
DROP TABLE report_rounds_client;
ALTER TABLE report_rounds_client_games RENAME TO report_rounds_client;

-- Distinct players per game: the series `players:<provider>:<game>` beside `players:<provider>`.
-- Hourly marks of the rounds fed so far; their zone series (days, weeks, months) are whole only
-- from the next hour (`games_since`, as `agents_since`): earlier buckets count hourly marks.
INSERT INTO report_marks (client_id, series, bucket, user_id)
SELECT DISTINCT client_id, 'players:' || provider || '::h', created_at - created_at % 3600000, user_id
FROM game_rounds WHERE fed = 1;
INSERT INTO report_counts (client_id, series, bucket, n)
SELECT client_id, series, bucket, COUNT(*) FROM report_marks WHERE series LIKE 'players:%::h'
GROUP BY client_id, series, bucket;
ALTER TABLE report_zone_series ADD COLUMN games_since INTEGER NOT NULL DEFAULT 0;
UPDATE report_zone_series SET games_since =
    (CAST(strftime('%s', 'now') AS INTEGER) * 1000 / 3600000 + 1) * 3600000;
