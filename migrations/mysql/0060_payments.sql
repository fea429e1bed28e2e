-- Payments through external gateways (issue 18). A payment row is the outbox of its state
-- machine: created before any gateway call, moved only forward by conditional updates that post
-- their journal entry in the same transaction.
CREATE TABLE payments (
    id VARCHAR(64) NOT NULL PRIMARY KEY,
    client_id VARCHAR(64) NOT NULL,
    user_id VARCHAR(64) NOT NULL,
    kind VARCHAR(16) NOT NULL,
    gateway VARCHAR(32) NOT NULL,
    account VARCHAR(128) NOT NULL,
    amount BIGINT NOT NULL,
    paid_amount BIGINT NULL,
    fee BIGINT NOT NULL DEFAULT 0,
    state VARCHAR(16) NOT NULL,
    gateway_ref VARCHAR(128) NULL,
    settlement_ref VARCHAR(128) NULL,
    checkout_url VARCHAR(512) NULL,
    destination VARCHAR(128) NULL,
    flagged BIGINT NOT NULL DEFAULT 0,
    reason VARCHAR(255) NULL,
    idempotency_key VARCHAR(255) NOT NULL,
    request_hash VARCHAR(128) NOT NULL,
    requested_by VARCHAR(64) NOT NULL,
    decided_by VARCHAR(64) NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    settled_at BIGINT NULL,
    UNIQUE KEY payments_idempotency (client_id, idempotency_key),
    KEY payments_open (state, updated_at),
    KEY payments_client (client_id, id),
    KEY payments_user (user_id, kind, created_at),
    KEY payments_ref (gateway, gateway_ref),
    CONSTRAINT payments_client_fk FOREIGN KEY (client_id) REFERENCES clients (id),
    CONSTRAINT payments_user_fk FOREIGN KEY (user_id) REFERENCES users (id),
    CONSTRAINT payments_kind CHECK (kind IN ('deposit', 'withdrawal')),
    CONSTRAINT payments_amount CHECK (amount > 0),
    CONSTRAINT payments_state CHECK (state IN ('created', 'pending', 'paid', 'failed', 'expired', 'cancelled', 'requested', 'approved', 'processing', 'rejected'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE payment_events (
    gateway VARCHAR(32) NOT NULL,
    event_id VARCHAR(128) NOT NULL,
    payment_id VARCHAR(64) NULL,
    event_type VARCHAR(64) NOT NULL,
    payload MEDIUMTEXT NOT NULL,
    received_at BIGINT NOT NULL,
    processed_at BIGINT NULL,
    PRIMARY KEY (gateway, event_id),
    KEY payment_events_unprocessed (processed_at, received_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE payment_settings (
    client_id VARCHAR(64) NOT NULL PRIMARY KEY,
    settings TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT payment_settings_client_fk FOREIGN KEY (client_id) REFERENCES clients (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
