-- Issue 17: distinct users over any run of whole days in a few rows per day
-- (`store/report_spans.rs`): the platform overview's 30-day bucket no longer counts the
-- distinct users of every hourly mark. Kept by the report feed with the day marks it adds.

-- Per day series (`active:d:<zone>`, `depositing:d:<zone>`), day and the previous day the
-- same user is marked on (-1: none), how many users. Distinct users of [a, b):
-- SUM(n) WHERE a <= day < b AND prev_day < a.
CREATE TABLE report_day_spans (
    client_id TEXT NOT NULL,
    series TEXT NOT NULL,
    day INTEGER NOT NULL,
    prev_day INTEGER NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (client_id, series, day, prev_day)
) WITHOUT ROWID;
-- Each user's last marked day per series: the previous day of the next day fed.
CREATE TABLE report_user_last_day (
    client_id TEXT NOT NULL,
    series TEXT NOT NULL,
    user_id TEXT NOT NULL,
    day INTEGER NOT NULL,
    PRIMARY KEY (client_id, series, user_id)
) WITHOUT ROWID;

-- From the day marks so far (`check-reports` recomputes them the same way).
INSERT INTO report_day_spans (client_id, series, day, prev_day, n)
SELECT client_id, series, day, prev_day, COUNT(*) FROM (
    SELECT client_id, series, bucket AS day, COALESCE(LAG(bucket) OVER
        (PARTITION BY client_id, series, user_id ORDER BY bucket), -1) AS prev_day
    FROM report_marks WHERE series LIKE 'active:d:%' OR series LIKE 'depositing:d:%'
) s GROUP BY client_id, series, day, prev_day;
INSERT INTO report_user_last_day (client_id, series, user_id, day)
SELECT client_id, series, user_id, MAX(bucket) FROM report_marks
WHERE series LIKE 'active:d:%' OR series LIKE 'depositing:d:%'
GROUP BY client_id, series, user_id;
