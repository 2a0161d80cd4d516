//! A window at a glance. Whole hours come from the roll-ups and the
//! window's ragged ends from raw checks, so the answer equals one computed
//! from raw checks alone (to float rounding) while a year costs a few
//! thousand rows. Hours whose raw checks are purged count whole.

use super::{
    Result, Store,
    checks::millis_to_time,
    history::{Resolution, clamp, raw_from},
    plan::prepare,
    rollups::{HOUR_MS, hour_of},
};
use crate::domain::TimeRange;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, Row, params};
use serde::Serialize;
use utoipa::ToSchema;

/// Minimum, average and maximum of one metric over a window.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Stats {
    pub min: f64,
    pub avg: f64,
    pub max: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ServiceAvailability {
    pub name: String,
    /// Share of the window's checks in which the service was running, 0–100.
    pub availability_percent: f64,
    pub checks: u64,
    /// Latency of its health probe, where one is set.
    pub probe_ms: Option<Stats>,
}

/// A window of checks at a glance; a metric with no values is `null`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Summary {
    pub count: u64,
    pub first_at: Option<DateTime<Utc>>,
    pub last_at: Option<DateTime<Utc>>,
    pub cpu: Option<Stats>,
    pub memory: Option<Stats>,
    /// Used share of the filesystem at `disk_mount`.
    pub disk: Option<Stats>,
    pub disk_mount: String,
    pub services: Vec<ServiceAvailability>,
    /// `1h` when hourly roll-ups answered part of the window.
    pub resolution: Resolution,
}

/// Count, least, sum and greatest of some values.
#[derive(Debug, Clone, Copy, Default)]
struct Agg {
    n: u64,
    min: Option<f64>,
    sum: f64,
    max: Option<f64>,
}

impl Agg {
    /// Reads `count, min, sum, max` from columns `i..i + 4`.
    fn read(r: &Row<'_>, i: usize) -> rusqlite::Result<Self> {
        Ok(Agg {
            n: r.get::<_, i64>(i)? as u64,
            min: r.get(i + 1)?,
            sum: r.get(i + 2)?,
            max: r.get(i + 3)?,
        })
    }

    fn merge(&mut self, o: Agg) {
        let pick = |a: Option<f64>, b: Option<f64>, f: fn(f64, f64) -> f64| match (a, b) {
            (Some(a), Some(b)) => Some(f(a, b)),
            (a, b) => a.or(b),
        };
        self.n += o.n;
        self.sum += o.sum;
        self.min = pick(self.min, o.min, f64::min);
        self.max = pick(self.max, o.max, f64::max);
    }

    fn stats(self) -> Option<Stats> {
        match (self.n, self.min, self.max) {
            (1.., Some(min), Some(max)) => Some(Stats {
                min,
                avg: self.sum / self.n as f64,
                max,
            }),
            _ => None,
        }
    }
}

fn ceil_hour(ms: i64) -> i64 {
    hour_of(ms + HOUR_MS - 1)
}

/// `[from, to)` in ms since the epoch.
type Span = (i64, i64);

/// Which part of `[s, u)` each source answers: a run of whole hours from
/// the roll-ups (`[lo, hi)`, hour-aligned) and up to two raw ends.
fn plan(s: i64, u: i64, split: i64) -> (Option<Span>, Vec<Span>) {
    // Hours the raw checks no longer cover that overlap the window, then
    // the window's whole hours the raw checks do cover. The two meet at
    // `split` when both are there, so their union is one run.
    let gone = (hour_of(s), u.min(split));
    let whole = (ceil_hour(s).max(split), hour_of(u));
    let (mut lo, mut hi) = (i64::MAX, i64::MIN);
    for (l, h) in [gone, whole] {
        if l < h {
            lo = lo.min(l);
            hi = hi.max(h);
        }
    }
    let rolled = (lo < hi).then(|| (lo, ceil_hour(hi)));
    let from = s.max(split);
    let raw = match rolled {
        Some((lo, hi)) => vec![(from, u.min(lo)), (from.max(hi), u)],
        None => vec![(from, u)],
    };
    (rolled, raw.into_iter().filter(|(l, h)| l < h).collect())
}

