//! The host at scrape time, in node_exporter's idiom: cumulative figures
//! as `_total` counters (CPU seconds by mode, bytes and I/O time per block
//! device, bytes, packets and errors per interface) so that `rate()`
//! applies, and levels as gauges, all in base units.

use super::Exposition;
use crate::collect::{BlockCounters, HostCounters, NetworkCounters, Partition};

/// A family written for each item of a list: name, help, value of an item.
type Family<T, V> = (&'static str, &'static str, fn(&T) -> V);

/// Devices node_exporter leaves out by default too: RAM disks, loop
/// devices and floppies say nothing of the host's disks.
fn virtual_device(name: &str) -> bool {
    ["ram", "loop", "fd"].iter().any(|p| {
        name.strip_prefix(p)
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    })
}

pub(super) fn write(out: &mut Exposition, h: &HostCounters) {
    if let Some(t) = &h.cpu_times {
        let modes = [
            ("user", Some(t.user)),
            ("nice", Some(t.nice)),
            ("system", Some(t.system)),
            ("idle", Some(t.idle)),
            ("iowait", t.iowait),
            ("irq", t.irq),
            ("softirq", t.softirq),
            ("steal", t.steal),
        ];
        for (mode, v) in modes {
            if let Some(v) = v {
                out.counter(
                    "hostwatch_cpu_seconds_total",
                    "Seconds all CPUs spent in each mode since boot.",
                    &[("mode", mode)],
                    v,
                );
            }
        }
    }
    if let Some([l1, l5, l15]) = h.load {
        out.gauge("hostwatch_load1", "Load average over 1 minute.", &[], l1);
        out.gauge("hostwatch_load5", "Load average over 5 minutes.", &[], l5);
        out.gauge(
            "hostwatch_load15",
            "Load average over 15 minutes.",
            &[],
            l15,
        );
    }
    if let Some(m) = &h.memory {
        let levels = [
            (
                "hostwatch_memory_total_bytes",
                "Physical memory.",
                m.total_bytes,
            ),
            (
                "hostwatch_memory_used_bytes",
                "Memory in use.",
                m.used_bytes,
            ),
            (
                "hostwatch_memory_available_bytes",
                "Memory available for new work without swapping.",
                m.available_bytes,
            ),
            (
                "hostwatch_swap_total_bytes",
                "Swap space.",
                m.swap_total_bytes,
            ),
            (
                "hostwatch_swap_used_bytes",
                "Swap in use.",
                m.swap_used_bytes,
            ),
        ];
        for (name, help, v) in levels {
            out.gauge(name, help, &[], v as f64);
        }
    }
    // A filesystem that did not answer has no sizes, only its error flag.
    let fs_families: [Family<Partition, Option<f64>>; 4] = [
        ("hostwatch_filesystem_size_bytes", "Filesystem size.", |f| {
            f.disk.total_bytes.map(|v| v as f64)
        }),
        (
            "hostwatch_filesystem_used_bytes",
            "Filesystem space in use.",
            |f| f.disk.used_bytes.map(|v| v as f64),
        ),
        (
            "hostwatch_filesystem_readonly",
            "1 when the filesystem is mounted read-only.",
            |f| Some(f64::from(u8::from(f.read_only))),
        ),
        (
            "hostwatch_filesystem_device_error",
            "1 when the filesystem did not answer statfs, or answered with an error.",
            |f| Some(f64::from(u8::from(f.disk.error.is_some()))),
        ),
    ];
    for (name, help, value) in fs_families {
        for f in &h.filesystems {
            let l = [
                ("device", f.disk.device.as_str()),
                ("fstype", f.disk.fs_type.as_str()),
                ("mountpoint", f.disk.mount.as_str()),
            ];
            if let Some(v) = value(f) {
                out.gauge(name, help, &l, v);
            }
        }
    }
    let disk_families: [Family<BlockCounters, f64>; 5] = [
        (
            "hostwatch_disk_read_bytes_total",
            "Bytes read from the device since boot.",
            |d| d.read_bytes as f64,
        ),
        (
            "hostwatch_disk_written_bytes_total",
            "Bytes written to the device since boot.",
            |d| d.written_bytes as f64,
        ),
        (
            "hostwatch_disk_reads_completed_total",
            "Reads completed since boot.",
            |d| d.reads as f64,
        ),
        (
            "hostwatch_disk_writes_completed_total",
            "Writes completed since boot.",
            |d| d.writes as f64,
        ),
        (
            "hostwatch_disk_io_time_seconds_total",
            "Seconds the device had I/O in flight since boot.",
            |d| d.io_time_seconds,
        ),
    ];
    for (name, help, value) in disk_families {
        for d in h.block_devices.iter().filter(|d| !virtual_device(&d.name)) {
            out.counter(name, help, &[("device", &d.name)], value(d));
        }
    }
    let net_families: [Family<NetworkCounters, u64>; 6] = [
        (
            "hostwatch_network_receive_bytes_total",
            "Bytes received on the interface since boot.",
            |n| n.received_bytes,
        ),
        (
            "hostwatch_network_transmit_bytes_total",
            "Bytes sent on the interface since boot.",
            |n| n.sent_bytes,
        ),
        (
            "hostwatch_network_receive_packets_total",
            "Packets received on the interface since boot.",
            |n| n.received_packets,
        ),
        (
            "hostwatch_network_transmit_packets_total",
            "Packets sent on the interface since boot.",
            |n| n.sent_packets,
        ),
        (
            "hostwatch_network_receive_errs_total",
            "Receive errors on the interface since boot.",
            |n| n.receive_errors,
        ),
        (
            "hostwatch_network_transmit_errs_total",
            "Transmit errors on the interface since boot.",
            |n| n.send_errors,
        ),
    ];
    for (name, help, value) in net_families {
        for n in &h.network {
            out.counter(name, help, &[("device", &n.interface)], value(n) as f64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::virtual_device;

    #[test]
    fn ram_loop_and_floppy_devices_are_left_out_and_disks_kept() {
        for v in ["ram0", "loop12", "fd0"] {
            assert!(virtual_device(v), "{v}");
        }
        for d in ["sda", "nvme0n1", "vda1", "loopback", "ram", "dm-0"] {
            assert!(!virtual_device(d), "{d}");
        }
    }
}
