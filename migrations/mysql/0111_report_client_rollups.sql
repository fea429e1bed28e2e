-- Issue 17: rollups a client-wide report reads in milliseconds, all fed by the report feed
-- (`store/report_feed.rs`) except the rounds' own, kept in `apply_round`'s transaction.

-- Money and rounds per client and hour, without the user column of report_money/report_rounds.
CREATE TABLE report_money_client (
    client_id VARCHAR(64) NOT NULL,
    hour BIGINT NOT NULL,
    kind VARCHAR(32) NOT NULL,
    n BIGINT NOT NULL,
    amount BIGINT NOT NULL,
    PRIMARY KEY (client_id, hour, kind)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
INSERT INTO report_money_client (client_id, hour, kind, n, amount)
SELECT client_id, hour, kind, SUM(n), SUM(amount) FROM report_money GROUP BY client_id, hour, kind;

CREATE TABLE report_rounds_client (
    client_id VARCHAR(64) NOT NULL,
    hour BIGINT NOT NULL,
    provider VARCHAR(32) NOT NULL,
    rounds BIGINT NOT NULL,
    stake BIGINT NOT NULL,
    net BIGINT NOT NULL,
    PRIMARY KEY (client_id, hour, provider)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
INSERT INTO report_rounds_client (client_id, hour, provider, rounds, stake, net)
SELECT client_id, hour, provider, SUM(rounds), SUM(stake), SUM(net) FROM report_rounds
GROUP BY client_id, hour, provider;

-- Distinct users per bucket. A mark says a user counted once in a series' bucket; `n` of
-- report_counts is the number of marks. Series: `active:h`, `depositing:h`, `players:<provider>:h`
-- (players with a round at the provider) (UTC hours, every
-- whole-hour zone's hours), `<what>:<d|w|m>:<zone>` (days, weeks from Monday and
-- months in the client's `timezone`, complete from report_zone_series.since), `first_deposit`
-- (counts only: first deposits per hour, one row per user in report_first_deposits).
CREATE TABLE report_marks (
    client_id VARCHAR(64) NOT NULL,
    series VARCHAR(80) NOT NULL,
    bucket BIGINT NOT NULL,
    user_id VARCHAR(64) NOT NULL,
    PRIMARY KEY (client_id, series, bucket, user_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE report_counts (
    client_id VARCHAR(64) NOT NULL,
    series VARCHAR(80) NOT NULL,
    bucket BIGINT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (client_id, series, bucket)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE report_first_deposits (
    client_id VARCHAR(64) NOT NULL,
    user_id VARCHAR(64) NOT NULL,
    hour BIGINT NOT NULL,
    PRIMARY KEY (client_id, user_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
-- The zone of a client's day/week/month series and the first hour from which they are whole.
CREATE TABLE report_zone_series (
    client_id VARCHAR(64) NOT NULL PRIMARY KEY,
    zone VARCHAR(80) NOT NULL,
    since BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

INSERT INTO report_marks (client_id, series, bucket, user_id)
SELECT m.client_id, 'active:h', m.hour, m.user_id FROM report_money m
JOIN users u ON u.id = m.user_id AND u.role = 'player'
UNION
SELECT client_id, 'active:h', hour, user_id FROM report_rounds;
INSERT INTO report_marks (client_id, series, bucket, user_id)
SELECT DISTINCT client_id, 'depositing:h', hour, user_id FROM report_money
WHERE kind = 'deposit' AND user_id <> '';
INSERT INTO report_marks (client_id, series, bucket, user_id)
SELECT DISTINCT client_id, CONCAT('players:', provider, ':h'), hour, user_id FROM report_rounds;
INSERT INTO report_first_deposits (client_id, user_id, hour)
SELECT client_id, user_id, MIN(hour) FROM report_money WHERE kind = 'deposit' AND user_id <> ''
GROUP BY client_id, user_id;
INSERT INTO report_counts (client_id, series, bucket, n)
SELECT client_id, series, bucket, COUNT(*) FROM report_marks GROUP BY client_id, series, bucket;
INSERT INTO report_counts (client_id, series, bucket, n)
SELECT client_id, 'first_deposit', hour, COUNT(*) FROM report_first_deposits GROUP BY client_id, hour;

-- Clients so far have entries fed without zone marks: a placeholder zone, so the feed starts
-- their series whole only from the next hour (a client created later starts whole from 0).
INSERT INTO report_zone_series (client_id, zone, since) SELECT id, '', 0 FROM clients;

-- Players registered per hour (registered/new in client metrics).
CREATE INDEX users_client_role_created ON users (client_id, role, created_at);

-- New rounds wait for the feed (their players' activity); rounds before this migration were
-- marked above from report_rounds.
ALTER TABLE game_rounds
    ADD COLUMN fed TINYINT NOT NULL DEFAULT 1,
    ADD INDEX game_rounds_unfed (fed);
