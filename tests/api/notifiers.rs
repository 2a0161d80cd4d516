//! Notifiers against real servers: aiosmtpd (plain, STARTTLS, implicit TLS,
//! AUTH, a 451 first) and an HTTP(S) receiver. Each test builds the notifier
//! from a TOML snippet as the agent would and calls `send` directly.

use crate::helpers::{
    smtp::{SmtpOptions, SmtpServer},
    webhook::WebhookReceiver,
};
use hostwatch::{
    config::Settings,
    watchdog::notify::{Message, Notifier, SendError},
};
use serde_json::json;
use std::{path::Path, time::Duration};

const PASSWORD: &str = "corr3ct-h0rse";

fn notifier(toml: &str) -> Result<Notifier, String> {
    let text = format!("[[notifiers]]\nname = \"t\"\n{toml}");
    let settings = Settings::parse(&text, Path::new("t.toml"), std::iter::empty())
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    Notifier::from_settings(settings.notifiers[0].get_ref())
}

fn smtp_notifier(server: &SmtpServer, tls: &str, password: Option<&str>) -> Notifier {
    let mut toml = format!(
        "kind = \"smtp\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"{tls}\"\n\
         ca_file = \"{}\"\nfrom = \"hostwatch@example.com\"\n\
         to = [\"ops@example.com\", \"oncall@example.net\"]\ntimeout = \"5s\"\n",
        server.port(),
        server.ca_file().display()
    );
    if let Some(p) = password {
        let file = server.dir().join("smtp.pass");
        std::fs::write(&file, format!("{p}\n")).unwrap();
        toml.push_str(&format!(
            "username = \"alerts\"\npassword_file = \"{}\"\n",
            file.display()
        ));
    }
    notifier(&toml).unwrap()
}

fn auth() -> Option<(String, String)> {
    Some(("alerts".into(), PASSWORD.into()))
}

fn alert(id: &str) -> Message {
    Message {
        message_id: id.into(),
        subject: "FIRING disk-full: / at 97.2% (limit 90)".into(),
        payload: json!({
            "alert_id": 7,
            "link": "http://127.0.0.1:8080/api/v1/alerts/7",
            "host": "web1",
            "limit": 90.0,
            "value": 97.2,
            "state": "firing",
            "subject": "/",
            "rule": "disk-full",
            "fired_at": "2026-01-02T03:04:05Z",
        }),
    }
}

#[tokio::test]
async fn notifier_starttls_with_auth_delivers_a_mail_that_reads_well() {
    let server = SmtpServer::start(SmtpOptions {
        starttls: true,
        auth: auth(),
        ..Default::default()
    });
    let n = smtp_notifier(&server, "starttls", Some(PASSWORD));

    n.send(&alert("a7.1@hostwatch.test")).await.unwrap();

    let mails = server.messages();
    assert_eq!(mails.len(), 1);
    let m = &mails[0];
    assert_eq!(m.message_id, "a7.1@hostwatch.test");
    assert_eq!(m.subject, "FIRING disk-full: / at 97.2% (limit 90)");
    assert_eq!(m.from, "hostwatch@example.com");
    assert!(m.to.contains("ops@example.com") && m.to.contains("oncall@example.net"));
    assert_eq!(m.rcpt_to, ["ops@example.com", "oncall@example.net"]);
    assert!(m.header("Date").is_some_and(|d| !d.is_empty()), "{}", m.raw);
    assert!(
        m.header("Content-Type")
            .is_some_and(|c| c.starts_with("text/plain") && c.contains("utf-8")),
        "{}",
        m.raw
    );
    assert_eq!(
        m.body.trim_end(),
        "FIRING disk-full: / at 97.2% (limit 90)\n\n\
         rule: disk-full\nsubject: /\nstate: firing\nvalue: 97.2\nlimit: 90.0\n\
         fired_at: 2026-01-02T03:04:05Z\nhost: web1\n\
         link: http://127.0.0.1:8080/api/v1/alerts/7\nalert_id: 7"
    );
}

#[tokio::test]
async fn notifier_smtp_wrong_password_is_permanent_and_not_told() {
    let server = SmtpServer::start(SmtpOptions {
        starttls: true,
        auth: auth(),
        ..Default::default()
    });
    let n = smtp_notifier(&server, "starttls", Some("wrong-guess"));
    assert!(!format!("{n:?}").contains("wrong-guess"), "{n:?}");

    let e = n.send(&alert("a1@h")).await.unwrap_err();

    let SendError::Permanent(text) = &e else {
        panic!("{e:?}")
    };
    assert!(
        text.contains(&format!("127.0.0.1:{}", server.port())),
        "{text}"
    );
    assert!(text.contains("535"), "{text}");
    assert!(!text.contains("wrong-guess"), "{text}");
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn notifier_smtp_451_is_transient_and_the_retry_delivers_once() {
    let server = SmtpServer::start(SmtpOptions {
        auth: auth(),
        fail_first: 1,
        ..Default::default()
    });
    let n = smtp_notifier(&server, "none", Some(PASSWORD));
    let m = alert("a2@h");

    let e = n.send(&m).await.unwrap_err();
    assert_eq!(
        e,
        SendError::Transient(format!(
            "SMTP server 127.0.0.1:{} answered 451 4.3.0 try again later",
            server.port()
        ))
    );
    assert!(server.messages().is_empty());

    n.send(&m).await.unwrap();
    let mails = server.messages();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].message_id, "a2@h");
}

