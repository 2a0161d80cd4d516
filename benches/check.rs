//! The hot paths of a check: reading the host (with and without the process
//! part) and writing and reading a check in SQLite.
//! Run: cargo bench --bench check

#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use hostwatch::{collect::Collector, store::Store};
use std::time::Duration;

fn take(c: &mut Criterion) {
    let mut g = c.benchmark_group("take_check");
    let mut host_only = Collector::new(0).unwrap();
    std::thread::sleep(host_only.ready_in());
    g.bench_function("without_processes", |b| {
        b.iter(|| host_only.take(std::time::Duration::from_secs(1)))
    });
    let mut with_top = Collector::new(5).unwrap();
    std::thread::sleep(with_top.ready_in());
    g.bench_function("with_top_processes", |b| {
        b.iter(|| with_top.take(std::time::Duration::from_secs(1)))
    });
    g.finish();
}

fn store(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("bench.db")).unwrap();
    let collector = Collector::new(5).unwrap();
    std::thread::sleep(collector.ready_in());
    let (check, _) = hostwatch::sampler::read_host(
        &std::sync::Mutex::new(collector),
        std::time::Duration::from_secs(1),
    );
    // Each bench may run alone (nextest runs them one per process): store
    // one check first so `latest_check` has something to read.
    store.insert_check(&check).unwrap();
    let mut g = c.benchmark_group("store");
    g.bench_function("insert_check", |b| {
        b.iter(|| store.insert_check(&check).unwrap())
    });
    g.bench_function("latest_check", |b| b.iter(|| store.latest_check().unwrap()));
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5)).warm_up_time(Duration::from_secs(1));
    targets = take, store
}
criterion_main!(benches);
