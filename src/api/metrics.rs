//! Prometheus text exposition: the latest check, the sampler, the agent and
//! the watchdog.

use super::{ApiError, AppState, auth::ReadAccess, blocking, error::responses::*};
use crate::{collect::SystemReader, domain::ServiceStatus, store::LatestServices};
use actix_web::{HttpResponse, get, web};
use std::fmt::Write;

#[path = "metrics_host.rs"]
mod host;
#[path = "metrics_remote_write.rs"]
mod remote_write;
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
        let latest = state.store.latest_services()?;
        let agent = state
            .agent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .read()
            .ok();
        let counts = state.store.watchdog_counts()?;
        // The host is read now: counters since boot, levels of this moment.
        let counters = super::agent::with_system(&state.system, SystemReader::counters);
        let mut out = Exposition::default();
        if let Some(c) = &counters {
            host::write(&mut out, c);
        }
        if let Some(k) = &latest {
            check(&mut out, k);
        }
        watchdog::write(&mut out, &state.watchdog, &counts);
        remote_write::write(&mut out, &state.remote_write, &state.store);
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
            // The agent itself, named as Prometheus' client libraries name
            // a process's own figures.
            out.counter(
                "process_cpu_seconds_total",
                "User and system CPU time the agent has used.",
                &[],
                a.cpu_seconds,
            );
            out.gauge(
                "process_resident_memory_bytes",
                "The agent's resident memory.",
                &[],
                a.rss_bytes as f64,
            );
            if let Some(fds) = a.open_fds {
                out.gauge(
                    "process_open_fds",
                    "The agent's open file descriptors.",
                    &[],
                    fds as f64,
                );
            }
            out.gauge(
                "process_start_time_seconds",
                "When the agent started, seconds since the Unix epoch.",
                &[],
                a.start_time_seconds,
            );
            out.gauge(
                "process_threads",
                "The agent's threads.",
                &[],
                a.threads as f64,
            );
        }
        out.counter(
            "hostwatch_http_connections_reset_total",
            "Connections reset because their client stopped reading its answer.",
            &[],
            state.connections.reset_count() as f64,
        );
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

fn check(out: &mut Exposition, k: &LatestServices) {
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
    if let Some(p) = k.cpu_percent {
        out.gauge(
            "hostwatch_cpu_usage_ratio",
            "Share of all CPUs' time busy over the interval before the latest check, 0-1.",
            &[],
            p / 100.0,
        );
    }
    // Services as the latest check saw them: a scrape runs no status
    // command. The state is a label of its own family, so that a service
    // changing state does not start a new `_up` series.
    let services = &k.services;
    for s in services {
        let up = f64::from(u8::from(s.state == ServiceStatus::Running));
        out.gauge(
            "hostwatch_service_up",
            "1 when the service was running at the latest check.",
            &[("service", &s.name)],
            up,
        );
    }
    for s in services {
        for state in ServiceStatus::ALL {
            out.gauge(
                "hostwatch_service_state",
                "1 for the state the service was in at the latest check.",
                &[("service", &s.name), ("state", state.as_str())],
                f64::from(u8::from(s.state == state)),
            );
        }
    }
    for s in services {
        if let Some(h) = s.healthy {
            out.gauge(
                "hostwatch_service_healthy",
                "1 when the service's health probe passed at the latest check.",
                &[("service", &s.name)],
                f64::from(u8::from(h)),
            );
        }
    }
    for s in services {
        if let Some(ms) = s.probe_ms {
            out.gauge(
                "hostwatch_service_probe_duration_seconds",
                "How long the service's health probe took at the latest check.",
                &[("service", &s.name)],
                ms / 1000.0,
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
    fn a_scrape_waits_a_little_for_the_host_reader_then_goes_without_it() {
        use std::sync::{Arc, Mutex};
        use std::time::{Duration, Instant};
        let reader = Arc::new(Mutex::new(SystemReader::new().unwrap()));
        let hold = |ms| {
            let r = Arc::clone(&reader);
            let (tx, rx) = std::sync::mpsc::channel();
            let t = std::thread::spawn(move || {
                let _g = r.lock().unwrap();
                tx.send(()).unwrap();
                std::thread::sleep(Duration::from_millis(ms));
            });
            rx.recv().unwrap();
            t
        };
        // Held briefly, as a /system snapshot holds it: the scrape waits.
        let t = hold(100);
        assert!(super::super::agent::with_system(&reader, SystemReader::counters).is_some());
        t.join().unwrap();
        // Held on and on, as by a statvfs on a hung mount: it gives up.
        let t = hold(1_500);
        let started = Instant::now();
        assert!(super::super::agent::with_system(&reader, SystemReader::counters).is_none());
        assert!(started.elapsed() < Duration::from_millis(1_000));
        t.join().unwrap();
    }

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
