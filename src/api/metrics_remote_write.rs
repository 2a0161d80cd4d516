//! Each remote-write receiver's queue on `/metrics` (SPEC §8): counters
//! since the agent started, the backlog and the last success, labelled by
//! the receiver's name.

use super::Exposition;
use crate::{remote_write::RemoteWrite, store::Store};

pub(super) fn write(out: &mut Exposition, rw: &RemoteWrite, store: &Store) {
    let receivers: Vec<_> = rw
        .receivers()
        .iter()
        .map(|r| {
            let p = r.progress();
            // A store that cannot answer leaves the backlog out, not the rest.
            let backlog = r.backlog_seconds(store, &p).ok();
            (r.name.as_str(), p, backlog)
        })
        .collect();
    type Count = fn(&crate::remote_write::Progress) -> u64;
    let counters: [(&str, &str, Count); 5] = [
        (
            "hostwatch_remote_write_samples_sent_total",
            "Samples the receiver accepted.",
            |p| p.samples_sent,
        ),
        (
            "hostwatch_remote_write_samples_failed_total",
            "Samples of requests that failed (no connection, 5xx, 429); each is sent again.",
            |p| p.samples_failed,
        ),
        (
            "hostwatch_remote_write_samples_rejected_total",
            "Samples of requests the receiver refused with a 4xx; not sent again.",
            |p| p.samples_rejected,
        ),
        (
            "hostwatch_remote_write_retries_total",
            "Requests sent again after a failure.",
            |p| p.retries,
        ),
        (
            "hostwatch_remote_write_checks_skipped_total",
            "Checks not sent: older than max_backlog, or stamped before what was sent.",
            |p| p.checks_skipped,
        ),
    ];
    for (name, help, value) in counters {
        for (r, p, _) in &receivers {
            out.counter(name, help, &[("receiver", r)], value(p) as f64);
        }
    }
    for (r, _, backlog) in &receivers {
        if let Some(b) = backlog {
            out.gauge(
                "hostwatch_remote_write_backlog_seconds",
                "How long the oldest check not yet sent has waited.",
                &[("receiver", r)],
                *b,
            );
        }
    }
    for (r, p, _) in &receivers {
        if let Some(t) = p.last_success {
            out.gauge(
                "hostwatch_remote_write_last_success_timestamp_seconds",
                "When the receiver last accepted a request.",
                &[("receiver", r)],
                t.timestamp_millis() as f64 / 1000.0,
            );
        }
    }
}
