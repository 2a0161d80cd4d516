//! `[[remote_write]]`: receivers the agent pushes its history to (SPEC §8,
//! "Push"), and the checks of one table: a URL the sender can use, one way
//! to log in, and no secret sent in the clear to another host.

use super::{de::duration, notifier::loopback, redact::shown_url};
use serde::Deserialize;
use std::{path::PathBuf, time::Duration};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteWriteSettings {
    /// The receiver's write endpoint, e.g.
    /// `http://prometheus:9090/api/v1/write`.
    pub url: String,
    /// How `/metrics`, the API and the log name it; `receiver-N` (its
    /// place in the config, from 1) when unset: the name is shown to
    /// public reads, the receiver's address is not.
    pub name: Option<String>,
    pub bearer_token_file: Option<PathBuf>,
    pub basic_auth: Option<BasicAuth>,
    /// PEM certificates to trust instead of the webpki roots.
    pub tls_ca: Option<PathBuf>,
    /// How often new checks are sent.
    #[serde(default = "fifteen_seconds", deserialize_with = "duration")]
    pub interval: Duration,
    /// Checks older than this when the receiver comes back are skipped.
    #[serde(default = "seven_days", deserialize_with = "duration")]
    pub max_backlog: Duration,
    /// How long one request may take.
    #[serde(default = "thirty_seconds", deserialize_with = "duration")]
    pub timeout: Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    pub username: String,
    pub password_file: PathBuf,
}

fn fifteen_seconds() -> Duration {
    Duration::from_secs(15)
}
fn seven_days() -> Duration {
    Duration::from_secs(7 * 86_400)
}
fn thirty_seconds() -> Duration {
    Duration::from_secs(30)
}

impl RemoteWriteSettings {
    /// The name shown for the `index`th receiver (from 0).
    pub fn shown_name(&self, index: usize) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("receiver-{}", index + 1))
    }
}

pub(super) fn remote_write(r: &RemoteWriteSettings) -> Result<(), String> {
    let shown = shown_url(&r.url);
    let me = format!("url {shown}");
    let parsed = url::Url::parse(&r.url).map_err(|e| format!("{me} is not a URL: {e}"))?;
    let host = parsed
        .host_str()
        .filter(|_| matches!(parsed.scheme(), "http" | "https"))
        .ok_or_else(|| format!("{me} must be http:// or https://host[:port]/path"))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(format!(
            "{me} holds credentials: use bearer_token_file or basic_auth"
        ));
    }
    if r.bearer_token_file.is_some() && r.basic_auth.is_some() {
        return Err(format!(
            "{me}: give bearer_token_file or basic_auth, not both"
        ));
    }
    let secret = r.bearer_token_file.is_some() || r.basic_auth.is_some();
    if secret && parsed.scheme() == "http" && !loopback(host) {
        return Err(format!(
            "{me}: credentials over http:// would cross the network in the clear to {host}: use an https:// url"
        ));
    }
    if r.tls_ca.is_some() && parsed.scheme() != "https" {
        return Err(format!("{me}: tls_ca is for an https:// url"));
    }
    if let Some(n) = &r.name
        && (n.is_empty() || n.len() > 100 || n.chars().any(char::is_control))
    {
        return Err(format!(
            "{me}: name: use 1 to 100 characters, no control characters"
        ));
    }
    if r.interval < Duration::from_secs(1) || r.interval > Duration::from_secs(3_600) {
        return Err(format!("{me}: interval: use 1s to 1h"));
    }
    if r.max_backlog < r.interval || r.max_backlog > Duration::from_secs(366 * 86_400) {
        return Err(format!(
            "{me}: max_backlog: use at least the interval and at most 366d"
        ));
    }
    if r.timeout.is_zero() || r.timeout > Duration::from_secs(300) {
        return Err(format!("{me}: timeout: use 1ms to 5m"));
    }
    Ok(())
}
