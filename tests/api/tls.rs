//! HTTPS (`server.tls_cert`, `server.tls_key`): the API over rustls with
//! keep-alive, and certificate problems that stop start-up with the key and
//! the file named. Certificates are made by the `openssl` CLI.

use crate::helpers::{CONTROL_TOKEN, smtp::make_cert, spawn_with};
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A client that trusts only the certificate at `cert`.
fn connector(cert: &Path) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(cert).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut config = config;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// Sends one HTTP/1.1 request on `s` and reads its answer: status line and body.
async fn exchange<S: AsyncReadExt + AsyncWriteExt + Unpin>(
    s: &mut S,
    path: &str,
    token: Option<&str>,
) -> (String, String) {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the connection closed mid-answer: {buf:?}");
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            continue;
        };
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().unwrap())
            })
            .expect("a content-length");
        if body.len() >= length {
            return (head.lines().next().unwrap().to_owned(), body.to_owned());
        }
    }
}

#[actix_web::test]
async fn https_serves_the_api_on_one_kept_alive_connection_and_plain_http_gets_no_answer() {
    let certs = tempfile::tempdir().unwrap();
    make_cert(certs.path());
    let (cert, key) = (certs.path().join("cert.pem"), certs.path().join("key.pem"));
    let app = spawn_with(|s| {
        s.server.tls_cert = Some(cert.clone());
        s.server.tls_key = Some(key.clone());
    })
    .await;
    let port: u16 = app.base.rsplit(':').next().unwrap().parse().unwrap();

    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut tls = connector(&cert)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("a TLS handshake with the agent's certificate");
    assert_eq!(
        tls.get_ref().1.alpn_protocol(),
        Some(&b"http/1.1"[..]),
        "HTTP/1.1 by ALPN"
    );
    let (status, body) = exchange(&mut tls, "/healthz", None).await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(body.contains("\"ok\""), "{body}");
    // The same connection again, with a token: keep-alive, as over HTTP.
    let (status, body) = exchange(&mut tls, "/api/v1/audit", Some(CONTROL_TOKEN)).await;
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    let (status, _) = exchange(&mut tls, "/api/v1/audit", Some("wrong")).await;
    assert_eq!(status, "HTTP/1.1 401 Unauthorized");

    // Plain HTTP to the HTTPS port: no HTTP answer, and the agent goes on.
    let mut plain = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut answer)).await;
    assert!(
        !String::from_utf8_lossy(&answer).contains("HTTP/1.1 200"),
        "plain HTTP was answered"
    );
    let (status, _) = exchange(&mut tls, "/healthz", None).await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    app.stop().await;
}

/// An environment variable and the file it names.
type Env = (&'static str, PathBuf);

/// Starts the real binary with `env` and expects it to refuse to start:
/// returns what it printed. The database must not have been made.
fn refused(dir: &Path, env: &[Env]) -> String {
    let db = dir.join("refused.db");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hostwatch"));
    cmd.arg("serve")
        .current_dir(dir)
        .env("HOSTWATCH_SERVER__LISTEN", "127.0.0.1:0")
        .env("HOSTWATCH_STORAGE__PATH", &db)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let end = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > end {
            let _ = child.kill();
            panic!("the agent started with {env:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(
        !db.exists(),
        "the database was opened before the certificate was checked"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn certificate_problems_stop_start_up_naming_the_key_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    make_cert(&a);
    make_cert(&b);
    let (cert, key) = (a.join("cert.pem"), a.join("key.pem"));
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let missing = dir.path().join("missing.pem");
    let encrypted = dir.path().join("encrypted.pem");
    let out = Command::new("openssl")
        .args(["pkey", "-aes256", "-passout", "pass:secret", "-in"])
        .arg(&key)
        .arg("-out")
        .arg(&encrypted)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let cases: [(&[Env], &[&str]); 6] = [
        (
            &[
                ("HOSTWATCH_SERVER__TLS_CERT", cert.clone()),
                ("HOSTWATCH_SERVER__TLS_KEY", encrypted.clone()),
            ],
            &[
                "server.tls_key",
                "encrypted.pem",
                "is encrypted",
                "openssl pkey",
            ],
        ),
        (
            &[
                ("HOSTWATCH_SERVER__TLS_CERT", missing.clone()),
                ("HOSTWATCH_SERVER__TLS_KEY", key.clone()),
            ],
            &["server.tls_cert", "missing.pem", "cannot read"],
        ),
        (
            &[
                ("HOSTWATCH_SERVER__TLS_CERT", garbage.clone()),
                ("HOSTWATCH_SERVER__TLS_KEY", key.clone()),
            ],
            &["server.tls_cert", "garbage.pem", "no PEM certificate"],
        ),
        (
            &[
                ("HOSTWATCH_SERVER__TLS_CERT", cert.clone()),
                ("HOSTWATCH_SERVER__TLS_KEY", cert.clone()),
            ],
            &["server.tls_key", "cert.pem", "private key"],
        ),
        (
            &[
                ("HOSTWATCH_SERVER__TLS_CERT", cert.clone()),
                ("HOSTWATCH_SERVER__TLS_KEY", b.join("key.pem")),
            ],
            &["server.tls_cert", "server.tls_key", "usable pair"],
        ),
        (
            &[("HOSTWATCH_SERVER__TLS_CERT", cert.clone())],
            &["tls_cert and tls_key go together"],
        ),
    ];
    for (env, words) in cases {
        let said = refused(dir.path(), env);
        for w in words {
            assert!(said.contains(w), "{env:?}: no '{w}' in {said}");
        }
    }
}
