//! Bytes moved by block devices and network interfaces since the last reading.

use super::CollectError;
use crate::domain::Io;
use std::{path::Path, time::Instant};
use sysinfo::Networks;

/// Remembers the last totals so each reading is a difference.
#[derive(Default)]
pub struct IoCounter {
    last: Option<(Instant, u64, u64)>,
}

const SECTOR: u64 = 512;

/// Bytes read and written by whole physical disks since boot: partitions,
/// loop and device-mapper devices would count the same bytes twice.
fn block_totals() -> Result<(u64, u64), CollectError> {
    let stats = procfs::diskstats().map_err(|e| CollectError(format!("/proc/diskstats: {e}")))?;
    Ok(stats
        .iter()
        .filter(|d| {
            Path::new("/sys/block")
                .join(&d.name)
                .join("device")
                .exists()
        })
        .fold((0, 0), |(r, w), d| {
            (r + d.sectors_read * SECTOR, w + d.sectors_written * SECTOR)
        }))
}

impl IoCounter {
    /// `networks` must have just been refreshed: its per-interface figures are
    /// already differences since its previous refresh.
    pub fn read(&mut self, networks: &Networks) -> Result<Io, CollectError> {
        let now = Instant::now();
        let (read, written) = block_totals()?;
        let (received, sent) = networks
            .iter()
            .filter(|(name, _)| name.to_str() != Some("lo"))
            .fold((0, 0), |(r, s), (_, n)| {
                (r + n.received(), s + n.transmitted())
            });
        let prev = self.last.replace((now, read, written));
        let (since, r0, w0) = prev.unwrap_or((now, read, written));
        Ok(Io {
            interval_ms: now.duration_since(since).as_millis() as u64,
            read_bytes: read.saturating_sub(r0),
            written_bytes: written.saturating_sub(w0),
            received_bytes: received,
            sent_bytes: sent,
        })
    }
}
