//! The `Host` a request names must be one this agent answers to, or a web
//! page could rebind its own name to 127.0.0.1 and read the API from the
//! visitor's browser (DNS rebinding). Allowed: IP addresses the agent can
//! be reached at (loopback, the listen address, any address when it
//! listens on all), `localhost` and its subdomains (which never leave the
//! host), the host's own name, and `server.allowed_hosts`. Others are 421.
//! A name an attacker controls is never among these, whatever it resolves
//! to; an address in `Host` cannot be rebound.

use super::{ApiError, AppState};
use actix_web::{
    Error, ResponseError,
    body::{EitherBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::header,
    middleware::Next,
    web,
};
use std::net::IpAddr;

/// Which `Host` values a request may carry.
#[derive(Debug, Clone)]
pub struct AllowedHosts {
    listen: IpAddr,
    /// Lower-case names; `*.name` allows the name's subdomains too.
    names: Vec<String>,
    /// `*` is configured: behind a proxy that checks names itself.
    any: bool,
}

impl AllowedHosts {
    /// `configured` is `server.allowed_hosts`, checked at config load.
    pub fn new(listen: IpAddr, configured: &[String]) -> Self {
        let mut names: Vec<String> = configured.iter().map(|n| normal(n)).collect();
        if let Some(own) = crate::collect::host_name() {
            names.push(normal(&own));
        }
        Self {
            listen,
            any: names.iter().any(|n| n == "*"),
            names,
        }
    }

    /// Whether a request naming `host` (the `Host` header or the URI's
    /// authority, with or without a port) is answered.
    pub fn allows(&self, host: &str) -> bool {
        if self.any {
            return true;
        }
        let Some(name) = without_port(host) else {
            return false;
        };
        if let Ok(ip) = name.parse::<IpAddr>() {
            return ip.is_loopback()
                || self.listen.is_unspecified()
                || ip == self.listen
                || self.names.iter().any(|n| n.parse() == Ok(ip));
        }
        let name = normal(name);
        name == "localhost"
            || name.ends_with(".localhost")
            || self.names.iter().any(|n| match n.strip_prefix("*.") {
                Some(domain) => {
                    name == domain
                        || name
                            .strip_suffix(domain)
                            .is_some_and(|sub| sub.ends_with('.'))
                }
                None => *n == name,
            })
    }
}

/// Lower case, without the trailing dot of an absolute name.
fn normal(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

/// `name`, `name:port`, `[v6]` or `[v6]:port` → the name or address;
/// `None` for what is none of these.
fn without_port(host: &str) -> Option<&str> {
    if let Some(rest) = host.strip_prefix('[') {
        let (addr, after) = rest.split_once(']')?;
        return (after.is_empty() || port(after.strip_prefix(':')?)).then_some(addr);
    }
    match host.rsplit_once(':') {
        Some((name, p)) if port(p) && !name.contains(':') => Some(name),
        Some(_) => None,
        None => Some(host),
    }
}

fn port(p: &str) -> bool {
    !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit())
}

pub async fn check_host(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    // HTTP/2 carries the authority in the URI; HTTP/1.1 in `Host`. The
    // forwarded headers are the client's to write, so they are not read.
    let host = match req.uri().authority() {
        Some(a) => Some(a.as_str().to_owned()),
        None => req
            .headers()
            .get(header::HOST)
            .map(|v| v.to_str().unwrap_or("\u{fffd}").to_owned()),
    };
    let allowed = req.app_data::<web::Data<AppState>>().map(|s| &s.hosts);
    // No `Host` at all is an HTTP/1.0 client, never a browser.
    if let (Some(host), Some(allowed)) = (host, allowed)
        && !allowed.allows(&host)
    {
        let shown: String = host.chars().take(100).collect();
        let e = ApiError::Misdirected(format!(
            "this agent does not answer to the host '{shown}' (a guard against DNS rebinding); \
             use its address, or add the name to server.allowed_hosts"
        ));
        let res = e.error_response();
        return Ok(req.into_response(res).map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(listen: &str, names: &[&str]) -> AllowedHosts {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        AllowedHosts::new(listen.parse().unwrap(), &names)
    }

    #[test]
    fn loopback_localhost_and_the_listen_address_are_allowed() {
        let h = hosts("192.0.2.7", &[]);
        for ok in [
            "127.0.0.1",
            "127.0.0.1:8080",
            "127.1.2.3:80",
            "[::1]:8080",
            "[::1]",
            "localhost",
            "LOCALHOST:8080",
            "localhost.",
            "app.localhost:1",
            "192.0.2.7:8080",
        ] {
            assert!(h.allows(ok), "{ok}");
        }
    }

    #[test]
    fn other_names_and_addresses_are_refused() {
        let h = hosts("127.0.0.1", &[]);
        for bad in [
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example",
            "evillocalhost",
            "192.0.2.7",
            "[::1",
            "[::1]x",
            "a:b:c",
            "host:99999999",
            "",
        ] {
            assert!(!h.allows(bad), "{bad}");
        }
    }

    #[test]
    fn configured_names_and_their_wildcards_are_allowed() {
        let h = hosts("127.0.0.1", &["Monitor.Example.org", "*.fleet.example"]);
        assert!(h.allows("monitor.example.org:8080"));
        assert!(h.allows("fleet.example"));
        assert!(h.allows("a.b.fleet.example"));
        assert!(!h.allows("xfleet.example"));
        assert!(!h.allows("example.org"));
        // An address the agent is reached at through a NAT.
        let h = hosts("10.0.0.5", &["198.51.100.9"]);
        assert!(h.allows("198.51.100.9:8080"));
        assert!(!h.allows("198.51.100.10:8080"));
    }

    #[test]
    fn listening_on_every_address_allows_every_address_but_not_every_name() {
        let h = hosts("0.0.0.0", &[]);
        assert!(h.allows("192.0.2.7:8080"));
        assert!(h.allows("[2001:db8::1]:8080"));
        assert!(!h.allows("evil.example"));
    }

    #[test]
    fn a_star_allows_anything() {
        assert!(hosts("127.0.0.1", &["*"]).allows("evil.example"));
    }
}
