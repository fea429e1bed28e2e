-- Issue 17: concurrent websocket users per client. Every node writes, once a minute
-- (`report_ws_sample_secs`), how many of a client's users hold a live websocket on it; a
-- report's peak is the largest sum over nodes of a minute, its average the mean over the
-- bucket's elapsed minutes (a minute without rows had none).
CREATE TABLE report_ws_samples (
    client_id TEXT NOT NULL,
    minute INTEGER NOT NULL,
    node_id TEXT NOT NULL,
    users INTEGER NOT NULL,
    PRIMARY KEY (client_id, minute, node_id)
) WITHOUT ROWID;
