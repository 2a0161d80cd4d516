//! Settings: defaults for everything, a TOML file over them, and
//! `HOSTWATCH_<SECTION>__<KEY>` environment variables over that. Values are
//! checked while they are read, so an error names the key and its file line.

mod check;
mod de;
mod notifier;
mod redact;
pub mod remote_write;
pub mod watchdog;

pub use redact::{scrub, shown_url};

use de::{
    allowed_hosts, duration, health_url, interval, service_name, sha256_hex, spawn_env, token_name,
    top_processes, unit, workers,
};
use remote_write::RemoteWriteSettings;
use serde::Deserialize;
use std::{collections::BTreeMap, net::SocketAddr, path::PathBuf, time::Duration};
use toml::Spanned;
use watchdog::{NotifierSettings, ProbeSettings, RuleSettings, WatchdogSettings};

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub storage: StorageSettings,
    pub sampler: SamplerSettings,
    pub auth: AuthSettings,
    pub control: ControlSettings,
    pub services: Vec<ServiceSettings>,
    pub directories: Vec<DirectorySettings>,
    pub watchdog: WatchdogSettings,
    pub notifiers: Vec<Spanned<NotifierSettings>>,
    pub probes: Vec<Spanned<ProbeSettings>>,
    pub rules: Vec<Spanned<RuleSettings>>,
    pub remote_write: Vec<Spanned<RemoteWriteSettings>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    #[serde(deserialize_with = "workers")]
    pub workers: usize,
    /// PEM certificate chain and private key: both given, HTTPS is served
    /// instead of HTTP.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Host names requests may name besides the agent's addresses,
    /// `localhost` and the host's own name; `*.name` for a domain, `*` for
    /// any (behind a proxy that checks names itself).
    #[serde(deserialize_with = "allowed_hosts")]
    pub allowed_hosts: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageSettings {
    pub path: PathBuf,
    #[serde(deserialize_with = "duration")]
    pub retention: Duration,
    #[serde(deserialize_with = "duration")]
    pub rollup_retention: Duration,
    /// Audit rows and ended jobs older than this are purged.
    #[serde(deserialize_with = "duration")]
    pub audit_retention: Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SamplerSettings {
    #[serde(deserialize_with = "interval")]
    pub interval: Duration,
    pub autostart: bool,
    #[serde(deserialize_with = "top_processes")]
    pub top_processes: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    pub public_read: bool,
    pub tokens: Vec<TokenSettings>,
}

/// A configured API token: only its SHA-256 is kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSettings {
    #[serde(deserialize_with = "token_name")]
    pub name: String,
    pub scope: Scope,
    #[serde(deserialize_with = "sha256_hex")]
    pub sha256: [u8; 32],
}

/// What a token may do; `control` includes `read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Read,
    Control,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Control => "control",
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ControlSettings {
    /// Executables that `POST /api/v1/processes` may start; `["*"]` is any.
    pub spawn_allow: Vec<String>,
    /// Variables spawned commands get beside `PATH` and `LANG` (which they
    /// may replace), e.g. `{ TZ = "UTC" }`; nothing of the agent's own
    /// environment reaches them.
    #[serde(deserialize_with = "spawn_env")]
    pub spawn_env: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Manager {
    Auto,
    Systemd,
    Sysv,
    Command,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSettings {
    #[serde(deserialize_with = "service_name")]
    pub name: String,
    #[serde(default = "auto")]
    pub manager: Manager,
    /// The systemd unit (without `.service`) or init script, when it is
    /// not the name.
    #[serde(default, deserialize_with = "unit")]
    pub unit: Option<String>,
    pub start: Option<String>,
    pub stop: Option<String>,
    pub status: Option<String>,
    /// When set, the state is read from this pid file in-process (running
    /// while the pid it names lives) instead of running a status command.
    pub pid_file: Option<PathBuf>,
    #[serde(default, deserialize_with = "health_url")]
    pub health_url: Option<String>,
    #[serde(default = "ten_seconds", deserialize_with = "duration")]
    pub timeout: Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectorySettings {
    pub name: String,
    pub path: PathBuf,
    #[serde(default = "five_minutes", deserialize_with = "duration")]
    pub refresh: Duration,
}

fn auto() -> Manager {
    Manager::Auto
}
fn ten_seconds() -> Duration {
    Duration::from_secs(10)
}
fn five_minutes() -> Duration {
    Duration::from_secs(300)
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            server: ServerSettings::default(),
            storage: StorageSettings::default(),
            sampler: SamplerSettings::default(),
            auth: AuthSettings::default(),
            control: ControlSettings::default(),
            services: vec![ServiceSettings::new("httpd", Manager::Auto)],
            directories: Vec::new(),
            watchdog: WatchdogSettings::default(),
            notifiers: Vec::new(),
            probes: Vec::new(),
            rules: Vec::new(),
            remote_write: Vec::new(),
        }
    }
}

impl ServiceSettings {
    /// A service with every optional key unset and the default timeout.
    pub fn new(name: &str, manager: Manager) -> Self {
        Self {
            name: name.into(),
            manager,
            unit: None,
            start: None,
            stop: None,
            status: None,
            pid_file: None,
            health_url: None,
            timeout: ten_seconds(),
        }
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            workers: 2,
            tls_cert: None,
            allowed_hosts: Vec::new(),
            tls_key: None,
        }
    }
}

