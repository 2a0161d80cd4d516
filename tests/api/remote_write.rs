//! Push to a real Prometheus (Debian's `prometheus` with
//! `--web.enable-remote-write-receiver`, on loopback): live samples with
//! the values the API shows, an outage of over a minute filled from the
//! history with nothing missing or repeated, a receiver that refuses
//! everything beside it, and a SIGKILL in the middle of a replay.

use crate::{
    helpers::{
        Reaped,
        prometheus::{Prometheus, free_port, value},
    },
    lifecycle::{get_json_as, signal, start_with_config, wait_exit},
};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader, Read, Write},
    net::TcpListener,
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

const TOKEN: &str = "remote-write-test-token-0123456789";

/// A receiver that answers 400 to every request, as Prometheus does to
/// samples it will never take; counts the requests.
fn refuser() -> (u16, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let seen = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&seen);
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut length = 0usize;
            let mut line = String::new();
            while r.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                line.clear();
            }
            let mut body = vec![0; length];
            if r.read_exact(&mut body).is_ok() {
                count.fetch_add(1, Ordering::SeqCst);
            }
            let text = "out of bounds (this receiver refuses everything)";
            let _ = write!(
                s,
                "HTTP/1.1 400 Bad Request\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                text.len()
            );
        }
    });
    (port, seen)
}

fn agent_config(dir: &Path, receivers: &[(&str, u16)], max_backlog: &str) -> std::path::PathBuf {
    let mut text = format!(
        "services = []\n[server]\nlisten = \"127.0.0.1:0\"\nworkers = 1\n[storage]\npath = \"{db}\"\n\
         [sampler]\ninterval = \"1s\"\n[auth]\npublic_read = false\n[[auth.tokens]]\nname = \"test\"\n\
         scope = \"read\"\nsha256 = \"{hash}\"\n",
        db = dir.join("hostwatch.db").display(),
        hash = hex::encode(hostwatch::tokens::sha256(TOKEN)),
    );
    for (name, port) in receivers {
        text.push_str(&format!(
            "[[remote_write]]\nname = \"{name}\"\nurl = \"http://127.0.0.1:{port}/api/v1/write\"\n\
             interval = \"1s\"\nmax_backlog = \"{max_backlog}\"\n"
        ));
    }
    let path = dir.join("hostwatch.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn receiver(agent: u16, name: &str) -> Value {
    let all = get_json_as(agent, "/api/v1/remote-write", Some(TOKEN));
    all["receivers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no receiver {name}: {all}"))
        .clone()
}

