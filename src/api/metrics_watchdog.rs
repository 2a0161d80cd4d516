//! The watchdog's families on `/metrics`: firing alerts per rule, stored
//! messages and actions by status (gauges: they fall as messages are sent
//! and rows purged, so they are levels, not counters), and each probe's
//! latest result. One read of three GROUP BYs over indexes; probes from memory.

use super::Exposition;
use crate::{store::WatchdogCounts, watchdog::Watchdog};
use std::collections::BTreeMap;

pub(super) fn write(out: &mut Exposition, watchdog: &Watchdog, counts: &WatchdogCounts) {
    // Every configured rule, 0 where none fires, so a query can tell
    // "quiet" from "gone"; a rule no longer configured still shows while
    // its alerts fire.
    let mut firing: BTreeMap<&str, u64> = BTreeMap::new();
    let rules = watchdog.rule_names();
    for r in &rules {
        firing.insert(r.as_str(), 0);
    }
    for (rule, n) in &counts.firing {
        firing.insert(rule.as_str(), *n);
    }
    for (rule, n) in firing {
        out.gauge(
            "hostwatch_alerts_firing",
            "Alerts firing now, per rule.",
            &[("rule", rule)],
            n as f64,
        );
    }
    for (notifier, status, n) in &counts.notifications {
        out.gauge(
            "hostwatch_notifications",
            "Messages stored in the outbox, per notifier and status (pending, sent, failed, silenced).",
            &[("notifier", notifier), ("status", status)],
            *n as f64,
        );
    }
    for (kind, status, n) in &counts.actions {
        out.gauge(
            "hostwatch_actions",
            "Actions stored, per kind and status (pending, done, failed, dry_run, silenced).",
            &[("kind", kind), ("status", status)],
            *n as f64,
        );
    }
    let book = watchdog.probes();
    let latest: Vec<_> = book
        .names()
        .into_iter()
        .filter_map(|n| book.latest(&n).map(|r| (n, r)))
        .collect();
    for (name, r) in &latest {
        out.gauge(
            "hostwatch_probe_up",
            "1 when the probe's latest run succeeded.",
            &[("probe", name)],
            f64::from(u8::from(r.ok)),
        );
    }
    for (name, r) in &latest {
        out.gauge(
            "hostwatch_probe_latency_seconds",
            "How long the probe's latest run took, to its answer or its failure.",
            &[("probe", name)],
            r.latency_ms / 1000.0,
        );
    }
}
