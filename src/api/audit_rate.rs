//! How fast each caller may add rows to the audit trail: a token bucket
//! per caller. A row that finds its bucket empty is not written but
//! counted; the next row written for that caller carries the count
//! (`suppressed`), and when no row comes, a summary row does as soon as
//! the bucket has room (`flush_later`). So the trail is bounded and still
//! says how many rows it lacks.

use crate::store::{AuditEntry, Store};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

/// A bucket's size and how fast it fills.
#[derive(Debug, Clone, Copy)]
pub struct Rate {
    pub burst: f64,
    /// The time one row's room takes to come back.
    pub refill: Duration,
}

/// Refusals of callers without a control token: anyone who reaches the
/// port can be refused.
pub const STRANGERS: Rate = Rate {
    burst: 20.0,
    refill: Duration::from_secs(10),
};

/// Rows of a control token holder: its actions, and its requests refused
/// as malformed. Enough for a person or a script at work; a runaway loop
/// adds at most 86 400 rows a day.
pub const CONTROL: Rate = Rate {
    burst: 100.0,
    refill: Duration::from_secs(1),
};

struct Bucket {
    room: f64,
    at: Instant,
    /// Rows not written since the last one that was.
    dropped: u64,
    /// A `flush_later` task is waiting to write the count.
    flushing: bool,
}

/// What the caller of `admit` does with its row.
#[derive(Debug, PartialEq, Eq)]
pub enum Admit {
    /// Write it, with the number of rows dropped before it.
    Write { suppressed: u64 },
    /// Drop it; `flush` asks for a `flush_later` task (one per caller).
    Drop { flush: bool },
}

/// What `flush_later` finds when it looks again.
#[derive(Debug, PartialEq, Eq)]
enum Pending {
    /// Write a summary row for this many rows (its room is taken).
    Write(u64),
    /// A later row carried the count: nothing to write.
    Nothing,
    /// No room yet.
    Wait,
}

/// The buckets of one kind of caller, by key (a token's name).
pub struct Budget {
    rate: Rate,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Budget {
    pub fn new(rate: Rate) -> Self {
        Self {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Whether a row for `key` may be written now. Keys must come from a
    /// small set (configured token names), so the map stays small.
    pub fn admit(&self, key: &str) -> Admit {
        let mut all = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let b = self.refilled(&mut all, key);
        if b.room >= 1.0 {
            b.room -= 1.0;
            return Admit::Write {
                suppressed: std::mem::take(&mut b.dropped),
            };
        }
        if b.dropped == 0 {
            tracing::warn!(
                token = key,
                "rows for the audit arrive faster than its rate allows; counting the rest"
            );
        }
        b.dropped += 1;
        let flush = !std::mem::replace(&mut b.flushing, true);
        Admit::Drop { flush }
    }

    fn refilled<'a>(&self, all: &'a mut HashMap<String, Bucket>, key: &str) -> &'a mut Bucket {
        let now = Instant::now();
        let b = all.entry(key.to_owned()).or_insert(Bucket {
            room: self.rate.burst,
            at: now,
            dropped: 0,
            flushing: false,
        });
        let refill = now.duration_since(b.at).as_secs_f64() / self.rate.refill.as_secs_f64();
        b.room = (b.room + refill).min(self.rate.burst);
        b.at = now;
        b
    }

    fn take_pending(&self, key: &str) -> Pending {
        let mut all = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let b = self.refilled(&mut all, key);
        if b.dropped == 0 {
            b.flushing = false;
            return Pending::Nothing;
        }
        if b.room < 1.0 {
            return Pending::Wait;
        }
        b.room -= 1.0;
        b.flushing = false;
        Pending::Write(std::mem::take(&mut b.dropped))
    }
}

/// Waits until `key`'s bucket has room, then writes a summary row with
/// the rows dropped and not yet counted in another row.
pub async fn flush_later(budget: Arc<Budget>, key: String, store: Arc<Store>) {
    let n = loop {
        tokio::time::sleep(budget.rate.refill).await;
        match budget.take_pending(&key) {
            Pending::Write(n) => break n,
            Pending::Nothing => return,
            Pending::Wait => {}
        }
    };
    let actor = if key.is_empty() {
        "(no valid token)".to_owned()
    } else {
        key
    };
    let entry = AuditEntry {
        actor,
        action: "audit.suppressed".into(),
        target: None,
        outcome: "refused".into(),
        detail: Some(format!(
            "{n} rows not written: they came faster than the audit's rate"
        )),
    };
    let written = tokio::task::spawn_blocking(move || store.record_audit_counted(&entry, n)).await;
    if !matches!(written, Ok(Ok(_))) {
        tracing::error!(suppressed = n, "could not write the audit's summary row");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TINY: Rate = Rate {
        burst: 2.0,
        refill: Duration::from_secs(3600),
    };

    #[test]
    fn past_the_burst_rows_are_dropped_and_the_next_one_written_counts_them() {
        let b = Budget::new(TINY);
        assert_eq!(b.admit("ops"), Admit::Write { suppressed: 0 });
        assert_eq!(b.admit("ops"), Admit::Write { suppressed: 0 });
        assert_eq!(b.admit("ops"), Admit::Drop { flush: true });
        assert_eq!(b.admit("ops"), Admit::Drop { flush: false });
        // Another caller has a bucket of its own.
        assert_eq!(b.admit("ci"), Admit::Write { suppressed: 0 });
        assert_eq!(b.take_pending("ops"), Pending::Wait);
        b.buckets.lock().unwrap().get_mut("ops").unwrap().room = 1.0;
        assert_eq!(b.admit("ops"), Admit::Write { suppressed: 2 });
        assert_eq!(b.take_pending("ops"), Pending::Nothing);
    }

    #[test]
    fn a_summary_takes_the_count_once_there_is_room() {
        let b = Budget::new(TINY);
        for _ in 0..5 {
            b.admit("ops");
        }
        b.buckets.lock().unwrap().get_mut("ops").unwrap().room = 1.0;
        assert_eq!(b.take_pending("ops"), Pending::Write(3));
        assert_eq!(b.take_pending("ops"), Pending::Nothing);
        // The next drop asks for a flush again.
        assert_eq!(b.admit("ops"), Admit::Drop { flush: true });
    }
}