/// The window's part from one source: checks, first, last, cpu, memory.
struct Part {
    checks: u64,
    first: Option<i64>,
    last: Option<i64>,
    cpu: Agg,
    mem: Agg,
}

fn host_part(c: &Connection, rolled: bool, lo: i64, hi: i64) -> Result<Part> {
    let sql = if rolled {
        "SELECT coalesce(sum(checks), 0), min(first_at), max(last_at), \
         coalesce(sum(cpu_n), 0), min(cpu_min), total(cpu_sum), max(cpu_max), \
         coalesce(sum(mem_n), 0), min(mem_min), total(mem_sum), max(mem_max) \
         FROM rollup_host WHERE hour >= ?1 AND hour < ?2"
    } else {
        "SELECT count(*), min(taken_at), max(taken_at), \
         count(cpu_percent), min(cpu_percent), total(cpu_percent), max(cpu_percent), \
         count(mem_percent), min(mem_percent), total(mem_percent), max(mem_percent) \
         FROM checks WHERE taken_at >= ?1 AND taken_at < ?2"
    };
    Ok(prepare(c, sql)?.query_row(params![lo, hi], |r| {
        Ok(Part {
            checks: r.get::<_, i64>(0)? as u64,
            first: r.get(1)?,
            last: r.get(2)?,
            cpu: Agg::read(r, 3)?,
            mem: Agg::read(r, 7)?,
        })
    })?)
}

fn disk_part(c: &Connection, rolled: bool, mount: &str, lo: i64, hi: i64) -> Result<Agg> {
    let sql = if rolled {
        "SELECT coalesce(sum(percent_n), 0), min(percent_min), total(percent_sum), max(percent_max) \
         FROM rollup_disks WHERE mount = ?1 AND hour >= ?2 AND hour < ?3"
    } else {
        "SELECT count(percent), min(percent), total(percent), max(percent) \
         FROM check_disks WHERE mount = ?1 AND taken_at >= ?2 AND taken_at < ?3"
    };
    Ok(prepare(c, sql)?.query_row(params![mount, lo, hi], |r| Agg::read(r, 0))?)
}

/// A service's checks, checks running, and probe latency.
fn service_part(
    c: &Connection,
    rolled: bool,
    name: &str,
    lo: i64,
    hi: i64,
) -> Result<(u64, u64, Agg)> {
    let sql = if rolled {
        "SELECT coalesce(sum(checks), 0), coalesce(sum(running), 0), \
         coalesce(sum(probe_n), 0), min(probe_min), total(probe_sum), max(probe_max) \
         FROM rollup_services WHERE name = ?1 AND hour >= ?2 AND hour < ?3"
    } else {
        "SELECT count(*), coalesce(sum(state = 'running'), 0), \
         count(probe_ms), min(probe_ms), total(probe_ms), max(probe_ms) \
         FROM check_services WHERE name = ?1 AND taken_at >= ?2 AND taken_at < ?3"
    };
    Ok(prepare(c, sql)?.query_row(params![name, lo, hi], |r| {
        Ok((
            r.get::<_, i64>(0)? as u64,
            r.get::<_, i64>(1)? as u64,
            Agg::read(r, 2)?,
        ))
    })?)
}

/// Every service name recorded, raw or rolled up, in order: one index seek
/// per name rather than a scan of every row.
fn service_names(c: &Connection) -> Result<Vec<String>> {
    let mut names = std::collections::BTreeSet::new();
    for sql in [
        "SELECT min(name) FROM rollup_services WHERE name > ?1",
        "SELECT min(name) FROM check_services WHERE name > ?1",
    ] {
        let mut st = prepare(c, sql)?;
        let mut after = String::new();
        while let Some(name) = st.query_row([&after], |r| r.get::<_, Option<String>>(0))? {
            names.insert(name.clone());
            after = name;
        }
    }
    Ok(names.into_iter().collect())
}

