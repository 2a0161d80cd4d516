//! A steady tick for the loops that run on an interval (the sampler, the
//! watchdog, its probes and service watches), from a kernel timer (`timerfd`) the runtime waits
//! on like any descriptor: one wake-up per tick. tokio's timer wheel wakes
//! its thread once more for each timer of a second or longer (at the start
//! of the wheel slot that holds it, then at its deadline), and on a virtual
//! machine a wake-up is most of what an idle tick costs. Where no timerfd
//! can be made, it falls back to tokio's interval.

use rustix::time::{Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags};
use std::{
    os::fd::OwnedFd,
    time::{Duration, Instant},
};
use tokio::io::{Interest, unix::AsyncFd};

pub struct Ticker(Inner);

enum Inner {
    Kernel(AsyncFd<OwnedFd>, Duration),
    Tokio(tokio::time::Interval),
}

impl Ticker {
    /// Ticks every `period`, the first at once; a tick missed because the
    /// loop was busy is skipped, not made up (ticks keep their schedule).
    /// Must be called within a tokio runtime.
    pub fn every(period: Duration) -> Self {
        Self::at(Instant::now(), period)
    }

    /// Ticks at `first` (at once if that is past), then every `period`, as
    /// [`Ticker::every`].
    pub fn at(first: Instant, period: Duration) -> Self {
        let period = period.max(Duration::from_millis(1));
        match kernel_timer(first, period) {
            Ok(fd) => Ticker(Inner::Kernel(fd, period)),
            Err(e) => {
                tracing::debug!("no timerfd ({e}): ticking on tokio's timer");
                Ticker(tokio_ticker(first, period))
            }
        }
    }

    pub async fn tick(&mut self) {
        loop {
            let period = match &mut self.0 {
                Inner::Tokio(i) => {
                    i.tick().await;
                    return;
                }
                Inner::Kernel(fd, period) => match fd.readable().await {
                    Ok(mut ready) => {
                        // Eight bytes: how many periods passed since the last read.
                        let mut expirations = [0u8; 8];
                        let read = |fd: &AsyncFd<OwnedFd>| {
                            Ok(rustix::io::read(fd.get_ref(), &mut expirations)?)
                        };
                        match ready.try_io(read) {
                            Ok(_) => return,
                            Err(_would_block) => continue,
                        }
                    }
                    Err(_) => *period,
                },
            };
            // The runtime cannot watch the descriptor any more: go on
            // ticking on its timer rather than stop without a word.
            tracing::warn!("the kernel timer failed; ticking on tokio's timer");
            self.0 = tokio_ticker(Instant::now() + period, period);
        }
    }
}

fn tokio_ticker(first: Instant, period: Duration) -> Inner {
    let mut i = tokio::time::interval_at(first.into(), period);
    i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    Inner::Tokio(i)
}

fn kernel_timer(first: Instant, period: Duration) -> std::io::Result<AsyncFd<OwnedFd>> {
    let fd = rustix::time::timerfd_create(
        TimerfdClockId::Monotonic,
        TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
    )?;
    let spec = |d: Duration| rustix::time::Timespec {
        tv_sec: d.as_secs() as _,
        tv_nsec: d.subsec_nanos() as _,
    };
    // Relative to now; a zero first expiry would disarm the timer, so a
    // first tick now or past is one nanosecond away.
    let first = first
        .saturating_duration_since(Instant::now())
        .max(Duration::from_nanos(1));
    rustix::time::timerfd_settime(
        &fd,
        TimerfdTimerFlags::empty(),
        &Itimerspec {
            it_interval: spec(period),
            it_value: spec(first),
        },
    )?;
    // SAFETY: the `OwnedFd` is moved into the `AsyncFd`, which owns it
    // until dropped: it stays open and the same descriptor all that time.
    unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }.map_err(|e| e.into_parts().1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ticks_come_at_once_then_every_period_from_a_kernel_timer() {
        // Read before the timer is armed: its periods count from then, and
        // a start read after it made three of them look a few µs short.
        let start = Instant::now();
        let mut t = Ticker::every(Duration::from_millis(300));
        assert!(
            matches!(t.0, Inner::Kernel(..)),
            "timerfd is on every Linux"
        );
        t.tick().await;
        assert!(
            start.elapsed() < Duration::from_millis(250),
            "the first tick is at once, not a period away"
        );
        for _ in 0..3 {
            t.tick().await;
        }
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(900),
            "three periods took {took:?}"
        );
    }

    #[tokio::test]
    async fn a_first_tick_ahead_is_waited_for() {
        let start = Instant::now();
        let mut t = Ticker::at(start + Duration::from_millis(60), Duration::from_secs(3600));
        t.tick().await;
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(59), "{took:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");
    }

    #[tokio::test]
    async fn a_busy_loop_misses_ticks_instead_of_bursting() {
        let mut t = Ticker::every(Duration::from_millis(20));
        t.tick().await;
        std::thread::sleep(Duration::from_millis(110));
        // Five periods passed: one tick is ready, then the schedule goes on
        // (made up, the next two would come at once).
        t.tick().await;
        let start = Instant::now();
        t.tick().await;
        t.tick().await;
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(19),
            "missed ticks came in a burst: {took:?}"
        );
    }
}
