//! `statfs` that cannot stall its caller. A dead NFS server or a stuck FUSE
//! daemon blocks the call in the kernel, uninterruptibly, for as long as it
//! likes; node_exporter's filesystem collector is known for hanging on
//! exactly that. Here the calls run on a worker thread and the caller waits
//! only until its deadline: a mount that has not answered by then is
//! `Unanswered`, its call is left to finish on its own thread, and it is not
//! asked again until that call returns. At most `MAX_STUCK` threads are
//! ever left blocked; past that, mounts are not asked at all.
//!
//! Plain threads, not tokio's blocking pool: a runtime waits for its
//! blocking threads at shutdown, and a stuck one would hold the agent's exit.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicUsize, Ordering},
        mpsc,
    },
    time::{Duration, Instant},
};

/// Threads that may be blocked in the kernel at once.
const MAX_STUCK: usize = 8;

/// What `statfs` said, in bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    pub total_bytes: u64,
    /// Free to anyone (root included).
    pub free_bytes: u64,
    /// Free to an unprivileged writer.
    pub available_bytes: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Usage(Usage),
    /// The call returned an error.
    Failed(String),
    /// No answer by the deadline, or an earlier call is still stuck.
    Unanswered(String),
}

/// Asks every path's filesystem for its size, all answers (or their
/// absence) back within about `deadline` for each mount that stops
/// answering in this call; mounts already known to be stuck cost nothing.
pub fn statfs_all(paths: &[&Path], deadline: Duration) -> Vec<Answer> {
    prober().ask(paths, deadline)
}

fn prober() -> &'static Prober {
    static PROBER: std::sync::OnceLock<Prober> = std::sync::OnceLock::new();
    PROBER.get_or_init(Prober::default)
}

#[derive(Default)]
struct Prober {
    /// Paths whose call has not returned, and since when: not asked again.
    stuck: Arc<Mutex<HashMap<PathBuf, Instant>>>,
    /// Threads left blocked in a call. Counted apart from `stuck`: two
    /// callers at once may each leave one on the same path.
    blocked: Arc<AtomicUsize>,
    /// A worker waiting for its next batch.
    idle: Mutex<Option<Worker>>,
}

struct Worker {
    batches: mpsc::Sender<Batch>,
}

struct Batch {
    paths: Vec<(usize, PathBuf)>,
    reply: mpsc::Sender<(usize, Answer)>,
    progress: Arc<Mutex<Progress>>,
}

/// Where a worker is in its batch, shared with the caller that waits on it.
#[derive(Default)]
struct Progress {
    /// The index of the path whose call is running.
    current: Option<usize>,
    /// The caller stopped waiting: the worker ends after its current call.
    abandoned: bool,
}

