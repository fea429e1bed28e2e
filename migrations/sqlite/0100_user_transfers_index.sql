-- Issue 17 (GraphQL): a user's provider transfers, newest first (`User.transfers`), by index.
CREATE INDEX provider_transfers_user_id ON provider_transfers (user_id, id);
