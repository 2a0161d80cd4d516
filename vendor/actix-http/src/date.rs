use std::{
    cell::Cell,
    fmt::{self, Write},
    time::{Duration, Instant, SystemTime},
};

/// "Thu, 01 Jan 1970 00:00:00 GMT".len()
pub(crate) const DATE_VALUE_LENGTH: usize = 29;

#[derive(Clone, Copy)]
pub(crate) struct Date {
    pub(crate) bytes: [u8; DATE_VALUE_LENGTH],
    pos: usize,
}

impl Date {
    fn new() -> Date {
        let mut date = Date {
            bytes: [0; DATE_VALUE_LENGTH],
            pos: 0,
        };
        date.update();
        date
    }

    fn update(&mut self) {
        self.pos = 0;
        write!(self, "{}", httpdate::HttpDate::from(SystemTime::now())).unwrap();
    }
}

impl fmt::Write for Date {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let len = s.len();
        self.bytes[self.pos..self.pos + len].copy_from_slice(s.as_bytes());
        self.pos += len;
        Ok(())
    }
}

/// The date and instant, read again when a request asks for them and they are
/// 500 millis old or more.
///
/// hostwatch patch: upstream updates them from a task woken every 500 millis
/// on every worker, whether or not anything is served, which is an idle agent's
/// largest cost (actix/actix-web#3411). Read lazily, an idle worker sleeps; a
/// busy one reads the clock (a vDSO call) where it did read a `Cell` before,
/// and the values it sees are as fresh as before, never older than 500 millis.
pub(crate) struct DateService {
    current: Cell<(Date, Instant)>,
}

/// How old the date and the instant may get.
const FRESH_FOR: Duration = Duration::from_millis(500);

impl DateService {
    pub(crate) fn new() -> Self {
        DateService {
            current: Cell::new((Date::new(), Instant::now())),
        }
    }

    fn fresh(&self) -> (Date, Instant) {
        let (date, at) = self.current.get();
        let now = Instant::now();
        if now.saturating_duration_since(at) < FRESH_FOR {
            return (date, at);
        }
        let current = (Date::new(), now);
        self.current.set(current);
        current
    }

    pub(crate) fn now(&self) -> Instant {
        self.fresh().1
    }

    pub(crate) fn with_date<F: FnMut(&Date)>(&self, mut f: F) {
        f(&self.fresh().0);
    }
}

impl fmt::Debug for DateService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DateService").finish_non_exhaustive()
    }
}

