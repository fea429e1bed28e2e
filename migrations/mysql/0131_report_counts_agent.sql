-- Issue 17: distinct users per agent, so an agent's subtree metrics read O(agents x buckets)
-- rows instead of every player's hours. Kept by the report feed in its transaction
-- (`feed_agent_counts`, store/sql_report_agents.rs) from the marks it adds and the first
-- deposits it moves.
--
-- `agent_id`: as in report_money_agent (0113), a player's direct parent, any other user
-- itself (players without a parent are not counted). A player has exactly one parent, so the
-- distinct users of a subtree in a bucket are the sum of `n` over the subtree's agents.
-- Series: `active:*` and `depositing:*` of report_marks (hours, and the zone series' days,
-- weeks and months: `n` = that agent's marks of the bucket), and `first_deposit` (hours:
-- users whose first deposit, report_first_deposits.hour, is in the hour). Backfilled below
-- from the marks and first deposits, so these rows are whole wherever report_counts is: the
-- hours always, a zone series from report_zone_series.since. `nashub check-reports`
-- recomputes them from report_marks, report_first_deposits and the users' current parents.
CREATE TABLE report_counts_agent (
    client_id VARCHAR(64) NOT NULL,
    series VARCHAR(80) NOT NULL,
    agent_id VARCHAR(64) NOT NULL,
    bucket BIGINT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (client_id, series, agent_id, bucket)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

INSERT INTO report_counts_agent (client_id, series, agent_id, bucket, n)
SELECT client_id, series, agent_id, bucket, COUNT(*) FROM (
    SELECT m.client_id AS client_id, m.series AS series, m.bucket AS bucket,
        CASE WHEN u.role = 'player' THEN u.parent_id ELSE u.id END AS agent_id
    FROM report_marks m JOIN users u ON u.id = m.user_id
    WHERE m.series LIKE 'active:%' OR m.series LIKE 'depositing:%'
) x WHERE agent_id IS NOT NULL GROUP BY client_id, series, agent_id, bucket;

INSERT INTO report_counts_agent (client_id, series, agent_id, bucket, n)
SELECT client_id, 'first_deposit', agent_id, hour, COUNT(*) FROM (
    SELECT f.client_id AS client_id, f.hour AS hour,
        CASE WHEN u.role = 'player' THEN u.parent_id ELSE u.id END AS agent_id
    FROM report_first_deposits f JOIN users u ON u.id = f.user_id
) x WHERE agent_id IS NOT NULL GROUP BY client_id, agent_id, hour;

-- A subtree's players registered before or within a period (a range of this index, not every
-- player of the client by created_at).
CREATE INDEX users_client_role_path ON users (client_id, role, path(700), created_at);
