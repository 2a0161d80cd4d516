-- What the watchdog keeps between ticks, so that a restart resumes it
-- rather than forgetting it (SPEC §10).

-- Since when a firing alert has been back within its limit: the
-- `keep_firing_for` clock.
ALTER TABLE alerts ADD COLUMN within_since INTEGER;

-- Each rule's bucket of new alerts (watchdog/engine/limits.rs), written in
-- the transaction of the alerts that spent it.
CREATE TABLE watchdog_budgets (
    rule   TEXT    PRIMARY KEY,
    tokens REAL    NOT NULL,
    at     INTEGER NOT NULL
) WITHOUT ROWID;

-- The latest results of each probe, at most `watchdog.probe_results` each.
CREATE TABLE probe_results (
    probe      TEXT    NOT NULL,
    at         INTEGER NOT NULL,
    ok         INTEGER NOT NULL,
    latency_ms REAL    NOT NULL,
    error      TEXT,
    PRIMARY KEY (probe, at)
) WITHOUT ROWID;
