//! Running what a firing alert calls for. Actions are read from the
//! outbox's `actions` table, so one queued before a crash still runs after
//! the restart (while its alert fires). Kills go through `control::Target`,
//! the same guarded, pidfd-pinned path as `DELETE /api/v1/processes/{pid}`;
//! every action is audited with its outcome under the actor `watchdog`.

use super::rules::ProcRef;
use crate::{
    collect::watch::{Matcher, ProcWatch},
    config::watchdog::ActionKind,
    control::{
        ControlError, Target,
        spawn::{SpawnRequest, Spawner},
    },
    domain::{Pid, Signal},
    services::{Action, Services},
    store::{AuditEntry, PendingAction, Store},
};
use serde_json::Value;
use std::{
    collections::{BTreeMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub struct Runner {
    pub store: Arc<Store>,
    pub services: Arc<Services>,
    pub spawner: Arc<Spawner>,
    pub wake: Arc<Notify>,
    running: Mutex<HashSet<i64>>,
}

/// Processes one kill action signals at most, and at once.
const MAX_VICTIMS: usize = 256;
const AT_ONCE: usize = 16;

/// How often the runner looks for work it was not woken for.
const POLL: Duration = Duration::from_secs(30);

/// In words, for the audit and a dry run's outcome.
pub fn describe(kind: ActionKind, spec: &Value) -> String {
    match kind {
        ActionKind::Kill => {
            let sig = spec["signal"].as_str().unwrap_or("TERM");
            let grace = spec["grace_ms"].as_u64().unwrap_or(0) as f64 / 1000.0;
            let who = match spec["process"].as_str() {
                Some(name) => format!("every process named '{name}'"),
                None => targets(spec)
                    .iter()
                    .map(|p| format!("{} (pid {})", p.name, p.pid))
                    .collect::<Vec<_>>()
                    .join(", "),
            };
            format!("send {sig} to {who}, then KILL after {grace} s")
        }
        ActionKind::Restart => format!(
            "restart the service '{}'",
            spec["service"].as_str().unwrap_or("?")
        ),
        ActionKind::Exec => format!(
            "run {} {}",
            spec["command"].as_str().unwrap_or("?"),
            spec["args"]
                .as_array()
                .map(|a| a
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(" "))
                .unwrap_or_default()
        )
        .trim_end()
        .to_owned(),
    }
}

fn targets(spec: &Value) -> Vec<ProcRef> {
    serde_json::from_value(spec["targets"].clone()).unwrap_or_default()
}

fn kind_of(s: &str) -> Option<ActionKind> {
    match s {
        "kill" => Some(ActionKind::Kill),
        "restart" => Some(ActionKind::Restart),
        "exec" => Some(ActionKind::Exec),
        _ => None,
    }
}

impl Runner {
    pub fn new(
        store: Arc<Store>,
        services: Arc<Services>,
        spawner: Arc<Spawner>,
        wake: Arc<Notify>,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            services,
            spawner,
            wake,
            running: Mutex::new(HashSet::new()),
        })
    }

    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            let store = Arc::clone(&self.store);
            match tokio::task::spawn_blocking(move || store.pending_actions(32)).await {
                Ok(Ok(list)) => {
                    for a in list {
                        if !self.claim(a.id) {
                            continue;
                        }
                        let me = Arc::clone(&self);
                        tokio::spawn(async move {
                            let id = a.id;
                            me.run_one(a).await;
                            me.release(id);
                        });
                    }
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "cannot read the watchdog's pending actions")
                }
                Err(e) => tracing::warn!(error = %e, "cannot read the watchdog's pending actions"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }

    fn claim(&self, id: i64) -> bool {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id)
    }
    /// Also wakes the runner: a batch is at most 32 actions, and those
    /// left pending behind it must not wait for the safety poll.
    fn release(&self, id: i64) {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        self.wake.notify_one();
    }

    async fn run_one(&self, a: PendingAction) {
        let Some(kind) = kind_of(&a.kind) else {
            self.finish(
                &a,
                "failed",
                format!("unknown action kind '{}'", a.kind),
                None,
            )
            .await;
            return;
        };
        if a.alert_state != "firing" {
            // Queued before a restart, and the alert resolved meanwhile.
            let why = format!("not run: alert {} is {} now", a.alert_id, a.alert_state);
            self.finish(&a, "failed", why, None).await;
            return;
        }
        let (status, outcome, audits) = match kind {
            ActionKind::Kill => self.kill(&a.spec).await,
            ActionKind::Restart => self.restart(&a.spec).await,
            ActionKind::Exec => self.exec(&a).await,
        };
        self.finish(&a, status, outcome, Some(audits)).await;
    }

    async fn finish(
        &self,
        a: &PendingAction,
        status: &'static str,
        outcome: String,
        audits: Option<Vec<AuditEntry>>,
    ) {
        let store = Arc::clone(&self.store);
        let id = a.id;
        let audits = audits.unwrap_or_else(|| {
            vec![AuditEntry {
                actor: "watchdog".into(),
                action: format!("watchdog.{}", a.kind),
                target: None,
                outcome: status.into(),
                detail: Some(outcome.clone()),
            }]
        });
        let alert = a.alert_id;
        let done = tokio::task::spawn_blocking(move || {
            for mut e in audits {
                e.detail = Some(format!("alert {alert}: {}", e.detail.unwrap_or_default()));
                store.record_audit(&e)?;
            }
            store.finish_action(id, status, &outcome)
        })
        .await;
        if !matches!(done, Ok(Ok(()))) {
            tracing::error!(
                action = id,
                "cannot record the outcome of a watchdog action"
            );
        }
    }

    async fn kill(&self, spec: &Value) -> (&'static str, String, Vec<AuditEntry>) {
        let signal: Signal = spec["signal"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(Signal::Term);
        let grace = Duration::from_millis(spec["grace_ms"].as_u64().unwrap_or(5000));
        let victims = match spec["process"].as_str() {
            Some(name) => {
                let name = name.to_owned();
                tokio::task::spawn_blocking(move || {
                    ProcWatch::new(vec![Matcher::Name(name)])
                        .map(|mut w| w.refresh())
                        .unwrap_or_default()
                        .into_iter()
                        .flatten()
                        .map(|p| ProcRef {
                            pid: p.pid,
                            start_ticks: p.start_ticks,
                            name: p.name,
                        })
                        .collect()
                })
                .await
                .unwrap_or_default()
            }
            None => targets(spec),
        };
        if victims.is_empty() {
            let why = "no process to kill: none matched (or it was already gone)".to_owned();
            let audit = entry("watchdog.kill", None, "ok", &why);
            return ("done", why, vec![audit]);
        }
        // A name many processes share must not turn into thousands of
        // pidfds held through the grace at once.
        let skipped = victims.len().saturating_sub(MAX_VICTIMS);
        let victims = &victims[..victims.len().min(MAX_VICTIMS)];
        let mut results = Vec::with_capacity(victims.len());
        for chunk in victims.chunks(AT_ONCE) {
            let all = chunk.iter().map(|v| kill_one(v, signal, grace));
            results.extend(futures_util::future::join_all(all).await);
        }
        let mut audits = Vec::new();
        let mut lines = Vec::new();
        let mut failed = false;
        for (v, (outcome, detail)) in victims.iter().zip(results) {
            failed |= outcome != "ok";
            let target = format!("{} ({})", v.pid, v.name);
            lines.push(format!("{target}: {detail}"));
            audits.push(entry("watchdog.kill", Some(target), outcome, &detail));
        }
        if skipped > 0 {
            failed = true;
            let why = format!(
                "{skipped} more processes matched and were left alone (at most {MAX_VICTIMS} per action)"
            );
            audits.push(entry("watchdog.kill", None, "refused", &why));
            lines.push(why);
        }
        (
            if failed { "failed" } else { "done" },
            lines.join("; "),
            audits,
        )
    }

    async fn restart(&self, spec: &Value) -> (&'static str, String, Vec<AuditEntry>) {
        let name = spec["service"].as_str().unwrap_or_default().to_owned();
        let (status, outcome) = match self.services.act(&name, Action::Restart).await {
            Ok(v) => (
                "done",
                format!("restarted; the service is {} now", v.state.as_str()),
            ),
            Err(e) => ("failed", e.to_string()),
        };
        let audit = entry(
            "watchdog.restart",
            Some(name),
            if status == "done" { "ok" } else { "failed" },
            &outcome,
        );
        (status, outcome, vec![audit])
    }

    async fn exec(&self, a: &PendingAction) -> (&'static str, String, Vec<AuditEntry>) {
        let spec = &a.spec;
        let mut env: BTreeMap<String, String> =
            serde_json::from_value(spec["env"].clone()).unwrap_or_default();
        env.insert("HOSTWATCH_ALERT_ID".into(), a.alert_id.to_string());
        let req = SpawnRequest {
            command: spec["command"].as_str().unwrap_or_default().to_owned(),
            args: serde_json::from_value(spec["args"].clone()).unwrap_or_default(),
            cwd: None,
            env,
        };
        let target = req.command.clone();
        let (status, outcome, audit_outcome) = match self.spawner.spawn("watchdog", req).await {
            Ok((pid, job)) => ("done", format!("started as pid {pid}, job {job}"), "ok"),
            Err(ControlError::Forbidden(why)) => ("failed", why, "refused"),
            Err(e) => ("failed", e.to_string(), "failed"),
        };
        let audit = entry("watchdog.exec", Some(target), audit_outcome, &outcome);
        (status, outcome, vec![audit])
    }
}

