-- Issues 17 and 22: the money rollup leaves the money transaction. The ledger writes each new
-- journal row with rolled_up = 0; the report feed (`store/report_feed.rs`) adds such rows to
-- `report_money` and sets rolled_up = 1 in one transaction (FOR UPDATE SKIP LOCKED: every
-- node may feed). Rows written before this migration were rolled up by the ledger itself
-- (0050): they keep the default, 1.
ALTER TABLE journal
    ADD COLUMN rolled_up TINYINT NOT NULL DEFAULT 1,
    ADD INDEX journal_unrolled (rolled_up);