fn guard<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Prober {
    fn ask(&self, paths: &[&Path], deadline: Duration) -> Vec<Answer> {
        let mut answers: Vec<Option<Answer>> = vec![None; paths.len()];
        {
            let stuck = guard(&self.stuck);
            for (i, p) in paths.iter().enumerate() {
                if let Some(since) = stuck.get(*p) {
                    answers[i] = Some(Answer::Unanswered(format!(
                        "statfs has not answered for {} s",
                        since.elapsed().as_secs()
                    )));
                }
            }
        }
        let mut worker = guard(&self.idle).take();
        loop {
            let todo: Vec<(usize, PathBuf)> = (0..paths.len())
                .filter(|&i| answers[i].is_none())
                .map(|i| (i, paths[i].to_path_buf()))
                .collect();
            if todo.is_empty() {
                break;
            }
            let blocked = self.blocked.load(Ordering::Relaxed);
            let w = match worker.take() {
                Some(w) => w,
                None if blocked < MAX_STUCK => match self.spawn() {
                    Ok(w) => w,
                    Err(e) => {
                        fill(&mut answers, || {
                            Answer::Failed(format!("no thread for statfs: {e}"))
                        });
                        break;
                    }
                },
                None => {
                    fill(&mut answers, || {
                        Answer::Unanswered(format!(
                            "not asked: {blocked} statfs calls on other mounts are stuck"
                        ))
                    });
                    break;
                }
            };
            let (reply, replies) = mpsc::channel();
            let progress = Arc::new(Mutex::new(Progress::default()));
            let batch = Batch {
                paths: todo,
                reply,
                progress: Arc::clone(&progress),
            };
            if w.batches.send(batch).is_err() {
                // The worker is gone (it cannot be, short of a panic): a new one.
                continue;
            }
            let until = Instant::now() + deadline;
            let mut pending = answers.iter().filter(|a| a.is_none()).count();
            while pending > 0 {
                match replies.recv_timeout(until.saturating_duration_since(Instant::now())) {
                    Ok((i, a)) => {
                        answers[i] = Some(a);
                        pending -= 1;
                    }
                    Err(_) => break,
                }
            }
            if pending == 0 {
                worker = Some(w);
                break;
            }
            // Past the deadline: the path being asked now is stuck; its
            // thread is left to it, and the rest go to a new worker.
            let mut p = guard(&progress);
            p.abandoned = true;
            while let Ok((i, a)) = replies.try_recv() {
                answers[i] = Some(a);
            }
            if let Some(i) = p.current {
                self.blocked.fetch_add(1, Ordering::Relaxed);
                guard(&self.stuck).insert(paths[i].to_path_buf(), Instant::now());
                tracing::warn!(mount = %paths[i].display(), ?deadline, "a filesystem does not answer statfs; not asking it again until it does");
                answers[i] = Some(Answer::Unanswered(format!(
                    "statfs did not answer within {} ms",
                    deadline.as_millis()
                )));
            }
        }
        if let Some(w) = worker {
            let mut idle = guard(&self.idle);
            if idle.is_none() {
                *idle = Some(w);
            }
        }
        answers
            .into_iter()
            .map(|a| a.unwrap_or_else(|| Answer::Unanswered("not asked".into())))
            .collect()
    }

    fn spawn(&self) -> std::io::Result<Worker> {
        let (batches, rx) = mpsc::channel::<Batch>();
        let stuck = Arc::clone(&self.stuck);
        let blocked = Arc::clone(&self.blocked);
        std::thread::Builder::new()
            .name("statfs".into())
            .stack_size(64 * 1024)
            .spawn(move || work(&rx, &stuck, &blocked))?;
        Ok(Worker { batches })
    }
}

fn fill(answers: &mut [Option<Answer>], a: impl Fn() -> Answer) {
    for slot in answers.iter_mut().filter(|a| a.is_none()) {
        *slot = Some(a());
    }
}

fn work(
    batches: &mpsc::Receiver<Batch>,
    stuck: &Mutex<HashMap<PathBuf, Instant>>,
    blocked: &AtomicUsize,
) {
    for batch in batches {
        for (i, path) in batch.paths {
            {
                let mut p = guard(&batch.progress);
                if p.abandoned {
                    return;
                }
                p.current = Some(i);
            }
            let answer = ask(&path);
            let mut p = guard(&batch.progress);
            if p.abandoned {
                // The caller gave up on this call and marked it stuck.
                blocked.fetch_sub(1, Ordering::Relaxed);
                if guard(stuck).remove(&path).is_some() {
                    tracing::info!(mount = %path.display(), "a filesystem answers statfs again");
                }
                return;
            }
            p.current = None;
            if batch.reply.send((i, answer)).is_err() {
                return;
            }
        }
    }
}

fn ask(path: &Path) -> Answer {
    match rustix::fs::statvfs(path) {
        Ok(s) => {
            let bytes = |blocks: u64| blocks.saturating_mul(s.f_frsize);
            Answer::Usage(Usage {
                total_bytes: bytes(s.f_blocks),
                free_bytes: bytes(s.f_bfree),
                available_bytes: bytes(s.f_bavail),
            })
        }
        Err(e) => Answer::Failed(format!("statfs: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_come_back_in_the_order_asked() {
        let root = Path::new("/");
        let missing = Path::new("/no/such/mount/here");
        let a = statfs_all(&[root, missing, root], Duration::from_secs(5));
        assert!(
            matches!(a[0], Answer::Usage(u) if u.total_bytes > 0),
            "{a:?}"
        );
        assert!(
            matches!(&a[1], Answer::Failed(e) if e.contains("statfs")),
            "{a:?}"
        );
        assert_eq!(a[0], a[2]);
    }
}
