//! A real SMTP server for tests: `smtpd.py` (aiosmtpd, Debian's
//! python3-aiosmtpd, which imports only under /usr/bin/python3) in a child
//! process, with a self-signed certificate made by the `openssl` CLI and a
//! spool of the messages it accepted. A missing part fails the test.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

/// How the server behaves.
#[derive(Debug, Clone, Default)]
pub struct SmtpOptions {
    /// Require STARTTLS before anything else.
    pub starttls: bool,
    /// Implicit TLS (SMTPS) from the first byte.
    pub implicit_tls: bool,
    /// Require AUTH (LOGIN or PLAIN) with this user and password.
    pub auth: Option<(String, String)>,
    /// Answer the first this many DATA with `451 4.3.0 try again later`.
    pub fail_first: usize,
    /// Recipients refused at `RCPT TO` with `550 5.1.1`.
    pub reject_rcpt: Vec<String>,
}

/// One accepted message, read back from the spool.
#[derive(Debug, Clone)]
pub struct Mail {
    /// `Message-ID` without the angle brackets.
    pub message_id: String,
    pub subject: String,
    /// The `From` and `To` headers as written.
    pub from: String,
    pub to: String,
    /// The envelope's recipients (`RCPT TO`).
    pub rcpt_to: Vec<String>,
    /// Unfolded headers, in order.
    pub headers: Vec<(String, String)>,
    /// The body with CRLF turned into LF.
    pub body: String,
    /// The message as received.
    pub raw: String,
}

impl Mail {
    /// The first header of that name (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub struct SmtpServer {
    dir: tempfile::TempDir,
    child: Option<Child>,
    port: u16,
}

impl SmtpServer {
    /// Starts a server on a free loopback port.
    pub fn start(opts: SmtpOptions) -> SmtpServer {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("spool")).unwrap();
        make_cert(dir.path());
        let mut server = SmtpServer {
            dir,
            child: None,
            port: 0,
        };
        server.start_on(0, opts);
        server
    }

    /// (Re)starts the server on `port` (0: any), keeping the spool and the
    /// certificate; a running one is stopped first.
    pub fn start_on(&mut self, port: u16, opts: SmtpOptions) {
        self.stop();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api/helpers/smtpd.py");
        let stderr_path = self.dir.path().join("smtpd.stderr");
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.arg("-u")
            .arg(&script)
            .arg(port.to_string())
            .arg("--spool")
            .arg(self.dir.path().join("spool"))
            .arg("--fail-first")
            .arg(opts.fail_first.to_string());
        let (cert, key) = (self.ca_file(), self.dir.path().join("key.pem"));
        if opts.starttls {
            cmd.arg("--starttls").arg(&cert).arg(&key);
        }
        if opts.implicit_tls {
            cmd.arg("--tls").arg(&cert).arg(&key);
        }
        for rcpt in &opts.reject_rcpt {
            cmd.arg("--reject-rcpt").arg(rcpt);
        }
        if let Some((user, pass)) = &opts.auth {
            cmd.arg("--auth").arg(format!("{user}:{pass}"));
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_path).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run /usr/bin/python3 for smtpd.py: {e}"));
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(20)).unwrap_or_default();
        let Some(bound) = line
            .trim()
            .strip_prefix("listening ")
            .and_then(|p| p.parse().ok())
        else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "smtpd.py did not start (is python3-aiosmtpd installed? scripts/test installs it): {}",
                std::fs::read_to_string(&stderr_path).unwrap_or_default()
            );
        };
        self.port = bound;
        self.child = Some(child);
    }

    /// Kills the server (as SIGKILL would); the spool stays.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's self-signed certificate (for `127.0.0.1` and
    /// `localhost`): the `ca_file` a client trusts it with.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    /// A directory that lives as long as the server, for secret files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The accepted messages, oldest first.
    pub fn messages(&self) -> Vec<Mail> {
        let spool = self.dir.path().join("spool");
        let mut numbered: Vec<(u64, PathBuf)> = std::fs::read_dir(&spool)
            .unwrap()
            .filter_map(|e| {
                let path = e.unwrap().path();
                let n = path
                    .file_name()?
                    .to_str()?
                    .strip_suffix(".eml")?
                    .parse()
                    .ok()?;
                Some((n, path))
            })
            .collect();
        numbered.sort();
        numbered
            .into_iter()
            .map(|(_, p)| parse_mail(&std::fs::read_to_string(p).unwrap()))
            .collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Writes `cert.pem` and `key.pem` into `dir`: a self-signed P-256
/// certificate for 127.0.0.1 and localhost, not a CA, so that rustls takes
/// it both as the trusted root and as the server's certificate.
pub fn make_cert(dir: &Path) {
    let config = dir.join("openssl.cnf");
    std::fs::write(
        &config,
        "[req]\ndistinguished_name = dn\nx509_extensions = ext\nprompt = no\n\
         [dn]\nCN = localhost\n\
         [ext]\nbasicConstraints = critical, CA:FALSE\n\
         subjectAltName = IP:127.0.0.1, DNS:localhost\n\
         keyUsage = critical, digitalSignature\nextendedKeyUsage = serverAuth\n",
    )
    .unwrap();
    let out = Command::new("openssl")
        .args(["req", "-x509", "-nodes", "-days", "2", "-newkey", "ec"])
        .args(["-pkeyopt", "ec_paramgen_curve:prime256v1", "-config"])
        .arg(&config)
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run openssl (scripts/test installs it): {e}"));
    assert!(
        out.status.success(),
        "openssl req failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Reads a spool file: the envelope lines smtpd.py put first, then the
/// message as received.
fn parse_mail(file: &str) -> Mail {
    let mut raw = file;
    let mut rcpt_to = Vec::new();
    while let Some((line, rest)) = raw.split_once("\r\n") {
        if let Some(to) = line.strip_prefix("X-Envelope-To: ") {
            rcpt_to = to.split(", ").map(str::to_owned).collect();
        } else if !line.starts_with("X-Envelope-From: ") {
            break;
        }
        raw = rest;
    }
    let text = raw.replace("\r\n", "\n");
    let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = headers.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
        } else if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    Mail {
        message_id: get("Message-ID").trim_matches(['<', '>']).to_owned(),
        subject: get("Subject"),
        from: get("From"),
        to: get("To"),
        rcpt_to,
        body: body.to_owned(),
        raw: raw.to_owned(),
        headers,
    }
}