#[tokio::test]
async fn notifier_smtp_refused_recipient_is_permanent() {
    let server = SmtpServer::start(SmtpOptions {
        reject_rcpt: vec!["oncall@example.net".into()],
        ..Default::default()
    });
    let n = smtp_notifier(&server, "none", None);
    let e = n.send(&alert("a2b@h")).await.unwrap_err();
    assert_eq!(
        e,
        SendError::Permanent(format!(
            "SMTP server 127.0.0.1:{} answered 550 5.1.1 no such user here",
            server.port()
        ))
    );
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn notifier_smtp_implicit_tls_delivers() {
    let server = SmtpServer::start(SmtpOptions {
        implicit_tls: true,
        auth: auth(),
        ..Default::default()
    });
    let n = smtp_notifier(&server, "tls", Some(PASSWORD));
    n.send(&alert("a3@h")).await.unwrap();
    assert_eq!(server.messages()[0].message_id, "a3@h");
}

#[tokio::test]
async fn notifier_smtp_plain_without_auth_delivers() {
    let server = SmtpServer::start(SmtpOptions::default());
    let n = smtp_notifier(&server, "none", None);
    n.send(&alert("a4@h")).await.unwrap();
    assert_eq!(server.messages().len(), 1);
}

#[tokio::test]
async fn notifier_smtp_untrusted_certificate_is_refused() {
    let server = SmtpServer::start(SmtpOptions {
        implicit_tls: true,
        ..Default::default()
    });
    let n = notifier(&format!(
        "kind = \"smtp\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"tls\"\n\
         from = \"a@example.com\"\nto = [\"b@example.com\"]\n",
        server.port()
    ))
    .unwrap();
    let e = n.send(&alert("a5@h")).await.unwrap_err();
    assert!(e.is_transient(), "{e:?}");
    assert!(e.to_string().contains("TLS"), "{e}");
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn notifier_smtp_closed_port_is_transient() {
    let port = closed_port();
    let n = notifier(&format!(
        "kind = \"smtp\"\nhost = \"127.0.0.1\"\nport = {port}\n\
         from = \"a@example.com\"\nto = [\"b@example.com\"]\ntimeout = \"2s\"\n"
    ))
    .unwrap();
    let e = n.send(&alert("a6@h")).await.unwrap_err();
    assert!(e.is_transient(), "{e:?}");
    assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
}

#[tokio::test]
async fn notifier_smtp_server_restarted_on_its_port_keeps_its_spool() {
    let mut server = SmtpServer::start(SmtpOptions::default());
    let port = server.port();
    let n = smtp_notifier(&server, "none", None);
    n.send(&alert("r1@h")).await.unwrap();

    server.stop();
    assert!(n.send(&alert("r2@h")).await.unwrap_err().is_transient());
    server.start_on(port, SmtpOptions::default());
    assert_eq!(server.port(), port);
    n.send(&alert("r2@h")).await.unwrap();

    let ids: Vec<_> = server
        .messages()
        .into_iter()
        .map(|m| m.message_id)
        .collect();
    assert_eq!(ids, ["r1@h", "r2@h"]);
}

#[tokio::test]
async fn notifier_smtp_silent_server_is_transient_at_the_timeout() {
    // Accepted by the kernel, never greeted.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let n = notifier(&format!(
        "kind = \"smtp\"\nhost = \"127.0.0.1\"\nport = {}\ntimeout = \"300ms\"\n\
         from = \"a@example.com\"\nto = [\"b@example.com\"]\n",
        silent.local_addr().unwrap().port()
    ))
    .unwrap();
    let started = std::time::Instant::now();
    let e = n.send(&alert("s1@h")).await.unwrap_err();
    let took = started.elapsed();
    assert!(e.is_transient(), "{e:?}");
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "{took:?}"
    );
}

