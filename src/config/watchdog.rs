//! The watchdog's settings (SPEC §7): `[watchdog]`, `[[notifiers]]`,
//! `[[probes]]` and `[[rules]]`. Each table keeps its span, so a check that
//! needs more than one key (a rule naming an unknown notifier, `above` with
//! `below`) still reports the line it is about.

use super::de::{duration, plain_name, signal};
use crate::domain::Signal;
use serde::Deserialize;
use std::{path::PathBuf, time::Duration};
use toml::Spanned;

/// Shortest watchdog and probe interval.
pub const MIN_TICK: Duration = Duration::from_millis(100);
/// Longest watchdog and probe interval.
pub const MAX_TICK: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WatchdogSettings {
    #[serde(deserialize_with = "tick")]
    pub interval: Duration,
    /// A firing alert is notified again this often while it fires.
    #[serde(deserialize_with = "duration")]
    pub repeat_interval: Duration,
    /// Results each probe keeps in memory and serves.
    pub probe_results: usize,
    /// Where people reach this agent, for the links in messages
    /// (default `http://<server.listen>`).
    pub url: Option<String>,
    /// After an alert resolves, its rule and subject must be beyond the
    /// limit this long before they fire again: a value that hovers at the
    /// limit gives one alert a `flap_guard`, not one a tick.
    #[serde(deserialize_with = "duration")]
    pub flap_guard: Duration,
}

impl Default for WatchdogSettings {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(1),
            repeat_interval: Duration::from_secs(4 * 3600),
            probe_results: 1000,
            url: None,
            flap_guard: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotifierKind {
    Smtp,
    Webhook,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    #[default]
    None,
    Starttls,
    Tls,
}

/// One notifier; which keys it needs depends on `kind` (checked after
/// parsing, with the table's line).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifierSettings {
    #[serde(deserialize_with = "plain_name")]
    pub name: String,
    pub kind: NotifierKind,
    // smtp
    pub host: Option<String>,
    pub port: Option<u16>,
    #[serde(default)]
    pub tls: SmtpTls,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    /// PEM certificates to trust beside the system's (a private CA).
    pub ca_file: Option<PathBuf>,
    pub from: Option<String>,
    #[serde(default)]
    pub to: Vec<String>,
    // webhook
    pub url: Option<String>,
    pub bearer_token_file: Option<PathBuf>,
    // both
    #[serde(default = "five_seconds", deserialize_with = "duration")]
    pub timeout: Duration,
    /// Attempts before a message is `failed`.
    #[serde(default = "ten")]
    pub max_attempts: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProbeKind {
    Http,
    Tcp,
    Exec,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeSettings {
    #[serde(deserialize_with = "plain_name")]
    pub name: String,
    pub kind: ProbeKind,
    pub url: Option<String>,
    pub address: Option<String>,
    pub command: Option<String>,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default = "one_second", deserialize_with = "tick")]
    pub interval: Duration,
    #[serde(default = "one_second", deserialize_with = "duration")]
    pub timeout: Duration,
    /// The span `probe.latency_ratio` takes its minimum over.
    #[serde(default = "ten_seconds", deserialize_with = "duration")]
    pub window: Duration,
}

/// What a rule watches; the subject follows from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
pub enum RuleMetric {
    #[serde(rename = "cpu.percent")]
    CpuPercent,
    #[serde(rename = "memory.percent")]
    MemoryPercent,
    #[serde(rename = "swap.percent")]
    SwapPercent,
    #[serde(rename = "load1")]
    Load1,
    #[serde(rename = "disk.percent")]
    DiskPercent,
    #[serde(rename = "service.up")]
    ServiceUp,
    #[serde(rename = "probe.ok")]
    ProbeOk,
    #[serde(rename = "probe.latency_ms")]
    ProbeLatencyMs,
    #[serde(rename = "probe.latency_ratio")]
    ProbeLatencyRatio,
    #[serde(rename = "process.cpu_percent")]
    ProcessCpuPercent,
    #[serde(rename = "process.memory_percent")]
    ProcessMemoryPercent,
    #[serde(rename = "process.rss_bytes")]
    ProcessRssBytes,
}

