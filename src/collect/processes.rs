//! The processes using most CPU, from one sysinfo process refresh.

use crate::domain::TopProcess;
use sysinfo::{ProcessRefreshKind, ProcessesToUpdate, System, UpdateKind, Users};

/// One refresh of every process: CPU, memory and owner, nothing more.
pub fn refresh(sys: &mut System) {
    sys.refresh_processes_specifics(
        ProcessesToUpdate::All,
        true,
        ProcessRefreshKind::nothing()
            .with_cpu()
            .with_memory()
            .with_user(UpdateKind::OnlyIfNotSet),
    );
}

pub fn top(sys: &System, users: &mut Users, n: usize) -> Vec<TopProcess> {
    let mut procs: Vec<_> = sys
        .processes()
        .values()
        .filter(|p| p.thread_kind().is_none())
        .collect();
    procs.sort_by(|a, b| {
        b.cpu_usage()
            .total_cmp(&a.cpu_usage())
            .then(a.pid().cmp(&b.pid()))
    });
    procs.truncate(n);
    let mut refreshed = false;
    procs
        .into_iter()
        .map(|p| {
            let user = p.user_id().map(|uid| {
                if users.get_user_by_id(uid).is_none() && !refreshed {
                    // A user added since start: read /etc/passwd again, once per check.
                    users.refresh();
                    refreshed = true;
                }
                users
                    .get_user_by_id(uid)
                    .map_or_else(|| (**uid).to_string(), |u| u.name().to_owned())
            });
            TopProcess {
                pid: p.pid().as_u32(),
                name: p.name().to_string_lossy().into_owned(),
                user,
                cpu_percent: f64::from(p.cpu_usage()),
                rss_bytes: p.memory(),
            }
        })
        .collect()
}
