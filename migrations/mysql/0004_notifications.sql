-- Notifications (issue 5). A row with user_id NULL is a client-wide notice (room client:<id>);
-- read state is per reader in notification_reads, so each member of a client reads a
-- client-wide notice independently.
CREATE TABLE notifications (
    id VARCHAR(64) NOT NULL PRIMARY KEY,
    client_id VARCHAR(64) NOT NULL,
    user_id VARCHAR(64) NULL,
    sender_id VARCHAR(64) NOT NULL,
    title VARCHAR(255) NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    KEY notifications_user (user_id, id),
    KEY notifications_client (client_id, id),
    CONSTRAINT notifications_client_fk FOREIGN KEY (client_id) REFERENCES clients (id),
    CONSTRAINT notifications_user_fk FOREIGN KEY (user_id) REFERENCES users (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE notification_reads (
    notification_id VARCHAR(64) NOT NULL,
    user_id VARCHAR(64) NOT NULL,
    client_id VARCHAR(64) NOT NULL,
    read_at BIGINT NOT NULL,
    PRIMARY KEY (notification_id, user_id),
    CONSTRAINT notification_reads_fk FOREIGN KEY (notification_id) REFERENCES notifications (id),
    CONSTRAINT notification_reads_user_fk FOREIGN KEY (user_id) REFERENCES users (id),
    CONSTRAINT notification_reads_client_fk FOREIGN KEY (client_id) REFERENCES clients (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