fn entry(action: &str, target: Option<String>, outcome: &str, detail: &str) -> AuditEntry {
    AuditEntry {
        actor: "watchdog".into(),
        action: action.into(),
        target,
        outcome: outcome.into(),
        detail: Some(detail.into()),
    }
}

/// Signals one process through the guards, then KILL after `grace` when it
/// is still there. Answers the audit outcome and what happened.
async fn kill_one(p: &ProcRef, signal: Signal, grace: Duration) -> (&'static str, String) {
    let Ok(pid) = Pid::new(p.pid) else {
        return ("failed", format!("pid {} is not a pid", p.pid));
    };
    let target = match Target::open(pid, Some(p.start_ticks)) {
        Ok(t) => t,
        Err(ControlError::NotFound(_)) => return ("ok", "already gone".into()),
        Err(ControlError::Forbidden(why)) => return ("refused", why),
        Err(e) => return ("failed", e.to_string()),
    };
    if let Err(e) = target.signal(signal) {
        return match e {
            ControlError::NotFound(_) => ("ok", "already gone".into()),
            ControlError::Forbidden(why) => ("refused", why),
            e => ("failed", e.to_string()),
        };
    }
    if signal == Signal::Kill || target.wait_gone(grace).await {
        return ("ok", format!("sent {}; it exited", signal.name()));
    }
    match Target::open(pid, Some(p.start_ticks)).and_then(|t| t.signal(Signal::Kill)) {
        Ok(()) => (
            "ok",
            format!(
                "sent {}; still there after {} ms, so sent KILL",
                signal.name(),
                grace.as_millis()
            ),
        ),
        Err(ControlError::NotFound(_)) => ("ok", format!("sent {}; it exited", signal.name())),
        Err(e) => (
            "failed",
            format!("sent {}; KILL failed: {e}", signal.name()),
        ),
    }
}
