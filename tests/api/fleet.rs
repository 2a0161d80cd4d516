//! A fleet as hostwatch's users run one: a real Prometheus (Debian's
//! `prometheus`, installed by scripts/test) scrapes 20 real agents on
//! loopback, each on its own port and database, over HTTPS with a bearer
//! token, every 2 s for 30 s; a 21st agent is scraped with a wrong token.

use crate::{
    helpers::{
        Reaped,
        prometheus::{Prometheus, free_port, prom_get, query, value},
        smtp::make_cert,
    },
    lifecycle::{signal, start_with_config, wait_exit},
};
use std::{path::Path, process::Child, time::Duration};

const AGENTS: usize = 20;
const TOKEN: &str = "fleet-scrape-token-0123456789abcdef";

/// An agent serving HTTPS with `cert.pem`/`key.pem` from `certs`, reads
/// only with the token.
fn start_agent(dir: &Path, certs: &Path) -> (Child, u16) {
    std::fs::create_dir_all(dir).unwrap();
    let config = dir.join("hostwatch.toml");
    std::fs::write(
        &config,
        format!(
            r#"services = []
[server]
listen = "127.0.0.1:0"
workers = 1
tls_cert = "{cert}"
tls_key = "{key}"
[storage]
path = "{db}"
[sampler]
interval = "1s"
[auth]
public_read = false
[[auth.tokens]]
name = "prometheus"
scope = "read"
sha256 = "{hash}"
"#,
            cert = certs.join("cert.pem").display(),
            key = certs.join("key.pem").display(),
            db = dir.join("hostwatch.db").display(),
            hash = hex::encode(hostwatch::tokens::sha256(TOKEN)),
        ),
    )
    .unwrap();
    let (child, port, _log) = start_with_config(&config);
    (child, port)
}

#[test]
fn prometheus_scrapes_twenty_agents_over_https_without_a_failed_scrape() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    make_cert(&certs);
    let mut agents = Reaped(Vec::new());
    let mut ports = Vec::new();
    for i in 0..=AGENTS {
        let (child, port) = start_agent(&dir.path().join(format!("agent{i}")), &certs);
        agents.0.push(child);
        ports.push(port);
    }
    let targets = |ports: &[u16]| -> String {
        ports
            .iter()
            .map(|p| format!("'127.0.0.1:{p}'"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let job = |name: &str, token: &str, agents: &[u16]| {
        format!(
            "  - job_name: {name}\n    scheme: https\n    tls_config:\n      ca_file: {ca}\n    \
             authorization:\n      credentials: {token}\n    static_configs:\n      - targets: [{t}]\n",
            ca = certs.join("cert.pem").display(),
            t = targets(agents),
        )
    };
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 2s\n  scrape_timeout: 1s\nscrape_configs:\n{}{}",
            job("hostwatch", TOKEN, &ports[..AGENTS]),
            job("wrongtoken", "not-the-token", &ports[AGENTS..]),
        ),
    )
    .unwrap();
    let port = free_port();
    let prom = Prometheus::start(&config, &dir.path().join("data"), port, &[]);
    // 30 s of scrapes every 2 s, plus the first one's start.
    std::thread::sleep(Duration::from_secs(34));
    let prom_log = || prom.log_text();

    let up = query(port, "up{job=\"hostwatch\"}");
    assert_eq!(up.len(), AGENTS, "{up:?}\n{}", prom_log());
    assert!(up.iter().all(|s| value(s) == 1.0), "{up:?}");
    // Every scrape of the last 30 s succeeded, and there were 15 or so each.
    let worst = query(port, "min_over_time(up{job=\"hostwatch\"}[30s])");
    assert_eq!(worst.len(), AGENTS);
    assert!(
        worst.iter().all(|s| value(s) == 1.0),
        "a scrape failed: {worst:?}"
    );
    let scrapes = query(port, "count_over_time(up{job=\"hostwatch\"}[30s])");
    assert!(scrapes.iter().all(|s| value(s) >= 13.0), "{scrapes:?}");
    // Counters read at scrape time: rate() answers for every agent.
    let rates = query(
        port,
        "rate(hostwatch_network_receive_bytes_total{job=\"hostwatch\",device=\"lo\"}[10s])",
    );
    assert_eq!(rates.len(), AGENTS, "{rates:?}");
    assert!(rates.iter().all(|s| value(s) > 0.0), "{rates:?}");
    let cpu = query(
        port,
        "sum by (instance) (rate(hostwatch_cpu_seconds_total{job=\"hostwatch\"}[10s]))",
    );
    assert_eq!(cpu.len(), AGENTS, "{cpu:?}");

    // The wrong token: the target is down, and the agent is not.
    let wrong = query(port, "up{job=\"wrongtoken\"}");
    assert_eq!(wrong.len(), 1);
    assert_eq!(value(&wrong[0]), 0.0);
    let targets = prom_get(port, "/api/v1/targets?state=active");
    let refused = targets["data"]["activeTargets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["labels"]["job"] == "wrongtoken")
        .unwrap()["lastError"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(refused.contains("401"), "{refused}");

    for child in &mut agents.0 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "an agent exited during the scrapes"
        );
        signal(child, rustix::process::Signal::TERM);
    }
    for child in &mut agents.0 {
        assert!(wait_exit(child, Duration::from_secs(10)).success());
    }
}
