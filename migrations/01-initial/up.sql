-- One row per check; a part that could not be read leaves its columns NULL
-- (has_* say whether a list part was read at all, so an empty list differs
-- from a missing one). Times are milliseconds since the Unix epoch, UTC.
CREATE TABLE checks (
    id              INTEGER PRIMARY KEY,
    taken_at        INTEGER NOT NULL,
    duration_ms     REAL    NOT NULL,
    cpu_percent     REAL,
    load1           REAL,
    load5           REAL,
    load15          REAL,
    mem_total       INTEGER,
    mem_used        INTEGER,
    mem_available   INTEGER,
    mem_percent     REAL,
    swap_total      INTEGER,
    swap_used       INTEGER,
    swap_percent    REAL,
    io_interval_ms  INTEGER,
    io_read         INTEGER,
    io_written      INTEGER,
    io_received     INTEGER,
    io_sent         INTEGER,
    has_disks       INTEGER NOT NULL,
    has_services    INTEGER NOT NULL,
    has_top         INTEGER NOT NULL
);
CREATE INDEX checks_taken_at ON checks (taken_at);

CREATE TABLE check_disks (
    check_id    INTEGER NOT NULL REFERENCES checks (id) ON DELETE CASCADE,
    mount       TEXT    NOT NULL,
    device      TEXT    NOT NULL,
    fs_type     TEXT    NOT NULL,
    total_bytes INTEGER NOT NULL,
    used_bytes  INTEGER NOT NULL,
    percent     REAL    NOT NULL,
    PRIMARY KEY (check_id, mount)
) WITHOUT ROWID;
-- Disk history and summaries follow one mount across checks.
CREATE INDEX check_disks_mount ON check_disks (mount, check_id);

CREATE TABLE check_services (
    check_id INTEGER NOT NULL REFERENCES checks (id) ON DELETE CASCADE,
    name     TEXT    NOT NULL,
    state    TEXT    NOT NULL,
    healthy  INTEGER,
    probe_ms REAL,
    PRIMARY KEY (check_id, name)
) WITHOUT ROWID;
CREATE INDEX check_services_name ON check_services (name, check_id);

CREATE TABLE check_processes (
    check_id    INTEGER NOT NULL REFERENCES checks (id) ON DELETE CASCADE,
    rank        INTEGER NOT NULL,
    pid         INTEGER NOT NULL,
    name        TEXT    NOT NULL,
    user        TEXT,
    cpu_percent REAL    NOT NULL,
    rss_bytes   INTEGER NOT NULL,
    PRIMARY KEY (check_id, rank)
) WITHOUT ROWID;
