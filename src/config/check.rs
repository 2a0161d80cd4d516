//! Checks that need more than one key: names given twice, references to
//! notifiers, probes and services, keys that belong to another kind. Each
//! message starts with the line of the table or value it is about.

use super::{
    Settings,
    notifier::notifier,
    watchdog::{ActionKind, ProbeKind, ProbeSettings, RuleSettings, SubjectKind},
};
use std::collections::HashSet;
use toml::Spanned;

/// Line numbers of byte offsets in the text that was parsed.
struct Lines<'a>(&'a str);

impl Lines<'_> {
    fn at(&self, offset: usize) -> usize {
        let end = offset.min(self.0.len());
        self.0.as_bytes()[..end]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    }
    fn of<T>(&self, s: &Spanned<T>) -> usize {
        self.at(s.span().start)
    }
}

impl Settings {
    pub(super) fn check(&self, text: &str) -> Result<(), String> {
        let lines = Lines(text);
        let mut seen = HashSet::new();
        if let Some(dup) = self.services.iter().find(|s| !seen.insert(s.name.as_str())) {
            return Err(format!("[[services]] name '{}' is given twice", dup.name));
        }
        let sv = &self.server;
        if sv.tls_cert.is_some() != sv.tls_key.is_some() {
            return Err(
                "[server] tls_cert and tls_key go together: give both (PEM files) to serve \
                 HTTPS, or neither for HTTP"
                    .into(),
            );
        }
        let st = &self.storage;
        if st.rollup_retention < st.retention {
            return Err(format!(
                "[storage] rollup_retention ({}) is shorter than retention ({}): \
                 the hourly roll-ups answer for history once raw checks are purged; \
                 keep them at least as long",
                days(st.rollup_retention),
                days(st.retention)
            ));
        }
        let w = &self.watchdog;
        if w.repeat_interval < w.interval.max(std::time::Duration::from_secs(1)) {
            return Err(
                "[watchdog] repeat_interval: use at least 1s and at least watchdog.interval".into(),
            );
        }
        if !(1..=100_000).contains(&w.probe_results) {
            return Err("[watchdog] probe_results: use 1 to 100000".into());
        }
        if w.flap_guard > std::time::Duration::from_secs(86_400) {
            return Err("[watchdog] flap_guard: use at most 1d".into());
        }
        unique(&lines, "notifiers", &self.notifiers, |n| &n.name)?;
        unique(&lines, "probes", &self.probes, |p| &p.name)?;
        unique(&lines, "rules", &self.rules, |r| &r.name)?;
        for n in &self.notifiers {
            notifier(n.get_ref())
                .map_err(|m| format!("line {}: [[notifiers]] {m}", lines.of(n)))?;
        }
        for p in &self.probes {
            probe(p.get_ref()).map_err(|m| format!("line {}: [[probes]] {m}", lines.of(p)))?;
        }
        for r in &self.rules {
            self.rule(&lines, r)?;
        }
        let mut names = HashSet::new();
        let mut urls = HashSet::new();
        for (i, r) in self.remote_write.iter().enumerate() {
            let at = lines.of(r);
            let r = r.get_ref();
            super::remote_write::remote_write(r)
                .map_err(|m| format!("line {at}: [[remote_write]] {m}"))?;
            if !urls.insert(r.url.as_str()) {
                return Err(format!(
                    "line {at}: [[remote_write]] the same url is given twice"
                ));
            }
            if !names.insert(r.shown_name(i)) {
                return Err(format!(
                    "line {at}: [[remote_write]] two receivers are named '{}'",
                    r.shown_name(i)
                ));
            }
        }
        Ok(())
    }

