//! The watchdog (SPEC §7): rules evaluated on their own loop over host,
//! disk, service, probe and process metrics; alerts whose transitions,
//! messages and actions are written together (an outbox); a sender that
//! delivers with retries; actions that go through `control`'s guards.

mod actions;
mod engine;
pub mod message;
pub mod notify;
mod outbox;
pub mod probes;
mod rules;
mod state;
pub mod view;

use crate::{config::Settings, control::spawn::Spawner, services::Services, store::Store};
use engine::{Engine, EngineParts};
use message::Event;
use notify::Notifier;
use std::{collections::HashMap, sync::Arc, time::Instant};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
pub use view::{ActionView, RuleView, SubjectView};

#[derive(Debug, thiserror::Error)]
pub enum WatchdogError {
    #[error("no notifier is named '{0}'")]
    UnknownNotifier(String),
    #[error("notifier '{name}': {why}")]
    Notifier { name: String, why: String },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("{0}")]
    Task(String),
    #[error("cannot read the host: {0}")]
    Collect(#[from] crate::collect::CollectError),
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

/// The watchdog: its engine, probes, sender and action runner.
pub struct Watchdog {
    engine: Arc<Engine>,
    probes: Arc<probes::ProbeBook>,
    notifiers: Arc<HashMap<String, (Arc<Notifier>, u32)>>,
    /// Config order, for listings.
    notifier_order: Vec<String>,
    store: Arc<Store>,
    services: Arc<Services>,
    spawner: Arc<Spawner>,
}

impl Watchdog {
    /// Reads the notifiers' secrets (an unreadable file stops start-up with
    /// its name) and builds the engine; nothing runs until `start`.
    pub fn new(
        settings: &Settings,
        store: Arc<Store>,
        services: Arc<Services>,
        spawner: Arc<Spawner>,
    ) -> Result<Arc<Self>, WatchdogError> {
        let mut notifiers = HashMap::new();
        let mut notifier_order = Vec::new();
        for n in &settings.notifiers {
            let n = n.get_ref();
            let built = Notifier::from_settings(n).map_err(|why| WatchdogError::Notifier {
                name: n.name.clone(),
                why,
            })?;
            notifier_order.push(n.name.clone());
            notifiers.insert(n.name.clone(), (Arc::new(built), n.max_attempts));
        }
        let probe_settings: Vec<_> = settings
            .probes
            .iter()
            .map(|p| p.get_ref().clone())
            .collect();
        let probes = probes::ProbeBook::new(&probe_settings, settings.watchdog.probe_results);
        let link_base = settings
            .watchdog
            .url
            .clone()
            .unwrap_or_else(|| format!("http://{}", settings.server.listen))
            .trim_end_matches('/')
            .to_owned();
        let engine = Engine::new(
            EngineParts {
                rules: settings.rules.iter().map(|r| r.get_ref().clone()).collect(),
                interval: settings.watchdog.interval,
                repeat: settings.watchdog.repeat_interval,
                host: crate::collect::host_name()
                    .map_or_else(|| "localhost".into(), |h| h.trim().to_owned()),
                link_base,
                flap_guard: settings.watchdog.flap_guard,
            },
            Arc::clone(&store),
            Arc::clone(&services),
            Arc::clone(&probes),
        )?;
        Ok(Arc::new(Self {
            engine: Arc::new(engine),
            probes,
            notifiers: Arc::new(notifiers),
            notifier_order,
            store,
            services,
            spawner,
        }))
    }

    /// Resumes the open alerts, then starts the probes, the rule loop, the
    /// sender and the action runner (each only when configured).
    pub fn start(
        self: &Arc<Self>,
        shutdown: &CancellationToken,
    ) -> Result<Vec<JoinHandle<()>>, WatchdogError> {
        let resumed = self.engine.resume()?;
        if resumed > 0 {
            tracing::info!(alerts = resumed, "open alerts resumed");
        }
        let results = self.probes.keep_in(Arc::clone(&self.store))?;
        if results > 0 {
            tracing::info!(results, "probe results read back");
        }
        if let Err(e) = self
            .store
            .forget_watchdog_state_except(&self.probes.names(), &self.rule_names())
        {
            tracing::warn!(error = %e, "cannot drop what is kept for probes and rules no longer configured");
        }
        let mut tasks = self.probes.start(shutdown);
        if !self.engine.rules.is_empty() {
            tasks.push(tokio::spawn(Arc::clone(&self.engine).run(shutdown.clone())));
        }
        // The sender runs even without rules: a restart may find messages
        // queued by an older config.
        tasks.push(tokio::spawn(
            outbox::Sender {
                store: Arc::clone(&self.store),
                notifiers: Arc::clone(&self.notifiers),
                wake: Arc::clone(&self.engine.outbox),
            }
            .run(shutdown.clone()),
        ));
        let runner = actions::Runner::new(
            Arc::clone(&self.store),
            Arc::clone(&self.services),
            Arc::clone(&self.spawner),
            Arc::clone(&self.engine.actions),
        );
        tasks.push(tokio::spawn(runner.run(shutdown.clone())));
        Ok(tasks)
    }

    /// Every rule with the state of each subject now.
    pub fn rules(&self) -> Vec<RuleView> {
        self.engine
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| view::rule_view(&r.settings, self.engine.subjects(i)))
            .collect()
    }

    /// The rules' names, in config order (cheaper than `rules()`).
    pub fn rule_names(&self) -> Vec<String> {
        self.engine
            .rules
            .iter()
            .map(|r| r.name().to_owned())
            .collect()
    }

    /// Silences were made or removed: they count from the next tick.
    pub fn silences_changed(&self) {
        self.engine.silences_changed();
    }

    pub fn probes(&self) -> &Arc<probes::ProbeBook> {
        &self.probes
    }

    /// The configured notifiers' names.
    pub fn notifier_names(&self) -> Vec<String> {
        self.notifier_order.clone()
    }

    /// Sends a test message through one notifier now, records it in the
    /// outbox with its outcome (no retries), and says how it went.
    pub async fn test_notifier(
        &self,
        name: &str,
        actor: &str,
    ) -> Result<TestOutcome, WatchdogError> {
        let (notifier, _) = self
            .notifiers
            .get(name)
            .ok_or_else(|| WatchdogError::UnknownNotifier(name.to_owned()))?;
        let host = &self.engine.host;
        let message_id = message::new_message_id(Event::Test, host);
        let subject = format!("[TEST] hostwatch on {host}: a test message through '{name}'");
        let payload = serde_json::json!({
            "message_id": message_id,
            "event": "test",
            "rule": null,
            "subject": format!("notifier {name}"),
            "state": "test",
            "host": host,
            "requested_by": actor,
            "link": format!("{}/api/v1/notifications", self.engine.link_base),
        });
        let queued = crate::store::NewNotification {
            message_id: message_id.clone(),
            notifier: name.to_owned(),
            event: "test",
            status: "pending",
            subject: subject.clone(),
            payload: payload.clone(),
        };
        let store = Arc::clone(&self.store);
        let now = chrono::Utc::now();
        let id = tokio::task::spawn_blocking(move || store.queue_notification(&queued, now))
            .await
            .map_err(|e| WatchdogError::Task(e.to_string()))??;
        let started = Instant::now();
        let result = notifier
            .send(&notify::Message {
                message_id: message_id.clone(),
                subject,
                payload,
            })
            .await;
        let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        let error = result.as_ref().err().map(ToString::to_string);
        let status = if result.is_ok() { "sent" } else { "failed" };
        let store = Arc::clone(&self.store);
        let e = error.clone();
        tokio::task::spawn_blocking(move || {
            store.record_attempt(id, status, e.as_deref(), None, chrono::Utc::now())
        })
        .await
        .map_err(|e| WatchdogError::Task(e.to_string()))??;
        Ok(TestOutcome {
            notifier: name.to_owned(),
            status: status.to_owned(),
            message_id,
            duration_ms,
            error,
        })
    }
}
