//! The outbox across a crash, on the real binary: messages queued while the
//! SMTP server is down survive a SIGKILL of the agent and are delivered
//! exactly once after both come back; alerts still firing are resumed, not
//! notified again as new.

use crate::{
    helpers::smtp::SmtpServer,
    lifecycle::{get_json_as, start_with_config},
    watchdog::{Worker, unique_name},
    watchdog_mail::{smtp_options, smtp_section},
};
use serde_json::Value;
use std::{
    collections::HashSet,
    path::Path,
    process::Child,
    time::{Duration, Instant},
};

fn start(config: &Path) -> (Child, u16) {
    let (child, port, lines) = start_with_config(config);
    // Keep draining the log so the agent never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, port)
}

/// GET with the agent's generated control token.
fn get(port: u16, path: &str, token: &str) -> Value {
    get_json_as(port, path, Some(token))
}

fn wait_for<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn messages_pending_at_a_sigkill_are_delivered_once_and_firing_alerts_are_not_renotified() {
    let mut smtp = SmtpServer::start(smtp_options(0));
    let smtp_port = smtp.port();
    let dir = tempfile::tempdir().unwrap();
    let name = unique_name("wr");
    let config = dir.path().join("hostwatch.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[server]
listen = "127.0.0.1:0"
[storage]
path = "{db}"
[sampler]
autostart = false
[watchdog]
interval = "100ms"
{smtp}
[[rules]]
name = "runaway"
metric = "process.cpu_percent"
process = "{name}"
above = 20
notify = ["ops"]
# A busy worker can dip under the limit on a loaded machine; that must
# not resolve the alert (an exit still does, at once).
keep_firing_for = "60s"
"#,
            db = dir.path().join("hostwatch.db").display(),
            smtp = smtp_section(&smtp, "ops"),
        ),
    )
    .unwrap();
    smtp.stop();
    let (mut agent, port) = start(&config);
    let token = std::fs::read_to_string(dir.path().join("hostwatch.db.token"))
        .unwrap()
        .trim()
        .to_owned();
    let _workers: Vec<Worker> = (0..3)
        .map(|_| Worker::start(dir.path(), &name, true))
        .collect();
    // Three alerts fire; their messages fail (nothing listens) and wait.
    let pending = wait_for(Duration::from_secs(15), "three tried messages", || {
        let n = get(port, "/api/v1/notifications?status=pending", &token);
        let list = n.as_array()?.clone();
        (list.len() == 3 && list.iter().all(|m| m["attempts"].as_u64() >= Some(1))).then_some(list)
    });
    let firing_before: HashSet<i64> = get(port, "/api/v1/alerts?state=firing", &token)
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_i64().unwrap())
        .collect();
    assert_eq!(firing_before.len(), 3);

    agent.kill().unwrap(); // SIGKILL
    agent.wait().unwrap();
    smtp.start_on(smtp_port, smtp_options(0));
    let (mut agent, port) = start(&config);

    let ids: HashSet<String> = pending
        .iter()
        .map(|m| m["message_id"].as_str().unwrap().to_owned())
        .collect();
    wait_for(Duration::from_secs(30), "the three messages", || {
        (smtp.messages().len() >= 3).then_some(())
    });
    // A few more ticks: nothing new may arrive for alerts still firing.
    std::thread::sleep(Duration::from_millis(1500));
    let mail = smtp.messages();
    let got: Vec<String> = mail.iter().map(|m| m.message_id.clone()).collect();
    assert_eq!(got.len(), 3, "exactly once each: {got:?}");
    assert_eq!(got.iter().cloned().collect::<HashSet<_>>(), ids);
    assert!(
        mail.iter()
            .all(|m| m.subject.starts_with("[FIRING] runaway"))
    );

    let firing_after: HashSet<i64> = get(port, "/api/v1/alerts?state=firing", &token)
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_i64().unwrap())
        .collect();
    assert_eq!(firing_after, firing_before, "the same alerts fire on");
    let sent = get(port, "/api/v1/notifications?status=sent", &token);
    assert_eq!(sent.as_array().unwrap().len(), 3, "{sent}");
    let _ = agent.kill();
    let _ = agent.wait();
}
