//! What the API shows of the watchdog's rules and their subjects now.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

/// A rule, its settings and the state of each of its subjects now.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RuleView {
    pub name: String,
    /// e.g. `process.cpu_percent`.
    pub metric: String,
    /// `above` or `below`.
    pub op: String,
    pub limit: f64,
    pub for_seconds: f64,
    pub keep_firing_for_seconds: f64,
    pub mount: Option<String>,
    pub service: Option<String>,
    pub probe: Option<String>,
    pub process: Option<String>,
    pub process_cmdline: Option<String>,
    pub notify: Vec<String>,
    pub actions: Vec<ActionView>,
    pub subjects: Vec<SubjectView>,
}

/// An action a rule runs when one of its alerts starts firing.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ActionView {
    /// `kill`, `restart` or `exec`.
    pub kind: String,
    pub signal: Option<String>,
    pub grace_seconds: Option<f64>,
    pub process: Option<String>,
    pub service: Option<String>,
    pub command: Option<String>,
    /// Empty for a caller without a token: like a job's, they need one.
    pub args: Vec<String>,
    pub dry_run: bool,
}

/// One subject of a rule (the host, a mount, a service, a probe, a process).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SubjectView {
    /// e.g. `worker (pid 4242)`.
    pub subject: String,
    /// `inactive`, `pending` or `firing`.
    pub state: String,
    /// The latest value read, when one could be.
    pub value: Option<f64>,
    /// When the subject entered this state (null when inactive).
    pub since: Option<DateTime<Utc>>,
    /// The open alert, when pending or firing.
    pub alert_id: Option<i64>,
}

/// The API's form of a rule's settings, with its subjects.
pub fn rule_view(
    s: &crate::config::watchdog::RuleSettings,
    subjects: Vec<SubjectView>,
) -> RuleView {
    RuleView {
        name: s.name.clone(),
        metric: s.metric.as_str().to_owned(),
        op: if s.above.is_some() { "above" } else { "below" }.to_owned(),
        limit: s.above.or(s.below).unwrap_or_default(),
        for_seconds: s.for_.as_secs_f64(),
        keep_firing_for_seconds: s.keep_firing_for.as_secs_f64(),
        mount: s.mount.clone(),
        service: s.service.clone(),
        probe: s.probe.clone(),
        process: s.process.clone(),
        process_cmdline: s.process_cmdline.as_ref().map(|r| r.get_ref().clone()),
        notify: s.notify.iter().map(|n| n.get_ref().clone()).collect(),
        actions: s
            .actions
            .iter()
            .map(|a| {
                let a = a.get_ref();
                let kill = a.kind == crate::config::watchdog::ActionKind::Kill;
                ActionView {
                    kind: a.kind.as_str().to_owned(),
                    signal: kill.then(|| a.signal.name().to_owned()),
                    grace_seconds: kill.then_some(a.grace.as_secs_f64()),
                    process: a.process.clone(),
                    service: a.service.clone(),
                    command: a.command.clone(),
                    args: a.args.clone(),
                    dry_run: a.dry_run,
                }
            })
            .collect(),
        subjects,
    }
}
