//! Processes and the users running them, read from `/proc`. A listing reads
//! the cheap fields of every process to filter, sort and page, then the
//! expensive fields (connections, open files, maps, threads) only for the
//! page it answers.

pub mod cpu;
pub mod dir;
pub mod fields;
pub mod info;
mod read;
mod sockets;
pub mod stat;
mod top;
mod users;

pub use dir::ProcDir;
pub use fields::FieldSet;
pub use info::ProcessInfo;
pub use top::TopReader;
pub use users::UserNames;

use read::{Context, CpuSample};
use serde::Serialize;
use std::{collections::HashMap, ops::ControlFlow, time::Instant};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Cpu,
    Memory,
    Pid,
    Name,
    Started,
}

/// What a listing asks for, already parsed.
#[derive(Debug, Clone)]
pub struct Query {
    pub user: Option<String>,
    /// Substring of the name or the command line.
    pub name: Option<String>,
    pub sort: SortKey,
    pub descending: bool,
    pub limit: Option<usize>,
    pub offset: usize,
    pub fields: FieldSet,
    /// Whose view: the agent's (every field it can read) or an
    /// unprivileged local user's (`FieldSet::private` fields are null).
    pub view: View,
}

/// Who a reading is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum View {
    /// Everything the agent can read.
    Full,
    /// What an unprivileged local user can read of another user's process:
    /// the fields behind ptrace checks are never read, and shown as null.
    /// The default, so a caller that forgets to choose shows less, not more.
    #[default]
    Unprivileged,
}

impl View {
    /// The fields to read for `asked`.
    fn readable(self, asked: FieldSet) -> FieldSet {
        match self {
            View::Full => asked,
            View::Unprivileged => asked.without(FieldSet::private()),
        }
    }
}

/// A page of processes and how many matched before paging.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProcessList {
    pub total: usize,
    pub processes: Vec<ProcessInfo>,
    /// True when the answer stopped short of the page asked for because it
    /// reached its size bound; the rest follows from `offset` plus the
    /// number of `processes` answered.
    pub truncated: bool,
}

/// A user running processes.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserSummary {
    pub username: String,
    pub uid: u32,
    /// How many processes the user runs.
    pub running: usize,
}

/// Keeps what one reading needs from the previous: CPU ticks per process,
/// and the user names.
#[derive(Default)]
pub struct ProcessReader {
    /// Opened at the first reading; `None` until then, and while `/proc`
    /// cannot be opened (nothing is listed then).
    dir: Option<ProcDir>,
    last_cpu: HashMap<u32, CpuSample>,
    users: UserNames,
}

/// How old a CPU baseline gets before a new reading replaces it.
const BASELINE_AGE: std::time::Duration = std::time::Duration::from_secs(1);

/// How many processes a listing's second phase reads at once.
const BATCH: usize = 64;

/// Below this much work (processes × weight) one thread reads faster than two.
const PARALLEL_FROM: usize = 256;

impl ProcessReader {
    fn dir(&mut self) -> Option<&mut ProcDir> {
        if self.dir.is_none() {
            match ProcDir::open() {
                Ok(d) => self.dir = Some(d),
                Err(e) => tracing::warn!("{e}"),
            }
        }
        self.dir.as_mut()
    }

    fn pids(&mut self) -> Vec<u32> {
        let mut pids = Vec::new();
        if let Some(dir) = self.dir()
            && let Err(e) = dir.list(&mut pids)
        {
            tracing::warn!("{e}");
        }
        pids
    }

