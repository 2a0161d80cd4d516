//! One receiver's sender: read the checks after its cursor, send them in
//! bounded batches oldest first, move the cursor only once the receiver has
//! answered, then wait for more. The cursor is in the store, so that a
//! restart (or a SIGKILL) resumes where the receiver stands.

use super::{Receiver, client::Client, client::Outcome, encode::Batch};
use crate::store::{Cursor, Store, StoreError};
use chrono::{DateTime, Utc};
use std::{sync::Arc, time::Duration};
use tokio_util::sync::CancellationToken;

/// Checks per request: a day of 60 s checks is a few requests, and a
/// request stays well under receivers' size limits (about 5,000 samples
/// with a few mounts and services).
pub(super) const BATCH_CHECKS: u32 = 200;
/// Samples per request at most, however many mounts and services a check
/// has: receivers bound a request's size (Mimir and Prometheus' own
/// senders use a few thousand).
const BATCH_SAMPLES: u64 = 10_000;
/// Waits between failed attempts double from the first to the last.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

pub(super) struct Sender {
    pub receiver: Arc<Receiver>,
    pub client: Arc<Client>,
    pub store: Arc<Store>,
    /// The cursor's key: `cursor_key` of the URL.
    pub key: String,
    pub instance: String,
}

/// A batch ready to go, kept across retries.
pub(super) struct Pending {
    pub body: Vec<u8>,
    pub samples: u64,
    /// Where the cursor goes once it is answered.
    pub next: Cursor,
    /// Fewer checks than asked for: the history is caught up after it.
    pub last: bool,
    /// Checks (or rolled hours) in it.
    pub items: u32,
}

/// What the sender said last in the log (it says so once per change, not
/// per request): read off the receiver's progress.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mood {
    Fine,
    Failing,
    Rejecting,
}

impl super::Progress {
    fn mood(&self) -> Mood {
        match (self.failing_since, self.rejecting) {
            (None, _) => Mood::Fine,
            (Some(_), true) => Mood::Rejecting,
            (Some(_), false) => Mood::Failing,
        }
    }
}

impl Sender {
    /// Sends from `cursor` (see `first_cursor`) until shut down.
    pub async fn run(self, cursor: Cursor, shutdown: CancellationToken) {
        let this = Arc::new(self);
        let mut cursor = cursor;
        let mut pending: Option<Pending> = None;
        let mut backoff = FIRST_BACKOFF;
        // Checks per batch. A receiver answers a batch as a whole, and
        // Prometheus refuses one with a single sample older than its head
        // (about an hour): a refused batch is sent again in halves, down
        // to one check, so that only what it will never take is lost.
        let mut limit = BATCH_CHECKS;
        loop {
            if shutdown.is_cancelled() {
                return;
            }
            if pending.is_none() {
                let t = Arc::clone(&this);
                let at = cursor;
                match tokio::task::spawn_blocking(move || t.next_batch(at, limit)).await {
                    Ok(Ok((c, p))) => {
                        cursor = c;
                        pending = p;
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(receiver = %this.receiver.name, error = %e, "remote write: cannot read the history");
                    }
                    Err(e) => {
                        tracing::error!(receiver = %this.receiver.name, error = %e, "remote write: reading the history failed");
                    }
                }
            }
            let Some(p) = pending.take() else {
                // Caught up (or the store failed): wait for new checks.
                if sleep(this.receiver.interval, &shutdown).await {
                    return;
                }
                continue;
            };
            let t = Arc::clone(&this);
            let body = Arc::new(p.body);
            let sent = Arc::clone(&body);
            let outcome = tokio::select! {
                o = tokio::task::spawn_blocking(move || t.client.send(&sent)) => o,
                // A request in flight is left to its timeout; it is sent
                // again at the next start, and a receiver takes a repeated
                // sample as the one it has.
                () = shutdown.cancelled() => return,
            };
            let outcome = outcome.unwrap_or_else(|e| Outcome::Retry {
                why: format!("the sending thread failed: {e}"),
                after: None,
            });
            let p = Pending {
                body: Arc::try_unwrap(body).unwrap_or_default(),
                ..p
            };
            let r = &this.receiver;
            let mood = r.progress().mood();
            if let Outcome::Rejected {
                status: 400 | 413, ..
            } = outcome
                && p.items > 1
            {
                limit = (p.items / 2).max(1);
                continue;
            }
            match outcome {
                Outcome::Accepted | Outcome::Rejected { .. } => {
                    limit = if matches!(outcome, Outcome::Accepted) {
                        (limit * 2).min(BATCH_CHECKS)
                    } else {
                        limit
                    };
                    if let Outcome::Rejected { why, .. } = &outcome {
                        if mood != Mood::Rejecting {
                            tracing::warn!(receiver = %r.name, error = %why, samples = p.samples, "remote write: the receiver refused a batch; it is counted as rejected and not sent again (further refusals are counted, not logged)");
                        }
                    } else if mood != Mood::Fine {
                        tracing::info!(receiver = %r.name, "remote write: the receiver takes samples again");
                    }
                    // Stored first: what the API shows as sent is what a
                    // restart resumes after.
                    this.save(p.next).await;
                    cursor = p.next;
                    let now = Utc::now();
                    r.update(|g| {
                        match &outcome {
                            Outcome::Rejected { why, .. } => {
                                g.samples_rejected += p.samples;
                                g.last_error = Some(why.clone());
                                g.failing_since.get_or_insert(now);
                                g.rejecting = true;
                            }
                            _ => {
                                g.samples_sent += p.samples;
                                g.last_success = Some(now);
                                g.last_error = None;
                                g.failing_since = None;
                                g.rejecting = false;
                            }
                        }
                        g.cursor = Some(p.next);
                    });
                    backoff = FIRST_BACKOFF;
                    if p.last && sleep(r.interval, &shutdown).await {
                        return;
                    }
                }
                Outcome::Retry { why, after } => {
                    if mood != Mood::Failing {
                        tracing::warn!(receiver = %r.name, error = %why, "remote write: cannot send; the history keeps the samples and the batch is sent again");
                    }
                    let now = Utc::now();
                    r.update(|g| {
                        g.samples_failed += p.samples;
                        g.retries += 1;
                        g.last_error = Some(why);
                        g.failing_since.get_or_insert(now);
                        g.rejecting = false;
                    });
                    // A receiver's `Retry-After: 0` does not make a busy loop.
                    let wait = after.map_or_else(|| jitter(backoff), |a| a.max(FIRST_BACKOFF));
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    pending = Some(p);
                    if sleep(wait, &shutdown).await {
                        return;
                    }
                }
            }
        }
    }

