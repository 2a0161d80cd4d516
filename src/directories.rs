//! Watched directories: each measured in the background at start and then
//! every `refresh`, one walk at a time on a blocking thread; requests read
//! the cached figures. A walk under way when the agent stops is cancelled,
//! so even a walk of `/` holds shutdown up no longer than one `stat`.

use crate::{
    collect::dirs::{self, Limits},
    config::DirectorySettings,
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

/// A watched directory as last measured.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DirectoryView {
    pub name: String,
    pub path: String,
    /// Seconds between measurements.
    pub refresh_seconds: f64,
    /// Allocated on disk, as `du` counts.
    pub bytes: Option<u64>,
    /// Sum of file lengths.
    pub apparent_bytes: Option<u64>,
    pub files: Option<u64>,
    pub dirs: Option<u64>,
    /// `bytes` as a share of the total size of the filesystem the
    /// directory lives on, 0–100.
    pub share_percent: Option<f64>,
    pub filesystem_bytes: Option<u64>,
    /// `null` until the first measurement has finished.
    pub measured_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<f64>,
    /// False when the walk hit its entry or time limit: figures are partial.
    pub complete: Option<bool>,
    pub unreadable_entries: Option<u64>,
    pub error: Option<String>,
}

pub struct Directories {
    views: Mutex<Vec<DirectoryView>>,
}

impl Directories {
    pub fn views(&self) -> Vec<DirectoryView> {
        self.views.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn update(&self, i: usize, f: impl FnOnce(&mut DirectoryView)) {
        if let Some(v) = self
            .views
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(i)
        {
            f(v);
        }
    }
}

/// How long a stopping loop waits for its cancelled walk to notice.
const WALK_STOP: Duration = Duration::from_secs(1);

/// How often a stuck walk is said to be stuck again (its age grows).
const STUCK_REPORT: Duration = Duration::from_secs(10);

/// Cancels a walk however its loop ends: on shutdown, or dropped with the
/// runtime (which otherwise waits for the blocking thread to finish).
struct StopWalk(Arc<AtomicBool>);

impl Drop for StopWalk {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Starts one measuring loop per directory; they end with `cancel`.
pub fn start(
    settings: &[DirectorySettings],
    cancel: &CancellationToken,
) -> (Arc<Directories>, Vec<JoinHandle<()>>) {
    let views = settings
        .iter()
        .map(|d| DirectoryView {
            name: d.name.clone(),
            path: d.path.display().to_string(),
            refresh_seconds: d.refresh.as_secs_f64(),
            bytes: None,
            apparent_bytes: None,
            files: None,
            dirs: None,
            share_percent: None,
            filesystem_bytes: None,
            measured_at: None,
            duration_ms: None,
            complete: None,
            unreadable_entries: None,
            error: None,
        })
        .collect();
    let all = Arc::new(Directories {
        views: Mutex::new(views),
    });
    let tasks = settings
        .iter()
        .enumerate()
        .map(|(i, d)| tokio::spawn(run(Arc::clone(&all), i, d.clone(), cancel.clone())))
        .collect();
    (all, tasks)
}

async fn run(all: Arc<Directories>, i: usize, d: DirectorySettings, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(d.refresh);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let path = d.path.clone();
        let started = Instant::now();
        let stop = StopWalk(Arc::new(AtomicBool::new(false)));
        let flag = Arc::clone(&stop.0);
        let mut walk =
            tokio::task::spawn_blocking(move || dirs::measure(&path, Limits::default(), &flag));
        // A walk stops itself at its time limit between two calls; one that
        // runs past that is stuck in a call on a hung filesystem. It is said
        // so, and no other walk of this directory starts until it returns.
        let mut stuck = tokio::time::interval_at(
            tokio::time::Instant::now() + Limits::default().max_time + WALK_STOP,
            STUCK_REPORT,
        );
        let result = loop {
            tokio::select! {
                _ = cancel.cancelled() => {
                    drop(stop);
                    // Bounded: a `stat` stuck on a dead mount must not hold
                    // shutdown; the walk then ends when that call returns.
                    let _ = tokio::time::timeout(WALK_STOP, walk).await;
                    return;
                }
                r = &mut walk => break r.map_err(|e| e.to_string()).and_then(|r| r),
                _ = stuck.tick() => {
                    let secs = started.elapsed().as_secs();
                    all.update(i, |v| {
                        if v.error.is_none() {
                            tracing::warn!(directory = %v.name, seconds = secs, "a walk of a watched directory is stuck; is a filesystem under it hung?");
                        }
                        v.error = Some(format!(
                            "the walk has been stuck for {secs} s in a call that does not return (a hung filesystem?); figures are from the last walk that ended"
                        ));
                    });
                }
            }
        };
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        all.update(i, |v| {
            v.measured_at = Some(Utc::now());
            v.duration_ms = Some(ms);
            match result {
                Ok(s) => {
                    v.share_percent = s.share_percent();
                    v.bytes = Some(s.bytes);
                    v.apparent_bytes = Some(s.apparent_bytes);
                    v.files = Some(s.files);
                    v.dirs = Some(s.dirs);
                    v.filesystem_bytes = s.filesystem_bytes;
                    v.complete = Some(s.complete);
                    v.unreadable_entries = Some(s.unreadable);
                    v.error = None;
                }
                Err(e) => {
                    tracing::warn!(directory = %v.name, error = %e, "could not measure a watched directory");
                    v.error = Some(e);
                }
            }
        });
    }
}
