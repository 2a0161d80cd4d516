//! Values a process request carries, parsed at the edge: a pid, a signal,
//! a nice value, and which fields a listing asks for.

use super::time::ParseError;
use std::str::FromStr;

/// A process id that can name a process (not 0, not negative).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pid(u32);

impl Pid {
    pub fn new(n: u32) -> Result<Self, ParseError> {
        if n == 0 || n > i32::MAX as u32 {
            return Err(ParseError(format!(
                "pid {n} is out of range; use 1 to {}",
                i32::MAX
            )));
        }
        Ok(Self(n))
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl FromStr for Pid {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        let n = s
            .parse::<u32>()
            .map_err(|_| ParseError(format!("'{s}' is not a process id (a positive number)")))?;
        Self::new(n)
    }
}

/// The signals the API sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, utoipa::ToSchema)]
#[schema(rename_all = "UPPERCASE")]
pub enum Signal {
    Term,
    Kill,
    Int,
    Hup,
    Quit,
    Usr1,
    Usr2,
    Stop,
    Cont,
}

impl Signal {
    pub const ALL: [Signal; 9] = [
        Signal::Term,
        Signal::Kill,
        Signal::Int,
        Signal::Hup,
        Signal::Quit,
        Signal::Usr1,
        Signal::Usr2,
        Signal::Stop,
        Signal::Cont,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Signal::Term => "TERM",
            Signal::Kill => "KILL",
            Signal::Int => "INT",
            Signal::Hup => "HUP",
            Signal::Quit => "QUIT",
            Signal::Usr1 => "USR1",
            Signal::Usr2 => "USR2",
            Signal::Stop => "STOP",
            Signal::Cont => "CONT",
        }
    }
}

impl FromStr for Signal {
    type Err = ParseError;

    /// `TERM`, `term` and `SIGTERM` all name SIGTERM.
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let upper = s.trim().to_ascii_uppercase();
        let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
        Signal::ALL
            .into_iter()
            .find(|sig| sig.name() == bare)
            .ok_or_else(|| {
                let names: Vec<&str> = Signal::ALL.iter().map(|s| s.name()).collect();
                ParseError(format!("signal: '{s}' is not one of {}", names.join(", ")))
            })
    }
}

/// A nice value, -20 (most favoured) to 19.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nice(i32);

impl Nice {
    pub fn new(n: i64) -> Result<Self, ParseError> {
        if !(-20..=19).contains(&n) {
            return Err(ParseError(format!(
                "nice: {n} is out of range; use -20 to 19"
            )));
        }
        Ok(Self(n as i32))
    }

    pub fn get(self) -> i32 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nice_above_19_or_below_minus_20_is_rejected() {
        assert!(Nice::new(20).is_err());
        assert!(Nice::new(-21).is_err());
        assert_eq!(Nice::new(-20).map(Nice::get), Ok(-20));
        assert_eq!(Nice::new(19).map(Nice::get), Ok(19));
    }

    #[test]
    fn signals_are_read_with_or_without_sig_in_any_case() {
        assert_eq!("TERM".parse(), Ok(Signal::Term));
        assert_eq!("sigkill".parse(), Ok(Signal::Kill));
        assert_eq!("Usr1".parse(), Ok(Signal::Usr1));
        let e = "SEGV".parse::<Signal>().unwrap_err();
        assert!(e.0.contains("TERM, KILL"), "{e}");
    }

    #[test]
    fn a_pid_is_a_positive_number() {
        assert!("0".parse::<Pid>().is_err());
        assert!("-3".parse::<Pid>().is_err());
        assert!("abc".parse::<Pid>().is_err());
        assert_eq!("42".parse::<Pid>().map(Pid::get), Ok(42));
    }
}
