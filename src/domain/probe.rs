//! One run of a probe, as the watchdog keeps it, the store writes it and
//! the API shows it.

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct ProbeResult {
    /// When the run started.
    pub at: DateTime<Utc>,
    pub ok: bool,
    /// From the start of the call to its answer, or to its failure.
    pub latency_ms: f64,
    /// What went wrong, in plain words, when it did.
    pub error: Option<String>,
}
