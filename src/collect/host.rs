//! CPU, memory and filesystems through sysinfo.

use super::CollectError;
use crate::domain::{Cpu, Disk, Memory, check::percent};
use std::{
    collections::{BTreeMap, HashSet},
    path::PathBuf,
};
use sysinfo::{Disks, System};

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

/// Mounted filesystems, one per mount point (the last mounted wins, as the
/// kernel shows it), sorted by mount point; bind mounts of a filesystem
/// already mounted whole are left out (`bind_mounts`).
pub fn disks(disks: &mut Disks) -> Result<Vec<Disk>, CollectError> {
    disks.refresh(true);
    let binds = bind_mounts();
    let by_mount: BTreeMap<String, Disk> = disks
        .iter()
        .filter(|d| !binds.contains(d.mount_point()))
        .filter_map(disk_of)
        .map(|d| (d.mount.clone(), d))
        .collect();
    Ok(by_mount.into_values().collect())
}

/// Mount points that show again, from a directory inside it, a filesystem
/// that is also mounted whole: bind mounts. A sandbox makes them of `/`
/// (systemd's `ReadWritePaths=`, `ProtectHome=`, `PrivateTmp=`), and they
/// would count the same space several times. A filesystem mounted only
/// from inside it (a btrfs subvolume as `/`) is kept.
pub fn bind_mounts() -> HashSet<PathBuf> {
    let Ok(infos) = procfs::process::Process::myself().and_then(|p| p.mountinfo()) else {
        return HashSet::new();
    };
    let whole: HashSet<&str> = infos
        .iter()
        .filter(|m| m.root == "/")
        .map(|m| m.majmin.as_str())
        .collect();
    infos
        .iter()
        .filter(|m| m.root != "/" && whole.contains(m.majmin.as_str()))
        .map(|m| m.mount_point.clone())
        .collect()
}

/// A filesystem as a check reports it; `None` for pseudo filesystems of no size.
pub fn disk_of(d: &sysinfo::Disk) -> Option<Disk> {
    let total = d.total_space();
    if total == 0 {
        return None;
    }
    let used = total.saturating_sub(d.available_space());
    Some(Disk {
        mount: d.mount_point().to_string_lossy().into_owned(),
        device: d.name().to_string_lossy().into_owned(),
        fs_type: d.file_system().to_string_lossy().into_owned(),
        total_bytes: total,
        used_bytes: used,
        percent: percent(used, total),
    })
}
