-- Hourly roll-ups and history that walks an index in time order.
--
-- A mount's or a service's rows carry their check's time, so their history
-- reads one index in (taken_at, check_id) order: no join, no sort. The
-- indexes cover what history, series and summaries read.
ALTER TABLE check_disks ADD COLUMN taken_at INTEGER NOT NULL DEFAULT 0;
UPDATE check_disks SET taken_at = (SELECT taken_at FROM checks WHERE id = check_id);
DROP INDEX check_disks_mount;
CREATE INDEX check_disks_mount_time ON check_disks (mount, taken_at, check_id, percent);

ALTER TABLE check_services ADD COLUMN taken_at INTEGER NOT NULL DEFAULT 0;
UPDATE check_services SET taken_at = (SELECT taken_at FROM checks WHERE id = check_id);
DROP INDEX check_services_name;
CREATE INDEX check_services_name_time
    ON check_services (name, taken_at, check_id, state, healthy, probe_ms);

-- One row per UTC hour (`hour`: its start, ms since the epoch) with checks
-- in it. Each metric keeps how many values it had (`*_n`), their least,
-- sum and greatest, so hours add up exactly into days or years; avg is
-- sum / n. Maintained in each check's own transaction; filled from the
-- raw checks when this migration runs (see store::rollups).
CREATE TABLE rollup_host (
    hour      INTEGER PRIMARY KEY,
    checks    INTEGER NOT NULL,
    first_at  INTEGER NOT NULL,
    last_at   INTEGER NOT NULL,
    cpu_n     INTEGER NOT NULL,
    cpu_min   REAL,
    cpu_sum   REAL    NOT NULL,
    cpu_max   REAL,
    mem_n     INTEGER NOT NULL,
    mem_min   REAL,
    mem_sum   REAL    NOT NULL,
    mem_max   REAL,
    swap_n    INTEGER NOT NULL,
    swap_min  REAL,
    swap_sum  REAL    NOT NULL,
    swap_max  REAL,
    load1_n   INTEGER NOT NULL,
    load1_min REAL,
    load1_sum REAL    NOT NULL,
    load1_max REAL
);

-- The used share of one filesystem per hour.
CREATE TABLE rollup_disks (
    mount       TEXT    NOT NULL,
    hour        INTEGER NOT NULL,
    percent_n   INTEGER NOT NULL,
    percent_min REAL,
    percent_sum REAL    NOT NULL,
    percent_max REAL,
    PRIMARY KEY (mount, hour)
) WITHOUT ROWID;

-- A service per hour: in how many checks it was seen and running, and its
-- health probe's latency.
CREATE TABLE rollup_services (
    name      TEXT    NOT NULL,
    hour      INTEGER NOT NULL,
    checks    INTEGER NOT NULL,
    running   INTEGER NOT NULL,
    probe_n   INTEGER NOT NULL,
    probe_min REAL,
    probe_sum REAL    NOT NULL,
    probe_max REAL,
    PRIMARY KEY (name, hour)
) WITHOUT ROWID;
