//! The client's side of the API: where the agent is, the token, and one
//! request at a time over ureq (the rustls already linked). An answer
//! that is not 2xx becomes the problem's `detail` and an exit code.

use crate::config::Settings;
use serde::de::DeserializeOwned;
use std::{path::PathBuf, process::ExitCode, time::Duration};

/// Why a command failed; each kind has its own exit code (README,
/// "Commands"), so that scripts can tell them apart.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing answered at the address (exit 3).
    #[error("the agent at {url} does not answer: {why}")]
    Unreachable { url: String, why: String },
    /// 401: no token, or a wrong one (exit 4).
    #[error("{0}")]
    Unauthorized(String),
    /// 403, 404, 409, 422 …: the agent understood and said no (exit 5).
    #[error("{0}")]
    Refused(String),
    /// Anything else: a bad config, a 5xx, an answer that is not JSON (exit 1).
    #[error("{0}")]
    Other(String),
}

impl ClientError {
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            ClientError::Unreachable { .. } => 3,
            ClientError::Unauthorized(_) => 4,
            ClientError::Refused(_) => 5,
            ClientError::Other(_) => 1,
        })
    }
}

/// The config the Debian package installs; the client reads it when
/// neither `--config` nor `./hostwatch.toml` is there.
pub const INSTALLED_CONFIG: &str = "/etc/hostwatch/hostwatch.toml";

/// Where to find the agent and how to talk to it.
#[derive(Debug, Clone, Default)]
pub struct Target {
    pub config: Option<PathBuf>,
    pub url: Option<String>,
    pub token: Option<String>,
    pub token_file: Option<PathBuf>,
    pub ca: Option<PathBuf>,
}

pub struct Agent {
    http: ureq::Agent,
    base: String,
    token: Option<String>,
}

impl Agent {
    /// The agent the config names (its `server.listen`, https when it has
    /// `tls_cert`, whose certificate is then the CA unless `ca` is given),
    /// or `url`; the token given, else the generated one beside the
    /// database when this user may read it.
    pub fn new(t: &Target) -> Result<Self, ClientError> {
        let settings = Settings::load(
            Some(&config_file(t)?)
                .filter(|p| !p.as_os_str().is_empty())
                .map(PathBuf::as_path),
            std::env::vars(),
        )
        .map_err(|e| ClientError::Other(e.to_string()))?;
        let tls_cert = settings.server.tls_cert.clone();
        let base = match &t.url {
            Some(u) => u.trim_end_matches('/').to_owned(),
            None => {
                let mut addr = settings.server.listen;
                if addr.ip().is_unspecified() {
                    addr.set_ip(match addr {
                        std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                        std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                    });
                }
                let scheme = if tls_cert.is_some() { "https" } else { "http" };
                format!("{scheme}://{addr}")
            }
        };
        let ca =
            t.ca.clone()
                .or(tls_cert.filter(|_| base.starts_with("https://")));
        let token = match (&t.token, &t.token_file) {
            (Some(tok), _) => Some(tok.clone()),
            (None, Some(f)) => Some(
                crate::tls::read_header_secret(f, "the token file").map_err(ClientError::Other)?,
            ),
            // The generated control token goes only to the agent the
            // config names, never to an address given beside it.
            (None, None) if t.url.is_none() => {
                crate::tokens::read_generated(&settings.storage.path)
            }
            (None, None) => None,
        };
        let roots = crate::tls::client_roots(ca.as_deref())
            .map_err(|e| ClientError::Other(format!("the CA: {e}")))?;
        let http = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(30)))
            .http_status_as_error(false)
            .max_redirects(0)
            .proxy(None)
            .user_agent(format!("hostwatch-cli/{}", env!("CARGO_PKG_VERSION")))
            .tls_config(ureq::tls::TlsConfig::builder().root_certs(roots).build())
            .build()
            .new_agent();
        Ok(Self { http, base, token })
    }

    pub fn get<T: DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<(T, serde_json::Value), ClientError> {
        self.call("GET", path, None)
    }

    pub fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<(T, serde_json::Value), ClientError> {
        self.call("POST", path, body)
    }

    pub fn delete<T: DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<(T, serde_json::Value), ClientError> {
        self.call("DELETE", path, None)
    }

    /// The answer decoded into the API's own type, and as it came (for
    /// `--json`).
    fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<(T, serde_json::Value), ClientError> {
        let url = format!("{}{path}", self.base);
        let auth = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let sent = match (method, body) {
            ("GET" | "DELETE", _) => {
                let mut r = if method == "GET" {
                    self.http.get(&url)
                } else {
                    self.http.delete(&url)
                };
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                r.call()
            }
            (_, body) => {
                let mut r = self.http.post(&url);
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                match body {
                    Some(b) => r
                        .header("Content-Type", "application/json")
                        .send(b.to_string().as_bytes()),
                    None => r.send_empty(),
                }
            }
        };
        let mut answer = sent.map_err(|e| ClientError::Unreachable {
            url: self.base.clone(),
            why: e.to_string(),
        })?;
        let status = answer.status().as_u16();
        let text = answer
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .map_err(|e| {
                ClientError::Other(format!("{method} {path}: cannot read the answer: {e}"))
            })?;
        if !(200..300).contains(&status) {
            let detail = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v["detail"].as_str().map(str::to_owned))
                .unwrap_or_else(|| format!("{method} {path} answered {status}"));
            return Err(match status {
                401 => ClientError::Unauthorized(format!(
                    "{detail} (give a token: HOSTWATCH_TOKEN or --token-file)"
                )),
                400..=499 => ClientError::Refused(detail),
                _ => ClientError::Other(detail),
            });
        }
        let raw: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| ClientError::Other(format!("{method} {path}: not JSON: {e}")))?;
        let typed = serde_json::from_value(raw.clone())
            .map_err(|e| ClientError::Other(format!("{method} {path}: unexpected answer: {e}")))?;
        Ok((typed, raw))
    }
}

/// The config the client reads: the one named (`--config`,
/// `HOSTWATCH_CONFIG`); else the installed one when this user may read it;
/// else `./hostwatch.toml` only when it is this user's own and no one else
/// may write it (root run in a shared directory must not take a planted
/// config's address and send it the token); else none (empty path).
fn config_file(t: &Target) -> Result<PathBuf, ClientError> {
    use std::os::unix::fs::MetadataExt;
    if let Some(c) = &t.config {
        return Ok(c.clone());
    }
    if std::fs::File::open(INSTALLED_CONFIG).is_ok() {
        return Ok(PathBuf::from(INSTALLED_CONFIG));
    }
    let local = PathBuf::from("hostwatch.toml");
    match std::fs::symlink_metadata(&local) {
        Ok(m) if m.is_file()
            && m.uid() == rustix::process::geteuid().as_raw()
            && m.mode() & 0o022 == 0 =>
        {
            Ok(local)
        }
        Ok(_) => Err(ClientError::Other(
            "./hostwatch.toml is not this user's own, or others may write it: name a config with --config".into(),
        )),
        Err(_) => Ok(PathBuf::new()),
    }
}
