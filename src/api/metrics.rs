//! Prometheus text exposition: the latest check, the sampler, the agent and
//! the watchdog.

use super::{ApiError, AppState, auth::ReadAccess, blocking, error::responses::*};
use crate::{domain::Check, store::StoreError};
use actix_web::{HttpResponse, get, web};
use std::fmt::Write;

#[path = "metrics_watchdog.rs"]
mod watchdog;

/// Prometheus metrics (text exposition format 0.0.4).
#[utoipa::path(
    tag = "health",
    responses(
        (status = 200, description = "Metrics in Prometheus text format", content_type = "text/plain; version=0.0.4", body = String),
        (status = 401, response = Unauthorized),
        (status = 500, response = Internal),
    ),
    security((), ("bearer" = []))
)]
#[get("/metrics")]
pub async fn metrics(state: web::Data<AppState>, _: ReadAccess) -> Result<HttpResponse, ApiError> {
    let sampler = state.sampler.status();
    let state = state.into_inner();
    let text = blocking(move || {
        let latest = match state.store.latest_check() {
            Ok(k) => Some(k),
            Err(StoreError::NotFound) => None,
            Err(e) => return Err(e.into()),
        };
        let agent = state
            .agent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .read()
            .ok();
        let counts = state.store.watchdog_counts()?;
        let mut out = Exposition::default();
        if let Some(k) = &latest {
            check(&mut out, k);
        }
        watchdog::write(&mut out, &state.watchdog, &counts);
        out.gauge(
            "hostwatch_sampler_running",
            "1 while the sampler runs.",
            &[],
            f64::from(u8::from(sampler.running)),
        );
        out.gauge(
            "hostwatch_sampler_interval_seconds",
            "Seconds between checks.",
            &[],
            sampler.interval_seconds,
        );
        out.counter(
            "hostwatch_sampler_checks_taken_total",
            "Checks taken and stored since the agent started.",
            &[],
            sampler.checks_taken as f64,
        );
        if let Some(a) = agent {
            out.counter(
                "hostwatch_agent_cpu_seconds_total",
                "CPU time the agent has used.",
                &[],
                a.cpu_seconds,
            );
            out.gauge(
                "hostwatch_agent_resident_memory_bytes",
                "The agent's resident memory.",
                &[],
                a.rss_bytes as f64,
            );
            out.gauge(
                "hostwatch_agent_threads",
                "The agent's threads.",
                &[],
                a.threads as f64,
            );
            if let Some(fds) = a.open_fds {
                out.gauge(
                    "hostwatch_agent_open_fds",
                    "The agent's open file descriptors.",
                    &[],
                    fds as f64,
                );
            }
            out.gauge(
                "hostwatch_agent_uptime_seconds",
                "Seconds since the agent started.",
                &[],
                a.uptime_seconds,
            );
        }
        out.gauge(
            "hostwatch_database_size_bytes",
            "Database file and WAL.",
            &[],
            state.store.size_bytes() as f64,
        );
        out.gauge(
            "hostwatch_build_info",
            "The agent's version.",
            &[("version", env!("CARGO_PKG_VERSION"))],
            1.0,
        );
        Ok(out.text)
    })
    .await?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(text))
}

