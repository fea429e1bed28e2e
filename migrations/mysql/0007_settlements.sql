-- Period settlements: agents' commission on their players' net gaming revenue (NGR) and the
-- platform's revenue share of the client's NGR after commission. The figures are fixed here
-- first (one transaction), then posted as journal entries whose idempotency keys derive from
-- these rows, so a crash between the two resumes without paying anything twice.
CREATE TABLE settlements (
    id VARCHAR(64) NOT NULL PRIMARY KEY,
    client_id VARCHAR(64) NOT NULL,
    idempotency_key VARCHAR(255) NOT NULL,
    period_start BIGINT NOT NULL,
    period_end BIGINT NOT NULL,
    currency VARCHAR(8) NOT NULL,
    ngr BIGINT NOT NULL,
    state VARCHAR(16) NOT NULL,
    created_by VARCHAR(64) NOT NULL,
    created_at BIGINT NOT NULL,
    posted_at BIGINT NULL,
    UNIQUE KEY settlements_key (client_id, idempotency_key),
    UNIQUE KEY settlements_period (client_id, period_start),
    CONSTRAINT settlements_client_fk FOREIGN KEY (client_id) REFERENCES clients (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE commissions (
    settlement_id VARCHAR(64) NOT NULL,
    agent_id VARCHAR(64) NOT NULL,
    client_id VARCHAR(64) NOT NULL,
    players BIGINT NOT NULL,
    ngr BIGINT NOT NULL,
    rate VARCHAR(16) NOT NULL,
    amount BIGINT NOT NULL,
    journal_id VARCHAR(64) NULL,
    PRIMARY KEY (settlement_id, agent_id),
    KEY commissions_agent (agent_id, settlement_id),
    CONSTRAINT commissions_settlement_fk FOREIGN KEY (settlement_id) REFERENCES settlements (id),
    CONSTRAINT commissions_agent_fk FOREIGN KEY (agent_id) REFERENCES users (id),
    CONSTRAINT commissions_client_fk FOREIGN KEY (client_id) REFERENCES clients (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE revenue_shares (
    settlement_id VARCHAR(64) NOT NULL PRIMARY KEY,
    client_id VARCHAR(64) NOT NULL,
    base BIGINT NOT NULL,
    rate VARCHAR(16) NOT NULL,
    amount BIGINT NOT NULL,
    journal_id VARCHAR(64) NULL,
    CONSTRAINT revenue_shares_settlement_fk FOREIGN KEY (settlement_id) REFERENCES settlements (id),
    CONSTRAINT revenue_shares_client_fk FOREIGN KEY (client_id) REFERENCES clients (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
