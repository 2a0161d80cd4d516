//! Starting commands for `POST /api/v1/processes`: directly (never through
//! a shell), only when `control.spawn_allow` allows the executable, with a
//! clean environment (the agent's, which may hold secrets, never reaches
//! them), waited for (so reaped) on the agent's main runtime, with the job
//! and the tail of its output in SQLite.

use super::ControlError;
use crate::{
    store::{JobEnd, Store},
    tail::{OutputTail, SharedTail},
};
use std::{
    collections::{BTreeMap, HashMap},
    ffi::OsStr,
    os::fd::AsRawFd,
    os::unix::{fs::PermissionsExt, process::ExitStatusExt},
    path::{Path, PathBuf},
    process::Stdio,
    sync::{Arc, Mutex},
};
use tokio::sync::oneshot;

/// What to start.
#[derive(Debug, Clone)]
pub struct SpawnRequest {
    pub command: String,
    pub args: Vec<String>,
    pub cwd: Option<String>,
    /// Variables set beside the clean environment (the watchdog passes the
    /// alert in `HOSTWATCH_ALERT_*`); never the agent's own.
    pub env: BTreeMap<String, String>,
}

/// `PATH` of spawned commands, and where a bare command name is looked up:
/// the system's directories, not whatever PATH the agent was started with.
pub const SPAWN_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// `LANG` of spawned commands: UTF-8, and the same on every host.
pub const SPAWN_LANG: &str = "C.UTF-8";

pub struct Spawner {
    allow: Vec<String>,
    /// The whole environment of a spawned command.
    env: BTreeMap<String, String>,
    store: Arc<Store>,
    /// The runtime jobs are waited on, whichever HTTP worker started them.
    runtime: tokio::runtime::Handle,
    /// Output so far of the jobs still running.
    live: Mutex<HashMap<i64, (SharedTail, SharedTail)>>,
}

/// A program judged by the file its name pointed to at one instant: the
/// allow list judges that file, and that file is what runs, whatever the
/// path the caller sent points to meanwhile (a symlink swapped between the
/// check and the exec would otherwise run a binary that is not allowed, as
/// root).
pub struct Program {
    /// As the caller named it (or as `PATH` found it).
    pub named: PathBuf,
    stat: rustix::fs::Stat,
    /// Where the opened file lies, no link left in it. This is what runs
    /// (for a file allowed under another path, that entry's own). Not `/proc/self/fd/N` or fexecve: the child's
    /// name (`comm`) would become the descriptor's number on kernels before
    /// 6.14, and a script's interpreter could not reopen it.
    canonical: PathBuf,
}

impl Program {
    fn open(named: PathBuf) -> Option<Self> {
        use rustix::fs::{FileType, Mode, OFlags};
        let file = rustix::fs::open(&named, OFlags::PATH | OFlags::CLOEXEC, Mode::empty()).ok()?;
        let stat = rustix::fs::fstat(&file).ok()?;
        let executable = FileType::from_raw_mode(stat.st_mode) == FileType::RegularFile
            && stat.st_mode & 0o111 != 0;
        if !executable {
            return None;
        }
        let canonical = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).ok()?;
        Some(Self {
            named,
            stat,
            canonical,
        })
    }
}

fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A command as `execvp` would find it: a path, or a name on `path`.
fn find_program(cmd: &str, path: &OsStr) -> Option<PathBuf> {
    if cmd.contains('/') {
        let p = PathBuf::from(cmd);
        return is_executable(&p).then_some(p);
    }
    std::env::split_paths(path)
        .map(|d| d.join(cmd))
        .find(|p| is_executable(p))
}

impl Spawner {
    /// `env` (`control.spawn_env`) is added to `PATH` and `LANG`, and may
    /// replace them.
    pub fn new(
        allow: Vec<String>,
        env: BTreeMap<String, String>,
        store: Arc<Store>,
        runtime: tokio::runtime::Handle,
    ) -> Self {
        let mut all = BTreeMap::from([
            ("PATH".to_owned(), SPAWN_PATH.to_owned()),
            ("LANG".to_owned(), SPAWN_LANG.to_owned()),
        ]);
        all.extend(env);
        Self {
            allow,
            env: all,
            store,
            runtime,
            live: Mutex::new(HashMap::new()),
        }
    }