    /// The cursor (moved past a too-old backlog) and the next batch after
    /// it, if there is one. Checks older than `max_backlog` are
    /// stepped over, and so is a sample stamped at or before one already
    /// sent: a series' times only grow.
    pub(super) fn next_batch(
        &self,
        at: Cursor,
        limit: u32,
    ) -> Result<(Cursor, Option<Pending>), BatchError> {
        let r = &self.receiver;
        let mut cursor = at;
        // The history's ids start again at 1 once retention has emptied
        // it (the host was off, or the sampler stopped, that long).
        if let Some((newest, _)) = self.store.check_head(None)?
            && newest < cursor.check_id
        {
            tracing::info!(receiver = %r.name, "remote write: the history starts again (its ids were reused); sending from its start");
            cursor.check_id = 0;
        }
        // The earliest the time may be: a clock stepped forward does not
        // skip a backlog that is young enough.
        let oldest_wanted = crate::clock::now().earliest()
            - chrono::Duration::from_std(r.max_backlog).unwrap_or_default();
        if cursor.sent_until < oldest_wanted {
            // The first check young enough, else past the newest: every
            // check (and roll-up) before it is skipped.
            let resume = match self.store.check_head(Some(oldest_wanted))? {
                Some((first, _)) => first - 1,
                None => self.store.check_head(None)?.map_or(0, |(id, _)| id),
            };
            if resume > cursor.check_id {
                let skipped = (resume - cursor.check_id) as u64;
                tracing::warn!(receiver = %r.name, checks = skipped, before = %oldest_wanted, "remote write: checks older than max_backlog are not sent");
                r.update(|g| g.checks_skipped += skipped);
                cursor.check_id = resume;
            }
            cursor.sent_until = oldest_wanted;
        }
        r.update(|g| g.cursor = Some(cursor));
        if let Some(p) = self.rolled_batch(cursor, limit)? {
            return Ok((cursor, Some(p)));
        }
        let checks = self.store.checks_after(cursor.check_id, limit)?;
        if checks.is_empty() {
            return Ok((cursor, None));
        }
        let mut batch = Batch::new(&self.instance);
        let mut next = Cursor {
            check_id: cursor.check_id,
            sent_until: cursor.sent_until,
        };
        let mut stepped = 0;
        let mut taken = 0;
        for k in &checks {
            if batch.samples >= BATCH_SAMPLES {
                break;
            }
            taken += 1;
            next.check_id = k.id.unwrap_or(next.check_id);
            if k.taken_at <= next.sent_until {
                stepped += 1;
                continue;
            }
            batch.add(k);
            next.sent_until = k.taken_at;
        }
        if stepped > 0 {
            tracing::info!(receiver = %r.name, checks = stepped, "remote write: checks stamped before what was already sent (the clock stepped back) are not sent");
            r.update(|g| g.checks_skipped += stepped);
        }
        let last = checks.len() < limit as usize && taken == checks.len();
        if batch.is_empty() {
            // Nothing to send: step over, keep it, and go on to the checks
            // after (a long clock step back is many such batches).
            self.store.save_remote_write_cursor(&self.key, next)?;
            r.update(|g| g.cursor = Some(next));
            if last || taken == 0 {
                return Ok((next, None));
            }
            return self.next_batch(next, limit);
        }
        let samples = batch.samples;
        let body = batch.encode()?;
        Ok((
            cursor,
            Some(Pending {
                body,
                samples,
                next,
                last,
                items: taken as u32,
            }),
        ))
    }

