-- Rows of the same caller not written just before this one: they came
-- faster than the audit's rate (src/api/audit_rate.rs). A row with
-- action 'audit.suppressed' exists only to carry this count.
ALTER TABLE audit ADD COLUMN suppressed INTEGER NOT NULL DEFAULT 0;
