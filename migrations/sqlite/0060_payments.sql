-- Payments through external gateways (issue 18). A payment row is the outbox of its state
-- machine: created before any gateway call, moved only forward by conditional updates that post
-- their journal entry in the same transaction.
CREATE TABLE payments (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients(id),
    user_id TEXT NOT NULL REFERENCES users(id),
    kind TEXT NOT NULL CHECK (kind IN ('deposit', 'withdrawal')),
    gateway TEXT NOT NULL,
    account TEXT NOT NULL,
    amount INTEGER NOT NULL CHECK (amount > 0),
    paid_amount INTEGER,
    fee INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL CHECK (state IN ('created', 'pending', 'paid', 'failed', 'expired', 'cancelled', 'requested', 'approved', 'processing', 'rejected')),
    gateway_ref TEXT,
    settlement_ref TEXT,
    checkout_url TEXT,
    destination TEXT,
    flagged INTEGER NOT NULL DEFAULT 0,
    reason TEXT,
    idempotency_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    decided_by TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    settled_at INTEGER,
    UNIQUE (client_id, idempotency_key)
);
CREATE INDEX payments_open ON payments (state, updated_at);
CREATE INDEX payments_client ON payments (client_id, id);
CREATE INDEX payments_user ON payments (user_id, kind, created_at);
CREATE INDEX payments_ref ON payments (gateway, gateway_ref);

-- Verified webhook deliveries, one row per gateway event id (a repeat is recognised here), kept
-- until applied: the inbound outbox.
CREATE TABLE payment_events (
    gateway TEXT NOT NULL,
    event_id TEXT NOT NULL,
    payment_id TEXT,
    event_type TEXT NOT NULL,
    payload TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    processed_at INTEGER,
    PRIMARY KEY (gateway, event_id)
);
CREATE INDEX payment_events_unprocessed ON payment_events (processed_at, received_at);

-- Per-client payment rules (limits, approval threshold): a JSON document.
CREATE TABLE payment_settings (
    client_id TEXT PRIMARY KEY REFERENCES clients(id),
    settings TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