fn check(out: &mut Exposition, k: &Check) {
    out.gauge(
        "hostwatch_check_timestamp_seconds",
        "When the latest check was taken.",
        &[],
        k.taken_at.timestamp_millis() as f64 / 1000.0,
    );
    out.gauge(
        "hostwatch_check_duration_seconds",
        "How long the latest check took.",
        &[],
        k.duration_ms / 1000.0,
    );
    if let Some(c) = &k.cpu {
        out.gauge(
            "hostwatch_cpu_usage_percent",
            "CPU use of all cores, 0-100.",
            &[],
            c.percent,
        );
        out.gauge(
            "hostwatch_load1",
            "Load average over 1 minute.",
            &[],
            c.load1,
        );
        out.gauge(
            "hostwatch_load5",
            "Load average over 5 minutes.",
            &[],
            c.load5,
        );
        out.gauge(
            "hostwatch_load15",
            "Load average over 15 minutes.",
            &[],
            c.load15,
        );
    }
    if let Some(m) = &k.memory {
        out.gauge(
            "hostwatch_memory_total_bytes",
            "Physical memory.",
            &[],
            m.total_bytes as f64,
        );
        out.gauge(
            "hostwatch_memory_used_bytes",
            "Memory in use.",
            &[],
            m.used_bytes as f64,
        );
        out.gauge(
            "hostwatch_memory_available_bytes",
            "Memory available for new work.",
            &[],
            m.available_bytes as f64,
        );
        out.gauge(
            "hostwatch_swap_total_bytes",
            "Swap space.",
            &[],
            m.swap_total_bytes as f64,
        );
        out.gauge(
            "hostwatch_swap_used_bytes",
            "Swap in use.",
            &[],
            m.swap_used_bytes as f64,
        );
    }
    for d in k.disks.iter().flatten() {
        let l = [
            ("mount", d.mount.as_str()),
            ("device", d.device.as_str()),
            ("fs_type", d.fs_type.as_str()),
        ];
        out.gauge(
            "hostwatch_filesystem_size_bytes",
            "Filesystem size.",
            &l,
            d.total_bytes as f64,
        );
        out.gauge(
            "hostwatch_filesystem_used_bytes",
            "Filesystem space in use.",
            &l,
            d.used_bytes as f64,
        );
    }
    if let Some(io) = &k.io {
        out.gauge(
            "hostwatch_io_interval_seconds",
            "Seconds the latest check's I/O figures cover.",
            &[],
            io.interval_ms as f64 / 1000.0,
        );
        out.gauge(
            "hostwatch_disk_read_bytes",
            "Bytes read from disks over that interval.",
            &[],
            io.read_bytes as f64,
        );
        out.gauge(
            "hostwatch_disk_written_bytes",
            "Bytes written to disks over that interval.",
            &[],
            io.written_bytes as f64,
        );
        out.gauge(
            "hostwatch_network_received_bytes",
            "Bytes received over that interval.",
            &[],
            io.received_bytes as f64,
        );
        out.gauge(
            "hostwatch_network_sent_bytes",
            "Bytes sent over that interval.",
            &[],
            io.sent_bytes as f64,
        );
    }
    for s in k.services.iter().flatten() {
        let l = [("service", s.name.as_str()), ("state", s.state.as_str())];
        let up = f64::from(u8::from(s.state == crate::domain::ServiceStatus::Running));
        out.gauge(
            "hostwatch_service_up",
            "1 when the service is running.",
            &l,
            up,
        );
        if let Some(h) = s.healthy {
            out.gauge(
                "hostwatch_service_healthy",
                "1 when the health probe passed.",
                &l[..1],
                f64::from(u8::from(h)),
            );
        }
    }
}

/// Writes samples grouped by metric, with HELP and TYPE once per metric.
#[derive(Default)]
struct Exposition {
    text: String,
    last: String,
}

impl Exposition {
    fn gauge(&mut self, name: &str, help: &str, labels: &[(&str, &str)], v: f64) {
        self.sample(name, "gauge", help, labels, v);
    }

    fn counter(&mut self, name: &str, help: &str, labels: &[(&str, &str)], v: f64) {
        self.sample(name, "counter", help, labels, v);
    }

    fn sample(&mut self, name: &str, kind: &str, help: &str, labels: &[(&str, &str)], v: f64) {
        let t = &mut self.text;
        if self.last != name {
            let _ = writeln!(t, "# HELP {name} {help}\n# TYPE {name} {kind}");
            self.last = name.to_owned();
        }
        t.push_str(name);
        if !labels.is_empty() {
            t.push('{');
            for (i, (k, val)) in labels.iter().enumerate() {
                if i > 0 {
                    t.push(',');
                }
                let escaped = val
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n");
                let _ = write!(t, "{k}=\"{escaped}\"");
            }
            t.push('}');
        }
        let _ = writeln!(t, " {v}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_and_type_are_written_once_per_metric_and_labels_escaped() {
        let mut e = Exposition::default();
        e.gauge("x_bytes", "X.", &[("m", "/a\"b")], 1.0);
        e.gauge("x_bytes", "X.", &[("m", "/c")], 2.5);
        assert_eq!(e.text.matches("# TYPE x_bytes gauge").count(), 1);
        assert!(e.text.contains("x_bytes{m=\"/a\\\"b\"} 1\n"), "{}", e.text);
        assert!(e.text.contains("x_bytes{m=\"/c\"} 2.5\n"));
    }
}
