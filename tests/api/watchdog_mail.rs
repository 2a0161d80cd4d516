//! The watchdog's messages end to end: a real HTTP service turned slow, a
//! probe that sees it, a kill and an email through a real SMTP server with
//! STARTTLS and AUTH that answers 451 once; a webhook receiver that fails
//! first; a test message from the API.

use crate::{
    helpers::{
        READ_TOKEN, TestApp,
        smtp::{SmtpOptions, SmtpServer},
        spawn_with,
        webhook::WebhookReceiver,
    },
    watchdog::{Worker, alert, alerts, eventually, unique_name, watchdog_from},
};
use serde_json::Value;
use std::{
    collections::HashMap,
    io::{Read, Write},
    net::TcpListener,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

pub const USER: &str = "alerts";
pub const PASSWORD: &str = "s3cret-pass";

/// An HTTP service on loopback whose answers take `delay` milliseconds.
pub struct SlowService {
    pub port: u16,
    pub delay: Arc<AtomicU64>,
}

impl SlowService {
    pub fn start() -> SlowService {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let delay = Arc::new(AtomicU64::new(0));
        let d = Arc::clone(&delay);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { continue };
                let d = Arc::clone(&d);
                std::thread::spawn(move || {
                    let mut buf = [0u8; 2048];
                    let _ = s.read(&mut buf);
                    std::thread::sleep(Duration::from_millis(d.load(Ordering::Relaxed)));
                    let _ = s.write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                    );
                });
            }
        });
        SlowService { port, delay }
    }
}

/// An SMTP notifier section for `server`, STARTTLS with a login; the
/// password file is written beside the server's certificate.
pub fn smtp_section(server: &SmtpServer, name: &str) -> String {
    let pass = server.dir().join("smtp.pass");
    std::fs::write(&pass, format!("{PASSWORD}\n")).unwrap();
    format!(
        r#"
[[notifiers]]
name = "{name}"
kind = "smtp"
host = "127.0.0.1"
port = {port}
tls = "starttls"
ca_file = "{ca}"
username = "{USER}"
password_file = "{pass}"
from = "hostwatch@example.com"
to = ["ops@example.com"]
timeout = "5s"
"#,
        port = server.port(),
        ca = server.ca_file().display(),
        pass = pass.display(),
    )
}

pub fn smtp_options(fail_first: usize) -> SmtpOptions {
    SmtpOptions {
        starttls: true,
        auth: Some((USER.into(), PASSWORD.into())),
        fail_first,
        ..Default::default()
    }
}

async fn notifications(app: &TestApp, query: &str) -> Vec<Value> {
    let r = app
        .request(
            "GET",
            &format!("/api/v1/notifications?{query}"),
            Some(READ_TOKEN),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json().as_array().cloned().unwrap_or_default()
}

#[actix_web::test]
async fn a_slow_service_gets_its_worker_killed_and_an_email_sent_after_a_451() {
    let smtp = SmtpServer::start(smtp_options(1));
    let service = SlowService::start();
    let dir = tempfile::tempdir().unwrap();
    let name = unique_name("wm");
    let text = format!(
        r#"
[watchdog]
interval = "100ms"
{smtp}
[[probes]]
name = "front"
kind = "http"
url = "http://127.0.0.1:{port}/session"
interval = "200ms"
timeout = "1s"
window = "10s"

[[rules]]
name = "front-slow"
metric = "probe.latency_ratio"
probe = "front"
above = 10
notify = ["ops"]
[[rules.actions]]
kind = "kill"
process = "{name}"
grace = "1s"
"#,
        smtp = smtp_section(&smtp, "ops"),
        port = service.port,
    );
    let app = spawn_with(|s| watchdog_from(s, &text)).await;
    let mut worker = Worker::start(dir.path(), &name, false);
    // Five fast answers make the window's minimum.
    let fast = eventually(Duration::from_secs(10), || async {
        let r = app
            .get("/api/v1/probes/front/results?limit=10")
            .await
            .json();
        let ok = r.as_array()?.iter().filter(|x| x["ok"] == true).count();
        (ok >= 6).then_some(())
    })
    .await;
    assert!(fast.is_some(), "the probe did not gather five fast results");
    assert!(!worker.ended(), "killed while the service was fast");
    service.delay.store(300, Ordering::Relaxed);

    let took = worker.wait_end(Duration::from_secs(10)).await;
    assert!(
        took.is_some(),
        "the worker was not killed once the service slowed"
    );
    let mail = eventually(Duration::from_secs(15), || async {
        smtp.messages().into_iter().next()
    })
    .await
    .expect("an email arrived (after one 451)");
    assert!(
        mail.subject.starts_with("[FIRING] front-slow on ")
            && mail.subject.contains("front latency ratio"),
        "{}",
        mail.subject
    );
    assert!(mail.body.contains("rule: front-slow"), "{}", mail.body);
    // The server holds the message before the agent has read its 250 and
    // recorded the message as sent.
    let sent = eventually(Duration::from_secs(5), || async {
        let sent = notifications(&app, "status=sent").await;
        (!sent.is_empty()).then_some(sent)
    })
    .await
    .expect("the message is recorded as sent");
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["attempts"], 2, "one 451, then delivered: {sent:?}");
    assert_eq!(mail.message_id, sent[0]["message_id"].as_str().unwrap());
    // One email per message id, and no second one for the same alert.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(smtp.messages().len(), 1);

    let firing = alerts(&app, "rule=front-slow").await;
    let detail = alert(&app, firing[0]["id"].as_i64().unwrap()).await;
    assert_eq!(detail["actions"][0]["status"], "done", "{detail}");
    app.stop().await;
}

