//! `/metrics` as a Prometheus user judges it: `promtool check metrics`
//! clean, node_exporter's idiom (counters read at scrape time, per device
//! and interface), and a scrape that runs no service command.

use crate::{
    helpers::{TestApp, spawn_with},
    services::svc,
};
use hostwatch::config::Manager;
use std::{collections::BTreeMap, io::Write, process::Stdio};

/// Sample name with labels → value, and family → TYPE.
fn parse(text: &str) -> (BTreeMap<String, f64>, BTreeMap<String, String>) {
    let (mut samples, mut types) = (BTreeMap::new(), BTreeMap::new());
    for line in text.lines() {
        if let Some(t) = line.strip_prefix("# TYPE ") {
            let (name, kind) = t.split_once(' ').unwrap();
            types.insert(name.to_owned(), kind.to_owned());
        } else if !line.starts_with('#') && !line.is_empty() {
            let (series, value) = line.rsplit_once(' ').unwrap();
            samples.insert(series.to_owned(), value.parse().unwrap());
        }
    }
    (samples, types)
}

async fn scrape(app: &TestApp) -> String {
    let r = app.get("/metrics").await;
    assert_eq!(r.status, 200);
    r.text()
}

/// `promtool check metrics` on `text`: its complaints, if any.
pub(crate) fn promtool(text: &str) -> (bool, String) {
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run promtool (scripts/test installs prometheus): {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

#[actix_web::test]
async fn metrics_are_promtool_clean_counters_read_at_scrape_time_per_device() {
    let mut web = svc("web", Manager::Command);
    web.status = Some("true".into());
    let app = spawn_with(|s| s.services = vec![web]).await;
    assert_eq!(app.control("/api/v1/checks", None).await.status, 201);
    let first = scrape(&app).await;
    let (ok, said) = promtool(&first);
    assert!(ok && said.trim().is_empty(), "promtool: {said}\n{first}");
    // A family promtool would pass but a bad one to read: a broken one fails.
    assert!(!promtool("# TYPE x_total gauge\nx_total 1\n").0);

    let (samples, types) = parse(&first);
    for (family, kind) in &types {
        if family.ends_with("_total") {
            assert_eq!(kind, "counter", "{family}");
        }
    }
    for mode in ["user", "system", "idle"] {
        assert!(samples.contains_key(&format!("hostwatch_cpu_seconds_total{{mode=\"{mode}\"}}")));
    }
    assert!(samples.contains_key("hostwatch_network_receive_bytes_total{device=\"lo\"}"));
    assert!(
        samples
            .keys()
            .any(|k| k.starts_with("hostwatch_filesystem_size_bytes{")
                && k.contains("mountpoint=\"/\"")),
        "no filesystem at /"
    );
    // Every real block device the kernel lists has its counters.
    let diskstats = std::fs::read_to_string("/proc/diskstats").unwrap();
    for name in diskstats
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
    {
        let skip = ["ram", "loop", "fd"].iter().any(|p| {
            name.strip_prefix(p)
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        });
        let series = format!("hostwatch_disk_read_bytes_total{{device=\"{name}\"}}");
        assert_eq!(samples.contains_key(&series), !skip, "{series}");
    }
    assert_eq!(samples["hostwatch_service_up{service=\"web\"}"], 1.0);
    assert_eq!(
        samples["hostwatch_service_state{service=\"web\",state=\"running\"}"],
        1.0
    );
    assert!(samples["process_resident_memory_bytes"] > 0.0);

    // Read at the scrape, not from the stored check: the scrapes travel over
    // loopback, so its counter moves between two of them with no check taken.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (later, _) = parse(&scrape(&app).await);
    let lo = "hostwatch_network_receive_bytes_total{device=\"lo\"}";
    assert!(
        later[lo] > samples[lo],
        "{} then {}",
        samples[lo],
        later[lo]
    );
    let cpu = |s: &BTreeMap<String, f64>| -> f64 {
        s.iter()
            .filter(|(k, _)| k.starts_with("hostwatch_cpu_seconds_total"))
            .map(|(_, v)| v)
            .sum()
    };
    assert!(cpu(&later) > cpu(&samples), "CPU seconds did not move");
    app.stop().await;
}

#[actix_web::test]
async fn a_scrape_runs_no_service_command() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("status.log");
    let mut web = svc("web", Manager::Command);
    web.status = Some(format!("echo ran >> {}", log.display()));
    let app = spawn_with(|s| s.services = vec![web]).await;
    for _ in 0..5 {
        scrape(&app).await;
    }
    let ran = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(ran.lines().count(), 0, "a scrape ran the status command");
    // The command does run when a check is taken: the test can fail.
    assert_eq!(app.control("/api/v1/checks", None).await.status, 201);
    let ran = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(ran.lines().count() >= 1);
    app.stop().await;
}

/// Unmounts when dropped, however the test ends.
struct Mounted(std::path::PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[actix_web::test]
async fn a_bind_mount_is_not_counted_as_another_filesystem() {
    let dir = tempfile::tempdir().unwrap();
    let (from, to) = (dir.path().join("from"), dir.path().join("to"));
    std::fs::create_dir_all(&from).unwrap();
    std::fs::create_dir_all(&to).unwrap();
    let status = std::process::Command::new("mount")
        .arg("--bind")
        .arg(&from)
        .arg(&to)
        .status()
        .unwrap();
    assert!(status.success(), "the tests run as root and may mount");
    let _mounted = Mounted(to.clone());
    // As bytes: another test's mount point may not be UTF-8.
    let mountinfo =
        String::from_utf8_lossy(&std::fs::read("/proc/self/mountinfo").unwrap()).into_owned();
    assert!(
        mountinfo.contains(&format!(" {} ", to.display())),
        "the bind mount is in place"
    );
    let app = spawn_with(|_| {}).await;
    let metrics = scrape(&app).await;
    let label = format!("mountpoint=\"{}\"", to.display());
    assert!(
        !metrics.contains(&label),
        "the bind mount is listed:\n{metrics}"
    );
    assert!(metrics.contains("hostwatch_filesystem_size_bytes{"));
    let k = app.control("/api/v1/checks", None).await.json();
    let mounts: Vec<&str> = k["disks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["mount"].as_str().unwrap())
        .collect();
    assert!(!mounts.is_empty());
    assert!(
        !mounts.contains(&to.to_str().unwrap()),
        "a check lists the bind mount: {mounts:?}"
    );
    app.stop().await;
}
