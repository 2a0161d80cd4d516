//! Rules as the engine uses them, and the readings they are evaluated on:
//! one value per subject, read as cheaply as the metric allows.

use super::probes::ProbeBook;
use crate::{
    collect::watch::{HostNow, HostWant, HostWatch, Matcher, ProcSample, ProcWatch, disk_percent},
    config::watchdog::{RuleMetric, RuleSettings, SubjectKind},
    services::Services,
};
use std::{collections::HashMap, sync::Arc};

use super::state::Timing;

pub struct Rule {
    pub settings: RuleSettings,
    pub above: bool,
    pub limit: f64,
    pub timing: Timing,
    /// Index of the rule's matcher in the process watch.
    pub matcher: Option<usize>,
}

impl Rule {
    pub fn name(&self) -> &str {
        &self.settings.name
    }
    pub fn metric(&self) -> RuleMetric {
        self.settings.metric
    }
    pub fn beyond(&self, v: f64) -> bool {
        if self.above {
            v > self.limit
        } else {
            v < self.limit
        }
    }
    pub fn kind(&self) -> SubjectKind {
        self.settings.metric.subject()
    }
}

/// A process, enough to find it again and to kill that one and no other.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ProcRef {
    pub pid: u32,
    pub start_ticks: u64,
    pub name: String,
}

/// One subject's value now.
#[derive(Debug, Clone)]
pub struct Reading {
    /// Identity across ticks and restarts.
    pub key: String,
    /// What people read.
    pub label: String,
    /// None when it could not be read this time (not the same as gone).
    pub value: Option<f64>,
    pub process: Option<ProcRef>,
}

/// Compiles the rules; the process matchers go to one `ProcWatch`.
pub fn compile(
    settings: &[RuleSettings],
    repeat: std::time::Duration,
) -> Result<(Vec<Rule>, ProcWatch), crate::collect::CollectError> {
    let mut matchers = Vec::new();
    let rules = settings
        .iter()
        .map(|s| {
            let matcher = match (&s.process, &s.process_cmdline) {
                (Some(name), _) if s.metric.subject() == SubjectKind::Process => {
                    matchers.push(Matcher::Name(name.clone()));
                    Some(matchers.len() - 1)
                }
                (None, Some(re)) if s.metric.subject() == SubjectKind::Process => {
                    // Checked when the config was read.
                    match regex_lite::Regex::new(re.get_ref()) {
                        Ok(re) => {
                            matchers.push(Matcher::Cmdline(re));
                            Some(matchers.len() - 1)
                        }
                        Err(_) => None,
                    }
                }
                _ => None,
            };
            Rule {
                above: s.above.is_some(),
                limit: s.above.or(s.below).unwrap_or_default(),
                timing: Timing {
                    for_: s.for_,
                    keep_firing_for: s.keep_firing_for,
                    repeat,
                },
                matcher,
                settings: s.clone(),
            }
        })
        .collect();
    Ok((rules, ProcWatch::new(matchers)?))
}

/// What the blocking part of a tick reads: processes, the host, mounts.
pub struct Readers {
    pub procs: ProcWatch,
    pub host: HostWatch,
    pub needs_host: HostWant,
}

impl Readers {
    /// Whether a tick's readings may block (processes, which can be many,
    /// or a mount's `statvfs`) and so need a blocking thread; the host's
    /// own figures are three reads of `/proc` files kept open, taken where
    /// the tick runs.
    pub fn may_block(&self, rules: &[Rule]) -> bool {
        self.procs.watches_any() || rules.iter().any(|r| r.metric() == RuleMetric::DiskPercent)
    }
}

