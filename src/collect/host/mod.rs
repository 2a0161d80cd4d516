//! The host as a whole: CPU, memory, swap and load ([`HostReader`], the one
//! reader of `/proc/stat`, `/proc/meminfo` and `/proc/loadavg`) and the
//! filesystems ([`disks`]).

mod disks;
mod reader;

pub use disks::disks;
pub use reader::{HostReader, Ticks, meminfo_kb};
