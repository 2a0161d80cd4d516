//! The fields a process listing can carry, and which a request asks for.

use crate::domain::ParseError;

/// Every process field of SPEC §4, in the order the API writes them.
pub const NAMES: [&str; 29] = [
    "pid",
    "ppid",
    "name",
    "cmdline",
    "exe",
    "cwd",
    "username",
    "uids",
    "gids",
    "status",
    "terminal",
    "create_time",
    "cpu_percent",
    "cpu_times",
    "memory_percent",
    "memory_info",
    "nice",
    "priority",
    "num_threads",
    "threads",
    "num_fds",
    "open_files",
    "connections",
    "memory_maps",
    "num_ctx_switches",
    "io_counters",
    "io_delay_seconds",
    "pgrp",
    "tty_nr",
];

/// Aliases that are not fields of their own: `user` is `username`,
/// `rss_bytes` is in `memory_info`, `started` is `create_time`.
const ALIASES: [(&str, &str); 3] = [
    ("user", "username"),
    ("rss_bytes", "memory_info"),
    ("started", "create_time"),
];

/// What a listing shows when `fields` is not given: cheap to read for
/// every process (one `stat`, one `cmdline`, the owner of `/proc/<pid>`).
pub const DEFAULT: [&str; 13] = [
    "pid",
    "ppid",
    "name",
    "cmdline",
    "username",
    "status",
    "create_time",
    "cpu_percent",
    "memory_percent",
    "memory_info",
    "nice",
    "num_threads",
    "terminal",
];

/// A set of fields, by their index in `NAMES`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSet(u64);

impl FieldSet {
    pub fn all() -> Self {
        let mut s = Self(0);
        for n in NAMES {
            s.insert(n);
        }
        s
    }

    pub fn default_set() -> Self {
        let mut s = Self(0);
        for n in DEFAULT {
            s.insert(n);
        }
        s
    }

    fn index(name: &str) -> Option<usize> {
        let name = ALIASES
            .iter()
            .find(|(a, _)| *a == name)
            .map_or(name, |(_, real)| *real);
        NAMES.iter().position(|n| *n == name)
    }

    fn insert(&mut self, name: &str) {
        if let Some(i) = Self::index(name) {
            self.0 |= 1 << i;
        }
    }

    pub fn has(&self, name: &str) -> bool {
        Self::index(name).is_some_and(|i| self.0 & (1 << i) != 0)
    }

    /// `all`, or a comma list of field names; `pid` is always included.
    pub fn parse(s: Option<&str>) -> Result<Self, ParseError> {
        let Some(s) = s.map(str::trim) else {
            return Ok(Self::default_set());
        };
        if s == "all" {
            return Ok(Self::all());
        }
        let mut set = Self(0);
        set.insert("pid");
        for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if Self::index(name).is_none() {
                return Err(ParseError(format!(
                    "fields: unknown field '{name}'; use `all` or names from: {}",
                    NAMES.join(", ")
                )));
            }
            set.insert(name);
        }
        Ok(set)
    }

    /// This set with one more field.
    pub fn with(mut self, name: &str) -> Self {
        self.insert(name);
        self
    }

    /// This set with one field less.
    pub fn without_field(mut self, name: &str) -> Self {
        if let Some(i) = Self::index(name) {
            self.0 &= !(1 << i);
        }
        self
    }

    /// Exactly these fields (names not in [`NAMES`] are ignored).
    pub fn of(names: &[&str]) -> Self {
        let mut s = Self(0);
        for n in names {
            s.insert(n);
        }
        s
    }

    /// Whether the set has no field at all.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether the two sets share a field.
    pub fn intersects(self, other: FieldSet) -> bool {
        self.0 & other.0 != 0
    }

    /// The fields in both sets.
    pub fn intersect(self, other: FieldSet) -> Self {
        Self(self.0 & other.0)
    }

    /// Fields that cost at most one file besides `stat` per process.
    pub fn cheap() -> Self {
        let mut s = Self::default_set();
        for n in [
            "cpu_times",
            "priority",
            "pgrp",
            "tty_nr",
            "io_delay_seconds",
        ] {
            s.insert(n);
        }
        s
    }

    /// Fields that /proc shows only to the process's owner (or root): those
    /// behind ptrace access checks. An unprivileged view leaves them null.
    pub fn private() -> Self {
        let mut s = Self(0);
        for n in [
            "exe",
            "cwd",
            "open_files",
            "connections",
            "memory_maps",
            "io_counters",
            "num_fds",
        ] {
            s.insert(n);
        }
        s
    }

    /// This set without the fields of `other`.
    pub fn without(self, other: FieldSet) -> Self {
        Self(self.0 & !other.0)
    }

    /// Whether every field of this set is in `other`.
    pub fn within(&self, other: FieldSet) -> bool {
        self.0 & !other.0 == 0
    }

    /// The requested fields, in API order.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        // By bit, not by name: this runs for every process of a listing.
        NAMES
            .iter()
            .enumerate()
            .filter(|(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, n)| *n)
    }

    /// Whether anything beyond `/proc/<pid>/stat` and `cmdline` is needed.
    pub fn needs_status(&self) -> bool {
        ["uids", "gids", "num_ctx_switches"]
            .iter()
            .any(|f| self.has(f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_fields_means_the_default_set_and_all_means_every_field() {
        let d = FieldSet::parse(None).unwrap();
        assert!(d.has("cmdline") && !d.has("connections"));
        let a = FieldSet::parse(Some("all")).unwrap();
        assert_eq!(a.names().count(), 29);
    }

    #[test]
    fn a_comma_list_picks_fields_and_always_keeps_the_pid() {
        let s = FieldSet::parse(Some("name, nice")).unwrap();
        assert_eq!(s.names().collect::<Vec<_>>(), vec!["pid", "name", "nice"]);
    }

    #[test]
    fn an_unknown_field_is_rejected_with_the_known_ones() {
        let e = FieldSet::parse(Some("name,colour")).unwrap_err();
        assert!(e.0.contains("colour") && e.0.contains("cmdline"), "{e}");
    }
}
