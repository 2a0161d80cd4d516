//! A metric in buckets of `step` over a window. Rows come from SQL in time
//! order, down an index, and are folded into buckets here: grouping in SQL
//! by a computed bucket would sort them first.

use super::{
    Result, Store, StoreError,
    checks::millis_to_time,
    history::{Resolution, Source, clamp, raw_from},
    plan::prepare,
    rollups::{HOUR_MS, hour_of},
};
use crate::domain::Metric;
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension as _, named_params};
use serde::Serialize;
use utoipa::ToSchema;

/// The most raw checks one series reads (a second or so of work): a month
/// of 60 s checks is 43,200; past this a step of an hour or more answers.
pub const MAX_RAW_ROWS: i64 = 1_000_000;

/// The values of a metric in `[start, start + step)`.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, ToSchema)]
pub struct SeriesBucket {
    pub start: DateTime<Utc>,
    pub min: f64,
    pub avg: f64,
    pub max: f64,
    pub count: u64,
    /// `1h` when any hourly roll-up went into the bucket.
    pub resolution: Resolution,
}

/// Buckets being filled, in time order.
struct Buckets {
    origin: i64,
    step: i64,
    /// Bucket index, count, min, sum, max, resolution.
    open: Vec<(i64, u64, f64, f64, f64, Resolution)>,
}

impl Buckets {
    fn add(&mut self, at: i64, n: u64, min: f64, sum: f64, max: f64, res: Resolution) {
        // An hour that began before the window counts in its first bucket.
        let b = (at - self.origin).div_euclid(self.step).max(0);
        match self.open.last_mut() {
            Some(last) if last.0 == b => {
                last.1 += n;
                last.2 = last.2.min(min);
                last.3 += sum;
                last.4 = last.4.max(max);
                if res == Resolution::Hour {
                    last.5 = res;
                }
            }
            _ => self.open.push((b, n, min, sum, max, res)),
        }
    }

    fn finish(self) -> Vec<SeriesBucket> {
        self.open
            .into_iter()
            .map(|(b, n, min, sum, max, resolution)| SeriesBucket {
                start: millis_to_time(self.origin + b * self.step),
                min,
                avg: sum / n as f64,
                max,
                count: n,
                resolution,
            })
            .collect()
    }
}

impl Store {
    /// Buckets of `step_ms` from `since` to `until`; empty buckets are left
    /// out. A step of an hour or more reads the hourly roll-ups, and its
    /// buckets start at the hour `since` falls in; a shorter step reads raw
    /// checks, and roll-ups only for hours whose raw checks are purged. An
    /// hour counts wholly in the bucket its start falls in.
    pub fn series(
        &self,
        metric: &Metric,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        step_ms: i64,
    ) -> Result<Vec<SeriesBucket>> {
        self.series_within(metric, since, until, step_ms, MAX_RAW_ROWS)
    }

    /// `series`, reading at most `max_raw` raw checks (else `TooBroad`).
    pub fn series_within(
        &self,
        metric: &Metric,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        step_ms: i64,
        max_raw: i64,
    ) -> Result<Vec<SeriesBucket>> {
        let src = Source::of(metric);
        let (s, u) = (
            clamp(since.timestamp_millis()),
            clamp(until.timestamp_millis()),
        );
        self.read(|c| {
            let tx = c.unchecked_transaction()?;
            let hourly = step_ms >= HOUR_MS;
            let mut out = Buckets {
                origin: if hourly { hour_of(s) } else { s },
                step: step_ms.max(1),
                open: Vec::new(),
            };
            let split = if hourly { u } else { raw_from(&tx)? };
            if hour_of(s) < split.min(u) {
                let sql = format!(
                    "SELECT hour, {p}_n, {p}_min, {p}_sum, {p}_max FROM {t} \
                     WHERE {f} AND hour >= :lo AND hour < :hi AND {p}_n > 0 ORDER BY hour",
                    p = src.prefix,
                    t = src.rollup,
                    f = src.rollup_filter()
                );
                let (lo, hi) = (hour_of(s), split.min(u));
                let mut st = prepare(&tx, &sql)?;
                let mut rows = st.query(&*src.bind(vec![(":lo", &lo), (":hi", &hi)]))?;
                while let Some(r) = rows.next()? {
                    let n: i64 = r.get(1)?;
                    out.add(
                        r.get(0)?,
                        n as u64,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        Resolution::Hour,
                    );
                }
            }
            let from = s.max(split);
            if !hourly && from < u {
                let sql = format!(
                    "SELECT taken_at, {v} FROM {t} WHERE {f} AND taken_at >= :lo AND taken_at < :hi \
                     ORDER BY taken_at LIMIT :cap",
                    v = src.value,
                    t = src.table,
                    f = src.filter
                );
                let mut st = prepare(&tx, &sql)?;
                let cap = max_raw + 1;
                let mut rows = st.query(&*src.bind(vec![
                    (":lo", &from),
                    (":hi", &u),
                    (":cap", &cap),
                ]))?;
                let mut read = 0;
                while let Some(r) = rows.next()? {
                    read += 1;
                    if read > max_raw {
                        return Err(StoreError::TooBroad(format!(
                            "the window holds over {max_raw} checks; use a step of 1h or more \
                             (read from hourly roll-ups) or a shorter window"
                        )));
                    }
                    let v: f64 = r.get(1)?;
                    out.add(r.get(0)?, 1, v, v, v, Resolution::Raw);
                }
            }
            Ok(out.finish())
        })
    }
}

impl Store {
    /// The mount points with a disk figure in `[since, until)`, in path
    /// order. Every check updates its hour's roll-up and roll-ups outlive
    /// raw checks, so the roll-ups know every mount; a loose scan of their
    /// key visits each mount once, however many hours it has.
    pub fn mounts_between(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<String>> {
        let (lo, hi) = (
            hour_of(clamp(since.timestamp_millis())),
            clamp(until.timestamp_millis()),
        );
        self.read(|c| {
            let mut next = prepare(
                c,
                "SELECT mount FROM rollup_disks WHERE mount > :after ORDER BY mount LIMIT 1",
            )?;
            let mut seen = prepare(
                c,
                "SELECT 1 FROM rollup_disks WHERE mount = :mount AND hour >= :lo AND hour < :hi LIMIT 1",
            )?;
            let (mut out, mut after) = (Vec::new(), String::new());
            while let Some(mount) = next
                .query_row(named_params! {":after": after}, |r| r.get::<_, String>(0))
                .optional()?
            {
                if seen.exists(named_params! {":mount": mount, ":lo": lo, ":hi": hi})? {
                    out.push(mount.clone());
                }
                after = mount;
            }
            Ok(out)
        })
    }
}