/// Waits (at most `limit`) until `ok` holds for the receiver's view.
fn wait_for(agent: u16, name: &str, limit: Duration, ok: impl Fn(&Value) -> bool) -> Value {
    let end = Instant::now() + limit;
    loop {
        let r = receiver(agent, name);
        if ok(&r) {
            return r;
        }
        assert!(Instant::now() < end, "receiver {name} never got there: {r}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn caught_up(r: &Value) -> bool {
    r["state"] == "ok" && r["backlog_seconds"].as_f64().unwrap() < 3.0
}

fn prometheus_config(dir: &Path, out_of_order_window: Option<&str>) -> std::path::PathBuf {
    let mut text = "global:\n  scrape_interval: 1m\n".to_owned();
    if let Some(w) = out_of_order_window {
        text.push_str(&format!(
            "storage:\n  tsdb:\n    out_of_order_time_window: {w}\n"
        ));
    }
    let path = dir.join("prometheus.yml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `days` of 60 s checks in `db` that the receiver at `prom_port` has not
/// seen, its cursor at their start; the count and the newest one's time.
fn missed_history(db: &Path, days: u32, prom_port: u16) -> (u64, i64) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hostwatch"))
        .args([
            "generate",
            "--days",
            &days.to_string(),
            "--interval",
            "60s",
            "--db",
        ])
        .arg(db)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let store = hostwatch::store::Store::open(db).unwrap();
    let cursor = hostwatch::store::Cursor {
        check_id: 0,
        sent_until: DateTime::<Utc>::UNIX_EPOCH,
    };
    let url = format!("http://127.0.0.1:{prom_port}/api/v1/write");
    store
        .save_remote_write_cursor(&hostwatch::remote_write::cursor_key(&url), cursor)
        .unwrap();
    let (_, last) = store.check_head(None).unwrap().unwrap();
    (store.count_checks().unwrap(), last.timestamp_millis())
}

fn millis(t: &Value) -> i64 {
    t.as_str()
        .unwrap()
        .parse::<DateTime<Utc>>()
        .unwrap()
        .timestamp_millis()
}

/// The raw samples of one series in `(at - window, at]`: time (ms) → value.
fn samples(prom: &Prometheus, selector: &str, window: Duration, at: i64) -> BTreeMap<i64, f64> {
    let q = format!("{selector}[{}ms]", window.as_millis());
    let path = format!(
        "/api/v1/query?query={}&time={}",
        url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>(),
        at as f64 / 1000.0
    );
    let v = prom.get(&path);
    let series = v["data"]["result"].as_array().unwrap();
    assert!(series.len() <= 1, "{q}: more than one series: {v}");
    let mut out = BTreeMap::new();
    for s in series {
        for p in s["values"].as_array().unwrap() {
            let t = (p[0].as_f64().unwrap() * 1000.0).round() as i64;
            out.insert(t, p[1].as_str().unwrap().parse().unwrap());
        }
    }
    out
}

/// The agent's checks in `[since, until)`, oldest first.
fn checks(agent: u16, since: i64, until: i64) -> Vec<Value> {
    let t = |ms: i64| {
        DateTime::<Utc>::from_timestamp_millis(ms)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    let path = format!(
        "/api/v1/checks?since={}&until={}&limit=1000",
        url::form_urlencoded::byte_serialize(t(since).as_bytes()).collect::<String>(),
        url::form_urlencoded::byte_serialize(t(until).as_bytes()).collect::<String>(),
    );
    let mut v = get_json_as(agent, &path, Some(TOKEN))
        .as_array()
        .unwrap()
        .clone();
    v.reverse();
    v
}

#[test]
fn every_check_reaches_prometheus_live_and_after_an_outage_beside_a_receiver_that_refuses_all() {
    let dir = tempfile::tempdir().unwrap();
    let host = hostwatch::collect::host_name().unwrap();
    let prom_port = free_port();
    let prom_config = prometheus_config(dir.path(), None);
    let data = dir.path().join("data");
    let receiver_flag = ["--web.enable-remote-write-receiver"];
    let prom = Prometheus::start(&prom_config, &data, prom_port, &receiver_flag);
    let (refuser_port, refused) = refuser();
    let config = agent_config(
        dir.path(),
        &[("prometheus", prom_port), ("refuser", refuser_port)],
        "7d",
    );
    let (agent, port, log) = start_with_config(&config);
    let mut agent = Reaped(vec![agent]);

    // Live: a few checks in, each one in Prometheus with its own time and value.
    wait_for(port, "prometheus", Duration::from_secs(30), |r| {
        r["samples_sent"].as_u64().unwrap() > 0
    });
    std::thread::sleep(Duration::from_secs(5));
    let r = wait_for(port, "prometheus", Duration::from_secs(10), caught_up);
    let sent_until = millis(&r["sent_until"]);
    let now = Utc::now().timestamp_millis();
    let recent = checks(port, now - 30_000, sent_until + 1);
    assert!(recent.len() >= 4, "{recent:?}");
    let selector = |name: &str| format!("{name}{{job=\"hostwatch\",instance=\"{host}\"}}");
    let load = samples(
        &prom,
        &selector("hostwatch_load1"),
        Duration::from_secs(60),
        sent_until,
    );
    let used = samples(
        &prom,
        &selector("hostwatch_memory_used_bytes"),
        Duration::from_secs(60),
        sent_until,
    );
    for k in &recent {
        let at = millis(&k["taken_at"]);
        assert_eq!(
            load.get(&at),
            Some(&k["cpu"]["load1"].as_f64().unwrap()),
            "check at {at}"
        );
        assert_eq!(
            used.get(&at),
            Some(&(k["memory"]["used_bytes"].as_u64().unwrap() as f64)),
            "check at {at}"
        );
    }
    let root = prom.query(&format!(
        "hostwatch_filesystem_size_bytes{{job=\"hostwatch\",instance=\"{host}\",mountpoint=\"/\"}}"
    ));
    assert_eq!(root.len(), 1, "{root:?}");
    assert!(value(&root[0]) > 0.0);

    // The refusing receiver: counted as rejected, moved past, said once.
    let bad = wait_for(port, "refuser", Duration::from_secs(10), |r| {
        r["samples_rejected"].as_u64().unwrap() > 0
    });
    assert_eq!(bad["state"], "rejecting", "{bad}");
    assert_eq!(bad["samples_sent"], 0);
    assert!(bad["last_error"].as_str().unwrap().contains("400"), "{bad}");
    assert!(
        refused.load(Ordering::SeqCst) >= 3,
        "the refused batches were not moved past"
    );

    // The outage: Prometheus is down for 65 s while checks go on.
    let stopped_at = Utc::now().timestamp_millis();
    prom.stop();
    std::thread::sleep(Duration::from_secs(65));
    let down = receiver(port, "prometheus");
    assert_eq!(down["state"], "failing", "{down}");
    assert!(down["backlog_seconds"].as_f64().unwrap() > 50.0, "{down}");
    assert!(down["retries"].as_u64().unwrap() > 0, "{down}");
    let metrics = crate::lifecycle::get_text_as(port, "/metrics", Some(TOKEN));
    assert!(
        metrics.contains("hostwatch_remote_write_backlog_seconds{receiver=\"prometheus\"}"),
        "{metrics}"
    );
    let prom = Prometheus::start(&prom_config, &data, prom_port, &receiver_flag);
    let back_at = Utc::now().timestamp_millis();
    let started = Instant::now();
    let r = wait_for(port, "prometheus", Duration::from_secs(60), |r| {
        caught_up(r) && millis(&r["sent_until"]) >= back_at
    });
    let catch_up = started.elapsed();

    // Every check of the outage (and the seconds around it) is in
    // Prometheus once: the same times, the same count.
    let from = stopped_at - 5_000;
    let taken: Vec<i64> = checks(port, from, back_at)
        .iter()
        .map(|k| millis(&k["taken_at"]))
        .collect();
    assert!(taken.len() >= 60, "{} checks in the outage", taken.len());
    let window = Duration::from_millis((back_at - from) as u64);
    let pushed = samples(
        &prom,
        &selector("hostwatch_check_duration_seconds"),
        window,
        back_at - 1,
    );
    let missing: Vec<_> = taken.iter().filter(|t| !pushed.contains_key(t)).collect();
    let extra: Vec<_> = pushed.keys().filter(|t| !taken.contains(t)).collect();
    assert!(missing.is_empty(), "missing in Prometheus: {missing:?}");
    assert!(
        extra.is_empty(),
        "in Prometheus, not in the history: {extra:?}"
    );
    let counted = prom.get(&format!(
        "/api/v1/query?query={}&time={}",
        url::form_urlencoded::byte_serialize(
            format!(
                "count_over_time({}[{}ms])",
                selector("hostwatch_check_duration_seconds"),
                window.as_millis()
            )
            .as_bytes()
        )
        .collect::<String>(),
        (back_at - 1) as f64 / 1000.0
    ));
    assert_eq!(
        value(&counted["data"]["result"][0]),
        taken.len() as f64,
        "{counted}"
    );
    assert_eq!(r["samples_rejected"], 0, "{r}");
    eprintln!(
        "outage: {} checks, all in Prometheus {:.1} s after it came back",
        taken.len(),
        catch_up.as_secs_f64()
    );

    // One line for the refusals, however many there were.
    signal(&agent.0[0], rustix::process::Signal::TERM);
    assert!(wait_exit(&mut agent.0[0], Duration::from_secs(10)).success());
    let lines: Vec<String> = log.try_iter().collect();
    let refusals = lines
        .iter()
        .filter(|l| l.contains("refused a batch"))
        .count();
    assert_eq!(refusals, 1, "{lines:#?}");
    assert!(refused.load(Ordering::SeqCst) > 60);
}

#[test]
fn a_sigkill_in_the_middle_of_a_replay_resumes_from_the_cursor_with_nothing_lost() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hostwatch.db");
    // Two weeks of 60 s checks the receiver has not seen.
    let prom_port = free_port();
    let url = format!("http://127.0.0.1:{prom_port}/api/v1/write");
    let (generated, last_generated) = missed_history(&db, 14, prom_port);
    assert!(generated >= 20_000, "{generated}");
    // What an operator sets for outages longer than Prometheus' head.
    let prom_config = prometheus_config(dir.path(), Some("15d"));
    let prom = Prometheus::start(
        &prom_config,
        &dir.path().join("data"),
        prom_port,
        &["--web.enable-remote-write-receiver"],
    );
    let config = agent_config(dir.path(), &[("prometheus", prom_port)], "15d");
    let (agent, port, _log) = start_with_config(&config);
    let mut agent = Reaped(vec![agent]);
    // Killed as soon as the first batches are in: the replay of two weeks
    // takes seconds, the kill a few milliseconds.
    let end = Instant::now() + Duration::from_secs(60);
    let mid = loop {
        let r = receiver(port, "prometheus");
        if r["samples_sent"].as_u64().unwrap() > 0 {
            break r;
        }
        assert!(Instant::now() < end, "nothing was sent: {r}");
        std::thread::sleep(Duration::from_millis(5));
    };
    signal(&agent.0[0], rustix::process::Signal::KILL);
    let _ = wait_exit(&mut agent.0[0], Duration::from_secs(10));
    let cursor = hostwatch::store::Store::open(&db)
        .unwrap()
        .remote_write_cursor(&hostwatch::remote_write::cursor_key(&url))
        .unwrap()
        .unwrap();
    assert!(
        cursor.check_id > 0 && cursor.sent_until.timestamp_millis() < last_generated - 3_600_000,
        "not killed in the middle of the replay: {cursor:?} {mid}"
    );

    let started = Instant::now();
    let (agent, port, _log) = start_with_config(&config);
    let mut agent = Reaped(vec![agent]);
    let r = wait_for(port, "prometheus", Duration::from_secs(120), caught_up);
    eprintln!(
        "replay after the kill: {:.1} s, {} samples",
        started.elapsed().as_secs_f64(),
        r["samples_sent"]
    );
    assert_eq!(r["samples_rejected"], 0, "{r}");
    // Every generated check is in Prometheus once.
    let q = "count_over_time(hostwatch_check_duration_seconds{job=\"hostwatch\"}[15d])";
    let counted = prom.get(&format!(
        "/api/v1/query?query={}&time={}",
        url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>(),
        last_generated as f64 / 1000.0
    ));
    assert_eq!(
        value(&counted["data"]["result"][0]),
        generated as f64,
        "{counted}"
    );
    signal(&agent.0[0], rustix::process::Signal::TERM);
    assert!(wait_exit(&mut agent.0[0], Duration::from_secs(10)).success());
}

#[test]
fn a_prometheus_that_refuses_samples_older_than_its_head_keeps_every_newer_one() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hostwatch.db");
    let prom_port = free_port();
    missed_history(&db, 1, prom_port);
    // A Prometheus whose newest block ends an hour ago (backfilled, as
    // after its first compactions): it refuses any sample older than that.
    let data = dir.path().join("data");
    let now = Utc::now().timestamp_millis();
    let (first, last) = (now - 4 * 3_600_000, now - 3_600_000);
    let mut om = "# HELP backfill One a minute.\n# TYPE backfill gauge\n".to_owned();
    for t in (first..last).step_by(60_000) {
        om.push_str(&format!("backfill 1 {}\n", t as f64 / 1000.0));
    }
    om.push_str("# EOF\n");
    let om_path = dir.path().join("backfill.om");
    std::fs::write(&om_path, om).unwrap();
    let made = std::process::Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&om_path)
        .arg(&data)
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let boundary = (first..last).step_by(60_000).last().unwrap();
    let prom = Prometheus::start(
        &prometheus_config(dir.path(), None),
        &data,
        prom_port,
        &["--web.enable-remote-write-receiver"],
    );
    let (agent, port, _log) =
        start_with_config(&agent_config(dir.path(), &[("p", prom_port)], "7d"));
    let _agent = Reaped(vec![agent]);
    let r = wait_for(port, "p", Duration::from_secs(120), |r| {
        caught_up(r) && r["samples_rejected"].as_u64().unwrap() > 0
    });
    let until = millis(&r["sent_until"]);
    let taken: Vec<i64> = checks(port, boundary - 600_000, until + 1)
        .iter()
        .map(|k| millis(&k["taken_at"]))
        .collect();
    let window = Duration::from_millis((until - boundary + 600_000) as u64);
    let pushed = samples(&prom, "hostwatch_check_duration_seconds", window, until);
    let newer: Vec<i64> = taken.iter().copied().filter(|t| *t > boundary).collect();
    assert!(
        newer.len() >= 55,
        "{} checks after the boundary",
        newer.len()
    );
    assert!(taken.len() > newer.len(), "no check before the boundary");
    assert_eq!(pushed.keys().copied().collect::<Vec<_>>(), newer, "{r}");
}

#[test]
fn https_with_basic_auth_reaches_prometheus_and_a_wrong_password_is_refused_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    crate::helpers::smtp::make_cert(&certs);
    let hashed = std::process::Command::new("htpasswd")
        .args(["-nbB", "agent", "right-password"])
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run htpasswd (apache2-utils; scripts/test installs it): {e}")
        });
    assert!(hashed.status.success(), "{hashed:?}");
    let line = String::from_utf8(hashed.stdout).unwrap();
    let (_, hash) = line.trim().split_once(':').unwrap();
    let web = dir.path().join("web.yml");
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\nbasic_auth_users:\n  agent: '{hash}'\n",
            certs.join("cert.pem").display(),
            certs.join("key.pem").display()
        ),
    )
    .unwrap();
    let port = free_port();
    let _prom = Prometheus::start_tls(
        &prometheus_config(dir.path(), None),
        &dir.path().join("data"),
        port,
        &[
            "--web.enable-remote-write-receiver",
            &format!("--web.config.file={}", web.display()),
        ],
    );
    let right = dir.path().join("right");
    std::fs::write(&right, "right-password\n").unwrap();
    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "wrong-password\n").unwrap();
    let config = agent_config(dir.path(), &[], "7d");
    let mut text = std::fs::read_to_string(&config).unwrap();
    for (name, query, password) in [("good", "", &right), ("bad", "?other", &wrong)] {
        text.push_str(&format!(
            "[[remote_write]]\nname = \"{name}\"\nurl = \"https://127.0.0.1:{port}/api/v1/write{query}\"\n\
             interval = \"1s\"\ntls_ca = \"{ca}\"\n\
             basic_auth = {{ username = \"agent\", password_file = \"{pw}\" }}\n",
            ca = certs.join("cert.pem").display(),
            pw = password.display(),
        ));
    }
    std::fs::write(&config, text).unwrap();
    let (agent, agent_port, _log) = start_with_config(&config);
    let _agent = Reaped(vec![agent]);
    let good = wait_for(agent_port, "good", Duration::from_secs(60), |r| {
        r["samples_sent"].as_u64().unwrap() > 0 && r["state"] == "ok"
    });
    assert_eq!(good["samples_rejected"], 0, "{good}");
    let bad = wait_for(agent_port, "bad", Duration::from_secs(30), |r| {
        r["samples_rejected"].as_u64().unwrap() > 0
    });
    assert_eq!(bad["state"], "rejecting", "{bad}");
    assert_eq!(bad["samples_sent"], 0, "{bad}");
    let error = bad["last_error"].as_str().unwrap();
    assert!(error.starts_with("401"), "{bad}");
    assert!(!error.contains("wrong-password"), "{bad}");
}

