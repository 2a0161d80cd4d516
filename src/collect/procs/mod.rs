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

use read::{Context, CpuSample, Row};
use serde::Serialize;
use sockets::Sockets;
use std::{
    collections::HashMap,
    ops::ControlFlow,
    sync::{
        LazyLock,
        atomic::{AtomicUsize, Ordering::Relaxed},
    },
    time::Instant,
};
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
pub struct ProcessReader {
    /// Opened at the first reading; `None` until then, and while `/proc`
    /// cannot be opened (nothing is listed then).
    dir: Option<ProcDir>,
    last_cpu: HashMap<u32, CpuSample>,
    users: UserNames,
    /// [`HELD_CMDLINES_MAX`]; smaller in tests.
    held_cmdlines_max: usize,
}

impl Default for ProcessReader {
    fn default() -> Self {
        Self {
            dir: None,
            last_cpu: HashMap::new(),
            users: UserNames::default(),
            held_cmdlines_max: HELD_CMDLINES_MAX,
        }
    }
}

/// How old a CPU baseline gets before a new reading replaces it.
const BASELINE_AGE: std::time::Duration = std::time::Duration::from_secs(1);

/// How many processes a listing's second phase reads at once.
const BATCH: usize = 64;

/// Below this much work (processes × weight) one thread reads faster than two.
const PARALLEL_FROM: usize = 256;

/// The most bytes of command lines a listing's first phase holds for its
/// whole table (about what one answer carries); past it they are read
/// again for the page, a batch at a time. Anyone can start thousands of
/// processes with 4 KiB command lines.
const HELD_CMDLINES_MAX: usize = 4 << 20;