#[tokio::test]
async fn notifier_smtp_starttls_required_but_not_offered_is_permanent() {
    let server = SmtpServer::start(SmtpOptions::default());
    let n = smtp_notifier(&server, "starttls", None);
    let e = n.send(&alert("s2@h")).await.unwrap_err();
    assert!(
        matches!(&e, SendError::Permanent(t) if t.contains("STARTTLS")),
        "{e:?}"
    );
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn notifier_unreadable_secret_files_are_named() {
    let e = notifier(
        "kind = \"smtp\"\nhost = \"127.0.0.1\"\nfrom = \"a@example.com\"\n\
         to = [\"b@example.com\"]\nusername = \"u\"\npassword_file = \"/nonexistent/smtp.pass\"\n",
    )
    .unwrap_err();
    assert!(e.contains("/nonexistent/smtp.pass"), "{e}");
    let e = notifier(
        "kind = \"webhook\"\nurl = \"http://127.0.0.1:9/\"\n\
         bearer_token_file = \"/nonexistent/hook.token\"\n",
    )
    .unwrap_err();
    assert!(e.contains("/nonexistent/hook.token"), "{e}");
}

fn webhook(url: &str, extra: &str) -> Notifier {
    notifier(&format!(
        "kind = \"webhook\"\nurl = \"{url}\"\ntimeout = \"2s\"\n{extra}"
    ))
    .unwrap()
}

#[tokio::test]
async fn notifier_webhook_500_is_transient_then_200_delivers_with_key_and_token() {
    let hook = WebhookReceiver::start(1, 500);
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("hook.token");
    std::fs::write(&token, "t0ken-xyz\n").unwrap();
    let n = webhook(
        &hook.url("/alerts?src=hw"),
        &format!("bearer_token_file = \"{}\"\n", token.display()),
    );
    assert!(!format!("{n:?}").contains("t0ken-xyz"), "{n:?}");
    let m = alert("a8.1@h");

    let e = n.send(&m).await.unwrap_err();
    assert!(e.is_transient(), "{e:?}");
    assert!(e.to_string().contains("answered HTTP 500"), "{e}");
    assert!(!e.to_string().contains("t0ken-xyz"), "{e}");
    n.send(&m).await.unwrap();

    let all = hook.received();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].idempotency_key, all[1].idempotency_key);
    let ok = hook.accepted();
    assert_eq!(ok.len(), 1);
    let d = &ok[0];
    assert_eq!(d.method, "POST");
    assert_eq!(d.path, "/alerts?src=hw");
    assert_eq!(d.idempotency_key.as_deref(), Some("a8.1@h"));
    assert_eq!(d.authorization.as_deref(), Some("Bearer t0ken-xyz"));
    assert_eq!(d.content_type.as_deref(), Some("application/json"));
    assert!(d.user_agent.as_deref().unwrap().starts_with("hostwatch/"));
    assert_eq!(d.body, m.payload);
}

#[tokio::test]
async fn notifier_webhook_404_is_permanent_and_429_transient() {
    let hook = WebhookReceiver::start(usize::MAX, 404);
    let e = webhook(&hook.url("/nope"), "")
        .send(&alert("a9@h"))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, SendError::Permanent(t) if t.contains("404")),
        "{e:?}"
    );
    assert_eq!(hook.received()[0].authorization, None);

    let hook = WebhookReceiver::start(usize::MAX, 429);
    let e = webhook(&hook.url("/"), "")
        .send(&alert("a9@h"))
        .await
        .unwrap_err();
    assert!(e.is_transient(), "{e:?}");
}

#[tokio::test]
async fn notifier_webhook_that_never_answers_is_transient_at_the_timeout() {
    // Connections queue in the backlog; nobody ever reads or answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", silent.local_addr().unwrap());
    let n = notifier(&format!(
        "kind = \"webhook\"\nurl = \"{url}\"\ntimeout = \"300ms\"\n"
    ))
    .unwrap();
    let started = std::time::Instant::now();
    let e = n.send(&alert("a10@h")).await.unwrap_err();
    let took = started.elapsed();
    assert!(e.is_transient(), "{e:?}");
    assert!(e.to_string().contains("did not answer within"), "{e}");
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "{took:?}"
    );
}

#[tokio::test]
async fn notifier_webhook_closed_port_is_transient() {
    let port = closed_port();
    let e = webhook(&format!("http://127.0.0.1:{port}/"), "")
        .send(&alert("a11@h"))
        .await
        .unwrap_err();
    assert!(e.is_transient(), "{e:?}");
    assert!(e.to_string().contains("cannot connect"), "{e}");
}

#[tokio::test]
async fn notifier_https_webhook_trusts_its_ca_file_only() {
    let hook = WebhookReceiver::start_tls(0, 500);
    let ca = format!("ca_file = \"{}\"\n", hook.ca_file().display());
    webhook(&hook.url("/tls"), &ca)
        .send(&alert("a12@h"))
        .await
        .unwrap();
    assert_eq!(hook.accepted()[0].body, alert("a12@h").payload);

    let e = webhook(&hook.url("/tls"), "")
        .send(&alert("a13@h"))
        .await
        .unwrap_err();
    assert!(e.is_transient() && e.to_string().contains("TLS"), "{e:?}");
    assert_eq!(hook.received().len(), 1);
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}
