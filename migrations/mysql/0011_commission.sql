-- Issue 21: differential commission up the agent tree, commission statuses, negative
-- carry-over, scheduled settlement (a job lease shared by every node) and the platform's
-- collection of its revenue share.

-- A commission line: `status` calculated -> approved -> paid, or held (held -> approved);
-- `earned` is the period's differential result before carry-over (may be negative),
-- `carried_in` the agent's negative result brought in, `carry_out` what it carries on.
-- Existing lines were paid when their settlement was posted.
ALTER TABLE commissions
    ADD COLUMN status VARCHAR(16) NOT NULL DEFAULT 'approved',
    ADD COLUMN basis VARCHAR(16) NOT NULL DEFAULT 'ngr',
    ADD COLUMN earned BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN carried_in BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN carry_out BIGINT NOT NULL DEFAULT 0,
    ADD KEY commissions_status (client_id, status);
UPDATE commissions SET earned = amount;
UPDATE commissions SET status = 'paid'
    WHERE settlement_id IN (SELECT id FROM settlements WHERE state = 'posted');

-- `manual` (POST .../settlements) or `scheduled` (the settlement scheduler).
ALTER TABLE settlements ADD COLUMN origin VARCHAR(16) NOT NULL DEFAULT 'manual';

-- An agent's own commission rate (set by its parent agent or a client admin); none: the
-- client's `commission_rate`. Always capped by the parent's effective rate.
CREATE TABLE agent_commission_rates (
    user_id VARCHAR(64) NOT NULL PRIMARY KEY,
    client_id VARCHAR(64) NOT NULL,
    rate VARCHAR(16) NOT NULL,
    updated_by VARCHAR(64) NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT agent_commission_rates_user_fk FOREIGN KEY (user_id) REFERENCES users (id),
    CONSTRAINT agent_commission_rates_client_fk FOREIGN KEY (client_id) REFERENCES clients (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- An agent's negative commission result not yet recovered (<= 0), when the client carries
-- negative periods over.
CREATE TABLE commission_carry (
    client_id VARCHAR(64) NOT NULL,
    agent_id VARCHAR(64) NOT NULL,
    amount BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (client_id, agent_id),
    CONSTRAINT commission_carry_client_fk FOREIGN KEY (client_id) REFERENCES clients (id),
    CONSTRAINT commission_carry_agent_fk FOREIGN KEY (agent_id) REFERENCES users (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Background jobs that must run on one node at a time: whoever holds an unexpired lease.
CREATE TABLE job_leases (
    name VARCHAR(64) NOT NULL PRIMARY KEY,
    holder VARCHAR(64) NOT NULL,
    expires_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
INSERT INTO job_leases (name, holder, expires_at) VALUES ('settlement_scheduler', '', 0);

-- The platform's collection of a client's revenue share (direction `collect`) and its reversal
-- (`reverse`), per settlement; fixed here under the client's lock, then posted with a key
-- derived from the row.
CREATE TABLE revenue_collections (
    id VARCHAR(64) NOT NULL PRIMARY KEY,
    client_id VARCHAR(64) NOT NULL,
    settlement_id VARCHAR(64) NOT NULL,
    direction VARCHAR(16) NOT NULL,
    amount BIGINT NOT NULL,
    memo VARCHAR(512) NULL,
    idempotency_key VARCHAR(255) NOT NULL,
    request_hash VARCHAR(64) NOT NULL,
    journal_id VARCHAR(64) NULL,
    created_by VARCHAR(64) NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE KEY revenue_collections_key (client_id, idempotency_key),
    KEY revenue_collections_settlement (settlement_id),
    CONSTRAINT revenue_collections_client_fk FOREIGN KEY (client_id) REFERENCES clients (id),
    CONSTRAINT revenue_collections_settlement_fk FOREIGN KEY (settlement_id) REFERENCES settlements (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