/// The blocking readings of one tick, per rule (services and probes are
/// filled in by `async_readings`).
pub fn blocking_readings(rules: &[Rule], r: &mut Readers) -> Vec<Vec<Reading>> {
    let procs = r.procs.refresh();
    let host: Option<HostNow> = if r.needs_host.any() {
        r.host.read(r.needs_host).ok()
    } else {
        None
    };
    let mut mounts: HashMap<String, Option<f64>> = HashMap::new();
    rules
        .iter()
        .map(|rule| {
            let one = |key: &str, value: Option<f64>| {
                vec![Reading {
                    key: key.to_owned(),
                    label: key.to_owned(),
                    value,
                    process: None,
                }]
            };
            match rule.metric() {
                RuleMetric::CpuPercent => one("host", host.as_ref().and_then(|h| h.cpu_percent)),
                RuleMetric::MemoryPercent => one("host", host.and_then(|h| h.memory_percent)),
                RuleMetric::SwapPercent => one("host", host.and_then(|h| h.swap_percent)),
                RuleMetric::Load1 => one("host", host.and_then(|h| h.load1)),
                RuleMetric::DiskPercent => {
                    let m = rule.settings.mount.clone().unwrap_or_else(|| "/".into());
                    let v = *mounts.entry(m.clone()).or_insert_with(|| disk_percent(&m));
                    one(&m, v)
                }
                RuleMetric::ProcessCpuPercent
                | RuleMetric::ProcessMemoryPercent
                | RuleMetric::ProcessRssBytes => rule
                    .matcher
                    .and_then(|i| procs.get(i))
                    .map(|list| {
                        list.iter()
                            .map(|p| process_reading(rule.metric(), p))
                            .collect()
                    })
                    .unwrap_or_default(),
                _ => Vec::new(),
            }
        })
        .collect()
}

/// A process may name itself anything, line breaks included: what reaches
/// a message, a log line or an exec action's environment is printable.
fn printable(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

fn process_reading(metric: RuleMetric, p: &ProcSample) -> Reading {
    let name = printable(&p.name);
    let value = match metric {
        RuleMetric::ProcessCpuPercent => p.cpu_percent,
        RuleMetric::ProcessMemoryPercent => Some(p.memory_percent),
        _ => Some(p.rss_bytes as f64),
    };
    Reading {
        key: format!("pid:{}:{}", p.pid, p.start_ticks),
        label: format!("{name} (pid {})", p.pid),
        value,
        process: Some(ProcRef {
            pid: p.pid,
            start_ticks: p.start_ticks,
            name,
        }),
    }
}

/// Whether a service is up: 1 running, 0 not, None when unknown.
pub async fn service_up(services: &Services, name: &str) -> Option<f64> {
    match services.view(name).await {
        Ok(v) => match v.state {
            crate::domain::ServiceStatus::Unknown => None,
            crate::domain::ServiceStatus::Running => Some(1.0),
            _ => Some(0.0),
        },
        Err(_) => None,
    }
}

/// The services the rules watch, by name.
pub fn watched_services(rules: &[Rule]) -> Vec<String> {
    let mut names: Vec<String> = rules
        .iter()
        .filter(|r| r.metric() == RuleMetric::ServiceUp)
        .filter_map(|r| r.settings.service.clone())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Service and probe readings. Service states come from `services_up`,
/// kept by a poller of their own: a status command that takes a second
/// must not hold up a tick that kills runaway processes.
pub fn async_readings(
    rules: &[Rule],
    services_up: &HashMap<String, Option<f64>>,
    probes: &ProbeBook,
    out: &mut [Vec<Reading>],
) {
    for (rule, readings) in rules.iter().zip(out.iter_mut()) {
        let name = match rule.kind() {
            SubjectKind::Service => rule.settings.service.clone(),
            SubjectKind::Probe => rule.settings.probe.clone(),
            _ => None,
        };
        let Some(name) = name else { continue };
        let value = match rule.metric() {
            RuleMetric::ServiceUp => services_up.get(&name).copied().flatten(),
            RuleMetric::ProbeOk => probes.latest(&name).map(|r| f64::from(u8::from(r.ok))),
            RuleMetric::ProbeLatencyMs => probes.latest(&name).map(|r| r.latency_ms),
            RuleMetric::ProbeLatencyRatio => probes.latency_ratio(&name),
            _ => None,
        };
        readings.push(Reading {
            key: name.clone(),
            label: name,
            value,
            process: None,
        });
    }
}

/// The watchdog reads nothing it does not need: of the host's files, those
/// its rules' metrics come from.
pub fn needs_host(rules: &[Rule]) -> HostWant {
    let mut want = HostWant::default();
    for r in rules {
        match r.metric() {
            RuleMetric::CpuPercent => want.cpu = true,
            RuleMetric::MemoryPercent | RuleMetric::SwapPercent => want.memory = true,
            RuleMetric::Load1 => want.load = true,
            _ => {}
        }
    }
    want
}

pub type SharedReaders = Arc<std::sync::Mutex<Readers>>;
