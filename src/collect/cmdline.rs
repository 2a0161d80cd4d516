//! A process's command line, read with the one bound every reader of it
//! uses. `/proc/<pid>/cmdline` is as long as the process made its arguments
//! (megabytes, for anyone who can start a process), so no reader takes more
//! than [`MAX`] bytes of it, and says when it stopped short.

use std::io::{self, Read};

/// Bytes of a command line read: enough for any real command line to be
/// shown whole, small enough that a table of them stays small.
pub const MAX: usize = 4 * 1024;

/// A command line as read: its arguments, and whether there was more.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cmdline {
    pub args: Vec<String>,
    /// The file held more than [`MAX`] bytes; the last argument may be cut.
    pub truncated: bool,
}

/// Reads at most [`MAX`] bytes of `file` into `buf` (cleared first): the
/// arguments separated by NUL, as the kernel gives them. True when the file
/// held more.
pub fn read_raw(file: impl Read, buf: &mut Vec<u8>) -> io::Result<bool> {
    buf.clear();
    // One byte past the bound tells a command line of exactly MAX bytes
    // from a longer one.
    file.take(MAX as u64 + 1).read_to_end(buf)?;
    let truncated = buf.len() > MAX;
    buf.truncate(MAX);
    Ok(truncated)
}

/// Reads a command line from its `cmdline` file.
pub fn read(file: impl Read) -> io::Result<Cmdline> {
    let mut buf = Vec::new();
    let truncated = read_raw(file, &mut buf)?;
    Ok(Cmdline::from_raw(&buf, truncated))
}

impl Cmdline {
    /// From at most [`MAX`] raw bytes, and whether the file held more.
    pub fn from_raw(raw: &[u8], truncated: bool) -> Self {
        Self {
            args: split(raw),
            truncated,
        }
    }
}

/// The arguments of raw `cmdline` bytes. Not UTF-8 is replaced, not refused:
/// arguments are bytes, and one odd byte must not hide the rest.
fn split(raw: &[u8]) -> Vec<String> {
    // Empty arguments are dropped, as procfs and ps do.
    raw.split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_command_line_is_read_whole() {
        let c = read(&b"sleep\x0060\x00"[..]).unwrap();
        assert_eq!(c.args, ["sleep", "60"]);
        assert!(!c.truncated);
    }

    #[test]
    fn exactly_max_bytes_is_not_truncated_and_one_more_is() {
        let exact = vec![b'a'; MAX];
        let c = read(&exact[..]).unwrap();
        assert_eq!((c.args[0].len(), c.truncated), (MAX, false));
        let over = vec![b'a'; MAX + 1];
        let c = read(&over[..]).unwrap();
        assert_eq!((c.args[0].len(), c.truncated), (MAX, true));
    }

    #[test]
    fn a_huge_command_line_costs_at_most_max_bytes() {
        // 64 MiB that is never allocated: the reader stops at the bound.
        let endless = io::repeat(1).take(64 << 20);
        let mut buf = Vec::new();
        assert!(read_raw(endless, &mut buf).unwrap());
        assert_eq!(buf.len(), MAX);
        assert!(buf.capacity() < 4 * MAX, "{}", buf.capacity());
    }

    #[test]
    fn bytes_that_are_not_utf8_are_replaced() {
        let c = read(&b"ls\x00\xff\x00"[..]).unwrap();
        assert_eq!(c.args, ["ls", "\u{fffd}"]);
    }
}
