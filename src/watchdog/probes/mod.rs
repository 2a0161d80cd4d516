//! Probes: http, tcp and exec checks, each on its own interval, with their
//! recent results kept in memory (bounded) for rules and the API, and in
//! the database (as bounded) so that a restart starts from them.

mod run;
#[cfg(test)]
mod tests;

pub use crate::domain::probe::ProbeResult;
use crate::{config::watchdog::ProbeSettings, store::Store};
use chrono::Utc;
use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, OnceLock, PoisonError},
};
use tokio::{sync::watch, task::JoinHandle};
use tokio_util::sync::CancellationToken;

/// Successful results the window needs before `latency_ratio` answers.
pub const RATIO_MIN_RESULTS: usize = 5;

#[derive(Debug)]
struct Slot {
    settings: ProbeSettings,
    /// Newest at the back.
    results: Mutex<VecDeque<ProbeResult>>,
}

/// Every probe's recent results.
pub struct ProbeBook {
    slots: Vec<Slot>,
    keep: usize,
    /// Bumped on every new result, of any probe.
    recorded: watch::Sender<u64>,
    /// Where results are kept across restarts, once `keep_in` was called.
    store: OnceLock<Arc<Store>>,
}

impl std::fmt::Debug for ProbeBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProbeBook")
            .field("slots", &self.slots)
            .field("keep", &self.keep)
            .finish_non_exhaustive()
    }
}

impl ProbeBook {
    /// `keep`: results kept per probe (at least 1).
    pub fn new(probes: &[ProbeSettings], keep: usize) -> Arc<Self> {
        let keep = keep.max(1);
        Arc::new(Self {
            slots: probes
                .iter()
                .map(|p| Slot {
                    settings: p.clone(),
                    results: Mutex::new(VecDeque::with_capacity(keep.min(64))),
                })
                .collect(),
            keep,
            recorded: watch::Sender::new(0),
            store: OnceLock::new(),
        })
    }

    /// Reads back each probe's stored results and keeps new ones in
    /// `store` from now on; answers how many were read back.
    pub fn keep_in(&self, store: Arc<Store>) -> Result<usize, crate::store::StoreError> {
        let mut n = 0;
        for slot in &self.slots {
            let rows = store.probe_results(&slot.settings.name, self.keep)?;
            n += rows.len();
            let mut results = slot.lock();
            results.clear();
            results.extend(rows);
        }
        let _ = self.store.set(store);
        Ok(n)
    }

    fn slot(&self, name: &str) -> Option<&Slot> {
        self.slots.iter().find(|s| s.settings.name == name)
    }

    /// The probes' names, in config order.
    pub fn names(&self) -> Vec<String> {
        self.slots.iter().map(|s| s.settings.name.clone()).collect()
    }

    pub fn settings(&self, name: &str) -> Option<ProbeSettings> {
        self.slot(name).map(|s| s.settings.clone())
    }

    pub fn latest(&self, name: &str) -> Option<ProbeResult> {
        self.slot(name)?.lock().back().cloned()
    }

    /// Newest first, at most `limit`; `None` for an unknown probe.
    pub fn results(&self, name: &str, limit: usize) -> Option<Vec<ProbeResult>> {
        let slot = self.slot(name)?;
        let results = slot.lock();
        Some(results.iter().rev().take(limit).cloned().collect())
    }

    /// The latest latency over the minimum latency of the successful results
    /// within the probe's `window` before now; `None` until the window holds
    /// at least [`RATIO_MIN_RESULTS`] of them. A failed latest result counts
    /// with the time it took, so a probe that times out shows as slow.
    pub fn latency_ratio(&self, name: &str) -> Option<f64> {
        let slot = self.slot(name)?;
        let window = chrono::Duration::from_std(slot.settings.window).ok()?;
        let since = Utc::now() - window;
        let results = slot.lock();
        let latest = results.back()?;
        let (count, best) = results
            .iter()
            .rev()
            .take_while(|r| r.at >= since)
            .filter(|r| r.ok)
            .fold((0, f64::INFINITY), |(n, best), r| {
                (n + 1, best.min(r.latency_ms))
            });
        // A sub-microsecond best would make any latency look infinitely slow.
        (count >= RATIO_MIN_RESULTS).then(|| latest.latency_ms / best.max(0.001))
    }

    /// A counter bumped on each new result of any probe: a rule engine can
    /// wait on `changed()` to react without waiting for its next tick.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.recorded.subscribe()
    }

    /// Keeps a result of the probe `name` (oldest dropped beyond `keep`);
    /// results of an unknown probe are dropped.
    pub(crate) fn record(&self, name: &str, result: ProbeResult) {
        let Some(slot) = self.slot(name) else { return };
        {
            let mut results = slot.lock();
            if results.len() >= self.keep {
                results.pop_front();
            }
            results.push_back(result);
        }
        self.recorded.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Starts one task per probe; each stops when `shutdown` is cancelled
    /// (a run in progress is dropped: its connection closed, its command
    /// killed and reaped).
    pub fn start(self: &Arc<Self>, shutdown: &CancellationToken) -> Vec<JoinHandle<()>> {
        self.slots
            .iter()
            .map(|slot| {
                let book = Arc::clone(self);
                let settings = slot.settings.clone();
                let shutdown = shutdown.clone();
                tokio::spawn(async move { book.run_every(settings, shutdown).await })
            })
            .collect()
    }

    /// Runs one probe every `interval`; a slow run delays the next one
    /// rather than overlapping it.
    async fn run_every(&self, settings: ProbeSettings, shutdown: CancellationToken) {
        let mut tick = crate::ticker::Ticker::every(settings.interval);
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let result = tokio::select! {
                biased;
                () = shutdown.cancelled() => return,
                r = run::once(&settings) => r,
            };
            self.record(&settings.name, result.clone());
            self.save(&settings.name, result).await;
        }
    }

    async fn save(&self, name: &str, r: ProbeResult) {
        let Some(store) = self.store.get().cloned() else {
            return;
        };
        let (name, keep) = (name.to_owned(), self.keep);
        let saved =
            tokio::task::spawn_blocking(move || store.save_probe_result(&name, &r, keep)).await;
        // Memory still holds it; the sampler and the engine say what is
        // wrong with the database.
        if let Ok(Err(e)) = saved {
            tracing::debug!(error = %e, "a probe result was not stored");
        }
    }
}

impl Slot {
    /// Never held across an await; a poisoned lock still holds whole results.
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<ProbeResult>> {
        self.results.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
