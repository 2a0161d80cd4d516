//! CPU, memory and filesystems through sysinfo.

use super::{
    CollectError,
    mounts::{self, Answer, Mount},
};
use crate::domain::{Cpu, Disk, Memory, check::percent};
use std::{path::Path, time::Duration};
use sysinfo::System;

pub fn cpu(sys: &mut System) -> Result<Cpu, CollectError> {
    sys.refresh_cpu_usage();
    if sys.cpus().is_empty() {
        return Err(CollectError("no CPU found in /proc/stat".into()));
    }
    let load = System::load_average().map_err(|e| CollectError(format!("load average: {e}")))?;
    Ok(Cpu {
        percent: f64::from(sys.global_cpu_usage()).clamp(0.0, 100.0),
        load1: load.one,
        load5: load.five,
        load15: load.fifteen,
    })
}

pub fn memory(sys: &mut System) -> Result<Memory, CollectError> {
    sys.refresh_memory();
    let total = sys.total_memory();
    if total == 0 {
        return Err(CollectError("/proc/meminfo could not be read".into()));
    }
    let used = sys.used_memory();
    let (swap_total, swap_used) = (sys.total_swap(), sys.used_swap());
    Ok(Memory {
        total_bytes: total,
        used_bytes: used,
        available_bytes: sys.available_memory(),
        percent: percent(used, total),
        swap_total_bytes: swap_total,
        swap_used_bytes: swap_used,
        swap_percent: percent(swap_used, swap_total),
    })
}

/// Mounted filesystems with their sizes (`mounts::list`), each paired with
/// its mount. One that does not answer `statfs` within `deadline`, or
/// answers with an error, keeps its place with no sizes and the reason.
pub fn disks(deadline: Duration) -> Result<Vec<(Mount, Disk)>, CollectError> {
    let list = mounts::list().map_err(|e| CollectError(format!("/proc/self/mountinfo: {e}")))?;
    let points: Vec<&Path> = list.iter().map(|m| m.point.as_path()).collect();
    let answers = mounts::statfs_all(&points, deadline);
    Ok(list
        .into_iter()
        .zip(answers)
        .filter_map(|(m, a)| {
            let d = disk_of(&m, a)?;
            Some((m, d))
        })
        .collect())
}

/// A filesystem as a check reports it; `None` for pseudo filesystems of no size.
fn disk_of(m: &Mount, a: Answer) -> Option<Disk> {
    let error = match a {
        Answer::Usage(u) if u.total_bytes == 0 => return None,
        Answer::Usage(u) => {
            let used = u.total_bytes.saturating_sub(u.available_bytes);
            return Some(Disk::sized(
                m.name.clone(),
                m.device.clone(),
                m.fs_type.clone(),
                u.total_bytes,
                used,
            ));
        }
        Answer::Failed(e) | Answer::Unanswered(e) => e,
    };
    Some(Disk {
        mount: m.name.clone(),
        device: m.device.clone(),
        fs_type: m.fs_type.clone(),
        total_bytes: None,
        used_bytes: None,
        percent: None,
        error: Some(error),
    })
}
