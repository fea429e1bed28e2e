-- Notifications (issue 5). A row with user_id NULL is a client-wide notice (room client:<id>);
-- read state is per reader in notification_reads, so each member of a client reads a
-- client-wide notice independently.
CREATE TABLE notifications (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients(id),
    user_id TEXT REFERENCES users(id),
    sender_id TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX notifications_user ON notifications (user_id, id);
CREATE INDEX notifications_client ON notifications (client_id, id);

CREATE TABLE notification_reads (
    notification_id TEXT NOT NULL REFERENCES notifications(id),
    user_id TEXT NOT NULL REFERENCES users(id),
    client_id TEXT NOT NULL REFERENCES clients(id),
    read_at INTEGER NOT NULL,
    PRIMARY KEY (notification_id, user_id)
);
