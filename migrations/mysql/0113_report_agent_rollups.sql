-- Issue 17: agent-level rollups (see migrations/sqlite/0113_report_agent_rollups.sql).
CREATE TABLE report_money_agent (
    client_id VARCHAR(64) NOT NULL,
    day BIGINT NOT NULL,
    agent_id VARCHAR(64) NOT NULL,
    player BIGINT NOT NULL,
    kind VARCHAR(32) NOT NULL,
    n BIGINT NOT NULL,
    amount BIGINT NOT NULL,
    PRIMARY KEY (client_id, day, agent_id, player, kind)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE report_rounds_agent (
    client_id VARCHAR(64) NOT NULL,
    day BIGINT NOT NULL,
    agent_id VARCHAR(64) NOT NULL,
    provider VARCHAR(32) NOT NULL,
    rounds BIGINT NOT NULL,
    stake BIGINT NOT NULL,
    net BIGINT NOT NULL,
    PRIMARY KEY (client_id, day, agent_id, provider)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

ALTER TABLE report_zone_series ADD COLUMN agents_since BIGINT NOT NULL DEFAULT 0;
UPDATE report_zone_series SET agents_since = (FLOOR(UNIX_TIMESTAMP() * 1000 / 3600000) + 1) * 3600000;
