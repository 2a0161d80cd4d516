-- The watchdog (SPEC §7). Times are UTC milliseconds.

-- One row per episode of a rule being beyond its limit for one subject.
-- An alert that was pending and came back before `for` is deleted, so
-- flapping below `for` leaves nothing behind.
CREATE TABLE alerts (
    id            INTEGER PRIMARY KEY,
    rule          TEXT    NOT NULL,
    metric        TEXT    NOT NULL,
    -- What a person reads ("worker (pid 4242)") and what identifies the
    -- subject across restarts ("pid:4242:start:987654").
    subject       TEXT    NOT NULL,
    subject_key   TEXT    NOT NULL,
    state         TEXT    NOT NULL CHECK (state IN ('pending', 'firing', 'resolved')),
    -- The latest value seen while open, the limit and its sense.
    value         REAL,
    threshold     REAL    NOT NULL,
    op            TEXT    NOT NULL CHECK (op IN ('above', 'below')),
    started_at    INTEGER NOT NULL,
    fired_at      INTEGER,
    resolved_at   INTEGER,
    -- When the last firing or reminder message was queued.
    notified_at   INTEGER
);
-- At most one open alert per rule and subject: what a restart resumes.
CREATE UNIQUE INDEX alerts_open ON alerts (rule, subject_key) WHERE state != 'resolved';
CREATE INDEX alerts_rule ON alerts (rule, id);
CREATE INDEX alerts_resolved_at ON alerts (resolved_at) WHERE resolved_at IS NOT NULL;

CREATE TABLE alert_transitions (
    id         INTEGER PRIMARY KEY,
    alert_id   INTEGER NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    at         INTEGER NOT NULL,
    from_state TEXT    NOT NULL,
    to_state   TEXT    NOT NULL,
    value      REAL
);
CREATE INDEX alert_transitions_alert ON alert_transitions (alert_id, id);

-- The outbox: every message, queued in the transaction of the transition
-- that calls for it, and delivered by the sender with retries.
CREATE TABLE notifications (
    id              INTEGER PRIMARY KEY,
    -- Stable across retries and restarts: the email Message-ID and the
    -- webhook Idempotency-Key.
    message_id      TEXT    NOT NULL UNIQUE,
    alert_id        INTEGER REFERENCES alerts (id) ON DELETE CASCADE,
    notifier        TEXT    NOT NULL,
    -- firing, resolved, repeat or test
    event           TEXT    NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'sent', 'failed', 'silenced')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    sent_at         INTEGER,
    -- The rendered message: one line for a subject, the JSON alert.
    subject         TEXT    NOT NULL,
    payload         TEXT    NOT NULL
);
CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE status = 'pending';
CREATE INDEX notifications_alert ON notifications (alert_id);
CREATE INDEX notifications_status ON notifications (status, id);

-- What a firing alert set in motion: kill, restart or exec.
CREATE TABLE actions (
    id          INTEGER PRIMARY KEY,
    alert_id    INTEGER NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    kind        TEXT    NOT NULL,
    -- The action's settings as the rule gave them, with the subject
    -- (pid and start time for a kill of the offender).
    spec        TEXT    NOT NULL,
    status      TEXT    NOT NULL CHECK (status IN ('pending', 'done', 'failed', 'dry_run', 'silenced')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    outcome     TEXT,
    created_at  INTEGER NOT NULL,
    finished_at INTEGER
);
CREATE INDEX actions_alert ON actions (alert_id);
CREATE INDEX actions_pending ON actions (id) WHERE status = 'pending';

CREATE TABLE silences (
    id         INTEGER PRIMARY KEY,
    rule       TEXT    NOT NULL,
    -- NULL silences every subject of the rule.
    subject    TEXT,
    until      INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    created_by TEXT    NOT NULL,
    comment    TEXT
);
CREATE INDEX silences_until ON silences (until);
