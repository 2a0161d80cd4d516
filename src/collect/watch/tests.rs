use super::procs::Entry;
use super::*;
use std::{
    os::unix::fs::symlink,
    path::Path,
    process::{Child, Command, Stdio},
    thread::sleep,
    time::{Duration, Instant},
};

/// A child killed and reaped when the test ends, however it ends.
struct Kid(Child);

impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `sh` under another name (its `comm`), running `script` (and then `$0`,
/// `$1`… from `args`). Its stdin is a pipe the test holds, so `read x`
/// idles without a child of its own.
fn sh_named(program: &Path, script: &str, args: &[&str]) -> Kid {
    let kid = Command::new(program)
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Kid(kid)
}

fn link(dir: &Path, name: &str) -> std::path::PathBuf {
    let link = dir.join(name);
    symlink("/bin/sh", &link).unwrap();
    link
}

fn unique(prefix: &str) -> String {
    format!("{prefix}{:06x}", getrandom::u32().unwrap() & 0xff_ffff)
}

fn pids(samples: &[ProcSample]) -> Vec<u32> {
    samples.iter().map(|s| s.pid).collect()
}

fn stat_of(line: &str) -> crate::collect::procs::stat::Stat {
    crate::collect::procs::stat::parse(line.as_bytes()).unwrap()
}

#[test]
fn a_busy_process_shows_its_cpu_and_a_sleeping_one_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let (busy_name, idle_name) = (unique("hw-busy-"), unique("hw-idle-"));
    let busy = sh_named(&link(dir.path(), &busy_name), "while :; do :; done", &[]);
    let idle = sh_named(&link(dir.path(), &idle_name), "read x", &[]);
    sleep(Duration::from_millis(300));
    let mut w = ProcWatch::new(vec![
        Matcher::Name(busy_name.clone()),
        Matcher::Name(idle_name.clone()),
    ])
    .unwrap();
    // The machine may be shared: the busy loop's own ticks over the same
    // span say what it really got.
    let ticks =
        |pid: u32| stat_of(&std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap()).ticks();
    let (t0, i0) = (ticks(busy.0.id()), Instant::now());
    let first = w.refresh();
    // First sight: the lifetime average, busy since it started.
    assert!(first[0][0].cpu_percent.unwrap() > 20.0, "{first:?}");
    sleep(Duration::from_millis(300));
    let got = w.refresh();
    let (t1, i1) = (ticks(busy.0.id()), Instant::now());
    let truth =
        (t1 - t0) as f64 / procfs::ticks_per_second() as f64 / (i1 - i0).as_secs_f64() * 100.0;
    for g in [&first, &got] {
        assert_eq!(pids(&g[0]), [busy.0.id()]);
        assert_eq!(pids(&g[1]), [idle.0.id()]);
        assert_eq!(g[0][0].name, busy_name);
        assert_eq!(
            g[0][0].cmdline,
            format!(
                "{} -c while :; do :; done",
                dir.path().join(&busy_name).display()
            )
        );
        assert!(g[0][0].rss_bytes > 0 && g[0][0].memory_percent > 0.0);
    }
    // Clock ticks are 10 ms: its start may have cost one over its 300 ms.
    assert!(first[1][0].cpu_percent.unwrap() < 10.0, "{first:?}");
    assert!(got[1][0].cpu_percent.unwrap() < 5.0, "{got:?}");
    let busy_now = got[0][0].cpu_percent.unwrap();
    assert!(
        busy_now > 20.0 && (busy_now - truth).abs() < 15.0,
        "{busy_now} vs {truth}"
    );
}

#[test]
fn a_command_line_regex_finds_a_process_by_its_argument() {
    let token = unique("hw-token-");
    let kid = sh_named(Path::new("/bin/sh"), "read x", &[&token]);
    let re = regex_lite::Regex::new(&format!("read x {}$", regex_lite::escape(&token))).unwrap();
    let mut w = ProcWatch::new(vec![Matcher::Cmdline(re)]).unwrap();
    let mut found = Vec::new();
    for _ in 0..3 {
        found = w.refresh().remove(0);
        if !found.is_empty() {
            break;
        }
        sleep(Duration::from_millis(50));
    }
    assert_eq!(pids(&found), [kid.0.id()]);
    assert_eq!(found[0].cmdline, format!("/bin/sh -c read x {token}"));
}

