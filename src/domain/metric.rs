//! The metrics that history and series queries can ask for.

use super::time::ParseError;

/// A numeric figure of a check that history can follow over time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Metric {
    Cpu,
    Memory,
    Swap,
    Load1,
    /// Used share of the filesystem mounted at this path.
    Disk(String),
}

impl Metric {
    pub const NAMES: [&'static str; 5] = ["cpu", "memory", "swap", "load1", "disk"];

    /// `mount` only matters for `disk`, where it defaults to `/`.
    pub fn parse(name: &str, mount: Option<&str>) -> Result<Self, ParseError> {
        match name {
            "cpu" => Ok(Self::Cpu),
            "memory" => Ok(Self::Memory),
            "swap" => Ok(Self::Swap),
            "load1" => Ok(Self::Load1),
            "disk" => Ok(Self::Disk(mount.unwrap_or("/").to_owned())),
            other => Err(ParseError(format!(
                "unknown metric '{other}'; use one of {}",
                Self::NAMES.join(", ")
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_defaults_to_the_root_mount() {
        assert_eq!(Metric::parse("disk", None), Ok(Metric::Disk("/".into())));
    }

    #[test]
    fn an_unknown_metric_lists_the_known_ones() {
        let e = Metric::parse("gpu", None).unwrap_err();
        assert!(e.0.contains("cpu, memory"), "{e}");
    }
}