    /// Where the raw checks after the cursor were purged (the receiver was
    /// away longer than `storage.retention`), the hours' roll-ups in their
    /// place, marked as such.
    fn rolled_batch(&self, cursor: Cursor, limit: u32) -> Result<Option<Pending>, BatchError> {
        let next_at = match self.store.check_after(cursor.check_id)? {
            Some((_, at)) => at,
            None => return Ok(None),
        };
        // Purged hours are older than every raw check kept: an hour whose
        // raw checks are still there (read later, after a clock step back)
        // is not replaced by its roll-up.
        let next_at = match self.store.oldest_check_at()? {
            Some(oldest) => next_at.min(oldest),
            None => next_at,
        };
        if next_at - cursor.sent_until < chrono::Duration::hours(1) {
            return Ok(None);
        }
        let hours = self.store.rolled_hours(cursor.sent_until, next_at, limit)?;
        let Some(last) = hours.last() else {
            return Ok(None);
        };
        let mut batch = Batch::new(&self.instance);
        for h in &hours {
            batch.add_rolled(h);
        }
        let next = Cursor {
            check_id: cursor.check_id,
            sent_until: last.last_at,
        };
        let samples = batch.samples;
        Ok(Some(Pending {
            body: batch.encode()?,
            samples,
            next,
            last: false,
            items: hours.len() as u32,
        }))
    }

    /// Where a receiver starts: its stored cursor, or, for one new to this
    /// agent, the newest check (history from before it was configured is
    /// not sent: most receivers refuse samples that old).
    pub fn first_cursor(&self) -> Result<Cursor, StoreError> {
        if let Some(c) = self.store.remote_write_cursor(&self.key)? {
            return Ok(c);
        }
        let c = match self.store.check_head(None)? {
            Some((id, at)) => Cursor {
                check_id: id - 1,
                sent_until: at - chrono::Duration::milliseconds(1),
            },
            None => Cursor {
                check_id: 0,
                sent_until: DateTime::<Utc>::UNIX_EPOCH,
            },
        };
        self.store.save_remote_write_cursor(&self.key, c)?;
        Ok(c)
    }

    async fn save(self: &Arc<Self>, c: Cursor) {
        let t = Arc::clone(self);
        let saved =
            tokio::task::spawn_blocking(move || t.store.save_remote_write_cursor(&t.key, c)).await;
        if let Ok(Err(e)) = saved {
            // Kept in memory: after a restart the batch goes again, and a
            // receiver takes a repeated sample as the one it has.
            tracing::warn!(receiver = %self.receiver.name, error = %e, "remote write: cannot store the cursor");
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub(super) enum BatchError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot compress a batch: {0}")]
    Compress(#[from] snap::Error),
}

/// Sleeps `d` unless cancelled first; true when cancelled.
async fn sleep(d: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        () = tokio::time::sleep(d) => false,
        () = shutdown.cancelled() => true,
    }
}

/// Between half of `d` and `d`, so that agents that lost the same receiver
/// do not all come back at once.
fn jitter(d: Duration) -> Duration {
    let r = getrandom::u32().unwrap_or(u32::MAX / 2);
    d / 2 + d.mul_f64(f64::from(r) / f64::from(u32::MAX) / 2.0)
}
