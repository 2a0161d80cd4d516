-- Every control action, allowed or refused: who (the token's name), what,
-- on what, and how it ended.
CREATE TABLE audit (
    id      INTEGER PRIMARY KEY,
    at      INTEGER NOT NULL,
    actor   TEXT    NOT NULL,
    action  TEXT    NOT NULL,
    target  TEXT,
    outcome TEXT    NOT NULL,
    detail  TEXT
);
CREATE INDEX audit_at ON audit (at);
