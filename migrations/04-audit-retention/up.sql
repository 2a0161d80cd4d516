-- Jobs are purged after storage.audit_retention by when they ended.
CREATE INDEX jobs_ended_at ON jobs (ended_at) WHERE ended_at IS NOT NULL;
