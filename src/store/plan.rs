//! Statements whose plans matter: history, series, summaries and the check
//! list. They are prepared here so a test can record each one and run
//! `EXPLAIN QUERY PLAN` on it (`history_tests.rs`): each must walk an
//! index in the order it returns, never sort into a temporary B-tree.

use super::Result;
use rusqlite::{CachedStatement, Connection};

pub(super) fn prepare<'c>(c: &'c Connection, sql: &str) -> Result<CachedStatement<'c>> {
    #[cfg(test)]
    record(sql);
    Ok(c.prepare_cached(sql)?)
}

#[cfg(test)]
thread_local! {
    static SEEN: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

#[cfg(test)]
fn record(sql: &str) {
    SEEN.with(|s| {
        let mut s = s.borrow_mut();
        if !s.iter().any(|q| q == sql) {
            s.push(sql.to_owned());
        }
    });
}

/// The statements prepared on this thread since the last call.
#[cfg(test)]
pub(super) fn take() -> Vec<String> {
    SEEN.with(|s| std::mem::take(&mut *s.borrow_mut()))
}
