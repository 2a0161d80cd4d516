//! The client's tables: comfy-table, fitted to the terminal's width when
//! stdout is one; no colour, so that a pipe or `NO_COLOR` gets plain text.

use crate::{
    collect::Partition,
    domain::ServiceStatus,
    sampler::SamplerStatus,
    services::ServiceView,
    store::{Alert, AlertState, Job, SeriesBucket, Silence},
};
use chrono::{DateTime, Utc};
use comfy_table::{ContentArrangement, Table, presets::NOTHING};
use std::fmt::Write as _;

/// The processes as `ps` asks for them (the list's fields are chosen per
/// request, so they come as options).
#[derive(Debug, serde::Deserialize)]
pub struct Processes {
    pub total: usize,
    pub processes: Vec<Process>,
}

#[derive(Debug, serde::Deserialize)]
pub struct Process {
    pub pid: u32,
    pub username: Option<String>,
    pub cpu_percent: Option<f64>,
    pub memory_percent: Option<f64>,
    pub memory_info: Option<MemoryInfo>,
    pub name: Option<String>,
    pub cmdline: Option<Vec<String>>,
}

#[derive(Debug, serde::Deserialize)]
pub struct MemoryInfo {
    pub rss: u64,
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(NOTHING).set_header(header.to_vec());
    if let Some(width) = terminal_width() {
        t.set_content_arrangement(ContentArrangement::Dynamic)
            .set_width(width);
    }
    t
}

/// A row whose cells are safe to print: a process may name itself with
/// escape sequences, and a root terminal must not run them.
fn row(t: &mut Table, cells: Vec<String>) {
    t.add_row(cells.into_iter().map(|c| clean(&c)).collect::<Vec<_>>());
}