    fn rule(&self, lines: &Lines, spanned: &Spanned<RuleSettings>) -> Result<(), String> {
        let r = spanned.get_ref();
        let at = |line: usize, m: String| format!("line {line}: [[rules]] '{}': {m}", r.name);
        let here = lines.of(spanned);
        let metric = r.metric.as_str();
        match (r.above, r.below) {
            (Some(_), Some(_)) => {
                return Err(at(here, "give `above` or `below`, not both".into()));
            }
            (None, None) => {
                return Err(at(here, "give a limit: `above = N` or `below = N`".into()));
            }
            (Some(v), None) | (None, Some(v)) if !v.is_finite() => {
                return Err(at(here, format!("the limit {v} is not a number")));
            }
            _ => {}
        }
        let kind = r.metric.subject();
        let given = [
            ("mount", r.mount.is_some(), SubjectKind::Mount),
            ("service", r.service.is_some(), SubjectKind::Service),
            ("probe", r.probe.is_some(), SubjectKind::Probe),
            ("process", r.process.is_some(), SubjectKind::Process),
            (
                "process_cmdline",
                r.process_cmdline.is_some(),
                SubjectKind::Process,
            ),
        ];
        if let Some((key, ..)) = given.iter().find(|(_, set, k)| *set && *k != kind) {
            return Err(at(
                here,
                format!("`{key}` does not apply to metric {metric}"),
            ));
        }
        match kind {
            SubjectKind::Service => {
                let name = r
                    .service
                    .as_deref()
                    .ok_or_else(|| at(here, format!("{metric} needs `service`")))?;
                if !self.services.iter().any(|s| s.name == name) {
                    return Err(at(
                        here,
                        format!("service '{name}' is not one of the [[services]]"),
                    ));
                }
            }
            SubjectKind::Probe => {
                let name = r
                    .probe
                    .as_deref()
                    .ok_or_else(|| at(here, format!("{metric} needs `probe`")))?;
                if !self.probes.iter().any(|p| p.get_ref().name == name) {
                    return Err(at(
                        here,
                        format!("probe '{name}' is not one of the [[probes]]"),
                    ));
                }
            }
            SubjectKind::Process => match (&r.process, &r.process_cmdline) {
                (None, None) => {
                    return Err(at(
                        here,
                        format!("{metric} needs `process` (a name) or `process_cmdline` (a regex)"),
                    ));
                }
                (Some(_), Some(_)) => {
                    return Err(at(
                        here,
                        "give `process` or `process_cmdline`, not both".into(),
                    ));
                }
                (_, Some(re)) => {
                    regex_lite::Regex::new(re.get_ref()).map_err(|e| {
                        at(
                            lines.of(re),
                            format!("process_cmdline is not a valid regex: {e}"),
                        )
                    })?;
                }
                (Some(name), None) if name.is_empty() => {
                    return Err(at(here, "process: give a process name".into()));
                }
                _ => {}
            },
            SubjectKind::Host | SubjectKind::Mount => {}
        }
        for n in &r.notify {
            if !self
                .notifiers
                .iter()
                .any(|x| x.get_ref().name == *n.get_ref())
            {
                return Err(at(
                    lines.of(n),
                    format!("notify names '{}', which no [[notifiers]] has", n.get_ref()),
                ));
            }
        }
        for a in &r.actions {
            let line = lines.of(a);
            let a = a.get_ref();
            match a.kind {
                ActionKind::Kill => {
                    if kind != SubjectKind::Process && a.process.is_none() {
                        return Err(at(
                            line,
                            format!(
                                "a kill action on {metric} needs `process`: the name of the processes to kill"
                            ),
                        ));
                    }
                    if a.grace.is_zero() || a.grace > std::time::Duration::from_secs(3600) {
                        return Err(at(line, "grace: use 1ms to 1h".into()));
                    }
                }
                ActionKind::Restart => {
                    let name = a
                        .service
                        .as_deref()
                        .or(r.service.as_deref())
                        .ok_or_else(|| at(line, "a restart action needs `service`".into()))?;
                    if !self.services.iter().any(|s| s.name == name) {
                        return Err(at(
                            line,
                            format!("service '{name}' is not one of the [[services]]"),
                        ));
                    }
                }
                ActionKind::Exec => {
                    let cmd = a
                        .command
                        .as_deref()
                        .filter(|c| !c.trim().is_empty())
                        .ok_or_else(|| at(line, "an exec action needs `command`".into()))?;
                    if self.control.spawn_allow.is_empty() {
                        return Err(at(
                            line,
                            format!("exec '{cmd}' needs control.spawn_allow to list it"),
                        ));
                    }
                }
            }
            let foreign = match a.kind {
                ActionKind::Kill => a.service.is_some() || a.command.is_some(),
                ActionKind::Restart => a.process.is_some() || a.command.is_some(),
                ActionKind::Exec => a.process.is_some() || a.service.is_some(),
            };
            if foreign {
                return Err(at(
                    line,
                    format!(
                        "a {} action takes only the keys of its kind",
                        a.kind.as_str()
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Whole days as `30d`, the way retentions are written; else humantime's
/// form (`2years` is 730.5 days).
fn days(d: std::time::Duration) -> String {
    match d.as_secs() {
        s if s % 86_400 == 0 && d.subsec_nanos() == 0 => format!("{}d", s / 86_400),
        _ => crate::domain::time::format_duration(d),
    }
}

fn unique<T>(
    lines: &Lines,
    section: &str,
    items: &[Spanned<T>],
    name: impl Fn(&T) -> &String,
) -> Result<(), String> {
    let mut seen = HashSet::new();
    for i in items {
        if !seen.insert(name(i.get_ref())) {
            return Err(format!(
                "line {}: [[{section}]] name '{}' is given twice",
                lines.of(i),
                name(i.get_ref())
            ));
        }
    }
    Ok(())
}

fn probe(p: &ProbeSettings) -> Result<(), String> {
    let me = format!("'{}'", p.name);
    if p.timeout.is_zero() || p.timeout > std::time::Duration::from_secs(300) {
        return Err(format!("{me}: timeout: use 1ms to 5m"));
    }
    if p.window < p.interval || p.window > std::time::Duration::from_secs(86_400) {
        return Err(format!(
            "{me}: window: use at least the probe's interval and at most 1d"
        ));
    }
    let (needs, present) = match p.kind {
        ProbeKind::Http => ("url", p.url.is_some()),
        ProbeKind::Tcp => ("address", p.address.is_some()),
        ProbeKind::Exec => ("command", p.command.is_some()),
    };
    if !present {
        return Err(format!("{me}: a {:?} probe needs `{needs}`", p.kind).to_lowercase());
    }
    let others = [
        ("url", p.url.is_some() && needs != "url"),
        ("address", p.address.is_some() && needs != "address"),
        ("command", p.command.is_some() && needs != "command"),
        ("args", !p.args.is_empty() && p.kind != ProbeKind::Exec),
    ];
    if let Some((key, _)) = others.iter().find(|(_, wrong)| *wrong) {
        return Err(format!("{me}: `{key}` does not apply to a {:?} probe", p.kind).to_lowercase());
    }
    match p.kind {
        ProbeKind::Http => {
            crate::services::probe::validate(p.url.as_deref().unwrap_or_default())
                .map_err(|e| format!("{me}: {e}"))?;
        }
        ProbeKind::Tcp => {
            let a = p.address.as_deref().unwrap_or_default();
            let ok = a
                .rsplit_once(':')
                .is_some_and(|(h, port)| !h.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
            if !ok {
                return Err(format!("{me}: address '{a}' must be host:port"));
            }
        }
        ProbeKind::Exec => {}
    }
    Ok(())
}
