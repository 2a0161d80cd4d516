//! A service's state now: the status command's answer mapped to a state,
//! beside the health probe, both bounded in time.

use super::{
    command::{self, Outcome},
    manager::{self, Host, Resolved},
    probe,
};
use crate::{
    config::ServiceSettings,
    domain::{ServiceState, ServiceStatus},
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::time::Duration;
use utoipa::ToSchema;

/// A watched service as the API shows it.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct ServiceView {
    pub name: String,
    /// The manager it resolved to, e.g. `{"kind": "sysv", "script": "apache2"}`.
    pub manager: Resolved,
    pub state: ServiceStatus,
    /// Result of the health probe, where `health_url` is set.
    pub healthy: Option<bool>,
    /// Round trip of the health probe in milliseconds.
    pub probe_ms: Option<f64>,
    pub checked_at: DateTime<Utc>,
    /// Why the state is `unknown` or the probe failed, when it is or did.
    /// Without a token, what a status command wrote is left out.
    pub detail: Option<String>,
    /// `detail` without what a status command wrote (it runs as root, and
    /// its stderr may hold anything): what a caller without a token sees.
    #[serde(skip)]
    pub public_detail: Option<String>,
}

impl ServiceView {
    pub fn to_state(&self) -> ServiceState {
        ServiceState {
            name: self.name.clone(),
            state: self.state,
            healthy: self.healthy,
            probe_ms: self.probe_ms,
        }
    }
}

/// A state that could not be read, and why.
pub fn unknown(s: &ServiceSettings, host: &Host, why: String) -> ServiceView {
    ServiceView {
        name: s.name.clone(),
        manager: manager::resolve(s, host),
        state: ServiceStatus::Unknown,
        healthy: None,
        probe_ms: None,
        checked_at: Utc::now(),
        public_detail: Some(why.clone()),
        detail: Some(why),
    }
}

/// Why a state is what it is, in full and as a caller without a token may
/// see it.
struct Why {
    full: Option<String>,
    public: Option<String>,
}

/// A reason that holds no command's output.
fn plain((state, why): (ServiceStatus, Option<String>)) -> (ServiceStatus, Why) {
    let public = why.clone();
    (state, Why { full: why, public })
}

pub async fn read(s: &ServiceSettings, host: &Host, bound: Option<Duration>) -> ServiceView {
    let timeout = bound.map_or(s.timeout, |b| b.min(s.timeout));
    let resolved = manager::resolve(s, host);
    let status = status(&resolved, s, host, timeout);
    let health = async {
        match &s.health_url {
            Some(url) => Some(probe::probe(url, timeout).await),
            None => None,
        }
    };
    let ((state, why), health) = tokio::join!(status, health);
    let probe_error = || {
        health
            .as_ref()
            .and_then(|p| p.error.clone().map(|e| format!("health probe: {e}")))
    };
    let detail = why.full.or_else(probe_error);
    let public_detail = why.public.or_else(probe_error);
    ServiceView {
        name: s.name.clone(),
        manager: resolved,
        state,
        healthy: health.as_ref().map(|p| p.healthy),
        probe_ms: health.as_ref().map(|p| p.probe_ms),
        checked_at: Utc::now(),
        detail,
        public_detail,
    }
}

async fn status(
    r: &Resolved,
    s: &ServiceSettings,
    host: &Host,
    timeout: Duration,
) -> (ServiceStatus, Why) {
    let not_installed = || plain((ServiceStatus::NotInstalled, None));
    match r {
        Resolved::None => return not_installed(),
        Resolved::Sysv { script } if !host.init_d.join(script).is_file() => {
            return not_installed();
        }
        Resolved::Systemd { unit } => {
            let show = manager::load_state_argv(unit);
            if let Outcome::Exited { stdout, .. } = command::run(&show, timeout).await
                && stdout == "not-found"
            {
                return not_installed();
            }
        }
        _ => {}
    }
    if let Some(path) = &s.pid_file {
        return plain(pid_file_state(path));
    }
    let Some(argv) = manager::status_argv(r, s, host) else {
        return plain((
            ServiceStatus::Unknown,
            Some("no status command in the config".into()),
        ));
    };
    let outcome = command::run(&argv, timeout).await;
    match (&outcome, r) {
        (Outcome::Exited { stdout, .. }, Resolved::Systemd { .. }) => plain(systemd_state(stdout)),
        (Outcome::Exited { code: Some(c), .. }, Resolved::Sysv { .. }) => plain(lsb_state(*c)),
        (Outcome::Exited { code: Some(0), .. }, _) => plain((ServiceStatus::Running, None)),
        (Outcome::Exited { code: Some(_), .. }, _) => plain((ServiceStatus::Stopped, None)),
        (o, _) => (
            ServiceStatus::Unknown,
            Why {
                full: Some(format!("the status command {}", o.describe())),
                public: Some(format!(
                    "the status command {} (its output needs a token)",
                    o.describe_without_output()
                )),
            },
        ),
    }
}

/// The LSB reading of a pid file: running while its process lives, failed
/// when it names a dead one, stopped when there is none.
fn pid_file_state(path: &std::path::Path) -> (ServiceStatus, Option<String>) {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return (ServiceStatus::Stopped, None);
        }
        Err(e) => {
            return (
                ServiceStatus::Unknown,
                Some(format!("{}: {e}", path.display())),
            );
        }
    };
    let Some(pid) = text
        .trim()
        .parse::<u32>()
        .ok()
        .and_then(|p| crate::domain::Pid::new(p).ok())
    else {
        return (
            ServiceStatus::Unknown,
            Some(format!("{} holds no pid", path.display())),
        );
    };
    if crate::control::is_gone(pid) {
        (
            ServiceStatus::Failed,
            Some(format!(
                "pid {} from {} is not running",
                pid.get(),
                path.display()
            )),
        )
    } else {
        (ServiceStatus::Running, None)
    }
}

/// `systemctl is-active` prints the unit's active state.
fn systemd_state(out: &str) -> (ServiceStatus, Option<String>) {
    match out.lines().next().unwrap_or("") {
        "active" | "reloading" => (ServiceStatus::Running, None),
        "inactive" => (ServiceStatus::Stopped, None),
        "failed" => (ServiceStatus::Failed, None),
        other => (
            ServiceStatus::Unknown,
            Some(format!("systemd says `{other}`")),
        ),
    }
}

/// LSB init script status codes.
fn lsb_state(code: i32) -> (ServiceStatus, Option<String>) {
    match code {
        0 => (ServiceStatus::Running, None),
        3 => (ServiceStatus::Stopped, None),
        1 | 2 => (
            ServiceStatus::Failed,
            Some(format!(
                "status exit {code}: dead, but a pid or lock file remains"
            )),
        ),
        c => (ServiceStatus::Unknown, Some(format!("status exit {c}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsb_codes_map_to_states() {
        assert_eq!(lsb_state(0).0, ServiceStatus::Running);
        assert_eq!(lsb_state(3).0, ServiceStatus::Stopped);
        assert_eq!(lsb_state(1).0, ServiceStatus::Failed);
        assert_eq!(lsb_state(4).0, ServiceStatus::Unknown);
    }

    #[test]
    fn systemd_active_states_map_to_states() {
        assert_eq!(systemd_state("active\n").0, ServiceStatus::Running);
        assert_eq!(systemd_state("inactive").0, ServiceStatus::Stopped);
        assert_eq!(systemd_state("failed").0, ServiceStatus::Failed);
        assert_eq!(systemd_state("activating").0, ServiceStatus::Unknown);
    }
}
