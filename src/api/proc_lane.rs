//! The lane that /proc walks take: one thread of its own, at a lower
//! priority, owns the process reader and runs one reading at a time; a few
//! more may wait, and past that a request is told to come back later (503
//! with Retry-After) instead of queueing without bound. So process listings,
//! however many clients loop on them, neither hold the HTTP workers'
//! blocking threads, which SQLite reads need, nor take CPU from the workers.
//! Token holders have a share of their own, served first: anonymous
//! callers filling theirs cannot keep an operator from the process table.

use super::ApiError;
use crate::collect::procs::ProcessReader;
use actix_web::{HttpResponse, http::header::ContentType};
use serde::Serialize;
use std::{
    panic::{AssertUnwindSafe, catch_unwind},
    thread::JoinHandle,
};
use tokio::{
    runtime::Handle,
    sync::{Semaphore, mpsc, oneshot},
};
use tokio_util::sync::CancellationToken;

/// A reading to run; says whether it panicked.
type Job = Box<dyn FnOnce(&mut ProcessReader) -> bool + Send>;

/// Readings that may wait while one runs: enough for a handful of clients
/// polling at once (a dashboard, a script or two) to be queued, not
/// refused. A listing of every field takes tens of milliseconds (a few
/// hundred with 2,000 processes), so the last one admitted waits a couple
/// of seconds at worst.
const QUEUE: usize = 8;

/// Readings whose caller has gone (a client that timed out) stay queued
/// until the lane skips them; this bounds them too.
const CHANNEL: usize = 8 * QUEUE;

/// How much nicer than the agent the lane's thread is (the threads a
/// reading spreads over inherit it): an HTTP worker that wakes gets a core
/// ahead of a listing. Mild, because on a busy host every step costs the
/// listing its share of the CPU against the host's own work: measured on
/// two loaded cores, +10 served fewer than half the listings and +20 a
/// tenth, without a clear gain for the cheap routes (benches/README.md).
const NICER_BY: i32 = 5;

/// Token holders' readings run in a row at most this many times while an
/// anonymous one waits.
const TOKEN_STREAK: usize = 4;

/// What a request is told when the lane is full.
pub const RETRY_AFTER_SECS: u32 = 1;

/// Whose turn a reading takes: each has its own places in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Share {
    Anonymous,
    Token,
}

impl Share {
    pub fn of(who: &super::auth::Identity) -> Self {
        if who.is_anonymous() {
            Self::Anonymous
        } else {
            Self::Token
        }
    }
}

/// One share's queue.
struct Queue {
    jobs: mpsc::Sender<Job>,
    /// One per caller waiting for a reading, the one running included;
    /// released when the caller has its answer or goes away.
    callers: Semaphore,
}

impl Queue {
    fn new() -> (Self, mpsc::Receiver<Job>) {
        let (jobs, rx) = mpsc::channel(CHANNEL);
        let callers = Semaphore::new(QUEUE + 1);
        (Self { jobs, callers }, rx)
    }
}

pub struct ProcLane {
    anonymous: Queue,
    tokens: Queue,
}

impl ProcLane {
    /// Starts the lane's thread; it ends when `shutdown` fires or the lane is
    /// dropped, after the reading under way. Call it within a runtime.
    pub fn start(shutdown: CancellationToken) -> std::io::Result<(Self, JoinHandle<()>)> {
        let (anonymous, anonymous_rx) = Queue::new();
        let (tokens, tokens_rx) = Queue::new();
        let runtime = tokio::runtime::Handle::current();
        let thread = std::thread::Builder::new()
            .name("hostwatch-procs".into())
            .spawn(move || serve(tokens_rx, anonymous_rx, &shutdown, &runtime))?;
        Ok((Self { anonymous, tokens }, thread))
    }

    fn queue(&self, share: Share) -> &Queue {
        match share {
            Share::Anonymous => &self.anonymous,
            Share::Token => &self.tokens,
        }
    }

