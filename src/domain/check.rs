//! One check of the host: the record the sampler stores and the API serves.
//! Every part is optional: a part that could not be read is `None` (`null`),
//! and the check is still whole.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A check of the host, as stored. `id` is `None` until the store assigns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Check {
    /// Row id in the database; absent for a check that was not stored.
    pub id: Option<i64>,
    /// When the check was taken (UTC).
    pub taken_at: DateTime<Utc>,
    /// How long taking it took, in milliseconds.
    pub duration_ms: f64,
    pub cpu: Option<Cpu>,
    pub memory: Option<Memory>,
    /// One entry per mounted filesystem.
    pub disks: Option<Vec<Disk>>,
    pub io: Option<Io>,
    /// One entry per watched service.
    pub services: Option<Vec<ServiceState>>,
    /// The processes using most CPU, most first.
    pub top_processes: Option<Vec<TopProcess>>,
}

/// CPU use over the interval before the check, and the load averages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Cpu {
    /// All cores together, 0–100.
    pub percent: f64,
    pub load1: f64,
    pub load5: f64,
    pub load15: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Memory {
    pub total_bytes: u64,
    pub used_bytes: u64,
    pub available_bytes: u64,
    /// Used share of total, 0–100.
    pub percent: f64,
    pub swap_total_bytes: u64,
    pub swap_used_bytes: u64,
    /// Used share of swap, 0–100 (0 when there is no swap).
    pub swap_percent: f64,
}

/// One mounted filesystem.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Disk {
    /// Where it is mounted; bytes that are not UTF-8 are written `\xNN`.
    pub mount: String,
    pub device: String,
    pub fs_type: String,
    /// `null`, like `used_bytes` and `percent`, when the filesystem did not
    /// answer (a dead NFS server, a stuck FUSE daemon): see `error`.
    pub total_bytes: Option<u64>,
    pub used_bytes: Option<u64>,
    /// Used share of total, 0–100.
    pub percent: Option<f64>,
    /// Why the sizes are `null`; absent when they were read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Disk {
    /// A filesystem whose sizes were read.
    pub fn sized(mount: String, device: String, fs_type: String, total: u64, used: u64) -> Self {
        Self {
            mount,
            device,
            fs_type,
            total_bytes: Some(total),
            used_bytes: Some(used),
            percent: Some(percent(used, total)),
            error: None,
        }
    }
}

/// Bytes moved since the previous check (or since the agent started, for the
/// first one), over `interval_ms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Io {
    /// Milliseconds the counts cover.
    pub interval_ms: u64,
    /// Bytes read from block devices (whole disks, not partitions).
    pub read_bytes: u64,
    /// Bytes written to block devices.
    pub written_bytes: u64,
    /// Bytes received by network interfaces other than loopback.
    pub received_bytes: u64,
    /// Bytes sent by network interfaces other than loopback.
    pub sent_bytes: u64,
}

/// A watched service's state when the check was taken.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ServiceState {
    pub name: String,
    pub state: ServiceStatus,
    /// Result of the health probe, where one is configured.
    pub healthy: Option<bool>,
    /// Round trip of the health probe in milliseconds.
    pub probe_ms: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ServiceStatus {
    Running,
    Stopped,
    Failed,
    Unknown,
    NotInstalled,
}

impl ServiceStatus {
    pub const ALL: [Self; 5] = [
        Self::Running,
        Self::Stopped,
        Self::Failed,
        Self::Unknown,
        Self::NotInstalled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Stopped => "stopped",
            Self::Failed => "failed",
            Self::Unknown => "unknown",
            Self::NotInstalled => "not_installed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// One of the processes using most CPU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TopProcess {
    pub pid: u32,
    pub name: String,
    /// User name, or the numeric uid when it has no name.
    pub user: Option<String>,
    /// Per core: 100 is one core fully busy.
    pub cpu_percent: f64,
    pub rss_bytes: u64,
}

/// What went wrong while taking a check, part by part. The check is stored
/// regardless; this feeds the log and the sampler's `last_error`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PartErrors(pub Vec<(&'static str, String)>);

impl PartErrors {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value of a part that was read, or `None` with the reason noted.
    pub fn keep<T, E: std::fmt::Display>(
        &mut self,
        part: &'static str,
        r: Result<T, E>,
    ) -> Option<T> {
        r.map_err(|e| self.0.push((part, e.to_string()))).ok()
    }
}

impl std::fmt::Display for PartErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (part, why)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{part}: {why}")?;
        }
        Ok(())
    }
}

/// Share of `part` in `whole` as a percentage, 0 when `whole` is 0.
pub fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_percent_of_nothing_is_zero() {
        assert_eq!(percent(5, 0), 0.0);
        assert_eq!(percent(1, 4), 25.0);
    }

    #[test]
    fn a_part_that_failed_is_none_and_its_reason_is_kept() {
        let mut e = PartErrors::default();
        let cpu: Option<u8> = e.keep("cpu", Err::<u8, _>("/proc/stat: permission denied"));
        let mem = e.keep("memory", Ok::<u8, String>(7));
        assert_eq!((cpu, mem), (None, Some(7)));
        assert_eq!(e.to_string(), "cpu: /proc/stat: permission denied");
    }

    #[test]
    fn service_status_names_round_trip() {
        for s in ["running", "stopped", "failed", "unknown", "not_installed"] {
            assert_eq!(ServiceStatus::parse(s).map(|v| v.as_str()), Some(s));
        }
        assert_eq!(ServiceStatus::parse("up"), None);
    }
}