impl Default for StorageSettings {
    fn default() -> Self {
        Self {
            path: PathBuf::from("hostwatch.db"),
            retention: Duration::from_secs(30 * 86_400),
            // "2y" as the config reads it: a year is 365.25 days.
            rollup_retention: Duration::from_secs(2 * 31_557_600),
            audit_retention: Duration::from_secs(90 * 86_400),
        }
    }
}

impl Default for SamplerSettings {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(60),
            autostart: true,
            top_processes: 5,
        }
    }
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            public_read: true,
            tokens: Vec::new(),
        }
    }
}

/// Shortest sampling interval accepted, in config and API alike.
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);
/// Longest sampling interval accepted.
pub const MAX_INTERVAL: Duration = Duration::from_secs(86_400);

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("bad config file {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("bad setting from the environment ({vars}): {message}")]
    Env { vars: String, message: String },
}

/// Environment variables that belong to the CLI, not to the settings.
const NOT_SETTINGS: [&str; 3] = ["HOSTWATCH_CONFIG", "HOSTWATCH_TOKEN", "HOSTWATCH_URL"];

impl Settings {
    /// Reads the file (when given, or `hostwatch.toml` when it exists) and
    /// applies `HOSTWATCH_*` overrides from `env`.
    pub fn load(
        file: Option<&std::path::Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let default_file = std::path::Path::new("hostwatch.toml");
        let (text, path) = match file {
            Some(p) => (read(p)?, p.to_path_buf()),
            None if default_file.exists() => (read(default_file)?, default_file.to_path_buf()),
            None => (String::new(), PathBuf::from("(defaults)")),
        };
        Self::parse(&text, &path, env)
    }

    pub fn parse(
        text: &str,
        path: &std::path::Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        // Every message goes through `redact::scrub`: a TOML error quotes
        // its line, and a URL there may hold a secret.
        let file_error = |e: toml::de::Error| ConfigError::File {
            path: path.to_path_buf(),
            message: redact::scrub(e.to_string().trim_end()),
        };
        // Parsing the text itself first is what gives errors a line number.
        let settings: Settings = toml::from_str(text).map_err(file_error)?;
        settings.check(text).map_err(|message| ConfigError::File {
            path: path.to_path_buf(),
            message: redact::scrub(&message),
        })?;
        let overrides: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("HOSTWATCH_") && !NOT_SETTINGS.contains(&k.as_str()))
            .collect();
        if overrides.is_empty() {
            return Ok(settings);
        }
        let mut table: toml::Table = toml::from_str(text).map_err(file_error)?;
        for (key, value) in &overrides {
            apply_override(&mut table, key, value)?;
        }
        let vars = overrides
            .iter()
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let env_error = |message: String| ConfigError::Env {
            vars: vars.clone(),
            message: redact::scrub(&message),
        };
        // Read back through text, so the spans the checks use are kept.
        let merged = toml::to_string(&table).map_err(|e| env_error(e.to_string()))?;
        let settings: Settings = toml::from_str(&merged)
            .map_err(|e: toml::de::Error| env_error(e.to_string().trim_end().to_owned()))?;
        settings.check(&merged).map_err(env_error)?;
        Ok(settings)
    }
}

fn read(p: &std::path::Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
        path: p.to_path_buf(),
        source,
    })
}

/// `HOSTWATCH_SAMPLER__INTERVAL=5s` sets `sampler.interval`. The value is read
/// as a TOML value when it is one (`4`, `false`, `["*"]`), else as a string.
fn apply_override(table: &mut toml::Table, var: &str, raw: &str) -> Result<(), ConfigError> {
    let err = |message: String| ConfigError::Env {
        vars: var.to_owned(),
        message,
    };
    let path: Vec<String> = var["HOSTWATCH_".len()..]
        .split("__")
        .map(str::to_ascii_lowercase)
        .collect();
    if path.iter().any(String::is_empty) || path.len() > 2 {
        return Err(err(
            "name it HOSTWATCH_<SECTION>__<KEY>, e.g. HOSTWATCH_SERVER__LISTEN".into(),
        ));
    }
    let value = format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()));
    let (leaf, sections) = path.split_last().ok_or_else(|| err("empty name".into()))?;
    let mut cur = table;
    for s in sections {
        let entry = cur
            .entry(s.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cur = entry
            .as_table_mut()
            .ok_or_else(|| err(format!("[{s}] is not a section")))?;
    }
    cur.insert(leaf.clone(), value);
    Ok(())
}

#[cfg(test)]
mod tests;
