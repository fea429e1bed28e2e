-- Issue 17: players registered per client and hour, kept as `report_counts` series
-- `registered` (bucket: the hour of `created_at`), so client metrics and the platform overview
-- read a few rows per day instead of counting the client's players (100k players on MariaDB:
-- ~45 of a client-metrics request's ~60 ms). Kept in the transaction that inserts a player
-- (`count_new_players`, store/sql_reports.rs), like `report_players_agent` (migration 0145):
-- no API moves a user, changes its role or deletes it. `nashub check-reports` recomputes it
-- from `users`. An older node still running during a rolling upgrade inserts players without
-- it: run `nashub check-reports` after the upgrade.
INSERT INTO report_counts (client_id, series, bucket, n)
SELECT client_id, 'registered', created_at - created_at % 3600000, COUNT(*) FROM users
WHERE role = 'player' AND client_id IS NOT NULL
GROUP BY client_id, created_at - created_at % 3600000;
