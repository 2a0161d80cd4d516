//! Which manager runs a service, and the argv of each of its commands.
//! The service name from a request is only ever matched against configured
//! names; what goes into an argv comes from the config.

use crate::config::{Manager, ServiceSettings};
use serde::Serialize;
use std::path::{Path, PathBuf};
use utoipa::ToSchema;

/// The manager a service resolved to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Resolved {
    Systemd {
        unit: String,
    },
    Sysv {
        script: String,
    },
    Command,
    /// `auto` found neither a systemd unit nor an init script.
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Start,
    Stop,
    Restart,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Stop => "stop",
            Action::Restart => "restart",
        }
    }
}

/// Where the host keeps things; tests point these at stand-ins.
#[derive(Debug, Clone)]
pub struct Host {
    /// Present when systemd is PID 1 (`sd_booted`).
    pub systemd_marker: PathBuf,
    pub init_d: PathBuf,
}

impl Default for Host {
    fn default() -> Self {
        Self {
            systemd_marker: PathBuf::from("/run/systemd/system"),
            init_d: PathBuf::from("/etc/init.d"),
        }
    }
}

/// Debian names Apache `apache2`; `httpd` elsewhere.
fn candidates(s: &ServiceSettings) -> Vec<String> {
    match &s.unit {
        Some(u) => vec![u.clone()],
        None if s.name == "httpd" => vec!["httpd".into(), "apache2".into()],
        None => vec![s.name.clone()],
    }
}

pub fn resolve(s: &ServiceSettings, host: &Host) -> Resolved {
    let unit = || s.unit.clone().unwrap_or_else(|| s.name.clone());
    match s.manager {
        Manager::Systemd => Resolved::Systemd { unit: unit() },
        Manager::Sysv => Resolved::Sysv { script: unit() },
        Manager::Command => Resolved::Command,
        Manager::Auto if host.systemd_marker.exists() => {
            // The first candidate whose unit file systemd knows; systemctl
            // itself says `not_installed` when none is.
            let names = candidates(s);
            let found = names.iter().find(|n| unit_known(n)).cloned();
            Resolved::Systemd {
                unit: found.unwrap_or_else(|| names[0].clone()),
            }
        }
        Manager::Auto => candidates(s)
            .into_iter()
            .find(|n| host.init_d.join(n).is_file())
            .map_or(Resolved::None, |script| Resolved::Sysv { script }),
    }
}

fn unit_known(name: &str) -> bool {
    [
        "/etc/systemd/system",
        "/lib/systemd/system",
        "/usr/lib/systemd/system",
        "/run/systemd/system",
    ]
    .iter()
    .any(|d| Path::new(d).join(format!("{name}.service")).exists())
}

fn words(cmd: &str) -> Vec<String> {
    // Config commands run through sh so an operator may write pipes; they
    // come from the config file, never from a request.
    vec!["/bin/sh".into(), "-c".into(), cmd.into()]
}

/// `systemctl VERB [OPTIONS] -- UNIT.service`: after `--`, a unit name is
/// never read as an option, whatever the config holds.
fn systemctl(verb: &str, options: &[&str], unit: &str) -> Vec<String> {
    let mut argv = vec!["systemctl".to_owned(), verb.to_owned()];
    argv.extend(options.iter().map(|o| (*o).to_owned()));
    argv.extend(["--".to_owned(), format!("{unit}.service")]);
    argv
}

/// Asks systemd whether it knows the unit at all: it prints `not-found`
/// when it does not.
pub fn load_state_argv(unit: &str) -> Vec<String> {
    systemctl("show", &["--property=LoadState", "--value"], unit)
}

/// The status command; `None` where there is nothing to run. A sysv status
/// runs the init script itself, as `service NAME status` would (with the
/// same clean environment): it runs on every check, and the `service`
/// wrapper costs several times what the script does.
pub fn status_argv(r: &Resolved, s: &ServiceSettings, host: &Host) -> Option<Vec<String>> {
    match r {
        Resolved::Systemd { unit } => Some(systemctl("is-active", &[], unit)),
        Resolved::Sysv { script } => Some(vec![
            host.init_d.join(script).display().to_string(),
            "status".into(),
        ]),
        Resolved::Command => s.status.as_deref().map(words),
        Resolved::None => None,
    }
}

/// The argv of an action; `None` where the config gives no command for it.
pub fn action_argv(r: &Resolved, s: &ServiceSettings, a: Action) -> Option<Vec<String>> {
    match r {
        Resolved::Systemd { unit } => Some(systemctl(a.as_str(), &[], unit)),
        // `service` takes no `--` (it would be the service's name); the
        // script name cannot start with `-` (`unit::validate`).
        Resolved::Sysv { script } => {
            Some(vec!["service".into(), script.clone(), a.as_str().into()])
        }
        Resolved::Command => {
            let cmd = match a {
                Action::Start => s.start.as_deref(),
                Action::Stop => s.stop.as_deref(),
                // A restart is a stop then a start where no command is given.
                Action::Restart => None,
            };
            cmd.map(words)
        }
        Resolved::None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(name: &str, manager: Manager) -> ServiceSettings {
        ServiceSettings::new(name, manager)
    }

    fn host(dir: &Path) -> Host {
        Host {
            systemd_marker: dir.join("no-systemd"),
            init_d: dir.join("init.d"),
        }
    }

    #[test]
    fn auto_finds_apache2_for_httpd_without_systemd() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("init.d")).unwrap();
        std::fs::write(dir.path().join("init.d/apache2"), "").unwrap();
        let r = resolve(&service("httpd", Manager::Auto), &host(dir.path()));
        assert_eq!(
            r,
            Resolved::Sysv {
                script: "apache2".into()
            }
        );
    }

    #[test]
    fn auto_without_unit_or_script_is_not_installed() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            resolve(&service("nosuch", Manager::Auto), &host(dir.path())),
            Resolved::None
        );
    }

    #[test]
    fn commands_take_the_configured_unit_as_one_argument() {
        let mut s = service("web", Manager::Systemd);
        s.unit = Some("apache2; rm -rf /".into());
        let r = resolve(&s, &Host::default());
        let argv = action_argv(&r, &s, Action::Stop).unwrap();
        assert_eq!(
            argv,
            vec!["systemctl", "stop", "--", "apache2; rm -rf /.service"]
        );
    }

    #[test]
    fn every_systemctl_command_ends_its_options_before_the_unit() {
        let mut s = service("web", Manager::Systemd);
        s.unit = Some("-H".into());
        let r = resolve(&s, &Host::default());
        let mut all = vec![
            status_argv(&r, &s, &Host::default()).unwrap(),
            load_state_argv("-H"),
        ];
        for a in [Action::Start, Action::Stop, Action::Restart] {
            all.push(action_argv(&r, &s, a).unwrap());
        }
        for argv in all {
            assert_eq!(argv[0], "systemctl");
            assert_eq!(argv[argv.len() - 2..], ["--", "-H.service"], "{argv:?}");
        }
    }
}
