//! Changes the database could not take because of a fault of its file (a
//! full disk, a read-only file): kept in memory in order, bounded, and
//! written before anything newer once the file takes writes again. Until
//! then their new alerts carry provisional (negative) ids, which later
//! changes of the same alert refer to.

use crate::store::{AlertRef, BudgetRow, StateChange, Store, StoreError};
use std::collections::{HashMap, VecDeque};

/// Changes held at most; past it the engine stops advancing (a tick then
/// changes nothing and is tried again), so memory stays bounded.
pub const MAX_HELD: usize = 1_000;

#[derive(Default)]
pub struct Held {
    batches: VecDeque<Batch>,
    changes: usize,
    /// The last provisional id handed out.
    last: i64,
    /// Provisional ids already written, and the ids they got.
    written: HashMap<i64, i64>,
}

struct Batch {
    changes: Vec<StateChange>,
    /// The provisional id of each change's new alert.
    provisional: Vec<Option<i64>>,
    budgets: Vec<BudgetRow>,
}

impl Held {
    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    pub fn len(&self) -> usize {
        self.changes
    }

    pub fn has_room(&self, n: usize) -> bool {
        self.changes + n <= MAX_HELD
    }

    /// Keeps one tick's changes; answers each change's alert id as a
    /// written batch would (provisional for new alerts, None where a
    /// pending alert went away).
    pub fn hold(&mut self, changes: Vec<StateChange>, budgets: Vec<BudgetRow>) -> Vec<Option<i64>> {
        let mut ids = Vec::with_capacity(changes.len());
        let mut provisional = Vec::with_capacity(changes.len());
        for c in &changes {
            let p = matches!(c.alert, AlertRef::New(_)).then(|| {
                self.last -= 1;
                self.last
            });
            provisional.push(p);
            ids.push(match (&c.alert, c.to) {
                (_, "inactive") => None,
                (AlertRef::Existing(id), _) => Some(*id),
                (AlertRef::New(_), _) => p,
            });
        }
        self.changes += changes.len();
        self.batches.push_back(Batch {
            changes,
            provisional,
            budgets,
        });
        ids
    }

    /// Writes the held batches, oldest first, each in its own transaction;
    /// stops at the first that fails. Answers the provisional ids written
    /// with the ids they got, and the failure if one stopped it.
    pub fn flush(&mut self, store: &Store) -> (Vec<(i64, i64)>, Option<StoreError>) {
        let mut made = Vec::new();
        while let Some(batch) = self.batches.front_mut() {
            for c in &mut batch.changes {
                if let AlertRef::Existing(id) = &mut c.alert
                    && let Some(real) = self.written.get(id)
                {
                    *id = *real;
                }
            }
            match store.apply_transitions(&batch.changes, &batch.budgets) {
                Ok(ids) => {
                    for (p, id) in batch.provisional.iter().zip(ids) {
                        if let (Some(p), Some(id)) = (p, id) {
                            self.written.insert(*p, id);
                            made.push((*p, id));
                        }
                    }
                    self.changes -= batch.changes.len();
                    self.batches.pop_front();
                }
                Err(e) if e.is_fault() => return (made, Some(e)),
                // Not the file's fault: this batch can never be written, and
                // must not wedge the ones behind it.
                Err(e) => {
                    tracing::error!(error = %e, changes = batch.changes.len(), "held alert changes the database refuses are dropped");
                    self.changes -= batch.changes.len();
                    self.batches.pop_front();
                }
            }
        }
        // Nothing held refers to a provisional id any more.
        self.written.clear();
        (made, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewAlert;
    use chrono::Utc;

    fn change(alert: AlertRef, from: &'static str, to: &'static str) -> StateChange {
        StateChange {
            alert,
            from,
            to,
            at: Utc::now(),
            value: Some(95.0),
            within_since: None,
            notifications: Vec::new(),
            actions: Vec::new(),
        }
    }

    fn new_alert(subject: &str) -> AlertRef {
        AlertRef::New(NewAlert {
            rule: "hot".into(),
            metric: "cpu.percent".into(),
            subject: subject.into(),
            subject_key: subject.into(),
            threshold: 90.0,
            op: "above",
        })
    }

    #[test]
    fn held_changes_are_written_in_order_with_their_provisional_ids_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("h.db")).unwrap();
        let mut held = Held::default();
        let ids = held.hold(
            vec![change(new_alert("a"), "inactive", "pending")],
            Vec::new(),
        );
        let p = ids[0].unwrap();
        assert!(p < 0, "a provisional id: {p}");
        held.hold(
            vec![change(AlertRef::Existing(p), "pending", "firing")],
            vec![BudgetRow {
                rule: "hot".into(),
                tokens: 59.0,
                at: Utc::now(),
            }],
        );
        assert_eq!(held.len(), 2);
        assert!(held.has_room(MAX_HELD - 2) && !held.has_room(MAX_HELD - 1));
        let (made, err) = held.flush(&store);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(made.len(), 1);
        let real = made[0].1;
        assert!(real > 0);
        assert!(held.is_empty());
        let open = store.open_alerts().unwrap();
        assert_eq!(open.len(), 1);
        assert_eq!((open[0].id, open[0].state.as_str()), (real, "firing"));
        assert_eq!(store.watchdog_budgets().unwrap()[0].tokens, 59.0);
    }
}
