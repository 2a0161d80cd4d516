//! The mounted filesystems, from the kernel's own table, and their sizes
//! through a bounded `statfs` (`statfs.rs`): the one reader of mounts that
//! the check, `/api/v1/system`, `/metrics` and the watchdog share.
//!
//! The table is read as bytes: a mount point need not be UTF-8, and one that
//! is not is kept with its odd bytes escaped (`escape`), never dropped.

mod statfs;

pub use statfs::{Answer, Usage, statfs_all};

use std::{
    collections::{BTreeMap, HashSet},
    ffi::OsString,
    os::unix::ffi::OsStringExt,
    path::PathBuf,
};

/// One mounted filesystem as the kernel lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct Mount {
    /// Where it is mounted, as raw bytes.
    pub point: PathBuf,
    /// `point` as the API shows it (`escape`).
    pub name: String,
    /// The mount source: a device, or a name such as `tmpfs`.
    pub device: String,
    pub fs_type: String,
    pub read_only: bool,
    /// `major:minor` of the device under it.
    pub majmin: String,
}

/// The filesystems worth reporting, one per mount point (the last mounted
/// wins, as the kernel shows it), sorted by mount point. Pseudo filesystems
/// of no size, automount triggers (asking them mounts them) and bind
/// mounts of a filesystem already mounted whole are left out.
pub fn list() -> std::io::Result<Vec<Mount>> {
    Ok(filter(parse(&std::fs::read("/proc/self/mountinfo")?)))
}

/// Types that never hold files of their own, or whose `statfs` has effects.
const SKIPPED_TYPES: &[&str] = &[
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "configfs",
    "debugfs",
    "devpts",
    "devtmpfs",
    "efivarfs",
    "fusectl",
    "hugetlbfs",
    "iso9660",
    "mqueue",
    "nsfs",
    "proc",
    "pstore",
    "rootfs",
    "rpc_pipefs",
    "securityfs",
    "selinuxfs",
    "squashfs",
    "sysfs",
    "tracefs",
];

fn filter(all: Vec<Raw>) -> Vec<Mount> {
    // A bind mount shows, from a directory inside it, a filesystem that is
    // also mounted whole. A sandbox makes them of `/` (systemd's
    // `ReadWritePaths=`, `PrivateTmp=`), and they would count the same
    // space several times. A filesystem mounted only from inside it (a
    // btrfs subvolume as `/`) is kept.
    let whole: HashSet<&str> = all
        .iter()
        .filter(|m| m.root == b"/")
        .map(|m| m.mount.majmin.as_str())
        .collect();
    let by_point: BTreeMap<Vec<u8>, Mount> = all
        .iter()
        .filter(|m| m.root == b"/" || !whole.contains(m.mount.majmin.as_str()))
        .filter(|m| !SKIPPED_TYPES.contains(&m.mount.fs_type.as_str()))
        .filter(|m| !hidden(m.mount.point.as_os_str().as_encoded_bytes()))
        .map(|m| {
            let key = m.mount.point.as_os_str().as_encoded_bytes().to_vec();
            (key, m.mount.clone())
        })
        .collect();
    by_point.into_values().collect()
}

/// The kernel's and the runtime's own trees, as `df` leaves them out;
/// `/run/media` holds removable disks and stays.
fn hidden(point: &[u8]) -> bool {
    let under = |p: &[u8]| point == p || point.starts_with(&[p, b"/"].concat());
    under(b"/sys") || under(b"/proc") || (under(b"/run") && !under(b"/run/media"))
}

struct Raw {
    root: Vec<u8>,
    mount: Mount,
}

/// The lines of `/proc/self/mountinfo` (proc(5)); a line that does not
/// have the shape is skipped, never the table.
fn parse(table: &[u8]) -> Vec<Raw> {
    table
        .split(|&b| b == b'\n')
        .filter_map(|line| {
            let fields: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
            let dash = fields.iter().position(|f| *f == b"-")?;
            if dash < 6 || fields.len() < dash + 3 {
                return None;
            }
            let point = unescape(fields[4]);
            Some(Raw {
                root: unescape(fields[3]),
                mount: Mount {
                    name: escape(&point),
                    point: PathBuf::from(OsString::from_vec(point)),
                    device: escape(&unescape(fields[dash + 2])),
                    fs_type: escape(fields[dash + 1]),
                    read_only: fields[5].split(|&b| b == b',').any(|o| o == b"ro"),
                    majmin: String::from_utf8_lossy(fields[2]).into_owned(),
                },
            })
        })
        .collect()
}

/// Undoes the kernel's octal escapes (`\040` for a space, `\134` for a
/// backslash).
fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let octal = field
            .get(i + 1..i + 4)
            .filter(|d| field[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)))
            .map(|d| d.iter().fold(0u32, |n, c| n * 8 + u32::from(c - b'0')));
        match octal {
            Some(n) if n <= 0xff => {
                out.push(n as u8);
                i += 4;
            }
            _ => {
                out.push(field[i]);
                i += 1;
            }
        }
    }
    out
}

/// A path's bytes as text: valid UTF-8 as it is, each byte that is not
/// part of valid UTF-8 as `\xNN`. Paths that are UTF-8 (nearly all) read
/// the same as before; one that is not keeps a stable, readable name.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &[u8] = b"22 27 0:21 / /proc rw,relatime - proc proc rw\n\
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard\n\
28 27 254:0 /srv /mnt/bind rw,relatime - ext4 /dev/vda rw\n\
29 27 0:40 / /mnt/with\\040space ro,relatime shared:5 - tmpfs tmpfs rw\n\
30 27 0:41 / /mnt/caf\xe9 rw,relatime - tmpfs none rw\n\
31 27 0:42 / /run/user/0 rw - tmpfs tmpfs rw\n\
32 27 0:43 / /run/media/usb rw - vfat /dev/sdb1 rw\n\
not a mount line\n\
33 27 0:44 / /data rw - xfs /dev/sdc1 rw\n\
34 27 0:45 / /data rw - xfs /dev/sdd1 rw\n";

    fn names(v: &[Mount]) -> Vec<&str> {
        v.iter().map(|m| m.name.as_str()).collect()
    }

    #[test]
    fn odd_bytes_are_escaped_and_the_rest_of_the_table_is_kept() {
        let v = filter(parse(TABLE));
        assert_eq!(
            names(&v),
            [
                "/",
                "/data",
                "/mnt/caf\\xe9",
                "/mnt/with space",
                "/run/media/usb"
            ]
        );
        let cafe = &v[2];
        assert_eq!(cafe.point.as_os_str().as_encoded_bytes(), b"/mnt/caf\xe9");
        let space = &v[3];
        assert!(space.read_only);
        assert_eq!(
            (space.fs_type.as_str(), space.device.as_str()),
            ("tmpfs", "tmpfs")
        );
        // Over-mounted: the last one wins.
        assert_eq!(v[1].device, "/dev/sdd1");
        assert!(!v[0].read_only);
    }

    #[test]
    fn escapes_keep_utf8_and_mark_each_odd_byte() {
        assert_eq!(escape("/mnt/é".as_bytes()), "/mnt/é");
        assert_eq!(escape(b"/a\xff\xfeb"), "/a\\xff\\xfeb");
        assert_eq!(unescape(b"a\\134b\\040c\\9"), b"a\\b c\\9");
    }
}