    /// The program to run, after the allow list and existence checks.
    pub fn resolve(&self, req: &SpawnRequest) -> Result<Program, ControlError> {
        if self.allow.is_empty() {
            return Err(ControlError::Forbidden(
                "spawning is off: list the executables it may start in control.spawn_allow".into(),
            ));
        }
        if req.command.trim().is_empty() {
            return Err(ControlError::BadRequest(
                "command: must name a program".into(),
            ));
        }
        let path = self.env.get("PATH").map_or("", String::as_str);
        let missing = || {
            ControlError::BadRequest(format!(
                "command: no executable program '{}' was found",
                req.command
            ))
        };
        let named = find_program(&req.command, OsStr::new(path)).ok_or_else(missing)?;
        let mut program = Program::open(named).ok_or_else(missing)?;
        let refused = || {
            ControlError::Forbidden(format!(
                "'{}' is not in control.spawn_allow",
                program.named.display()
            ))
        };
        // Another process's root or file descriptors: a view of files in
        // another mount namespace, which would not run as named here.
        if program.named.starts_with("/proc") {
            return Err(refused());
        }
        let by_name = self
            .allow
            .iter()
            .any(|a| a == "*" || *a == req.command || Path::new(a) == program.named);
        if !by_name {
            // The same file by another path (/bin vs /usr/bin), but not
            // another name for it: a multi-call binary (busybox) or an
            // alternative (vi, ex) acts by the name it is called with. What
            // runs is then the allowed entry's file, found afresh from the
            // entry and checked to be the same one: the caller's path may
            // lead to it through a link or mount the caller controls.
            let entry = self
                .allow
                .iter()
                .map(Path::new)
                .filter(|a| a.is_absolute() && a.file_name() == program.named.file_name())
                .filter_map(|a| Program::open(a.to_path_buf()))
                .find(|e| {
                    e.stat.st_dev == program.stat.st_dev && e.stat.st_ino == program.stat.st_ino
                })
                .ok_or_else(refused)?;
            program.canonical = entry.canonical;
        }
        if let Some(cwd) = &req.cwd
            && !Path::new(cwd).is_dir()
        {
            return Err(ControlError::BadRequest(format!(
                "cwd: '{cwd}' is not a directory"
            )));
        }
        Ok(program)
    }

    /// Starts the command and records the job; answers once it runs.
    pub async fn spawn(
        self: &Arc<Self>,
        actor: &str,
        req: SpawnRequest,
    ) -> Result<(u32, i64), ControlError> {
        let program = self.resolve(&req)?;
        let (tx, rx) = oneshot::channel();
        let me = Arc::clone(self);
        let actor = actor.to_owned();
        self.runtime
            .spawn(async move { me.run(actor, program, req, tx).await });
        rx.await.map_err(|_| {
            ControlError::Failed("the agent stopped while starting the command".into())
        })?
    }

    async fn run(
        self: Arc<Self>,
        actor: String,
        program: Program,
        req: SpawnRequest,
        started: oneshot::Sender<Result<(u32, i64), ControlError>>,
    ) {
        let mut cmd = tokio::process::Command::new(&program.canonical);
        // As the caller named it: a multi-call binary acts by that name.
        cmd.arg0(&program.named);
        cmd.env_clear()
            .envs(&self.env)
            .envs(&req.env)
            .args(&req.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(cwd) = &req.cwd {
            cmd.current_dir(cwd);
        }
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                let err = match e.kind() {
                    std::io::ErrorKind::PermissionDenied => {
                        ControlError::Forbidden(format!("{}: {e}", program.named.display()))
                    }
                    _ => ControlError::BadRequest(format!(
                        "{} could not be started: {e}",
                        program.named.display()
                    )),
                };
                let _ = started.send(Err(err));
                return;
            }
        };
        let pid = child.id().unwrap_or_default();
        let out = OutputTail::collect(child.stdout.take());
        let err = OutputTail::collect(child.stderr.take());
        let store = Arc::clone(&self.store);
        let command = program.named.display().to_string();
        let (args, cwd) = (req.args.clone(), req.cwd.clone());
        let id = tokio::task::spawn_blocking(move || {
            store.insert_job(&actor, &command, &args, cwd.as_deref(), pid)
        })
        .await;
        let id = match id
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()))
        {
            Ok(id) => id,
            Err(why) => {
                let _ = started.send(Err(ControlError::Failed(format!(
                    "the job could not be recorded: {why}"
                ))));
                let _ = child.wait().await;
                return;
            }
        };
        self.live_jobs().insert(id, (out.shared(), err.shared()));
        let _ = started.send(Ok((pid, id)));
        let status = child.wait().await;
        let (stdout, stderr) = tokio::join!(out.finish(), err.finish());
        let end = JobEnd {
            state: match &status {
                Ok(s) if s.signal().is_some() => "signaled",
                Ok(_) => "exited",
                Err(_) => "lost",
            },
            exit_code: status.as_ref().ok().and_then(|s| s.code()),
            signal: status.as_ref().ok().and_then(|s| s.signal()),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        };
        let store = Arc::clone(&self.store);
        match tokio::task::spawn_blocking(move || store.finish_job(id, &end)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(job = id, error = %e, "could not record the end of a job")
            }
            Err(e) => tracing::error!(job = id, error = %e, "could not record the end of a job"),
        }
        self.live_jobs().remove(&id);
    }

    fn live_jobs(&self) -> std::sync::MutexGuard<'_, HashMap<i64, (SharedTail, SharedTail)>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Output so far of a job that still runs.
    pub fn live_output(&self, id: i64) -> Option<(String, String)> {
        self.live_jobs().get(&id).map(|(o, e)| (o.text(), e.text()))
    }
}