#[actix_web::test]
async fn a_webhook_that_fails_first_gets_each_message_once() {
    let hook = WebhookReceiver::start(2, 503);
    let token_dir = tempfile::tempdir().unwrap();
    let token_file = token_dir.path().join("hook.token");
    std::fs::write(&token_file, "hook-secret\n").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let name = unique_name("wh");
    let text = format!(
        r#"
[watchdog]
interval = "100ms"

[[notifiers]]
name = "hook"
kind = "webhook"
url = "{url}"
bearer_token_file = "{token}"
timeout = "2s"

[[rules]]
name = "runaway"
metric = "process.cpu_percent"
process = "{name}"
above = 20
notify = ["hook"]
# A busy worker can dip under the limit on a loaded machine; that must
# not resolve the alert (an exit still does, at once).
keep_firing_for = "60s"
"#,
        url = hook.url("/alerts"),
        token = token_file.display(),
    );
    let app = spawn_with(|s| watchdog_from(s, &text)).await;
    let mut busy = Worker::start(dir.path(), &name, true);
    let pid = busy.pid();
    // Firing: two 503s, then accepted (retried after about 1 s and 2 s).
    let accepted = eventually(Duration::from_secs(15), || async {
        let a = hook.accepted();
        (!a.is_empty()).then_some(a)
    })
    .await
    .expect("the webhook accepted the firing message");
    let firing = &accepted[0];
    assert_eq!(firing.body["event"], "firing");
    assert_eq!(firing.body["rule"], "runaway");
    assert_eq!(firing.body["state"], "firing");
    assert_eq!(firing.body["subject"], format!("{name} (pid {pid})"));
    assert_eq!(firing.body["limit"], 20.0);
    assert!(firing.body["value"].as_f64().unwrap() > 20.0);
    let id = firing.body["alert_id"].as_i64().unwrap();
    assert!(
        firing.body["link"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/api/v1/alerts/{id}")),
        "{}",
        firing.body
    );
    assert_eq!(firing.authorization.as_deref(), Some("Bearer hook-secret"));
    let key = firing.idempotency_key.clone().unwrap();
    let tries = hook.received();
    assert_eq!(tries.len(), 3, "two refused, one accepted");
    assert!(
        tries
            .iter()
            .all(|d| d.idempotency_key.as_deref() == Some(&key))
    );

    // The process ends: its alert resolves, and that message goes out once.
    let _ = busy.child.kill();
    let _ = busy.child.wait();
    let resolved = eventually(Duration::from_secs(10), || async {
        hook.accepted()
            .into_iter()
            .find(|d| d.body["event"] == "resolved")
    })
    .await
    .expect("the resolution was delivered");
    assert_eq!(resolved.body["alert_id"], id);
    assert!(resolved.body["resolved_at"].is_string());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut per_key: HashMap<String, usize> = HashMap::new();
    for d in hook.accepted() {
        *per_key.entry(d.idempotency_key.unwrap()).or_default() += 1;
    }
    assert_eq!(per_key.len(), 2, "{per_key:?}");
    assert!(per_key.values().all(|n| *n == 1), "{per_key:?}");
    let sent = notifications(&app, "status=sent").await;
    assert_eq!(sent.len(), 2, "{sent:?}");
    app.stop().await;
}

#[actix_web::test]
async fn a_test_message_is_sent_from_the_api_and_a_wrong_password_fails_plainly() {
    let smtp = SmtpServer::start(smtp_options(0));
    let text = format!(
        "{}\n{}",
        smtp_section(&smtp, "ops"),
        smtp_section(&smtp, "bad")
    )
    .replacen("name = \"bad\"", "name = \"bad\"\nmax_attempts = 3", 1);
    // The second notifier's password file says something else.
    let bad_pass = smtp.dir().join("bad.pass");
    std::fs::write(&bad_pass, "wrong\n").unwrap();
    let text = {
        let (first, second) = text.split_at(text.find("name = \"bad\"").unwrap());
        let good_pass = smtp.dir().join("smtp.pass");
        format!(
            "{first}{}",
            second.replace(
                &good_pass.display().to_string(),
                &bad_pass.display().to_string()
            )
        )
    };
    let app = spawn_with(|s| watchdog_from(s, &text)).await;
    let r = app.control("/api/v1/notifiers/ops/test", None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let out = r.json();
    assert_eq!(out["status"], "sent", "{out}");
    let mail = smtp.messages();
    assert_eq!(mail.len(), 1);
    assert!(
        mail[0].subject.starts_with("[TEST] hostwatch on "),
        "{}",
        mail[0].subject
    );
    assert_eq!(mail[0].message_id, out["message_id"].as_str().unwrap());

    let r = app.control("/api/v1/notifiers/bad/test", None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let out = r.json();
    assert_eq!(out["status"], "failed", "{out}");
    let error = out["error"].as_str().unwrap();
    assert!(error.contains("535"), "{error}");
    assert!(!error.contains("wrong"), "the password leaked: {error}");
    // Recorded in the outbox with its outcome.
    let failed = notifications(&app, "status=failed").await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["event"], "test");
    let r = app
        .request("POST", "/api/v1/notifiers/ops/test", Some(READ_TOKEN), None)
        .await;
    r.problem(403);
    app.stop().await;
}

#[actix_web::test]
async fn a_firing_alert_is_reminded_every_repeat_interval_until_it_resolves() {
    let hook = WebhookReceiver::start(0, 200);
    let dir = tempfile::tempdir().unwrap();
    let name = unique_name("wp");
    let text = format!(
        r#"
[watchdog]
interval = "100ms"
repeat_interval = "1s"

[[notifiers]]
name = "hook"
kind = "webhook"
url = "{url}"

[[rules]]
name = "runaway"
metric = "process.cpu_percent"
process = "{name}"
above = 20
notify = ["hook"]
"#,
        url = hook.url("/alerts"),
    );
    let app = spawn_with(|s| watchdog_from(s, &text)).await;
    let mut busy = Worker::start(dir.path(), &name, true);
    let events = eventually(Duration::from_secs(10), || async {
        let e: Vec<String> = hook
            .accepted()
            .iter()
            .map(|d| d.body["event"].as_str().unwrap_or("").to_owned())
            .collect();
        (e.iter().filter(|e| *e == "repeat").count() >= 2).then_some(e)
    })
    .await
    .expect("two reminders within 10 s at a 1 s repeat_interval");
    assert_eq!(events[0], "firing", "{events:?}");
    assert_eq!(
        events.iter().filter(|e| *e == "firing").count(),
        1,
        "{events:?}"
    );
    let _ = busy.child.kill();
    let _ = busy.child.wait();
    let resolved = eventually(Duration::from_secs(5), || async {
        hook.accepted()
            .into_iter()
            .find(|d| d.body["event"] == "resolved")
    })
    .await;
    assert!(resolved.is_some(), "the resolution was not sent");
    let subjects: Vec<String> = hook
        .accepted()
        .iter()
        .map(|d| d.body["event"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(
        subjects.last().map(String::as_str),
        Some("resolved"),
        "{subjects:?}"
    );
    app.stop().await;
}
