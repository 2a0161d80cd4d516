//! The wall clock, watched by the monotonic one. Stored times are the wall
//! clock's (what an operator compares with other logs); intervals, `for`
//! durations and budgets follow the monotonic clock, which never steps. A
//! step of the wall clock (an NTP correction, `date -s`, a VM resumed) shows
//! as a change in the distance between the two: it is logged once, and the
//! sum of the steps so far is handed to whoever keeps timers in wall time,
//! so they can move with it instead of firing early or late.

use chrono::{DateTime, Duration, Utc};
use std::sync::{LazyLock, Mutex};
use std::time::Instant;

/// A change of the distance between the clocks below this is drift the
/// kernel slews away, not a step. Both clocks are slewed alike by NTP, so
/// in practice the distance moves only when the wall clock is set.
const STEP: Duration = Duration::milliseconds(1000);

/// One reading of the wall clock.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    /// The wall clock, to the millisecond (what storage keeps).
    pub wall: DateTime<Utc>,
    /// How far the wall clock has stepped since the process started: the
    /// sum of every step seen, forward positive.
    pub stepped: Duration,
}

impl Reading {
    /// The earlier of the wall clock and where it would be had it never
    /// stepped: what may decide that something is old enough to delete, so
    /// that a clock set a year ahead never expires a year of history.
    pub fn earliest(&self) -> DateTime<Utc> {
        self.wall - self.stepped.max(Duration::zero())
    }
}

/// Follows the distance between the two clocks and notices its steps.
#[derive(Debug)]
pub struct Steps {
    start: (DateTime<Utc>, Instant),
    /// The distance when the last step was seen (or at start).
    offset: Duration,
}

/// What `Steps::observe` found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observed {
    pub reading: Reading,
    /// The step just seen, forward positive.
    pub step: Option<Duration>,
}

impl Steps {
    pub fn new(wall: DateTime<Utc>, mono: Instant) -> Self {
        Self {
            start: (wall, mono),
            offset: Duration::zero(),
        }
    }

    /// Compares `wall` with where it would be had it followed `mono` since
    /// the start.
    pub fn observe(&mut self, wall: DateTime<Utc>, mono: Instant) -> Observed {
        // Never past what chrono holds: an impossible uptime reads as no step.
        let expected = Duration::from_std(mono.saturating_duration_since(self.start.1))
            .ok()
            .and_then(|ran| self.start.0.checked_add_signed(ran))
            .unwrap_or(wall - self.offset);
        let offset = wall - expected;
        let moved = offset - self.offset;
        let step = (moved.abs() >= STEP).then(|| {
            self.offset = offset;
            moved
        });
        Observed {
            reading: Reading {
                wall,
                stepped: self.offset,
            },
            step,
        }
    }
}

static CLOCK: LazyLock<Mutex<Steps>> =
    LazyLock::new(|| Mutex::new(Steps::new(wall_now(), Instant::now())));

fn wall_now() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap_or_default()
}

/// Reads the wall clock, logging a step when it has made one.
pub fn now() -> Reading {
    let mut steps = CLOCK.lock().unwrap_or_else(|p| p.into_inner());
    let seen = steps.observe(wall_now(), Instant::now());
    drop(steps);
    if let Some(step) = seen.step {
        // Whole seconds: a step is at least one, and its exact size is in step_ms.
        let secs = (step.num_milliseconds().abs() + 500) / 1000;
        let by = crate::domain::time::format_duration(std::time::Duration::from_secs(secs as u64));
        let way = if step > Duration::zero() {
            "forward"
        } else {
            "back"
        };
        tracing::warn!(
            step_ms = step.num_milliseconds(),
            wall = %crate::domain::time::rfc3339(seen.reading.wall),
            "the wall clock stepped {way} by {by}; stored times follow it, intervals and timers do not"
        );
    }
    seen.reading
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_seen_once_drift_is_not() {
        let (w0, m0) = (Utc::now(), Instant::now());
        let mut s = Steps::new(w0, m0);
        let at = |secs: u64| m0 + std::time::Duration::from_secs(secs);
        let wall = |secs: i64| w0 + Duration::seconds(secs);
        // 900 ms of drift over a minute is not a step.
        let o = s.observe(wall(60) + Duration::milliseconds(900), at(60));
        assert_eq!((o.step, o.reading.stepped), (None, Duration::zero()));
        // Set back an hour.
        let o = s.observe(wall(120 - 3600), at(120));
        assert_eq!(o.step, Some(Duration::seconds(-3600)));
        assert_eq!(o.reading.stepped, Duration::seconds(-3600));
        assert_eq!(o.reading.earliest(), o.reading.wall);
        // Seen once: the next reading on the new time is not a step.
        let o = s.observe(wall(180 - 3600), at(180));
        assert_eq!(
            (o.step, o.reading.stepped),
            (None, Duration::seconds(-3600))
        );
        // Forward a day: the sum is what the clock gained.
        let o = s.observe(wall(240 - 3600 + 86_400), at(240));
        assert_eq!(o.step, Some(Duration::seconds(86_400)));
        assert_eq!(o.reading.stepped, Duration::seconds(86_400 - 3600));
        assert_eq!(
            o.reading.earliest(),
            o.reading.wall - Duration::seconds(86_400 - 3600)
        );
    }
}
