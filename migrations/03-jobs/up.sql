-- Processes started through POST /api/v1/processes. `state` is running,
-- exited, signaled, lost (the agent stopped while it ran) or failed.
CREATE TABLE jobs (
    id          INTEGER PRIMARY KEY,
    actor       TEXT    NOT NULL,
    command     TEXT    NOT NULL,
    args        TEXT    NOT NULL,
    cwd         TEXT,
    pid         INTEGER,
    started_at  INTEGER NOT NULL,
    ended_at    INTEGER,
    state       TEXT    NOT NULL,
    exit_code   INTEGER,
    signal      INTEGER,
    stdout      TEXT    NOT NULL DEFAULT '',
    stderr      TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX jobs_state ON jobs (state);
