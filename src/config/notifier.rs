//! Checks of one `[[notifiers]]` table: the keys its kind needs and none
//! of the other kind's, and no secret sent in the clear to another host.
//! A webhook URL is shown as `redact::shown_url` shows it.

use super::{
    redact::shown_url,
    watchdog::{NotifierKind, NotifierSettings, SmtpTls},
};

/// `localhost` or a loopback address (IPv6 with or without brackets):
/// what goes there in the clear does not cross a network.
pub(super) fn loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

pub(super) fn notifier(n: &NotifierSettings) -> Result<(), String> {
    let me = format!("'{}' ({:?})", n.name, n.kind).to_lowercase();
    if !(1..=100).contains(&n.max_attempts) {
        return Err(format!("{me}: max_attempts: use 1 to 100"));
    }
    if n.timeout.is_zero() || n.timeout > std::time::Duration::from_secs(300) {
        return Err(format!("{me}: timeout: use 1ms to 5m"));
    }
    match n.kind {
        NotifierKind::Smtp => {
            for (key, missing) in [
                ("host", n.host.as_deref().is_none_or(str::is_empty)),
                ("from", n.from.is_none()),
                ("to", n.to.is_empty()),
            ] {
                if missing {
                    return Err(format!("{me}: an smtp notifier needs `{key}`"));
                }
            }
            if n.username.is_some() != n.password_file.is_some() {
                return Err(format!(
                    "{me}: give `username` and `password_file` together"
                ));
            }
            let host = n.host.as_deref().unwrap_or_default();
            if n.username.is_some() && n.tls == SmtpTls::None && !loopback(host) {
                return Err(format!(
                    "{me}: a login over tls = \"none\" would send the password in the clear to {host}: use tls = \"starttls\" or \"tls\""
                ));
            }
            if n.url.is_some() || n.bearer_token_file.is_some() {
                return Err(format!(
                    "{me}: `url` and `bearer_token_file` are webhook keys"
                ));
            }
        }
        NotifierKind::Webhook => {
            let url = n
                .url
                .as_deref()
                .ok_or_else(|| format!("{me}: a webhook notifier needs `url`"))?;
            let shown = shown_url(url);
            // Parsed as the sender parses it; `url::ParseError` does not
            // repeat the text it was given.
            let parsed =
                url::Url::parse(url).map_err(|e| format!("{me}: url {shown} is not a URL: {e}"))?;
            let host = parsed
                .host_str()
                .filter(|_| matches!(parsed.scheme(), "http" | "https"))
                .ok_or_else(|| {
                    format!("{me}: url {shown} must be http:// or https://host[:port]/path")
                })?;
            if !parsed.username().is_empty() || parsed.password().is_some() {
                return Err(format!(
                    "{me}: url {shown} holds credentials: put the token in bearer_token_file"
                ));
            }
            if n.bearer_token_file.is_some() && parsed.scheme() == "http" && !loopback(host) {
                return Err(format!(
                    "{me}: bearer_token_file over http:// would send the token in the clear to {host}: use an https:// url"
                ));
            }
            if n.host.is_some() || n.from.is_some() || !n.to.is_empty() || n.username.is_some() {
                return Err(format!(
                    "{me}: `host`, `from`, `to` and `username` are smtp keys"
                ));
            }
        }
    }
    Ok(())
}
