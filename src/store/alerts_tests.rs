//! The watchdog's read side on a real SQLite file, with rows written as the
//! engine writes them.

use super::super::{
    AlertFilter, AlertState, MAX_ACTIVE_SILENCES, NewSilence, NotificationFilter,
    NotificationStatus, Store, StoreError,
};
use crate::domain::TimeRange;
use chrono::{Duration, Utc};
use rusqlite::params;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&dir.path().join("t.db")).unwrap();
    (dir, s)
}

/// An alert of `rule` in `state`, started `ago_s` seconds ago; its id.
fn alert(s: &Store, rule: &str, state: &str, ago_s: i64) -> i64 {
    let t = (Utc::now() - Duration::seconds(ago_s)).timestamp_millis();
    let resolved = (state == "resolved").then_some(t + 500);
    s.write(|c| {
        c.execute(
            "INSERT INTO alerts (rule, metric, subject, subject_key, state, value, threshold, op, \
             started_at, fired_at, resolved_at) VALUES (?1, 'cpu.percent', 'host', \
             ?2, ?3, ?4, 90, 'above', ?5, ?6, ?7)",
            params![
                rule,
                format!("host-{}", rand_key()),
                state,
                f64::INFINITY,
                t,
                (state != "pending").then_some(t + 100),
                resolved
            ],
        )?;
        Ok(c.last_insert_rowid())
    })
    .unwrap()
}

fn rand_key() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn filter(limit: u32) -> AlertFilter {
    AlertFilter {
        limit,
        ..Default::default()
    }
}

#[test]
fn alerts_page_newest_first_without_repeats_and_filter_by_state_and_rule() {
    let (_d, s) = store();
    for i in 0..7 {
        alert(&s, if i % 2 == 0 { "a" } else { "b" }, "resolved", 100 - i);
    }
    let firing = alert(&s, "a", "firing", 5);
    let mut seen = Vec::new();
    let mut f = filter(3);
    loop {
        let page = s.list_alerts(&f).unwrap();
        if page.is_empty() {
            break;
        }
        f.before_id = page.last().map(|a| a.id);
        seen.extend(page.into_iter().map(|a| a.id));
    }
    assert_eq!(seen.len(), 8);
    assert!(seen.windows(2).all(|w| w[0] > w[1]), "{seen:?}");
    let only = s
        .list_alerts(&AlertFilter {
            state: Some(AlertState::Firing),
            ..filter(100)
        })
        .unwrap();
    assert_eq!(only.iter().map(|a| a.id).collect::<Vec<_>>(), [firing]);
    // An infinite value has no JSON form: it reads as unknown.
    assert_eq!(only[0].value, None);
    let b = s
        .list_alerts(&AlertFilter {
            rule: Some("b".into()),
            ..filter(100)
        })
        .unwrap();
    assert!(b.len() == 3 && b.iter().all(|a| a.rule == "b"));
    // Open during the last minute: the firing one only.
    let recent = s
        .list_alerts(&AlertFilter {
            window: TimeRange {
                since: Some(Utc::now() - Duration::seconds(60)),
                until: None,
            },
            ..filter(100)
        })
        .unwrap();
    assert_eq!(recent.len(), 1);
}

#[test]
fn an_alert_detail_has_its_timeline_and_an_unknown_one_is_not_found() {
    let (_d, s) = store();
    let id = alert(&s, "a", "firing", 10);
    let now = Utc::now().timestamp_millis();
    s.write(|c| {
        c.execute(
            "INSERT INTO alert_transitions (alert_id, at, from_state, to_state, value) VALUES (?1, ?2, 'pending', 'firing', 95)",
            params![id, now],
        )?;
        c.execute(
            "INSERT INTO notifications (message_id, alert_id, notifier, event, status, attempts, next_attempt_at, last_error, created_at, subject, payload) \
             VALUES ('m1', ?1, 'ops', 'firing', 'failed', 10, ?2, 'refused', ?2, 'a is firing', '{\"secret\":1}')",
            params![id, now],
        )?;
        c.execute(
            "INSERT INTO actions (alert_id, kind, spec, status, attempts, outcome, created_at) VALUES (?1, 'kill', '{\"signal\":\"TERM\"}', 'done', 1, 'sent TERM to 42', ?2)",
            params![id, now],
        )?;
        Ok(())
    })
    .unwrap();
    let d = s.alert_detail(id).unwrap();
    assert_eq!(d.alert.id, id);
    assert_eq!(d.transitions.len(), 1);
    assert_eq!(
        d.notifications.as_ref().unwrap()[0].status,
        NotificationStatus::Failed
    );
    assert_eq!(d.notifications.as_ref().unwrap()[0].next_attempt_at, None);
    assert_eq!(d.actions[0].spec["signal"], "TERM");
    assert!(matches!(s.alert_detail(id + 1), Err(StoreError::NotFound)));

    let failed = s
        .list_notifications(&NotificationFilter {
            status: Some(NotificationStatus::Failed),
            notifier: Some("ops".into()),
            limit: 10,
            before_id: None,
        })
        .unwrap();
    assert_eq!(failed.len(), 1);
    let counts = s.watchdog_counts().unwrap();
    assert_eq!(counts.firing, [("a".to_owned(), 1)]);
    assert_eq!(
        counts.notifications,
        [("ops".to_owned(), "failed".to_owned(), 1)]
    );
    assert_eq!(counts.actions, [("kill".to_owned(), "done".to_owned(), 1)]);
}

fn silence(rule: &str, until: chrono::DateTime<Utc>) -> NewSilence {
    NewSilence {
        rule: rule.into(),
        subject: None,
        until,
        created_by: "operator".into(),
        comment: None,
    }
}

#[test]
fn silences_are_capped_and_expired_ones_purged_when_one_is_made() {
    let (_d, s) = store();
    let past = Utc::now() - Duration::seconds(1);
    let future = Utc::now() + Duration::hours(1);
    let old = s.create_silence(&silence("a", past)).unwrap();
    assert!(!old.active);
    assert_eq!(s.list_silences(true).unwrap().len(), 1);
    assert!(s.list_silences(false).unwrap().is_empty());
    for _ in 0..MAX_ACTIVE_SILENCES {
        s.create_silence(&silence("a", future)).unwrap();
    }
    // The expired one went with the first new one.
    assert_eq!(
        s.list_silences(true).unwrap().len() as u64,
        MAX_ACTIVE_SILENCES
    );
    assert!(matches!(
        s.create_silence(&silence("a", future)),
        Err(StoreError::LimitReached(_))
    ));
    let active = s.active_silences(Utc::now()).unwrap();
    assert_eq!(active.len() as u64, MAX_ACTIVE_SILENCES);
    let gone = s.delete_silence(active[0].id).unwrap();
    assert_eq!(gone.id, active[0].id);
    assert!(matches!(
        s.delete_silence(active[0].id),
        Err(StoreError::NotFound)
    ));
    s.create_silence(&silence("a", future)).unwrap();
}
