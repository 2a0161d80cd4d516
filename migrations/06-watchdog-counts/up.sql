-- `/metrics` counts stored messages per notifier and status, and actions
-- per kind and status, on every scrape: covering indexes keep that a scan
-- of a small index rather than of the rows with their payloads.
CREATE INDEX notifications_notifier_status ON notifications (notifier, status);
CREATE INDEX actions_kind_status ON actions (kind, status);
