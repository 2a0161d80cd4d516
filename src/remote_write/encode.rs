//! Stored checks as remote-write series: the families `/metrics` shows of a
//! check, under the same names and labels, each sample stamped with the
//! time its check was read. Counters read at scrape time (CPU seconds, disk
//! and network totals) are not in the history and are not pushed.

use super::proto::{Label, Sample, TimeSeries, WriteRequest};
use crate::{
    domain::{Check, ServiceStatus},
    store::RolledHour,
};
use std::collections::BTreeMap;

/// Samples of many checks, gathered per series.
pub struct Batch {
    /// `instance` and `job`, on every series.
    target: [(String, String); 2],
    series: BTreeMap<Vec<Label>, Vec<Sample>>,
    pub samples: u64,
}

impl Batch {
    pub fn new(instance: &str) -> Self {
        Self {
            target: [
                ("instance".into(), instance.into()),
                ("job".into(), "hostwatch".into()),
            ],
            series: BTreeMap::new(),
            samples: 0,
        }
    }

    fn push(&mut self, name: &str, labels: &[(&str, &str)], at: i64, value: f64) {
        let mut key: Vec<Label> = [("__name__", name)]
            .iter()
            .chain(labels)
            .map(|(n, v)| Label {
                name: (*n).into(),
                value: (*v).into(),
            })
            .chain(self.target.iter().map(|(n, v)| Label {
                name: n.clone(),
                value: v.clone(),
            }))
            .collect();
        key.sort_by(|a, b| a.name.cmp(&b.name));
        self.series.entry(key).or_default().push(Sample {
            value,
            timestamp: at,
        });
        self.samples += 1;
    }

    /// Adds the samples of one check; checks go in the order they were
    /// read, and the caller keeps each series' times increasing.
    pub fn add(&mut self, k: &Check) {
        let at = k.taken_at.timestamp_millis();
        self.push(
            "hostwatch_check_duration_seconds",
            &[],
            at,
            k.duration_ms / 1000.0,
        );
        if let Some(c) = &k.cpu {
            self.push("hostwatch_cpu_usage_ratio", &[], at, c.percent / 100.0);
            self.push("hostwatch_load1", &[], at, c.load1);
            self.push("hostwatch_load5", &[], at, c.load5);
            self.push("hostwatch_load15", &[], at, c.load15);
        }
        if let Some(m) = &k.memory {
            for (name, v) in [
                ("hostwatch_memory_total_bytes", m.total_bytes),
                ("hostwatch_memory_used_bytes", m.used_bytes),
                ("hostwatch_memory_available_bytes", m.available_bytes),
                ("hostwatch_swap_total_bytes", m.swap_total_bytes),
                ("hostwatch_swap_used_bytes", m.swap_used_bytes),
            ] {
                self.push(name, &[], at, v as f64);
            }
        }
        for d in k.disks.iter().flatten() {
            let l = [
                ("device", d.device.as_str()),
                ("fstype", d.fs_type.as_str()),
                ("mountpoint", d.mount.as_str()),
            ];
            if let Some(v) = d.total_bytes {
                self.push("hostwatch_filesystem_size_bytes", &l, at, v as f64);
            }
            if let Some(v) = d.used_bytes {
                self.push("hostwatch_filesystem_used_bytes", &l, at, v as f64);
            }
            let error = f64::from(u8::from(d.error.is_some() || d.total_bytes.is_none()));
            self.push("hostwatch_filesystem_device_error", &l, at, error);
        }
        for s in k.services.iter().flatten() {
            let name = [("service", s.name.as_str())];
            let up = f64::from(u8::from(s.state == ServiceStatus::Running));
            self.push("hostwatch_service_up", &name, at, up);
            for state in ServiceStatus::ALL {
                self.push(
                    "hostwatch_service_state",
                    &[("service", &s.name), ("state", state.as_str())],
                    at,
                    f64::from(u8::from(s.state == state)),
                );
            }
            if let Some(h) = s.healthy {
                self.push(
                    "hostwatch_service_healthy",
                    &name,
                    at,
                    f64::from(u8::from(h)),
                );
            }
            if let Some(ms) = s.probe_ms {
                self.push(
                    "hostwatch_service_probe_duration_seconds",
                    &name,
                    at,
                    ms / 1000.0,
                );
            }
        }
    }

