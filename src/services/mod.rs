//! Watched services: their state now (the manager's status command and the
//! health probe, in parallel and bounded by the service's timeout), and
//! start/stop/restart that wait, bounded, for the state to be reached.
//! States are kept for a second (`cache`), so the API cannot be made to run
//! status commands faster than that, however many clients ask.

mod cache;
pub mod command;
pub mod manager;
pub mod probe;
mod state;
pub mod unit;

pub use manager::{Action, Host, Resolved};
pub use state::ServiceView;

use crate::{config::ServiceSettings, domain::ServiceStatus};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("no watched service is named '{0}'")]
    NotFound(String),
    #[error("another action on '{0}' is under way; try again when it has finished")]
    Busy(String),
    #[error("'{0}' is not installed: neither a systemd unit nor an init script was found")]
    NotInstalled(String),
    #[error("'{name}' has no {action} command in the config")]
    NoCommand { name: String, action: &'static str },
    #[error("{action} of '{name}' failed (command: {detail})")]
    CommandFailed {
        name: String,
        action: &'static str,
        detail: String,
    },
    #[error(
        "{action} of '{name}' did not reach `{wanted}` within {waited_ms} ms (state: `{state}`; command: {detail})"
    )]
    NotReached {
        name: String,
        action: &'static str,
        wanted: &'static str,
        state: &'static str,
        waited_ms: u128,
        detail: String,
    },
}

struct Service {
    settings: ServiceSettings,
    /// One action at a time per service.
    busy: tokio::sync::Mutex<()>,
    cache: cache::Cache,
}

/// Makes the kept state stale when an action ends, also when the request
/// that ran it is dropped half-way: the command may have changed the state.
struct Invalidate<'a>(&'a cache::Cache);

impl Drop for Invalidate<'_> {
    fn drop(&mut self) {
        self.0.invalidate();
    }
}

pub struct Services {
    list: Vec<Service>,
    host: Host,
}

/// How often an action looks at the state while it waits for it.
const POLL: Duration = Duration::from_millis(100);

impl Services {
    pub fn new(settings: Vec<ServiceSettings>, host: Host) -> Self {
        let list = settings
            .into_iter()
            .map(|settings| Service {
                settings,
                busy: tokio::sync::Mutex::new(()),
                cache: cache::Cache::default(),
            })
            .collect();
        Self { list, host }
    }

    fn find(&self, name: &str) -> Result<&Service, ServiceError> {
        self.list
            .iter()
            .find(|s| s.settings.name == name)
            .ok_or_else(|| ServiceError::NotFound(name.to_owned()))
    }

    /// Every service's state, read now for a check: a read that another
    /// caller has under way is joined rather than run twice. None takes
    /// longer than its timeout or `bound`, whichever is shorter.
    pub async fn views(&self, bound: Option<Duration>) -> Vec<ServiceView> {
        let all = self.list.iter().map(|s| async move {
            let read = |left| state::read(&s.settings, &self.host, left);
            match s.cache.fresh(bound, read).await {
                Some(v) => v,
                None => state::unknown(
                    &s.settings,
                    &self.host,
                    "a status read under way did not end within the check's bound".into(),
                ),
            }
        });
        futures_util::future::join_all(all).await
    }

    /// Every service's state, at most `cache::FRESH` old, for the API.
    pub async fn recent_views(&self) -> Vec<ServiceView> {
        let all = self.list.iter().map(|s| self.recent(s));
        futures_util::future::join_all(all).await
    }

    async fn recent(&self, s: &Service) -> ServiceView {
        s.cache
            .recent(state::read(&s.settings, &self.host, None))
            .await
    }

    /// Errs with `NotFound` unless `name` is watched.
    pub fn view_settings(&self, name: &str) -> Result<&ServiceSettings, ServiceError> {
        self.find(name).map(|s| &s.settings)
    }

    /// One service's state, at most `cache::FRESH` old.
    pub async fn view(&self, name: &str) -> Result<ServiceView, ServiceError> {
        Ok(self.recent(self.find(name)?).await)
    }

    /// Runs the action, then waits until the state it asks for is reached;
    /// the whole is bounded by the service's timeout.
    pub async fn act(&self, name: &str, action: Action) -> Result<ServiceView, ServiceError> {
        let service = self.find(name)?;
        let _guard = service
            .busy
            .try_lock()
            .map_err(|_| ServiceError::Busy(name.to_owned()))?;
        let _stale = Invalidate(&service.cache);
        let s = &service.settings;
        let resolved = manager::resolve(s, &self.host);
        if resolved == Resolved::None {
            return Err(ServiceError::NotInstalled(name.to_owned()));
        }
        let started = Instant::now();
        let no_restart_command = manager::action_argv(&resolved, s, Action::Restart).is_none();
        if action == Action::Restart && resolved == Resolved::Command && no_restart_command {
            // Stop, wait until it has stopped (a port still held would fail
            // the start), then start.
            self.step(s, &resolved, Action::Stop, action, started)
                .await?;
            return self
                .step(s, &resolved, Action::Start, action, started)
                .await;
        }
        self.step(s, &resolved, action, action, started).await
    }

    /// Runs `step`'s command, then polls until its state is reached or the
    /// timeout, counted from `started`, runs out. Errors name `action`.
    async fn step(
        &self,
        s: &ServiceSettings,
        r: &Resolved,
        step: Action,
        action: Action,
        started: Instant,
    ) -> Result<ServiceView, ServiceError> {
        let argv = manager::action_argv(r, s, step).ok_or_else(|| ServiceError::NoCommand {
            name: s.name.clone(),
            action: step.as_str(),
        })?;
        let outcome = command::run(&argv, s.timeout.saturating_sub(started.elapsed())).await;
        if !outcome.success() {
            return Err(ServiceError::CommandFailed {
                name: s.name.clone(),
                action: action.as_str(),
                detail: outcome.describe(),
            });
        }
        let wanted = match step {
            Action::Stop => ServiceStatus::Stopped,
            Action::Start | Action::Restart => ServiceStatus::Running,
        };
        loop {
            let view = state::read(s, &self.host, None).await;
            let gone =
                wanted == ServiceStatus::Stopped && view.state == ServiceStatus::NotInstalled;
            if view.state == wanted || gone {
                return Ok(view);
            }
            if started.elapsed() + POLL > s.timeout {
                return Err(ServiceError::NotReached {
                    name: s.name.clone(),
                    action: action.as_str(),
                    wanted: wanted.as_str(),
                    state: view.state.as_str(),
                    waited_ms: started.elapsed().as_millis(),
                    detail: outcome.describe(),
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }
}
