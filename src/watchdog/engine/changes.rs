//! The stored form of a planned step: the state change with the messages
//! and actions it calls for, silenced where a silence covers the subject.

use super::{Engine, Planned, Subject};
use crate::{
    config::watchdog::ActionKind,
    store::{AlertRef, NewAction, NewAlert, NewNotification, StateChange},
    watchdog::{
        message::{self, AlertFacts, Event},
        rules::Rule,
        state::{Phase, Step},
    },
};
use chrono::{DateTime, Utc};
use serde_json::json;

impl Engine {
    /// The stored form of one planned step; None when it stays.
    pub(super) fn transition(
        &self,
        p: &Planned,
        now: DateTime<Utc>,
        silences: &[(String, Option<String>)],
    ) -> Option<StateChange> {
        let rule = &self.rules[p.key.0];
        let table = self.table();
        let subject = table.get(&p.key)?;
        let open = subject.open.as_ref();
        let (from, to, event) = match p.step {
            Step::Stay => return None,
            // Only the `keep_firing_for` clock moves.
            Step::WithinSince | Step::BeyondAgain => ("firing", "firing", None),
            Step::Open(phase) => (
                "inactive",
                phase.as_str(),
                (phase == Phase::Firing).then_some(Event::Firing),
            ),
            Step::Fire => ("pending", "firing", Some(Event::Firing)),
            Step::Drop => ("pending", "inactive", None),
            Step::Resolve => ("firing", "resolved", Some(Event::Resolved)),
            Step::Remind => ("firing", "firing", Some(Event::Repeat)),
        };
        let silenced = silences.iter().any(|(r, s)| {
            r == rule.name()
                && s.as_deref().is_none_or(|s| {
                    s == subject.label || subject.process.as_ref().is_some_and(|p| p.name == s)
                })
        });
        let started_at = open.map_or(now, |o| o.started_at);
        let facts = AlertFacts {
            rule: rule.name(),
            metric: rule.metric(),
            subject: &subject.label,
            value: subject.value,
            limit: rule.limit,
            above: rule.above,
            state: to,
            started_at,
            fired_at: match p.step {
                Step::Open(Phase::Firing) | Step::Fire => Some(now),
                _ => open.and_then(|o| o.fired_at),
            },
            resolved_at: (to == "resolved").then_some(now),
            gone: p.gone,
        };
        let notifications = match event {
            Some(e) => rule
                .settings
                .notify
                .iter()
                .map(|n| {
                    let message_id = message::new_message_id(e, &self.host);
                    NewNotification {
                        payload: message::payload(
                            e,
                            &message_id,
                            &self.host,
                            &self.link_base,
                            &facts,
                        ),
                        subject: message::subject_line(e, &self.host, &facts),
                        message_id,
                        notifier: n.get_ref().clone(),
                        event: e.as_str(),
                        status: if silenced { "silenced" } else { "pending" },
                    }
                })
                .collect(),
            None => Vec::new(),
        };
        let actions = if event == Some(Event::Firing) {
            self.actions_for(rule, subject, &facts, silenced)
        } else {
            Vec::new()
        };
        Some(StateChange {
            alert: match open {
                Some(o) => AlertRef::Existing(o.alert_id),
                None => AlertRef::New(NewAlert {
                    rule: rule.name().to_owned(),
                    metric: rule.metric().as_str().to_owned(),
                    subject: subject.label.clone(),
                    subject_key: p.key.1.clone(),
                    threshold: rule.limit,
                    op: if rule.above { "above" } else { "below" },
                }),
            },
            from,
            to,
            at: now,
            value: subject.value,
            within_since: match p.step {
                Step::WithinSince => Some(now),
                Step::Remind => open.and_then(|o| o.within_since),
                _ => None,
            },
            notifications,
            actions,
        })
    }

    fn actions_for(
        &self,
        rule: &Rule,
        subject: &Subject,
        facts: &AlertFacts,
        silenced: bool,
    ) -> Vec<NewAction> {
        rule.settings
            .actions
            .iter()
            .map(|a| {
                let a = a.get_ref();
                let mut spec = match a.kind {
                    ActionKind::Kill => {
                        let mut s = json!({
                            "signal": a.signal.name(),
                            "grace_ms": a.grace.as_millis() as u64,
                        });
                        match (&a.process, &subject.process) {
                            (Some(name), _) => s["process"] = json!(name),
                            (None, Some(p)) => s["targets"] = json!([p]),
                            (None, None) => s["targets"] = json!([]),
                        }
                        s
                    }
                    ActionKind::Restart => json!({
                        "service": a.service.clone().or_else(|| rule.settings.service.clone()),
                    }),
                    ActionKind::Exec => json!({
                        "command": a.command,
                        "args": a.args,
                        "env": {
                            "HOSTWATCH_ALERT_RULE": facts.rule,
                            "HOSTWATCH_ALERT_SUBJECT": facts.subject,
                            "HOSTWATCH_ALERT_METRIC": facts.metric.as_str(),
                            "HOSTWATCH_ALERT_STATE": facts.state,
                            "HOSTWATCH_ALERT_VALUE": facts.value.map(|v| v.to_string()).unwrap_or_default(),
                            "HOSTWATCH_ALERT_LIMIT": facts.limit.to_string(),
                            "HOSTWATCH_ALERT_OP": if facts.above { "above" } else { "below" },
                            "HOSTWATCH_ALERT_STARTED_AT": crate::domain::time::rfc3339(facts.started_at),
                            "HOSTWATCH_ALERT_HOST": self.host,
                        },
                    }),
                };
                spec["dry_run"] = json!(a.dry_run);
                let (status, outcome) = if silenced {
                    ("silenced", Some("a silence covers this alert: nothing was done".to_owned()))
                } else if a.dry_run {
                    ("dry_run", Some(format!("dry run: would {}", crate::watchdog::actions::describe(a.kind, &spec))))
                } else {
                    ("pending", None)
                };
                NewAction {
                    kind: a.kind.as_str(),
                    spec,
                    status,
                    outcome,
                }
            })
            .collect()
    }
}
