//! Reading config values: each check runs while the value is read, so the
//! TOML error that reports it carries the key's line.

use super::{MAX_INTERVAL, MIN_INTERVAL};
use crate::domain::time::{format_duration, parse_duration};
use serde::{Deserialize, Deserializer};
use std::{collections::BTreeMap, time::Duration};

pub fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    parse_duration(&s).map_err(serde::de::Error::custom)
}

pub fn interval<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let v = duration(d)?;
    if !(MIN_INTERVAL..=MAX_INTERVAL).contains(&v) {
        return Err(serde::de::Error::custom(format!(
            "interval {} is out of range: use {} to {}",
            format_duration(v),
            format_duration(MIN_INTERVAL),
            format_duration(MAX_INTERVAL)
        )));
    }
    Ok(v)
}

pub fn workers<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    bounded(d, 1, 64, "workers")
}

/// `server.allowed_hosts`: host names (`*.name` for a domain and its
/// subdomains), addresses (one the agent is reached at through a NAT), or
/// `*`; what a `Host` header could match, nothing else.
pub fn allowed_hosts<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let names = Vec::<String>::deserialize(d)?;
    for n in &names {
        let name = n.strip_prefix("*.").unwrap_or(n);
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        let ok = n == "*"
            || n.parse::<std::net::IpAddr>().is_ok()
            || (name.len() <= 253 && name.trim_end_matches('.').split('.').all(label_ok));
        if !ok {
            return Err(serde::de::Error::custom(format!(
                "allowed_hosts: '{n}' is not a host name; write names such as \
                 'monitor.example.org', '*.example.org' for a domain, an address, or '*' for any"
            )));
        }
    }
    Ok(names)
}

pub fn top_processes<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    bounded(d, 0, 100, "top_processes")
}

fn bounded<'de, D: Deserializer<'de>>(
    d: D,
    lo: i64,
    hi: i64,
    what: &str,
) -> Result<usize, D::Error> {
    let v = i64::deserialize(d)?;
    if !(lo..=hi).contains(&v) {
        return Err(serde::de::Error::custom(format!(
            "{what} = {v} is out of range: use {lo} to {hi}"
        )));
    }
    Ok(v as usize)
}

/// Names appear in URLs (`/api/v1/services/{name}`): keep them plain.
pub fn service_name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    let plain = |c: char| c.is_ascii_alphanumeric() || "._@-".contains(c);
    // `.` and `..` are path segments a URL resolves away: their routes
    // would be another route's.
    let dots = s.chars().all(|c| c == '.');
    // Without a `unit`, the name is the unit or init script: a leading `-`
    // would be an option to systemctl or service.
    let option = s.starts_with('-');
    if s.is_empty() || s.len() > 64 || !s.chars().all(plain) || dots || option {
        return Err(serde::de::Error::custom(format!(
            "service name '{s}': use 1 to 64 letters, digits, '.', '_', '@' or '-', \
             not starting with '-' and not only dots"
        )));
    }
    Ok(s)
}

/// `unit`: a systemd unit or init script name (`services::unit`).
pub fn unit<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    crate::services::unit::validate(&s).map_err(serde::de::Error::custom)?;
    Ok(Some(s))
}

pub fn health_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    crate::services::probe::validate(&s).map_err(serde::de::Error::custom)?;
    Ok(Some(s))
}

/// A token's name: the actor in the audit trail and the log. Not
/// `anonymous`, which names callers without a token (and would give the
/// token their share and view), and not empty.
pub fn token_name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    match s.trim() {
        "" => Err(serde::de::Error::custom("a token needs a name")),
        "anonymous" => Err(serde::de::Error::custom(
            "'anonymous' names callers without a token: choose another token name",
        )),
        _ => Ok(s),
    }
}

pub fn sha256_hex<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
    let s = String::deserialize(d)?;
    let mut out = [0u8; 32];
    hex::decode_to_slice(s.trim(), &mut out).map_err(|_| {
        serde::de::Error::custom(
            "sha256 must be 64 hex digits: the SHA-256 of the token, as `hostwatch token` prints it",
        )
    })?;
    Ok(out)
}

/// `control.spawn_env`: names as a shell takes them (so no `=` or NUL, which
/// `execve` could not pass), values without NUL.
pub fn spawn_env<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let env = BTreeMap::<String, String>::deserialize(d)?;
    for (name, value) in &env {
        let mut chars = name.chars();
        let named = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !named {
            return Err(serde::de::Error::custom(format!(
                "control.spawn_env: {name:?} is not an environment variable name: \
                 use letters, digits and '_', not starting with a digit"
            )));
        }
        if value.contains('\0') {
            return Err(serde::de::Error::custom(format!(
                "control.spawn_env.{name}: the value may not contain a NUL character"
            )));
        }
    }
    Ok(env)
}

/// Names of rules, probes and notifiers appear in URLs and metrics labels.
pub fn plain_name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    let plain = |c: char| c.is_ascii_alphanumeric() || "._-".contains(c);
    if s.is_empty() || s.len() > 64 || !s.chars().all(plain) {
        return Err(serde::de::Error::custom(format!(
            "name '{s}': use 1 to 64 letters, digits, '.', '_' or '-'"
        )));
    }
    Ok(s)
}

pub fn signal<'de, D: Deserializer<'de>>(d: D) -> Result<crate::domain::Signal, D::Error> {
    let s = String::deserialize(d)?;
    s.parse()
        .map_err(|e: crate::domain::ParseError| serde::de::Error::custom(e.0))
}
