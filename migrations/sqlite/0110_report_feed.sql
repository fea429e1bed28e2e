-- Issues 17 and 22: the money rollup leaves the money transaction. The ledger writes each new
-- journal row with rolled_up = 0; the report feed (`store/report_feed.rs`) adds such rows to
-- `report_money` and sets rolled_up = 1 in one transaction. Rows written before this migration
-- were rolled up by the ledger itself (0050): they keep the default, 1.
ALTER TABLE journal ADD COLUMN rolled_up INTEGER NOT NULL DEFAULT 1;

-- Only the waiting rows are indexed: the feed finds them without a scan, and the index stays
-- as small as the backlog.
CREATE INDEX journal_unrolled ON journal (rolled_up) WHERE rolled_up = 0;
