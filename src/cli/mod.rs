//! `hostwatch status`, `ps`, `services` …: the agent's own client (SPEC
//! §11), over its API, printing aligned tables or, with `--json`, the
//! API's own answer.

mod agent;
mod show;

pub use agent::{Agent, ClientError, Target};
pub use show::clean;

use crate::{
    api::Signalled,
    collect::Partition,
    sampler::SamplerStatus,
    services::ServiceView,
    store::{Alert, Job, SeriesBucket, Silence},
};
use serde_json::{Value, json};

#[derive(Debug, Clone, clap::Subcommand)]
pub enum ClientCommand {
    /// The sampler, the last check's age and the problems now: firing
    /// alerts, stopped services, full disks.
    Status,
    /// The top processes.
    Ps {
        #[arg(long, value_enum, default_value = "cpu")]
        sort: PsSort,
        /// Only this user's processes.
        #[arg(long)]
        user: Option<String>,
        /// How many.
        #[arg(short = 'n', default_value_t = 15, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        n: u32,
    },
    /// A metric's least, mean and greatest over a window, and its course.
    History {
        /// cpu, memory, swap, load or disk.
        metric: String,
        /// How far back, e.g. 1h, 24h, 7d.
        #[arg(long, default_value = "24h")]
        since: String,
        /// For disk: the mount point.
        #[arg(long)]
        mount: Option<String>,
    },
    /// The watched services and their states.
    Services,
    /// Start, stop or restart a watched service (a control token).
    Service {
        #[arg(value_enum)]
        action: ServiceAction,
        name: String,
    },
    /// Alerts, newest first.
    Alerts,
    /// Silence a rule's alerts for a while (a control token).
    Silence {
        rule: String,
        /// How long, e.g. 30m or 2h.
        #[arg(long = "for", default_value = "2h")]
        duration: String,
        /// Only this subject of the rule.
        #[arg(long)]
        subject: Option<String>,
        #[arg(long)]
        comment: Option<String>,
    },
    /// Send a signal to a process (a control token).
    Kill {
        pid: u32,
        /// TERM, KILL, HUP, INT, USR1 … (with or without SIG).
        #[arg(long, short = 's', default_value = "TERM")]
        signal: String,
    },
    /// Processes started through the API, and how they ended.
    Jobs,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum PsSort {
    Cpu,
    Mem,
    Pid,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ServiceAction {
    Start,
    Stop,
    Restart,
}

/// Runs one client command; prints its answer (a table, or the JSON).
pub fn run(cmd: &ClientCommand, target: &Target, json_out: bool) -> Result<(), ClientError> {
    let agent = Agent::new(target)?;
    let out = |raw: Value, table: String| {
        if json_out {
            say(&(json_text(&raw) + "\n"));
        } else {
            say(&table);
        }
    };
    match cmd {
        ClientCommand::Status => {
            let (sampler, s_raw) = agent.get::<SamplerStatus>("/api/v1/sampler")?;
            let (firing, a_raw) =
                agent.get::<Vec<Alert>>("/api/v1/alerts?state=firing&limit=100")?;
            let (services, v_raw) = agent.get::<Vec<ServiceView>>("/api/v1/services")?;
            let (system, y_raw) = agent.get::<Disks>("/api/v1/system")?;
            out(
                json!({"sampler": s_raw, "firing": a_raw, "services": v_raw, "partitions": y_raw["partitions"]}),
                show::status(&sampler, &firing, &services, &system.partitions),
            );
        }
        ClientCommand::Ps { sort, user, n } => {
            let sort = match sort {
                PsSort::Cpu => "cpu",
                PsSort::Mem => "memory",
                PsSort::Pid => "pid",
            };
            let mut path = format!(
                "/api/v1/processes?sort={sort}&limit={n}&fields=pid,username,cpu_percent,memory_percent,memory_info,name,cmdline"
            );
            if let Some(u) = user {
                path.push_str(&format!("&user={}", encode(u)));
            }
            let (list, raw) = agent.get::<show::Processes>(&path)?;
            out(raw, show::processes(&list));
        }
        ClientCommand::History {
            metric,
            since,
            mount,
        } => {
            let window = crate::domain::time::parse_duration(since)
                .map_err(|e| ClientError::Other(format!("--since {since}: {e}")))?;
            // The end is excluded: a check of this very millisecond is in.
            let now = chrono::Utc::now() + chrono::Duration::milliseconds(1);
            let from = chrono::Duration::from_std(window)
                .ok()
                .and_then(|w| now.checked_sub_signed(w))
                .ok_or_else(|| ClientError::Other(format!("--since {since}: too far back")))?;
            // About 40 buckets, whole seconds.
            let step = (window.as_secs() / 40).max(1);
            let mut path = format!(
                "/api/v1/checks/{}/series?since={}&until={}&step={step}s",
                encode(metric),
                encode(&from.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
                encode(&now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            );
            if let Some(m) = mount {
                path.push_str(&format!("&mount={}", encode(m)));
            }
            let (buckets, raw) = agent.get::<Vec<SeriesBucket>>(&path)?;
            out(raw, show::history(metric, since, &buckets));
        }
        ClientCommand::Services => {
            let (list, raw) = agent.get::<Vec<ServiceView>>("/api/v1/services")?;
            out(raw, show::services(&list));
        }
        ClientCommand::Service { action, name } => {
            let action = match action {
                ServiceAction::Start => "start",
                ServiceAction::Stop => "stop",
                ServiceAction::Restart => "restart",
            };
            let (v, raw) = agent.post::<ServiceView>(
                &format!("/api/v1/services/{}/{action}", encode(name)),
                None,
            )?;
            out(raw, show::services(std::slice::from_ref(&v)));
        }
        ClientCommand::Alerts => {
            let (list, raw) = agent.get::<Vec<Alert>>("/api/v1/alerts?limit=50")?;
            out(raw, show::alerts(&list));
        }
        ClientCommand::Silence {
            rule,
            duration,
            subject,
            comment,
        } => {
            let body =
                json!({"rule": rule, "for": duration, "subject": subject, "comment": comment});
            let (s, raw) = agent.post::<Silence>("/api/v1/silences", Some(body))?;
            out(raw, show::silence(&s));
        }
        ClientCommand::Kill { pid, signal } => {
            let path = format!("/api/v1/processes/{pid}?signal={}", encode(signal));
            let (s, raw) = agent.delete::<Signalled>(&path)?;
            out(raw, format!("sent {} to {}\n", clean(&s.signal), s.pid));
        }
        ClientCommand::Jobs => {
            let (list, raw) = agent.get::<Vec<Job>>("/api/v1/jobs?limit=50")?;
            out(raw, show::jobs(&list));
        }
    }
    Ok(())
}

/// The part of `GET /api/v1/system` that `status` reads.
#[derive(serde::Deserialize)]
struct Disks {
    partitions: Vec<Partition>,
}

/// Writes to stdout; a reader that went away (`| head`) ends the output,
/// not the process with a panic.
fn say(text: &str) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

/// Pretty JSON with DEL and the C1 controls escaped too (serde_json
/// escapes only those below 0x20): a process name cannot reach the
/// terminal as a control sequence through `--json` either.
fn json_text(v: &Value) -> String {
    let text = serde_json::to_string_pretty(v).unwrap_or_default();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if ('\u{7f}'..='\u{9f}').contains(&c) {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
