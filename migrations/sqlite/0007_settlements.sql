-- Period settlements: agents' commission on their players' net gaming revenue (NGR) and the
-- platform's revenue share of the client's NGR after commission. The figures are fixed here
-- first (one transaction), then posted as journal entries whose idempotency keys derive from
-- these rows, so a crash between the two resumes without paying anything twice.
CREATE TABLE settlements (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients(id),
    idempotency_key TEXT NOT NULL,
    period_start INTEGER NOT NULL,
    period_end INTEGER NOT NULL,
    currency TEXT NOT NULL,
    ngr INTEGER NOT NULL,
    state TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    posted_at INTEGER,
    UNIQUE (client_id, idempotency_key),
    UNIQUE (client_id, period_start)
);

CREATE TABLE commissions (
    settlement_id TEXT NOT NULL REFERENCES settlements(id),
    agent_id TEXT NOT NULL REFERENCES users(id),
    client_id TEXT NOT NULL REFERENCES clients(id),
    players INTEGER NOT NULL,
    ngr INTEGER NOT NULL,
    rate TEXT NOT NULL,
    amount INTEGER NOT NULL,
    journal_id TEXT,
    PRIMARY KEY (settlement_id, agent_id)
);
CREATE INDEX commissions_agent ON commissions (agent_id, settlement_id);

CREATE TABLE revenue_shares (
    settlement_id TEXT PRIMARY KEY REFERENCES settlements(id),
    client_id TEXT NOT NULL REFERENCES clients(id),
    base INTEGER NOT NULL,
    rate TEXT NOT NULL,
    amount INTEGER NOT NULL,
    journal_id TEXT
);
