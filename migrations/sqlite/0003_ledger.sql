-- Per-client journal listing, newest first (ids are UUIDv7, so id order is time order).
CREATE INDEX journal_client_id ON journal (client_id, id);

-- The house account behind admins' manual adjustments, for clients created before it existed.
INSERT INTO accounts (id, client_id, user_id, kind, currency, balance, version, allow_negative, created_at)
SELECT 'h:' || id || ':adjustments', id, NULL, 'adjustments', currency, 0, 0, 1, created_at
FROM clients
WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = 'h:' || clients.id || ':adjustments');
