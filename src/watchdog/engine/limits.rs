//! What keeps a rule from writing without bound when something (or
//! someone) makes its subjects fire over and over: at most
//! `MAX_OPEN_PER_RULE` alerts open at once, and new alerts drawn from a
//! bucket of `BURST` that refills one per `REFILL`. What the limits hold
//! back is logged, at most once a minute per rule.

use chrono::{DateTime, Utc};
use std::time::Duration;

pub const MAX_OPEN_PER_RULE: usize = 100;
const BURST: f64 = 60.0;
const REFILL: Duration = Duration::from_secs(10);
const WARN_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct Budget {
    tokens: f64,
    at: Option<DateTime<Utc>>,
    held_back: u64,
    warned_at: Option<DateTime<Utc>>,
}

impl Default for Budget {
    fn default() -> Self {
        Self {
            tokens: BURST,
            at: None,
            held_back: 0,
            warned_at: None,
        }
    }
}

fn secs(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).to_std().unwrap_or_default().as_secs_f64()
}

impl Budget {
    /// A bucket as it was stored: `tokens` left at `at`.
    pub fn restored(tokens: f64, at: DateTime<Utc>) -> Self {
        Self {
            tokens: tokens.clamp(0.0, BURST),
            at: Some(at),
            ..Self::default()
        }
    }

    /// What to store: `tokens` left at `at`, once the bucket was used.
    pub fn saved(&self) -> Option<(f64, DateTime<Utc>)> {
        self.at.map(|at| (self.tokens, at))
    }

    /// Moves its times with a step of the wall clock: a step forward does
    /// not refill the bucket, a step back does not stop its refill.
    pub fn follow_step(&mut self, step: chrono::Duration) {
        self.at = self.at.map(|t| t + step);
        self.warned_at = self.warned_at.map(|t| t + step);
    }

    /// Takes one new alert from the bucket, if `open` leaves room.
    pub fn take(&mut self, open: usize, now: DateTime<Utc>) -> bool {
        if let Some(at) = self.at {
            self.tokens = (self.tokens + secs(at, now) / REFILL.as_secs_f64()).min(BURST);
        }
        self.at = Some(now);
        if open < MAX_OPEN_PER_RULE && self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            self.held_back += 1;
            false
        }
    }

    /// How many were held back since the last warning, when one is due.
    pub fn warning(&mut self, now: DateTime<Utc>) -> Option<u64> {
        let due = self
            .warned_at
            .is_none_or(|t| secs(t, now) >= WARN_EVERY.as_secs_f64());
        if self.held_back == 0 || !due {
            return None;
        }
        self.warned_at = Some(now);
        Some(std::mem::take(&mut self.held_back))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_one_per_refill_and_never_past_the_open_cap() {
        let now = Utc::now();
        let mut b = Budget::default();
        let taken = (0..100).filter(|_| b.take(0, now)).count();
        assert_eq!(taken, BURST as usize);
        assert!(!b.take(0, now + chrono::Duration::seconds(5)));
        assert!(b.take(0, now + chrono::Duration::seconds(15)));
        let mut fresh = Budget::default();
        assert!(!fresh.take(MAX_OPEN_PER_RULE, now));
        assert_eq!(fresh.warning(now), Some(1));
        assert_eq!(fresh.warning(now), None);
    }

    #[test]
    fn a_restored_bucket_goes_on_from_what_was_left() {
        let now = Utc::now();
        let mut b = Budget::default();
        assert_eq!(b.saved(), None);
        for _ in 0..BURST as usize {
            assert!(b.take(0, now));
        }
        let (tokens, at) = b.saved().unwrap();
        let mut again = Budget::restored(tokens, at);
        assert!(!again.take(0, now), "an emptied bucket stays empty");
        assert!(again.take(0, now + chrono::Duration::seconds(10)));
        assert_eq!(Budget::restored(1e9, now).saved(), Some((BURST, now)));
    }
}