impl Store {
    pub fn summary(&self, range: TimeRange, disk_mount: &str) -> Result<Summary> {
        let (s, u) = range.millis();
        let (s, u) = (clamp(s), clamp(u));
        self.read(|c| {
            let tx = c.unchecked_transaction()?;
            let (rolled, raw) = plan(s, u, raw_from(&tx)?);
            let parts: Vec<(bool, i64, i64)> = rolled
                .map(|(lo, hi)| (true, lo, hi))
                .into_iter()
                .chain(raw.iter().map(|&(lo, hi)| (false, lo, hi)))
                .collect();
            let (mut count, mut first, mut last) = (0, None::<i64>, None::<i64>);
            let (mut cpu, mut mem, mut disk) = (Agg::default(), Agg::default(), Agg::default());
            for &(rolled, lo, hi) in &parts {
                let p = host_part(&tx, rolled, lo, hi)?;
                count += p.checks;
                first = first.into_iter().chain(p.first).min();
                last = last.into_iter().chain(p.last).max();
                cpu.merge(p.cpu);
                mem.merge(p.mem);
                disk.merge(disk_part(&tx, rolled, disk_mount, lo, hi)?);
            }
            let mut services = Vec::new();
            for name in service_names(&tx)? {
                let (mut n, mut up, mut probe) = (0, 0, Agg::default());
                for &(rolled, lo, hi) in &parts {
                    let (pn, pup, pprobe) = service_part(&tx, rolled, &name, lo, hi)?;
                    n += pn;
                    up += pup;
                    probe.merge(pprobe);
                }
                if n > 0 {
                    services.push(ServiceAvailability {
                        name,
                        availability_percent: crate::domain::check::percent(up, n),
                        checks: n,
                        probe_ms: probe.stats(),
                    });
                }
            }
            Ok(Summary {
                count,
                first_at: first.map(millis_to_time),
                last_at: last.map(millis_to_time),
                cpu: cpu.stats(),
                memory: mem.stats(),
                disk: disk.stats(),
                disk_mount: disk_mount.to_owned(),
                services,
                resolution: if rolled.is_some() {
                    Resolution::Hour
                } else {
                    Resolution::Raw
                },
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = HOUR_MS;

    #[test]
    fn ragged_ends_are_raw_and_whole_hours_rolled() {
        let (rolled, raw) = plan(10 * H + H / 2, 15 * H + H / 4, 0);
        assert_eq!(rolled, Some((11 * H, 15 * H)));
        assert_eq!(
            raw,
            vec![(10 * H + H / 2, 11 * H), (15 * H, 15 * H + H / 4)]
        );
    }

    #[test]
    fn hours_without_raw_checks_are_rolled_whole() {
        let (rolled, raw) = plan(10 * H + H / 2, 15 * H + H / 4, 12 * H);
        assert_eq!(rolled, Some((10 * H, 15 * H)));
        assert_eq!(raw, vec![(15 * H, 15 * H + H / 4)]);
    }

    #[test]
    fn a_window_inside_an_hour_is_raw_only() {
        let (rolled, raw) = plan(10 * H + 1, 10 * H + 2, 0);
        assert_eq!(rolled, None);
        assert_eq!(raw, vec![(10 * H + 1, 10 * H + 2)]);
    }

    #[test]
    fn without_raw_checks_everything_is_rolled() {
        let (rolled, raw) = plan(10 * H + 1, 12 * H + 2, super::super::history::FAR);
        assert_eq!(rolled, Some((10 * H, 13 * H)));
        assert!(raw.is_empty());
    }

    #[test]
    fn open_ends_do_not_overflow() {
        let far = super::super::history::FAR;
        let (rolled, raw) = plan(-far, far, 5 * H);
        assert_eq!(rolled, Some((hour_of(-far), hour_of(far))));
        assert_eq!(raw, vec![(hour_of(far), far)]);
    }
}