    /// Reads every process with `fields`; `connections` opens the socket tables.
    fn read_all(&mut self, pids: &[u32], fields: FieldSet) -> Vec<(ProcessInfo, Option<u32>)> {
        self.users.refresh();
        self.dir();
        let Some(dir) = self.dir.as_ref() else {
            return Vec::new();
        };
        let sockets = fields.has("connections").then(sockets::Sockets::read);
        let ctx = Context {
            dir,
            boot_secs: procfs::boot_time_secs().unwrap_or(0),
            uptime: procfs::Current::current()
                .ok()
                .map(|u: procfs::Uptime| u.uptime),
            mem_total: procfs::Current::current().map_or(0, |m: procfs::Meminfo| m.mem_total),
            now: Instant::now(),
            users: &self.users,
            sockets: sockets.as_ref(),
            last_cpu: &self.last_cpu,
        };
        let read_chunk = |chunk: &[u32]| -> Vec<_> {
            chunk
                .iter()
                .filter_map(|&pid| read::read(pid, fields, &ctx).ok().map(|r| (pid, r)))
                .collect()
        };
        // Reading /proc is many small system calls: spread a large table over
        // the cores, on scoped threads that end with the call. All of them:
        // the threads take the proc lane's lowered priority (a thread's nice
        // value is inherited), so the HTTP workers and the sampler still go
        // first, and on two cores a large listing takes half the time.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        // The expensive fields cost about ten times the cheap ones per process.
        let weight = if fields.within(FieldSet::cheap()) {
            1
        } else {
            10
        };
        let rows: Vec<_> = if pids.len() * weight >= PARALLEL_FROM && cores > 1 {
            let size = pids.len().div_ceil(cores);
            std::thread::scope(|scope| {
                let read_chunk = &read_chunk;
                let parts: Vec<_> = pids
                    .chunks(size)
                    .map(|c| {
                        // No thread to be had (a task limit): read it here.
                        std::thread::Builder::new()
                            .spawn_scoped(scope, move || read_chunk(c))
                            .map_err(|_| read_chunk(c))
                    })
                    .collect();
                parts
                    .into_iter()
                    .flat_map(|h| match h {
                        Ok(h) => h.join().unwrap_or_default(),
                        Err(rows) => rows,
                    })
                    .collect()
            })
        } else {
            read_chunk(pids)
        };
        let mut out = Vec::with_capacity(rows.len());
        for (pid, (info, sample, uid)) in rows {
            // Keep a baseline until it is a second old, so clients that poll
            // fast still see CPU use over a span that means something.
            let keep = self.last_cpu.get(&pid).is_some_and(|&(start, _, at)| {
                start == sample.0 && sample.2.duration_since(at) < BASELINE_AGE
            });
            if !keep {
                self.last_cpu.insert(pid, sample);
            }
            out.push((info, uid));
        }
        out
    }

    /// A listing: the processes of the page `q` asks for, in order, each
    /// handed to `each` as soon as it is read, until `each` says stop.
    /// Answers how many matched before paging. The page is read a batch
    /// at a time, so what a listing holds is a batch, not the table.
    pub fn list_each(
        &mut self,
        q: &Query,
        mut each: impl FnMut(ProcessInfo) -> ControlFlow<()>,
    ) -> usize {
        let all = self.pids();
        // Phase one: what filtering and sorting need, for every process.
        // Command lines only to match a name, and not kept past it.
        let cheap = q
            .fields
            .intersect(FieldSet::cheap())
            .with("name")
            .with("username")
            .without_field("cmdline");
        let first = if q.name.is_some() {
            cheap.with("cmdline")
        } else {
            cheap
        };
        let mut rows = self.read_all(&all, first);
        // Forget processes that are gone, so the map stays the size of the table.
        let live: std::collections::HashSet<u32> = all.iter().copied().collect();
        self.last_cpu.retain(|pid, _| live.contains(pid));
        rows.retain_mut(|(p, _)| {
            let keep = matches(p, q);
            p.cmdline = None;
            keep
        });
        sort(&mut rows, q.sort, q.descending);
        let total = rows.len();
        let page = rows
            .into_iter()
            .skip(q.offset)
            .take(q.limit.unwrap_or(usize::MAX))
            .map(|(p, _)| p);
        if q.fields.within(cheap) {
            for mut p in page {
                p.fields = Some(q.fields);
                if each(p).is_break() {
                    break;
                }
            }
            return total;
        }
        // Phase two: the fields asked for, for the page only.
        let page: Vec<ProcessInfo> = page.collect();
        let readable = q.view.readable(q.fields);
        for batch in page.chunks(BATCH) {
            let pids: Vec<u32> = batch.iter().map(|p| p.pid).collect();
            let mut read = self.read_all(&pids, readable).into_iter().peekable();
            for seen in batch {
                // A process that exited since phase one is left out.
                let Some((mut p, _)) = read.next_if(|(p, _)| p.pid == seen.pid) else {
                    continue;
                };
                // Keep phase one's CPU %: it is what the page was sorted by,
                // and a second reading moments later would measure almost
                // no time.
                p.cpu_percent = seen.cpu_percent;
                p.fields = Some(q.fields);
                if each(p).is_break() {
                    return total;
                }
            }
        }
        total
    }