/// Cheap fields that need a file besides `stat`: read for every process
/// only when the page is the whole table.
static PER_PAGE: LazyLock<FieldSet> = LazyLock::new(|| FieldSet::of(&["cmdline", "memory_info"]));

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

    fn context<'a>(&'a mut self, sockets: &'a Option<Sockets>) -> Option<Context<'a>> {
        self.users.refresh();
        self.dir();
        Some(Context {
            dir: self.dir.as_ref()?,
            boot_secs: procfs::boot_time_secs().unwrap_or(0),
            uptime: procfs::Current::current()
                .ok()
                .map(|u: procfs::Uptime| u.uptime),
            mem_total: procfs::Current::current().map_or(0, |m: procfs::Meminfo| m.mem_total),
            now: Instant::now(),
            users: &self.users,
            sockets: sockets.as_ref(),
            last_cpu: &self.last_cpu,
        })
    }

    /// Reads every process with `fields` and keeps those `keep` says to
    /// (which may also drop what is not to be held); `connections` opens
    /// the socket tables.
    fn read_all(
        &mut self,
        pids: &[u32],
        fields: FieldSet,
        keep: impl Fn(&mut Row) -> bool + Sync,
    ) -> Vec<Row> {
        let sockets = fields.has("connections").then(Sockets::read);
        let Some(ctx) = self.context(&sockets) else {
            return Vec::new();
        };
        let read_chunk = |chunk: &[u32]| -> (Vec<Row>, Vec<(u32, CpuSample)>) {
            let mut rows = Vec::with_capacity(chunk.len());
            let mut samples = Vec::with_capacity(chunk.len());
            for &pid in chunk {
                if let Ok((mut row, sample)) = read::read(pid, fields, &ctx) {
                    samples.push((pid, sample));
                    if keep(&mut row) {
                        rows.push(row);
                    }
                }
            }
            (rows, samples)
        };
        let parts = spread(pids, weight(fields), read_chunk);
        let mut rows = Vec::with_capacity(pids.len());
        for (part, samples) in parts {
            rows.extend(part);
            for (pid, sample) in samples {
                // Keep a baseline until it is a second old, so clients that
                // poll fast still see CPU use over a span that means something.
                let keep = self.last_cpu.get(&pid).is_some_and(|&(start, _, at)| {
                    start == sample.0 && sample.2.duration_since(at) < BASELINE_AGE
                });
                if !keep {
                    self.last_cpu.insert(pid, sample);
                }
            }
        }
        rows
    }

    /// Adds `fields` to rows read before (see [`read::fill`]), and the
    /// command line to those without one when `cmdline` is true.
    fn fill_all(&mut self, rows: &mut [Row], fields: FieldSet, cmdline: bool) {
        let lacks = |r: &Row| cmdline && r.info.cmdline.is_none();
        if fields.is_empty() && !rows.iter().any(lacks) {
            return;
        }
        let sockets = fields.has("connections").then(Sockets::read);
        let Some(ctx) = self.context(&sockets) else {
            return;
        };
        spread_mut(rows, weight(fields), |chunk| {
            for row in chunk {
                let f = if lacks(row) {
                    fields.with("cmdline")
                } else {
                    fields
                };
                read::fill(row, f, &ctx);
            }
        });
    }

    /// A listing: the processes of the page `q` asks for, in order, each
    /// handed to `each` as soon as it is ready, until `each` says stop.
    /// Answers how many matched before paging.
    ///
    /// Phase one reads what filtering and sorting need for every process;
    /// when the page is the whole table (the usual listing) it reads every
    /// cheap field asked for as well, so each process is read once. Phase
    /// two adds the rest for the page only, a batch at a time, so what a
    /// listing holds beyond its table is a batch. Command lines held by
    /// phase one are bounded by [`HELD_CMDLINES_MAX`]; past it they are
    /// read in phase two.
    pub fn list_each(
        &mut self,
        q: &Query,
        mut each: impl FnMut(ProcessInfo) -> ControlFlow<()>,
    ) -> usize {
        let all = self.pids();
        let whole = q.offset == 0 && q.limit.is_none_or(|l| l >= all.len());
        let asked_cmdline = q.fields.has("cmdline");
        let hold = whole && asked_cmdline;
        let cheap = if whole {
            FieldSet::cheap()
        } else {
            FieldSet::cheap().without(*PER_PAGE)
        };
        let mut first = q.fields.intersect(cheap).with("name").with("username");
        if q.name.is_some() {
            first = first.with("cmdline");
        }
        let held = AtomicUsize::new(self.held_cmdlines_max);
        let mut rows = self.read_all(&all, first, |row| {
            if !matches(&row.info, q) {
                return false;
            }
            let size = row.info.cmdline.as_ref().map_or(0, |c| held_size(c));
            let take = |left: usize| left.checked_sub(size);
            if !hold || held.fetch_update(Relaxed, Relaxed, take).is_err() {
                row.info.cmdline = None;
                row.info.cmdline_truncated = None;
            }
            true
        });
        // Forget processes that are gone, so the map stays the size of the table.
        let live: std::collections::HashSet<u32> = all.iter().copied().collect();
        self.last_cpu.retain(|pid, _| live.contains(pid));
        sort(&mut rows, q.sort, q.descending);
        let total = rows.len();
        let end = q
            .offset
            .saturating_add(q.limit.unwrap_or(usize::MAX))
            .min(total);
        let mut page = rows.split_off(q.offset.min(total));
        page.truncate(end - q.offset.min(end));
        drop(rows);
        // Phase two: what phase one did not read, for the page only.
        let rest = q
            .view
            .readable(q.fields)
            .without(first)
            .without_field("cmdline");
        for batch in page.chunks_mut(BATCH) {
            self.fill_all(batch, rest, asked_cmdline);
            for row in batch.iter_mut() {
                let mut p = std::mem::take(&mut row.info);
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
            .read_all(&[pid], view.readable(FieldSet::all()), |_| true)
            .pop()
            .map(|r| r.info)?;
        p.fields = Some(FieldSet::all());
        Some(p)
    }

    /// Users running processes, most processes first.
    pub fn users(&mut self) -> Vec<UserSummary> {
        let pids = self.pids();
        let rows = self.read_all(&pids, FieldSet::of(&["pid", "username"]), |_| true);
        let mut by_uid: HashMap<u32, UserSummary> = HashMap::new();
        for Row { info: p, uid, .. } in rows {
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

/// What a command line held costs in memory, not just its text: each
/// argument is a `String` and an allocation of at least 32 bytes, so 4 KiB
/// of one-byte arguments weigh about 110 KiB.
fn held_size(args: &[String]) -> usize {
    let each = std::mem::size_of::<String>();
    std::mem::size_of::<Vec<String>>() + args.iter().map(|a| each + a.len().max(32)).sum::<usize>()
}

/// How much a process costs to read with `fields`: the expensive fields
/// cost about ten times the cheap ones.
fn weight(fields: FieldSet) -> usize {
    if fields.within(FieldSet::cheap()) {
        1
    } else {
        10
    }
}

/// How many threads to read `n` processes of `weight` on: reading /proc
/// is many small system calls, so a large table is spread over the cores,
/// on scoped threads that end with the call. All of them: the threads take
/// the proc lane's lowered priority (a thread's nice value is inherited),
/// so the HTTP workers and the sampler still go first, and on two cores a
/// large listing takes half the time.
fn threads_for(n: usize, weight: usize) -> usize {
    // Asked once: the answer reads cgroup files.
    static CORES: LazyLock<usize> =
        LazyLock::new(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if n * weight >= PARALLEL_FROM {
        CORES.min(n)
    } else {
        1
    }
}

/// `work` over `items`, in order, split over [`threads_for`] threads (the
/// calling thread takes the last part).
fn spread<T: Sync, R: Send>(items: &[T], weight: usize, work: impl Fn(&[T]) -> R + Sync) -> Vec<R> {
    let threads = threads_for(items.len(), weight);
    if threads <= 1 {
        return vec![work(items)];
    }
    let size = items.len().div_ceil(threads);
    let chunks: Vec<&[T]> = items.chunks(size).collect();
    let Some((last, rest)) = chunks.split_last() else {
        return Vec::new();
    };
    std::thread::scope(|scope| {
        let work = &work;
        let started: Vec<_> = rest
            .iter()
            .map(|&c| {
                // No thread to be had (a task limit): do it here.
                std::thread::Builder::new()
                    .spawn_scoped(scope, move || work(c))
                    .map_err(|_| work(c))
            })
            .collect();
        let here = work(last);
        let mut parts: Vec<R> = started
            .into_iter()
            .filter_map(|h| match h {
                Ok(h) => h.join().ok(),
                Err(done) => Some(done),
            })
            .collect();
        parts.push(here);
        parts
    })
}

/// [`spread`] for work that changes the items in place.
fn spread_mut<T: Send>(items: &mut [T], weight: usize, work: impl Fn(&mut [T]) + Sync) {
    let threads = threads_for(items.len(), weight);
    if threads <= 1 {
        return work(items);
    }
    let size = items.len().div_ceil(threads);
    // Each part behind a lock, so a part whose thread could not be made is
    // still there to do here.
    let parts: Vec<std::sync::Mutex<&mut [T]>> = items.chunks_mut(size).map(Into::into).collect();
    let run = |part: &std::sync::Mutex<&mut [T]>| {
        if let Ok(mut p) = part.lock() {
            work(&mut p)
        }
    };
    let Some((last, rest)) = parts.split_last() else {
        return;
    };
    std::thread::scope(|scope| {
        let run = &run;
        for part in rest {
            if std::thread::Builder::new()
                .spawn_scoped(scope, move || run(part))
                .is_err()
            {
                run(part);
            }
        }
        run(last);
    });
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

fn sort(rows: &mut [Row], key: SortKey, descending: bool) {
    rows.sort_by(|Row { info: a, .. }, Row { info: b, .. }| {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Child, Command};

    /// `n` shells with `tag` on their command lines, once it shows there
    /// (a vfork'd child lets its parent go before its arguments are set).
    fn sleepers(tag: &str, n: usize) -> Vec<Child> {
        let children: Vec<Child> = (0..n)
            .map(|_| {
                Command::new("sh")
                    .args(["-c", "read _", tag])
                    .stdin(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for c in &children {
            let want = format!("{tag}\0");
            let mut shown = false;
            for _ in 0..500 {
                let line = std::fs::read(format!("/proc/{}/cmdline", c.id())).unwrap_or_default();
                shown = line.ends_with(want.as_bytes());
                if shown {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            assert!(shown, "pid {} never showed its arguments", c.id());
        }
        children
    }

    fn query(name: Option<&str>, limit: Option<usize>, offset: usize) -> Query {
        Query {
            user: None,
            name: name.map(str::to_owned),
            sort: SortKey::Pid,
            descending: false,
            limit,
            offset,
            fields: FieldSet::default_set(),
            view: View::Full,
        }
    }

    fn end(children: Vec<Child>) {
        for mut c in children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    #[test]
    fn command_lines_past_what_phase_one_holds_are_read_for_the_page() {
        let tag = format!("hw-held-{}", std::process::id());
        let children = sleepers(&tag, 6);
        let args: Vec<String> = ["sh", "-c", "read _", &tag].map(str::to_owned).into();
        // Room for two of these command lines in phase one: the rest are read again.
        let mut reader = ProcessReader {
            held_cmdlines_max: 2 * held_size(&args),
            ..Default::default()
        };
        for q in [query(Some(&tag), None, 0), query(None, None, 0)] {
            let list = reader.list(&q);
            let ours: Vec<_> = list
                .processes
                .iter()
                .filter(|p| children.iter().any(|c| c.id() == p.pid))
                .collect();
            assert_eq!(ours.len(), children.len(), "{q:?}");
            for p in ours {
                assert_eq!(p.cmdline.as_deref(), Some(&args[..]));
                assert_eq!(p.cmdline_truncated, Some(false));
                let m = p.memory_info.as_ref().unwrap();
                assert!(m.rss > 0 && m.text > 0, "{m:?}");
            }
        }
        end(children);
    }

    #[test]
    fn held_command_lines_are_charged_what_they_weigh_not_their_text() {
        // 4 KiB of one-byte arguments: 2,048 allocations, not 2 KiB of text.
        let many: Vec<String> = vec!["a".into(); 2048];
        assert!(held_size(&many) >= 2048 * 48, "{}", held_size(&many));
        let one = vec!["x".repeat(4000)];
        assert!(
            (4000..4200).contains(&held_size(&one)),
            "{}",
            held_size(&one)
        );
    }

    #[test]
    fn a_page_gets_the_fields_phase_one_left_out() {
        let tag = format!("hw-page-{}", std::process::id());
        let children = sleepers(&tag, 4);
        let mut reader = ProcessReader::default();
        let all = reader.list(&query(Some(&tag), None, 0));
        assert_eq!(all.total, children.len());
        let page = reader.list(&query(Some(&tag), Some(2), 1));
        assert_eq!(page.total, children.len());
        let pids: Vec<u32> = page.processes.iter().map(|p| p.pid).collect();
        let want: Vec<u32> = all.processes[1..3].iter().map(|p| p.pid).collect();
        assert_eq!(pids, want);
        for p in &page.processes {
            assert_eq!(
                p.cmdline.as_ref().map(|c| c[3].as_str()),
                Some(tag.as_str())
            );
            assert!(p.memory_info.as_ref().is_some_and(|m| m.text > 0), "{p:?}");
            assert_eq!(p.fields, Some(FieldSet::default_set()));
        }
        end(children);
    }
}
