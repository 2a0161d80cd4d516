//! The sender's choice of what goes next, against a real store: the
//! backlog bound, roll-ups where raw checks were purged, a clock that
//! stepped back.

use super::{
    Receiver,
    client::Client,
    proto::WriteRequest,
    sender::{BATCH_CHECKS, Pending, Sender},
};
use crate::{
    generate::{Generator, Shape},
    store::{Cursor, Store},
};
use chrono::{DateTime, Duration, Utc};
use std::sync::{Arc, Mutex};

fn sender(store: &Arc<Store>, max_backlog_days: u64) -> Sender {
    let settings: crate::config::remote_write::RemoteWriteSettings = toml::from_str(&format!(
        "url = \"http://127.0.0.1:9/api/v1/write\"\nmax_backlog = \"{max_backlog_days}d\"\n"
    ))
    .unwrap();
    Sender {
        receiver: Arc::new(Receiver {
            name: "r".into(),
            endpoint: "http://127.0.0.1:9/…".into(),
            interval: settings.interval,
            max_backlog: settings.max_backlog,
            progress: Mutex::default(),
        }),
        client: Arc::new(Client::new(&settings).unwrap()),
        store: Arc::clone(store),
        key: super::cursor_key(&settings.url),
        instance: "test".into(),
    }
}

fn store() -> (tempfile::TempDir, Arc<Store>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("h.db")).unwrap());
    (dir, store)
}

/// Checks every `step` from `from` on, `n` of them.
fn fill(store: &Store, from: DateTime<Utc>, step: Duration, n: i32) {
    let mut g = Generator::new(
        1,
        Shape {
            mounts: 1,
            services: 1,
            processes: 1,
        },
    );
    let checks: Vec<_> = (0..n).map(|i| g.check_at(from + step * i)).collect();
    store.insert_checks(&checks).unwrap();
}

fn decode(p: &Pending) -> WriteRequest {
    let raw = snap::raw::Decoder::new().decompress_vec(&p.body).unwrap();
    prost::Message::decode(raw.as_slice()).unwrap()
}

/// The samples' times of one family, over every series of it.
fn times(req: &WriteRequest, name: &str) -> Vec<i64> {
    let mut t: Vec<i64> = req
        .timeseries
        .iter()
        .filter(|s| s.labels[0].value == name)
        .flat_map(|s| s.samples.iter().map(|x| x.timestamp))
        .collect();
    t.sort_unstable();
    t
}

const START: Cursor = Cursor {
    check_id: 0,
    sent_until: DateTime::<Utc>::UNIX_EPOCH,
};

#[test]
fn checks_older_than_max_backlog_are_skipped_and_counted() {
    let (_dir, store) = store();
    let now = Utc::now();
    fill(&store, now - Duration::days(10), Duration::minutes(1), 30);
    fill(
        &store,
        now - Duration::minutes(30),
        Duration::minutes(1),
        20,
    );
    let s = sender(&store, 7);
    let (_, p) = s.next_batch(START, BATCH_CHECKS).unwrap();
    let req = decode(&p.unwrap());
    let sent = times(&req, "hostwatch_check_duration_seconds");
    assert_eq!(sent.len(), 20);
    assert!(sent[0] >= (now - Duration::minutes(31)).timestamp_millis());
    assert_eq!(s.receiver.progress().checks_skipped, 30);
}