#[test]
fn a_process_that_exits_or_is_a_zombie_is_gone_at_the_next_refresh() {
    let dir = tempfile::tempdir().unwrap();
    let name = unique("hw-gone-");
    let mut kid = sh_named(&link(dir.path(), &name), "read x", &[]);
    let mut w = ProcWatch::new(vec![Matcher::Name(name.clone())]).unwrap();
    sleep(Duration::from_millis(100));
    assert_eq!(pids(&w.refresh()[0]), [kid.0.id()]);
    // Killed, not reaped: a zombie.
    kid.0.kill().unwrap();
    sleep(Duration::from_millis(100));
    assert!(w.refresh()[0].is_empty());
    kid.0.wait().unwrap();
    assert!(w.refresh()[0].is_empty());
}

#[test]
fn a_name_longer_than_the_kernel_keeps_is_confirmed_by_argv0() {
    let dir = tempfile::tempdir().unwrap();
    let name = unique("hw-long-process-"); // 22 bytes; comm keeps 15
    let kid = sh_named(&link(dir.path(), &name), "read x", &[]);
    sleep(Duration::from_millis(100));
    let other = format!("{}zzzzzz", &name[..16]);
    let mut w = ProcWatch::new(vec![Matcher::Name(name.clone()), Matcher::Name(other)]).unwrap();
    let got = w.refresh();
    assert_eq!(pids(&got[0]), [kid.0.id()]);
    assert_eq!(got[0][0].name, name);
    assert!(got[1].is_empty());
}

#[test]
fn the_agent_itself_is_not_left_out() {
    let own = std::fs::read_to_string("/proc/self/stat").unwrap();
    let comm = String::from_utf8_lossy(stat_of(&own).comm.as_bytes()).into_owned();
    let mut w = ProcWatch::new(vec![Matcher::Name(comm)]).unwrap();
    let got = w.refresh();
    assert!(pids(&got[0]).contains(&std::process::id()));
    let me = got[0].iter().find(|s| s.pid == std::process::id()).unwrap();
    assert_eq!(me.start_ticks, stat_of(&own).start_ticks);
}

const STAT: &str = "77 (worker) S 1 77 77 0 -1 0 0 0 0 0 10 5 0 0 20 0 1 0 5000 1000 300";

#[test]
fn a_pid_is_read_when_new_on_the_next_refresh_then_once_a_second() {
    let t0 = Instant::now();
    let ms = |n| t0 + Duration::from_millis(n);
    let mut e = Entry::default();
    assert!(e.due(t0));
    assert!(e.observe(&stat_of(STAT), t0, false));
    assert!(
        e.due(ms(100)),
        "a new pid is read again on the next refresh"
    );
    assert!(e.observe(&stat_of(STAT), ms(100), false));
    assert!(!e.due(ms(200)));
    assert!(!e.due(ms(1099)));
    assert!(e.due(ms(1100)));
}

#[test]
fn a_pid_that_does_not_match_is_worked_out_again_only_when_new_second_or_renamed() {
    let t0 = Instant::now();
    let ms = |n| t0 + Duration::from_millis(n);
    let mut e = Entry::default();
    // New, then its second sighting: matches (and command line) worked out.
    assert!(e.observe(&stat_of(STAT), t0, true));
    assert!(e.observe(&stat_of(STAT), ms(100), true));
    // Its name is still looked at once a second, but its command line is
    // not read again while the name stays.
    for second in 1..5 {
        let at = ms(100 + 1000 * second);
        assert!(e.due(at));
        assert!(!e.observe(&stat_of(STAT), at, true), "{second}");
        assert!(!e.due(at + Duration::from_millis(999)));
    }
    // Renamed (exec): worked out again.
    let renamed = stat_of(&STAT.replace("(worker)", "(other)"));
    assert!(e.observe(&renamed, ms(5100), true));
    assert!(!e.observe(&renamed, ms(6100), true));
    // Another start time: a new process, and its second sighting.
    let reused = stat_of(&STAT.replace(" 5000 ", " 6000 "));
    assert!(e.observe(&reused, ms(7100), true));
    assert!(e.observe(&reused, ms(8100), true));
    assert!(!e.observe(&reused, ms(9100), true));
}

#[test]
fn a_process_that_execs_into_a_matching_command_line_later_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let later = link(dir.path(), &unique("hw-later-"));
    let token = unique("hw-token-");
    // Seen twice as `sh` first; its command line only matches after exec.
    let script = format!("sleep 1.2; exec {} -c 'read x' {token}", later.display());
    let kid = sh_named(Path::new("/bin/sh"), &script, &[]);
    let re = format!(
        "^{} -c read x {}$",
        regex_lite::escape(&later.display().to_string()),
        regex_lite::escape(&token)
    );
    let mut w =
        ProcWatch::new(vec![Matcher::Cmdline(regex_lite::Regex::new(&re).unwrap())]).unwrap();
    let started = Instant::now();
    let mut found = Vec::new();
    while found.is_empty() && started.elapsed() < Duration::from_secs(5) {
        found = w.refresh().remove(0);
        if started.elapsed() < Duration::from_secs(1) {
            assert!(found.is_empty(), "{found:?}");
        }
        sleep(Duration::from_millis(100));
    }
    assert_eq!(pids(&found), [kid.0.id()]);
}

