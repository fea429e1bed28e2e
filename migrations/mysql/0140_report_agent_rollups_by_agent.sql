-- Issue 17: an agent's days of the agent rollups, so a subtree's client metrics read only its
-- agents' rows (the primary keys lead with the day: every agent's rows of each day).
CREATE INDEX report_money_agent_by_agent ON report_money_agent (client_id, agent_id, day);
CREATE INDEX report_rounds_agent_by_agent ON report_rounds_agent (client_id, agent_id, day);
