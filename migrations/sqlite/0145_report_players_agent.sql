-- Issue 17: players directly under each agent, so the agents report reads one row per agent
-- instead of counting every user of the client (100k players: most of its time on SQLite).
-- Kept in the transaction that inserts a player (`insert_user`, `insert_users_bulk`,
-- store/sql.rs): no API moves a user or changes its role, so nothing else changes a count.
-- `agent_id`: the player's parent (players without a parent are not counted).
-- `nashub check-reports` recomputes it from `users` and names the first row that differs.
CREATE TABLE report_players_agent (
    client_id TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (client_id, agent_id)
) WITHOUT ROWID;

INSERT INTO report_players_agent (client_id, agent_id, n)
SELECT client_id, parent_id, COUNT(*) FROM users
WHERE role = 'player' AND client_id IS NOT NULL AND parent_id IS NOT NULL
GROUP BY client_id, parent_id;