    /// Runs `f` on the lane and answers what it returns; 503 when the
    /// caller's share of the lane is full or the agent is stopping.
    pub async fn run<T, F>(&self, share: Share, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut ProcessReader) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        let full = || {
            ApiError::Overloaded(format!(
                "{} process readings{} are running or waiting already; retry in {RETRY_AFTER_SECS} s",
                QUEUE + 1,
                match share {
                    Share::Anonymous => " by callers without a token",
                    Share::Token => " by token holders",
                }
            ))
        };
        let queue = self.queue(share);
        let _waiting = queue.callers.try_acquire().map_err(|_| full())?;
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |reader| {
            // Whoever asked has gone (a dropped connection): skip the work.
            if tx.is_closed() {
                return false;
            }
            match catch_unwind(AssertUnwindSafe(|| f(reader))) {
                Ok(answer) => {
                    let _ = tx.send(answer);
                    false
                }
                Err(_) => {
                    let _ = tx.send(Err(ApiError::Internal(
                        "reading the process table failed; the reader starts afresh".into(),
                    )));
                    true
                }
            }
        });
        queue.jobs.try_send(job).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => full(),
            mpsc::error::TrySendError::Closed(_) => stopping(),
        })?;
        // No answer and no sender: the lane stopped before the reading ran.
        rx.await.map_err(|_| stopping())?
    }
}

impl ProcLane {
    /// Like `run`, and the answer is serialized on the lane too: a listing
    /// of every field is megabytes of JSON, and writing it on an HTTP
    /// worker would hold up every request behind it there.
    pub async fn json<T, F>(&self, share: Share, f: F) -> Result<HttpResponse, ApiError>
    where
        F: FnOnce(&mut ProcessReader) -> Result<T, ApiError> + Send + 'static,
        T: Serialize,
    {
        let body = self
            .run(share, move |reader| {
                serde_json::to_vec(&f(reader)?)
                    .map_err(|e| ApiError::Internal(format!("cannot write the answer: {e}")))
            })
            .await?;
        Ok(HttpResponse::Ok()
            .content_type(ContentType::json())
            .body(body))
    }
}

fn stopping() -> ApiError {
    ApiError::Unavailable("the agent is shutting down".into())
}