/// `text` with each control character (escape, newline, …) as `?`.
pub fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// Colour for `status`'s words, only on a terminal and without `NO_COLOR`
/// (no-color.org): a pipe or a file gets plain text.
fn paint(text: &str, colour: u8) -> String {
    let on = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && rustix::termios::isatty(std::io::stdout());
    if on {
        format!("\x1b[{colour}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

const GREEN: u8 = 32;
const RED: u8 = 31;
const YELLOW: u8 = 33;

fn terminal_width() -> Option<u16> {
    let out = std::io::stdout();
    if !rustix::termios::isatty(&out) {
        return None;
    }
    rustix::termios::tcgetwinsize(&out)
        .ok()
        .map(|w| w.ws_col)
        .filter(|w| *w > 0)
}

fn render(t: &Table) -> String {
    // comfy-table pads with a leading space in this preset; trim each line.
    let mut s: String = t
        .to_string()
        .lines()
        .map(|l| l.trim_end().to_owned() + "\n")
        .collect();
    if s.is_empty() {
        s.push('\n');
    }
    s
}

/// `3 s ago`, `5 min ago`, `2 h ago`, `4 d ago`.
fn ago(t: DateTime<Utc>) -> String {
    let s = (Utc::now() - t).num_seconds().max(0);
    match s {
        0..120 => format!("{s} s ago"),
        120..7_200 => format!("{} min ago", s / 60),
        7_200..172_800 => format!("{} h ago", s / 3_600),
        _ => format!("{} d ago", s / 86_400),
    }
}

fn bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn opt(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.1}"))
}

pub fn status(
    s: &SamplerStatus,
    firing: &[Alert],
    services: &[ServiceView],
    disks: &[Partition],
) -> String {
    let mut out = String::new();
    let every = format!("every {} s", s.interval_seconds);
    let last = s.last_check_at.map_or_else(
        || "no check yet".into(),
        |t| format!("last check {}", ago(t)),
    );
    let state = if s.running {
        paint("running", GREEN)
    } else {
        paint("stopped", YELLOW)
    };
    let _ = writeln!(
        out,
        "sampler   {state} · {every} · {last} · {} checks since start",
        s.checks_taken
    );
    let mut problems = Vec::new();
    if let Some(e) = &s.storage_error {
        problems.push(format!("checks are not being stored: {e}"));
    }
    for a in firing.iter().filter(|a| a.state == AlertState::Firing) {
        let value = a.value.map_or_else(String::new, |v| format!(" at {v:.1}"));
        problems.push(format!(
            "alert {}: {}{value} ({} {}) since {}",
            a.rule,
            a.subject,
            a.op,
            a.limit,
            ago(a.fired_at.unwrap_or(a.started_at))
        ));
    }
    for v in services {
        match v.state {
            ServiceStatus::Stopped | ServiceStatus::Failed => {
                problems.push(format!("service {} is {}", v.name, v.state.as_str()))
            }
            _ if v.healthy == Some(false) => {
                problems.push(format!("service {} fails its health probe", v.name))
            }
            _ => {}
        }
    }
    for p in disks {
        let d = &p.disk;
        if let Some(e) = &d.error {
            problems.push(format!("disk {} does not answer: {e}", d.mount));
        } else if let Some(pc) = d.percent.filter(|pc| *pc >= 90.0) {
            problems.push(format!("disk {} is {pc:.0} % full", d.mount));
        }
    }
    if problems.is_empty() {
        let _ = writeln!(out, "problems  {}", paint("none", GREEN));
    } else {
        let _ = writeln!(out, "problems  {}", paint(&problems.len().to_string(), RED));
        for p in problems {
            let _ = writeln!(out, "  - {}", clean(&p));
        }
    }
    out
}

pub fn processes(list: &Processes) -> String {
    let mut t = table(&["PID", "USER", "CPU%", "MEM%", "RSS", "COMMAND"]);
    for p in &list.processes {
        let command = match &p.cmdline {
            Some(c) if !c.is_empty() => c.join(" "),
            _ => p.name.clone().unwrap_or_default(),
        };
        row(
            &mut t,
            vec![
                p.pid.to_string(),
                p.username.clone().unwrap_or_else(|| "-".into()),
                opt(p.cpu_percent),
                opt(p.memory_percent),
                p.memory_info
                    .as_ref()
                    .map_or_else(|| "-".into(), |m| bytes(m.rss)),
                command,
            ],
        );
    }
    let mut s = render(&t);
    let _ = writeln!(s, "{} of {} processes", list.processes.len(), list.total);
    s
}

const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

pub fn history(metric: &str, since: &str, buckets: &[SeriesBucket]) -> String {
    if buckets.is_empty() {
        return clean(&format!("{metric}: no checks in the last {since}")) + "\n";
    }
    let n: u64 = buckets.iter().map(|b| b.count).sum();
    let min = buckets.iter().map(|b| b.min).fold(f64::INFINITY, f64::min);
    let max = buckets
        .iter()
        .map(|b| b.max)
        .fold(f64::NEG_INFINITY, f64::max);
    let avg = buckets.iter().map(|b| b.avg * b.count as f64).sum::<f64>() / n.max(1) as f64;
    let (lo, hi) = (
        buckets.iter().map(|b| b.avg).fold(f64::INFINITY, f64::min),
        buckets
            .iter()
            .map(|b| b.avg)
            .fold(f64::NEG_INFINITY, f64::max),
    );
    let line: String = buckets
        .iter()
        .map(|b| {
            let f = if hi > lo {
                (b.avg - lo) / (hi - lo)
            } else {
                0.0
            };
            BARS[((f * 7.0).round() as usize).min(7)]
        })
        .collect();
    let head = clean(&format!(
        "{metric} over the last {since}: min {min:.2}  avg {avg:.2}  max {max:.2}  ({n} checks)"
    ));
    format!("{head}\n{line}\n")
}

pub fn services(list: &[ServiceView]) -> String {
    let mut t = table(&["SERVICE", "STATE", "HEALTH", "CHECKED", "DETAIL"]);
    for v in list {
        let health = match (v.healthy, v.probe_ms) {
            (Some(true), Some(ms)) => format!("ok ({ms:.0} ms)"),
            (Some(true), None) => "ok".into(),
            (Some(false), _) => "failing".into(),
            (None, _) => "-".into(),
        };
        row(
            &mut t,
            vec![
                v.name.clone(),
                v.state.as_str().to_owned(),
                health,
                ago(v.checked_at),
                v.detail.clone().unwrap_or_default(),
            ],
        );
    }
    if list.is_empty() {
        return "no services are watched\n".into();
    }
    render(&t)
}

pub fn alerts(list: &[Alert]) -> String {
    if list.is_empty() {
        return "no alerts\n".into();
    }
    let mut t = table(&["ID", "RULE", "SUBJECT", "STATE", "VALUE", "LIMIT", "SINCE"]);
    for a in list {
        row(
            &mut t,
            vec![
                a.id.to_string(),
                a.rule.clone(),
                a.subject.clone(),
                a.state.as_str().to_owned(),
                opt(a.value),
                format!("{} {}", a.op, a.limit),
                ago(a.started_at),
            ],
        );
    }
    render(&t)
}

pub fn silence(s: &Silence) -> String {
    format!(
        "silenced {} until {} (silence {})\n",
        clean(&s.rule),
        s.until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        s.id
    )
}

pub fn jobs(list: &[Job]) -> String {
    if list.is_empty() {
        return "no jobs\n".into();
    }
    let mut t = table(&["ID", "PID", "STATE", "EXIT", "STARTED", "BY", "COMMAND"]);
    for j in list {
        let exit = match (j.exit_code, j.signal) {
            (Some(c), _) => c.to_string(),
            (None, Some(s)) => format!("signal {s}"),
            _ => "-".into(),
        };
        row(
            &mut t,
            vec![
                j.id.to_string(),
                j.pid.map_or_else(|| "-".into(), |p| p.to_string()),
                j.state.clone(),
                exit,
                ago(j.started_at),
                j.actor.clone(),
                std::iter::once(j.command.as_str())
                    .chain(j.args.iter().map(String::as_str))
                    .collect::<Vec<_>>()
                    .join(" "),
            ],
        );
    }
    render(&t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_cannot_send_escape_sequences_to_the_terminal() {
        let list = Processes {
            total: 1,
            processes: vec![Process {
                pid: 7,
                username: Some("eve".into()),
                cpu_percent: Some(1.0),
                memory_percent: None,
                memory_info: None,
                name: None,
                cmdline: Some(vec!["evil\u{1b}]0;pwned\u{7}".into(), "two\nlines".into()]),
            }],
        };
        let out = processes(&list);
        assert!(!out.chars().any(|c| c.is_control() && c != '\n'), "{out:?}");
        assert_eq!(out.lines().count(), 3, "{out}");
        assert!(out.contains("evil?]0;pwned? two?lines"), "{out}");
    }

    #[test]
    fn ages_read_as_a_person_says_them() {
        let now = Utc::now();
        assert_eq!(ago(now - chrono::Duration::seconds(5)), "5 s ago");
        assert_eq!(ago(now - chrono::Duration::minutes(5)), "5 min ago");
        assert_eq!(ago(now - chrono::Duration::hours(5)), "5 h ago");
        assert_eq!(ago(now - chrono::Duration::days(5)), "5 d ago");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(3 << 20), "3.0 MiB");
    }
}
