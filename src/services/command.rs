//! Running a manager's command: argv only (never a shell built from user
//! input), bounded in time, with its exit status and the tail of its stderr.

use crate::tail::OutputTail;
use std::{process::Stdio, time::Duration};
use tokio::process::Command;

/// How much of stderr a failure report keeps.
const STDERR_TAIL: usize = 2048;

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The command ran to its end.
    Exited {
        code: Option<i32>,
        stdout: String,
        stderr_tail: String,
    },
    /// It did not end within the timeout and was killed.
    TimedOut,
    /// It could not be started (missing program, permissions).
    NotStarted(String),
}

impl Outcome {
    pub fn code(&self) -> Option<i32> {
        match self {
            Outcome::Exited { code, .. } => *code,
            _ => None,
        }
    }

    pub fn success(&self) -> bool {
        self.code() == Some(0)
    }

    /// A sentence for logs and problem details.
    pub fn describe(&self) -> String {
        match self {
            Outcome::Exited {
                code: Some(c),
                stderr_tail,
                ..
            } if stderr_tail.is_empty() => format!("exit status {c}"),
            Outcome::Exited {
                code: Some(c),
                stderr_tail,
                ..
            } => format!("exit status {c}; stderr: {stderr_tail}"),
            Outcome::Exited {
                code: None,
                stderr_tail,
                ..
            } => format!("killed by a signal; stderr: {stderr_tail}"),
            Outcome::TimedOut => "did not finish in time and was killed".into(),
            Outcome::NotStarted(why) => format!("could not be started: {why}"),
        }
    }

    /// `describe` without the stderr tail: for callers who may not see what
    /// a command run as root wrote.
    pub fn describe_without_output(&self) -> String {
        match self {
            Outcome::Exited { code: Some(c), .. } => format!("exit status {c}"),
            Outcome::Exited { code: None, .. } => "killed by a signal".into(),
            other => other.describe(),
        }
    }
}

/// Runs `argv` with no stdin and a clean environment; kills it (and reaps
/// it) when `timeout` passes.
pub async fn run(argv: &[String], timeout: Duration) -> Outcome {
    let Some((program, args)) = argv.split_first() else {
        return Outcome::NotStarted("empty command".into());
    };
    let mut cmd = Command::new(program);
    // Like `service(8)`: a clean environment but for PATH, LANG and TERM, so
    // the agent's own variables never reach a service.
    cmd.env_clear();
    for var in ["PATH", "LANG", "TERM"] {
        if let Some(v) = std::env::var_os(var) {
            cmd.env(var, v);
        }
    }
    let mut child = match cmd
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return Outcome::NotStarted(format!("{program}: {e}")),
    };
    let out = OutputTail::collect(child.stdout.take());
    let err = OutputTail::collect(child.stderr.take());
    let status = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => status,
        Ok(Err(e)) => return Outcome::NotStarted(e.to_string()),
        // Dropping `child` (kill_on_drop) kills it; tokio reaps it.
        Err(_) => return Outcome::TimedOut,
    };
    // A daemon the command started may keep the pipes open: read what is
    // there, then stop waiting for an end of file that may never come.
    let (o, e) = tokio::join!(out.finish(), err.finish());
    Outcome::Exited {
        code: status.code(),
        stdout: String::from_utf8_lossy(&o).trim().to_owned(),
        stderr_tail: tail(&e),
    }
}

fn tail(bytes: &[u8]) -> String {
    let start = bytes.len().saturating_sub(STDERR_TAIL);
    String::from_utf8_lossy(&bytes[start..]).trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[tokio::test]
    async fn an_exit_code_and_stderr_are_reported() {
        let o = run(
            &argv(&["sh", "-c", "echo out; echo oops >&2; exit 3"]),
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(
            o,
            Outcome::Exited {
                code: Some(3),
                stdout: "out".into(),
                stderr_tail: "oops".into()
            }
        );
    }

    #[tokio::test]
    async fn a_hung_command_is_killed_at_the_timeout() {
        let started = std::time::Instant::now();
        let o = run(&argv(&["sleep", "30"]), Duration::from_millis(200)).await;
        assert_eq!(o, Outcome::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn a_daemon_holding_the_pipe_does_not_hold_the_command() {
        let started = std::time::Instant::now();
        let o = run(
            &argv(&["sh", "-c", "sleep 3 & echo started"]),
            Duration::from_secs(10),
        )
        .await;
        assert!(o.success(), "{o:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn a_missing_program_is_not_started() {
        let o = run(&argv(&["/nonexistent/prog"]), Duration::from_secs(1)).await;
        assert!(matches!(o, Outcome::NotStarted(_)), "{o:?}");
    }
}
