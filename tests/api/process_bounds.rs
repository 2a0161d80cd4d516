//! What a process listing costs is bounded whatever the processes hold:
//! the case of the security review, reproduced — a local user starts 200
//! processes, each with 1.8 MB of `\x01` bytes as arguments (JSON writes
//! each as six bytes), and an anonymous caller lists processes. Before the
//! bound, that one request answered 2.1 GB and took the agent to 4.1 GB.

use crate::helpers::spawn_app;
use std::{
    io::Write,
    process::{Child, Command, Stdio},
};

/// 15 arguments of 120,000 bytes: 1.8 MB, under Linux's 128 KiB per
/// argument and 2 MB (a quarter of the default stack) in all.
fn huge_args() -> Vec<String> {
    vec!["\x01".repeat(120_000); 15]
}

/// A shell that waits on its stdin, with `args` on its command line: it
/// has no child of its own, and ends when the test drops its stdin.
fn holder(tag: &str, args: &[String]) -> Child {
    Command::new("sh")
        .args(["-c", "read _", tag])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

/// Peak resident memory of this process (the agent runs in it), in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Starts the peak over from the memory in use now (Linux ≥ 4.0).
fn reset_peak_rss() {
    std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/self/clear_refs")
        .and_then(|mut f| f.write_all(b"5"))
        .unwrap();
}

#[actix_web::test]
async fn huge_command_lines_cost_an_anonymous_listing_a_bounded_answer_and_memory() {
    let app = spawn_app().await;
    let args = huge_args();
    let tag = format!("hw-huge-{}", std::process::id());
    let mut children: Vec<Child> = (0..200).map(|_| holder(&tag, &args)).collect();
    let pids: Vec<u32> = children.iter().map(Child::id).collect();
    // Every one of them is running its shell with the whole argument list.
    for &pid in &pids {
        let mut ok = false;
        for _ in 0..200 {
            let len = std::fs::read(format!("/proc/{pid}/cmdline")).map_or(0, |c| c.len());
            if len > 1_800_000 {
                ok = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(ok, "pid {pid} never showed its arguments");
    }

    reset_peak_rss();
    let before = peak_rss_kib();
    // 200 command lines of 4 KiB, six bytes each in JSON, are more than one
    // answer holds: the listing stops short, says so, and pages on.
    let (mut listed, mut offset, mut pages) = (Vec::new(), 0, 0);
    loop {
        let res = app.get(&format!("/api/v1/processes?offset={offset}")).await;
        assert_eq!(res.status, 200, "{}", res.text());
        assert!(
            res.body.len() <= (4 << 20) + (64 << 10),
            "an answer of {} bytes",
            res.body.len()
        );
        let v = res.json();
        let page = v["processes"].as_array().unwrap().clone();
        assert!(!page.is_empty(), "page {pages} is empty: {v}");
        offset += page.len();
        listed.extend(page);
        pages += 1;
        if v["truncated"] == false {
            break;
        }
        assert!(pages < 10, "no end to the pages");
    }
    let grew = peak_rss_kib().saturating_sub(before);
    assert!(pages >= 2, "five megabytes of command lines fit one answer");
    // Without the bound the agent held the whole table of gigabytes.
    assert!(grew < 64 << 10, "peak RSS grew by {grew} KiB listing them");

    for &pid in &pids {
        let p = listed
            .iter()
            .find(|p| p["pid"] == pid)
            .unwrap_or_else(|| panic!("pid {pid} is not listed"));
        assert_eq!(p["cmdline_truncated"], true, "{pid}");
        let args = p["cmdline"].as_array().unwrap();
        // sh, -c, the script, the tag: then the huge arguments, cut.
        assert_eq!(args[3], tag.as_str());
        // Each argument and the NUL after it; the last, cut, has none.
        let bytes: usize = args
            .iter()
            .map(|a| a.as_str().unwrap().len() + 1)
            .sum::<usize>()
            - 1;
        assert!(bytes <= 4096, "pid {pid}: {bytes} bytes of command line");
    }

    // The same bound for one process, and for a name filter.
    let one = app.get(&format!("/api/v1/processes/{}", pids[0])).await;
    assert_eq!(one.status, 200, "{}", one.text());
    assert_eq!(one.json()["cmdline_truncated"], true);
    let named = app.get(&format!("/api/v1/processes?name={tag}")).await;
    assert_eq!(named.status, 200, "{}", named.text());
    assert_eq!(named.json()["total"], pids.len());

    for c in &mut children {
        drop(c.stdin.take());
    }
    for mut c in children {
        let _ = c.kill();
        let _ = c.wait();
    }
    app.stop().await;
}

#[actix_web::test]
async fn a_short_command_line_is_whole_and_not_truncated() {
    let app = spawn_app().await;
    let tag = format!("hw-short-{}", std::process::id());
    let mut child = holder(&tag, &["one".into(), "two".into()]);
    let pid = child.id();
    let mut found = None;
    for _ in 0..100 {
        let res = app.get(&format!("/api/v1/processes/{pid}")).await;
        if res.status == 200 && res.json()["cmdline"][3] == tag.as_str() {
            found = Some(res.json());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let p = found.expect("the process shows its command line");
    assert_eq!(
        p["cmdline"],
        serde_json::json!(["sh", "-c", "read _", tag, "one", "two"])
    );
    assert_eq!(p["cmdline_truncated"], false);
    drop(child.stdin.take());
    let _ = child.kill();
    let _ = child.wait();
    app.stop().await;
}
