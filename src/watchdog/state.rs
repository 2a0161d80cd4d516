//! The life of one rule's alert for one subject, as a pure function of the
//! previous state, whether the value is beyond the limit, and the time:
//! inactive → pending (beyond, for less than `for`) → firing → resolved
//! (back within the limit for `keep_firing_for`). Time is wall-clock, so an
//! alert resumed after a restart keeps its `for` and reminder schedule.

use chrono::{DateTime, Utc};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Pending,
    Firing,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "pending",
            Phase::Firing => "firing",
        }
    }
}

/// An open alert.
#[derive(Debug, Clone, PartialEq)]
pub struct Open {
    pub alert_id: i64,
    pub phase: Phase,
    pub started_at: DateTime<Utc>,
    pub fired_at: Option<DateTime<Utc>>,
    /// Since when the value has been back within the limit while firing.
    pub within_since: Option<DateTime<Utc>>,
    /// When the firing message or the last reminder was queued.
    pub notified_at: Option<DateTime<Utc>>,
}

impl Open {
    /// Moves its times with a step of the wall clock, so that the time it
    /// has been pending or firing stays what the monotonic clock measured.
    pub fn follow_step(&mut self, step: chrono::Duration) {
        self.started_at += step;
        for t in [
            &mut self.fired_at,
            &mut self.within_since,
            &mut self.notified_at,
        ] {
            *t = t.map(|t| t + step);
        }
    }
}

/// The timing settings of a rule.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub for_: Duration,
    pub keep_firing_for: Duration,
    pub repeat: Duration,
}

/// What the evaluation calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Stay,
    /// Inactive to pending, or straight to firing when `for` is zero.
    Open(Phase),
    /// Pending long enough.
    Fire,
    /// Pending, but back within the limit before `for`: forgotten.
    Drop,
    /// Firing, and within the limit for `keep_firing_for` (or gone).
    Resolve,
    /// Still firing a `repeat_interval` after the last message.
    Remind,
    /// Firing, and just came back within the limit: starts the clock.
    WithinSince,
    /// Firing, and beyond again before it resolved.
    BeyondAgain,
}

fn elapsed(from: DateTime<Utc>, to: DateTime<Utc>) -> Duration {
    (to - from).to_std().unwrap_or_default()
}

/// `beyond`: `Some(true)` beyond the limit, `Some(false)` within it, `None`
/// when the subject is gone.
pub fn step(open: Option<&Open>, beyond: Option<bool>, now: DateTime<Utc>, t: Timing) -> Step {
    match (open, beyond) {
        (None, Some(true)) if t.for_.is_zero() => Step::Open(Phase::Firing),
        (None, Some(true)) => Step::Open(Phase::Pending),
        (None, _) => Step::Stay,
        (Some(o), Some(true)) if o.phase == Phase::Pending => {
            if elapsed(o.started_at, now) >= t.for_ {
                Step::Fire
            } else {
                Step::Stay
            }
        }
        (Some(o), _) if o.phase == Phase::Pending => Step::Drop,
        (Some(_), None) => Step::Resolve,
        (Some(o), Some(b)) => {
            if !b && o.within_since.is_none() && !t.keep_firing_for.is_zero() {
                return Step::WithinSince;
            }
            if !b {
                let since = o.within_since.unwrap_or(now);
                if elapsed(since, now) >= t.keep_firing_for {
                    return Step::Resolve;
                }
            }
            if b && o.within_since.is_some() {
                return Step::BeyondAgain;
            }
            match o.notified_at {
                Some(at) if elapsed(at, now) >= t.repeat => Step::Remind,
                _ => Step::Stay,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(for_ms: u64, keep_ms: u64) -> Timing {
        Timing {
            for_: Duration::from_millis(for_ms),
            keep_firing_for: Duration::from_millis(keep_ms),
            repeat: Duration::from_secs(3600),
        }
    }

    fn open(phase: Phase, started: DateTime<Utc>) -> Open {
        Open {
            alert_id: 1,
            phase,
            started_at: started,
            fired_at: None,
            within_since: None,
            notified_at: Some(started),
        }
    }

    #[test]
    fn a_zero_for_fires_at_once_and_a_longer_one_waits() {
        let now = Utc::now();
        assert_eq!(
            step(None, Some(true), now, t(0, 0)),
            Step::Open(Phase::Firing)
        );
        assert_eq!(
            step(None, Some(true), now, t(500, 0)),
            Step::Open(Phase::Pending)
        );
        assert_eq!(step(None, Some(false), now, t(0, 0)), Step::Stay);
        let o = open(Phase::Pending, now);
        let later = now + chrono::Duration::milliseconds(499);
        assert_eq!(step(Some(&o), Some(true), later, t(500, 0)), Step::Stay);
        let later = now + chrono::Duration::milliseconds(500);
        assert_eq!(step(Some(&o), Some(true), later, t(500, 0)), Step::Fire);
        assert_eq!(step(Some(&o), Some(false), later, t(500, 0)), Step::Drop);
        assert_eq!(step(Some(&o), None, later, t(500, 0)), Step::Drop);
    }

    #[test]
    fn firing_resolves_after_keep_firing_for_and_a_relapse_restarts_the_clock() {
        let now = Utc::now();
        let mut o = open(Phase::Firing, now);
        assert_eq!(step(Some(&o), Some(false), now, t(0, 0)), Step::Resolve);
        assert_eq!(
            step(Some(&o), Some(false), now, t(0, 1000)),
            Step::WithinSince
        );
        o.within_since = Some(now);
        let soon = now + chrono::Duration::milliseconds(999);
        assert_eq!(step(Some(&o), Some(false), soon, t(0, 1000)), Step::Stay);
        assert_eq!(
            step(Some(&o), Some(true), soon, t(0, 1000)),
            Step::BeyondAgain
        );
        let later = now + chrono::Duration::milliseconds(1000);
        assert_eq!(
            step(Some(&o), Some(false), later, t(0, 1000)),
            Step::Resolve
        );
        assert_eq!(step(Some(&o), None, soon, t(0, 1000)), Step::Resolve);
    }

    #[test]
    fn a_firing_alert_is_reminded_every_repeat_interval() {
        let now = Utc::now();
        let o = open(Phase::Firing, now);
        let timing = t(0, 0);
        let before = now + chrono::Duration::seconds(3599);
        assert_eq!(step(Some(&o), Some(true), before, timing), Step::Stay);
        let after = now + chrono::Duration::seconds(3600);
        assert_eq!(step(Some(&o), Some(true), after, timing), Step::Remind);
    }
}