/// VictoriaMetrics (Debian's `victoria-metrics`, installed by scripts/test)
/// on a loopback port of its own; killed when dropped.
fn victoria_metrics(dir: &Path) -> (u16, Reaped) {
    let port = free_port();
    let child = std::process::Command::new("victoria-metrics")
        .arg(format!("-storageDataPath={}", dir.join("vm").display()))
        .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
        .arg("-retentionPeriod=1y")
        // Samples are searchable at once, not 30 s later (its default).
        .arg("-search.latencyOffset=1s")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.join("vm.log")).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run victoria-metrics (scripts/test installs it): {e}"));
    let vm = Reaped(vec![child]);
    let end = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < end, "victoria-metrics did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    (port, vm)
}

#[test]
fn victoria_metrics_takes_a_week_of_missed_history_whole() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hostwatch.db");
    let (vm_port, _vm) = victoria_metrics(dir.path());
    let (generated, last_generated) = missed_history(&db, 7, vm_port);
    let config = agent_config(dir.path(), &[("vm", vm_port)], "8d");
    let (agent, port, _log) = start_with_config(&config);
    let _agent = Reaped(vec![agent]);
    let r = wait_for(port, "vm", Duration::from_secs(120), caught_up);
    assert_eq!(r["samples_rejected"], 0, "{r}");
    // What it holds is searchable within a second or so.
    let q = "count_over_time(hostwatch_check_duration_seconds{job=\"hostwatch\"}[8d])";
    let path = format!(
        "/api/v1/query?query={}&time={}",
        url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>(),
        last_generated as f64 / 1000.0
    );
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let v = crate::helpers::prometheus::prom_get(vm_port, &path);
        let n = v["data"]["result"]
            .get(0)
            .map_or(0.0, |s| s["value"][1].as_str().unwrap().parse().unwrap());
        if n == generated as f64 {
            break;
        }
        assert!(
            Instant::now() < end,
            "victoria-metrics holds {n} of {generated} checks: {v}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}
