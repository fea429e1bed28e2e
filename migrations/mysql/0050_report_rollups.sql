-- Issue 17: report rollups, hourly UTC buckets (`hour` = epoch ms of the hour's start), kept in
-- the transaction that moves the money (`store/ledger/write.rs`, one upsert per distinct key
-- per batch) or applies the round (`apply_round`). `nashub check-reports` recomputes both from
-- the journal and `game_rounds` with the same definitions as the backfill below.

-- Journal money per client, hour (of the entry's `created_at`), kind and user (the owner of the
-- entry's subject account when it is a wallet, else ''). `amount` is the subject account's leg,
-- or, when the subject has none (a game result names the player's wallet), the
-- `held_at_provider` leg: the player's net win.
CREATE TABLE report_money (
    client_id VARCHAR(64) NOT NULL,
    hour BIGINT NOT NULL,
    kind VARCHAR(32) NOT NULL,
    user_id VARCHAR(64) NOT NULL,
    n BIGINT NOT NULL,
    amount BIGINT NOT NULL,
    PRIMARY KEY (client_id, hour, kind, user_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Rounds per client, hour of the round (first applied: `game_rounds.created_at`, so a later
-- version lands in the round's own hour), provider and player: rounds first applied, the
-- latest versions' stakes (turnover) and net results (payout - stake).
CREATE TABLE report_rounds (
    client_id VARCHAR(64) NOT NULL,
    hour BIGINT NOT NULL,
    provider VARCHAR(32) NOT NULL,
    user_id VARCHAR(64) NOT NULL,
    rounds BIGINT NOT NULL,
    stake BIGINT NOT NULL,
    net BIGINT NOT NULL,
    PRIMARY KEY (client_id, hour, provider, user_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

INSERT INTO report_money (client_id, hour, kind, user_id, n, amount)
SELECT client_id, hour, kind, user_id, COUNT(*), SUM(amount) FROM (
    SELECT j.client_id AS client_id, j.created_at - j.created_at % 3600000 AS hour, j.kind AS kind,
           CASE WHEN j.subject_account_id LIKE 'w:%' THEN SUBSTR(j.subject_account_id, 3) ELSE '' END AS user_id,
           COALESCE(SUM(CASE WHEN p.account_id = j.subject_account_id THEN p.amount END),
                    SUM(CASE WHEN p.account_id LIKE '%:held_at_provider:%' THEN p.amount END), 0) AS amount
    FROM journal j JOIN postings p ON p.journal_id = j.id
    GROUP BY j.id, j.client_id, j.created_at, j.kind, j.subject_account_id
) e
GROUP BY client_id, hour, kind, user_id;

INSERT INTO report_rounds (client_id, hour, provider, user_id, rounds, stake, net)
SELECT client_id, created_at - created_at % 3600000, provider, user_id, COUNT(*), SUM(stake), SUM(net)
FROM game_rounds
GROUP BY client_id, created_at - created_at % 3600000, provider, user_id;

-- A player's history (reports), newest first.
CREATE INDEX game_rounds_user ON game_rounds (client_id, user_id, created_at);
CREATE INDEX provider_transfers_user ON provider_transfers (user_id, created_at);
