-- A closed user's accounts take no movement (issue #25): the ledger writers read this flag under
-- the same lock as the balance, so every path that posts money refuses them.
ALTER TABLE accounts ADD COLUMN closed INTEGER NOT NULL DEFAULT 0;

UPDATE accounts SET closed = 1
WHERE user_id IN (SELECT id FROM users WHERE status = 'closed');
