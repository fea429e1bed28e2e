-- Channels (issue 19): verified contact details, per-channel preferences, per-client templates
-- and channel settings, the outbox of email/SMS messages, and the devices a user logged in from.

CREATE TABLE user_contacts (
    user_id VARCHAR(64) NOT NULL,
    channel VARCHAR(16) NOT NULL,
    client_id VARCHAR(64) NOT NULL,
    address VARCHAR(320) NOT NULL,
    verified_at BIGINT NULL,
    code_hash VARCHAR(128) NULL,
    code_expires_at BIGINT NOT NULL DEFAULT 0,
    code_attempts INT NOT NULL DEFAULT 0,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, channel),
    CONSTRAINT user_contacts_user_fk FOREIGN KEY (user_id) REFERENCES users (id),
    CONSTRAINT user_contacts_client_fk FOREIGN KEY (client_id) REFERENCES clients (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE channel_preferences (
    user_id VARCHAR(64) NOT NULL,
    channel VARCHAR(16) NOT NULL,
    category VARCHAR(16) NOT NULL,
    opted_in INT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, channel, category),
    CONSTRAINT channel_preferences_user_fk FOREIGN KEY (user_id) REFERENCES users (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE user_languages (
    user_id VARCHAR(64) NOT NULL PRIMARY KEY,
    language VARCHAR(16) NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT user_languages_user_fk FOREIGN KEY (user_id) REFERENCES users (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE client_channel_settings (
    client_id VARCHAR(64) NOT NULL PRIMARY KEY,
    default_language VARCHAR(16) NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT client_channel_settings_fk FOREIGN KEY (client_id) REFERENCES clients (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE channel_templates (
    client_id VARCHAR(64) NOT NULL,
    template VARCHAR(40) NOT NULL,
    language VARCHAR(16) NOT NULL,
    subject VARCHAR(255) NOT NULL,
    text_body TEXT NOT NULL,
    html_body TEXT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (client_id, template, language),
    CONSTRAINT channel_templates_client_fk FOREIGN KEY (client_id) REFERENCES clients (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE channel_messages (
    id VARCHAR(64) NOT NULL PRIMARY KEY,
    client_id VARCHAR(64) NOT NULL,
    user_id VARCHAR(64) NULL,
    channel VARCHAR(16) NOT NULL,
    template VARCHAR(40) NOT NULL,
    category VARCHAR(16) NOT NULL,
    recipient VARCHAR(320) NOT NULL,
    language VARCHAR(16) NOT NULL,
    subject VARCHAR(255) NOT NULL,
    text_body TEXT NOT NULL,
    html_body TEXT NULL,
    state VARCHAR(16) NOT NULL,
    reason VARCHAR(255) NULL,
    attempts INT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_owner VARCHAR(64) NULL,
    lease_until BIGINT NOT NULL DEFAULT 0,
    provider_ref VARCHAR(128) NULL,
    dedupe_key VARCHAR(191) NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    sent_at BIGINT NULL,
    delivered_at BIGINT NULL,
    KEY channel_messages_due (state, next_attempt_at),
    KEY channel_messages_client (client_id, state, id),
    KEY channel_messages_user (user_id, id),
    KEY channel_messages_ref (provider_ref),
    KEY channel_messages_client_sent (client_id, sent_at),
    KEY channel_messages_recipient_sent (recipient(191), sent_at),
    UNIQUE KEY channel_messages_dedupe (client_id, dedupe_key),
    CONSTRAINT channel_messages_client_fk FOREIGN KEY (client_id) REFERENCES clients (id),
    CONSTRAINT channel_messages_user_fk FOREIGN KEY (user_id) REFERENCES users (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE user_devices (
    user_id VARCHAR(64) NOT NULL,
    kind VARCHAR(8) NOT NULL,
    fingerprint VARCHAR(64) NOT NULL,
    first_seen BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    PRIMARY KEY (user_id, kind, fingerprint),
    CONSTRAINT user_devices_user_fk FOREIGN KEY (user_id) REFERENCES users (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