#[test]
fn at_most_the_cap_of_stat_files_stay_open_and_every_match_is_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let name = unique("hw-many-");
    let program = link(dir.path(), &name);
    let mut kids: Vec<Kid> = (0..5).map(|_| sh_named(&program, "read x", &[])).collect();
    sleep(Duration::from_millis(100));
    let mut all: Vec<u32> = kids.iter().map(|k| k.0.id()).collect();
    all.sort_unstable();
    let mut w = ProcWatch::with_max_kept(vec![Matcher::Name(name)], 2).unwrap();
    // The agent's own descriptors that are the children's `stat`, the
    // one that exits below included.
    let spawned = all.clone();
    let open_stats = || {
        let wanted: Vec<String> = spawned.iter().map(|p| format!("/proc/{p}/stat")).collect();
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
            .filter(|target| wanted.iter().any(|w| target == Path::new(w)))
            .count()
    };
    for _ in 0..3 {
        let got = w.refresh();
        assert_eq!(pids(&got[0]), all);
        assert!(got[0].iter().all(|s| s.rss_bytes > 0));
        assert_eq!(w.kept(), 2);
        assert_eq!(open_stats(), 2);
        sleep(Duration::from_millis(50));
    }
    // One that was kept exits: its slot goes to another on the next refresh.
    let first = kids.iter().position(|k| k.0.id() == all[0]).unwrap();
    drop(kids.remove(first));
    all.remove(0);
    assert_eq!(pids(&w.refresh()[0]), all);
    assert_eq!((w.kept(), open_stats()), (1, 1));
    assert_eq!(pids(&w.refresh()[0]), all);
    assert_eq!((w.kept(), open_stats()), (2, 2));
    drop(w);
    assert_eq!(open_stats(), 0);
}

#[test]
fn another_start_time_under_the_same_pid_is_a_new_process() {
    let now = Instant::now();
    let mut e = Entry::default();
    e.observe(&stat_of(STAT), now, false);
    e.matches.push(0);
    // Same process, same name: nothing to work out again, unless a
    // command line regex is due to see it again.
    let same = stat_of(STAT);
    assert!(!e.observe(&same, now, false));
    assert!(!e.observe(&same, now, true));
    assert!(!e.observe(&same, now + Duration::from_millis(500), true));
    assert!(e.observe(&same, now + Duration::from_secs(1), true));
    // Renamed (exec): worked out again.
    let renamed = stat_of(&STAT.replace("(worker)", "(other)"));
    assert!(e.observe(&renamed, now, false));
    // Another start time: all is forgotten, matches included.
    e.cpu = Some((15, now));
    let reused = stat_of(&STAT.replace(" 5000 ", " 6000 "));
    assert!(e.observe(&reused, now, false));
    assert!(e.matches.is_empty() && e.cpu.is_none());
}

#[test]
fn host_readings_are_in_range() {
    let mut h = HostWatch::new().unwrap();
    let first = h.read(HostWant::ALL).unwrap();
    assert_eq!(first.cpu_percent, None);
    sleep(Duration::from_millis(100));
    let now = h.read(HostWant::ALL).unwrap();
    let cpu = now.cpu_percent.unwrap();
    assert!((0.0..=100.0).contains(&cpu), "{now:?}");
    let memory = now.memory_percent.unwrap();
    assert!(memory > 0.0 && memory < 100.0, "{now:?}");
    assert!(
        (0.0..=100.0).contains(&now.swap_percent.unwrap()),
        "{now:?}"
    );
    assert!(now.load1.unwrap() >= 0.0);
    // What is not asked for is not read.
    let load_only = HostWant {
        load: true,
        ..HostWant::default()
    };
    let only = h.read(load_only).unwrap();
    assert!(only.load1.is_some(), "{only:?}");
    assert_eq!(
        (only.cpu_percent, only.memory_percent, only.swap_percent),
        (None, None, None)
    );
    let root = disk_percent("/").unwrap();
    assert!((0.0..=100.0).contains(&root));
    assert_eq!(disk_percent("/no/such/mount"), None);
}
