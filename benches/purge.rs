//! Retention beside the sampler (issue 10 item 4): a database holds 60
//! days of checks a minute apart; the purge of the older 30 days (the
//! retention task's own pass) runs on one thread while another plays the
//! sampler, storing a check every 100 ms and timing each store, wait for
//! the writer included. The target is no store over 50 ms.
//! Run: cargo bench --bench purge

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::Utc;
use hostwatch::generate::{Generator, Shape};
use hostwatch::store::{
    Store,
    retention::{Purged, Retention},
};
use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};
use tokio_util::sync::CancellationToken;

const DAYS: i64 = 60;
const SAMPLER_EVERY: Duration = Duration::from_millis(100);

fn main() {
    // `cargo bench` passes `--bench`; `-- --trials N` repeats the whole run.
    // Test runners list every target (`cargo nextest run --all-targets`
    // asks `--list`, `cargo test` runs it bare): this is no test, so it
    // lists nothing and runs only when benchmarking.
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") || args.iter().any(|a| a == "--list") {
        return;
    }
    let trials = args
        .iter()
        .position(|a| a == "--trials")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(1);
    let mut all = Vec::new();
    for trial in 1..=trials {
        println!("-- trial {trial} of {trials}");
        all.extend(trial_once(trial));
    }
    if trials > 1 {
        report("sampler during the purges, all trials", &all);
    }
}

/// Fills a database, purges half of it beside the sampler, prints what
/// happened; returns the sampler's store times during the purge.
fn trial_once(seed: u64) -> Vec<Duration> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("purge.db");
    let store = Arc::new(Store::open(&path).unwrap());
    let now = Utc::now();
    let mut generator = Generator::new(seed, Shape::default());
    let total = DAYS * 1_440;
    let started = Instant::now();
    for chunk in (0..total).step_by(1_000) {
        let checks: Vec<_> = (chunk..(chunk + 1_000).min(total))
            .map(|i| generator.check_at(now - chrono::Duration::minutes(total - i)))
            .collect();
        store.insert_checks(&checks).unwrap();
    }
    store.checkpoint().unwrap();
    println!(
        "filled {total} checks ({DAYS} days, 60 s apart) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let db_before = file_size(&path);
    let all_before = store.size_bytes();

    let alone = sampler(&store, &mut generator, || false, Some(30));
    report("sampler alone", &alone);

    let done = AtomicBool::new(false);
    let keep = Retention {
        checks: Duration::from_secs(30 * 86_400),
        rollups: Duration::from_secs(730 * 86_400),
        audit: Duration::from_secs(90 * 86_400),
    };
    let (purged, took, during) = std::thread::scope(|scope| {
        let purge = scope.spawn(|| {
            let started = Instant::now();
            let p = store
                .purge_expired(&keep, Utc::now(), &CancellationToken::new())
                .unwrap();
            done.store(true, Ordering::Relaxed);
            (p, started.elapsed())
        });
        let during = sampler(
            &store,
            &mut generator,
            || done.load(Ordering::Relaxed),
            None,
        );
        let (p, took): (Purged, Duration) = purge.join().unwrap();
        (p, took, during)
    });
    println!(
        "purged {} checks, {} roll-up rows, gave back {} pages in {:.2} s",
        purged.checks,
        purged.rollups,
        purged.pages,
        took.as_secs_f64()
    );
    report("sampler during the purge", &during);
    let mib = |b: u64| b as f64 / 1_048_576.0;
    println!(
        "database file {:.1} -> {:.1} MiB; with its WAL {:.1} -> {:.1} MiB",
        mib(db_before),
        mib(file_size(&path)),
        mib(all_before),
        mib(store.size_bytes())
    );
    store.checkpoint().unwrap();
    println!(
        "after the shutdown checkpoint: {:.1} MiB",
        mib(store.size_bytes())
    );
    during
}

/// Stores a check every `SAMPLER_EVERY` until `stop` (or `count` checks)
/// and returns how long each store took, waiting for the writer included.
fn sampler(
    store: &Store,
    generator: &mut Generator,
    stop: impl Fn() -> bool,
    count: Option<usize>,
) -> Vec<Duration> {
    let mut took = Vec::new();
    let mut next = Instant::now();
    while !stop() && count.is_none_or(|n| took.len() < n) {
        let check = generator.check_at(Utc::now());
        let started = Instant::now();
        store.insert_check(&check).unwrap();
        took.push(started.elapsed());
        next += SAMPLER_EVERY;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    took
}

fn report(what: &str, took: &[Duration]) {
    if took.is_empty() {
        println!("{what}: no stores");
        return;
    }
    let mut ms: Vec<f64> = took.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() as f64 * q).ceil() as usize).clamp(1, ms.len()) - 1];
    let slowest: Vec<String> = ms.iter().rev().take(5).map(|m| format!("{m:.1}")).collect();
    println!(
        "{what}: {} stores, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (slowest: {} ms)",
        ms.len(),
        at(0.5),
        at(0.99),
        at(1.0),
        slowest.join(", ")
    );
}

fn file_size(p: &std::path::Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}