fn serve(
    mut tokens: mpsc::Receiver<Job>,
    mut anonymous: mpsc::Receiver<Job>,
    shutdown: &CancellationToken,
    runtime: &Handle,
) {
    // On Linux a nice value is a thread's own: this one changes only the lane.
    let nicer = rustix::process::getpriority_process(None)
        .and_then(|own| rustix::process::setpriority_process(None, (own + NICER_BY).min(19)));
    if let Err(e) = nicer {
        tracing::warn!(error = %e, "the process lane runs at the agent's priority");
    }
    let mut reader = ProcessReader::default();
    // Waiting needs no IO or timer driver, so this works on any runtime.
    // A token holder's reading goes first, but after TOKEN_STREAK of them
    // in a row a waiting anonymous one runs: token holders keeping their
    // share full do not hold anonymous callers off for ever.
    let mut streak = 0;
    let mut next = || {
        if shutdown.is_cancelled() {
            return None;
        }
        if streak >= TOKEN_STREAK
            && let Ok(job) = anonymous.try_recv()
        {
            streak = 0;
            return Some(job);
        }
        let (job, token) = runtime.block_on(async {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => None,
                Some(job) = tokens.recv() => Some((job, true)),
                Some(job) = anonymous.recv() => Some((job, false)),
                else => None,
            }
        })?;
        streak = if token { streak + 1 } else { 0 };
        Some(job)
    };
    while let Some(job) = next() {
        // Go on with a fresh reader rather than a half-updated one.
        if job(&mut reader) {
            tracing::error!("a process reading panicked; the reader starts afresh");
            reader = ProcessReader::default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn readings_run_at_a_lower_priority() {
        let token = CancellationToken::new();
        let (lane, thread) = ProcLane::start(token.clone()).unwrap();
        let nice = lane
            .run(Share::Token, |_| {
                Ok(rustix::process::getpriority_process(None).ok())
            })
            .await
            .unwrap();
        let own = rustix::process::getpriority_process(None).unwrap();
        // Raising the nice value is always allowed; it is capped at 19.
        assert_eq!(nice, Some((own + NICER_BY).min(19)));
        token.cancel();
        tokio::task::spawn_blocking(move || thread.join().unwrap())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_full_lane_answers_503_and_the_waiting_readings_still_run() {
        let token = CancellationToken::new();
        let (lane, _thread) = ProcLane::start(token.clone()).unwrap();
        let lane = Arc::new(lane);
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let (started, running) = oneshot::channel();
        let l = Arc::clone(&lane);
        // One reading holds the lane until released.
        let holding = tokio::spawn(async move {
            l.run(Share::Anonymous, move |_| {
                let _ = started.send(());
                let _ = gate.recv();
                Ok(0)
            })
            .await
        });
        running.await.unwrap();
        let waiting: Vec<_> = (1..=QUEUE)
            .map(|i| {
                let l = Arc::clone(&lane);
                tokio::spawn(async move { l.run(Share::Anonymous, move |_| Ok(i)).await })
            })
            .collect();
        while lane.anonymous.callers.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        let refused = lane.run(Share::Anonymous, |_| Ok(99)).await;
        assert!(
            matches!(refused, Err(ApiError::Overloaded(_))),
            "{refused:?}"
        );
        // A caller that goes away gives its place back at once; its reading
        // is skipped.
        let mut waiting = waiting;
        waiting.pop().unwrap().abort();
        while lane.anonymous.callers.available_permits() == 0 {
            tokio::task::yield_now().await;
        }
        let l = Arc::clone(&lane);
        let late = tokio::spawn(async move { l.run(Share::Anonymous, |_| Ok(99)).await });
        release.send(()).unwrap();
        assert_eq!(holding.await.unwrap().unwrap(), 0);
        for (i, w) in waiting.into_iter().enumerate() {
            assert_eq!(w.await.unwrap().unwrap(), i + 1);
        }
        assert_eq!(late.await.unwrap().unwrap(), 99);
        token.cancel();
    }

    /// A reading that holds the lane until the sender is used.
    async fn hold(
        lane: &Arc<ProcLane>,
        share: Share,
    ) -> (
        std::sync::mpsc::Sender<()>,
        tokio::task::JoinHandle<Result<(), ApiError>>,
    ) {
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let (started, running) = oneshot::channel();
        let l = Arc::clone(lane);
        let holding = tokio::spawn(async move {
            l.run(share, move |_| {
                let _ = started.send(());
                let _ = gate.recv();
                Ok(())
            })
            .await
        });
        running.await.unwrap();
        (release, holding)
    }

    #[tokio::test]
    async fn a_token_holder_has_places_of_its_own_and_goes_first() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let token = CancellationToken::new();
        let (lane, _thread) = ProcLane::start(token.clone()).unwrap();
        let lane = Arc::new(lane);
        let (release, holding) = hold(&lane, Share::Anonymous).await;
        let order = Arc::new(AtomicUsize::new(0));
        let ticket = |share: Share| {
            let (l, order) = (Arc::clone(&lane), Arc::clone(&order));
            tokio::spawn(async move {
                l.run(share, move |_| Ok(order.fetch_add(1, Ordering::SeqCst)))
                    .await
            })
        };
        let anonymous: Vec<_> = (0..QUEUE).map(|_| ticket(Share::Anonymous)).collect();
        while lane.anonymous.callers.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        let refused = lane.run(Share::Anonymous, |_| Ok(())).await;
        assert!(
            matches!(refused, Err(ApiError::Overloaded(_))),
            "{refused:?}"
        );
        // Anonymous callers have filled their share: a token holder is
        // still admitted, and runs before all of those waiting.
        let operator = ticket(Share::Token);
        while lane.tokens.callers.available_permits() == QUEUE + 1 {
            tokio::task::yield_now().await;
        }
        release.send(()).unwrap();
        holding.await.unwrap().unwrap();
        assert_eq!(operator.await.unwrap().unwrap(), 0);
        for a in anonymous {
            assert!(a.await.unwrap().unwrap() > 0);
        }
        token.cancel();
    }

    #[tokio::test]
    async fn token_holders_keeping_their_share_full_still_let_anonymous_ones_through() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let token = CancellationToken::new();
        let (lane, _thread) = ProcLane::start(token.clone()).unwrap();
        let lane = Arc::new(lane);
        let (release, holding) = hold(&lane, Share::Token).await;
        let order = Arc::new(AtomicUsize::new(0));
        let ticket = |share: Share| {
            let (l, order) = (Arc::clone(&lane), Arc::clone(&order));
            tokio::spawn(async move {
                l.run(share, move |_| Ok(order.fetch_add(1, Ordering::SeqCst)))
                    .await
            })
        };
        let anonymous = ticket(Share::Anonymous);
        let tokens: Vec<_> = (0..QUEUE).map(|_| ticket(Share::Token)).collect();
        while lane.tokens.callers.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        release.send(()).unwrap();
        holding.await.unwrap().unwrap();
        // The holding reading and TOKEN_STREAK - 1 more ran in a row.
        assert_eq!(anonymous.await.unwrap().unwrap(), TOKEN_STREAK - 1);
        for t in tokens {
            t.await.unwrap().unwrap();
        }
        token.cancel();
    }
}