/// The kind of thing a metric is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectKind {
    Host,
    Mount,
    Service,
    Probe,
    Process,
}

impl RuleMetric {
    pub fn subject(self) -> SubjectKind {
        use RuleMetric::*;
        match self {
            CpuPercent | MemoryPercent | SwapPercent | Load1 => SubjectKind::Host,
            DiskPercent => SubjectKind::Mount,
            ServiceUp => SubjectKind::Service,
            ProbeOk | ProbeLatencyMs | ProbeLatencyRatio => SubjectKind::Probe,
            ProcessCpuPercent | ProcessMemoryPercent | ProcessRssBytes => SubjectKind::Process,
        }
    }

    pub fn as_str(self) -> &'static str {
        use RuleMetric::*;
        match self {
            CpuPercent => "cpu.percent",
            MemoryPercent => "memory.percent",
            SwapPercent => "swap.percent",
            Load1 => "load1",
            DiskPercent => "disk.percent",
            ServiceUp => "service.up",
            ProbeOk => "probe.ok",
            ProbeLatencyMs => "probe.latency_ms",
            ProbeLatencyRatio => "probe.latency_ratio",
            ProcessCpuPercent => "process.cpu_percent",
            ProcessMemoryPercent => "process.memory_percent",
            ProcessRssBytes => "process.rss_bytes",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSettings {
    #[serde(deserialize_with = "plain_name")]
    pub name: String,
    pub metric: RuleMetric,
    pub mount: Option<String>,
    pub service: Option<String>,
    pub probe: Option<String>,
    /// Processes whose name is exactly this.
    pub process: Option<String>,
    /// Processes whose command line matches this regex.
    pub process_cmdline: Option<Spanned<String>>,
    pub above: Option<f64>,
    pub below: Option<f64>,
    #[serde(default, rename = "for", deserialize_with = "duration")]
    pub for_: Duration,
    #[serde(default, deserialize_with = "duration")]
    pub keep_firing_for: Duration,
    #[serde(default)]
    pub notify: Vec<Spanned<String>>,
    #[serde(default)]
    pub actions: Vec<Spanned<ActionSettings>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionKind {
    Kill,
    Restart,
    Exec,
}

impl ActionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Kill => "kill",
            ActionKind::Restart => "restart",
            ActionKind::Exec => "exec",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionSettings {
    pub kind: ActionKind,
    /// kill: the first signal.
    #[serde(default = "term", deserialize_with = "signal")]
    pub signal: Signal,
    /// kill: how long before `KILL` follows when the process is still there.
    #[serde(default = "five_seconds", deserialize_with = "duration")]
    pub grace: Duration,
    /// kill: the processes with this exact name instead of the offenders.
    pub process: Option<String>,
    /// restart: the watched service (default: the rule's).
    pub service: Option<String>,
    /// exec: the command (allowed by `control.spawn_allow`) and its args.
    pub command: Option<String>,
    #[serde(default)]
    pub args: Vec<String>,
    /// Record what would be done; do nothing.
    #[serde(default)]
    pub dry_run: bool,
}

fn tick<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let v = duration(d)?;
    if !(MIN_TICK..=MAX_TICK).contains(&v) {
        return Err(serde::de::Error::custom(format!(
            "interval {} is out of range: use 100ms to 1h",
            crate::domain::time::format_duration(v)
        )));
    }
    Ok(v)
}

fn term() -> Signal {
    Signal::Term
}
fn one_second() -> Duration {
    Duration::from_secs(1)
}
fn five_seconds() -> Duration {
    Duration::from_secs(5)
}
fn ten_seconds() -> Duration {
    Duration::from_secs(10)
}
fn ten() -> u32 {
    10
}
