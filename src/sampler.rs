//! The sampler: a cancellable loop that takes a check every interval and
//! stores it. `take_check` is the one step, also used for on-demand checks.

use crate::{
    collect::Collector,
    domain::{Check, PartErrors},
    services::Services,
    store::{Store, StoreError},
    ticker::Ticker,
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use tokio::{sync::watch, task::JoinHandle};
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

#[derive(Debug, thiserror::Error)]
pub enum SamplerError {
    #[error("cannot store checks: {0}")]
    Store(#[from] StoreError),
    #[error("the collector thread failed: {0}")]
    Join(String),
    #[error("the agent is shutting down")]
    ShuttingDown,
}

/// What `GET /api/v1/sampler` answers.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct SamplerStatus {
    pub running: bool,
    /// Seconds between checks (fractions allowed).
    pub interval_seconds: f64,
    /// When the sampler was last started; `null` while it has never run.
    pub started_at: Option<DateTime<Utc>>,
    pub last_check_at: Option<DateTime<Utc>>,
    /// Checks taken and stored since the agent started, by the sampler or on demand.
    pub checks_taken: u64,
    /// The latest check's problem: a part that could not be read, or a
    /// store that failed; `null` once a check is read whole and stored.
    pub last_error: Option<String>,
    /// When `last_error` happened.
    pub last_error_at: Option<DateTime<Utc>>,
    /// Why checks cannot be stored, e.g. the database's filesystem is full
    /// or read-only; `null` while storing works. The sampler keeps trying
    /// every interval and clears this after the next check it stores.
    pub storage_error: Option<String>,
}

struct Running {
    token: CancellationToken,
    interval: watch::Sender<Duration>,
    handle: JoinHandle<()>,
}

pub struct Sampler {
    /// The agent's main runtime: the loop lives there whichever HTTP worker
    /// started it, so stopping the HTTP server never cuts it short.
    runtime: tokio::runtime::Handle,
    collector: Arc<Mutex<Collector>>,
    services: Arc<Services>,
    store: Arc<Store>,
    shutdown: CancellationToken,
    status: Mutex<SamplerStatus>,
    running: tokio::sync::Mutex<Option<Running>>,
}

impl Sampler {
    /// `shutdown` stops the loop for good when the agent stops. Call it on
    /// the runtime the loop should live on.
    pub fn new(
        collector: Collector,
        services: Arc<Services>,
        store: Arc<Store>,
        interval: Duration,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        Arc::new(Self {
            runtime: tokio::runtime::Handle::current(),
            collector: Arc::new(Mutex::new(collector)),
            services,
            store,
            shutdown,
            status: Mutex::new(SamplerStatus {
                running: false,
                interval_seconds: interval.as_secs_f64(),
                started_at: None,
                last_check_at: None,
                checks_taken: 0,
                last_error: None,
                last_error_at: None,
                storage_error: None,
            }),
            running: tokio::sync::Mutex::new(None),
        })
    }

    pub fn status(&self) -> SamplerStatus {
        self.with_status(|s| s.clone())
    }

    fn with_status<T>(&self, f: impl FnOnce(&mut SamplerStatus) -> T) -> T {
        let mut guard = self.status.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    /// Starts the loop, or, when it runs already, only changes its interval.
    pub async fn start(
        self: &Arc<Self>,
        interval: Option<Duration>,
    ) -> Result<SamplerStatus, SamplerError> {
        if self.shutdown.is_cancelled() {
            return Err(SamplerError::ShuttingDown);
        }
        let mut running = self.running.lock().await;
        let interval =
            interval.unwrap_or_else(|| Duration::from_secs_f64(self.status().interval_seconds));
        self.with_status(|s| s.interval_seconds = interval.as_secs_f64());
        match running.as_ref() {
            Some(r) if !r.handle.is_finished() => {
                r.interval
                    .send_if_modified(|v| std::mem::replace(v, interval) != interval);
            }
            _ => {
                let token = self.shutdown.child_token();
                let (tx, rx) = watch::channel(interval);
                let handle = self.runtime.spawn(Arc::clone(self).run(token.clone(), rx));
                *running = Some(Running {
                    token,
                    interval: tx,
                    handle,
                });
                self.with_status(|s| {
                    s.running = true;
                    s.started_at = Some(Utc::now());
                });
                tracing::info!(interval = ?interval, "sampler started");
            }
        }
        Ok(self.status())
    }

    /// Stops the loop and waits for it: a check being stored is finished first.
    pub async fn stop(&self) -> SamplerStatus {
        let mut running = self.running.lock().await;
        if let Some(r) = running.take() {
            r.token.cancel();
            if let Err(e) = r.handle.await {
                tracing::error!(error = %e, "sampler task ended abnormally");
            }
            tracing::info!("sampler stopped");
        }
        self.with_status(|s| s.running = false);
        self.status()
    }

    async fn run(
        self: Arc<Self>,
        token: CancellationToken,
        mut interval: watch::Receiver<Duration>,
    ) {
        let mut ticker = Ticker::every(*interval.borrow());
        loop {
            tokio::select! {
                biased;
                _ = token.cancelled() => break,
                changed = interval.changed() => {
                    if changed.is_err() { break; }
                    let every = *interval.borrow_and_update();
                    // The next check is one new interval away.
                    ticker = Ticker::at(std::time::Instant::now() + every, every);
                    continue;
                }
                _ = ticker.tick() => {}
            }
            match self.take_check(&token).await {
                // Logged by `take_check` when storing starts or stops failing,
                // not every tick.
                Ok(_) | Err(SamplerError::Store(_)) => {}
                Err(e) => tracing::error!(error = %e, "sampler could not take a check"),
            }
        }
        self.with_status(|s| s.running = false);
    }

    /// Takes one check and stores it. Reading the host may be abandoned when
    /// `cancel` fires; once storing begins it runs to the end, and the write is
    /// one transaction. Returns `None` when abandoned.
    pub async fn take_check(
        &self,
        cancel: &CancellationToken,
    ) -> Result<Option<Check>, SamplerError> {
        // A service slower than the interval would make the check late.
        let bound = Duration::from_secs_f64(self.status().interval_seconds);
        let read = read_check(Arc::clone(&self.collector), &self.services, Some(bound));
        let (mut check, errors) = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Ok(None),
            r = read => r?,
        };
        let store = Arc::clone(&self.store);
        let to_store = check.clone();
        let stored = tokio::task::spawn_blocking(move || {
            let id = store.insert_check(&to_store);
            // Each check allocates and frees the same few hundred KiB.
            crate::memory::release_free();
            id
        })
        .await
        .map_err(|e| SamplerError::Join(e.to_string()))?;
        let now = Utc::now();
        match stored {
            Ok(id) => {
                check.id = Some(id);
                let recovered = self.with_status(|s| {
                    s.checks_taken += 1;
                    s.last_check_at = Some(check.taken_at);
                    (s.last_error, s.last_error_at) = if errors.is_empty() {
                        (None, None)
                    } else {
                        (Some(errors.to_string()), Some(now))
                    };
                    s.storage_error.take().is_some()
                });
                if recovered {
                    tracing::info!(check = id, "checks are stored again");
                }
                if !errors.is_empty() {
                    tracing::warn!(check = id, errors = %errors, "parts of the check could not be read");
                }
                Ok(Some(check))
            }
            Err(e) => {
                let e = SamplerError::Store(e);
                let text = e.to_string();
                let first = self.with_status(|s| {
                    s.last_error = Some(text.clone());
                    s.last_error_at = Some(now);
                    s.storage_error.replace(text).is_none()
                });
                // Once when it starts: the sampler retries every interval.
                if first {
                    tracing::error!(error = %e, "checks cannot be stored; retrying every interval");
                }
                Err(e)
            }
        }
    }
}

/// Takes a check that is not stored yet: the host on a blocking thread and
/// the services beside it, each service bounded by its timeout and `bound`.
pub async fn read_check(
    collector: Arc<Mutex<Collector>>,
    services: &Services,
    bound: Option<Duration>,
) -> Result<(Check, PartErrors), SamplerError> {
    let started = Instant::now();
    let deadline = statfs_deadline(bound);
    let host = tokio::task::spawn_blocking(move || read_host(&collector, deadline));
    let (host, views) = tokio::join!(host, services.views(bound));
    let (mut check, errors) = host.map_err(|e| SamplerError::Join(e.to_string()))?;
    check.services = Some(views.iter().map(|v| v.to_state()).collect());
    check.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    Ok((check, errors))
}

/// Reads every part of the host into a check that is not stored yet; its
/// `services` are left empty for `read_check` to fill.
pub fn read_host(collector: &Mutex<Collector>, statfs_deadline: Duration) -> (Check, PartErrors) {
    let mut c = collector.lock().unwrap_or_else(|p| p.into_inner());
    // To the millisecond, as stored; a step of the clock is logged there.
    let taken_at = crate::clock::now().wall;
    let started = Instant::now();
    let parts = c.take(statfs_deadline);
    drop(c);
    let check = Check {
        id: None,
        taken_at,
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        cpu: parts.cpu,
        memory: parts.memory,
        disks: parts.disks,
        io: parts.io,
        services: Some(Vec::new()),
        top_processes: parts.top_processes,
    };
    (check, parts.errors)
}

/// How long a check waits for a filesystem that does not answer `statfs`:
/// well under the interval, so a hung mount never makes a check late.
fn statfs_deadline(interval: Option<Duration>) -> Duration {
    interval
        .map_or(Duration::from_secs(1), |i| i / 5)
        .clamp(Duration::from_millis(50), Duration::from_secs(2))
}
