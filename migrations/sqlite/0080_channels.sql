-- Channels (issue 19): verified contact details, per-channel preferences, per-client templates
-- and channel settings, the outbox of email/SMS messages, and the devices a user logged in from.

-- One address per user and channel (email, sms). A change clears verified_at and stores a new
-- code hash; the code itself exists only in the message that carries it.
CREATE TABLE user_contacts (
    user_id TEXT NOT NULL REFERENCES users(id),
    channel TEXT NOT NULL,
    client_id TEXT NOT NULL REFERENCES clients(id),
    address TEXT NOT NULL,
    verified_at INTEGER,
    code_hash TEXT,
    code_expires_at INTEGER NOT NULL DEFAULT 0,
    code_attempts INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, channel)
);

-- Absent row: the default (transactional on, marketing off).
CREATE TABLE channel_preferences (
    user_id TEXT NOT NULL REFERENCES users(id),
    channel TEXT NOT NULL,
    category TEXT NOT NULL,
    opted_in INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, channel, category)
);

CREATE TABLE user_languages (
    user_id TEXT PRIMARY KEY REFERENCES users(id),
    language TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE client_channel_settings (
    client_id TEXT PRIMARY KEY REFERENCES clients(id),
    default_language TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE channel_templates (
    client_id TEXT NOT NULL REFERENCES clients(id),
    template TEXT NOT NULL,
    language TEXT NOT NULL,
    subject TEXT NOT NULL,
    text_body TEXT NOT NULL,
    html_body TEXT,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (client_id, template, language)
);

-- The outbox: one row per message and channel, rendered when queued.
CREATE TABLE channel_messages (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients(id),
    user_id TEXT REFERENCES users(id),
    channel TEXT NOT NULL,
    template TEXT NOT NULL,
    category TEXT NOT NULL,
    recipient TEXT NOT NULL,
    language TEXT NOT NULL,
    subject TEXT NOT NULL,
    text_body TEXT NOT NULL,
    html_body TEXT,
    state TEXT NOT NULL,
    reason TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_owner TEXT,
    lease_until INTEGER NOT NULL DEFAULT 0,
    provider_ref TEXT,
    dedupe_key TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    sent_at INTEGER,
    delivered_at INTEGER
);
CREATE INDEX channel_messages_due ON channel_messages (state, next_attempt_at);
CREATE INDEX channel_messages_client ON channel_messages (client_id, state, id);
CREATE INDEX channel_messages_user ON channel_messages (user_id, id);
CREATE INDEX channel_messages_ref ON channel_messages (provider_ref);
CREATE INDEX channel_messages_client_sent ON channel_messages (client_id, sent_at);
CREATE INDEX channel_messages_recipient_sent ON channel_messages (recipient, sent_at);
CREATE UNIQUE INDEX channel_messages_dedupe ON channel_messages (client_id, dedupe_key);

-- What a user logged in from (hashes of the user agent and of the IP): a new one is notified.
CREATE TABLE user_devices (
    user_id TEXT NOT NULL REFERENCES users(id),
    kind TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    PRIMARY KEY (user_id, kind, fingerprint)
);
