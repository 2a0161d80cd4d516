-- What each remote-write receiver has acknowledged: the last check it was
-- sent (its id, and the newest sample time sent, which a clock that stepped
-- back can leave ahead of that check's own), so that a restart or an outage
-- resumes where it stopped and never sends a sample twice. A receiver is
-- known by the SHA-256 of its URL (hex), whose path may be a secret.
CREATE TABLE remote_write_cursors (
    receiver   TEXT    PRIMARY KEY,
    check_id   INTEGER NOT NULL,
    sent_until INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;
