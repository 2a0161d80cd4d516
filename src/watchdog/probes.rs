//! Probes: http, tcp and exec checks, each on its own interval, with their
//! recent results kept in memory (bounded) for rules and the API.

use crate::config::watchdog::ProbeSettings;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// One run of a probe.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct ProbeResult {
    pub at: DateTime<Utc>,
    pub ok: bool,
    /// From the start of the call to its answer, or to its failure.
    pub latency_ms: f64,
    pub error: Option<String>,
}

/// Every probe's recent results.
#[derive(Debug, Default)]
pub struct ProbeBook {}

impl ProbeBook {
    /// `keep`: results kept per probe.
    pub fn new(_probes: &[ProbeSettings], _keep: usize) -> Arc<Self> {
        Arc::new(Self {})
    }
    /// The probes' names, in config order.
    pub fn names(&self) -> Vec<String> {
        Vec::new()
    }
    pub fn settings(&self, _name: &str) -> Option<ProbeSettings> {
        None
    }
    pub fn latest(&self, _name: &str) -> Option<ProbeResult> {
        None
    }
    /// Newest first, at most `limit`; `None` for an unknown probe.
    pub fn results(&self, _name: &str, _limit: usize) -> Option<Vec<ProbeResult>> {
        None
    }
    /// The latest latency over the minimum of the window's successful
    /// results; `None` until the window holds at least 5 of them.
    pub fn latency_ratio(&self, _name: &str) -> Option<f64> {
        None
    }
    /// Starts one task per probe; each stops when `shutdown` is cancelled.
    pub fn start(self: &Arc<Self>, _shutdown: &CancellationToken) -> Vec<JoinHandle<()>> {
        Vec::new()
    }
}