#[test]
fn where_raw_checks_were_purged_their_hours_roll_ups_go_first_marked_as_such() {
    let (dir, store) = store();
    let now = Utc::now();
    // Three hours of checks two days ago, then purged; and the last hour.
    fill(&store, now - Duration::days(2), Duration::minutes(10), 18);
    fill(
        &store,
        now - Duration::minutes(50),
        Duration::minutes(10),
        5,
    );
    let cut = (now - Duration::days(1)).timestamp_millis();
    let c = rusqlite::Connection::open(dir.path().join("h.db")).unwrap();
    c.execute("DELETE FROM checks WHERE taken_at < ?1", [cut])
        .unwrap();
    drop(c);
    let s = sender(&store, 7);
    let (at, p) = s.next_batch(START, BATCH_CHECKS).unwrap();
    let p = p.unwrap();
    let req = decode(&p);
    // Three (or four, by where the hours fall) rolled hours, every series marked.
    assert!(req.timeseries.iter().all(|t| {
        t.labels
            .iter()
            .any(|l| l.name == "rollup" && l.value == "1h")
    }));
    let hours = times(&req, "hostwatch_cpu_usage_ratio");
    assert!((3..=4).contains(&hours.len()), "{hours:?}");
    assert!(!times(&req, "hostwatch_filesystem_used_ratio").is_empty());
    assert!(!times(&req, "hostwatch_service_up").is_empty());
    assert_eq!(
        p.next.check_id, at.check_id,
        "the raw checks are still to come"
    );
    // Then the raw checks, after the roll-ups.
    let (_, p) = s.next_batch(p.next, BATCH_CHECKS).unwrap();
    let req = decode(&p.unwrap());
    let raw = times(&req, "hostwatch_check_duration_seconds");
    assert_eq!(raw.len(), 5);
    assert!(raw[0] > *hours.last().unwrap());
    assert!(
        req.timeseries
            .iter()
            .all(|t| t.labels.iter().all(|l| l.name != "rollup"))
    );
}

#[test]
fn a_check_stamped_before_what_was_sent_is_stepped_over() {
    let (_dir, store) = store();
    let now = Utc::now();
    fill(
        &store,
        now - Duration::seconds(30),
        Duration::seconds(10),
        2,
    );
    // The clock stepped back 15 s before the third check.
    fill(
        &store,
        now - Duration::seconds(25),
        Duration::seconds(10),
        2,
    );
    let s = sender(&store, 7);
    let (_, p) = s.next_batch(START, BATCH_CHECKS).unwrap();
    let p = p.unwrap();
    let sent = times(&decode(&p), "hostwatch_load1");
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert!(sent.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(s.receiver.progress().checks_skipped, 1);
    assert_eq!(p.next.check_id, 4);
}

#[test]
fn a_batch_holds_a_bounded_number_of_samples_however_many_mounts_a_check_has() {
    let (_dir, store) = store();
    let mut g = Generator::new(
        1,
        Shape {
            mounts: 100,
            services: 1,
            processes: 1,
        },
    );
    let now = Utc::now();
    let checks: Vec<_> = (0..50)
        .map(|i| g.check_at(now - Duration::seconds(60 - i)))
        .collect();
    store.insert_checks(&checks).unwrap();
    let s = sender(&store, 7);
    let (_, p) = s.next_batch(START, BATCH_CHECKS).unwrap();
    let p = p.unwrap();
    assert!(p.samples <= 10_000 + 400, "{}", p.samples);
    assert!(p.items < 50 && !p.last, "{} checks", p.items);
    // The next batch goes on from the check after the last one sent.
    let sent = times(&decode(&p), "hostwatch_check_duration_seconds");
    let (_, q) = s.next_batch(p.next, BATCH_CHECKS).unwrap();
    let next = times(&decode(&q.unwrap()), "hostwatch_check_duration_seconds");
    assert_eq!(sent.len() as u32, p.items);
    assert!(next[0] > *sent.last().unwrap());
}

#[test]
fn a_whole_batch_stamped_before_what_was_sent_is_stepped_over_to_the_checks_after() {
    let (_dir, store) = store();
    let now = Utc::now();
    fill(
        &store,
        now - Duration::seconds(10),
        Duration::milliseconds(1),
        2,
    );
    // A clock stepped back an hour: 300 checks before what was sent, then
    // the clock is right again.
    fill(&store, now - Duration::hours(1), Duration::seconds(1), 300);
    fill(&store, now, Duration::milliseconds(100), 3);
    let s = sender(&store, 7);
    let (_, first) = s.next_batch(START, 2).unwrap();
    let first = first.unwrap();
    let (_, after) = s.next_batch(first.next, BATCH_CHECKS).unwrap();
    let after = after.expect("the checks after the step are sent without waiting");
    let sent = times(&decode(&after), "hostwatch_check_duration_seconds");
    assert_eq!(
        sent.len(),
        3,
        "{sent:?} now {} after {:?}",
        now.timestamp_millis(),
        first.next
    );
    assert_eq!(s.receiver.progress().checks_skipped, 300);
}
