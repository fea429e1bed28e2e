-- Per-client journal listing, newest first (ids are UUIDv7, so id order is time order).
CREATE INDEX journal_client_id ON journal (client_id, id);