    /// Adds an hour of roll-ups (where the raw checks were purged): its
    /// averages under the label `rollup="1h"`, so they are never taken for
    /// a reading. Memory, swap and filesystems are rolled up as shares, so
    /// they come as `_ratio` families of their own.
    pub fn add_rolled(&mut self, h: &RolledHour) {
        let at = h.last_at.timestamp_millis();
        let mark = ("rollup", "1h");
        for (name, v) in [
            (
                "hostwatch_cpu_usage_ratio",
                h.cpu_percent.map(|p| p / 100.0),
            ),
            ("hostwatch_load1", h.load1),
            (
                "hostwatch_memory_used_ratio",
                h.mem_percent.map(|p| p / 100.0),
            ),
            (
                "hostwatch_swap_used_ratio",
                h.swap_percent.map(|p| p / 100.0),
            ),
        ] {
            if let Some(v) = v {
                self.push(name, &[mark], at, v);
            }
        }
        for (mount, p) in &h.disks {
            self.push(
                "hostwatch_filesystem_used_ratio",
                &[("mountpoint", mount), mark],
                at,
                p / 100.0,
            );
        }
        for (service, up) in &h.services {
            self.push(
                "hostwatch_service_up",
                &[("service", service), mark],
                at,
                *up,
            );
        }
    }

    pub fn is_empty(&self) -> bool {
        self.samples == 0
    }

    /// The request body: the protobuf, snappy-compressed (block format, as
    /// remote-write asks).
    pub fn encode(self) -> Result<Vec<u8>, snap::Error> {
        let req = WriteRequest {
            timeseries: self
                .series
                .into_iter()
                .map(|(labels, samples)| TimeSeries { labels, samples })
                .collect(),
        };
        snap::raw::Encoder::new().compress_vec(&prost::Message::encode_to_vec(&req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Cpu, Disk, ServiceState};
    use chrono::{Duration, Utc};

    fn check(at: chrono::DateTime<Utc>, load1: f64) -> Check {
        Check {
            id: Some(1),
            taken_at: at,
            duration_ms: 12.0,
            cpu: Some(Cpu {
                percent: 50.0,
                load1,
                load5: 0.5,
                load15: 0.25,
            }),
            memory: None,
            disks: Some(vec![Disk::sized(
                "/".into(),
                "/dev/vda1".into(),
                "ext4".into(),
                100,
                40,
            )]),
            io: None,
            services: Some(vec![ServiceState {
                name: "httpd".into(),
                state: ServiceStatus::Stopped,
                healthy: None,
                probe_ms: None,
            }]),
            top_processes: None,
        }
    }

    #[test]
    fn a_series_holds_its_checks_in_order_with_sorted_labels_and_decodes_back() {
        let now = Utc::now();
        let mut b = Batch::new("web-1");
        b.add(&check(now - Duration::seconds(60), 1.5));
        b.add(&check(now, 2.5));
        // duration, 4 cpu, 3 disk, 1 + 5 service: 14 per check.
        assert_eq!(b.samples, 28);
        let body = b.encode().unwrap();
        let raw = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
        let req: WriteRequest = prost::Message::decode(raw.as_slice()).unwrap();
        assert_eq!(req.timeseries.len(), 14);
        for ts in &req.timeseries {
            let names: Vec<&str> = ts.labels.iter().map(|l| l.name.as_str()).collect();
            let mut sorted = names.clone();
            sorted.sort_unstable();
            assert_eq!(names, sorted);
            assert_eq!(names[0], "__name__");
            assert!(ts.labels.contains(&Label {
                name: "job".into(),
                value: "hostwatch".into()
            }));
            assert_eq!(ts.samples.len(), 2);
            assert!(ts.samples[0].timestamp < ts.samples[1].timestamp);
        }
        let load = req
            .timeseries
            .iter()
            .find(|t| t.labels[0].value == "hostwatch_load1")
            .unwrap();
        assert_eq!(load.samples[1].value, 2.5);
        assert_eq!(load.samples[1].timestamp, now.timestamp_millis());
        let stopped = req
            .timeseries
            .iter()
            .find(|t| {
                t.labels[0].value == "hostwatch_service_state"
                    && t.labels.iter().any(|l| l.value == "stopped")
            })
            .unwrap();
        assert_eq!(stopped.samples[0].value, 1.0);
    }
}
