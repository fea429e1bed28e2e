-- Issue 17: agent-level rollups, so the agents report and an agent's subtree metrics read
-- O(agents x days) rows instead of every player's hours. Kept by the report feed (money,
-- `store/report_agents.rs`) and by `apply_round` (rounds), in the same transactions as the
-- per-user rows they summarize.
--
-- `day`: the epoch ms of a local midnight in the client's report zone (report_zone_series.zone,
-- UTC while unset), the day of the entry's or round's hour. `agent_id`: for a player, its
-- direct parent (`player` = 1); for any other wallet user (an agent's own wallet), the user
-- itself (`player` = 0). Rows are whole (every entry and round of their days) from the first
-- local midnight at or after max(report_zone_series.since, agents_since); earlier days are
-- read from the per-user rows. A user's parent never changes (no API moves a user); if one
-- ever does, the move must carry the player's rows to the new agent: `nashub check-reports`
-- recomputes these rows from report_money/report_rounds by the users' current parents and
-- names the first day that differs.
CREATE TABLE report_money_agent (
    client_id TEXT NOT NULL,
    day INTEGER NOT NULL,
    agent_id TEXT NOT NULL,
    player INTEGER NOT NULL,
    kind TEXT NOT NULL,
    n INTEGER NOT NULL,
    amount INTEGER NOT NULL,
    PRIMARY KEY (client_id, day, agent_id, player, kind)
) WITHOUT ROWID;

CREATE TABLE report_rounds_agent (
    client_id TEXT NOT NULL,
    day INTEGER NOT NULL,
    agent_id TEXT NOT NULL,
    provider TEXT NOT NULL,
    rounds INTEGER NOT NULL,
    stake INTEGER NOT NULL,
    net INTEGER NOT NULL,
    PRIMARY KEY (client_id, day, agent_id, provider)
) WITHOUT ROWID;

-- Existing clients have no agent rows for their past: whole from the next hour (a series the
-- feed starts later, on a new client or a zone change, resets this to 0 and sets `since`).
ALTER TABLE report_zone_series ADD COLUMN agents_since INTEGER NOT NULL DEFAULT 0;
UPDATE report_zone_series SET agents_since =
    (CAST(strftime('%s', 'now') AS INTEGER) * 1000 / 3600000 + 1) * 3600000;
