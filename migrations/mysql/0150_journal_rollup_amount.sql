-- Issue 17: the money path stores each entry's report_money amount (report_feed::money_rollup_of)
-- on its journal row, so the report feed reads no postings. NULL on rows written before: the
-- feed sums those from their postings. (A trailing nullable column: an instant ALTER.)
ALTER TABLE journal ADD COLUMN rollup_amount BIGINT NULL;