    /// A listing, whole (see [`ProcessReader::list_each`]).
    pub fn list(&mut self, q: &Query) -> ProcessList {
        let mut processes = Vec::new();
        let total = self.list_each(q, |p| {
            processes.push(p);
            ControlFlow::Continue(())
        });
        ProcessList {
            total,
            processes,
            truncated: false,
        }
    }

    /// Every field of one process, as `view` may see it; `None` when there
    /// is no such process.
    pub fn one(&mut self, pid: u32, view: View) -> Option<ProcessInfo> {
        let mut p = self
            .read_all(&[pid], view.readable(FieldSet::all()))
            .pop()
            .map(|(p, _)| p)?;
        p.fields = Some(FieldSet::all());
        Some(p)
    }

    /// Users running processes, most processes first.
    pub fn users(&mut self) -> Vec<UserSummary> {
        let pids = self.pids();
        let rows = self.read_all(
            &pids,
            FieldSet::parse(Some("username")).unwrap_or_else(|_| FieldSet::default_set()),
        );
        let mut by_uid: HashMap<u32, UserSummary> = HashMap::new();
        for (p, uid) in rows {
            let Some(uid) = uid else { continue };
            by_uid
                .entry(uid)
                .or_insert_with(|| UserSummary {
                    username: p.username.clone().unwrap_or_else(|| uid.to_string()),
                    uid,
                    running: 0,
                })
                .running += 1;
        }
        let mut v: Vec<UserSummary> = by_uid.into_values().collect();
        v.sort_by(|a, b| {
            b.running
                .cmp(&a.running)
                .then_with(|| a.username.cmp(&b.username))
        });
        v
    }

    /// Whether `name` is a user of this host (in the user database).
    pub fn user_exists(&mut self, name: &str) -> bool {
        self.users.refresh();
        self.users.exists(name)
    }
}

fn matches(p: &ProcessInfo, q: &Query) -> bool {
    if let Some(user) = &q.user
        && p.username.as_deref() != Some(user.as_str())
    {
        return false;
    }
    if let Some(needle) = &q.name {
        let in_name = p
            .name
            .as_deref()
            .is_some_and(|n| n.contains(needle.as_str()));
        let in_cmd = p
            .cmdline
            .as_ref()
            .is_some_and(|c| c.join(" ").contains(needle.as_str()));
        return in_name || in_cmd;
    }
    true
}

fn sort(rows: &mut [(ProcessInfo, Option<u32>)], key: SortKey, descending: bool) {
    rows.sort_by(|(a, _), (b, _)| {
        let o = match key {
            SortKey::Cpu => a
                .cpu_percent
                .unwrap_or(0.0)
                .total_cmp(&b.cpu_percent.unwrap_or(0.0)),
            SortKey::Memory => a
                .memory_percent
                .unwrap_or(0.0)
                .total_cmp(&b.memory_percent.unwrap_or(0.0)),
            SortKey::Pid => a.pid.cmp(&b.pid),
            SortKey::Name => a.name.cmp(&b.name),
            SortKey::Started => a.create_time.cmp(&b.create_time),
        };
        let o = o.then(a.pid.cmp(&b.pid));
        if descending { o.reverse() } else { o }
    });
}
