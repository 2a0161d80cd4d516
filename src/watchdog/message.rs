//! Rendering an alert event as a message: a subject line a person can
//! triage from a phone, and the alert as JSON (the webhook's body).

use crate::config::watchdog::RuleMetric;
use chrono::{DateTime, Utc};
use serde_json::json;

/// What happened to the alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Firing,
    Resolved,
    Repeat,
    Test,
}

impl Event {
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Firing => "firing",
            Event::Resolved => "resolved",
            Event::Repeat => "repeat",
            Event::Test => "test",
        }
    }
    fn tag(self) -> &'static str {
        match self {
            Event::Firing => "FIRING",
            Event::Resolved => "RESOLVED",
            Event::Repeat => "STILL FIRING",
            Event::Test => "TEST",
        }
    }
}

/// The facts a message tells.
#[derive(Debug, Clone)]
pub struct AlertFacts<'a> {
    pub rule: &'a str,
    pub metric: RuleMetric,
    pub subject: &'a str,
    pub value: Option<f64>,
    pub limit: f64,
    pub above: bool,
    pub state: &'a str,
    pub started_at: DateTime<Utc>,
    pub fired_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// The subject is gone (a process that exited).
    pub gone: bool,
}

/// The short name of a metric in a subject line.
fn label(m: RuleMetric) -> &'static str {
    use RuleMetric::*;
    match m {
        CpuPercent | ProcessCpuPercent => "cpu",
        MemoryPercent | ProcessMemoryPercent => "memory",
        SwapPercent => "swap",
        Load1 => "load1",
        DiskPercent => "disk",
        ServiceUp => "up",
        ProbeOk => "ok",
        ProbeLatencyMs => "latency",
        ProbeLatencyRatio => "latency ratio",
        ProcessRssBytes => "rss",
    }
}

/// A value in the unit a person expects for the metric.
pub fn format_value(m: RuleMetric, v: f64) -> String {
    use RuleMetric::*;
    match m {
        CpuPercent | MemoryPercent | SwapPercent | DiskPercent | ProcessCpuPercent
        | ProcessMemoryPercent => format!("{} %", round(v)),
        Load1 => format!("{v:.2}"),
        ServiceUp | ProbeOk => round(v),
        ProbeLatencyMs => format!("{} ms", round(v)),
        ProbeLatencyRatio => format!("{v:.1}×"),
        ProcessRssBytes => bytes(v),
    }
}

fn round(v: f64) -> String {
    if v.abs() >= 10.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn bytes(v: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = v;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    format!("{} {}", round(v), UNITS[i])
}

/// `[FIRING] runaway-worker on web1: worker (pid 4242) cpu 93 % > 20 %`
pub fn subject_line(event: Event, host: &str, f: &AlertFacts) -> String {
    let what = label(f.metric);
    let limit = format_value(f.metric, f.limit);
    let op = if f.above { ">" } else { "<" };
    let detail = match (f.gone, f.value) {
        (true, _) => "is gone".to_owned(),
        (false, Some(v)) if event == Event::Resolved => {
            format!("{what} {} (limit {limit})", format_value(f.metric, v))
        }
        (false, Some(v)) => format!("{what} {} {op} {limit}", format_value(f.metric, v)),
        (false, None) => format!("{what} {op} {limit}"),
    };
    format!(
        "[{}] {} on {host}: {} {detail}",
        event.tag(),
        f.rule,
        f.subject
    )
}

/// The alert as JSON; `link` holds `{alert_id}` until the store fills it.
pub fn payload(
    event: Event,
    message_id: &str,
    host: &str,
    link_base: &str,
    f: &AlertFacts,
) -> serde_json::Value {
    json!({
        "message_id": message_id,
        "event": event.as_str(),
        "summary": subject_line(event, host, f),
        "rule": f.rule,
        "subject": f.subject,
        "state": f.state,
        "metric": f.metric.as_str(),
        "value": f.value,
        "limit": f.limit,
        "op": if f.above { "above" } else { "below" },
        "started_at": crate::domain::time::rfc3339(f.started_at),
        "fired_at": f.fired_at.map(crate::domain::time::rfc3339),
        "resolved_at": f.resolved_at.map(crate::domain::time::rfc3339),
        "host": host,
        "link": format!("{link_base}/api/v1/alerts/{{alert_id}}"),
    })
}

/// A message id unique to this message and stable once stored:
/// `<random>.<event>@<host>`.
pub fn new_message_id(event: Event, host: &str) -> String {
    let mut raw = [0u8; 12];
    if getrandom::fill(&mut raw).is_err() {
        // The clock still makes it unique enough for one host.
        raw[..8].copy_from_slice(&Utc::now().timestamp_nanos_opt().unwrap_or(0).to_be_bytes());
    }
    let host: String = host
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
        .collect();
    let host = if host.is_empty() {
        "localhost".into()
    } else {
        host
    };
    format!("{}.{}@{host}", hex::encode(raw), event.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_lines_read_like_the_issue_asks() {
        let f = AlertFacts {
            rule: "runaway-worker",
            metric: RuleMetric::ProcessCpuPercent,
            subject: "worker (pid 4242)",
            value: Some(93.2),
            limit: 20.0,
            above: true,
            state: "firing",
            started_at: Utc::now(),
            fired_at: None,
            resolved_at: None,
            gone: false,
        };
        assert_eq!(
            subject_line(Event::Firing, "host", &f),
            "[FIRING] runaway-worker on host: worker (pid 4242) cpu 93 % > 20 %"
        );
        let gone = AlertFacts {
            gone: true,
            ..f.clone()
        };
        assert_eq!(
            subject_line(Event::Resolved, "web1", &gone),
            "[RESOLVED] runaway-worker on web1: worker (pid 4242) is gone"
        );
        let rss = AlertFacts {
            metric: RuleMetric::ProcessRssBytes,
            value: Some(3.5 * 1024.0 * 1024.0 * 1024.0),
            limit: 2.0 * 1024.0 * 1024.0 * 1024.0,
            ..f
        };
        assert!(subject_line(Event::Firing, "h", &rss).ends_with("rss 3.5 GiB > 2 GiB"));
    }

    #[test]
    fn message_ids_differ_and_name_the_host() {
        let a = new_message_id(Event::Firing, "web 1");
        let b = new_message_id(Event::Firing, "web 1");
        assert_ne!(a, b);
        assert!(a.ends_with(".firing@web1"), "{a}");
    }
}
