//! The watchdog on the real binary: a rule that matches the agent itself
//! fires, its kill is refused by the guards, and the agent lives on.

use crate::lifecycle::{get_json, start_with_config};
use std::time::{Duration, Instant};

#[test]
fn a_rule_that_matches_the_agent_itself_cannot_kill_it() {
    let dir = tempfile::tempdir().unwrap();
    // A config path no other agent has, so the rule matches this one only.
    let marker = crate::watchdog::unique_name("hwself");
    let config = dir.path().join(format!("{marker}.toml"));
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
[[rules]]
name = "itself"
metric = "process.rss_bytes"
process_cmdline = "{marker}"
above = 0
[[rules.actions]]
kind = "kill"
signal = "KILL"
"#,
            db = dir.path().join("hostwatch.db").display()
        ),
    )
    .unwrap();
    let (mut child, port, _lines) = start_with_config(&config);
    let deadline = Instant::now() + Duration::from_secs(10);
    let action = loop {
        let alerts = get_json(port, "/api/v1/alerts?rule=itself");
        let id = alerts
            .as_array()
            .and_then(|a| a.first())
            .map(|a| a["id"].clone());
        if let Some(id) = id {
            let detail = get_json(port, &format!("/api/v1/alerts/{id}"));
            let done = detail["actions"]
                .as_array()
                .and_then(|a| a.first())
                .filter(|a| a["status"] != "pending")
                .cloned();
            if let Some(a) = done {
                break a;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the rule on the agent did not fire and act"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(action["status"], "failed", "{action}");
    let outcome = action["outcome"].as_str().unwrap();
    assert!(
        outcome.contains("hostwatch") || outcome.contains("agent"),
        "{outcome}"
    );
    // Still alive, and still serving.
    std::thread::sleep(Duration::from_millis(500));
    assert!(child.try_wait().unwrap().is_none(), "the agent died");
    assert_eq!(get_json(port, "/healthz")["status"], "ok");
    let _ = child.kill();
    let _ = child.wait();
}
