//! The filesystems a check reports, with their sizes.

use crate::{
    collect::{
        CollectError,
        mounts::{self, Answer, Mount},
    },
    domain::Disk,
};
use std::{path::Path, time::Duration};

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
