-- A filesystem that did not answer statfs in a check (a hung NFS or FUSE
-- mount), or answered with an error: listed in that check with no sizes.
-- Apart from check_disks, whose sizes stay NOT NULL for the aggregates.
CREATE TABLE check_disk_faults (
    check_id INTEGER NOT NULL REFERENCES checks (id) ON DELETE CASCADE,
    mount    TEXT    NOT NULL,
    device   TEXT    NOT NULL,
    fs_type  TEXT    NOT NULL,
    error    TEXT    NOT NULL,
    PRIMARY KEY (check_id, mount)
) WITHOUT ROWID;

-- hostwatch's mark in the file's header ("hstw"): a database of another
-- program is refused at start rather than written into (store::vet).
PRAGMA application_id = 1752396919;
