//! CPU use of a process: the one definition the check's top processes,
//! the process list, the watchdog and the agent's own figures share. Per
//! core, like `top`: 100 is one core busy the whole time.

use super::stat::Stat;
use std::time::Instant;

/// `ticks` of CPU time over `secs` of wall time.
pub fn percent(ticks: u64, secs: f64, ticks_per_second: f64) -> Option<f64> {
    (secs > 0.0 && ticks_per_second > 0.0).then(|| ticks as f64 / ticks_per_second / secs * 100.0)
}

/// Since `last` (CPU ticks, and when they were read) of this same process;
/// without one, over its whole life, measured on the clock `stat`'s start
/// time counts from (seconds since boot, read once into `uptime` for all
/// the processes of one reading).
pub fn since(
    s: &Stat,
    last: Option<(u64, Instant)>,
    now: Instant,
    ticks_per_second: f64,
    uptime: &mut Option<Option<f64>>,
) -> Option<f64> {
    match last {
        Some((before, at)) => percent(
            s.ticks().saturating_sub(before),
            now.saturating_duration_since(at).as_secs_f64(),
            ticks_per_second,
        ),
        None => {
            let up = (*uptime.get_or_insert_with(read_uptime))?;
            let age = up - s.start_ticks as f64 / ticks_per_second;
            percent(s.ticks(), age, ticks_per_second)
        }
    }
}

/// Seconds since boot.
fn read_uptime() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/uptime").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn one_core_busy_is_100_and_no_time_is_no_answer() {
        assert_eq!(percent(100, 1.0, 100.0), Some(100.0));
        assert_eq!(percent(50, 2.0, 100.0), Some(25.0));
        assert_eq!(percent(5, 0.0, 100.0), None);
    }

    #[test]
    fn a_first_reading_covers_the_life_of_the_process() {
        // Init: long enough alive for its life to be measured (a process
        // younger than a tick has none).
        let line = std::fs::read("/proc/1/stat").unwrap();
        let s = crate::collect::procs::stat::parse(&line).unwrap();
        let tps = procfs::ticks_per_second() as f64;
        let now = Instant::now();
        let mut uptime = None;
        let life = since(&s, None, now, tps, &mut uptime).unwrap();
        assert!(life >= 0.0, "{life}");
        assert!(uptime.is_some(), "uptime read once for the reading");
        let earlier = now - Duration::from_secs(2);
        let later = since(&s, Some((s.ticks(), earlier)), now, tps, &mut uptime);
        assert_eq!(later, Some(0.0), "no ticks since the last reading");
    }
}
