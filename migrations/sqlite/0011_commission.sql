-- Issue 21: differential commission up the agent tree, commission statuses, negative
-- carry-over, scheduled settlement (a job lease shared by every node) and the platform's
-- collection of its revenue share.

-- A commission line: `status` calculated -> approved -> paid, or held (held -> approved);
-- `earned` is the period's differential result before carry-over (may be negative),
-- `carried_in` the agent's negative result brought in, `carry_out` what it carries on.
-- Existing lines were paid when their settlement was posted.
ALTER TABLE commissions ADD COLUMN status TEXT NOT NULL DEFAULT 'approved';
ALTER TABLE commissions ADD COLUMN basis TEXT NOT NULL DEFAULT 'ngr';
ALTER TABLE commissions ADD COLUMN earned INTEGER NOT NULL DEFAULT 0;
ALTER TABLE commissions ADD COLUMN carried_in INTEGER NOT NULL DEFAULT 0;
ALTER TABLE commissions ADD COLUMN carry_out INTEGER NOT NULL DEFAULT 0;
UPDATE commissions SET earned = amount;
UPDATE commissions SET status = 'paid'
    WHERE settlement_id IN (SELECT id FROM settlements WHERE state = 'posted');
CREATE INDEX commissions_status ON commissions (client_id, status);

-- `manual` (POST .../settlements) or `scheduled` (the settlement scheduler).
ALTER TABLE settlements ADD COLUMN origin TEXT NOT NULL DEFAULT 'manual';

-- An agent's own commission rate (set by its parent agent or a client admin); none: the
-- client's `commission_rate`. Always capped by the parent's effective rate.
CREATE TABLE agent_commission_rates (
    user_id TEXT PRIMARY KEY REFERENCES users(id),
    client_id TEXT NOT NULL REFERENCES clients(id),
    rate TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);

-- An agent's negative commission result not yet recovered (<= 0), when the client carries
-- negative periods over.
CREATE TABLE commission_carry (
    client_id TEXT NOT NULL REFERENCES clients(id),
    agent_id TEXT NOT NULL REFERENCES users(id),
    amount INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (client_id, agent_id)
);

-- Background jobs that must run on one node at a time: whoever holds an unexpired lease.
CREATE TABLE job_leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
INSERT INTO job_leases (name, holder, expires_at) VALUES ('settlement_scheduler', '', 0);

-- The platform's collection of a client's revenue share (direction `collect`) and its reversal
-- (`reverse`), per settlement; fixed here under the client's lock, then posted with a key
-- derived from the row.
CREATE TABLE revenue_collections (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients(id),
    settlement_id TEXT NOT NULL REFERENCES settlements(id),
    direction TEXT NOT NULL,
    amount INTEGER NOT NULL,
    memo TEXT,
    idempotency_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    journal_id TEXT,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (client_id, idempotency_key)
);
CREATE INDEX revenue_collections_settlement ON revenue_collections (settlement_id);
