-- Issue 22: on SQLite the report feed follows the journal's rowid instead of marking each row
-- it takes (`UPDATE journal SET rolled_up = 1` rewrote every journal page twice and kept a
-- partial index the money path paid for on every insert). One writer at a time: rowid order is
-- commit order, and the journal never deletes. New rows are still written with rolled_up = 0;
-- an entry is fed when rolled_up = 1 (fed before this migration) or rowid <= journal_rowid.
CREATE TABLE report_feed_cursor (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    -- The last journal rowid fed, and that entry's id ('' when no entry: checked on each feed).
    journal_rowid INTEGER NOT NULL,
    journal_id TEXT NOT NULL
);

-- Just before the first row still waiting (rows waiting were taken in any order until now:
-- those after it already fed are skipped by their rolled_up = 1), else after the last row.
INSERT INTO report_feed_cursor (id, journal_rowid, journal_id)
SELECT 1, c.at, COALESCE((SELECT j.id FROM journal j WHERE j.rowid = c.at), '')
FROM (SELECT COALESCE((SELECT MIN(rowid) FROM journal WHERE rolled_up = 0) - 1,
                      (SELECT MAX(rowid) FROM journal), 0) AS at) c;

DROP INDEX journal_unrolled;
